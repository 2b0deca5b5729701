"""Sweep cases for numpy.linalg and scipy.linalg on complex inputs (complex128, a few
complex64), stacked inputs, and real operands meeting complex ones.

Inputs are drawn with real and imaginary parts in [-0.5, 0.5] and shifted as in
``sweep_cases_linalg`` (``+ 2 I``, ``+ diag(1, 2, 4)``) to well-conditioned matrices with
separated spectra. Finite differences step along both axes of each complex entry
(``fd.numerical_grad``), so they check the non-holomorphic rules (pinv, norms, vecdot's
conjugate, eigenvector gauge) as strictly as the holomorphic ones.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sweep_cases import Arg, Case
from sweep_cases_linalg import I2, scipy_fn, spread, tup

CASES: list[Case] = []
SMALL = dict(low=-0.5, high=0.5)
C64 = dict(eps=1e-3, hvp_eps=1e-3, rtol=1e-2, atol=1e-3)  # complex64: coarse differences


def Z(*shape: int, dtype: str = "complex128") -> Arg:
    return Arg(tuple(shape), dtype=dtype, **SMALL)


def R(*shape: int) -> Arg:
    return Arg(tuple(shape), **SMALL)


def case(name: str, fn: Callable, args: list, prims: str, **kw: object) -> None:
    CASES.append(Case(f"linalg-complex-{name}", fn, tuple(args), tuple(prims.split()), **kw))


ROT = np.array([[0.0, -4.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
"""Eigenvalues +-2i and 3: a real matrix with complex spectrum (plus a real eigenvalue),
eigenvectors with a clear largest component."""

SPECTRUM = dict(skip={"eval_shape": "a real matrix's eig/sqrtm is complex or real "
                                    "depending on its values, which eval_shape cannot see"})

la = np.linalg

# ---- solves, inverses, determinants -------------------------------------------------

case("solve", lambda a, b: la.solve(I2(a), b), [Z(3, 3), Z(3, 2)], "solve")
case("solve-vector-rhs", lambda a, b: la.solve(I2(a), b), [Z(3, 3), Z(3)], "solve")
case("solve-batched", lambda a, b: la.solve(I2(a), b), [Z(2, 3, 3), Z(2, 3, 1)], "solve")
case("solve-broadcast-a", lambda a, b: la.solve(I2(a), b), [Z(3, 3), Z(2, 3, 2)], "solve")
case("solve-real-a", lambda a, b: la.solve(I2(a), b), [R(2, 3, 3), Z(3, 2)], "solve")
case("solve-real-b", lambda a, b: la.solve(I2(a), b), [Z(3, 3), R(2, 3, 2)], "solve")
case("inv", lambda a: la.inv(I2(a)), [Z(3, 3)], "solve")
case("inv-batched", lambda a: la.inv(I2(a)), [Z(2, 3, 3)], "solve")
case("inv-complex64", lambda a: la.inv(I2(a)), [Z(3, 3, dtype="complex64")], "solve", **C64)
case("det", lambda a: la.det(I2(a)), [Z(3, 3)], "logdet")
case("det-batched", lambda a: la.det(I2(a) * np.array([[1.0], [-1j], [1.0]])), [Z(2, 3, 3)],
     "logdet")
case("det-complex64", lambda a: la.det(I2(a)), [Z(2, 2, 2, dtype="complex64")], "logdet",
     **C64)
case("slogdet", lambda a: tup(la.slogdet(I2(a) * 1j)), [Z(2, 3, 3)], "logdet")
case("slogdet-sign-attr", lambda a: la.slogdet(I2(a)).sign, [Z(3, 3)], "logdet")
case("pinv-tall", lambda a: la.pinv(spread(a)), [Z(4, 3)], "pinv")
case("pinv-wide-batched", lambda a: la.pinv(spread(a)), [Z(2, 2, 3)], "pinv")
case("pinv-square", lambda a: la.pinv(I2(a)), [Z(3, 3)], "pinv")
case("pinv-hermitian", lambda a: la.pinv(spread(a), hermitian=True), [Z(3, 3)], "pinv")
case("pinv-hermitian-real", lambda a: la.pinv(spread(a), hermitian=True), [R(3, 3)], "pinv")
case("tensorinv", lambda a: la.tensorinv(np.reshape(I2(np.reshape(a, (6, 6))), (2, 3, 6)),
                                         ind=2), [Z(6, 6)], "solve reshape")
case("tensorsolve", lambda a, b: la.tensorsolve(np.reshape(I2(np.reshape(a, (6, 6))),
                                                           (2, 3, 2, 3)), b),
     [Z(6, 6), Z(2, 3)], "solve reshape")
case("matrix_power-3", lambda a: la.matrix_power(a, 3), [Z(3, 3)], "matmul")
case("matrix_power-neg", lambda a: la.matrix_power(I2(a), -2), [Z(2, 3, 3)], "solve matmul")
case("multi_dot", lambda a, b, c: la.multi_dot([a, b, c]), [Z(3,), R(3, 4), Z(4, 2)],
     "matmul")
case("lstsq", lambda a, b: la.lstsq(spread(a), b)[0], [Z(4, 3), Z(4, 2)], "pinv")
case("lstsq-real-a", lambda a, b: la.lstsq(spread(a), b)[0], [R(4, 2), Z(4)], "pinv")
case("lstsq-residuals-s", lambda a, b: la.lstsq(spread(a), b)[1::2], [Z(4, 2), Z(4, 2)],
     "pinv svd real")
case("lstsq-underdetermined", lambda a, b: la.lstsq(spread(a), b)[0], [Z(2, 3), Z(2,)],
     "pinv")
case("cond", lambda a: la.cond(spread(a)), [Z(3, 3)], "svd")
case("cond-neg2-batched", lambda a: la.cond(spread(a), -2), [Z(2, 3, 3)], "svd")
case("cond-fro", lambda a: la.cond(I2(a), "fro"), [Z(3, 3)], "solve")
case("cond-inf-batched", lambda a: la.cond(I2(a), np.inf), [Z(2, 3, 3)], "solve absolute")

# ---- norms and products --------------------------------------------------------------

case("norm", lambda a: la.norm(a), [Z(2, 3)], "sqrt real conjugate")
case("norm-vector-axis", lambda a: la.norm(a, axis=-1, keepdims=True), [Z(2, 3)], "sqrt")
case("norm-fro-axes", lambda a: la.norm(a, "fro", axis=(0, 2)), [Z(2, 3, 2)], "sqrt")
case("norm-matrix-1", lambda a: la.norm(a, 1), [Z(3, 2)], "absolute max")
case("norm-matrix-neg-inf", lambda a: la.norm(a, -np.inf, axis=(1, 0)), [Z(3, 2)],
     "absolute min")
case("norm-vector-inf", lambda a: la.norm(a, np.inf, axis=0), [Z(3, 2)], "absolute max")
case("norm-vector-1", lambda a: la.norm(a, 1, axis=1), [Z(2, 3)], "absolute sum")
case("norm-vector-p3", lambda a: la.norm(a, 3, axis=0), [Z(3, 2)], "absolute power")
case("norm-vector-neg1", lambda a: la.norm(a, -1), [Z(3)], "absolute power")
case("norm-vector-0", lambda a: la.norm(a, 0) * la.norm(a), [Z(4)], "sqrt")
case("norm-2", lambda a: la.norm(spread(a), 2), [Z(3, 2)], "svd")
case("norm-nuc-axes", lambda a: la.norm(spread(a), "nuc", axis=(-1, -2)), [Z(2, 3, 3)], "svd")
case("matrix_norm-neg2", lambda a: la.matrix_norm(spread(a), ord=-2), [Z(2, 3, 2)], "svd")
case("vector_norm-axes", lambda a: la.vector_norm(a, axis=(0, 2), ord=3), [Z(2, 2, 3)],
     "absolute power")
case("matrix_norm", lambda a: la.matrix_norm(a, keepdims=True), [Z(2, 3, 2)], "sqrt")
case("vecdot", lambda a, b: la.vecdot(a, b), [Z(2, 3), Z(3)], "conjugate multiply sum")
case("vecdot-real-x1", lambda a, b: la.vecdot(a, b, axis=0), [R(3, 2), Z(3, 1)],
     "multiply sum")
case("vecdot-real-x2", lambda a, b: la.vecdot(a, b), [Z(2, 3), R(2, 3)],
     "conjugate multiply sum")

# ---- eig: real matrices with complex spectra, complex matrices -----------------------

case("eig-real-complex-spectrum", lambda a: tup(la.eig(a + ROT)), [R(3, 3)], "eig",
     **SPECTRUM)
case("eigvals-real-complex-spectrum-batched", lambda a: la.eigvals(a + ROT), [R(2, 3, 3)],
     "eig", **SPECTRUM)
case("eig", lambda a: tup(la.eig(spread(a))), [Z(3, 3)], "eig")
case("eig-batched", lambda a: tup(la.eig(spread(a))), [Z(2, 3, 3)], "eig")
case("eig-vectors-abs", lambda a: np.abs(la.eig(spread(a)).eigenvectors), [Z(4, 4)], "eig")
case("eigvals", lambda a: la.eigvals(spread(a)), [Z(3, 3)], "eig")
case("eig-complex64", lambda a: tup(la.eig(spread(a))), [Z(3, 3, dtype="complex64")], "eig",
     **C64)

# ---- scipy.linalg ----------------------------------------------------------------------

try:
    import scipy.linalg  # noqa: F401
except ImportError:  # scipy is optional: its cases are simply absent
    pass
else:
    st, cs = scipy_fn("solve_triangular"), scipy_fn("cho_solve")
    case("solve_triangular-lower", lambda a, b: st(I2(a), b, lower=True), [Z(3, 3), Z(3, 2)],
         "solve")
    case("solve_triangular-upper-C", lambda a, b: st(I2(a), b, trans="C"), [Z(3, 3), Z(3)],
         "solve conjugate")
    case("solve_triangular-2-unit", lambda a, b: st(a, b, trans=2, lower=True,
                                                    unit_diagonal=True),
         [Z(3, 3), Z(3, 2)], "solve conjugate")
    case("solve_triangular-T-real-a", lambda a, b: st(I2(a), b, trans=1), [R(3, 3), Z(3, 2)],
         "solve")
    case("cho_solve-lower", lambda c, b: cs((I2(c), True), b), [Z(3, 3), Z(3, 2)],
         "solve conjugate")
    case("cho_solve-upper", lambda c, b: cs((I2(c), False), b), [Z(3, 3), Z(3)],
         "solve conjugate")
    case("expm", lambda a: scipy_fn("expm")(a), [Z(3, 3)], "expm")
    case("expm-batched", lambda a: scipy_fn("expm")(2 * a), [Z(2, 2, 2)], "expm")
    case("sqrtm", lambda a: scipy_fn("sqrtm")(I2(a)), [Z(3, 3)], "sqrtm")
    case("sqrtm-real-negative-eigenvalue",
         lambda a: scipy_fn("sqrtm")(a + np.diag([-1.0, 2.0, 3.0])), [R(3, 3)], "sqrtm",
         **SPECTRUM)
