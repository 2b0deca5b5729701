"""The gradient sweep: every primitive, checked against finite differences in float64.

For each case of ``sweep_cases.CASES`` the loss is ``L(args) = sum(f(args) * W)`` with a
fixed random ``W`` per output. First order compares ``grad(L)`` with central differences
of ``L``; second order compares the reverse-over-reverse Hessian-vector product with
central differences of ``grad(L)``. Coverage: every registered primitive has a case, and
every case really runs the primitives it claims.
"""

from __future__ import annotations

import functools
import importlib
import operator
import pkgutil

import numpy as np
import pytest
from fd import directional, numerical_grad
from sweep_cases import CASES, Case

import pycograd
from pycograd.core.primitive import REGISTRY
from pycograd.core.var import Var

IDS = [c.name for c in CASES]


def _outputs(out: object) -> list:
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _loss(case: Case, args: list, fn=None):
    """``L`` for ``case`` (or ``fn`` in its place) with weights drawn for the shapes of its
    outputs at ``args``."""
    fn = case.fn if fn is None else fn
    rng = case.rng(salt=1)
    ws = [rng.standard_normal(np.shape(o)) for o in _outputs(case.fn(*args))]

    def L(*xs):
        terms = [np.sum(o * w) for o, w in zip(_outputs(fn(*xs)), ws)]
        return functools.reduce(operator.add, terms)
    return L


def _close(actual, expected, case: Case, what: str) -> None:
    scale = 1.0 + float(np.max(np.abs(expected), initial=0.0))
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=case.rtol,
                               atol=case.atol * scale, err_msg=f"{case.name}: {what}")


@pytest.fixture
def executed(monkeypatch):
    """The names of the primitives that run during the test: their ``impl`` is called, or
    a tape node is recorded for them (custom_vjp runs the user's ``fwd`` instead)."""
    seen: set[str] = set()
    for name, prim in REGISTRY.items():
        def impl(*a, _impl=prim.impl, _name=name, **k):
            seen.add(_name)
            return _impl(*a, **k)
        monkeypatch.setattr(prim, "impl", impl)
    var_init = Var.__init__

    def init(self, value, trace=None, prim=None, *a, **k):
        if prim is not None:
            seen.add(prim.name)
        var_init(self, value, trace, prim, *a, **k)
    monkeypatch.setattr(Var, "__init__", init)
    return seen


def test_names_unique():
    assert len(set(IDS)) == len(IDS), sorted(n for n in IDS if IDS.count(n) > 1)


# Subpackages that wire pycograd to the outside (lowering, notebooks, demos); primitives
# are declared elsewhere, so the registry is complete without importing them.
_NOT_PRIMITIVE_HOMES = ("pycograd.backends", "pycograd.dsl", "pycograd.examples")


def _import_all() -> None:
    """Import every pycograd module, so the registry holds every primitive however the
    test session was selected."""
    for info in pkgutil.walk_packages(pycograd.__path__, "pycograd."):
        if not info.name.startswith(_NOT_PRIMITIVE_HOMES):
            importlib.import_module(info.name)


def test_every_primitive_has_a_case():
    _import_all()
    covered = {p for c in CASES for p in c.prims}
    unknown = covered - set(REGISTRY)
    assert not unknown, f"cases claim primitives that are not registered: {sorted(unknown)}"
    missing = sorted(set(REGISTRY) - covered)
    assert not missing, f"registered primitives with no sweep case: {missing}"


def test_print_op_list():
    """The coverage table (visible with ``pytest -s``)."""
    _import_all()
    rows = []
    for name, prim in sorted(REGISTRY.items()):
        n = sum(name in c.prims for c in CASES)
        rows.append(f"  {name:<16}{'' if prim.differentiable else '(no grad) '}{n} cases")
    print(f"\ngradient sweep: {len(CASES)} cases over {len(REGISTRY)} primitives")
    print("\n".join(rows))
    assert all(not r.endswith(" 0 cases") for r in rows)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_values(case: Case):
    """Traced evaluation gives numpy's own values, shapes and dtypes."""
    args = case.sample()
    expected = _outputs(case.fn(*args))
    traced, _ = pycograd.vjp(case.fn, *args)
    traced = _outputs(traced)
    assert len(traced) == len(expected)
    for t, e in zip(traced, expected):
        assert not isinstance(t, Var)
        assert np.shape(t) == np.shape(e) and np.result_type(t) == np.result_type(e), case.name
        np.testing.assert_allclose(t, e, rtol=1e-12, atol=1e-14, err_msg=case.name)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_first_order(case: Case, executed: set):
    args = case.sample()
    L = _loss(case, args)
    grads = pycograd.grad(L, argnums=tuple(range(len(args))))(*args)
    missing = set(case.prims) - executed
    assert not missing, f"{case.name} claims {sorted(missing)} but never runs them"
    reference = L if case.reference is None else _loss(case, args, case.reference(*args))
    expected = numerical_grad(reference, args, case.eps)
    for i, (x, g, e) in enumerate(zip(args, grads, expected)):
        assert isinstance(g, np.ndarray), f"{case.name}: gradient {i} is {type(g).__name__}"
        assert g.shape == x.shape and g.dtype == x.dtype, \
            f"{case.name}: gradient {i} is {g.shape} {g.dtype}, argument {x.shape} {x.dtype}"
        _close(g, e, case, f"d/d arg {i}")


@pytest.mark.parametrize("case", [c for c in CASES if c.second_order],
                         ids=[c.name for c in CASES if c.second_order])
def test_second_order(case: Case):
    """Reverse-over-reverse Hessian-vector products against differences of the gradient."""
    args = case.sample()
    rng = case.rng(salt=2)
    v = [a.direction(rng) for a in case.args]
    nums = tuple(range(len(args)))
    grad_L = pycograd.grad(_loss(case, args), argnums=nums)

    def along_v(*xs):
        return functools.reduce(operator.add, [np.sum(g * d) for g, d in zip(grad_L(*xs), v)])

    hvp = pycograd.grad(along_v, argnums=nums)(*args)
    expected = directional(grad_L, args, v, case.hvp_eps)
    for i, (x, h, e) in enumerate(zip(args, hvp, expected)):
        assert h.shape == x.shape, f"{case.name}: HVP {i} has shape {h.shape}, not {x.shape}"
        _close(h, e, case, f"HVP component {i}")
