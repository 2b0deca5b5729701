"""pycograd.nn: values against hand-written numpy, gradients against central finite
differences at first and second order (float64, small shapes), and the stability of the
fused forms at extreme inputs."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from scipy.special import erf as sp_erf

from pycograd import grad, nn, random, value_and_grad
from pycograd.core.pytree import tree_flatten

RNG = np.random.default_rng(1234)


def randn(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape)


# ---- the finite-difference check ---------------------------------------------------

def _is_float(a: Any) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind == "f"


def check_grads(fn: Callable, *args: Any, order: int = 2, eps: float = 1e-5,
                rtol: float = 1e-5, atol: float = 1e-7, seed: int = 0) -> None:
    """Assert pycograd's first and second derivatives of ``fn`` against central differences
    along random directions, over every float argument at once.

    Non-scalar outputs are contracted with fixed random weights, so every output element
    matters. Second order compares the Hessian-vector product from grad-of-grad with the
    central difference of the gradient.
    """
    rng = np.random.default_rng(seed)
    outs = tree_flatten(fn(*args))[0]
    weights = [rng.standard_normal(np.shape(o)) for o in outs]
    idx = tuple(i for i, a in enumerate(args) if _is_float(a))
    assert idx, "no float argument to differentiate"

    def loss(*a: Any) -> Any:
        return sum(np.sum(o * w) for o, w in zip(tree_flatten(fn(*a))[0], weights))

    def moved(dirs: list, t: float) -> list:
        out = list(args)
        for i, d in zip(idx, dirs):
            out[i] = args[i] + t * d
        return out

    def dot(gs: tuple, dirs: list) -> float:
        return float(sum(np.sum(g * d) for g, d in zip(gs, dirs)))

    v = [rng.standard_normal(args[i].shape) for i in idx]
    g1 = grad(loss, argnums=idx)(*args)
    for g, i in zip(g1, idx):
        assert np.all(np.isfinite(g)) and np.shape(g) == args[i].shape
    fd1 = (loss(*moved(v, eps)) - loss(*moved(v, -eps))) / (2 * eps)
    np.testing.assert_allclose(dot(g1, v), fd1, rtol=rtol, atol=atol, err_msg="first order")
    if order < 2:
        return
    u = [rng.standard_normal(args[i].shape) for i in idx]

    def gu(*a: Any) -> Any:
        gs = grad(loss, argnums=idx)(*a)
        return sum(np.sum(g * d) for g, d in zip(gs, u))

    hv = grad(gu, argnums=idx)(*args)
    fd2 = (gu(*moved(v, eps)) - gu(*moved(v, -eps))) / (2 * eps)
    np.testing.assert_allclose(dot(hv, v), fd2, rtol=10 * rtol, atol=10 * atol,
                               err_msg="second order")


def test_check_grads_catches_a_wrong_rule():
    from pycograd.core.primitive import Primitive

    wrong = Primitive("wrong_sin", np.sin)  # not registered: the sweep must not see it
    wrong.vjps = (lambda g, ans, x: g * np.cos(x) * 1.01,)
    with pytest.raises(AssertionError):
        check_grads(lambda x: wrong.bind(x), randn(5), order=1)


# ---- hand-written numpy references ---------------------------------------------------

def np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_logsumexp(x, axis=-1, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    r = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return r if keepdims else np.squeeze(r, axis=axis)


def np_log_softmax(x, axis=-1):
    return x - np_logsumexp(x, axis, keepdims=True)


def np_conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Direct loops over output pixels and kernel taps."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    wo = (wd + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    y = np.zeros((n, o, ho, wo))
    og = o // groups
    for g in range(groups):
        xs = xp[:, g * cg:(g + 1) * cg]
        ws = w[g * og:(g + 1) * og]
        for i in range(ho):
            for j in range(wo):
                for a in range(kh):
                    for bb in range(kw):
                        pix = xs[:, :, i * stride + a * dilation, j * stride + bb * dilation]
                        y[:, g * og:(g + 1) * og, i, j] += pix @ ws[:, :, a, bb].T
    return y if b is None else y + b[:, None, None]


UNARY = {
    "relu": (nn.relu, lambda x: np.maximum(x, 0)),
    "leaky_relu": (lambda x: nn.leaky_relu(x, 0.1), lambda x: np.where(x > 0, x, 0.1 * x)),
    "elu": (lambda x: nn.elu(x, 1.5), lambda x: np.where(x > 0, x, 1.5 * (np.exp(x) - 1))),
    "sigmoid": (nn.sigmoid, np_sigmoid),
    "tanh": (nn.tanh, np.tanh),
    "gelu": (nn.gelu, lambda x: x * 0.5 * (1 + sp_erf(x / math.sqrt(2)))),
    "gelu_tanh": (lambda x: nn.gelu(x, approximate="tanh"),
                  lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi)
                                                   * (x + 0.044715 * x ** 3)))),
    "silu": (nn.silu, lambda x: x * np_sigmoid(x)),
    "softplus": (nn.softplus, lambda x: np.log(1 + np.exp(x))),
    "softplus_beta": (lambda x: nn.softplus(x, beta=2.0), lambda x: np.log(1 + np.exp(2 * x)) / 2),
    "softmax": (nn.softmax, lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True)),
    "softmax_ax0": (lambda x: nn.softmax(x, axis=0),
                    lambda x: np.exp(x) / np.exp(x).sum(0, keepdims=True)),
    "log_softmax": (nn.log_softmax, np_log_softmax),
    "logsumexp": (nn.logsumexp, lambda x: np.log(np.exp(x).sum(-1))),
    "logsumexp_all": (lambda x: nn.logsumexp(x, axis=None),
                      lambda x: np.log(np.exp(x).sum())),
    "logsumexp_keep": (lambda x: nn.logsumexp(x, axis=0, keepdims=True),
                       lambda x: np.log(np.exp(x).sum(0, keepdims=True))),
}


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_values_and_grads(name):
    ours, ref = UNARY[name]
    x = randn(3, 4) * 2
    np.testing.assert_allclose(ours(x), ref(x), rtol=1e-12, atol=1e-14)
    check_grads(ours, x)


def test_relu_gradient_is_zero_at_zero():
    np.testing.assert_array_equal(grad(lambda x: np.sum(nn.relu(x)), 0)(np.array([-1., 0, 2])),
                                  [0, 0, 1])


def test_stable_at_extremes():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    ones, label = np.ones(5), np.array(0)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        np.testing.assert_allclose(nn.sigmoid(x), [0, np_sigmoid(-50.0), 0.5, 1, 1], atol=1e-300)
        np.testing.assert_allclose(nn.softplus(x), [0, np.log1p(np.exp(-50.0)), np.log(2),
                                                    50, 1000], rtol=1e-15)
        np.testing.assert_allclose(nn.logsumexp(x), 1000.0)
        np.testing.assert_allclose(nn.log_softmax(x)[-1], 0.0)
    for f in (nn.sigmoid, nn.softplus, nn.silu, nn.gelu, nn.elu, nn.logsumexp,
              lambda x: nn.softmax(x)[0], lambda x: nn.log_softmax(x)[-1],
              lambda x: nn.binary_cross_entropy_with_logits(x, ones),
              lambda x: nn.cross_entropy(x, label)):
        g = grad(lambda x, f=f: np.sum(f(x)), 0)(x)
        h = grad(lambda x, f=f: np.sum(grad(lambda y: np.sum(f(y)), 0)(x)), 0)(x)
        assert np.all(np.isfinite(g)) and np.all(np.isfinite(h))
    np.testing.assert_allclose(grad(lambda x: np.sum(nn.sigmoid(x)), 0)(x)[[0, 2, 4]],
                               [0, 0.25, 0])


def test_logsumexp_gradient_is_softmax_even_with_inf():
    x = np.array([[1.0, -np.inf, 3.0], [2.0, 2.0, 2.0]])
    g = grad(lambda x: np.sum(nn.logsumexp(x)), 0)(x)
    np.testing.assert_allclose(g, nn.softmax(x))
    assert g[0, 1] == 0


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ValueError, match="approximate"):
        nn.gelu(randn(3), approximate="fast")


# ---- losses -------------------------------------------------------------------------

def test_cross_entropy_integer_labels_any_batch_dims():
    logits, labels = randn(2, 3, 5), RNG.integers(0, 5, (2, 3))
    logp = np_log_softmax(logits)
    nll = -np.take_along_axis(logp, labels[..., None], -1)[..., 0]
    np.testing.assert_allclose(nn.cross_entropy(logits, labels), nll.mean())
    np.testing.assert_allclose(nn.cross_entropy(logits, labels, reduction="sum"), nll.sum())
    np.testing.assert_allclose(nn.cross_entropy(logits, labels, reduction="none"), nll)
    check_grads(lambda z: nn.cross_entropy(z, labels), logits)


def test_cross_entropy_class_axis_like_pytorch():
    logits, labels = randn(4, 5, 3), RNG.integers(0, 5, (4, 3))
    moved = np.moveaxis(logits, 1, -1)
    np.testing.assert_allclose(nn.cross_entropy(logits, labels, axis=1),
                               nn.cross_entropy(moved, labels))
    with pytest.raises(ValueError, match="integer labels"):
        nn.cross_entropy(logits, labels)


def test_cross_entropy_soft_targets_and_smoothing():
    logits = randn(4, 6)
    t = np_sigmoid(randn(4, 6))
    t /= t.sum(-1, keepdims=True)
    ref = -(t * np_log_softmax(logits)).sum(-1)
    np.testing.assert_allclose(nn.cross_entropy(logits, t), ref.mean())
    check_grads(lambda z, t: nn.cross_entropy(z, t, label_smoothing=0.2), logits, t)
    labels = RNG.integers(0, 6, 4)
    onehot = np.eye(6)[labels]
    smooth = 0.9 * onehot + 0.1 / 6
    np.testing.assert_allclose(nn.cross_entropy(logits, labels, label_smoothing=0.1),
                               -(smooth * np_log_softmax(logits)).sum(-1).mean())
    np.testing.assert_allclose(nn.cross_entropy(logits, onehot, label_smoothing=0.1),
                               nn.cross_entropy(logits, labels, label_smoothing=0.1))


def test_cross_entropy_ignore_index():
    logits, labels = randn(5, 4), np.array([1, -100, 3, -100, 0])
    keep = labels != -100
    full = nn.cross_entropy(logits[keep], labels[keep], reduction="none")
    np.testing.assert_allclose(nn.cross_entropy(logits, labels, ignore_index=-100), full.mean())
    np.testing.assert_allclose(nn.cross_entropy(logits, labels, ignore_index=-100,
                                                reduction="sum"), full.sum())
    g = grad(lambda z: nn.cross_entropy(z, labels, ignore_index=-100), 0)(logits)
    assert np.all(g[~keep] == 0) and np.all(g[keep] != 0)
    check_grads(lambda z: nn.cross_entropy(z, labels, ignore_index=-100,
                                           label_smoothing=0.1), logits)


def test_binary_cross_entropy_with_logits():
    x, y = randn(3, 4) * 3, (RNG.random((3, 4)) > 0.5).astype(float)
    p = np_sigmoid(x)
    ref = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    np.testing.assert_allclose(nn.binary_cross_entropy_with_logits(x, y), ref.mean())
    pw = np.array([1.0, 2.0, 0.5, 3.0])
    refw = -(pw * y * np.log(p) + (1 - y) * np.log(1 - p))
    np.testing.assert_allclose(nn.binary_cross_entropy_with_logits(x, y, "none", pw), refw)
    check_grads(lambda x: nn.binary_cross_entropy_with_logits(x, y, pos_weight=pw), x)
    with pytest.raises(ValueError, match="reduction"):
        nn.binary_cross_entropy_with_logits(x, y, "avg")


def test_mse_and_huber():
    a, b = randn(4, 3) * 2, randn(4, 3)
    np.testing.assert_allclose(nn.mse(a, b), ((a - b) ** 2).mean())
    d = np.abs(a - b)
    ref = np.where(d < 0.7, 0.5 * d ** 2, 0.7 * (d - 0.35))
    np.testing.assert_allclose(nn.huber(a, b, delta=0.7, reduction="sum"), ref.sum())
    assert (d < 0.7).any() and (d >= 0.7).any()
    check_grads(lambda a, b: nn.mse(a, b), a, b)
    check_grads(lambda a, b: nn.huber(a, b, delta=0.7), a, b)


# ---- normalization ------------------------------------------------------------------

def test_layer_norm_and_rms_norm():
    x, w, b = randn(3, 4, 5), randn(5), randn(5)
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    np.testing.assert_allclose(nn.layer_norm(x, w, b), (x - mu) / np.sqrt(var + 1e-5) * w + b)
    mu2, var2 = x.mean((1, 2), keepdims=True), x.var((1, 2), keepdims=True)
    np.testing.assert_allclose(nn.layer_norm(x, axis=(1, 2)), (x - mu2) / np.sqrt(var2 + 1e-5))
    np.testing.assert_allclose(nn.rms_norm(x, w),
                               x / np.sqrt((x ** 2).mean(-1, keepdims=True) + 1e-6) * w)
    check_grads(nn.layer_norm, x, w, b)
    check_grads(nn.rms_norm, x, w)


def test_batch_norm_train_and_eval():
    x, w, b = randn(6, 3, 2, 2) + 1, randn(3), randn(3)
    rm, rv = np.zeros(3), np.ones(3)
    y, rm2, rv2 = nn.batch_norm(x, rm, rv, w, b, training=True, momentum=0.1)
    mu, var = x.mean((0, 2, 3)), x.var((0, 2, 3))
    ref = (x - mu[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5)
    np.testing.assert_allclose(y, ref * w[:, None, None] + b[:, None, None])
    np.testing.assert_allclose(rm2, 0.1 * mu)
    np.testing.assert_allclose(rv2, 0.9 + 0.1 * x.var((0, 2, 3), ddof=1))
    ye, rm3, rv3 = nn.batch_norm(x, rm2, rv2, w, b, training=False)
    assert rm3 is rm2 and rv3 is rv2
    np.testing.assert_allclose(ye, (x - rm2[:, None, None]) / np.sqrt(rv2[:, None, None] + 1e-5)
                               * w[:, None, None] + b[:, None, None])
    check_grads(lambda x, w, b: nn.batch_norm(x, None, None, w, b)[0], x, w, b)
    check_grads(lambda x, w: nn.batch_norm(x, rm2, rv2, w, None, training=False)[0], x, w)
    # The buffers carry no gradient: only y matters to a loss built on them.
    gx = grad(lambda x: np.sum(nn.batch_norm(x, rm, rv)[1]), 0)(x)
    np.testing.assert_array_equal(gx, 0)


def test_group_norm():
    x, w, b = randn(2, 6, 3, 2), randn(6), randn(6)
    g = x.reshape(2, 3, -1)
    ref = ((g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + 1e-5))
    ref = ref.reshape(x.shape) * w[:, None, None] + b[:, None, None]
    np.testing.assert_allclose(nn.group_norm(x, 3, w, b), ref)
    check_grads(lambda x, w, b: nn.group_norm(x, 3, w, b), x, w, b)
    with pytest.raises(ValueError, match="groups"):
        nn.group_norm(x, 4)


# ---- linear, embedding, attention ---------------------------------------------------

def test_linear():
    x, w, b = randn(2, 3, 4), randn(5, 4), randn(5)
    np.testing.assert_allclose(nn.linear(x, w, b), x @ w.T + b)
    check_grads(nn.linear, x, w, b)


def test_embedding_gather_scatter_add_and_padding():
    table, ids = randn(6, 3), np.array([[1, 2, 1], [0, 5, 1]])
    np.testing.assert_array_equal(nn.embedding(ids, table), table[ids])
    r = randn(2, 3, 3)
    g = grad(lambda t: np.sum(nn.embedding(ids, t) * r), 0)(table)
    ref = np.zeros_like(table)
    np.add.at(ref, ids, r)
    np.testing.assert_allclose(g, ref)
    gp = grad(lambda t: np.sum(nn.embedding(ids, t, padding_idx=1) * r), 0)(table)
    np.testing.assert_array_equal(gp[1], 0)
    np.testing.assert_allclose(np.delete(gp, 1, 0), np.delete(ref, 1, 0))
    np.testing.assert_array_equal(nn.embedding(ids, table, padding_idx=1), table[ids])
    check_grads(lambda t: nn.embedding(ids, t), table)
    with pytest.raises(TypeError, match="integers"):
        nn.embedding(np.array([0.0]), table)


def np_attention(q, k, v, mask=None):
    s = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        s = s + mask
    p = np.exp(s - s.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)) @ v


def test_scaled_dot_product_attention():
    q, k, v = randn(2, 3, 4), randn(2, 5, 4), randn(2, 5, 2)
    mask = np.where(RNG.random((3, 5)) > 0.3, 0.0, -np.inf)
    mask[:, 0] = 0.0
    np.testing.assert_allclose(nn.scaled_dot_product_attention(q, k, v), np_attention(q, k, v))
    np.testing.assert_allclose(nn.scaled_dot_product_attention(q, k, v, mask),
                               np_attention(q, k, v, mask))
    np.testing.assert_allclose(nn.scaled_dot_product_attention(q, k, v, mask == 0),
                               np_attention(q, k, v, mask))
    causal = np.where(np.tril(np.ones((3, 5))) > 0, 0.0, -np.inf)
    np.testing.assert_allclose(nn.scaled_dot_product_attention(q, k, v, is_causal=True),
                               np_attention(q, k, v, causal))
    check_grads(lambda q, k, v: nn.scaled_dot_product_attention(q, k, v, mask), q, k, v)
    check_grads(lambda q, k, v: nn.scaled_dot_product_attention(q, k, v, is_causal=True),
                q, k, v)


def test_multi_head_attention():
    e, h = 6, 2
    x, kv = randn(2, 3, e), randn(2, 4, e)
    ws = [randn(e, e) * 0.5 for _ in range(4)]
    bs = [randn(e) * 0.1 for _ in range(4)]
    out = nn.multi_head_attention(x, kv, kv, h, *ws, *bs)
    q, k, v = (kv_ @ w.T + b for kv_, w, b in zip((x, kv, kv), ws[:3], bs[:3]))
    heads = [np_attention(q[..., i * 3:(i + 1) * 3], k[..., i * 3:(i + 1) * 3],
                          v[..., i * 3:(i + 1) * 3]) for i in range(h)]
    ref = np.concatenate(heads, -1) @ ws[3].T + bs[3]
    np.testing.assert_allclose(out, ref)
    check_grads(lambda x, wq, wk, wv, wo: nn.multi_head_attention(x, x, x, h, wq, wk, wv, wo,
                                                                  is_causal=True), x, *ws)


# ---- convolution and pooling --------------------------------------------------------

CONV_CASES = [
    dict(stride=1, padding=0, dilation=1, groups=1),
    dict(stride=2, padding=1, dilation=1, groups=1),
    dict(stride=1, padding=2, dilation=2, groups=1),
    dict(stride=2, padding=1, dilation=1, groups=2),
]


@pytest.mark.parametrize("kw", CONV_CASES)
def test_conv2d(kw):
    g = kw["groups"]
    x, w, b = randn(2, 4, 7, 6), randn(6, 4 // g, 3, 2), randn(6)
    np.testing.assert_allclose(nn.conv2d(x, w, b, **kw), np_conv2d(x, w, b, **kw), atol=1e-12)
    check_grads(lambda x, w, b: nn.conv2d(x, w, b, **kw), x, w, b)


def np_conv1d(x, w, b, stride, padding, dilation, groups):
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding)))
    o, cg, k = w.shape
    lo = (xp.shape[2] - dilation * (k - 1) - 1) // stride + 1
    y = np.zeros((x.shape[0], o, lo))
    og = o // groups
    for oc in range(o):
        g = oc // og
        for t in range(lo):
            for j in range(k):
                y[:, oc, t] += xp[:, g * cg:(g + 1) * cg, t * stride + j * dilation] @ w[oc, :, j]
    return y if b is None else y + b[:, None]


@pytest.mark.parametrize("kw", [dict(stride=1, padding=0, dilation=1, groups=2),
                                dict(stride=2, padding=1, dilation=2, groups=2),
                                dict(stride=3, padding=2, dilation=1, groups=1)])
def test_conv1d(kw):
    x, w, b = randn(2, 4, 9), randn(6, 4 // kw["groups"], 3), randn(6)
    np.testing.assert_allclose(nn.conv1d(x, w, b, **kw), np_conv1d(x, w, b, **kw), atol=1e-12)
    check_grads(lambda x, w, b: nn.conv1d(x, w, b, **kw), x, w, b)


@pytest.mark.parametrize("kw", [dict(stride=1, padding=0), dict(stride=2, padding=1),
                                dict(stride=2, padding=0, output_padding=1, dilation=2),
                                dict(stride=3, padding=2, groups=2)])
def test_conv_transpose2d_is_the_adjoint_of_conv2d(kw):
    groups, op = kw.get("groups", 1), kw.get("output_padding", 0)
    x, w = randn(2, 4, 3, 4), randn(4, 6 // groups, 3, 3)
    y = nn.conv_transpose2d(x, w, **kw)
    s, p, d = kw["stride"], kw["padding"], kw.get("dilation", 1)
    assert y.shape == (2, 6, (3 - 1) * s - 2 * p + d * 2 + op + 1,
                       (4 - 1) * s - 2 * p + d * 2 + op + 1)
    # <conv_transpose(x), z> == <x, conv(z)> for the forward conv with the same weight.
    z = randn(*y.shape)
    conv = nn.conv2d(z, w, None, s, p, d, groups)
    assert conv.shape == x.shape
    np.testing.assert_allclose(np.sum(y * z), np.sum(x * conv))
    b = randn(6)
    np.testing.assert_allclose(nn.conv_transpose2d(x, w, b, **kw), y + b[:, None, None])
    check_grads(lambda x, w, b: nn.conv_transpose2d(x, w, b, **kw), x, w, b)


def test_pooling():
    x = randn(2, 3, 6, 7)
    ref = x[:, :, :6, :6].reshape(2, 3, 3, 2, 3, 2)
    np.testing.assert_allclose(nn.max_pool2d(x, 2), ref.max((3, 5)))
    np.testing.assert_allclose(nn.avg_pool2d(x, 2), ref.mean((3, 5)))
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    win = np.stack([xp[:, :, i:i + 5:2, j:j + 7:2] for i in range(3) for j in range(3)])
    np.testing.assert_allclose(nn.max_pool2d(x, 3, 2, 1), win.max(0))
    xz = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    winz = np.stack([xz[:, :, i:i + 5:2, j:j + 7:2] for i in range(3) for j in range(3)])
    np.testing.assert_allclose(nn.avg_pool2d(x, 3, 2, 1), winz.mean(0))
    np.testing.assert_allclose(nn.global_avg_pool(x), x.mean((2, 3)))
    for f in (lambda x: nn.max_pool2d(x, 2), lambda x: nn.max_pool2d(x, 3, 2, 1),
              lambda x: nn.avg_pool2d(x, 3, 2, 1), nn.global_avg_pool):
        check_grads(f, x)
    g = grad(lambda x: np.sum(nn.max_pool2d(x, 2)), 0)(x)
    assert g.sum() == 2 * 3 * 9 and set(np.unique(g)) == {0.0, 1.0}


def test_small_cnn_trains_on_8x8_images_in_seconds():
    # Vertical vs horizontal bars in 8x8 images with noise.
    n = 128
    labels = RNG.integers(0, 2, n)
    imgs = 0.3 * RNG.standard_normal((n, 1, 8, 8))
    pos = RNG.integers(1, 7, n)
    for i in range(n):
        if labels[i]:
            imgs[i, 0, :, pos[i]] += 1.0
        else:
            imgs[i, 0, pos[i], :] += 1.0
    params = [0.3 * randn(8, 1, 3, 3), np.zeros(8), 0.3 * randn(2, 8 * 4 * 4), np.zeros(2)]

    def loss(params, x, y):
        w1, b1, w2, b2 = params
        h = nn.max_pool2d(nn.relu(nn.conv2d(x, w1, b1, padding=1)), 2)
        return nn.cross_entropy(nn.linear(np.reshape(h, (len(x), -1)), w2, b2), y)

    step = value_and_grad(loss, argnums=0)
    t0 = time.perf_counter()
    first = None
    for _ in range(60):
        val, gs = step(params, imgs, labels)
        first = val if first is None else first
        params = [p - 0.5 * g for p, g in zip(params, gs)]
    elapsed = time.perf_counter() - t0
    assert loss(params, imgs, labels) < 0.25 * first
    assert elapsed < 10.0


# ---- recurrent cells and scan -------------------------------------------------------

def _rnn_weights(gates: int, i: int = 3, h: int = 4) -> list:
    return [randn(gates * h, i) * 0.5, randn(gates * h, h) * 0.5, randn(gates * h) * 0.1,
            randn(gates * h) * 0.1]


def test_rnn_cells_match_hand_numpy():
    x, h, c = randn(2, 3), randn(2, 4), randn(2, 4)
    wi, wh, bi, bh = _rnn_weights(1)
    np.testing.assert_allclose(nn.rnn_cell(x, h, wi, wh, bi, bh),
                               np.tanh(x @ wi.T + bi + h @ wh.T + bh))
    np.testing.assert_allclose(nn.rnn_cell(x, h, wi, wh, bi, bh, "relu"),
                               np.maximum(x @ wi.T + bi + h @ wh.T + bh, 0))
    check_grads(nn.rnn_cell, x, h, wi, wh, bi, bh)

    wi, wh, bi, bh = _rnn_weights(3)
    gi, gh = x @ wi.T + bi, h @ wh.T + bh
    r = np_sigmoid(gi[:, :4] + gh[:, :4])
    z = np_sigmoid(gi[:, 4:8] + gh[:, 4:8])
    n_ = np.tanh(gi[:, 8:] + r * gh[:, 8:])
    np.testing.assert_allclose(nn.gru_cell(x, h, wi, wh, bi, bh), (1 - z) * n_ + z * h)
    check_grads(nn.gru_cell, x, h, wi, wh, bi, bh)

    wi, wh, bi, bh = _rnn_weights(4)
    gates = x @ wi.T + bi + h @ wh.T + bh
    i_, f_, g_, o_ = (gates[:, k * 4:(k + 1) * 4] for k in range(4))
    c2 = np_sigmoid(f_) * c + np_sigmoid(i_) * np.tanh(g_)
    h2, c2_ = nn.lstm_cell(x, (h, c), wi, wh, bi, bh)
    np.testing.assert_allclose(c2_, c2)
    np.testing.assert_allclose(h2, np_sigmoid(o_) * np.tanh(c2))
    check_grads(lambda x, h, c, *w: nn.lstm_cell(x, (h, c), *w), x, h, c, wi, wh, bi, bh)


def test_scan_runs_a_cell_over_time():
    xs, h0 = randn(5, 2, 3), randn(2, 4)
    w = _rnn_weights(3)
    hT, hs = nn.scan(lambda h, x: nn.gru_cell(x, h, *w), h0, xs)
    h = h0
    for t in range(5):
        h = nn.gru_cell(xs[t], h, *w)
        np.testing.assert_allclose(hs[t], h)
    np.testing.assert_allclose(hT, h)
    # Batch-first with an LSTM: the outputs are the h of each (h, c) carry.
    wl = _rnn_weights(4)
    (h, c), outs = nn.scan(lambda s, x: nn.lstm_cell(x, s, *wl), (h0, h0), np.swapaxes(xs, 0, 1),
                           axis=1)
    assert outs.shape == (2, 5, 4)
    np.testing.assert_allclose(outs[:, -1], h)
    # JAX's convention: the cell returns (carry, y); pytrees of xs.
    total, ys = nn.scan(lambda s, x: (s + x["a"], x["a"] * x["b"]), 0.0,
                        {"a": np.arange(4.0), "b": np.ones(4) * 2}, has_output=True)
    assert total == 6.0
    np.testing.assert_allclose(ys, np.arange(4.0) * 2)
    check_grads(lambda h0, xs, *w: nn.scan(lambda h, x: nn.gru_cell(x, h, *w), h0, xs), h0,
                xs[:3], *w)
    with pytest.raises(ValueError, match="disagree"):
        nn.scan(lambda s, x: s, 0.0, (np.ones(3), np.ones(4)))


# ---- dropout -------------------------------------------------------------------------

def test_dropout_explicit_key():
    x = randn(200, 50)
    k = random.key(0)
    y = nn.dropout(x, 0.3, k)
    np.testing.assert_array_equal(y, nn.dropout(x, 0.3, k))
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(y[kept], x[kept] / 0.7)
    assert not np.array_equal(y, nn.dropout(x, 0.3, random.key(1)))
    assert nn.dropout(x, 0.3, k, training=False) is x
    np.testing.assert_array_equal(nn.dropout(x, 1.0, k), 0)
    g = grad(lambda x: np.sum(nn.dropout(x, 0.3, k)), 0)(x)
    np.testing.assert_allclose(g, kept / 0.7)
    check_grads(lambda x: nn.dropout(x, 0.5, k), x[:3, :4])
    with pytest.raises(ValueError):
        nn.dropout(x, 1.5, k)


# ---- float32 stays float32 -----------------------------------------------------------

def test_float32_in_float32_out():
    x = randn(2, 3, 5, 5).astype(np.float32)
    w = randn(4, 3, 3, 3).astype(np.float32)
    outs = [nn.conv2d(x, w, padding=1), nn.max_pool2d(x, 2, 1, 1), nn.avg_pool2d(x, 3, 2, 1),
            nn.conv_transpose2d(x, np.swapaxes(w, 0, 1), stride=2), nn.gelu(x), nn.sigmoid(x),
            nn.softplus(x), nn.log_softmax(x), nn.layer_norm(x), nn.group_norm(x, 3)]
    for o in outs:
        assert o.dtype == np.float32, o.dtype
    labels = np.array([0, 1])
    g = grad(lambda w: nn.cross_entropy(np.sum(nn.conv2d(x, w), (2, 3)), labels), 0)(w)
    assert g.dtype == np.float32


def test_smooth_activations_differentiate_correctly_at_zero():
    """The stable forms branch at 0: both derivatives there must still be the true ones."""
    cases = {nn.sigmoid: (0.25, 0.0), nn.softplus: (0.5, 0.25), nn.silu: (0.5, 0.5),
             lambda x: nn.elu(x, 2.0): (2.0, None), nn.gelu: (0.5, 2 / math.sqrt(2 * math.pi)),
             lambda x: nn.binary_cross_entropy_with_logits(x, 1.0): (-0.5, 0.25)}
    for f, (d1, d2) in cases.items():
        g = grad(lambda x, f=f: np.sum(f(x)), 0)
        np.testing.assert_allclose(g(np.array(0.0)), d1)
        if d2 is not None:
            np.testing.assert_allclose(grad(g, 0)(np.array(0.0)), d2, atol=1e-15)
