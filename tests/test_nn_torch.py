"""pycograd.nn against torch.nn.functional, values and first-order gradients (float64).
Skipped when torch is not installed."""

from __future__ import annotations

import numpy as np
import pytest

from pycograd import grad, nn

torch = pytest.importorskip("torch")
F = torch.nn.functional

RNG = np.random.default_rng(7)


def randn(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape)


def compare(ours, theirs, *args, int_args=(), rtol=1e-10, atol=1e-12):
    """Same value and same gradient of ``sum(out * r)`` w.r.t. every float argument."""
    out = ours(*args)
    targs = [torch.tensor(a, requires_grad=i not in int_args) for i, a in enumerate(args)]
    tout = theirs(*targs)
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=rtol, atol=atol)
    r = RNG.standard_normal(np.shape(out))
    idx = tuple(i for i in range(len(args)) if i not in int_args)
    gs = grad(lambda *a: np.sum(ours(*a) * r), argnums=idx)(*args)
    tgs = torch.autograd.grad((tout * torch.tensor(r)).sum(), [targs[i] for i in idx])
    for g, tg in zip(gs, tgs):
        np.testing.assert_allclose(g, tg.numpy(), rtol=1e-9, atol=1e-11)


ACTIVATIONS = [
    (nn.relu, F.relu), (lambda x: nn.leaky_relu(x, 0.2), lambda x: F.leaky_relu(x, 0.2)),
    (lambda x: nn.elu(x, 0.7), lambda x: F.elu(x, 0.7)), (nn.sigmoid, torch.sigmoid),
    (nn.gelu, F.gelu), (lambda x: nn.gelu(x, "tanh"), lambda x: F.gelu(x, approximate="tanh")),
    (nn.silu, F.silu), (lambda x: nn.softplus(x, 2.0), lambda x: F.softplus(x, 2.0)),
    (nn.softmax, lambda x: F.softmax(x, -1)), (nn.log_softmax, lambda x: F.log_softmax(x, -1)),
    (lambda x: nn.logsumexp(x, 0), lambda x: torch.logsumexp(x, 0)),
]


@pytest.mark.parametrize("pair", ACTIVATIONS, ids=lambda p: getattr(p, "__name__", "f"))
def test_activations(pair):
    compare(*pair, randn(4, 5) * 3)


def test_losses():
    logits, labels = randn(6, 4), RNG.integers(0, 4, 6)
    labels[2] = -100
    for kw in (dict(), dict(label_smoothing=0.1), dict(reduction="sum"), dict(reduction="none")):
        compare(lambda z, y, kw=kw: nn.cross_entropy(z, y, ignore_index=-100, **kw),
                lambda z, y, kw=kw: F.cross_entropy(z, y, ignore_index=-100, **kw),
                logits, labels, int_args=(1,))
    soft = np.abs(randn(6, 4))
    soft /= soft.sum(-1, keepdims=True)
    compare(lambda z, t: nn.cross_entropy(z, t, label_smoothing=0.2),
            lambda z, t: F.cross_entropy(z, t, label_smoothing=0.2), logits, soft)
    x3, y3 = randn(2, 5, 3), RNG.integers(0, 5, (2, 3))
    compare(lambda z, y: nn.cross_entropy(z, y, axis=1), F.cross_entropy, x3, y3,
            int_args=(1,))
    y = (RNG.random((6, 4)) > 0.5) * 1.0
    pw = np.abs(randn(4)) + 0.5
    compare(lambda z, t: nn.binary_cross_entropy_with_logits(z, t, pos_weight=pw),
            lambda z, t: F.binary_cross_entropy_with_logits(z, t, pos_weight=torch.tensor(pw)),
            logits * 3, y)
    compare(nn.mse, F.mse_loss, logits, soft)
    compare(lambda a, b: nn.huber(a, b, 0.5), lambda a, b: F.huber_loss(a, b, delta=0.5),
            logits, soft)


def test_norms():
    x = randn(4, 6, 3, 3)
    compare(lambda x, w, b: nn.layer_norm(x, w, b, axis=(-2, -1)),
            lambda x, w, b: F.layer_norm(x, (3, 3), w, b), x, randn(3, 3), randn(3, 3))
    compare(lambda x, w: nn.rms_norm(x, w, eps=1e-6),
            lambda x, w: F.rms_norm(x, (3,), w, eps=1e-6), x, randn(3))
    compare(lambda x, w, b: nn.group_norm(x, 2, w, b), lambda x, w, b: F.group_norm(x, 2, w, b),
            x, randn(6), randn(6))
    rm, rv = randn(6), np.abs(randn(6)) + 0.5
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    compare(lambda x, w, b: nn.batch_norm(x, rm, rv, w, b, momentum=0.3)[0],
            lambda x, w, b: F.batch_norm(x, trm, trv, w, b, training=True, momentum=0.3),
            x, randn(6), randn(6))
    _, nrm, nrv = nn.batch_norm(x, rm, rv, momentum=0.3)
    # compare() ran torch's batch_norm once, which updated trm/trv in place.
    np.testing.assert_allclose(nrm, trm.numpy())
    np.testing.assert_allclose(nrv, trv.numpy())
    compare(lambda x: nn.batch_norm(x, rm, rv, training=False)[0],
            lambda x: F.batch_norm(x, torch.tensor(rm), torch.tensor(rv), training=False), x)


@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1), dict(dilation=2, padding=2),
                                dict(groups=2, stride=(2, 1), padding=(0, 1))])
def test_conv_and_transpose(kw):
    x, w, b = randn(2, 4, 7, 8), randn(6, 4 // kw.get("groups", 1), 3, 3), randn(6)
    compare(lambda x, w, b: nn.conv2d(x, w, b, **kw), lambda x, w, b: F.conv2d(x, w, b, **kw),
            x, w, b)
    w1 = randn(6, 4 // kw.get("groups", 1), 3)
    kw1 = {k: (v[0] if isinstance(v, tuple) else v) for k, v in kw.items()}
    compare(lambda x, w, b: nn.conv1d(x, w, b, **kw1), lambda x, w, b: F.conv1d(x, w, b, **kw1),
            x[:, :, 0], w1, b)
    wt = randn(4, 6 // kw.get("groups", 1), 3, 3)
    compare(lambda x, w, b: nn.conv_transpose2d(x, w, b, **kw),
            lambda x, w, b: F.conv_transpose2d(x, w, b, **kw), x, wt, b)


def test_conv_transpose_output_padding():
    x, w = randn(1, 2, 3, 3), randn(2, 3, 3, 3)
    compare(lambda x, w: nn.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1),
            lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1), x, w)


def test_pools():
    x = randn(2, 3, 7, 6)
    for args in ((2,), (3, 2, 1), ((3, 2), (1, 2), (1, 0))):
        compare(lambda x, a=args: nn.max_pool2d(x, *a), lambda x, a=args: F.max_pool2d(x, *a), x)
        compare(lambda x, a=args: nn.avg_pool2d(x, *a), lambda x, a=args: F.avg_pool2d(x, *a), x)
    compare(lambda x: nn.max_pool2d(x, 2, 1, 0, 2),
            lambda x: F.max_pool2d(x, 2, 1, 0, dilation=2), x)
    compare(nn.global_avg_pool, lambda x: F.adaptive_avg_pool2d(x, 1)[..., 0, 0], x)


def test_attention_embedding_linear():
    q, k, v = randn(2, 2, 3, 4), randn(2, 2, 5, 4), randn(2, 2, 5, 4)
    mask = randn(3, 5)
    compare(lambda q, k, v: nn.scaled_dot_product_attention(q, k, v, mask),
            lambda q, k, v: F.scaled_dot_product_attention(q, k, v, torch.tensor(mask)), q, k, v)
    compare(lambda q, k, v: nn.scaled_dot_product_attention(q, k, v, is_causal=True),
            lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), q, k, v)
    e, h = 8, 2
    x = randn(5, 2, e)  # torch's (L, N, E) layout
    win, bin_, wo, bo = randn(3 * e, e) * 0.4, randn(3 * e) * 0.1, randn(e, e) * 0.4, randn(e)

    def ours(x, win, bin_, wo, bo):
        xb = np.swapaxes(x, 0, 1)
        ws, bs = np.split(win, 3, axis=0), np.split(bin_, 3)
        out = nn.multi_head_attention(xb, xb, xb, h, *ws, wo, *bs, bo)
        return np.swapaxes(out, 0, 1)

    def theirs(x, win, bin_, wo, bo):
        return F.multi_head_attention_forward(x, x, x, e, h, win, bin_, None, None, False, 0.0,
                                              wo, bo, need_weights=False)[0]

    compare(ours, theirs, x, win, bin_, wo, bo)
    ids = RNG.integers(0, 6, (3, 4))
    compare(lambda t: nn.embedding(ids, t, padding_idx=2),
            lambda t: F.embedding(torch.tensor(ids), t, padding_idx=2), randn(6, 3))
    compare(nn.linear, F.linear, randn(3, 4), randn(5, 4), randn(5))


_CELL_WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


@pytest.mark.parametrize("name", ["RNNCell", "GRUCell", "LSTMCell"])
def test_cells(name):
    x, hh, c = randn(3, 4), randn(3, 5), randn(3, 5)
    cell = getattr(torch.nn, name)(4, 5, dtype=torch.float64)
    ws = [getattr(cell, k).detach().numpy().copy() for k in _CELL_WEIGHTS]

    def theirs(x, h, *w):
        return torch.func.functional_call(cell, dict(zip(_CELL_WEIGHTS, w)), (x, h))

    if name == "LSTMCell":
        compare(lambda x, h, c, *w: np.stack(nn.lstm_cell(x, (h, c), *w)),
                lambda x, h, c, *w: torch.stack(theirs(x, (h, c), *w)), x, hh, c, *ws)
    else:
        compare(nn.rnn_cell if name == "RNNCell" else nn.gru_cell, theirs, x, hh, *ws)
