"""Matrix decompositions and solves: the nonlinear linear-algebra primitives.

Every primitive works on stacks ``(..., M, N)`` as numpy's gufuncs do, so one batching
rule serves all of them (move the batch axis first, pad ranks so loop dims line up, call
the same primitive). Decompositions with several outputs (eigh -> w, V; svd -> U, s, Vh;
qr -> Q, R; eig -> w, V) are *packed*: the primitive returns one array
``(..., P)`` holding each output's matrix flattened along the last axis, and
``unpack`` recovers them by slicing and reshaping, which is differentiable. One LAPACK
call feeds every output and the tape stays single-output; packing along the last axis
keeps the loop dims in front, so batching and broadcasting are unchanged.

Rules are the standard ones (Giles 2008, "An extended collection of matrix derivative
results"; Townsend 2016 for the SVD; Murray 2016 for Cholesky; Walter & Lehmann 2018 for
QR), written with numpy calls on possibly-traced values so that each is differentiable
again. Eigen/singular-vector rules divide by gaps ``w_j - w_i`` (``s_j^2 - s_i^2``): the
vectors' derivative does not exist at degenerate spectra. There the rules drop the
mixing within the degenerate subspace (gap 0 -> coefficient 0), which is exact for
functions of the values alone and for losses invariant to the basis of that subspace,
and meaningless otherwise; near-degenerate spectra give large gradients.

Symmetric inputs (eigh, cholesky) are read from one triangle only, as LAPACK does; the
gradient therefore lives on that triangle (the other one does not influence the result).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from pycograd.core.errors import NoRuleError, ShapeError
from pycograd.core.primitive import Joint, Primitive, primitive
from pycograd.core.trace import Tracer
from pycograd.ops.batching import to_front
from pycograd.ops.broadcasting import unbroadcast
from pycograd.ops.complex import match
from pycograd.ops.shaping import broadcast_shapes, shape_of


def mT(x: Any) -> Any:
    return np.swapaxes(x, -1, -2)


def float_dtype(dt: Any) -> np.dtype:
    """The dtype numpy.linalg computes in for inputs of dtype ``dt``: float32/float64 and
    complex64/complex128 stay, anything else (ints, bools, float16) is float64. Which
    functions accept complex inputs is decided in ``numpy_api.linalg`` (``COMPLEX_OK``)."""
    dt = np.dtype(dt)
    if dt.kind == "c":
        return dt
    return dt if dt.kind == "f" and dt.itemsize >= 4 else np.dtype(np.float64)


def _dtype(x: Any) -> np.dtype:
    return float_dtype(getattr(x, "dtype", None) or np.result_type(x))


def eye_like(a: Any) -> Any:
    """The identity broadcast to ``a``'s stack shape (square ``a``), in ``a``'s dtype."""
    s = np.shape(a)
    return np.broadcast_to(np.eye(s[-1], dtype=_dtype(a)), s)


def diag_embed(v: Any) -> Any:
    """``(..., n) -> (..., n, n)`` with ``v`` on the diagonal (differentiable)."""
    n = np.shape(v)[-1]
    return v[..., :, None] * np.eye(n, dtype=_dtype(v))


def diag_part(x: Any) -> Any:
    return np.diagonal(x, 0, -2, -1)


def inv_gaps(w: Any) -> Any:
    """``F[..., i, j] = 1 / (w_j - w_i)``; 0 on the diagonal and wherever the gap is
    exactly 0, so that functions of a degenerate spectrum alone (``sum(eigvalsh(a))``,
    the nuclear norm) keep their gradient, and gauge-invariant uses of the vectors too."""
    d = w[..., None, :] - w[..., :, None]
    off = d != 0
    return np.where(off, 1.0 / np.where(off, d, 1.0), 0.0).astype(_dtype(w))


# ---- packing of multi-output decompositions ---------------------------------------

def pack(lead: tuple, *outs: Any) -> Any:
    """Outputs with loop dims ``lead`` flattened and joined along one last axis."""
    return np.concatenate([np.reshape(o, lead + (-1,)) for o in outs], axis=-1)


def unpack(flat: Any, cores: list[tuple]) -> list:
    """Slice a packed array back into outputs of core shapes ``cores``."""
    lead = np.shape(flat)[:-1]
    out, start = [], 0
    for core in cores:
        n = math.prod(core)
        out.append(np.reshape(flat[..., start:start + n], lead + tuple(core)))
        start += n
    return out


# ---- shared rule helpers ----------------------------------------------------------

def gufunc_batch(prim_ref: Callable[[], Primitive], cores: tuple) -> Callable:
    """Batching rule of a gufunc-like primitive whose operand ``i`` has ``cores[i]`` core
    dims: batch axis first, ranks padded so every operand's loop dims line up."""
    def rule(size: int, vals: list, dims: list, **params: Any) -> tuple:
        loops = [np.ndim(v) - (d is not None) - c for v, d, c in zip(vals, dims, cores)]
        top = max(loops)
        moved = []
        for v, d, lp in zip(vals, dims, loops):
            if d is not None:
                v = to_front(v, d, size)
                s = np.shape(v)
                v = np.reshape(v, s[:1] + (1,) * (top - lp) + s[1:])
            moved.append(v)
        return prim_ref().bind(*moved, **params), 0
    return rule


def _square(name: str, s: tuple) -> int:
    if len(s) < 2 or not s[-1] == s[-2]:
        raise ShapeError(f"{name}: needs square matrices (..., n, n), got shape {s}")
    return s[-1]


def _mat(name: str, s: tuple) -> tuple:
    if len(s) < 2:
        raise ShapeError(f"{name}: needs matrices (..., M, N), got shape {s}")
    return s[-2], s[-1]


def _packed_shape(name: str, cores: Callable[[tuple], list], square: bool) -> Callable:
    def rule(args: list, **params: Any) -> tuple:
        s = shape_of(args[0])
        (_square if square else _mat)(name, s)
        total = sum(math.prod(c) for c in cores(s))
        return s[:-2] + (total,), _dtype(args[0])
    return rule


def _same_shape(name: str, square: bool = True) -> Callable:
    def rule(args: list, **params: Any) -> tuple:
        s = shape_of(args[0])
        (_square if square else _mat)(name, s)
        return s, _dtype(args[0])
    return rule


def sym_tangent(t: Any, lower: bool) -> Any:
    """The symmetric matrix a solver actually sees when it reads one triangle of ``t``."""
    tri = np.tril if lower else np.triu
    return tri(t) + mT(tri(t, -1 if lower else 1))


def sym_cotangent(g: Any, lower: bool) -> Any:
    """Adjoint of ``sym_tangent``: fold ``g`` onto the triangle that was read."""
    tri = np.tril if lower else np.triu
    return tri(g) + tri(mT(g), -1 if lower else 1)


# ---- solve ------------------------------------------------------------------------

def _solve_impl(a: Any, b: Any) -> Any:
    return np.linalg.solve(a, b)


def _solve_vjp(wanted: tuple, g: Any, ans: Any, a: Any, b: Any) -> tuple:
    gb = solve_p.bind(mT(a), g)
    ga = unbroadcast(match(-(gb @ mT(ans)), a), np.shape(a)) if 0 in wanted else None
    return ga, unbroadcast(match(gb, b), np.shape(b)) if 1 in wanted else None


def _solve_jvp(primals: list, tangents: list) -> tuple:
    (a, b), (ta, tb) = primals, tangents
    x = solve_p.bind(a, b)
    rhs = tb
    if ta is not None:
        rhs = -(ta @ x) if rhs is None else rhs - ta @ x
    return x, solve_p.bind(a, rhs)


def _solve_shape(args: list) -> tuple:
    sa, sb = shape_of(args[0]), shape_of(args[1])
    n = _square("solve", sa)
    if len(sb) < 2 or not sb[-2] == n:
        raise ShapeError(f"solve: right-hand side of shape {sb} does not match {sa}")
    batch = broadcast_shapes("solve", sa[:-2], sb[:-2])
    return batch + (n, sb[-1]), np.result_type(_dtype(args[0]), _dtype(args[1]))


solve_p = primitive("solve", _solve_impl, Joint(_solve_vjp), jvp=_solve_jvp,
                    batch=gufunc_batch(lambda: solve_p, (2, 2)), shape=_solve_shape)


def inv(a: Any) -> Any:
    """``a^-1`` as ``solve(a, I)`` (what numpy's inv computes too)."""
    return solve_p.bind(a, eye_like(a))


# ---- log |det| --------------------------------------------------------------------

def _logabsdet_vjp(g: Any, ans: Any, a: Any) -> Any:
    return g[..., None, None] * mT(inv(a))


def _logabsdet_jvp(primals: list, tangents: list) -> tuple:
    (a,), (t,) = primals, tangents
    return logabsdet_p.bind(a), np.trace(solve_p.bind(a, t), axis1=-2, axis2=-1)


def _logabsdet_shape(args: list) -> tuple:
    s = shape_of(args[0])
    _square("slogdet", s)
    return s[:-2], _dtype(args[0])


logabsdet_p = primitive("logabsdet", lambda a: np.linalg.slogdet(a)[1], _logabsdet_vjp,
                        jvp=_logabsdet_jvp, batch=gufunc_batch(lambda: logabsdet_p, (2,)),
                        shape=_logabsdet_shape)


sign_p = primitive("slogdet_sign", lambda a: np.linalg.slogdet(a)[0], differentiable=False,
                   jvp=lambda primals, tangents: (sign_p.bind(*primals), None),
                   batch=gufunc_batch(lambda: sign_p, (2,)), shape=_logabsdet_shape)
"""The sign of the determinant: piecewise constant, so no gradient."""


# ---- Cholesky (lower factor, read from the lower triangle) ------------------------

def _phi(x: Any) -> Any:
    """Lower triangle with the diagonal halved."""
    return np.tril(x) - 0.5 * diag_embed(diag_part(x))


def _cholesky_vjp(g: Any, ans: Any, a: Any) -> Any:
    L = ans
    p = _phi(mT(L) @ g)
    li = inv(L)
    s = mT(li) @ p @ li
    return sym_cotangent(0.5 * (s + mT(s)), lower=True)


def _cholesky_jvp(primals: list, tangents: list) -> tuple:
    (a,), (t,) = primals, tangents
    L = cholesky_p.bind(a)
    li = inv(L)
    return L, L @ _phi(li @ sym_tangent(t, True) @ mT(li))


cholesky_p = primitive("cholesky", np.linalg.cholesky, _cholesky_vjp, jvp=_cholesky_jvp,
                       batch=gufunc_batch(lambda: cholesky_p, (2,)),
                       shape=_same_shape("cholesky"))


# ---- symmetric eigendecomposition: packed (w, V) -----------------------------------

def eigh_cores(s: tuple) -> list:
    n = s[-1]
    return [(n,), (n, n)]


def _eigh_impl(a: Any, lower: bool) -> Any:
    w, v = np.linalg.eigh(a, UPLO="L" if lower else "U")
    return pack(np.shape(a)[:-2], w, v)


def _eigh_vjp(g: Any, ans: Any, a: Any, lower: bool) -> Any:
    cores = eigh_cores(np.shape(a))
    w, v = unpack(ans, cores)
    gw, gv = unpack(g, cores)
    inner = diag_embed(gw) + inv_gaps(w) * (mT(v) @ gv)
    return sym_cotangent(v @ inner @ mT(v), lower)


def _eigh_jvp(primals: list, tangents: list, lower: bool) -> tuple:
    (a,), (t,) = primals, tangents
    packed = eigh_p.bind(a, lower=lower)
    w, v = unpack(packed, eigh_cores(np.shape(a)))
    e = mT(v) @ sym_tangent(t, lower) @ v
    return packed, pack(np.shape(packed)[:-1], diag_part(e), v @ (inv_gaps(w) * e))


eigh_p = primitive("eigh", _eigh_impl, _eigh_vjp, jvp=_eigh_jvp,
                   batch=gufunc_batch(lambda: eigh_p, (2,)),
                   shape=_packed_shape("eigh", eigh_cores, square=True))


# ---- general eigendecomposition, real spectra only: packed (w, V) ------------------

def _eig_impl(a: Any) -> Any:
    w, v = np.linalg.eig(a)
    if np.iscomplexobj(w):
        raise NoRuleError("np.linalg.eig: this matrix has complex eigenvalues; pycograd "
                          "differentiates eig only for real spectra (complex support comes "
                          "later)")
    return pack(np.shape(a)[:-2], w, v)


def _eig_vjp(g: Any, ans: Any, a: Any) -> Any:
    cores = eigh_cores(np.shape(a))
    w, v = unpack(ans, cores)
    gw, gv = unpack(g, cores)
    gv = gv - v * np.sum(v * gv, axis=-2, keepdims=True)  # unit-norm columns
    ge = diag_embed(gw) + inv_gaps(w) * (mT(v) @ gv)
    return solve_p.bind(mT(v), ge @ mT(v))  # V^-T gE V^T


def _eig_jvp(primals: list, tangents: list) -> tuple:
    (a,), (t,) = primals, tangents
    packed = eig_p.bind(a)
    w, v = unpack(packed, eigh_cores(np.shape(a)))
    e = solve_p.bind(v, t @ v)
    dv = v @ (inv_gaps(w) * e)
    dv = dv - v * np.sum(v * dv, axis=-2, keepdims=True)
    return packed, pack(np.shape(packed)[:-1], diag_part(e), dv)


eig_p = primitive("eig", _eig_impl, _eig_vjp, jvp=_eig_jvp,
                  batch=gufunc_batch(lambda: eig_p, (2,)),
                  shape=_packed_shape("eig", eigh_cores, square=True))


# ---- thin SVD: packed (U, s, Vh) ---------------------------------------------------

def svd_cores(s: tuple) -> list:
    m, n = s[-2], s[-1]
    k = min(m, n)
    return [(m, k), (k,), (k, n)]


def _svd_impl(a: Any) -> Any:
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    return pack(np.shape(a)[:-2], u, s, vh)


def _svd_vjp(g: Any, ans: Any, a: Any) -> Any:
    shp = np.shape(a)
    cores = svd_cores(shp)
    u, s, vh = unpack(ans, cores)
    gu, gs, gvh = unpack(g, cores)
    v, gv = mT(vh), mT(gvh)
    f = inv_gaps(s * s)
    j = f * (mT(u) @ gu)
    k = f * (vh @ gv)
    sd = s[..., None, :]  # multiply on the right by diag(s)
    core = diag_embed(gs) + (j + mT(j)) * sd + mT((k + mT(k)) * sd)
    ga = u @ core @ vh
    m, n = shp[-2], shp[-1]
    if m > n:
        gu_s = gu / sd
        ga = ga + (gu_s - u @ (mT(u) @ gu_s)) @ vh
    if n > m:
        gv_s = gv / sd
        ga = ga + u @ mT(gv_s - v @ (vh @ gv_s))
    return ga


def _svd_jvp(primals: list, tangents: list) -> tuple:
    (a,), (t,) = primals, tangents
    packed = svd_p.bind(a)
    shp = np.shape(a)
    u, s, vh = unpack(packed, svd_cores(shp))
    v = mT(vh)
    p = mT(u) @ t @ v
    f = inv_gaps(s * s)
    sr, sl = s[..., None, :], s[..., :, None]
    du = u @ (f * (p * sr + sl * mT(p)))
    dv = v @ (f * (sl * p + mT(p) * sr))
    m, n = shp[-2], shp[-1]
    if m > n:
        x = (t @ v) / sr
        du = du + x - u @ (mT(u) @ x)
    if n > m:
        y = (mT(t) @ u) / sr
        dv = dv + y - v @ (vh @ y)
    return packed, pack(np.shape(packed)[:-1], du, diag_part(p), mT(dv))


svd_p = primitive("svd", _svd_impl, _svd_vjp, jvp=_svd_jvp,
                  batch=gufunc_batch(lambda: svd_p, (2,)),
                  shape=_packed_shape("svd", svd_cores, square=False))


def _complement_impl(a: Any, left: bool) -> Any:
    u, _, vh = np.linalg.svd(a, full_matrices=True)
    m, n = np.shape(a)[-2:]
    return u[..., :, n:] if left else vh[..., m:, :]


def _undefined(left: bool) -> NoRuleError:
    return NoRuleError(
        "np.linalg.svd(full_matrices=True) of a non-square matrix: the extra columns of "
        f"{'U' if left else 'Vh'} are an arbitrary basis of a null space and have no "
        "derivative; use full_matrices=False (the gradient of U[..., :k], s, Vh[..., :k, :] "
        "is defined)")


def _concrete(x: Any) -> Any:
    while isinstance(x, Tracer) and hasattr(x, "value"):
        x = x.value
    return x


def _complement_vjp(g: Any, ans: Any, a: Any, left: bool) -> Any:
    """Zero cotangent (the extra columns were not used): zero; otherwise undefined."""
    cg = _concrete(g)
    if isinstance(cg, Tracer) or np.any(cg != 0):
        raise _undefined(left)
    return np.zeros(np.shape(a), dtype=_dtype(a))


def _complement_jvp(primals: list, tangents: list, left: bool) -> tuple:
    """Forward mode cannot tell whether the columns are used: their tangent is NaN."""
    out = svd_complement_p.bind(primals[0], left=left)
    return out, np.full(np.shape(out), np.nan, dtype=_dtype(out))


def _complement_shape(args: list, left: bool) -> tuple:
    s = shape_of(args[0])
    m, n = _mat("svd", s)
    return s[:-2] + ((m, m - n) if left else (n - m, n)), _dtype(args[0])


svd_complement_p = primitive("svd_complement", _complement_impl, _complement_vjp,
                             jvp=_complement_jvp,
                             batch=gufunc_batch(lambda: svd_complement_p, (2,)),
                             shape=_complement_shape)


# ---- reduced QR for M >= N: packed (Q, R) ------------------------------------------

def qr_cores(s: tuple) -> list:
    m, n = s[-2], s[-1]
    return [(m, n), (n, n)]


def _qr_impl(a: Any) -> Any:
    m, n = np.shape(a)[-2:]
    if m < n:
        raise ShapeError("qr primitive: needs M >= N (wide matrices are split by numpy_api)")
    q, r = np.linalg.qr(a, mode="reduced")
    return pack(np.shape(a)[:-2], q, r)


def _copyltu(x: Any) -> Any:
    """The symmetric matrix whose lower triangle is that of ``x``."""
    return np.tril(x) + mT(np.tril(x, -1))


def _qr_vjp(g: Any, ans: Any, a: Any) -> Any:
    cores = qr_cores(np.shape(a))
    q, r = unpack(ans, cores)
    gq, gr = unpack(g, cores)
    m = r @ mT(gr) - mT(gq) @ q
    b = gq + q @ _copyltu(m)
    return mT(solve_p.bind(r, mT(b)))  # b R^-T


def _qr_jvp(primals: list, tangents: list) -> tuple:
    (a,), (t,) = primals, tangents
    packed = qr_p.bind(a)
    q, r = unpack(packed, qr_cores(np.shape(a)))
    tri = mT(solve_p.bind(mT(r), mT(t)))  # t R^-1
    c = mT(q) @ tri
    low = np.tril(c, -1)
    omega = low - mT(low)
    dr = (c - omega) @ r
    dq = tri - q @ c + q @ omega
    return packed, pack(np.shape(packed)[:-1], dq, dr)


qr_p = primitive("qr", _qr_impl, _qr_vjp, jvp=_qr_jvp,
                 batch=gufunc_batch(lambda: qr_p, (2,)),
                 shape=_packed_shape("qr", qr_cores, square=False))


# ---- pseudo-inverse (Golub & Pereyra 1973: exact where the rank is constant) --------

def _pinv_impl(a: Any, rcond: Any, hermitian: bool) -> Any:
    return np.linalg.pinv(a, rcond, hermitian)


def _pinv_vjp(g: Any, ans: Any, a: Any, rcond: Any, hermitian: bool) -> Any:
    x = ans
    xt, gt = mT(x), mT(g)
    out = -(xt @ g @ xt)
    out = out + (gt @ x @ xt - a @ (x @ (gt @ (x @ xt))))
    out = out + (mT(x) @ x @ gt - (xt @ (x @ gt)) @ (x @ a))
    return out


def _pinv_jvp(primals: list, tangents: list, rcond: Any, hermitian: bool) -> tuple:
    (a,), (t,) = primals, tangents
    x = pinv_p.bind(a, rcond=rcond, hermitian=hermitian)
    tt = mT(t)
    d = -(x @ t @ x)
    d = d + (x @ mT(x)) @ (tt - tt @ (a @ x))
    d = d + (tt - x @ (a @ tt)) @ (mT(x) @ x)
    return x, d


def _pinv_shape(args: list, rcond: Any, hermitian: bool) -> tuple:
    s = shape_of(args[0])
    m, n = _mat("pinv", s)
    return s[:-2] + (n, m), _dtype(args[0])


pinv_p = primitive("pinv", _pinv_impl, _pinv_vjp, jvp=_pinv_jvp,
                   batch=gufunc_batch(lambda: pinv_p, (2,)), shape=_pinv_shape)


# ---- matrix functions through their Frechet derivative (scipy's expm and sqrtm) ------

def _block(a: Any, e: Any) -> Any:
    """``[[a, e], [0, a]]`` for stacks of square matrices."""
    z = np.zeros(np.shape(a), dtype=_dtype(a))
    return np.concatenate([np.concatenate([a, e], axis=-1),
                           np.concatenate([z, a], axis=-1)], axis=-2)


def _expm_frechet(a: Any, e: Any) -> Any:
    """The derivative of expm at ``a`` along ``e`` (Mathias 1996: one expm of a block)."""
    n = np.shape(a)[-1]
    return expm_p.bind(_block(a, e))[..., :n, n:]


def _expm_impl(a: Any) -> Any:
    import scipy.linalg

    return scipy.linalg.expm(a)


expm_p = primitive(
    "expm", _expm_impl, lambda g, ans, a: _expm_frechet(mT(a), g),
    jvp=lambda primals, tangents: (expm_p.bind(primals[0]),
                                   _expm_frechet(primals[0], tangents[0])),
    batch=gufunc_batch(lambda: expm_p, (2,)), shape=_same_shape("expm"))


def _sqrtm_impl(a: Any) -> Any:
    import scipy.linalg

    r = scipy.linalg.sqrtm(a)
    if np.iscomplexobj(r):
        raise NoRuleError("scipy.linalg.sqrtm: this matrix has no real square root; "
                          "complex results are not differentiable in pycograd yet")
    return r.astype(_dtype(a), copy=False)


def _sylvester_sum(x: Any, c: Any) -> Any:
    """``Y`` with ``X Y + Y X = C``, via the Kronecker system (I (x) X + X^T (x) I)."""
    n = np.shape(x)[-1]
    lead = np.shape(x)[:-2]
    eye = np.eye(n, dtype=_dtype(x))
    # vec by rows: (X Y)[i,j] = X[i,k] Y[k,j]; (Y X)[i,j] = Y[i,k] X[k,j]
    k1 = np.einsum("...ik,jl->...ijkl", x, eye)
    k2 = np.einsum("ik,...lj->...ijkl", eye, x)
    big = np.reshape(k1 + k2, lead + (n * n, n * n))
    y = solve_p.bind(big, np.reshape(c, lead + (n * n, 1)))
    return np.reshape(y, lead + (n, n))


sqrtm_p = primitive(
    "sqrtm", _sqrtm_impl, lambda g, ans, a: _sylvester_sum(mT(ans), g),
    jvp=lambda primals, tangents: (lambda x: (x, _sylvester_sum(x, tangents[0])))(
        sqrtm_p.bind(primals[0])),
    batch=gufunc_batch(lambda: sqrtm_p, (2,)), shape=_same_shape("sqrtm"))
