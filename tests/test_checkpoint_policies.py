"""Checkpoint policies (what a checkpoint keeps: nothing, matrix products, named values)
and ``checkpoint_sequential`` (segments of layers), with grad, vmap, jvp and
``weights.grad`` (issue 12, item 3)."""

import tracemalloc
from contextlib import contextmanager

import numpy as np
import pytest

from pycograd import (
    CheckpointPolicyError,
    ParamDict,
    PycogradError,
    checkpoint,
    checkpoint_name,
    checkpoint_sequential,
    grad,
    jvp,
    value_and_grad,
    vjp,
    vmap,
)
from pycograd.core.primitive import REGISTRY
from pycograd.ops.elementwise import UFUNC_PRIMS
from pycograd.transforms.checkpoint import segment_bounds

rng = np.random.default_rng(0)
X = rng.normal(size=(5, 4))
WS = [rng.normal(size=(4, 4)) / 2 for _ in range(7)]


@contextmanager
def counting(prim):
    """Count how often ``prim`` really computes (its ``impl`` runs)."""
    calls = [0]
    impl = prim.impl

    def counted(*a, **k):
        calls[0] += 1
        return impl(*a, **k)
    prim.impl = counted
    try:
        yield calls
    finally:
        prim.impl = impl


def block(h, w):
    return np.sin(np.tanh(h @ w) @ w.T)


def _loss(layer):
    return lambda x, w: np.sum(layer(x, w) ** 2)


def test_dots_policy_keeps_matmul_outputs():
    """Backward of a "dots" checkpoint recomputes no matrix product: exactly the two
    forward matmuls fewer than with nothing kept, and the same gradients."""
    plain = grad(_loss(block))(X, WS[0])
    counts = {}
    for policy in (None, "dots"):
        _, pullback = vjp(_loss(checkpoint(block, policy=policy)), X, WS[0])
        with counting(REGISTRY["matmul"]) as calls:  # on the tape: the recompute's ops
            g = pullback(1.0)
        counts[policy] = calls[0]
        for a, b in zip(g, plain):
            np.testing.assert_allclose(a, b, rtol=1e-13)
    assert counts == {None: 2, "dots": 0}


def test_named_policy_keeps_tagged_values():
    def tagged(h, w):
        return np.tanh(checkpoint_name(np.sin(h @ w), "s"))

    plain = grad(_loss(tagged))(X, WS[0])
    counts = {}
    for policy in (None, ("s",), ("other",)):
        _, pullback = vjp(_loss(checkpoint(tagged, policy=policy)), X, WS[0])
        with counting(UFUNC_PRIMS[np.sin]) as calls:
            g = pullback(1.0)
        counts[policy] = calls[0]
        for a, b in zip(g, plain):
            np.testing.assert_allclose(a, b, rtol=1e-13)
    assert counts == {None: 1, ("s",): 0, ("other",): 1}


def test_callable_policy():
    keep_tanh = checkpoint(block, policy=lambda name, params: name == "tanh")
    _, pullback = vjp(_loss(keep_tanh), X, WS[0])
    with counting(UFUNC_PRIMS[np.tanh]) as calls:
        g = pullback(1.0)
    assert calls[0] == 0
    np.testing.assert_allclose(g[1], grad(_loss(block))(X, WS[0])[1], rtol=1e-13)


@pytest.mark.parametrize("policy", ["everything", 3, ("a", 1)])
def test_unknown_policy_is_refused(policy):
    with pytest.raises(CheckpointPolicyError, match="unknown policy"):
        checkpoint(block, policy=policy)


def test_recompute_that_runs_other_ops_is_refused():
    runs = [0]

    def fickle(h, w):
        runs[0] += 1
        h = h @ w
        return np.tanh(h @ w) if runs[0] > 1 else np.tanh(h)

    with pytest.raises(PycogradError, match="same ops"):
        grad(_loss(checkpoint(fickle, policy="dots")))(X, WS[0])


@pytest.mark.parametrize("policy", [None, "dots"])
def test_policies_compose_with_transforms(policy):
    ck = checkpoint(block, policy=policy)
    f = _loss(ck)
    ref = _loss(block)
    # second order, per-example gradients, forward mode
    hv = grad(lambda w: np.sum(grad(f, 1)(X, w) * WS[1]))(WS[0])
    hv0 = grad(lambda w: np.sum(grad(ref, 1)(X, w) * WS[1]))(WS[0])
    np.testing.assert_allclose(hv, hv0, rtol=1e-10)
    per = vmap(grad(f, 1), in_axes=(0, None))(X[:, None], WS[0])
    per0 = vmap(grad(ref, 1), in_axes=(0, None))(X[:, None], WS[0])
    np.testing.assert_allclose(per, per0, rtol=1e-12)
    t = jvp(lambda x: ck(x, WS[0]), (X,), (np.ones_like(X),))
    t0 = jvp(lambda x: block(x, WS[0]), (X,), (np.ones_like(X),))
    np.testing.assert_allclose(t[1], t0[1], rtol=1e-12)


# ---- checkpoint_sequential --------------------------------------------------------------

def _layers(ws):
    return [lambda h, w=w: np.tanh(h @ w) for w in ws]


def _traced_layers(ws):
    def make(w):
        return lambda h: np.tanh(h @ w + 0.1)  # w is a closure cell: traced under grad
    return [make(w) for w in ws]


def _chain(h, fs):
    for f in fs:
        h = f(h)
    return h


def test_segment_bounds():
    assert segment_bounds(32, 6) == [(0, 6), (6, 12), (12, 17), (17, 22), (22, 27), (27, 32)]
    assert segment_bounds(3, 3) == [(0, 1), (1, 2), (2, 3)]


@pytest.mark.parametrize("segments", [1, 2, 3, 7])
@pytest.mark.parametrize("policy", [None, "dots"])
def test_sequential_matches_plain(segments, policy):
    def loss(ws, x, seq):
        fs = _traced_layers(ws)
        h = checkpoint_sequential(fs, segments, policy)(x) if seq else _chain(x, fs)
        return np.sum(h ** 2)

    (gw, gx), (gw0, gx0) = grad(loss)(WS, X, True)[:2], grad(loss)(WS, X, False)[:2]
    np.testing.assert_allclose(gx, gx0, rtol=1e-12)
    for a, b in zip(gw, gw0):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_sequential_recomputes_all_but_the_last_segment():
    fs = _layers(WS)  # 7 layers, 3 segments: 3 + 2 recomputed, 2 not
    _, pullback = vjp(lambda x: np.sum(checkpoint_sequential(fs, 3)(x)), X)
    with counting(REGISTRY["matmul"]) as calls:
        pullback(1.0)
    assert calls[0] == 5


def test_sequential_composes_with_vmap_and_jvp():
    net = checkpoint_sequential(_layers(WS), 3)
    ref = lambda h: _chain(h, _layers(WS))  # noqa: E731
    per = vmap(grad(lambda x: np.sum(net(x) ** 2)))(X)
    per0 = vmap(grad(lambda x: np.sum(ref(x) ** 2)))(X)
    np.testing.assert_allclose(per, per0, rtol=1e-12)
    np.testing.assert_allclose(grad(lambda x: np.sum(vmap(net)(x) ** 2))(X),
                               grad(lambda x: np.sum(ref(x) ** 2))(X), rtol=1e-12)
    t = jvp(net, (X,), (np.ones_like(X),))[1]
    np.testing.assert_allclose(t, jvp(ref, (X,), (np.ones_like(X),))[1], rtol=1e-12)
    hv = grad(lambda x: np.sum(grad(lambda y: np.sum(net(y) ** 2), 0)(x) * X), 0)(X)
    hv0 = grad(lambda x: np.sum(grad(lambda y: np.sum(ref(y) ** 2), 0)(x) * X), 0)(X)
    np.testing.assert_allclose(hv, hv0, rtol=1e-10)


def l0(h):
    return np.tanh(h @ w0)  # noqa: F821  (ambient weights, bound by ParamDict)


def l1(h):
    return np.tanh(h @ w1)  # noqa: F821


def l2(h):
    return np.sin(h @ w2)  # noqa: F821


def test_sequential_with_paramdict_weights():
    weights = ParamDict(w0=WS[0], w1=WS[1], w2=WS[2])
    seq = checkpoint_sequential([l0, l1, l2], 2)
    ck = weights.grad(lambda: np.sum(seq(X) ** 2))
    plain = weights.grad(lambda: np.sum(l2(l1(l0(X))) ** 2))
    np.testing.assert_allclose(ck[0], plain[0], rtol=1e-13)
    for name in ("w0", "w1", "w2"):
        np.testing.assert_allclose(ck[1][name], plain[1][name], rtol=1e-12)


@pytest.mark.parametrize("segments", [0, 8, 2.0, True])
def test_bad_segments_are_refused(segments):
    with pytest.raises(CheckpointPolicyError, match="segments"):
        checkpoint_sequential(_layers(WS), segments)


def _peak_mib(fn, x):
    fn(x[:2])
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        fn(x)
        return (tracemalloc.get_traced_memory()[1] - base) / 2**20
    finally:
        tracemalloc.stop()


def test_sqrt_segments_memory_on_32_layer_mlp():
    """32 layers of tanh(h @ w + b), 1 MiB activations, gradient wrt the input: the lean
    plain tape holds one activation per layer (~35 MiB); sqrt(L) ~ 6 segments hold the
    segment inputs plus one segment's recompute (~13 MiB): >= 2.5x less."""
    r = np.random.default_rng(1)
    ws = [(r.normal(size=(256, 256)) / 16, 0.1 * r.normal(size=256)) for _ in range(32)]
    x = r.normal(size=(512, 256))
    fs = [lambda h, w=w, b=b: np.tanh(h @ w + b) for w, b in ws]
    plain = _peak_mib(value_and_grad(lambda h: np.sum(_chain(h, fs) ** 2)), x)
    seg = _peak_mib(value_and_grad(lambda h: np.sum(checkpoint_sequential(fs, 6)(h) ** 2)), x)
    print(f"\n32-layer MLP: plain {plain:.1f} MiB, 6 segments {seg:.1f} MiB")
    assert plain / seg >= 2.5, (plain, seg)
