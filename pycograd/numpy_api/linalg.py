"""``np.linalg.*`` (and ``scipy.linalg`` when scipy is importable) on traced values.

Each function is numpy's, composed from the linear-algebra primitives of ``pycograd.ops``
(``solves``, ``decompositions``, ``matrix_functions``) and differentiable numpy: ``inv``
is ``solve(a, I)``, ``det`` is ``sign * exp(logabsdet)`` (complex: ``exp(log det)``),
``lstsq`` is ``pinv(a) @ b``, matrix 2-norms and ``cond`` come from singular values,
``matrix_power`` is repeated squaring. Results have numpy's types (``EighResult``,
``SVDResult``, ``QRResult``, ``SlogdetResult``, ``EigResult``), so attribute access and
tuple unpacking both work.

Complex inputs are accepted by the functions named in ``COMPLEX_OK`` (their rules follow
the cotangent convention of ``pycograd.ops.complex``); any other function raises
``NoRuleError`` on a complex input rather than return a wrong gradient. Values with no
gradient (a real matrix's ``slogdet`` sign, ``matrix_rank``, ``lstsq``'s rank) are
computed on the detached values.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pycograd.core.errors import ArgumentError, NoRuleError, ShapeError
from pycograd.numpy_api import functions as F
from pycograd.numpy_api.functions import implements
from pycograd.ops import decompositions as D
from pycograd.ops import matrix_functions as MF
from pycograd.ops import solves as S
from pycograd.ops.matrix import (
    conj,
    diag_embed,
    diag_part,
    float_dtype,
    mH,
    mT,
    sym_tangent,
    unpack,
)

# numpy's result types, taken from what its functions return: the module that defines them
# is private and moved in numpy 2.0 (``numpy.linalg.linalg`` -> ``numpy.linalg._linalg``).
_ONE = np.eye(1)
EighResult = type(np.linalg.eigh(_ONE))
EigResult = type(np.linalg.eig(_ONE))
QRResult = type(np.linalg.qr(_ONE))
SlogdetResult = type(np.linalg.slogdet(_ONE))
SVDResult = type(np.linalg.svd(_ONE))

COMPLEX_OK: set[str] = set()
"""The functions here whose rules handle complex inputs."""


def _real(name: str, *xs: Any) -> None:
    """Refuse complex inputs to a function whose rules are real-only."""
    if name in COMPLEX_OK:
        return
    for x in xs:
        if np.result_type(x).kind == "c":
            raise NoRuleError(f"np.linalg.{name}: complex inputs are not differentiable in "
                              "pycograd yet (only real float32/float64 matrices are)")


def _as_float(x: Any) -> Any:
    """Integer/bool inputs computed in float64, as numpy.linalg does."""
    dt = np.result_type(x)
    want = float_dtype(dt)
    return x if dt == want else F.astype(x, want)


def _real_dtype(dt: Any) -> np.dtype:
    """float32 for complex64, float64 for complex128; real dtypes stay."""
    return np.finfo(dt).dtype if np.dtype(dt).kind == "c" else np.dtype(dt)


def _abs2(x: Any) -> Any:
    """``|x|^2``, a polynomial (``x x``, complex: ``real(x conj(x))``), so exact to every
    order at 0 too, unlike ``abs(x) ** 2``."""
    return np.real(x * np.conj(x)) if np.result_type(x).kind == "c" else x * x


def _matrix(name: str, a: Any, square: bool = False) -> Any:
    _real(name, a)
    s = np.shape(a)
    if len(s) < 2:
        raise ShapeError(f"np.linalg.{name}: needs an array of at least 2 dims, got shape {s}")
    if square and s[-1] != s[-2]:
        raise ShapeError(f"np.linalg.{name}: last two dims must be square, got shape {s}")
    return _as_float(a)


# ---- solves and inverses ----------------------------------------------------------

COMPLEX_OK.update(("solve", "inv", "slogdet", "det", "pinv", "lstsq", "tensorinv",
                   "tensorsolve", "matrix_power", "multi_dot", "cond", "norm", "vecdot",
                   "eig", "eigvals", "solve_triangular", "cho_solve", "sqrtm", "expm"))
COMPLEX_OK.update(("matmul", "outer", "tensordot", "trace", "diagonal", "matrix_transpose",
                   "cross", "matrix_norm", "vector_norm", "matrix_rank"))  # generic numpy


def _needs_complex_svd(name: str, x: Any) -> None:
    """Refuse a complex ``x`` where the result comes from singular values, until the
    complex SVD is differentiable (``"svd"`` in ``COMPLEX_OK``)."""
    if "svd" not in COMPLEX_OK and np.result_type(x).kind == "c":
        raise NoRuleError(f"np.linalg.{name} of a complex matrix needs singular values, and "
                          "pycograd does not differentiate the complex SVD yet")

@implements(np.linalg.solve)
def solve(a: Any, b: Any) -> Any:
    """``b`` of ndim 1 is one vector (numpy 2 semantics); otherwise a stack of matrices."""
    a = _matrix("solve", a, square=True)
    _real("solve", b)
    b = _as_float(b)
    if np.ndim(b) == 1:
        return S.solve_p.bind(a, b[:, None])[..., 0]
    return S.solve_p.bind(a, b)


@implements(np.linalg.inv)
def inv(a: Any) -> Any:
    return S.inv(_matrix("inv", a, square=True))


@implements(np.linalg.slogdet)
def slogdet(a: Any) -> SlogdetResult:
    """Real ``a``: ``sign`` has no gradient (it is piecewise constant), ``logabsdet`` has.
    Complex ``a``: both come from the holomorphic ``log det``, ``sign = exp(i imag)`` (a
    differentiable phase; 0 for a singular matrix, as numpy's) and ``logabsdet = real``."""
    a = _matrix("slogdet", a, square=True)
    if np.result_type(a).kind != "c":
        return SlogdetResult(S.sign_p.bind(a), S.logabsdet_p.bind(a))
    ld = S.logdet_p.bind(a)
    logabs = np.real(ld)
    return SlogdetResult(np.where(logabs == -np.inf, 0, np.exp(1j * np.imag(ld))), logabs)


@implements(np.linalg.det)
def det(a: Any) -> Any:
    """``sign * exp(log|det|)`` (complex: ``exp(log det)``): the gradient ``det * A^-T``
    where ``A`` is invertible."""
    if np.result_type(a).kind == "c":
        return np.exp(S.logdet_p.bind(_matrix("det", a, square=True)))
    sign, logabs = slogdet(a)
    return sign * np.exp(logabs)


@implements(np.linalg.pinv)
def pinv(a: Any, rcond: Any = None, hermitian: bool = False, *, rtol: Any = F.NO_VALUE) -> Any:
    """Gradient exact wherever the rank is locally constant (Golub & Pereyra).
    ``hermitian=True`` reads the lower triangle only (numpy's eigh route), so the gradient
    lands there."""
    a = _matrix("pinv", a)
    if hermitian:
        a = sym_tangent(a, lower=True)
    if rcond is None:
        if rtol is F.NO_VALUE:
            rcond = 1e-15
        elif rtol is None:
            rcond = max(np.shape(a)[-2:]) * float(np.finfo(np.result_type(a)).eps)
        else:
            rcond = rtol
    elif rtol is not F.NO_VALUE:
        raise ArgumentError("`rtol` and `rcond` can't be both set.")
    return S.pinv_p.bind(a, rcond=rcond, hermitian=bool(hermitian))


@implements(np.linalg.lstsq)
def lstsq(a: Any, b: Any, rcond: Any = None) -> tuple:
    """``(x, residuals, rank, s)`` as numpy returns them. ``x = pinv(a, rcond) @ b`` (the
    minimum-norm least-squares solution) and ``s`` (the singular values) are
    differentiable; ``residuals`` (squared column norms ``sum |b - a x|^2``, present only
    when ``rank == N < M``) too; ``rank`` is a plain int. Under vmap and eval_shape the
    rank cannot be read, and the generic rank ``min(M, N)`` is assumed."""
    a = _matrix("lstsq", a)
    _needs_complex_svd("lstsq", a)
    _real("lstsq", b)
    b = _as_float(b)
    m, n = np.shape(a)
    eps = float(np.finfo(np.result_type(a)).eps)
    rc = eps * max(m, n) if rcond is None else rcond
    x = pinv(a, rcond=rc) @ b
    s = svd(a, compute_uv=False)
    try:
        s_plain = F._detach(s)
        rank = int(np.sum(s_plain > rc * np.max(s_plain, initial=0.0)))
    except NoRuleError:  # under vmap / eval_shape: the generic (full) rank
        rank = min(m, n)
    if rank == n and m > n:
        resid = np.sum(_abs2(b - a @ x), axis=0)
        if np.ndim(b) == 1:
            resid = np.reshape(resid, (1,))
    else:
        resid = np.zeros((0,), dtype=_real_dtype(np.result_type(a, b)))
    return x, resid, np.int32(rank), s  # numpy's rank is an int32


@implements(np.linalg.tensorinv)
def tensorinv(a: Any, ind: int = 2) -> Any:
    s = np.shape(a)
    if ind <= 0:
        raise ArgumentError("Invalid ind argument.")
    out_shape = s[ind:] + s[:ind]
    n = math.prod(s[ind:])
    return np.reshape(inv(np.reshape(a, (math.prod(s[:ind]), n))), out_shape)


@implements(np.linalg.tensorsolve)
def tensorsolve(a: Any, b: Any, axes: Any = None) -> Any:
    if axes is not None:
        nd = np.ndim(a)
        allaxes = [i for i in range(nd) if i not in [x % nd for x in axes]]
        a = np.transpose(a, allaxes + [x % nd for x in axes])
    sb = np.shape(b)
    rest = np.shape(a)[np.ndim(b):]
    n = math.prod(rest)
    x = solve(np.reshape(a, (math.prod(sb), n)), np.reshape(b, (-1,)))
    return np.reshape(x, rest)


# ---- triangular and symmetric factorizations ----------------------------------------

COMPLEX_OK.update(("cholesky", "eigh", "eigvalsh", "svd", "svdvals", "qr", "cho_factor"))


@implements(np.linalg.cholesky)
def cholesky(a: Any, /, *, upper: bool = False) -> Any:
    """Reads the lower (``upper=True``: upper) triangle, as numpy does; the gradient lands
    on that triangle. Complex: ``A = L L^H`` (``U^H U``), the diagonal's imaginary part
    ignored, as LAPACK does."""
    a = _matrix("cholesky", a, square=True)
    if upper:
        return mT(D.cholesky_p.bind(mT(a)))
    return D.cholesky_p.bind(a)


def _eigh_parts(name: str, a: Any, UPLO: str) -> list:
    if UPLO not in ("L", "U"):
        raise ArgumentError("UPLO argument must be 'L' or 'U'")
    a = _matrix(name, a, square=True)
    w, v = unpack(D.eigh_p.bind(a, lower=UPLO == "L"), D.eigh_cores(np.shape(a)))
    return [np.real(w), v]  # complex: the packed w is complex with a zero imaginary part


@implements(np.linalg.eigh)
def eigh(a: Any, UPLO: str = "L") -> EighResult:
    """Eigenvector gradients divide by eigenvalue gaps: undefined at repeated eigenvalues.
    Complex (Hermitian) ``a``: each eigenvector is defined up to a phase ``e^{i phi}``;
    a loss that depends on it raises NoRuleError (use ``|V|**2``, ``V diag(w) V^H``...)."""
    return EighResult(*_eigh_parts("eigh", a, UPLO))


@implements(np.linalg.eigvalsh)
def eigvalsh(a: Any, UPLO: str = "L") -> Any:
    return _eigh_parts("eigvalsh", a, UPLO)[0]


@implements(np.linalg.eig)
def eig(a: Any) -> EigResult:
    """Distinct eigenvalues for a defined gradient. A real matrix with complex
    eigenvalues gives complex ``(w, V)``, as numpy does (eval_shape, which sees no values,
    reports the real dtype there). Complex eigenvectors are differentiated in LAPACK's
    gauge (unit 2-norm, largest-magnitude component real), so finite differences of
    numpy's own vectors match."""
    a = _matrix("eig", a, square=True)
    return EigResult(*unpack(D.eig_p.bind(a), D.eigh_cores(np.shape(a))))


@implements(np.linalg.eigvals)
def eigvals(a: Any) -> Any:
    return eig(a)[0]


@implements(np.linalg.svd)
def svd(a: Any, full_matrices: bool = True, compute_uv: bool = True,
        hermitian: bool = False) -> Any:
    """Thin SVD as one primitive (``hermitian=True``: through eigh, as numpy does).
    Complex ``a``: ``u_k`` and ``v_k`` share a phase ``e^{i phi}`` that the SVD leaves
    free; a loss that depends on it raises NoRuleError (``U @ U^H``, ``|U|**2``,
    ``U * Vh.T`` products... do not).

    With ``full_matrices=True`` on a non-square matrix the extra columns of ``U`` (rows of
    ``Vh``) are LAPACK's arbitrary orthonormal basis of range(A)^perp (null(A)). Their
    derivative is taken with no rotation within that subspace (``dU_perp = -U dU^T
    U_perp``), exact for every use invariant to the basis (``U_perp @ U_perp.T``, norms
    of ``U_perp.T @ x``). Reverse mode checks the cotangent and raises NoRuleError for a
    loss that depends on the basis; forward mode cannot tell, and returns the tangent of
    that gauge (of a smoothly moving basis, not of LAPACK's) whatever the use. Real
    inputs only there."""
    a = _matrix("svd", a)
    if hermitian:
        return _svd_hermitian(a, compute_uv)
    u, s, vh = unpack(D.svd_p.bind(a), D.svd_cores(np.shape(a)))
    s = np.real(s)  # complex: the packed s is complex with a zero imaginary part
    if not compute_uv:
        return s
    m, n = np.shape(a)[-2:]
    if full_matrices and m != n:
        if np.result_type(a).kind == "c":
            raise NoRuleError("np.linalg.svd(full_matrices=True) of a non-square complex "
                              "matrix: the extra columns of U (rows of Vh) are not "
                              "differentiable for complex inputs yet; use "
                              "full_matrices=False")
        if m > n:
            u = np.concatenate([u, D.svd_complement_p.bind(a, u, left=True)], axis=-1)
        else:
            comp = D.svd_complement_p.bind(a, mT(vh), left=False)
            vh = np.concatenate([vh, mT(comp)], axis=-2)
    return SVDResult(u, s, vh)


def _svd_hermitian(a: Any, compute_uv: bool) -> Any:
    """numpy's own route for ``hermitian=True`` (an eigh, values sorted by magnitude), so
    the factors have numpy's signs."""
    w, v = eigh(a)
    s = np.abs(w)
    order = np.argsort(s, axis=-1)[..., ::-1]
    s = np.take_along_axis(s, order, axis=-1)
    if not compute_uv:
        return s
    sgn = np.take_along_axis(np.sign(w), order, axis=-1)
    u = np.take_along_axis(v, order[..., None, :], axis=-1)
    return SVDResult(u, s, mH(u * sgn[..., None, :]))


@implements(np.linalg.svdvals)
def svdvals(x: Any, /) -> Any:
    return svd(x, compute_uv=False)


@implements(np.linalg.qr)
def qr(a: Any, mode: str = "reduced") -> Any:
    """Modes 'reduced', 'r' and 'complete'. Wide matrices (M < N) factor their leading
    square block: ``R = [R1, Q^T A2]`` ('complete' equals 'reduced' there).

    'complete' with M > N appends LAPACK's arbitrary orthonormal basis ``Q_perp`` of
    range(A)^perp to Q and zero rows to R. As for ``svd(full_matrices=True)``, its
    derivative has no rotation within that subspace (``dQ_perp = -Q dQ^T Q_perp``): exact
    for uses invariant to the basis (``Q_perp @ Q_perp.T``, norms of ``Q_perp.T @ x``);
    reverse mode raises NoRuleError for a loss that depends on the basis, forward mode
    cannot tell and returns that gauge's tangent. Real inputs only there."""
    a = _matrix("qr", a)
    m, n = np.shape(a)[-2:]
    if mode not in ("reduced", "r", "complete"):
        raise NoRuleError(f"np.linalg.qr(mode={mode!r}) is not differentiable in pycograd "
                          "(use mode='reduced', 'r' or 'complete')")
    if mode == "complete" and m > n and np.result_type(a).kind == "c":
        raise NoRuleError("np.linalg.qr(mode='complete') of a tall complex matrix: the "
                          "extra columns of Q are not differentiable for complex inputs "
                          "yet; use mode='reduced'")
    if m >= n:
        q, r = unpack(D.qr_p.bind(a), D.qr_cores(np.shape(a)))
    else:
        q, r1 = unpack(D.qr_p.bind(a[..., :, :m]), D.qr_cores(np.shape(a)[:-1] + (m,)))
        r = np.concatenate([r1, mH(q) @ a[..., :, m:]], axis=-1)
    if mode == "complete" and m > n:
        zeros = np.zeros(np.shape(a)[:-2] + (m - n, n), dtype=np.result_type(r))
        q = np.concatenate([q, D.qr_complement_p.bind(a, q)], axis=-1)
        r = np.concatenate([r, zeros], axis=-2)
    return r if mode == "r" else QRResult(q, r)


# ---- norms, powers, products --------------------------------------------------------

def _vector_and_simple_norm(x: Any, ord: Any = None, axis: Any = None,
                            keepdims: bool = False) -> Any:
    """Vector norms (any ``ord``) and the matrix norms that need no decomposition
    ('fro', 1, -1, inf, -inf)."""
    nd = np.ndim(x)
    axes = F.normalize_axis(axis, nd, "norm")
    if axes is None and ord is not None and nd > 2:
        raise ShapeError(f"norm: ord={ord!r} needs a 1-d or 2-d array or an axis, got shape "
                         f"{np.shape(x)}")
    matrix = (axes is None and nd == 2 and ord is not None) or (axes is not None
                                                                 and len(axes) == 2)
    if ord is None or (ord == "fro" and matrix) or (ord == 2 and not matrix):
        return F.root(F.sum(_abs2(x), axes, keepdims=keepdims))  # 0 slope at 0
    if matrix:
        if ord not in (1, -1, np.inf, -np.inf):
            raise NoRuleError(f"np.linalg.norm(ord={ord!r}) of a matrix needs a decomposition "
                              "that pycograd has no rule for")
        row, col = (0, 1) if axis is None else (int(a) % nd for a in axis)  # order matters
        axes = (row, col)
        inner_ax, outer_ax = (row, col) if ord in (1, -1) else (col, row)
        sums = F.sum(np.abs(x), inner_ax, keepdims=True)
        pick = F.max if ord > 0 else F.min
        r = pick(sums, outer_ax, keepdims=True)
        return r if keepdims else F.reshape(r, tuple(d for i, d in enumerate(np.shape(r))
                                                   if i not in axes))
    if isinstance(ord, str):
        raise ArgumentError(f"norm: invalid norm order {ord!r} for vectors")
    if ord == np.inf:
        return F.max(np.abs(x), axes, keepdims=keepdims)
    if ord == -np.inf:
        return F.min(np.abs(x), axes, keepdims=keepdims)
    if ord == 0:
        return F.astype(F.sum(x != 0, axes, keepdims=keepdims), _real_dtype(np.result_type(x)))
    if ord == 1:
        return F.sum(np.abs(x), axes, keepdims=keepdims)
    return F.root(F.sum(np.abs(x) ** ord, axes, keepdims=keepdims), 1.0 / ord)


@implements(np.linalg.norm)
def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:
    """Every ord numpy accepts; matrix 2, -2 and 'nuc' norms from singular values (the
    largest/smallest must be simple for a gradient), the rest without decompositions.
    Complex ``x`` enters through ``|x|`` (real results)."""
    _real("norm", x)
    x = x if np.result_type(x).kind == "f" else _as_float(x)  # float16 stays, as in numpy
    nd = np.ndim(x)
    matrix = (axis is None and nd == 2 and ord is not None) or \
        (isinstance(axis, (tuple, list)) and len(axis) == 2)
    if not matrix or ord not in (2, -2, "nuc"):
        return _vector_and_simple_norm(x, ord, axis, keepdims)
    _needs_complex_svd(f"norm(ord={ord!r})", x)
    row, col = (0, 1) if axis is None else (int(a) % nd for a in axis)
    if row == col:
        raise ArgumentError("Duplicate axes given.")
    y = np.moveaxis(x, (row, col), (-2, -1))
    s = svd(y, compute_uv=False)
    r = np.sum(s, axis=-1) if ord == "nuc" else (np.max if ord == 2 else np.min)(s, axis=-1)
    if keepdims:
        shape = list(np.shape(x))
        shape[row] = shape[col] = 1
        r = np.reshape(r, tuple(shape))
    return r


@implements(np.linalg.matrix_norm)
def matrix_norm(x: Any, /, *, keepdims: bool = False, ord: Any = "fro") -> Any:
    return norm(x, ord=ord, axis=(-2, -1), keepdims=keepdims)


@implements(np.linalg.vector_norm)
def vector_norm(x: Any, /, *, axis: Any = None, keepdims: bool = False, ord: Any = 2) -> Any:
    if axis is None:
        r = norm(np.reshape(x, (-1,)), ord=ord)
        return np.reshape(r, (1,) * np.ndim(x)) if keepdims else r
    if isinstance(axis, (tuple, list)) and len(axis) > 1:  # a vector norm over many axes
        nd = np.ndim(x)
        ax = sorted(int(a) % nd for a in axis)
        rest = [i for i in range(nd) if i not in ax]
        y = np.reshape(np.transpose(x, rest + ax), tuple(np.shape(x)[i] for i in rest) + (-1,))
        r = norm(y, ord=ord, axis=-1)
        if keepdims:
            r = np.reshape(r, tuple(1 if i in ax else d for i, d in enumerate(np.shape(x))))
        return r
    return norm(x, ord=ord, axis=axis, keepdims=keepdims)


@implements(np.linalg.cond)
def cond(x: Any, p: Any = None) -> Any:
    """Differentiable: ``s_max / s_min`` for p in (None, 2, -2), else
    ``norm(x, p) * norm(inv(x), p)``."""
    x = _matrix("cond", x)
    if p in (None, 2, -2):
        _needs_complex_svd(f"cond(p={p!r})", x)
        s = svd(x, compute_uv=False)
        hi, lo = np.max(s, axis=-1), np.min(s, axis=-1)
        return hi / lo if p in (None, 2) else lo / hi
    return norm(x, p, axis=(-2, -1)) * norm(inv(x), p, axis=(-2, -1))


@implements(np.linalg.matrix_rank)
def matrix_rank(A: Any, tol: Any = None, hermitian: bool = False, *, rtol: Any = None) -> Any:
    """An integer: no gradient. Where the values exist it is numpy's own; under ``vmap``
    (and ``eval_shape``) numpy's formula runs on the traced singular values, so
    ``vmap(np.linalg.matrix_rank)`` batches."""
    try:
        return np.linalg.matrix_rank(F._detach(A), F._detach(tol), hermitian,
                                     rtol=F._detach(rtol))
    except NoRuleError:
        pass
    if tol is not None and rtol is not None:
        raise ArgumentError("matrix_rank: `tol` and `rtol` can't be both set.")
    A = F.stop_gradient(A)
    if np.ndim(A) < 2:
        return np.sum(np.any(A != 0))
    s = svd(A, compute_uv=False, hermitian=hermitian)
    if tol is None:
        if rtol is None:
            rtol = max(np.shape(A)[-2:]) * np.finfo(np.result_type(s)).eps
        else:
            rtol = np.expand_dims(rtol, -1)
        tol = np.max(s, axis=-1, keepdims=True) * rtol
    else:
        tol = np.expand_dims(tol, -1)
    return np.sum(s > tol, axis=-1)


@implements(np.linalg.matrix_power)
def matrix_power(a: Any, n: int) -> Any:
    """Repeated squaring; a negative power inverts first."""
    a = _matrix("matrix_power", a, square=True) if n < 0 else a
    if np.ndim(a) < 2 or np.shape(a)[-1] != np.shape(a)[-2]:
        raise ShapeError(f"matrix_power: needs square matrices, got shape {np.shape(a)}")
    n = int(n)
    if n == 0:
        return np.broadcast_to(np.eye(np.shape(a)[-1], dtype=np.result_type(a)), np.shape(a))
    if n < 0:
        a, n = inv(a), -n
    result = None
    while n:
        if n & 1:
            result = a if result is None else result @ a
        n >>= 1
        if n:
            a = a @ a
    return result


@implements(np.linalg.multi_dot)
def multi_dot(arrays: Sequence, *, out: Any = None) -> Any:
    """Left-to-right products (numpy picks a cheaper order; the values agree to rounding);
    a 1-d first/last array is a row/column vector, as in numpy."""
    F._unsupported("linalg.multi_dot", out=out)
    if len(arrays) < 2:
        raise ArgumentError("Expecting at least two arrays.")
    return functools.reduce(np.matmul, arrays)


@implements(np.linalg.matrix_transpose, np.matrix_transpose)
def matrix_transpose(x: Any, /) -> Any:
    if np.ndim(x) < 2:
        raise ArgumentError("Input array must be at least 2-dimensional")
    return mT(x)


@implements(np.linalg.matmul)
def matmul(x1: Any, x2: Any, /) -> Any:
    return np.matmul(x1, x2)


@implements(np.linalg.outer)
def outer(x1: Any, x2: Any, /) -> Any:
    return np.outer(x1, x2)


@implements(np.linalg.tensordot)
def tensordot(x1: Any, x2: Any, /, *, axes: Any = 2) -> Any:
    return np.tensordot(x1, x2, axes=axes)


@implements(np.linalg.trace)
def trace(x: Any, /, *, offset: int = 0, dtype: Any = None) -> Any:
    return np.trace(x, offset, axis1=-2, axis2=-1, dtype=dtype)


@implements(np.linalg.diagonal)
def diagonal(x: Any, /, *, offset: int = 0) -> Any:
    return np.diagonal(x, offset, axis1=-2, axis2=-1)


@implements(np.linalg.cross)
def cross(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    """The array-API cross product: 3-vectors only, else ``np.cross``."""
    n1, n2 = np.shape(x1)[axis], np.shape(x2)[axis]
    if n1 != 3 or n2 != 3:
        raise ArgumentError("Both input arrays must be (arrays of) 3-dimensional vectors, "
                            f"but they are {n1} and {n2} dimensional instead.")
    return np.cross(x1, x2, axis=axis)


@implements(np.linalg.vecdot)
def vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    """``sum(conj(x1) * x2)``, as numpy's (the conjugate only where ``x1`` is complex)."""
    return np.sum(conj(x1) * x2, axis=axis)


# ---- scipy.linalg (registered only when scipy imports) ------------------------------

def solve_triangular(a: Any, b: Any, trans: Any = 0, lower: bool = False,
                     unit_diagonal: bool = False, overwrite_b: bool = False,
                     check_finite: bool = True) -> Any:
    """scipy's triangular solve: the triangle (and unit diagonal) is masked in, then a
    general solve; the gradient reaches only the triangle that is read. ``trans=2``/'C'
    solves with the conjugate transpose."""
    _real("solve_triangular", a, b)
    a, b = _as_float(_single(a)), _as_float(_single(b))
    t = {0: 0, 1: 1, 2: 2, "N": 0, "T": 1, "C": 2}[trans]
    tri = np.tril(a) if lower else np.triu(a)
    if unit_diagonal:
        n = np.shape(a)[-1]
        tri = tri - diag_embed(diag_part(tri)) + np.eye(n, dtype=np.result_type(tri))
    return solve(tri if t == 0 else mT(tri) if t == 1 else mH(tri), b)


def _single(x: Any) -> Any:
    """float16 as float32: scipy.linalg computes float16 there (numpy.linalg refuses it)."""
    return F.astype(x, np.float32) if np.result_type(x) == np.float16 else x


def cho_factor(a: Any, lower: bool = False, overwrite_a: bool = False,
               check_finite: bool = True) -> tuple:
    """``(c, lower)`` as scipy returns it: the factor in one triangle, ``a``'s entries in
    the other (scipy leaves them there too)."""
    a = _matrix("cho_factor", a, square=True)
    if lower:
        return D.cholesky_p.bind(a) + np.triu(a, 1), lower
    return mT(D.cholesky_p.bind(mT(a))) + np.tril(a, -1), lower


def cho_solve(c_and_lower: tuple, b: Any, overwrite_b: bool = False,
              check_finite: bool = True) -> Any:
    """``A = L L^H`` (``U^H U``): two triangular solves, one with the conjugate
    transpose."""
    c, lower = c_and_lower
    y = solve_triangular(c, b, trans=0 if lower else 2, lower=lower)
    return solve_triangular(c, y, trans=2 if lower else 0, lower=lower)


def cholesky_scipy(a: Any, lower: bool = False, overwrite_a: bool = False,
                   check_finite: bool = True) -> Any:
    return cholesky(a, upper=not lower)


def sqrtm(A: Any, **kwargs: Any) -> Any:
    """The principal square root (scipy's: complex for a real matrix with negative
    eigenvalues); its derivative solves ``X dX + dX X = dA`` (a Kronecker system of size
    n^2, fine for small matrices)."""
    return MF.sqrtm_p.bind(_matrix("sqrtm", A, square=True))


def expm(A: Any) -> Any:
    """The derivative is the Frechet derivative, one expm of a 2n x 2n block matrix."""
    return MF.expm_p.bind(_matrix("expm", _single(A), square=True))


def solve_sylvester(a: Any, b: Any, q: Any) -> Any:
    """``X`` with ``A X + X B = Q``, as the Kronecker system ``(I kron A + B^T kron I)
    vec(X) = vec(Q)`` (column-major ``vec``) and one general solve, so every transform
    differentiates it (a system of size m n: meant for small matrices, as ``sqrtm``)."""
    _real("solve_sylvester", a, b, q)
    a = _matrix("solve_sylvester", _single(a), square=True)
    b = _matrix("solve_sylvester", _single(b), square=True)
    q = _single(q)
    m, n = np.shape(a)[-1], np.shape(b)[-1]
    if np.shape(q)[-2:] != (m, n):
        raise ShapeError(f"solve_sylvester: Q of shape {np.shape(q)} does not fit A of shape "
                         f"{np.shape(a)} and B of shape {np.shape(b)}; Q must be ({m}, {n})")
    dt = np.result_type(a, b, q)
    k = np.kron(np.eye(n, dtype=dt), a) + np.kron(np.transpose(b), np.eye(m, dtype=dt))
    x = solve(k, np.reshape(np.transpose(q), (m * n,)))
    return np.transpose(np.reshape(x, (n, m)))


def solve_banded(l_and_u: tuple, ab: Any, b: Any, overwrite_ab: bool = False,
                 overwrite_b: bool = False, check_finite: bool = True) -> Any:
    """scipy's banded solve: the dense matrix is gathered from the band storage
    (``a[i, j] = ab[u + i - j, j]``) and solved; the gradient reaches only the stored band
    (the unused corners of ``ab`` get zero, as they are never read)."""
    _real("solve_banded", ab, b)
    lo, up = (int(v) for v in l_and_u)
    rows, n = np.shape(ab)
    if rows != lo + up + 1:
        raise ShapeError(f"solve_banded: ab has {rows} rows, but (l, u) = ({lo}, {up}) needs "
                         f"l + u + 1 = {lo + up + 1}")
    i, j = np.indices((n, n))
    r = up + i - j
    inside = (r >= 0) & (r < rows)
    a = np.where(inside, ab[np.clip(r, 0, rows - 1), j], 0.0)
    return solve(a, b)


SCIPY_LINALG_NAMES = ("solve_triangular", "cho_factor", "cho_solve", "cholesky", "sqrtm", "expm",
                      "solve_sylvester", "solve_banded")


@functools.cache
def scipy_routes() -> dict[Callable, Callable]:
    """scipy.linalg function -> its differentiable version. scipy converts its inputs with
    ``np.asarray`` before numpy's protocols could dispatch, so these are reached by routing
    the call itself; built on first use, since importing scipy.linalg is slow."""
    try:
        import scipy.linalg as sl
    except ImportError:  # scipy is optional
        return {}
    ours = {"solve_triangular": solve_triangular, "cho_factor": cho_factor,
            "cho_solve": cho_solve, "cholesky": cholesky_scipy, "sqrtm": sqrtm, "expm": expm,
            "solve_sylvester": solve_sylvester, "solve_banded": solve_banded}
    return {getattr(sl, n): ours[n] for n in SCIPY_LINALG_NAMES}
