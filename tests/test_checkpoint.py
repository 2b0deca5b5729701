"""checkpoint (remat): same gradients as the plain function, under every transform, with
the activations dropped on the forward pass (checked structurally and with tracemalloc)."""

from __future__ import annotations

import functools
import time
import tracemalloc

import numpy as np
import pytest

from pycograd import (
    ParamDict,
    checkpoint,
    grad,
    hessian,
    jvp,
    remat,
    value_and_grad,
    vjp,
    vmap,
)

RNG = np.random.default_rng(0)
X = RNG.normal(size=(5, 3))
W1, B1 = RNG.normal(size=(3, 4)), RNG.normal(size=4)
W2 = RNG.normal(size=(4, 2))


def block(h, w, b):
    return np.tanh(h @ w + b)


def net(x, w1, b1, w2, blk=block):
    return np.sum(np.sin(blk(x, w1, b1) @ w2))


def test_remat_is_checkpoint():
    assert remat is checkpoint


def test_identical_gradients():
    plain = grad(net)(X, W1, B1, W2)
    ck = grad(lambda *a: net(*a, blk=checkpoint(block)))(X, W1, B1, W2)
    for a, b in zip(plain, ck):
        np.testing.assert_array_equal(a, b)


def test_value_and_grad_and_argnums():
    v0, g0 = value_and_grad(net, argnums=(1, 2))(X, W1, B1, W2)
    v1, g1 = value_and_grad(lambda *a: net(*a, blk=checkpoint(block)), argnums=(1, 2))(
        X, W1, B1, W2)
    assert v0 == v1
    np.testing.assert_array_equal(g0[0], g1[0])
    np.testing.assert_array_equal(g0[1], g1[1])


def test_forward_records_nothing_and_backward_recomputes_once():
    """f sees plain arrays on the forward pass (so the tape records none of its ops) and
    runs exactly once more, on the tape, in backward."""
    seen = []

    def f(h, w, b):
        seen.append((type(h), type(w)))
        return block(h, w, b)

    value_and_grad(lambda x, w: np.sum(checkpoint(f)(x, w, B1)))(X, W1)
    assert len(seen) == 2
    assert seen[0] == (np.ndarray, np.ndarray)
    assert seen[1][0] is not np.ndarray and seen[1][1] is not np.ndarray
    seen.clear()
    checkpoint(f)(X, W1, B1)
    assert len(seen) == 1


def test_pytree_inputs_outputs_and_kwargs():
    def f(params, x, *, scale):
        h = np.tanh(x @ params["w"] + params["b"])
        return {"h": h * scale, "s": np.sum(h)}

    def loss(params, ck):
        fn = checkpoint(f) if ck else f
        out = fn(params, X, scale=2.0)
        return np.sum(out["h"] ** 2) + out["s"]

    p = {"w": W1, "b": B1}
    want = grad(loss)(p, False)[0]
    got = grad(loss)(p, True)[0]
    assert set(got) == {"w", "b"}
    for k in p:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-13)


def test_integer_argument_passes_through():
    def f(x, n):
        return np.tanh(x) * n

    g = grad(lambda x: np.sum(checkpoint(f)(x, 3)))(X)[0]
    np.testing.assert_allclose(g, 3 * (1 - np.tanh(X) ** 2))
    _, t = jvp(lambda x: checkpoint(f)(x, 3), (X,), (np.ones_like(X),))
    np.testing.assert_allclose(t, 3 * (1 - np.tanh(X) ** 2))


def test_vmap_of_checkpoint_equals_checkpoint_of_vmap():
    xs = RNG.normal(size=(6, 5, 3))
    a = vmap(checkpoint(block), in_axes=(0, None, None))(xs, W1, B1)
    b = checkpoint(vmap(block, in_axes=(0, None, None)))(xs, W1, B1)
    loop = np.stack([block(x, W1, B1) for x in xs])
    np.testing.assert_allclose(a, loop, rtol=1e-14)
    np.testing.assert_allclose(b, loop, rtol=1e-14)
    ga = grad(lambda w: np.sum(vmap(checkpoint(block), in_axes=(0, None, None))(xs, w, B1)))(W1)
    gb = grad(lambda w: np.sum(checkpoint(vmap(block, in_axes=(0, None, None)))(xs, w, B1)))(W1)
    gp = grad(lambda w: np.sum(block(xs, w, B1)))(W1)
    np.testing.assert_allclose(ga[0], gp[0], rtol=1e-12)
    np.testing.assert_allclose(gb[0], gp[0], rtol=1e-12)


def test_per_example_gradients_through_checkpoint():
    per = vmap(grad(lambda w, x: net(x, w, B1, W2, blk=checkpoint(block))), in_axes=(None, 0))
    gw, _ = per(W1, X[:, None, :])
    for i in range(len(X)):
        np.testing.assert_allclose(gw[i], grad(net)(X[i:i + 1], W1, B1, W2)[1], rtol=1e-12)


def test_nested_checkpoints():
    inner = checkpoint(block)

    def two(h, w, b):
        return inner(inner(h, w[:, :3], b[:3]), w[:3], b)

    def plain(h, w, b):
        return block(block(h, w[:, :3], b[:3]), w[:3], b)

    w = RNG.normal(size=(3, 4))
    for outer in (checkpoint(two), checkpoint(checkpoint(two))):
        got = grad(lambda x, w, outer=outer: np.sum(outer(x, w, B1) ** 2))(X, w)
        want = grad(lambda x, w: np.sum(plain(x, w, B1) ** 2))(X, w)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-12)


def test_higher_order():
    ck = checkpoint(block)
    v = RNG.normal(size=W1.shape)

    def f(w, blk):
        return np.sum(np.sin(blk(X, w, B1)))

    gg_ck = grad(lambda w: np.sum(grad(f)(w, ck)[0] * v))(W1)[0]
    gg = grad(lambda w: np.sum(grad(f)(w, block)[0] * v))(W1)[0]
    np.testing.assert_allclose(gg_ck, gg, rtol=1e-12)
    np.testing.assert_allclose(jvp(lambda w: grad(f)(w, ck)[0], (W1,), (v,))[1], gg,
                               rtol=1e-12)
    h_ck = hessian(lambda b: f(W1, lambda x, w, _: ck(x, w, b)))(B1)
    h = hessian(lambda b: f(W1, lambda x, w, _: block(x, w, b)))(B1)
    np.testing.assert_allclose(h_ck, h, rtol=1e-12)


def test_jvp():
    t = RNG.normal(size=X.shape)
    a = jvp(lambda x: checkpoint(block)(x, W1, B1), (X,), (t,))
    b = jvp(lambda x: block(x, W1, B1), (X,), (t,))
    np.testing.assert_allclose(a[0], b[0], rtol=1e-14)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-14)


def test_vjp_pullback_called_twice():
    out, pull = vjp(lambda x: checkpoint(block)(x, W1, B1), X)
    g = RNG.normal(size=out.shape)
    first, second = pull(g)[0], pull(2 * g)[0]
    np.testing.assert_allclose(second, 2 * first, rtol=1e-14)


# ---- hidden inputs: closures, partials, ambient weights ------------------------------

def test_closure_over_traced_weights():
    """The common way to checkpoint a layer: a lambda closing over the loss's weights."""

    def loss(w, b, ck):
        layer = (lambda h: np.tanh(h @ w + b[:3]))
        if ck:
            layer = checkpoint(layer)
        return np.sum(layer(layer(X)) ** 2) + np.sum(b)

    w = RNG.normal(size=(3, 3))
    b = RNG.normal(size=4)
    want = grad(loss)(w, b, False)
    got = grad(loss)(w, b, True)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12)


def test_closure_forward_sees_plain_arrays():
    seen = []

    def loss(params):
        def layer(h):
            seen.append(type(params["w"]))
            return np.tanh(h @ params["w"])
        return np.sum(checkpoint(layer)(X))

    g = grad(loss)({"w": W1})[0]["w"]
    np.testing.assert_allclose(g, grad(lambda w: np.sum(np.tanh(X @ w)))(W1)[0], rtol=1e-13)
    assert seen[0] is np.ndarray and seen[1] is not np.ndarray


def test_closure_under_vmap_and_jvp():
    ws = RNG.normal(size=(4, 3, 4))

    def f(w):
        return np.sum(checkpoint(lambda h: np.tanh(h @ w))(X))

    def plain(w):
        return np.sum(np.tanh(X @ w))

    np.testing.assert_allclose(vmap(f)(ws), [plain(w) for w in ws], rtol=1e-13)
    np.testing.assert_allclose(vmap(grad(f))(ws)[0], vmap(grad(plain))(ws)[0], rtol=1e-12)
    t = RNG.normal(size=(3, 4))
    np.testing.assert_allclose(jvp(f, (W1,), (t,))[1], jvp(plain, (W1,), (t,))[1], rtol=1e-13)


def test_partial_with_traced_arguments():
    g = grad(lambda w: np.sum(checkpoint(functools.partial(block, w=w, b=B1))(X)))(W1)[0]
    np.testing.assert_allclose(g, grad(lambda w: np.sum(block(X, w, B1)))(W1)[0], rtol=1e-13)


def hidden_layer(x):
    return np.tanh(x @ w1 + b1)  # noqa: F821  (ambient weights, bound by ParamDict)


def ln_hidden_layer(x):
    return np.tanh(x @ enc.w + enc.b)  # noqa: F821  (an ambient weight group)


@pytest.fixture
def weights():
    rng = np.random.default_rng(3)
    w = ParamDict(w1=0.5 * rng.normal(size=(3, 4)), b1=np.zeros(4),
                  w2=0.5 * rng.normal(size=(4, 2)))
    return w


def _objective(layer):
    return lambda: np.sum(np.sin(layer(np.sin(X + np.sum(w2)))) @ w2)  # noqa: F821


def test_ambient_weights_bound_by_paramdict_grad(weights):
    """The block reads weights as ambient globals bound by weights.grad; backward
    recomputes after the names are restored, so checkpoint must rebind them."""
    plain = weights.grad(_objective(hidden_layer))
    ck = weights.grad(_objective(checkpoint(hidden_layer)))
    assert "w1" not in globals() and "w2" not in globals()
    np.testing.assert_allclose(ck[0], plain[0], rtol=1e-13)
    for name in ("w1", "b1", "w2"):
        np.testing.assert_allclose(ck[1][name], plain[1][name], rtol=1e-12)


def test_ambient_weights_with_bind_globals(weights):
    weights.bind_globals(globals())
    try:
        plain = weights.grad(_objective(hidden_layer))
        ck = weights.grad(_objective(checkpoint(hidden_layer)))
        # outside grad the names hold the arrays again, and checkpoint runs plainly
        np.testing.assert_allclose(checkpoint(hidden_layer)(X), hidden_layer(X))
    finally:
        weights.unbind_globals(globals())
    for name in ("w1", "b1", "w2"):
        np.testing.assert_allclose(ck[1][name], plain[1][name], rtol=1e-12)


def test_ambient_weight_group():
    rng = np.random.default_rng(4)
    weights = ParamDict({"enc.w": rng.normal(size=(3, 4)), "enc.b": rng.normal(size=4)})
    obj = lambda layer: lambda: np.sum(layer(X) ** 2)  # noqa: E731
    plain = weights.grad(obj(ln_hidden_layer))
    ck = weights.grad(obj(checkpoint(ln_hidden_layer)))
    for name in ("enc.w", "enc.b"):
        np.testing.assert_allclose(ck[1][name], plain[1][name], rtol=1e-12)


def second_layer(h):
    return np.sin(h @ w2)  # noqa: F821


def test_two_blocks_reading_different_ambient_weights(weights):
    """Each checkpointed block takes as hidden inputs only the weights it reads."""
    def obj(a, b):
        return lambda: np.sum(b(a(X)) ** 2)

    plain = weights.grad(obj(hidden_layer, second_layer))
    ck = weights.grad(obj(checkpoint(hidden_layer), checkpoint(second_layer)))
    for name in ("w1", "b1", "w2"):
        np.testing.assert_allclose(ck[1][name], plain[1][name], rtol=1e-12)


def test_ambient_weights_frozen_and_not_traced(weights):
    """A frozen weight is bound to a plain array; the recompute still sees it."""
    from pycograd import frozen

    rng = np.random.default_rng(5)
    w = ParamDict(w1=rng.normal(size=(3, 4)), b1=frozen(rng.normal(size=4)),
                  w2=rng.normal(size=(4, 2)))
    plain = w.grad(_objective(hidden_layer))
    ck = w.grad(_objective(checkpoint(hidden_layer)))
    assert ck[1]["b1"] is None
    np.testing.assert_allclose(ck[1]["w1"], plain[1]["w1"], rtol=1e-12)


# ---- errors --------------------------------------------------------------------------

def test_nondeterministic_shape_is_reported():
    calls = []

    def f(x):
        calls.append(1)
        return x[: len(calls)]

    with pytest.raises(ValueError, match="deterministic"):
        grad(lambda x: np.sum(checkpoint(f)(x)))(np.arange(4.0))


def test_function_errors_surface_unchanged():
    def f(x):
        raise ValueError("my own error")

    with pytest.raises(ValueError, match="my own error"):
        grad(lambda x: np.sum(checkpoint(f)(x)))(X)


# ---- memory --------------------------------------------------------------------------

LAYERS, WIDTH, BATCH = 32, 512, 256


def _deep_mlp():
    rng = np.random.default_rng(0)
    ws = [rng.normal(size=(WIDTH, WIDTH)) / np.sqrt(WIDTH) for _ in range(LAYERS)]
    bs = [0.1 * rng.normal(size=WIDTH) for _ in range(LAYERS)]
    x = rng.normal(size=(BATCH, WIDTH))
    return ws, bs, x


def _peak_and_time(fn, x):
    """Peak traced memory (MiB) and time of ``fn(x)``, after a warm-up on a tiny batch
    (routing plans and caches are built outside the measurement)."""
    fn(x[:2])
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        t0 = time.perf_counter()
        out = fn(x)
        elapsed = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return peak / 2**20, elapsed, out


def test_memory_32_layer_tanh_mlp():
    """Peak traced memory of value_and_grad through a 32-layer tanh MLP (width 512, batch
    256: one activation is 1 MiB), checkpointed per layer vs not.

    The lean tape keeps one activation per layer (tanh's output, which the next matmul
    reads too; the matmul and add outputs are not kept: ~32 MiB, where keeping every
    primitive's output took ~100); per-layer checkpointing keeps the same one (each layer's
    input) plus one layer's recompute, so here it saves nothing: segments do
    (``checkpoint_sequential``). Measured: ~35 vs ~35 MiB."""
    ws, bs, x = _deep_mlp()
    ck_layer = checkpoint(block)

    def loss(layer):
        def f(h):
            for w, b in zip(ws, bs):
                h = layer(h, w, b)
            return np.sum(h * h)
        return value_and_grad(f)

    plain_mb, plain_s, (v0, g0) = _peak_and_time(loss(block), x)
    ck_mb, ck_s, (v1, g1) = _peak_and_time(loss(ck_layer), x)
    print(f"\n32-layer tanh MLP, value_and_grad wrt the input: plain {plain_mb:.1f} MiB "
          f"{plain_s:.3f}s, checkpointed {ck_mb:.1f} MiB {ck_s:.3f}s: "
          f"{plain_mb / ck_mb:.2f}x less memory, {ck_s / plain_s:.2f}x the time")
    assert v0 == v1
    np.testing.assert_array_equal(g0[0], g1[0])
    assert plain_mb < 42  # one 1 MiB activation per layer is on the tape
    assert ck_mb < 42  # one per layer, plus one layer's recompute


def test_memory_residual_layer_norm_blocks():
    """Where checkpointing pays: a residual layer-norm block keeps ~3 activations per layer
    on the lean tape (the centred input, the normalized one and the tanh output), one when
    checkpointed (measured 40.3 vs 19.1 MiB at width 512: 2.1x)."""
    ws, bs, x = _deep_mlp()

    def block(h, w, b):
        mu = np.mean(h, axis=-1, keepdims=True)
        var = np.mean((h - mu) ** 2, axis=-1, keepdims=True)
        return h + np.tanh((h - mu) / np.sqrt(var + 1e-5) @ w + b)

    def loss(layer):
        def f(h):
            for w, b in zip(ws[:12], bs[:12]):
                h = layer(h, w, b)
            return np.sum(h * h)
        return value_and_grad(f)

    plain_mb, _, (v0, g0) = _peak_and_time(loss(block), x)
    ck_mb, _, (v1, g1) = _peak_and_time(loss(checkpoint(block)), x)
    assert v0 == v1
    np.testing.assert_array_equal(g0[0], g1[0])
    print(f"\nresidual layer-norm blocks: {plain_mb:.1f} vs {ck_mb:.1f} MiB")
    assert plain_mb < 48  # the lean tape
    assert plain_mb / ck_mb > 1.8


def test_traced_attribute_is_reported():
    class Layer:
        def __init__(self, w):
            self.w = w

        def __call__(self, h):
            return np.tanh(h @ self.w)

    def loss(w, x):
        return np.sum(checkpoint(Layer(w))(x))

    with pytest.raises(TypeError, match="read a traced value that is not one of its inputs"):
        grad(loss)(W1, X)
