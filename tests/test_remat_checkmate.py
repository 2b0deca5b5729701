"""Checkmate's MILP (issue 12, item 4: "Checkmate's formulation through
scipy.optimize.milp, with a time limit"), asked for with ``plan_remat(method="checkmate")``:
it is never worse than the one-level MILP on recompute-only plans, it reaches budgets the
other planners cannot (values rebuilt from rebuilt values), and its schedule runs within
the budget measured by tracemalloc, to the graph's answer, each node as often as planned."""

import tracemalloc

import numpy as np
import pytest
from test_remat import _random_problem

from pycograd.graph import capture, checkmate, grad_graph
from pycograd.graph import remat as R
from pycograd.graph.remat import KEEP, RematInfeasibleError, eval_scheduled, plan_remat

RATES = {"flops": 1e9, "bandwidth": 1e8}


def _outputs(p):
    return {i for i in range(p.n) if p.n in p.uses[i]}


@pytest.mark.parametrize("seed", range(8))
def test_never_worse_than_the_one_level_milp(seed):
    rng = np.random.default_rng(seed)
    p = _random_problem(rng, int(rng.integers(6, 11)))
    ext = R._extent(p)
    options = R._options(p, False)
    plain = int(R._profile(p, [KEEP] * p.n, ext).max())
    for frac in (0.9, 0.7, 0.5):
        budget = int(frac * plain)
        one_level = R._solve_milp(p, budget, options, ext, 10.0)
        events = checkmate.solve(p.size, p.reads, _outputs(p), p.flop_s, budget, 10.0)
        if one_level is not None:
            assert events is not None
        if events is not None:
            s = R._from_events(p, events)
            assert s.peak <= budget
            assert one_level is None or s.cost <= one_level[1] + 1e-9, (s.cost, one_level)


def _chain(layers, act=2 ** 17):
    def f(x):
        for _ in range(layers):
            x = np.tanh(x)
        return np.sum(x)

    x = np.linspace(-1, 1, act // 8)
    return grad_graph(capture(f, x)), x


def test_reaches_a_budget_the_other_planners_cannot_and_runs_within_it():
    g, x = _chain(4)
    plain = plan_remat(g, 10 ** 12, rates=RATES).plain_peak
    budget = int(0.7 * plain)
    with pytest.raises(RematInfeasibleError):
        plan_remat(g, budget, rates=RATES, spill=False)
    plan = plan_remat(g, budget, rates=RATES, spill=False, method="checkmate")
    assert plan.method == "checkmate" and plan.peak <= budget and plan.recomputes
    ref = g(x)
    eval_scheduled(plan, x)
    runs: dict[int, int] = {}
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        value, (dx,) = eval_scheduled(plan, x, on_eval=lambda i: runs.__setitem__(
            i, runs.get(i, 0) + 1))
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak <= budget, (peak, budget)
    assert np.array_equal(value, ref[0]) and np.array_equal(dx, ref[1][0])
    assert all(runs.get(i, 0) == 1 + plan.recomputes.get(node.out.id, 0)
               for i, node in enumerate(g.nodes))


def test_unknown_method_names_checkmate():
    g, _ = _chain(2)
    with pytest.raises(ValueError, match="checkmate"):
        plan_remat(g, 10 ** 9, method="gurobi")
