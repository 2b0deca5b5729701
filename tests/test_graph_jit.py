"""``jit``: compiled value+grad programs, retracing, eager fallback, buffer reuse, and
``weights.grad(jit=True)`` / ``train(jit=True)``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import pycograd as pg
from pycograd.graph import CaptureError, capture
from pycograd.graph.jit import JitFallbackWarning, compile_graph, jit

rng = np.random.default_rng(1)
X = rng.standard_normal((16, 6))
Y = np.eye(3)[rng.integers(0, 3, 16)]
P = {"w1": rng.standard_normal((6, 8)) * 0.3, "b1": np.zeros(8),
     "w2": rng.standard_normal((8, 3)) * 0.3}


def loss(p, x, y):
    h = np.tanh(x @ p["w1"] + p["b1"])
    return pg.cross_entropy(h @ p["w2"], y)


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_jit_value_and_grad_matches_eager_and_caches():
    calls = []

    def counted(p, x, y):
        calls.append(1)
        return loss(p, x, y)

    step = jit(pg.value_and_grad(counted, 0))
    v0, g0 = pg.value_and_grad(loss, 0)(P, X, Y)
    for _ in range(3):
        v, g = step(P, X, Y)
        close(v, v0)
        for k in P:
            close(g[k], g0[k])
    assert len(calls) == 1 and len(step.graphs) == 1
    step(P, X[:5], Y[:5])  # a new signature captures again
    assert len(calls) == 2 and len(step.graphs) == 2
    v5, g5 = step(P, X[:5], Y[:5])
    close(v5, loss(P, X[:5], Y[:5]))


def test_program_does_not_bind(monkeypatch):
    """The generated program calls impls directly: no trip through the interpreter."""
    import pycograd.core.trace as trace

    step = jit(pg.value_and_grad(loss, 0))
    step(P, X, Y)

    def boom(*a, **k):
        raise AssertionError("bind called")

    monkeypatch.setattr(trace, "bind", boom)
    monkeypatch.setattr(trace, "apply_impl", boom)
    step(P, X, Y)


def test_buffers_are_reused_and_inputs_untouched():
    def f(x):
        y = np.sin(x) * 2.0 + 1.0
        z = np.exp(y) - y
        return np.tanh(z) @ np.ones((6, 6))

    x = rng.standard_normal((4, 6))
    x0 = x.copy()
    prog = compile_graph(capture(f, x))
    assert "out=" in prog.source
    close(prog(x)[0], f(x))
    close(x, x0)
    out1 = prog(x)[0]
    out2 = prog(x + 1)[0]
    assert out1 is not out2  # outputs are never reused buffers
    close(out1, f(x))


def test_views_are_not_overwritten():
    def f(x):
        a = np.exp(x)
        t = a.T  # a view of a
        b = np.sin(a)  # a dies here only if t is dead too
        return t @ b, a.reshape(-1)

    x = rng.standard_normal((3, 3))
    got = jit(f)(x)
    want = f(x)
    for g, w in zip(got, want):
        close(g, w)


def test_fallback_warns_once_and_strict_raises():
    def branchy(x):
        return x if np.sum(x) > 0 else -x

    j = jit(branchy)
    with pytest.warns(JitFallbackWarning, match="cannot capture"):
        close(j(np.ones(3)), np.ones(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        close(j(-np.ones(3)), np.ones(3))
        close(j(np.ones(3) * 2), np.ones(3) * 2)
    with pytest.raises(CaptureError):
        jit(branchy, strict=True)(np.ones(3))


def test_static_argnums_and_transforms_over_jit():
    def f(x, n):
        for _ in range(n):
            x = np.sin(x)
        return np.sum(x)

    j = jit(f, static_argnums=1)
    x = rng.standard_normal(4)
    close(j(x, 2), f(x, 2))
    close(j(x, 3), f(x, 3))
    close(pg.grad(lambda x: j(x, 2), 0)(x), pg.grad(lambda x: f(x, 2), 0)(x))
    close(pg.vmap(lambda x: j(x, 2))(X[:, :4]), [f(r, 2) for r in X[:, :4]])


def test_weights_grad_and_train_with_jit():
    weights = pg.ParamDict(w=rng.standard_normal((6, 3)) * 0.1, b=pg.frozen[np.ones(3)])
    ns = {"np": np, "pg": pg, "weights": weights}
    exec("def objective(x, y):\n    return pg.cross_entropy(x @ w + b, y)\n", ns)
    weights.bind_globals(ns)
    obj = ns["objective"]
    v0, g0 = weights.grad(obj, X, Y)
    v1, g1 = weights.grad(obj, X, Y, jit=True)
    close(v1, v0)
    close(g1["w"], g0["w"])
    assert g1["b"] is None
    # the frozen entry is an input of the program, not a baked constant
    weights.assign("b", np.zeros(3))
    close(weights.grad(obj, X, Y, jit=True)[0], weights.grad(obj, X, Y)[0])
    w_jit = weights.copy()
    w_eager = weights.copy()
    objectives = []
    for w in (w_jit, w_eager):
        ns2 = {"np": np, "pg": pg, "weights": w}
        exec("def objective(x, y):\n    return pg.cross_entropy(x @ w + b, y)\n", ns2)
        w.bind_globals(ns2)
        objectives.append(ns2["objective"])
    first_j, last_j = pg.train(w_jit, objectives[0], 5, pg.Adam(0.1), X, Y, jit=True)
    first_e, last_e = pg.train(w_eager, objectives[1], 5, pg.Adam(0.1), X, Y)
    close(first_j, first_e)
    np.testing.assert_allclose(last_j, last_e, rtol=1e-10)
    close(w_jit["w"], w_eager["w"])


def test_scratch_buffers_never_leak_into_results():
    """Scratch buffers live across calls: results of one call (and views of them) must
    survive the next call, and concurrent calls must not share scratch."""
    import threading

    def f(x):
        a = np.exp(x) + 1.0
        b = np.sin(a) * a
        return b.reshape(-1), np.tanh(b) @ np.ones((6, 6)), np.sum(b * b)

    j = jit(f)
    x1, x2 = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    r1 = j(x1)
    snapshot = [np.copy(r) for r in r1]
    j(x2)
    for r, s in zip(r1, snapshot):
        close(r, s)
    prog = j.cache[next(iter(j.cache))]
    assert prog.buffers, "intermediates go to scratch buffers"

    errors = []

    def worker(x):
        for _ in range(200):
            for got, want in zip(j(x), f(x)):
                if not np.allclose(got, want, rtol=1e-12):
                    errors.append(1)

    threads = [threading.Thread(target=worker, args=(x,)) for x in (x1, x2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_keyword_arguments_are_inputs():
    def f(x, scale=1.0, shift=None):
        return np.sin(x) * scale + (0 if shift is None else shift)

    j = jit(f)
    x = rng.standard_normal(3)
    close(j(x, scale=2.0), f(x, scale=2.0))
    close(j(x, scale=3.0), f(x, scale=3.0))  # a traced input: same graph, new value
    assert len(j.graphs) == 1
    close(j(x, shift=np.ones(3)), f(x, shift=np.ones(3)))
    assert len(j.graphs) == 2


# ---- the program: fused max/min VJPs, recycled outputs, reductions ----------------------

def _eager_and_jit(f, *args):
    vg = pg.value_and_grad(f, argnums=tuple(range(len(args))))
    return vg(*args), jit(vg)


@pytest.mark.parametrize("op", [np.maximum, np.minimum, np.fmax, np.fmin])
def test_fused_extremum_vjp_splits_ties_like_eager(op):
    """The max/min VJP runs as one fused step that adds the tie term only when a tie
    exists: with and without ties (one compiled program, both branches), against x, a
    literal and another traced operand, it equals the tape's gradients."""
    def f(x, y):
        return np.sum(op(x, 0.0) * 3.0) + np.sum(op(x, y) ** 2)

    x = rng.standard_normal((5, 4))
    y = rng.standard_normal((5, 4))
    tied_x = x.copy()
    tied_x[0, :2] = 0.0           # ties with the literal
    tied_y = y.copy()
    tied_y[1] = tied_x[1]         # ties between the operands
    if op in (np.fmax, np.fmin):
        tied_y[2, 0] = np.nan     # the NaN side loses
    (v0, g0), step = _eager_and_jit(f, x, y)
    for a, b in ((x, y), (tied_x, tied_y), (x, y), (tied_x, y)):
        v0, g0 = pg.value_and_grad(f, argnums=(0, 1))(a, b)
        v, g = step(a, b)
        close(v, v0)
        for got, want in zip(g, g0):
            close(got, want)
    source = step.cache[next(iter(step.cache))].source
    assert "balanced_grad" in source and "equal" not in source.replace("balanced", "")


def test_relu_mlp_program_is_fused():
    def mlp(p, x, y):
        h = np.maximum(x @ p["w1"] + p["b1"], 0)
        z = h @ p["w2"]
        z = z - np.max(z, axis=1, keepdims=True)
        return -np.mean(np.sum(y * (z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))),
                               axis=1))

    step = jit(pg.value_and_grad(mlp, 0))
    xz = X.copy()
    xz[:, 0] = 0.0
    for x in (X, xz):
        v, g = step(P, x, Y)
        v0, g0 = pg.value_and_grad(mlp, 0)(P, x, Y)
        close(v, v0)
        for k in g0:
            close(g[k], g0[k])
    prog = step.cache[next(iter(step.cache))]
    assert "balanced_grad" in prog.source
    assert "broadcast_to" not in prog.source  # left to the consuming ufunc's broadcasting
    assert "greater" not in prog.source


def test_outputs_recycled_only_when_nothing_references_them():
    import weakref

    def f(x):
        return np.exp(x) @ np.ones((6, 6)), np.sum(np.sin(x), axis=0), np.tanh(x) * 2.0

    x = rng.standard_normal((4, 6))
    prog = compile_graph(capture(f, x))
    assert len(prog.out_specs) == 3

    def pooled():
        return {id(a) for _, pools in prog._idle for pool in pools for a in pool}

    def check(got, k):
        for a, b in zip(got, f(x + k)):
            close(a, b)

    r = prog(x)
    kept, view, weak = r[0], r[1][:3], weakref.ref(r[2])
    snapshots = [kept.copy(), view.copy(), r[2].copy()]
    del r
    for k in range(3):  # a held result, a view of one, a weakly referenced one: untouched
        check(prog(x + k), k)
        close(kept, snapshots[0])
        close(view, snapshots[1])
        close(weak(), snapshots[2])
    del kept, view, weak
    prog(x)
    before = pooled()
    r = prog(x - 1)  # the previous results were dropped: their arrays are reused
    assert {id(a) for a in r} <= before
    check(r, -1)
    del r
    # a loop `out = step(...)` holds one old result while making the next: 2 are kept
    out = prog(x)
    for k in range(4):
        ids = pooled()
        out = prog(x + k)
        assert {id(a) for a in out} <= ids
        check(out, k)


def test_reductions_write_into_buffers():
    def f(x):
        m = np.max(x, axis=1, keepdims=True)
        s = np.sum(np.exp(x - m), axis=(0,))
        return np.prod(np.cos(x), axis=0) + s, np.min(x * 2.0, axis=1), \
            np.sum(x > 0, axis=0), np.sum(x)

    x = rng.standard_normal((5, 3))
    prog = compile_graph(capture(f, x))
    assert "axis=" in prog.source and "keepdims=True, out=" in prog.source
    for _ in range(2):
        for got, want in zip(prog(x), f(x)):
            assert np.asarray(got).dtype == np.asarray(want).dtype
            np.testing.assert_array_equal(got, want)
