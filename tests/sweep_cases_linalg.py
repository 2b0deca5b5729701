"""Sweep cases for numpy.linalg and scipy.linalg (real inputs), same ``Case`` table as
``sweep_cases.py``.

Inputs are drawn small (entries in [-0.5, 0.5]) and each case shifts them to a
well-conditioned matrix with a separated spectrum, so finite differences are accurate
and eigen/singular-vector derivatives exist: ``+ 2 I`` for solves and factorizations,
``+ diag(1, 2, 4, ...)`` where eigenvalues or singular values must be distinct. Matrices
read through one triangle (eigh, cholesky) are passed unsymmetrized, so the sweep also
checks that the gradient lands on the triangle that is read.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sweep_cases import Arg, Case

import pycograd.numpy_api.linalg as LA
from pycograd.core.trace import Tracer

CASES: list[Case] = []
SMALL = dict(low=-0.5, high=0.5)


def case(name: str, fn: Callable, shapes: list, prims: str, **kw: object) -> None:
    args = tuple(Arg(tuple(s), **SMALL) for s in shapes)
    CASES.append(Case(f"linalg-{name}", fn, args, tuple(prims.split()), **kw))


REAL_SPECTRUM = dict(skip={"eval_shape": "a real matrix's eig/sqrtm is real or complex by its "
                                          "values: eval_shape refuses it (test_audit_shapes)"})


def I2(x: np.ndarray) -> np.ndarray:
    """``x + 2 I``: diagonally dominant, hence invertible (and SPD once symmetrized)."""
    return x + 2 * np.eye(np.shape(x)[-1])


def spread(x: np.ndarray, base: float = 2.0) -> np.ndarray:
    """``x`` plus 1, 2, 4, ... (powers of ``base``) on its main diagonal: well separated
    eigen/singular values (``base=3`` keeps a nonsymmetric spectrum real)."""
    m, n = np.shape(x)[-2:]
    return x + np.eye(m, n) * (base ** np.arange(n))


def spd(x: np.ndarray) -> np.ndarray:
    return I2((x + np.swapaxes(x, -1, -2)) / 2)


def tup(r: object) -> tuple:
    """numpy's result namedtuples as plain tuples of arrays (the sweep's output lists)."""
    return tuple(r)


def scipy_fn(name: str) -> Callable:
    """scipy.linalg.<name>, but pycograd's rule when a traced value is passed (scipy calls
    ``np.asarray`` itself; routing it is the transparent layer's job)."""
    import scipy.linalg

    fn = getattr(scipy.linalg, name)
    rule = LA.scipy_routes()[fn]

    def call(*args: object, **kwargs: object) -> object:
        traced = any(isinstance(a, Tracer) for a in args) or any(
            isinstance(a, Tracer) for a in (args[0] if isinstance(args[0], tuple) else ()))
        return (rule if traced else fn)(*args, **kwargs)
    return call


la = np.linalg

# ---- solves, inverses, determinants -------------------------------------------------

case("solve", lambda a, b: la.solve(I2(a), b), [(3, 3), (3, 2)], "solve")
case("solve-vector-rhs", lambda a, b: la.solve(I2(a), b), [(3, 3), (3,)], "solve")
case("solve-batched", lambda a, b: la.solve(I2(a), b), [(2, 3, 3), (2, 3, 1)], "solve")
case("solve-broadcast-a", lambda a, b: la.solve(I2(a), b), [(3, 3), (2, 3, 2)], "solve")
case("solve-broadcast-b", lambda a, b: la.solve(I2(a), b), [(2, 1, 3, 3), (3, 3, 2)], "solve")
case("inv", lambda a: la.inv(I2(a)), [(3, 3)], "solve")
case("inv-batched", lambda a: la.inv(I2(a)), [(2, 3, 3)], "solve")
case("det", lambda a: la.det(I2(a)), [(3, 3)], "logabsdet slogdet_sign")
case("det-batched-negative", lambda a: la.det(I2(a) * np.array([[1.0], [-1.0], [1.0]])),
     [(2, 3, 3)], "logabsdet")
case("slogdet", lambda a: la.slogdet(I2(a))[1], [(2, 3, 3)], "logabsdet")
case("slogdet-attr", lambda a: la.slogdet(I2(a)).logabsdet * 2.0, [(3, 3)], "logabsdet")
case("pinv-tall", lambda a: la.pinv(spread(a)), [(4, 3)], "pinv")
case("pinv-wide-batched", lambda a: la.pinv(spread(a)), [(2, 2, 3)], "pinv")
case("pinv-square", lambda a: la.pinv(I2(a)), [(3, 3)], "pinv")
case("lstsq", lambda a, b: la.lstsq(spread(a), b)[0], [(4, 3), (4, 2)], "pinv")
case("lstsq-vector", lambda a, b: la.lstsq(spread(a), b)[0], [(4, 2), (4,)], "pinv")
case("lstsq-residuals-s", lambda a, b: la.lstsq(spread(a), b)[1::2], [(4, 2), (4, 2)],
     "pinv svd")
case("lstsq-underdetermined", lambda a, b: la.lstsq(spread(a), b)[0], [(2, 3), (2,)], "pinv")
case("tensorinv", lambda a: la.tensorinv(np.reshape(I2(np.reshape(a, (6, 6))), (2, 3, 6)),
                                         ind=2), [(6, 6)], "solve reshape")
case("tensorsolve", lambda a, b: la.tensorsolve(np.reshape(I2(np.reshape(a, (6, 6))),
                                                           (2, 3, 2, 3)), b),
     [(6, 6), (2, 3)], "solve reshape")
case("tensorsolve-axes", lambda a, b: la.tensorsolve(
    np.reshape(I2(np.reshape(a, (6, 6))), (2, 3, 2, 3)), b, axes=(0,)), [(6, 6), (3, 2)],
     "solve transpose")
case("matrix_power-3", lambda a: la.matrix_power(a, 3), [(3, 3)], "matmul")
case("matrix_power-0", lambda a: la.matrix_power(a, 0) + a, [(3, 3)], "add")
case("matrix_power-neg", lambda a: la.matrix_power(I2(a), -2), [(2, 3, 3)], "solve matmul")
case("multi_dot", lambda a, b, c, d: la.multi_dot([a, b, c, d]),
     [(3,), (3, 4), (4, 2), (2,)], "matmul")
case("multi_dot-matrices", lambda a, b, c: la.multi_dot([a, b, c]),
     [(2, 3), (3, 4), (4, 2)], "matmul")
case("cond", lambda a: la.cond(spread(a)), [(3, 3)], "svd")
case("cond-fro", lambda a: la.cond(I2(a), "fro"), [(3, 3)], "solve")
case("cond-neg2-batched", lambda a: la.cond(spread(a), -2), [(2, 3, 3)], "svd")

# ---- factorizations ----------------------------------------------------------------

case("cholesky", lambda a: la.cholesky(I2(a)), [(3, 3)], "cholesky")
case("cholesky-upper-batched", lambda a: la.cholesky(I2(a), upper=True), [(2, 3, 3)],
     "cholesky")
case("eigh", lambda a: tup(la.eigh(spread(a))), [(3, 3)], "eigh")
case("eigh-U-batched", lambda a: tup(la.eigh(spread(a), UPLO="U")), [(2, 3, 3)], "eigh")
case("eigh-vectors-attr", lambda a: la.eigh(spread(a)).eigenvectors ** 2, [(4, 4)], "eigh")
case("eigvalsh", lambda a: la.eigvalsh(spread(a)), [(3, 3)], "eigh")
case("eigvalsh-U", lambda a: la.eigvalsh(spread(a), "U"), [(2, 3, 3)], "eigh")
case("eig", lambda a: tup(la.eig(spread(a, 3))), [(3, 3)], "eig", **REAL_SPECTRUM)
case("eigvals-batched", lambda a: la.eigvals(spread(a, 3)), [(2, 3, 3)], "eig",
     **REAL_SPECTRUM)
case("svd-thin-tall", lambda a: tup(la.svd(spread(a), full_matrices=False)), [(4, 3)], "svd")
case("svd-thin-wide", lambda a: tup(la.svd(spread(a), full_matrices=False)), [(2, 4)], "svd")
case("svd-square-full", lambda a: tup(la.svd(spread(a))), [(2, 3, 3)], "svd")
case("svd-values", lambda a: la.svd(spread(a), compute_uv=False), [(2, 4, 3)], "svd")
case("svd-hermitian", lambda a: tup(la.svd(spd(a) - 2.2 * np.eye(3), hermitian=True)),
     [(3, 3)], "eigh", skip=dict.fromkeys(
         ("vmap", "vmap_unmapped", "vmap_grad", "eval_shape"),
         "np.argsort (the magnitude order) has no rule for batched or abstract values yet"))
case("svdvals", lambda a: la.svdvals(spread(a)), [(3, 2)], "svd")
case("svd-full-used-part", lambda a: (lambda r: (r.U[:, :2], r.S, r.Vh))(la.svd(spread(a))),
     [(4, 2)], "svd svd_complement")
case("qr", lambda a: tup(la.qr(a + np.eye(4, 3))), [(4, 3)], "qr")
case("qr-square-batched", lambda a: tup(la.qr(I2(a))), [(2, 3, 3)], "qr")
case("qr-wide", lambda a: tup(la.qr(a + np.eye(2, 4))), [(2, 4)], "qr")
case("qr-r", lambda a: la.qr(a + np.eye(3, 2), mode="r"), [(3, 2)], "qr")

# ---- norms -------------------------------------------------------------------------

case("norm-2", lambda a: la.norm(spread(a), 2), [(3, 2)], "svd")
case("norm-neg2", lambda a: la.norm(spread(a), -2), [(3, 3)], "svd")
case("norm-nuc", lambda a: la.norm(spread(a), "nuc"), [(2, 3)], "svd")
case("norm-2-axes-keepdims", lambda a: la.norm(a + 1.0, 2, axis=(2, 0), keepdims=True),
     [(3, 2, 2)], "svd")
case("norm-nuc-axes", lambda a: la.norm(spread(a), "nuc", axis=(-1, -2)), [(2, 3, 3)], "svd")
case("norm-fro-axes", lambda a: la.norm(a, "fro", axis=(0, 2)), [(2, 3, 2)], "sqrt")
case("norm-1-keepdims", lambda a: la.norm(a, 1, axis=(0, 1), keepdims=True), [(3, 2)],
     "absolute max")
case("norm-neg1", lambda a: la.norm(a + 0.01 * np.arange(6).reshape(2, 3), -1), [(2, 3)],
     "absolute min")
case("norm-vector-neg-inf", lambda a: la.norm(a, -np.inf, axis=-1), [(2, 3)], "absolute min")
case("norm-vector-p-half", lambda a: la.norm(a + 1.0, 0.5, axis=0), [(3, 2)], "power")
case("norm-vector-neg1", lambda a: la.norm(a + 1.0, -1), [(3,)], "power")
case("norm-vector-neg2", lambda a: la.norm(a + 1.0, -2, axis=1, keepdims=True), [(2, 3)],
     "power")
case("matrix_norm", lambda a: la.matrix_norm(spread(a), ord=2), [(2, 3, 2)], "svd")
case("vector_norm-axes", lambda a: la.vector_norm(a, axis=(0, 2), ord=3), [(2, 2, 3)],
     "absolute power")
case("vector_norm-flat-keepdims", lambda a: la.vector_norm(a, keepdims=True), [(2, 3)], "sqrt")

# ---- scipy.linalg ----------------------------------------------------------------------

try:
    import scipy.linalg  # noqa: F401
except ImportError:  # scipy is optional: its cases are simply absent
    pass
else:
    st, cf, cs = scipy_fn("solve_triangular"), scipy_fn("cho_factor"), scipy_fn("cho_solve")
    case("solve_triangular-lower", lambda a, b: st(I2(a), b, lower=True), [(3, 3), (3, 2)],
         "solve")
    case("solve_triangular-upper-T", lambda a, b: st(I2(a), b, trans="T"), [(3, 3), (3,)],
         "solve")
    case("solve_triangular-unit", lambda a, b: st(a, b, trans=1, lower=True,
                                                  unit_diagonal=True), [(3, 3), (3, 2)],
         "solve")
    case("cho_factor", lambda a: cf(I2(a))[0], [(3, 3)], "cholesky")
    case("cho_factor-solve", lambda a, b: cs(cf(I2(a), lower=True), b), [(3, 3), (3, 2)],
         "cholesky solve")
    case("cho_solve-upper", lambda a, b: cs(cf(I2(a)), b), [(3, 3), (3,)], "cholesky solve")
    case("scipy-cholesky", lambda a: scipy_fn("cholesky")(I2(a), lower=True), [(3, 3)],
         "cholesky")
    case("sqrtm-spd", lambda a: scipy_fn("sqrtm")(spd(a)), [(3, 3)], "sqrtm", **REAL_SPECTRUM)
    case("sqrtm-nonsymmetric", lambda a: scipy_fn("sqrtm")(spread(a, 3)), [(3, 3)], "sqrtm",
         **REAL_SPECTRUM)
    case("expm", lambda a: scipy_fn("expm")(a), [(3, 3)], "expm")
    case("expm-batched", lambda a: scipy_fn("expm")(2 * a), [(2, 2, 2)], "expm")
