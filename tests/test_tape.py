"""The reverse tape: backward without recursion, the tape freed by refcounting once backward
is done, VJPs computed only toward differentiated inputs, constants kept off the tape."""

import gc
import sys
from contextlib import contextmanager

import numpy as np
import pytest

from pycograd import Var, grad, value_and_grad, vjp
from pycograd.ops.elementwise import UFUNC_PRIMS
from pycograd.ops.linalg import matmul_p


@contextmanager
def low_recursion_limit(limit: int = 300):
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def live_vars() -> int:
    return sum(1 for o in gc.get_objects() if type(o) is Var)


@contextmanager
def gc_disabled():
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@contextmanager
def counting_vjps(prim):
    """Count calls of each of ``prim``'s VJP rules; the rules are restored afterwards."""
    calls = [0] * len(prim.vjps)
    original = prim.vjps

    def counted(i, rule):
        def rule_i(*args, **kwargs):
            calls[i] += 1
            return rule(*args, **kwargs)
        return rule_i

    prim.vjps = tuple(counted(i, r) for i, r in enumerate(original))
    try:
        yield calls
    finally:
        prim.vjps = original


@contextmanager
def counting_var_creation():
    """Count ``Var`` constructions (every tape node goes through ``Var.__init__``)."""
    made = [0]
    init = Var.__init__

    def counted_init(self, *args, **kwargs):
        made[0] += 1
        init(self, *args, **kwargs)

    Var.__init__ = counted_init
    try:
        yield made
    finally:
        Var.__init__ = init


# ---- iterative backward ---------------------------------------------------------------

N_CHAIN = 100_000


def test_long_chain_backward_is_iterative():
    def chain(x):
        for _ in range(N_CHAIN):
            x = np.sin(x)
        return x

    with low_recursion_limit():
        g = grad(chain, 0)(1.0)
    # d/dx sin^n(x) = prod cos(x_k) over the iterates x_k, computed here without the tape
    x, expected = 1.0, 1.0
    for _ in range(N_CHAIN):
        expected *= np.cos(x)
        x = np.sin(x)
    assert g == pytest.approx(expected, rel=1e-9)


def test_long_retained_chain_is_freed_without_recursion():
    a = Var(1.0)
    y = a
    for _ in range(N_CHAIN):
        y = y * 1.0000001
    with low_recursion_limit():
        y.backward(retain_graph=True)
        del y   # the whole retained chain goes in one refcount cascade
    assert a.grad == pytest.approx(1.0000001**N_CHAIN)


# ---- the tape is freed ------------------------------------------------------------------

def logistic_loss(w, b, X, y):
    p = 1 / (1 + np.exp(-(X @ w + b)))
    return -np.mean(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12))


def test_training_loop_does_not_grow_memory():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((32, 4))
    y = (X @ np.array([1.0, -2.0, 0.5, 0.0]) > 0).astype(float)
    w, b = np.zeros(4), 0.0
    step = value_and_grad(logistic_loss, (0, 1))
    samples = {}
    with gc_disabled():   # only refcounting frees anything: a reference cycle would leak
        start = live_vars()
        for i in range(1, 1001):
            loss, (gw, gb) = step(w, b, X, y)
            w, b = w - 0.5 * gw, b - 0.5 * gb
            if i in (100, 1000):
                samples[i] = (live_vars(), len(gc.get_objects()))
    assert samples[100][0] == samples[1000][0] == start
    assert samples[1000][1] - samples[100][1] <= 5
    assert loss < 0.3   # it did train


def test_vjp_tape_lives_with_vjp_fn_only():
    with gc_disabled():
        before = live_vars()
        out, vjp_fn = vjp(lambda x: np.sum(np.tanh(x) * x), np.ones(3))
        assert live_vars() > before
        vjp_fn(1.0)
        vjp_fn(2.0)
        del vjp_fn
        assert live_vars() == before


def test_nested_grad_frees_both_tapes():
    d1 = grad(lambda x: np.sum(np.sin(x) * x), 0)
    d2 = grad(lambda x: np.sum(d1(x)), 0)
    with gc_disabled():
        d2(np.ones(3))
        before = live_vars(), len(gc.get_objects())
        for _ in range(50):
            d2(np.ones(3))
        assert live_vars() == before[0]
        assert len(gc.get_objects()) - before[1] <= 5


# ---- backward computes only what it needs ------------------------------------------------

def test_data_matrix_gets_no_gradient_computed():
    X, w = np.ones((5, 3)), np.arange(3.0)
    with counting_vjps(matmul_p) as calls:
        g = grad(lambda w, X: np.sum(X @ w), 0)(w, X)
    np.testing.assert_allclose(g, X.sum(axis=0))
    assert calls == [0, 1]
    with counting_vjps(matmul_p) as calls:
        grad(lambda w: np.sum(X @ w), 0)(w)      # X closed over
        assert calls == [0, 1]
        grad(lambda X: np.sum(X @ w), 0)(X)      # now w is the data
        assert calls == [1, 1]
        grad(lambda X, w: np.sum(X @ w))(X, w)   # both differentiated
        assert calls == [2, 2]
    assert matmul_p.vjps[0].__name__ == "_matmul_da"   # restored


def test_branches_off_the_path_to_the_output_are_not_visited():
    exp_p = UFUNC_PRIMS[np.exp]

    def f(x):
        np.exp(x) * 3.0   # depends on x, but not used by the output
        return np.sum(np.sin(x))

    with counting_vjps(exp_p) as calls:
        g = grad(f, 0)(np.ones(2))
    np.testing.assert_allclose(g, np.cos(np.ones(2)))
    assert calls == [0]


def test_integer_argument_rules_are_never_called():
    with counting_vjps(UFUNC_PRIMS[np.power]) as calls:
        g, gn = grad(lambda x, n: np.sum(x**n))(np.array([1.0, 2.0]), 3)
    assert gn is None and calls == [1, 0]
    np.testing.assert_allclose(g, [3.0, 12.0])


# ---- constants stay off the tape ------------------------------------------------------

def test_constants_never_enter_the_tape():
    C = np.arange(6.0).reshape(2, 3)
    inside = {}

    def f(x):
        with counting_var_creation() as made:
            c = np.exp(C) @ np.ones(3) + np.sum(C ** 2) - C.T.mean()
            k = np.sin(np.float64(2.0)) * 3.0
            inside["on constants"] = made[0]
            y = np.sum(x * c) * k
            inside["with x"] = made[0]
        return y

    grad(f, 0)(np.ones(2))
    assert inside["on constants"] == 0
    assert inside["with x"] == 3   # x * c, np.sum, * k


def test_outputs_of_non_differentiable_ops_are_not_traced():
    with counting_var_creation() as made:
        def f(x):
            m = x > 0.5
            i = np.argmax(x)
            f = np.floor(x)
            assert not any(isinstance(v, Var) for v in (m, i, f))
            return np.sum(x * m) + x[i] + np.sum(f)
        g = grad(f, 0)(np.array([0.2, 0.9]))
    np.testing.assert_allclose(g, [0.0, 2.0])
    assert made[0] == 1 + 5   # the lifted input, then *, sum, getitem, +, +
