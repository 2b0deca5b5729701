"""The lowering notebooks run (each in its own kernel, so torch, jax and tensorflow never
share a process) and report gradients equal to the numpy tape's."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

NEEDS = {"pycograd_compile_torch.ipynb": ["torch"], "pycograd_compile_jax.ipynb": ["jax"],
         "pycograd_compile_tf.ipynb": ["tensorflow"],
         "pycograd_export.ipynb": ["torch", "onnx", "onnxruntime"]}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NEEDS))
def test_lowering_notebook(name):
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    for module in NEEDS[name]:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    sys.path.insert(0, str(Path(__file__).parents[1] / "notebooks"))
    try:
        import make_demo
    finally:
        sys.path.pop(0)
    nb = nbformat.read(make_demo.HERE / name, as_version=4)
    for cell in nb.cells:
        if cell.source.startswith("%load_ext"):
            cell.source = make_demo.load_line()
    cells = make_demo.execute(nb, timeout=600).cells
    text = "".join(out.get("text", "") for cell in cells for out in cell.get("outputs", [])
                   if out.get("name") != "stderr")
    assert "numpy training: loss" in text
    deltas = [float(v) for v in re.findall(r"max\|Δ(?:grad)?\|[^:\n]*[:=] (\S+)", text)]
    assert len(deltas) >= (3 if name == "pycograd_export.ipynb" else 2), text
    assert max(deltas) < 1e-10, text
