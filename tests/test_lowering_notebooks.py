"""The lowering notebooks run (each in its own kernel, so torch, jax and tensorflow never
share a process) and report gradients equal to the numpy tape's."""

from __future__ import annotations

import re

import pytest
from notebook_run import execute_notebook, printed

NEEDS = {"pycograd_compile_torch.ipynb": ["torch"], "pycograd_compile_jax.ipynb": ["jax"],
         "pycograd_compile_tf.ipynb": ["tensorflow"],
         "pycograd_export.ipynb": ["torch", "onnx", "onnxruntime"]}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NEEDS))
def test_lowering_notebook(name):
    text = printed(execute_notebook(name, needs=tuple(NEEDS[name]), timeout=600), stderr=False)
    assert "numpy training: loss" in text
    deltas = [float(v) for v in re.findall(r"max\|Δ(?:grad)?\|[^:\n]*[:=] (\S+)", text)]
    assert len(deltas) >= (3 if name == "pycograd_export.ipynb" else 2), text
    assert max(deltas) < 1e-10, text
