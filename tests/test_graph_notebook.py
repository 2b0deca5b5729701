"""``notebooks/pycograd_graph_viz_demo.ipynb`` runs and reaches its results (its drawings
need the Graphviz ``dot`` program, which CI installs)."""

from __future__ import annotations

import re

import pytest
from notebook_run import execute_notebook, outputs, printed


@pytest.mark.slow
def test_graph_notebook_runs_and_reaches_its_results():
    cells = execute_notebook("pycograd_graph_viz_demo.ipynb")
    text = printed(cells)
    svgs = [out for out in outputs(cells) if "image/svg+xml" in out.get("data", {})]
    assert len(svgs) == 3, "the MLP, its gradient graph and the attention block are drawn"
    assert "= matmul %0 %1 : f64[32,16]" in text
    assert "named weight inputs: ['w1', 'b1', 'w2', 'b2']" in text
    assert "graph == eager: True" in text
    assert float(re.search(r"max \|grad_graph - tape\| = (\S+)", text).group(1)) < 1e-12
    assert "attention(%0: f64[seq,8] x" in text
    assert "any length: (5, 8) (3, 8) | == eager: True" in text
    assert float(re.search(r"max \|jit - eager\| = (\S+)", text).group(1)) < 1e-12
    assert "def program(" in text
