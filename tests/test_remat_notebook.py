"""``notebooks/pycograd_remat_demo.ipynb`` runs and reaches its results: the budget sweep
measures peaks within their budgets and identical answers, and the plan is drawn (needs the
Graphviz ``dot`` program, which CI installs)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_remat_notebook_runs_and_reaches_its_results():
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    pytest.importorskip("graphviz")
    sys.path.insert(0, str(Path(__file__).parents[1] / "notebooks"))
    try:
        import make_demo
    finally:
        sys.path.pop(0)
    nb = nbformat.read(make_demo.HERE / "pycograd_remat_demo.ipynb", as_version=4)
    cells = make_demo.execute(nb).cells
    text = "".join(out.get("text", "") for cell in cells for out in cell.get("outputs", []))
    outs = [out for cell in cells for out in cell.get("outputs", [])]
    assert "measured <= budget: True" in text
    assert text.count("identical: True") == 5 and "identical: False" not in text
    assert "the smallest feasible budget is" in text
    assert any("image/png" in out.get("data", {}) for out in outs), "the sweep is plotted"
    svgs = [out["data"]["image/svg+xml"] for out in outs if "image/svg+xml" in out.get("data", {})]
    assert len(svgs) == 1 and "#c8e6c9" in svgs[0] and "#bbdefb" in svgs[0]
