"""Complex cholesky / eigh / svd / qr beyond the sweep: numpy's values and dtypes, the
phase gauge of eigen/singular vectors (a loss that depends on it is refused), gradients
checked along the real and the imaginary axis separately, and the real path untouched."""

from __future__ import annotations

import numpy as np
import pytest

import pycograd
import pycograd.numpy_api.complex  # noqa: F401  (np.real / np.imag on tracers)
from pycograd.core.errors import NoRuleError
from pycograd.core.primitive import REGISTRY

la = np.linalg
RNG = np.random.default_rng(11)


def cplx(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)


def mH(x):
    return np.swapaxes(np.conj(x), -1, -2)


def herm(n: int, *lead: int) -> np.ndarray:
    """A Hermitian matrix with well separated eigenvalues (-3, 0, 3, ...)."""
    q, _ = la.qr(cplx(*lead, n, n))
    w = 3.0 * np.arange(n) - 3.0
    return (q * w[..., None, :]) @ mH(q)


def hpd(n: int, *lead: int) -> np.ndarray:
    a = cplx(*lead, n, n)
    return a @ mH(a) + n * np.eye(n)


def grad(f):
    return pycograd.grad(f, argnums=0)


def check_axes(f, z: np.ndarray, eps: float = 1e-6, rtol: float = 1e-6) -> np.ndarray:
    """``grad(f)(z)`` against central differences along each real and each imaginary
    coordinate separately: ``df/dx = Re g`` and ``df/dy = -Im g``."""
    g = grad(f)(z)
    assert g.dtype == z.dtype and g.shape == z.shape
    for unit, part in ((1.0, np.real(g)), (1j, -np.imag(g))):
        fd = np.zeros(z.shape)
        for j in range(z.size):
            step = np.zeros(z.shape, complex)
            step.reshape(-1)[j] = eps * unit
            fd.reshape(-1)[j] = (f(z + step) - f(z - step)) / (2 * eps)
        np.testing.assert_allclose(part, fd, rtol=rtol, atol=rtol * (1 + np.abs(fd).max()))
    return g


# ---- values and dtypes: numpy's own ------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_values_and_dtypes(dtype):
    a, h, p = cplx(4, 3).astype(dtype), herm(3).astype(dtype), hpd(3).astype(dtype)
    wide = cplx(2, 4).astype(dtype)
    calls = [
        (lambda x: tuple(la.eigh(x)), h), (lambda x: la.eigvalsh(x, "U"), h),
        (lambda x: tuple(la.svd(x, full_matrices=False)), a),
        (lambda x: la.svd(x, compute_uv=False), a), (la.svdvals, a),
        (lambda x: tuple(la.svd(x, hermitian=True)), h),
        (lambda x: tuple(la.qr(x)), a), (lambda x: tuple(la.qr(x)), wide),
        (lambda x: la.qr(x, mode="r"), a),
        (la.cholesky, p), (lambda x: la.cholesky(x, upper=True), p),
    ]
    tol = 1e-5 if dtype == np.complex64 else 1e-12
    for f, x in calls:
        traced, _ = pycograd.vjp(f, x)
        expected = f(x)
        traced, expected = (traced, expected) if isinstance(expected, tuple) else \
            ((traced,), (expected,))
        for t, e in zip(traced, expected):
            assert np.result_type(t) == np.result_type(e)  # w and s real, as numpy's
            np.testing.assert_allclose(t, e, rtol=tol, atol=tol)
        if f is calls[5][0]:
            continue  # hermitian=True sorts by magnitude: data-dependent, no eval_shape
        shaped = pycograd.eval_shape(f, pycograd.ShapeDtypeStruct(x.shape, x.dtype))
        shaped = shaped if isinstance(shaped, tuple) else (shaped,)
        assert [(s.shape, s.dtype) for s in shaped] == [(np.shape(e), np.result_type(e))
                                                        for e in expected]


def test_scipy_values():
    sl = pytest.importorskip("scipy.linalg")
    p = hpd(3)
    routes = pycograd.numpy_api.linalg.scipy_routes()
    for lower in (False, True):
        traced, _ = pycograd.vjp(lambda x, lo=lower: routes[sl.cho_factor](x, lower=lo)[0], p)
        np.testing.assert_allclose(traced, sl.cho_factor(p, lower=lower)[0], atol=1e-12)
        traced, _ = pycograd.vjp(lambda x, lo=lower: routes[sl.cholesky](x, lower=lo), p)
        np.testing.assert_allclose(traced, sl.cholesky(p, lower=lower), atol=1e-12)


# ---- the phase gauge ---------------------------------------------------------------------

PHASE_DEPENDENT = {
    "eigh-V": lambda z: np.real(np.sum(la.eigh(z + mH(z))[1])),
    "eigh-V-U": lambda z: np.imag(la.eigh(z + mH(z), UPLO="U").eigenvectors[0, 1]),
    "svd-U": lambda z: np.real(np.sum(la.svd(z, full_matrices=False).U)),
    "svd-Vh": lambda z: np.imag(np.sum(la.svd(z, full_matrices=False).Vh)),
    "svd-hermitian-U": lambda z: np.real(np.sum(la.svd(z + mH(z), hermitian=True).U)),
}


@pytest.mark.parametrize("name", list(PHASE_DEPENDENT))
def test_phase_dependent_loss_raises(name):
    z = cplx(3, 3) if "eigh" in name or "hermitian" in name else cplx(4, 3)
    with pytest.raises(NoRuleError, match="arbitrary phase"):
        grad(PHASE_DEPENDENT[name])(z)
    if "hermitian" in name:
        return  # its magnitude sort (np.argsort) has no batching rule yet
    with pytest.raises(NoRuleError, match="arbitrary phase"):  # per-example gradients too
        pycograd.vmap(grad(PHASE_DEPENDENT[name]))(np.stack([z, 2 * z]))


def test_phase_invariant_uses_pass_and_are_right():
    """|V|^2, V diag(w) V^H, U Vh, projectors: gradients exist and equal the differences
    (the vectors' phase never enters, so it cancels in the differences too)."""
    spread = np.diag([0.0, 3.0, 7.0])

    def eig_uses(z):
        w, v = la.eigh(z + mH(z) + spread)
        return np.sum(np.abs(v[:, :2]) ** 2 * np.arange(3)[:, None]) + \
            np.real(np.sum((v * w) @ mH(v) * (1 + 2j)))

    def svd_uses(z):
        u, s, vh = la.svd(z, full_matrices=False)
        return np.real(np.sum((u @ vh) * (1 - 1j))) + np.sum(s ** 3) + \
            np.real(np.sum(u[:, :1] @ mH(u[:, :1])) * 2)

    check_axes(eig_uses, cplx(3, 3) * 0.3)
    check_axes(svd_uses, cplx(4, 3))
    check_axes(svd_uses, cplx(2, 4))


def test_values_only_never_raise():
    z = cplx(3, 3)
    check_axes(lambda x: np.sum(la.eigvalsh(x + mH(x)) ** 2), z)
    check_axes(lambda x: np.sum(la.svdvals(x) ** 2), z)


# ---- gradients along each axis; the triangle and the diagonal LAPACK ignores ----------------

def test_one_triangle_and_real_diagonal():
    """cholesky and eigh read one triangle, and only the real part of the diagonal: the
    gradient is zero on the other triangle and on the imaginary part of the diagonal."""
    z = cplx(3, 3) * 0.3 + np.diag([2.0, 4.0, 7.0])
    for f, lower in [
        (lambda x: np.real(np.sum(la.cholesky(x) * (1 + 2j))), True),
        (lambda x: np.real(np.sum(la.cholesky(x, upper=True) * (1 - 1j))), False),
        (lambda x: np.sum(la.eigvalsh(x) ** 3), True),
        (lambda x: np.sum(np.abs(la.eigh(x, UPLO="U")[1]) ** 3), False),
    ]:
        g = check_axes(f, z)
        unread = np.triu(g, 1) if lower else np.tril(g, -1)
        assert np.all(unread == 0) and np.all(np.imag(np.diag(g)) == 0)


def test_qr_along_both_axes():
    w = cplx(4, 3)
    for shape in [(4, 3), (3, 3), (2, 4)]:
        z = cplx(*shape) + np.eye(*shape)
        wq = w[:shape[0], :min(shape)]
        check_axes(lambda x, wq=wq: np.real(np.sum(la.qr(x).Q * wq))
                   + np.real(np.sum(la.qr(x).R * (1 + 1j))), z)


def test_complex64_gradients():
    z = (cplx(3, 3) * 0.3).astype(np.complex64)
    g = grad(lambda x: np.sum(la.eigvalsh(x + mH(x) + np.diag([0, 3, 6]).astype(np.complex64))
                              ** 2))(z)
    assert g.dtype == np.complex64
    g64 = grad(lambda x: np.sum(la.eigvalsh(x + mH(x) + np.diag([0.0, 3.0, 6.0])) ** 2))(
        z.astype(np.complex128))
    np.testing.assert_allclose(g, g64, rtol=1e-4, atol=1e-4)


def test_batched_matches_loop():
    z = cplx(2, 3, 3) * 0.3 + np.diag([0.0, 3.0, 7.0])

    def f(x):
        w, v = la.eigh(x)
        u, s, vh = la.svd(x)
        return np.sum(w * np.arange(3)) + np.sum(np.abs(v) ** 3) + np.real(np.sum(u @ vh)) \
            + np.real(np.sum(la.cholesky(x @ mH(x)) * 1j)) + np.real(np.sum(la.qr(x).R))

    g = grad(f)(z)
    np.testing.assert_allclose(g, np.stack([grad(f)(x) for x in z]), atol=1e-12)


# ---- real inputs keep the real rules ---------------------------------------------------------

def test_real_inputs_take_no_complex_ops(monkeypatch):
    """The complex rules reduce to the real ones without conj/real/imag ops for real
    matrices (no slower path): none of those primitives runs, to second order."""
    ran: set[str] = set()
    for name in ("conjugate", "real", "imag"):
        prim = REGISTRY[name]
        monkeypatch.setattr(prim, "impl", lambda *a, _i=prim.impl, _n=name, **k:
                            ran.add(_n) or _i(*a, **k))
    a = RNG.standard_normal((4, 3)) + np.eye(4, 3) * [1.0, 3.0, 7.0]
    sq = RNG.standard_normal((3, 3)) * 0.3 + np.diag([2.0, 4.0, 7.0])

    def f(x, y):
        w, v = la.eigh(y)
        u, s, vh = la.svd(x, full_matrices=False)
        q, r = la.qr(x)
        return np.sum(w ** 2) + np.sum(v ** 3) + np.sum(u ** 3) + np.sum(s) + np.sum(vh ** 3) \
            + np.sum(q ** 3) + np.sum(r ** 2) + np.sum(la.cholesky(y) ** 2)

    g = pycograd.grad(f, argnums=(0, 1))
    pycograd.grad(lambda x, y: sum(np.sum(t ** 2) for t in g(x, y)), argnums=(0, 1))(a, sq)
    pycograd.jvp(g, (a, sq), (a, sq))
    assert not ran
