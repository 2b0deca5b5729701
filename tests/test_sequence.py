"""Sequence models: the WKV recurrence (parallel == recurrent, stable for large keys), the
RWKV cells, and ``scan`` with carried state under grad, vmap and checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

import pycograd as pg
from pycograd.core.errors import PycogradError, ShapeError

rng = np.random.default_rng(0)


def naive_wkv(w, u, k, v):
    """The RWKV-4 definition, summed directly (overflows for large keys)."""
    T = k.shape[-2]
    out = np.zeros_like(v)
    for t in range(T):
        num = np.exp(u + k[..., t, :]) * v[..., t, :]
        den = np.exp(u + k[..., t, :])
        for i in range(t):
            e = np.exp(k[..., i, :] - (t - 1 - i) * w)
            num, den = num + e * v[..., i, :], den + e
        out[..., t, :] = num / den
    return out


def time_mix_weights(C: int, seed: int = 0) -> dict:
    r = np.random.default_rng(seed)
    w = {n: r.uniform(0, 1, C) for n in ("mix_k", "mix_v", "mix_r")}
    w.update(decay=r.normal(size=C), bonus=r.normal(size=C))
    w.update({n: r.normal(size=(C, C)) / np.sqrt(C)
              for n in ("key", "value", "receptance", "output")})
    return w


def test_wkv_matches_the_definition():
    w, u = rng.uniform(0.1, 2, 3), rng.normal(size=3)
    k, v = rng.normal(size=(2, 7, 3)), rng.normal(size=(2, 7, 3))
    np.testing.assert_allclose(pg.wkv(w, u, k, v), naive_wkv(w, u, k, v), rtol=1e-12)


def test_wkv_stays_finite_where_the_definition_overflows():
    w, u = np.full(2, 0.5), np.zeros(2)
    k, v = rng.normal(size=(6, 2)) * 1000.0, rng.normal(size=(6, 2))
    with np.errstate(all="ignore"):
        assert not np.isfinite(naive_wkv(w, u, k, v)).all()
    par = pg.wkv(w, u, k, v)

    def step(s, kv):
        y, s = pg.wkv_step(w, u, kv[0], kv[1], s)
        return s, y
    _, rec = pg.scan(step, None, (k, v), has_output=True)
    assert np.isfinite(par).all()
    np.testing.assert_allclose(rec, par, rtol=0, atol=1e-10)
    g = pg.grad(lambda k: np.sum(pg.wkv(w, u, k, v) ** 2), 0)(k)
    assert np.isfinite(g).all()


def test_rwkv_time_mix_recurrent_equals_parallel_within_1e_10():
    C, T = 8, 40
    w = time_mix_weights(C)
    x = rng.normal(size=(3, T, C))
    par, (last, _) = pg.rwkv_time_mix(x, w)
    assert np.array_equal(last, x[:, -1])
    state, ys = None, []
    for t in range(T):                      # one token per call, O(1) state
        y, state = pg.rwkv_time_mix(x[:, t:t + 1], w, state, recurrent=True)
        ys.append(y)
    assert np.abs(np.concatenate(ys, axis=1) - par).max() <= 1e-10
    chunked, _ = pg.rwkv_time_mix(x, w, recurrent=True)    # whole sequence, scanned
    assert np.abs(chunked - par).max() <= 1e-10
    prompt, state = pg.rwkv_time_mix(x[:, :25], w)          # parallel prompt, then tokens
    rest = [prompt]
    for t in range(25, T):
        y, state = pg.rwkv_time_mix(x[:, t:t + 1], w, state, recurrent=True)
        rest.append(y)
    assert np.abs(np.concatenate(rest, axis=1) - par).max() <= 1e-10


def test_parallel_final_state_equals_the_scanned_state_and_has_its_gradient():
    C, T = 3, 6
    w = time_mix_weights(C, seed=4)
    x = rng.normal(size=(2, T, C))
    _, (_, par) = pg.rwkv_time_mix(x, w)
    _, (_, rec) = pg.rwkv_time_mix(x, w, recurrent=True)
    for a, b in zip(par, rec):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)

    def continued(x, recurrent):      # a loss that reads the state handed on
        _, state = pg.rwkv_time_mix(x, w, recurrent=recurrent)
        return np.sum(pg.rwkv_time_mix(x[:, :1], w, state, recurrent=True)[0] ** 2)
    np.testing.assert_allclose(pg.grad(continued, 0)(x, False), pg.grad(continued, 0)(x, True),
                               rtol=1e-10, atol=1e-12)


def test_rwkv_channel_mix_is_the_same_code_token_by_token():
    C, F, T = 4, 16, 5
    r = np.random.default_rng(1)
    w = dict(mix_k=r.uniform(size=C), mix_r=r.uniform(size=C), key=r.normal(size=(C, F)),
             value=r.normal(size=(F, C)), receptance=r.normal(size=(C, C)))
    x = r.normal(size=(T, C))
    par, _ = pg.rwkv_channel_mix(x, w)
    last, ys = None, []
    for t in range(T):
        y, last = pg.rwkv_channel_mix(x[t:t + 1], w, last)
        ys.append(y)
    np.testing.assert_allclose(np.concatenate(ys), par, rtol=0, atol=1e-12)


def test_parallel_form_refuses_a_state_and_shapes_are_checked():
    w = time_mix_weights(3)
    _, state = pg.rwkv_time_mix(np.ones((2, 3)), w, recurrent=True)
    with pytest.raises(PycogradError, match="recurrent=True"):
        pg.rwkv_time_mix(np.ones((1, 3)), w, state)
    with pytest.raises(ShapeError, match=r"wkv: .*w \(2,\)"):
        pg.wkv(np.ones(2), np.ones(3), np.ones((4, 3)), np.ones((4, 3)))


def test_rwkv_time_mix_gradients_match_finite_differences_both_forms():
    C, T = 3, 4
    w = time_mix_weights(C, seed=2)
    x = rng.normal(size=(T, C))
    for recurrent in (False, True):
        def loss(decay, x, recurrent=recurrent):
            return np.sum(np.sin(pg.rwkv_time_mix(x, {**w, "decay": decay},
                                                  recurrent=recurrent)[0]))
        gd, gx = pg.grad(loss, argnums=(0, 1))(w["decay"], x)
        eps = 1e-6
        for i in range(C):
            d = np.zeros(C)
            d[i] = eps
            fd = (loss(w["decay"] + d, x) - loss(w["decay"] - d, x)) / (2 * eps)
            assert abs(fd - gd[i]) < 1e-7
        assert gx.shape == x.shape


# ---- scan with carried state under grad, vmap and checkpoint ---------------------------
def _gru_loss(weights, xs):
    w_ih, w_hh = weights
    h, hs = pg.scan(lambda h, x: pg.gru_cell(x, h, w_ih, w_hh), np.zeros(4), xs)
    return np.sum(hs ** 2) + np.sum(h)


def _weights(seed=3):
    r = np.random.default_rng(seed)
    return r.normal(size=(12, 2)) / 2, r.normal(size=(12, 4)) / 2


def test_scan_per_sequence_gradients_by_vmap_grad_equal_the_loop():
    weights, xs = _weights(), rng.normal(size=(5, 6, 2))      # 5 sequences of 6 steps
    per = pg.vmap(pg.grad(_gru_loss, 0), in_axes=(None, 0))(weights, xs)
    for b in range(5):
        one = pg.grad(_gru_loss, 0)(weights, xs[b])
        for p, q in zip(per, one):
            np.testing.assert_allclose(p[b], q, rtol=1e-12, atol=1e-12)


def test_scan_with_a_checkpointed_cell_gives_the_same_gradients():
    weights, xs = _weights(), rng.normal(size=(6, 2))

    def loss(weights, xs, cell_wrap):
        w_ih, w_hh = weights
        cell = cell_wrap(lambda s, x: pg.lstm_cell(x, s, w_ih, w_hh))
        (h, c), hs = pg.scan(cell, (np.zeros(3), np.zeros(3)), xs)
        return np.sum(hs ** 2) + np.sum(c)

    weights = (weights[0], weights[1][:, :3])
    plain = pg.grad(loss, 0)(weights, xs, lambda f: f)
    remat = pg.grad(loss, 0)(weights, xs, pg.checkpoint)
    for p, q in zip(plain, remat):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-12)
    per = pg.vmap(pg.grad(loss, 0), in_axes=(None, 0, None))(weights, np.stack([xs, -xs]),
                                                          pg.checkpoint)
    for p, q in zip(per, plain):
        np.testing.assert_allclose(p[0], q, rtol=1e-12, atol=1e-12)


def test_scan_second_order_through_the_carry():
    xs = rng.normal(size=4)

    def f(a):
        return pg.scan(lambda h, x: np.tanh(a * h + x), 0.3, xs)[0]

    h = pg.grad(pg.grad(f, 0), 0)(0.7)
    eps = 1e-5
    fd = (pg.grad(f, 0)(0.7 + eps) - pg.grad(f, 0)(0.7 - eps)) / (2 * eps)
    assert abs(h - fd) < 1e-7


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_rwkv_keeps_low_precision_inputs_low_precision(dtype):
    w = {k: v.astype(dtype) for k, v in time_mix_weights(2).items()}
    x = rng.normal(size=(3, 2)).astype(dtype)
    for recurrent in (False, True):
        y, (last, state) = pg.rwkv_time_mix(x, w, recurrent=recurrent)
        assert y.dtype == dtype and last.dtype == dtype
        assert all(s.dtype == dtype for s in state)
        assert np.isfinite(y).all()
    g = pg.grad(lambda x: np.sum(pg.rwkv_time_mix(x, w)[0]), 0)(x)
    assert g.dtype == dtype


def test_checkpoint_around_a_whole_scan():
    weights, xs = _weights(), rng.normal(size=(6, 2))
    plain = pg.grad(_gru_loss, 0)(weights, xs)
    remat = pg.grad(pg.checkpoint(_gru_loss), 0)(weights, xs)
    for p, q in zip(plain, remat):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-12)


def test_scan_over_a_symbolic_axis_names_scan():
    batch = pg.Dim("batch")
    with pytest.raises(ShapeError, match="scan: the scanned axis 0 has symbolic length"):
        pg.eval_shape(lambda xs: pg.scan(lambda h, x: h + x, np.zeros(3), xs)[0],
                      pg.ShapeDtypeStruct((batch, 3), np.float64))
    out = pg.eval_shape(lambda xs: pg.scan(lambda h, x: h + x, np.zeros(1), xs, axis=1)[1],
                        pg.ShapeDtypeStruct((batch, 4), np.float64))
    assert out.shape[1] == 4


def _composed_gru(x, h, w_ih, w_hh, b_ih, b_hh):
    """The GRU step as separate numpy operations (what ``gru_gates`` fuses)."""
    xg, hg = x @ w_ih.T + b_ih, h @ w_hh.T + b_hh
    H = h.shape[-1]
    r, z = np.split(0.5 + 0.5 * np.tanh(0.5 * (xg[..., :2 * H] + hg[..., :2 * H])), 2, axis=-1)
    n = np.tanh(xg[..., 2 * H:] + r * hg[..., 2 * H:])
    return n + z * (h - n)


def test_gru_cell_is_one_gate_node_per_step_with_the_composed_values_and_gradients():
    x, h = rng.normal(size=(3, 5)), rng.normal(size=(3, 4))
    w = [rng.normal(size=s) for s in ((12, 5), (12, 4), (12,), (12,))]
    np.testing.assert_array_equal(pg.gru_cell(x, h, *w), _composed_gru(x, h, *w))

    def loss(cell, *args):
        return np.sum(np.sin(cell(*args)))
    argnums = tuple(range(1, 7))
    fused = pg.grad(loss, argnums)(pg.gru_cell, x, h, *w)
    composed = pg.grad(loss, argnums)(_composed_gru, x, h, *w)
    for a, b in zip(fused, composed):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)
    graph = pg.capture(lambda x, h: pg.gru_cell(x, h, *w), x, h)
    names = [n.prim.name for n in graph.nodes]
    assert names.count("gru_gates") == 1 and len(names) <= 7, names   # was 23 nodes


def test_gru_cell_with_lstm_shaped_weights_names_gru_cell():
    x, h = np.ones((2, 3)), np.ones((2, 4))
    with pytest.raises(ShapeError, match=r"gru_cell: .*\(\.\.\., 3H\).*\(2, 16\)"):
        pg.gru_cell(x, h, np.ones((16, 3)), np.ones((16, 4)))
