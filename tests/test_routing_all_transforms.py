"""Every public entry point that runs a user function routes it (``math.*``, ``np.array`` of
traced values, scipy), as ``grad`` does.

The table below has one row per public name that takes a user function. A new public name
with a ``Callable`` parameter fails ``test_table_covers_every_public_function_taker`` until it
has a row here (or a reason in ``NOT_TRACING``), so no entry point can miss routing again.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import numpy as np
import pytest

import pycograd
from pycograd import (
    capture,
    check_grads,
    checkpoint,
    custom_jvp,
    custom_vjp,
    elementwise_grad,
    eval_shape,
    grad,
    grad_graph,
    hessian,
    holomorphic_grad,
    hvp,
    jacfwd,
    jacobian,
    jacrev,
    jit,
    jvp,
    linearize,
    per_sample_grad_norms,
    remat,
    scan,
    summary,
    transparent,
    tree_flatten,
    tree_map,
    value_and_grad,
    vjp,
    vmap,
)

scipy_linalg = pytest.importorskip("scipy.linalg")

A = np.array([[1.0, 1.0], [0.0, 1.0]])  # expm(x A) = e^x [[1, x], [0, 1]]


# ---- three styles of user function, each g(x) with its derivative dg written alike ----
# ``ref`` gives the value, first and second derivative in plain numpy (complex-safe).

def g_math(x):
    return math.sin(x)


def dg_math(x):
    return math.cos(x)


def g_array(x):
    return np.sum(np.array([x, x ** 2]))


def dg_array(x):
    return np.sum(np.array([1.0, 2.0 * x]))


def g_scipy(x):
    return scipy_linalg.expm(x * A)[0, 1]  # x e^x


def dg_scipy(x):
    e = scipy_linalg.expm(x * A)
    return e[0, 1] + e[0, 0]  # (1 + x) e^x


CASES = {
    "math.sin": (g_math, dg_math, lambda x: (np.sin(x), np.cos(x), -np.sin(x))),
    "np.array": (g_array, dg_array, lambda x: (x + x ** 2, 1 + 2 * x, 2.0 + 0 * x)),
    "scipy.linalg.expm": (g_scipy, dg_scipy,
                          lambda x: (x * np.exp(x), (1 + x) * np.exp(x), (2 + x) * np.exp(x))),
}

X = np.float64(0.7)
ONE = np.float64(1.0)


# ---- the table: entry point -> how to run it on g, and what it must give -------------

def _custom_vjp(g, dg):
    f = custom_vjp(g)
    f.defvjp(lambda x: (g(x), x), lambda r, ct: (ct * dg(r),))
    return f


def _custom_jvp(g, dg):
    f = custom_jvp(g)
    f.defjvp(lambda p, t: (g(p[0]), dg(p[0]) * t[0]))
    return f


def _summary(g, dg):
    s = summary(lambda params, x: g(x) * params["w"], {"w": np.ones(())}, (), verbose=False)
    return s.output.shape


def _make_cell(g):
    def cell(c, x):
        return c + g(x)
    return cell


def _scan(g, dg):
    cell = _make_cell(g)  # made outside the differentiated function: scan must route it

    def total(xs):
        carry, _ = scan(cell, np.float64(0.0), xs)
        return carry
    return grad(total, 0)(np.array([X, 2 * X]))


def _per_sample(g, dg):
    """Per-example gradient norms of w -> g(x_i * w) at w = 1: |x_i g'(x_i)|."""
    losses = lambda w, x: vmap(lambda xi: g(xi * w["w"]))(x)  # noqa: E731
    return per_sample_grad_norms(losses, {"w": np.float64(1.0)}, np.array([X, 2 * X]))


Z = X + 0.3j
TABLE: dict[str, tuple[Callable, Callable]] = {
    # name: (run(g, dg) -> got, want(ref) -> expected)
    "grad": (lambda g, dg: grad(g, 0)(X), lambda r: r(X)[1]),
    "value_and_grad": (lambda g, dg: value_and_grad(g, 0)(X), lambda r: r(X)[:2]),
    "vjp": (lambda g, dg: (lambda o, pb: (o, pb(ONE)[0]))(*vjp(g, X)), lambda r: r(X)[:2]),
    "jvp": (lambda g, dg: jvp(g, (X,), (ONE,)), lambda r: r(X)[:2]),
    "linearize": (lambda g, dg: ((lambda o, f: (o, f(ONE)))(*linearize(g, X)),
                                 grad(lambda x: linearize(g, x)[0], 0)(X)),
                  lambda r: (r(X)[:2], r(X)[1])),
    "jacfwd": (lambda g, dg: jacfwd(g)(X), lambda r: r(X)[1]),
    "jacrev": (lambda g, dg: jacrev(g)(X), lambda r: r(X)[1]),
    "jacobian": (lambda g, dg: jacobian(g)(X), lambda r: r(X)[1]),
    "hessian": (lambda g, dg: hessian(g)(X), lambda r: r(X)[2]),
    "hvp": (lambda g, dg: hvp(g, (X,), (ONE,)), lambda r: r(X)[2]),
    "elementwise_grad": (lambda g, dg: elementwise_grad(g)(X), lambda r: r(X)[1]),
    "holomorphic_grad": (lambda g, dg: holomorphic_grad(g, 0)(Z), lambda r: r(Z)[1]),
    "vmap": (lambda g, dg: vmap(g)(np.array([X, 2 * X])),
             lambda r: np.array([r(X)[0], r(2 * X)[0]])),
    "checkpoint": (lambda g, dg: grad(checkpoint(g), 0)(X), lambda r: r(X)[1]),
    "remat": (lambda g, dg: hessian(remat(g))(X), lambda r: r(X)[2]),
    "custom_vjp": (lambda g, dg: (grad(_custom_vjp(g, dg), 0)(X),
                                  hessian(_custom_vjp(g, dg))(X)), lambda r: r(X)[1:]),
    "custom_jvp": (lambda g, dg: (grad(_custom_jvp(g, dg), 0)(X),
                                  hessian(_custom_jvp(g, dg))(X)), lambda r: r(X)[1:]),
    "transparent": (lambda g, dg: grad(lambda x: tree_map(transparent(g), [x])[0], 0)(X),
                    lambda r: r(X)[1]),
    "eval_shape": (lambda g, dg: eval_shape(g, X).shape, lambda r: ()),
    "summary": (_summary, lambda r: ()),
    "scan": (_scan, lambda r: np.array([r(X)[1], r(2 * X)[1]])),
    "capture": (lambda g, dg: (lambda G: (G(X), grad_graph(G, 0)(X)[1]))(capture(g, X)),
                lambda r: r(X)[:2]),
    "jit": (lambda g, dg: (jit(g, strict=True)(X), jit(grad(g, 0), strict=True)(X)),
            lambda r: r(X)[:2]),
    "check_grads": (lambda g, dg: check_grads(g, (X,), order=2) or (), lambda r: ()),
    "per_sample_grad_norms": (_per_sample,
                              lambda r: np.abs([X * r(X)[1], 2 * X * r(2 * X)[1]])),
}

NOT_TRACING = {
    "tree_map": "maps f over leaves; runs no transform (f sees whatever the caller has)",
    "register_pytree_node": "flatten/unflatten callbacks see containers, not traced math",
    "train": "runs ParamDict.grad, which routes the objective (test_params covers it)",
    "dp_train": "runs DPSGD.grad, the per_sample_grad_norms path (its row covers routing)",
    "eval_scheduled": "on_eval is a callback given node numbers; the graph runs, no user math",
}


def _takes_a_function(obj: object) -> bool:
    """Whether a public callable has a parameter annotated ``Callable`` (a user function; a
    learning-rate schedule is annotated by its own alias and is never traced)."""
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(str(p.annotation).startswith(("Callable", "typing.Callable",
                                             "collections.abc.Callable")) for p in params)


def test_table_covers_every_public_function_taker():
    takers = {n for n in pycograd.__all__
              if callable(getattr(pycograd, n)) and _takes_a_function(getattr(pycograd, n))}
    missing = takers - set(TABLE) - set(NOT_TRACING)
    assert not missing, (f"public names taking a user function with no routing row in "
                         f"{__name__}.TABLE: {sorted(missing)}")
    assert {"grad", "jacrev", "elementwise_grad", "custom_vjp"} <= takers  # the detector works
    assert set(TABLE) <= set(pycograd.__all__)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("name", sorted(TABLE))
def test_transform_routes_user_function(name, case):
    g, dg, ref = CASES[case]
    run, want = TABLE[name]
    got = run(g, dg)
    expected = want(ref)
    if isinstance(expected, tuple) and expected == ():
        assert tuple(got) == ()
        return
    got_leaves, expected_leaves = tree_flatten(got)[0], tree_flatten(expected)[0]
    assert len(got_leaves) == len(expected_leaves)
    for a, b in zip(got_leaves, expected_leaves):
        np.testing.assert_allclose(np.asarray(a, dtype=complex), np.asarray(b, dtype=complex),
                                   rtol=1e-9, atol=1e-12)
