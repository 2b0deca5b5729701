"""numpy.linalg / scipy.linalg beyond the sweep: dtypes, result types, errors where a
derivative does not exist, degenerate spectra, batching against per-matrix loops."""

from __future__ import annotations

import numpy as np
import pytest
from fd import numerical_grad

import pycograd
import pycograd.numpy_api.linalg as LA
from pycograd.core.errors import NoRuleError

la = np.linalg
RNG = np.random.default_rng(7)


def well(n: int, *lead: int, dtype: str = "float64") -> np.ndarray:
    """``Q diag(s) Q^T`` with s in [1, 3] plus a small nonsymmetric part."""
    q, _ = la.qr(RNG.standard_normal(lead + (n, n)))
    s = RNG.uniform(1, 3, lead + (n,))
    a = (q * s[..., None, :]) @ np.swapaxes(q, -1, -2) + 0.1 * RNG.standard_normal(lead + (n, n))
    return a.astype(dtype)


def spd(n: int, *lead: int) -> np.ndarray:
    q, _ = la.qr(RNG.standard_normal(lead + (n, n)))
    s = np.linspace(1, 3, n)
    return (q * s) @ np.swapaxes(q, -1, -2)


def grad(f):
    return pycograd.grad(f, argnums=0)


def loss_of(f, shape_out, dtype=np.float64):
    w = np.random.default_rng(1).standard_normal(shape_out).astype(dtype)
    return lambda *xs: np.sum(f(*xs) * w)


F32_CASES = {
    "inv": lambda a: la.inv(a),
    "det": lambda a: la.det(a),
    "solve": lambda a: la.solve(a, a[..., :1]),
    "cholesky": lambda a: la.cholesky(a @ np.swapaxes(a, -1, -2)),
    "eigh-vectors": lambda a: np.abs(la.eigh(a + np.swapaxes(a, -1, -2)).eigenvectors),
    "svd": lambda a: la.svd(a).S,
    "qr": lambda a: la.qr(a).R,
    "pinv": lambda a: la.pinv(a),
    "norm-nuc": lambda a: la.norm(a, "nuc", axis=(-2, -1)),
    "matrix_power": lambda a: la.matrix_power(a, -2),
}


@pytest.mark.parametrize("name", list(F32_CASES))
def test_float32_stays_float32(name):
    f = F32_CASES[name]
    a32 = well(3, 2, dtype="float32")
    out = f(a32)
    assert out.dtype == np.float32
    L = loss_of(f, np.shape(out), np.float32)
    value, g32 = pycograd.value_and_grad(L, argnums=0)(a32)
    assert np.result_type(value) == np.float32
    assert g32.dtype == np.float32 and g32.shape == a32.shape
    g64 = grad(L)(a32.astype(np.float64))
    np.testing.assert_allclose(g32, g64, rtol=2e-3, atol=2e-3 * np.abs(g64).max())
    shaped = pycograd.eval_shape(f, a32)
    assert shaped.dtype == np.result_type(out) and tuple(shaped.shape) == np.shape(out)


def test_result_types_under_trace():
    a = well(3)
    seen = {}

    def f(x):
        e, s, q, d = la.eigh(x), la.svd(x), la.qr(x), la.slogdet(x)
        seen.update(e=type(e), s=type(s), q=type(q), d=type(d), ev=type(la.eig(x + 3 * np.eye(3))))
        return (np.sum(e.eigenvalues) + np.sum(s.S) + np.sum(q.R) + d.logabsdet
                + np.sum(e.eigenvectors * s.U * s.Vh * q.Q) * 0 + d.sign)

    grad(f)(a)
    one = np.eye(1)
    assert seen == dict(e=type(la.eigh(one)), s=type(la.svd(one)), q=type(la.qr(one)),
                        d=type(la.slogdet(one)), ev=type(la.eig(one)))


def test_complex_inputs_raise_outside_complex_ok(monkeypatch):
    """A function whose rules are not marked complex-ready (``COMPLEX_OK``) refuses complex
    inputs, traced or not, with a NoRuleError naming it."""
    monkeypatch.setattr(LA, "COMPLEX_OK", LA.COMPLEX_OK - {"inv", "det"})
    z = well(3) + 1j * well(3)
    with pytest.raises(NoRuleError, match="det: complex"):
        grad(lambda x: np.real(la.det(x * (1 + 1j))))(well(3))
    with pytest.raises(NoRuleError, match="inv: complex"):
        LA.inv(z)


def test_eig_with_complex_spectrum():
    """A real matrix with complex eigenvalues: numpy's complex values, a real gradient
    (d sum(w) = trace, d prod(w) = det A^-T)."""
    rot = np.array([[0.0, -1.0], [1.0, 0.0]])
    w = pycograd.vjp(la.eigvals, rot)[0]
    np.testing.assert_allclose(w, la.eigvals(rot), atol=1e-15)
    g = grad(lambda x: np.real(np.sum(la.eigvals(x))))(rot)
    assert g.dtype == np.float64
    np.testing.assert_allclose(g, np.eye(2), atol=1e-12)
    g = grad(lambda x: np.real(np.prod(la.eigvals(x))))(rot)
    np.testing.assert_allclose(g, la.det(rot) * la.inv(rot).T, atol=1e-12)


def test_svd_full_matrices_extra_columns():
    a = RNG.standard_normal((4, 2))
    u, s, vh = la.svd(a)
    traced, _ = pycograd.vjp(lambda x: tuple(la.svd(x)), a)
    for t, e in zip(traced, (u, s, vh)):
        np.testing.assert_allclose(t, e, atol=1e-12)
    # using only the defined part is fine, in both modes
    g = grad(lambda x: np.sum(la.svd(x).U[:, :2] ** 3) + np.sum(la.svd(x).S))(a)
    np.testing.assert_allclose(
        g, numerical_grad(lambda x: np.sum(la.svd(x).U[:, :2] ** 3) + np.sum(la.svd(x).S),
                          [a], 1e-6)[0], rtol=1e-6, atol=1e-8)
    # the extra columns: through basis-invariant uses only (tests/test_complements.py)
    with pytest.raises(NoRuleError, match="full_matrices=False"):
        grad(lambda x: np.sum(la.svd(x).U))(a)
    with pytest.raises(NoRuleError, match="full_matrices=False"):
        grad(lambda x: np.sum(la.svd(x.T).Vh))(a)
    _, t = pycograd.jvp(lambda x: la.svd(x).U, (a,), (np.ones_like(a),))
    assert np.all(np.isfinite(t))
    np.testing.assert_allclose(u[:, 2:].T @ t[:, 2:], 0, atol=1e-12)  # no inner rotation


def test_qr_complete_tall():
    a = RNG.standard_normal((5, 2))
    traced, _ = pycograd.vjp(lambda x: tuple(la.qr(x, mode="complete")), a)
    for t, e in zip(traced, la.qr(a, mode="complete")):
        np.testing.assert_allclose(t, e, atol=1e-12)
    with pytest.raises(NoRuleError, match="reduced"):
        grad(lambda x: np.sum(la.qr(x, mode="complete").Q))(a)


def test_degenerate_spectrum_functions_of_values():
    """sum of eigenvalues and the nuclear norm keep their gradient at repeated values."""
    x = np.eye(3) * 2.0
    g = grad(lambda a: np.sum(la.eigvalsh(a) ** 2))(x)
    np.testing.assert_allclose(g, np.tril(4.0 * np.eye(3)), atol=1e-12)
    q, _ = la.qr(RNG.standard_normal((3, 3)))
    g = grad(lambda a: la.norm(a, "nuc"))(q)  # s = (1, 1, 1): d||A||_* = U V^T
    np.testing.assert_allclose(g, q, atol=1e-10)


def test_lstsq_tuple_matches_numpy():
    a, b = RNG.standard_normal((5, 3)), RNG.standard_normal((5, 2))
    traced, _ = pycograd.vjp(lambda x, y: la.lstsq(x, y), a, b)
    x, res, rank, s = la.lstsq(a, b)
    np.testing.assert_allclose(traced[0], x, atol=1e-12)
    np.testing.assert_allclose(traced[1], res, rtol=1e-10)
    assert traced[2] == rank == 3 and type(traced[2]) is type(rank)
    np.testing.assert_allclose(traced[3], s, rtol=1e-12)
    deficient = np.c_[a[:, :2], a[:, :1]]
    traced, _ = pycograd.vjp(lambda x, y: la.lstsq(x, y), deficient, b)
    assert traced[2] == 2 and np.shape(traced[1]) == (0,)
    np.testing.assert_allclose(traced[0], la.lstsq(deficient, b)[0], atol=1e-10)


def test_no_gradient_values():
    a = well(3)
    out, _ = pycograd.vjp(lambda x: x * la.matrix_rank(x) + la.cond(x, 1), a)
    np.testing.assert_allclose(out, a * 3 + la.cond(a, 1), rtol=1e-12)
    g = grad(lambda x: la.slogdet(x).sign * 1.0 + np.sum(x))(-a)
    np.testing.assert_allclose(g, np.ones_like(a))


@pytest.mark.parametrize("fn", [
    lambda a: la.inv(a), lambda a: la.eigh(a).eigenvalues, lambda a: la.svd(a).U,
    lambda a: la.qr(a).Q, lambda a: la.cholesky(a), lambda a: la.slogdet(a).logabsdet,
    lambda a: la.pinv(a), lambda a: la.norm(a, 2, axis=(-2, -1)),
], ids=["inv", "eigh", "svd", "qr", "cholesky", "slogdet", "pinv", "norm2"])
def test_stacked_equals_loop(fn):
    """A stack differentiates as the matrices one by one (values and gradients)."""
    a = spd(3, 2, 2)
    L = loss_of(fn, np.shape(fn(a)))
    w = np.random.default_rng(1).standard_normal(np.shape(fn(a)))
    g = grad(L)(a)
    for i, j in np.ndindex(2, 2):
        gij = grad(lambda x, wij=w[i, j]: np.sum(fn(x) * wij))(a[i, j])
        np.testing.assert_allclose(g[i, j], gij, rtol=1e-9, atol=1e-12)
    vg = pycograd.vmap(grad(lambda x: np.sum(fn(x) * w[0, 0])))(a[0])
    np.testing.assert_allclose(vg[0], g[0, 0], rtol=1e-9, atol=1e-12)


def test_hessian_of_logdet():
    """d^2 log det A [V, V] = -tr(A^-1 V A^-1 V): second order through the rule itself."""
    a, v = spd(3), RNG.standard_normal((3, 3))
    hv = pycograd.hvp(lambda x: la.slogdet(x)[1], (a,), (v,))
    ai = la.inv(a)
    np.testing.assert_allclose(np.sum(np.asarray(hv[0] if isinstance(hv, tuple) else hv) * v),
                               -np.trace(ai @ v @ ai @ v), rtol=1e-9)


def test_scipy_functions_values():
    """pycograd's scipy rules give scipy's values (traced), and are registered."""
    sl = pytest.importorskip("scipy.linalg")
    a, b, p = well(3), RNG.standard_normal((3, 2)), spd(3)
    pairs = [
        (lambda x: sl.solve_triangular(x, b, trans=2), lambda x: LA.solve_triangular(x, b, 2)),
        (lambda x: sl.solve_triangular(x, b, lower=True, unit_diagonal=True),
         lambda x: LA.solve_triangular(x, b, lower=True, unit_diagonal=True)),
        (lambda x: sl.cho_factor(x @ x.T)[0], lambda x: LA.cho_factor(x @ x.T)[0]),
        (lambda x: sl.cho_solve(sl.cho_factor(x @ x.T, lower=True), b),
         lambda x: LA.cho_solve(LA.cho_factor(x @ x.T, lower=True), b)),
        (lambda x: sl.expm(x), LA.expm),
        (lambda x: sl.sqrtm(p + x * 0), lambda x: LA.sqrtm(p + x * 0)),
    ]
    for theirs, ours in pairs:
        traced, _ = pycograd.vjp(ours, a)
        np.testing.assert_allclose(traced, theirs(a), rtol=1e-10, atol=1e-12)
    for f in (sl.solve_triangular, sl.cho_factor, sl.cho_solve, sl.sqrtm, sl.expm):
        assert f in LA.scipy_routes()


def test_sqrtm_gradient_at_repeated_eigenvalues():
    """sqrtm's derivative is defined at a multiple of I (unlike an eigh-based route)."""
    pytest.importorskip("scipy.linalg")
    x, w = 4.0 * np.eye(3), RNG.standard_normal((3, 3))
    g = grad(lambda a: np.sum(LA.sqrtm(a) * w))(x)
    np.testing.assert_allclose(g, w / 4.0, rtol=1e-10)  # d sqrt(A) = dA / (2 sqrt(4))


def test_shape_errors():
    with pytest.raises(ValueError, match="square"):
        grad(lambda x: np.sum(la.inv(x)))(np.ones((2, 3)))
    with pytest.raises(ValueError):
        pycograd.eval_shape(lambda x: la.cholesky(x), pycograd.ShapeDtypeStruct((2, 3)))
