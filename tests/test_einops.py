"""einops on traced values under every transform, with symbolic dimensions in eval_shape.
(Finite-difference checks of each function in every mode: ``sweep_cases_einops.py``.)"""

from __future__ import annotations

import numpy as np
import pytest

einops = pytest.importorskip("einops")

from einops import einsum, pack, rearrange, reduce, repeat, unpack  # noqa: E402

from pycograd import (  # noqa: E402
    ShapeDtypeStruct,
    ShapeError,
    checkpoint,
    eval_shape,
    grad,
    hessian,
    jvp,
    value_and_grad,
    vmap,
)
from pycograd.core.symbolic import Dim  # noqa: E402

rng = np.random.default_rng(0)
X = rng.standard_normal((4, 6))
W = rng.standard_normal((3, 2))


def attention_like(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Every einops function once: split heads, mix, pool, repeat, pack and unpack."""
    h = rearrange(x, "b (h d) -> b h d", h=2)  # (4, 2, 3)
    y = einsum(h, w, "b h d, d e -> b h e")  # (4, 2, 2)
    pooled = reduce(y, "b h e -> b e", "max") + reduce(y, "b h e -> b e", "mean")
    tiled = repeat(pooled, "b e -> b r e", r=3)
    packed, ps = pack([tiled, y], "b * e")
    a, b = unpack(np.tanh(packed), ps, "b * e")
    return np.sum(a ** 2) + np.sum(b * np.arange(2.0))


def plain(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The same computation in numpy."""
    h = x.reshape(4, 2, 3)
    y = np.einsum("bhd,de->bhe", h, w)
    pooled = y.max(axis=1) + y.mean(axis=1)
    tiled = np.broadcast_to(pooled[:, None, :], (4, 3, 2))
    packed = np.concatenate([tiled, y], axis=1)
    a, b = np.tanh(packed[:, :3]), np.tanh(packed[:, 3:])
    return np.sum(a ** 2) + np.sum(b * np.arange(2.0))


def test_traced_values_are_recognised():
    """Before the backend: RuntimeError 'Tensor type unknown to einops'."""
    v, (gx, gw) = value_and_grad(attention_like)(X, W)
    pv, (px, pw) = value_and_grad(plain)(X, W)
    assert v == pytest.approx(pv, rel=1e-13)
    np.testing.assert_allclose(gx, px, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gw, pw, rtol=1e-12, atol=1e-14)


def test_second_order_and_forward_mode():
    np.testing.assert_allclose(hessian(attention_like, argnums=1)(X, W),
                               hessian(plain, argnums=1)(X, W), rtol=1e-10, atol=1e-12)
    t = rng.standard_normal(X.shape)
    _, tan = jvp(lambda x: attention_like(x, W), (X,), (t,))
    _, ptan = jvp(lambda x: plain(x, W), (X,), (t,))
    assert tan == pytest.approx(ptan, rel=1e-12)


def test_vmap_and_per_example_gradients():
    xs = rng.standard_normal((5, 4, 6))
    per = vmap(grad(attention_like, argnums=1), in_axes=(0, None))(xs, W)
    loop = np.stack([grad(plain, argnums=1)(x, W) for x in xs])
    np.testing.assert_allclose(per, loop, rtol=1e-12, atol=1e-14)
    rows = vmap(lambda r: rearrange(r, "(h d) -> d h", h=2))(X)
    np.testing.assert_array_equal(rows, X.reshape(4, 2, 3).transpose(0, 2, 1))


def test_checkpoint():
    g = grad(checkpoint(attention_like), argnums=(0, 1))(X, W)
    p = grad(plain, argnums=(0, 1))(X, W)
    for a, b in zip(g, p):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_eval_shape_with_symbolic_dims():
    batch = ShapeDtypeStruct(("batch", 6), np.float32)
    out = eval_shape(lambda x: rearrange(x, "b (h d) -> h b d", h=2), batch)
    assert out.shape == (2, Dim("batch"), 3) and out.dtype == np.float32
    out = eval_shape(lambda x: reduce(x, "b (h d) -> b h", "mean", h=2), batch)
    assert out.shape == (Dim("batch"), 2) and out.dtype == np.float32
    out = eval_shape(lambda x: repeat(x, "b d -> b r d", r=4), batch)
    assert out.shape == (Dim("batch"), 4, 6)
    out = eval_shape(lambda x: rearrange(x, "b d -> (b d)"), batch)
    assert out.shape == (6 * Dim("batch"),)
    out = eval_shape(lambda x: reduce(x, "(b two) d -> b d", "sum", two=2),
                     ShapeDtypeStruct((2 * Dim("n"), 6), np.float64))
    assert out.shape == (Dim("n"), 6)
    out = eval_shape(lambda x, w: einsum(x, w, "b d, d e -> b e"), batch,
                     ShapeDtypeStruct((6, 5), np.float32))
    assert out.shape == (Dim("batch"), 5)
    out = eval_shape(lambda x: unpack(pack([x, x], "b *")[0], [(6,), (2, 3)], "b *"), batch)
    assert [o.shape for o in out] == [(Dim("batch"), 6), (Dim("batch"), 2, 3)]
    out = eval_shape(attention_like, ShapeDtypeStruct((4, 6), np.float64),
                     ShapeDtypeStruct((3, 2), np.float64))
    assert out.shape == ()


def test_symbolic_shape_errors_are_not_guessed():
    """Splitting a symbolic axis in chunks that may not divide it is refused, not guessed."""
    with pytest.raises((ShapeError, einops.EinopsError)):
        eval_shape(lambda x: rearrange(x, "(b h) d -> b h d", h=4),
                   ShapeDtypeStruct(("batch", 6), np.float32))


def test_plain_arrays_still_use_einops_numpy_backend():
    from einops._backends import get_backend

    assert get_backend(X).framework_name == "numpy"
    np.testing.assert_array_equal(rearrange(X, "b (h d) -> b h d", h=2), X.reshape(4, 2, 3))
