"""Gradients at the kinks of std and of norms: 0 (a valid subgradient, PyTorch's choice)
where the exact slope is infinite, never the NaN of ``sqrt'(0) * 0``; unchanged
elsewhere, at first and second order, under every transform."""

from __future__ import annotations

import numpy as np
import pytest

from pycograd import ShapeDtypeStruct, eval_shape, grad, hessian, jacfwd, jvp, vmap

CONSTANT = np.full(4, 2.5)
ZERO = np.zeros(4)

AT_A_KINK = [
    ("std", np.std, CONSTANT),
    ("std-ddof", lambda x: np.std(x, ddof=1), CONSTANT),
    ("std-axis", lambda x: np.sum(np.std(x, axis=0)), np.ones((3, 2))),
    ("std-float32", np.std, CONSTANT.astype(np.float32)),
    ("nanstd", np.nanstd, np.array([1.0, 1.0, np.nan, 1.0])),
    ("std-where", lambda x: np.std(x, where=np.array([True, True, False, True])),
     np.array([3.0, 3.0, 7.0, 3.0])),
    ("norm", np.linalg.norm, ZERO),
    ("norm-2", lambda x: np.linalg.norm(x, 2), ZERO),
    ("norm-3", lambda x: np.linalg.norm(x, 3), ZERO),
    ("norm-fro", lambda x: np.linalg.norm(x, "fro"), np.zeros((2, 3))),
    ("norm-rows", lambda x: np.sum(np.linalg.norm(x, axis=1)), np.zeros((2, 3))),
]


@pytest.mark.parametrize("name, f, x", AT_A_KINK, ids=[c[0] for c in AT_A_KINK])
def test_gradient_is_zero_at_zero_spread(name, f, x):
    (g,) = grad(f)(x)
    assert np.all(np.isfinite(g) | np.isnan(x)), g
    np.testing.assert_array_equal(np.nan_to_num(g), 0.0)
    assert g.dtype == x.dtype


@pytest.mark.parametrize("name, f, x", AT_A_KINK, ids=[c[0] for c in AT_A_KINK])
def test_forward_mode_and_second_order_are_finite_there(name, f, x):
    t = np.ones_like(x)
    _, tan = jvp(f, (x,), (t,))
    assert np.isfinite(tan) and tan == 0
    if not np.isnan(x).any():
        np.testing.assert_array_equal(hessian(f)(x), 0.0)
        np.testing.assert_array_equal(jacfwd(grad(f, argnums=0))(x), 0.0)


def test_values_and_nan_are_unchanged():
    x = np.array([0.5, -1.0, 2.0])
    assert np.std(x) == pytest.approx(np.std(np.asarray(x)))
    g = grad(np.std, argnums=0)
    with np.errstate(invalid="ignore"):
        assert np.all(np.isnan(g(np.array([1.0, np.nan]))))
    assert np.isnan(np.std(np.array([1.0, np.nan])))


@pytest.mark.parametrize("f", [np.std, np.linalg.norm, lambda x: np.linalg.norm(x, 3)])
def test_away_from_the_kink_first_and_second_order_match_finite_differences(f):
    x = np.array([0.3, -1.2, 0.7, 2.0])
    eps = 1e-6
    fd = np.array([(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(4)])
    np.testing.assert_allclose(grad(f, argnums=0)(x), fd, rtol=1e-6, atol=1e-8)
    g = grad(f, argnums=0)
    fd2 = np.array([(g(x + eps * e) - g(x - eps * e)) / (2 * eps) for e in np.eye(4)])
    np.testing.assert_allclose(hessian(f)(x), fd2, rtol=1e-5, atol=1e-6)


def test_under_vmap_and_eval_shape():
    rows = np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])
    g = vmap(grad(np.std, argnums=0))(rows)
    np.testing.assert_array_equal(g[0], 0.0)
    np.testing.assert_allclose(g[1], grad(np.std, argnums=0)(rows[1]))
    out = eval_shape(lambda x: np.std(x, axis=1), ShapeDtypeStruct((5, 3), np.float32))
    assert out.shape == (5,) and out.dtype == np.float32
