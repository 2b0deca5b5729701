"""``notebooks/pycograd_remat_demo.ipynb`` runs and reaches its results: the budget sweep
measures peaks within their budgets and identical answers, and the plan is drawn (needs the
Graphviz ``dot`` program, which CI installs)."""

from __future__ import annotations

import pytest
from notebook_run import execute_notebook, outputs, printed


@pytest.mark.slow
def test_remat_notebook_runs_and_reaches_its_results():
    cells = execute_notebook("pycograd_remat_demo.ipynb", needs=("matplotlib", "graphviz"))
    text, outs = printed(cells), outputs(cells)
    assert "measured <= budget: True" in text
    assert text.count("identical: True") == 5 and "identical: False" not in text
    assert "the smallest feasible budget is" in text
    assert any("image/png" in out.get("data", {}) for out in outs), "the sweep is plotted"
    svgs = [out["data"]["image/svg+xml"] for out in outs if "image/svg+xml" in out.get("data", {})]
    assert len(svgs) == 1 and "#c8e6c9" in svgs[0] and "#bbdefb" in svgs[0]
