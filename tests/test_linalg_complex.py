"""numpy.linalg / scipy.linalg on complex inputs beyond the sweep: gradients against
finite differences on the real and the imaginary axis, the eigenvector gauge, complex
phases of slogdet, complex results of real inputs (eig, sqrtm), dtypes, and what stays
refused."""

from __future__ import annotations

import numpy as np
import pytest
from fd import numerical_grad

import pycograd
import pycograd.numpy_api.linalg as LA
from pycograd.core.errors import NoRuleError

la = np.linalg
RNG = np.random.default_rng(11)


def cwell(n: int, *lead: int, dtype: str = "complex128") -> np.ndarray:
    """``2 I`` plus a small complex perturbation: invertible, well conditioned."""
    z = RNG.uniform(-0.5, 0.5, lead + (n, n)) + 1j * RNG.uniform(-0.5, 0.5, lead + (n, n))
    return (z + 2 * np.eye(n)).astype(dtype)


def grad(f):
    return pycograd.grad(f, argnums=0)


def fd(f, x, eps=1e-6):
    return numerical_grad(f, [x], eps)[0]


def test_det_gradient_on_both_axes():
    """d/dx - i d/dy of real(det * w) and of |det|: both axes of every entry."""
    a, w = cwell(3), 0.3 - 1.2j
    for f in (lambda x: np.real(la.det(x) * w), lambda x: np.abs(la.det(x))):
        g = grad(f)(a)
        assert g.dtype == np.complex128
        np.testing.assert_allclose(g, fd(f, a), rtol=1e-7, atol=1e-9)
    # holomorphic: d det = det tr(A^-1 dA), so grad of real(det) is det A^-T
    np.testing.assert_allclose(grad(lambda x: np.real(la.det(x)))(a),
                               la.det(a) * la.inv(a).T, rtol=1e-10)


def test_slogdet_phase_is_differentiable():
    a = cwell(3) * 1j
    sign, logabs = pycograd.vjp(lambda x: tuple(la.slogdet(x)), a)[0]
    ref = la.slogdet(a)
    np.testing.assert_allclose(sign, ref.sign, rtol=1e-13)
    np.testing.assert_allclose(logabs, ref.logabsdet, rtol=1e-13)
    assert sign.dtype == ref.sign.dtype and logabs.dtype == ref.logabsdet.dtype

    def f(x):
        return np.imag(la.slogdet(x).sign)
    np.testing.assert_allclose(grad(f)(a), fd(f, a), rtol=1e-7, atol=1e-9)


def test_slogdet_of_singular_complex_matrix():
    z = np.ones((2, 2), complex) * (1 + 1j)
    out = pycograd.vjp(lambda x: tuple(la.slogdet(x)) + (la.det(x),), z)[0]
    ref = la.slogdet(z)
    assert out[0] == ref.sign == 0 and out[1] == ref.logabsdet == -np.inf and out[2] == 0


def test_mixed_real_and_complex_operands():
    """solve(real A, complex b): A's gradient is real (the real part of its cotangent)."""
    a, b = np.real(cwell(3)), cwell(3)[:, :2]

    def f(x, y):
        return np.real(np.sum(la.solve(x, y) * (1 - 2j)))
    ga, gb = pycograd.grad(f)(a, b)
    assert ga.dtype == np.float64 and gb.dtype == np.complex128
    np.testing.assert_allclose(ga, fd(lambda x: f(x, b), a), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(gb, fd(lambda y: f(a, y), b), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", ["inv", "det", "solve", "eig", "pinv", "expm"])
def test_complex64_stays_complex64(name):
    fn = {"inv": la.inv, "det": la.det, "solve": lambda a: la.solve(a, np.ones((3, 1), "F")),
          "eig": lambda a: la.eig(a + np.diag(np.float32([0, 1, 2]))).eigenvectors,
          "pinv": la.pinv, "expm": LA.expm}[name]
    a = cwell(3, 2, dtype="complex64")
    out = fn(a) if name != "expm" else pycograd.vjp(fn, a)[0]
    assert out.dtype == np.complex64

    def L(x):
        return np.real(np.sum(fn(x) * (1 + 1j)))
    g32 = grad(L)(a)
    assert g32.dtype == np.complex64
    g64 = grad(L)(a.astype(np.complex128))
    np.testing.assert_allclose(g32, g64, rtol=2e-3, atol=2e-3 * np.abs(g64).max())


def test_eigenvectors_follow_lapack_gauge():
    """numpy's vectors have unit norm and a real largest component; the JVP is the
    derivative of exactly those vectors (central differences of numpy's eig)."""
    a = cwell(4) + np.diag([0.0, 1.0, 2.0, 3.0])
    t = RNG.standard_normal((4, 4)) + 1j * RNG.standard_normal((4, 4))
    v, dv = pycograd.jvp(lambda x: la.eig(x).eigenvectors, (a,), (t,))
    np.testing.assert_allclose(v, la.eig(a).eigenvectors, atol=1e-14)
    k = np.argmax(np.abs(v), axis=0)
    eps = 1e-6
    expected = (la.eig(a + eps * t).eigenvectors - la.eig(a - eps * t).eigenvectors) / (2 * eps)
    np.testing.assert_allclose(dv, expected, rtol=1e-6, atol=1e-8)
    # the gauge, to first order: norms and the phase of the largest component kept
    np.testing.assert_allclose(np.real(np.sum(np.conj(v) * dv, axis=0)), 0, atol=1e-12)
    np.testing.assert_allclose(np.imag(dv[k, range(4)]), 0, atol=1e-12)


def test_eig_of_real_matrix_mixed_spectrum():
    """One real eigenvalue and a complex pair: one complex result, a real gradient."""
    a = np.array([[0.0, -4.0, 0.3], [1.0, 0.0, 0.2], [0.1, 0.0, 3.0]])

    def f(x):
        w, v = la.eig(x)
        return np.real(np.sum(w * w)) + np.sum(np.imag(v) ** 2) + np.real(v[2, 2])
    g = grad(f)(a)
    assert g.dtype == np.float64
    np.testing.assert_allclose(g, fd(f, a), rtol=1e-6, atol=1e-8)


def test_sqrtm_of_real_matrix_with_negative_eigenvalue():
    """scipy's complex root of a real matrix: X dX + dX X = dA along real directions."""
    pytest.importorskip("scipy.linalg")
    a = np.array([[-1.0, 0.3, 0.0], [0.2, 2.0, 0.1], [0.0, 0.4, 3.0]])
    t = RNG.standard_normal((3, 3))
    x, dx = pycograd.jvp(LA.sqrtm, (a,), (t,))
    assert x.dtype == dx.dtype == np.complex128
    np.testing.assert_allclose(x @ dx + dx @ x, t, atol=1e-12)

    def f(y):
        return np.imag(np.sum(LA.sqrtm(y) * np.arange(9).reshape(3, 3)))
    g = grad(f)(a)
    assert g.dtype == np.float64
    np.testing.assert_allclose(g, fd(f, a), rtol=1e-6, atol=1e-8)


def test_pinv_hermitian_reads_lower_triangle():
    """numpy's hermitian=True reads the lower triangle (and the real diagonal): the
    gradient lands there, for real and complex inputs."""
    for a in (np.real(cwell(3)), cwell(3)):
        g = grad(lambda x: np.real(np.sum(la.pinv(x, hermitian=True) * (1 + 2j))))(a)
        assert np.all(np.triu(g, 1) == 0)
        if np.iscomplexobj(a):
            assert np.all(np.imag(np.diagonal(g)) == 0)


def test_solve_triangular_conjugate_transpose():
    sl = pytest.importorskip("scipy.linalg")
    a, b = cwell(3), cwell(3)[:, :2]
    for trans in (2, "C", 1, "T"):
        out = pycograd.vjp(lambda x, t=trans: LA.solve_triangular(x, b, t, lower=True), a)[0]
        np.testing.assert_allclose(out, sl.solve_triangular(a, b, trans=trans, lower=True),
                                   rtol=1e-12)
    c = sl.cho_factor(a @ np.conj(a.T), lower=True)
    out = pycograd.vjp(lambda y: LA.cho_solve(c, y), b)[0]
    np.testing.assert_allclose(out, sl.cho_solve(c, b), rtol=1e-12)


def test_vecdot_and_norms_conjugate():
    x, y = cwell(3)[0], cwell(3)[1]
    out = pycograd.vjp(lambda p, q: (la.vecdot(p, q), la.norm(p), la.norm(p, 0)), x, y)[0]
    np.testing.assert_allclose(out[0], la.vecdot(x, y), rtol=1e-14)
    np.testing.assert_allclose(out[1], la.norm(x), rtol=1e-14)
    assert out[1].dtype == out[2].dtype == np.float64
    # |x|^2 is a polynomial: its Hessian is 2 I at a zero entry too (abs(x) ** 2 gives 0)
    v = np.array([1.0, 1j, 0.5 - 1j])
    hv = pycograd.hvp(lambda p: la.norm(p) ** 2, (np.array([1.0, 0.0, 1j]),), (v,))
    np.testing.assert_allclose(np.asarray(hv[0] if isinstance(hv, tuple) else hv),
                               2 * np.conj(v), rtol=1e-12)


def test_singular_value_functions_refuse_without_complex_svd(monkeypatch):
    """Norms, cond and lstsq built on singular values name what is missing when the
    complex SVD is not differentiable."""
    monkeypatch.setattr(LA, "COMPLEX_OK", LA.COMPLEX_OK - {"svd"})
    z = cwell(3)
    for f, what in ((lambda x: la.norm(x, 2), "norm"), (lambda x: la.cond(x), "cond"),
                    (lambda x: la.lstsq(x, x[:, 0])[0], "lstsq")):
        with pytest.raises(NoRuleError, match=f"{what}.*singular values"):
            grad(lambda x, f=f: np.real(np.sum(f(x))))(z)
    assert grad(lambda x: la.norm(x, "fro"))(z).dtype == np.complex128  # no SVD there
