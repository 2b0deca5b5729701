"""Execute a saved notebook from ``notebooks/`` the way the notebook tests all need it.

One place for the preamble they share: skip when the Jupyter stack (or a framework the
notebook needs) is missing, point ``%load_ext`` at this checkout, run every cell in a fresh
kernel, and collect what the cells printed and showed.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"


def execute_notebook(name: str, *, needs: tuple[str, ...] = (), timeout: int = 300) -> list:
    """The executed cells of ``notebooks/<name>``; skips the test when a module in ``needs``
    (or nbformat, nbclient, ipykernel) is not installed."""
    nbformat = pytest.importorskip("nbformat")
    for module in ("nbclient", "ipykernel", *needs):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    sys.path.insert(0, str(NOTEBOOKS))
    try:
        import make_demo
    finally:
        sys.path.pop(0)
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    for cell in nb.cells:
        if cell.source.startswith("%load_ext"):
            cell.source = make_demo.load_line()
    return make_demo.execute(nb, timeout=timeout).cells


def outputs(cells: list) -> list[dict[str, Any]]:
    """Every output of every cell, in order."""
    return [out for cell in cells for out in cell.get("outputs", [])]


def printed(cells: list, *, stderr: bool = True) -> str:
    """What the cells printed (stdout, and stderr unless ``stderr=False``)."""
    return "".join(out.get("text", "") for out in outputs(cells)
                   if stderr or out.get("name") != "stderr")
