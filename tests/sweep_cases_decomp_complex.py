"""Complex inputs through cholesky, eigh/eigvalsh, svd/svdvals (thin, values only,
hermitian=True), qr ('reduced', 'r', wide) and scipy's cho_factor / cholesky.

Inputs are small complex matrices (real and imaginary parts in [-0.5, 0.5]) that each case
makes Hermitian positive definite (``a @ a^H + 2 I``, or ``+ 2 I`` read through one
triangle) or spreads apart (``+ diag(1, 3, 9, ...)``) so that eigen/singular values are
distinct. Eigenvectors and singular vectors are defined only up to a phase per vector (a
shared one for ``u_k`` and ``v_k``), so every case uses them through phase-invariant
functions: ``|V|^2``, ``V diag(w) V^H``, ``U @ Vh``, projectors ``U U^H``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sweep_cases import Arg, Case
from sweep_cases_linalg import scipy_fn

import pycograd.numpy_api.complex  # noqa: F401  (np.real / np.imag on tracers)

CASES: list[Case] = []
SMALL = dict(low=-0.5, high=0.5)
la = np.linalg


def case(name: str, fn: Callable, shapes: list, prims: str, dtype: str = "complex128",
         **kw: object) -> None:
    args = tuple(Arg(tuple(s), dtype=dtype, **SMALL) for s in shapes)
    CASES.append(Case(f"decomp-complex-{name}", fn, args, tuple(prims.split()), **kw))


def mH(x: np.ndarray) -> np.ndarray:
    return np.swapaxes(np.conj(x), -1, -2)


def diag(a: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``d`` on the main diagonal of a matrix shaped like ``a``, in ``a``'s dtype (so that
    complex64 stays complex64)."""
    m, n = np.shape(a)[-2:]
    return (np.eye(m, n) * d).astype(a.dtype)


def hpd(a: np.ndarray) -> np.ndarray:
    """``a a^H + 2 I``: Hermitian positive definite, entries of both triangles used."""
    return a @ mH(a) + diag(a, 2.0)


def I2(a: np.ndarray) -> np.ndarray:
    """``a + 2 I``: positive definite once one triangle is read as a Hermitian matrix."""
    return a + diag(a, 2.0)


def spread(a: np.ndarray) -> np.ndarray:
    """``a`` plus 1, 3, 9, ... on its main diagonal: distinct eigen/singular values."""
    return a + diag(a, 3.0 ** np.arange(np.shape(a)[-1]))


def herm(a: np.ndarray) -> np.ndarray:
    return spread(a + mH(a))


def eig_uses(r: object) -> tuple:
    """Phase-invariant uses of ``eigh``'s result: ``w``, ``|V|^2``, ``V diag(w^2) V^H``."""
    w, v = r
    return w, np.real(v * np.conj(v)), (v * w[..., None, :] ** 2) @ mH(v)


def svd_uses(r: object) -> tuple:
    """Phase-invariant uses of a thin SVD: ``s``, ``U @ Vh``-like products, projectors."""
    u, s, vh = r
    return s, (u * np.sqrt(s)[..., None, :]) @ vh, np.abs(u) ** 2, mH(vh) @ vh


# ---- Cholesky: A = L L^H --------------------------------------------------------------

case("cholesky", lambda a: la.cholesky(hpd(a)), [(3, 3)], "cholesky")
case("cholesky-one-triangle", lambda a: la.cholesky(I2(a)), [(3, 3)], "cholesky")
case("cholesky-upper-batched", lambda a: la.cholesky(I2(a), upper=True), [(2, 3, 3)],
     "cholesky")
case("cholesky-c64", lambda a: la.cholesky(hpd(a)), [(3, 3)], "cholesky", dtype="complex64",
     eps=1e-2, hvp_eps=1e-2, rtol=2e-2, atol=2e-3)
case("cholesky-real-imag-parts", lambda x, y: la.cholesky(hpd(x + 1j * y)),
     [(3, 3), (3, 3)], "cholesky", dtype="float64")

# ---- eigh / eigvalsh: w real, V unitary -----------------------------------------------

case("eigh", lambda a: eig_uses(la.eigh(herm(a))), [(3, 3)], "eigh")
case("eigh-one-triangle", lambda a: eig_uses(la.eigh(spread(a))), [(3, 3)], "eigh")
case("eigh-U-batched", lambda a: eig_uses(la.eigh(spread(a), UPLO="U")), [(2, 3, 3)], "eigh")
case("eigh-c64", lambda a: eig_uses(la.eigh(herm(a))), [(3, 3)], "eigh", dtype="complex64",
     eps=1e-2, hvp_eps=1e-2, rtol=3e-2, atol=3e-3)
case("eigvalsh", lambda a: la.eigvalsh(herm(a)), [(4, 4)], "eigh")
case("eigvalsh-U-batched", lambda a: la.eigvalsh(spread(a), "U"), [(2, 3, 3)], "eigh")

# ---- thin SVD, values only, hermitian=True ----------------------------------------------

case("svd-thin-tall", lambda a: svd_uses(la.svd(spread(a), full_matrices=False)), [(4, 3)],
     "svd")
case("svd-thin-wide", lambda a: svd_uses(la.svd(spread(a), full_matrices=False)), [(2, 4)],
     "svd")
case("svd-square-batched", lambda a: svd_uses(la.svd(spread(a))), [(2, 3, 3)], "svd")
case("svd-values", lambda a: la.svd(spread(a), compute_uv=False), [(2, 4, 3)], "svd")
case("svdvals", lambda a: la.svdvals(spread(a)), [(3, 2)], "svd")
case("svd-projectors", lambda a: (lambda r: (r.U @ mH(r.U), mH(r.Vh) @ r.Vh))(
    la.svd(spread(a), full_matrices=False)), [(3, 2)], "svd")
case("svd-hermitian", lambda a: svd_uses(la.svd(herm(a) - 4.5 * np.eye(3), hermitian=True)),
     [(3, 3)], "eigh", skip=dict.fromkeys(
         ("vmap", "vmap_unmapped", "vmap_grad", "eval_shape"),
         "np.argsort (the magnitude order) has no rule for batched or abstract values yet"))

# ---- QR: R with a real diagonal -------------------------------------------------------------

case("qr", lambda a: tuple(la.qr(a + np.eye(4, 3))), [(4, 3)], "qr")
case("qr-square-batched", lambda a: tuple(la.qr(I2(a))), [(2, 3, 3)], "qr")
case("qr-wide", lambda a: tuple(la.qr(a + np.eye(2, 4))), [(2, 4)], "qr")
case("qr-r", lambda a: la.qr(a + np.eye(3, 2), mode="r"), [(3, 2)], "qr")

# ---- scipy.linalg ---------------------------------------------------------------------------

try:
    import scipy.linalg  # noqa: F401
except ImportError:  # scipy is optional: its cases are simply absent
    pass
else:
    case("cho_factor", lambda a: scipy_fn("cho_factor")(I2(a))[0], [(3, 3)], "cholesky")
    case("cho_factor-lower", lambda a: scipy_fn("cho_factor")(hpd(a), lower=True)[0],
         [(3, 3)], "cholesky")
    case("scipy-cholesky", lambda a: scipy_fn("cholesky")(hpd(a)), [(3, 3)], "cholesky")
