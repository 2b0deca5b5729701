"""``weights.grad`` reuses its last walk of the objective (which globals and closure cells
to bind), so a training step does not rescan the code. Whatever the walk read may change
between calls: each change below must make the next gradient see the weight the code
reads now, never a stale plan's zero."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from pycograd import ParamDict
from pycograd.routing import ambient

SOURCE = """
def use_a(x):
    return np.sum(a * x)

def use_b(x):
    return np.sum(b * x)

helper = use_a

def objective():
    return helper(X)

class Model:
    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        return np.sum(a * x)

def forward_b(self, x):
    return np.sum(b * x)

model = Model()

def via_method():
    return model(X)

def with_default(f=use_a):
    return f(X)

def make_closure():
    inner = use_a
    def objective():
        return inner(X)
    def rebind(f):
        nonlocal inner
        inner = f
    return objective, rebind
"""


@pytest.fixture
def ns() -> dict:
    ns: dict = {"__name__": "plan_cache_user", "np": np, "X": np.array([1.0, 2.0])}
    exec(compile(SOURCE, "<plan-cache-test>", "exec"), ns)
    return ns


@pytest.fixture
def weights() -> ParamDict:
    return ParamDict(a=np.array([1.0, 1.0]), b=np.array([3.0, 3.0]))


def _grads(weights: ParamDict, objective) -> dict:
    _, g = weights.grad(objective)
    return {k: None if v is None else v.tolist() for k, v in g.items()}


def test_a_global_rebound_to_another_function(ns, weights):
    assert _grads(weights, ns["objective"]) == {"a": [1.0, 2.0], "b": [0.0, 0.0]}
    ns["helper"] = ns["use_b"]
    assert _grads(weights, ns["objective"]) == {"a": [0.0, 0.0], "b": [1.0, 2.0]}


def test_a_function_given_new_code(ns, weights):
    assert _grads(weights, ns["objective"])["a"] == [1.0, 2.0]
    ns["use_a"].__code__ = ns["use_b"].__code__
    assert _grads(weights, ns["objective"]) == {"a": [0.0, 0.0], "b": [1.0, 2.0]}


def test_a_method_replaced_on_the_class(ns, weights):
    assert _grads(weights, ns["via_method"])["a"] == [1.0, 2.0]
    ns["Model"].forward = ns["forward_b"]
    assert _grads(weights, ns["via_method"]) == {"a": [0.0, 0.0], "b": [1.0, 2.0]}


def test_new_defaults(ns, weights):
    assert _grads(weights, ns["with_default"])["a"] == [1.0, 2.0]
    ns["with_default"].__defaults__ = (ns["use_b"],)
    assert _grads(weights, ns["with_default"]) == {"a": [0.0, 0.0], "b": [1.0, 2.0]}


def test_a_closure_cell_rebound(ns, weights):
    objective, rebind = ns["make_closure"]()
    assert _grads(weights, objective)["a"] == [1.0, 2.0]
    rebind(ns["use_b"])
    assert _grads(weights, objective) == {"a": [0.0, 0.0], "b": [1.0, 2.0]}


def test_a_weight_global_replaced_by_a_new_array_is_still_bound(ns, weights):
    ns["a"] = np.array([5.0, 5.0])  # a stale value in the slot: the binding overwrites it
    assert _grads(weights, ns["objective"])["a"] == [1.0, 2.0]
    ns["a"] = np.array([7.0, 7.0])
    assert _grads(weights, ns["objective"])["a"] == [1.0, 2.0]
    assert ns["a"].tolist() == [7.0, 7.0]  # restored after the call


def test_the_walk_is_reused_while_nothing_changes(ns, weights, monkeypatch):
    walks = []
    real = ambient._walk
    monkeypatch.setattr(ambient, "_walk", lambda *a: walks.append(1) or real(*a))
    for _ in range(3):
        _grads(weights, ns["objective"])
    assert len(walks) == 1
    ns["helper"] = ns["use_b"]
    _grads(weights, ns["objective"])
    assert len(walks) == 2


def test_a_cached_walk_does_not_keep_its_objective_alive(ns, weights):
    big, inner = np.zeros(10), ns["objective"]

    def objective():
        return np.sum(big) + inner()

    _grads(weights, objective)
    keys = [k for k, (refs, _, _) in ambient._PLANS.items() if refs[0]() is objective]
    assert keys
    del objective
    gc.collect()
    assert not any(k in ambient._PLANS for k in keys)


def test_a_cached_walk_holds_no_traced_value(ns):
    from pycograd import grad
    from pycograd.core.trace import Tracer

    def f(x):
        ns["a"], ns["X"] = x, x * 2.0  # a weight slot and plain data, both traced now
        ambient.plan(frozenset({"a", "b"}), (), (ns["objective"],))
        ambient.plan(frozenset({"a", "b"}), (), (ns["objective"],))  # a hit, revalidated
        return np.sum(x)

    grad(f)(np.ones(2))
    held = [read[2] for _, _, walk in ambient._PLANS.values() for read in walk.reads]
    assert held and not any(isinstance(v, Tracer) for v in held)
