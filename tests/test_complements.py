"""The extra columns of ``svd(full_matrices=True)`` / ``qr(mode='complete')``: numpy's
values, exact gradients for basis-invariant uses, a clear error for basis-dependent ones
(in every mode that sees the cotangent's values), and the gauge of forward mode."""

from __future__ import annotations

import numpy as np
import pytest
from fd import numerical_grad

import pycograd
import pycograd.numpy_api.linalg as LA
from pycograd.core.errors import NoRuleError

la = np.linalg
RNG = np.random.default_rng(11)


def grad(f):
    return pycograd.grad(f, argnums=0)


def mat(*shape: int) -> np.ndarray:
    """Full rank with distinct singular values."""
    m, n = shape[-2:]
    return RNG.uniform(-0.5, 0.5, shape) + np.eye(m, n) * 2.0 ** np.arange(n)


def u_perp(a):
    return la.svd(a).U[..., :, min(np.shape(a)[-2:]):]


def vh_perp(a):
    return la.svd(a).Vh[..., min(np.shape(a)[-2:]):, :]


def q_perp(a):
    return la.qr(a, mode="complete").Q[..., :, np.shape(a)[-1]:]


def test_values_equal_numpy():
    for a in (mat(5, 2), mat(2, 5), mat(3, 4, 2), mat(2, 2, 3)):
        traced, _ = pycograd.vjp(lambda x: tuple(la.svd(x)), a)
        for t, e in zip(traced, la.svd(a)):
            assert np.shape(t) == np.shape(e)
            np.testing.assert_allclose(t, e, atol=1e-12)
        traced, _ = pycograd.vjp(lambda x: tuple(la.qr(x, mode="complete")), a)
        for t, e in zip(traced, la.qr(a, mode="complete")):
            assert np.shape(t) == np.shape(e)
            np.testing.assert_allclose(t, e, atol=1e-12)


BASIS_DEPENDENT = [
    ("svd-U", lambda x: np.sum(u_perp(x)), (5, 2), r"svd\(full_matrices=True\).*U\[",
     "full_matrices=False"),
    ("svd-Vh", lambda x: np.sum(vh_perp(x) ** 3), (2, 5), r"svd\(full_matrices=True\).*Vh\[",
     "full_matrices=False"),
    ("qr", lambda x: np.sum(q_perp(x)[..., 0, :]), (2, 5, 3), r"qr\(mode='complete'\)",
     "mode='reduced'"),
]


@pytest.mark.parametrize("name, f, shape, op, instead", BASIS_DEPENDENT,
                         ids=[c[0] for c in BASIS_DEPENDENT])
def test_basis_dependent_loss_raises(name, f, shape, op, instead):
    a = mat(*shape)
    with pytest.raises(NoRuleError, match=op) as info:
        grad(f)(a)
    assert "basis" in str(info.value) and instead in str(info.value)
    with pytest.raises(NoRuleError, match=op):  # per-example gradients see the values too
        pycograd.vmap(grad(f))(np.stack([a, a + 0.1]))
    with pytest.raises(NoRuleError, match=op):  # forward-over-reverse
        pycograd.jvp(grad(f), (a,), (np.ones_like(a),))


INVARIANT = {
    "svd-tall-projector": (lambda x, w: np.sum(w[:5, :5] * (lambda n: n @ n.T)(u_perp(x))),
                           (5, 2)),
    "svd-tall-norm": (lambda x, w: la.norm(u_perp(x).T @ w[:4, 0]), (4, 2)),
    "svd-wide-norms": (lambda x, w: np.sum(la.norm(vh_perp(x) @ w[:5, :2], axis=0) ** 3),
                       (2, 5)),
    "svd-full-U": (lambda x, w: np.sum(w[:4, :4] * (lambda u: (u * [1.0, 2.0, 3.0, 3.0])
                                                    @ u.T)(la.svd(x).U)), (4, 2)),
    "qr-projector-stacked": (lambda x, w: np.sum(w[:5, :5] * (lambda n: n @ np.swapaxes(
        n, -1, -2))(q_perp(x))), (2, 5, 2)),
    "svd-one-column": (lambda x, w: np.sum(u_perp(x) * w[:4, :1]), (4, 3)),
    "qr-one-column": (lambda x, w: np.sum(q_perp(x) * w[:3, :1]), (3, 2)),
}


@pytest.mark.parametrize("name", list(INVARIANT))
def test_invariant_loss_matches_finite_differences(name):
    f, shape = INVARIANT[name]
    a, w = mat(*shape), RNG.standard_normal((5, 5))
    g = grad(lambda x: f(x, w))(a)
    expected = numerical_grad(lambda x: f(x, w), [a], 1e-6)[0]
    np.testing.assert_allclose(g, expected, rtol=1e-6, atol=1e-8)


def test_projector_gradient_equals_thin_formula():
    """``U_perp U_perp^T = I - U U^T``: both routes give the same gradient."""
    a, w = mat(6, 2), RNG.standard_normal((6, 6))
    via_perp = grad(lambda x: np.sum(w * (lambda n: n @ n.T)(u_perp(x))))(a)
    via_thin = grad(lambda x: -np.sum(w * (lambda u: u @ u.T)(la.svd(x, False).U)))(a)
    np.testing.assert_allclose(via_perp, via_thin, atol=1e-12)


def test_unused_complement_is_zero_and_abstract_gradient_has_shapes():
    a = mat(5, 2)
    g = grad(lambda x: np.sum(la.qr(x, mode="complete").Q[:, :2] ** 3))(a)
    np.testing.assert_allclose(g, grad(lambda x: np.sum(la.qr(x).Q ** 3))(a), atol=1e-13)
    shaped = pycograd.eval_shape(grad(lambda x: np.sum(u_perp(x))),
                                 pycograd.ShapeDtypeStruct((5, 2)))
    assert tuple(shaped.shape) == (5, 2)  # no values: the check cannot run, shapes can


@pytest.mark.parametrize("shape", [(5, 2), (2, 5)], ids=["tall-U", "wide-Vh"])
def test_forward_mode_gauge(shape):
    """jvp gives the tangent with no rotation in the complement: ``N^T dN = 0`` and
    ``Q^T dN = -dQ^T N`` (``Q`` the thin factor), whatever the output is used for."""
    a, t = mat(*shape), RNG.standard_normal(shape)
    k = min(shape)

    def cols(x):  # the full U (tall) or the full V (wide), as columns
        r = la.svd(x)
        return r.U if shape[0] > shape[1] else r.Vh.T

    full, dfull = pycograd.jvp(cols, (a,), (t,))
    q, n, dq, dn = full[:, :k], full[:, k:], dfull[:, :k], dfull[:, k:]
    np.testing.assert_allclose(n.T @ dn, 0, atol=1e-12)
    np.testing.assert_allclose(q.T @ dn, -(dq.T @ n), atol=1e-12)
    eps = 1e-6  # the thin factor's own tangent, by differences
    fd = (cols(a + eps * t)[:, :k] - cols(a - eps * t)[:, :k]) / (2 * eps)
    np.testing.assert_allclose(dq, fd, atol=1e-7)


def test_complex_refused(monkeypatch):
    """Complex inputs stay refused on the complement paths, even once thin svd and qr
    accept them."""
    monkeypatch.setattr(LA, "COMPLEX_OK", LA.COMPLEX_OK | {"svd", "qr"})
    for f in (lambda x: la.svd(x * (1 + 1j)).S, lambda x: la.qr(x * (1 + 1j), "complete").R):
        with pytest.raises(NoRuleError, match="complex .*extra columns"):
            grad(lambda x, f=f: np.real(np.sum(f(x))))(mat(4, 2))
