"""Matrix decompositions: Cholesky, eigh, eig, SVD, QR, and the complements of full SVD
and complete QR.

Every primitive works on stacks ``(..., M, N)`` as numpy's gufuncs do, so one batching
rule serves all of them (move the batch axis first, pad ranks so loop dims line up, call
the same primitive). Multi-output decompositions are packed into one array (``matrix.pack``).

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
Complex (Hermitian) inputs read it as LAPACK does: the other triangle is the conjugate
transpose and the diagonal's imaginary part is ignored. Complex eigen/singular vectors
are defined up to a phase each; reverse mode refuses a loss that depends on it
(``check_phase``), forward mode returns the tangent of JAX's gauge (``V^H dV`` with a zero
diagonal; the phase of ``u_k`` relative to ``v_k`` is fixed by ``A v_k = s_k u_k``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from pycograd.core.errors import NoRuleError, ShapeError
from pycograd.core.primitive import Primitive, primitive
from pycograd.ops.complex import is_complex, match
from pycograd.ops.matrix import (
    complex_if_values_say,
    concrete_values,
    conj,
    diag_embed,
    diag_part,
    float_dtype,
    gufunc_batch,
    inv_gaps,
    linalg_dtype,
    matrix_dims,
    mH,
    mT,
    pack,
    packed_shape,
    same_shape,
    sym_cotangent,
    sym_tangent,
    unpack,
)
from pycograd.ops.shaping import shape_of
from pycograd.ops.solves import inv, solve_p

# ---- Cholesky (lower factor, read from the lower triangle) ------------------------
# Complex: A = L L^H (LAPACK's L has a real positive diagonal); the same rules with the
# conjugate transposes, which are plain transposes for real inputs.

def _phi(x: Any) -> Any:
    """Lower triangle with the diagonal halved."""
    return np.tril(x) - 0.5 * diag_embed(diag_part(x))


def _cholesky_vjp(g: Any, ans: Any, a: Any) -> Any:
    L = ans
    p = _phi(mT(L) @ g)
    li = inv(L)
    s = mT(li) @ p @ conj(li)
    return sym_cotangent(0.5 * (s + mH(s)), lower=True)


def _cholesky_jvp(primals: list, tangents: list) -> tuple:
    (a,), (t,) = primals, tangents
    L = cholesky_p.bind(a)
    li = inv(L)
    return L, L @ _phi(li @ sym_tangent(t, True) @ mH(li))


cholesky_p = primitive("cholesky", np.linalg.cholesky, _cholesky_vjp, jvp=_cholesky_jvp,
                       batch=gufunc_batch(lambda: cholesky_p, (2,)),
                       shape=same_shape("cholesky"))


# ---- symmetric eigendecomposition: packed (w, V) -----------------------------------

def eigh_cores(s: tuple) -> list:
    n = s[-1]
    return [(n,), (n, n)]


def _eigh_impl(a: Any, lower: bool) -> Any:
    w, v = np.linalg.eigh(a, UPLO="L" if lower else "U")
    return pack(np.shape(a)[:-2], w, v)



def check_phase(op: str, rate: Any, norm2: Any) -> None:
    """Refuse a loss that depends on the arbitrary phases of complex vectors. Turning
    vector ``k`` by ``e^{i phi}`` changes the loss at rate ``-rate[..., k]`` (with the
    cotangents ``gX`` of the vectors ``X``, ``rate = Im(diag(X^T gX))``, summed over the
    factors that share the phase); ``norm2`` is ``sum |gX[:, k]|^2``, the scale of
    ``rate``. A phase-invariant loss has ``rate`` 0 up to rounding."""
    r, n2 = concrete_values(rate), concrete_values(norm2)
    if r is None or n2 is None:
        return
    tol = float(np.finfo(r.dtype).eps)  # sqrt(eps), squared
    if np.any(r * r > tol * n2):
        raise NoRuleError(
            f"np.linalg.{op}: the loss depends on the arbitrary phase of the complex "
            "vectors (each is defined only up to a factor e^{i phi}), so it has no gradient. "
            "Use phase-invariant functions of them: |V|**2, V @ diag(w) @ V.conj().T, "
            "projectors U @ U.conj().T, products u_k * conj(v_k) of singular vectors")


def _norm2(g: Any, axis: int) -> Any:
    return np.sum(np.real(g * np.conj(g)), axis=axis)


def _eigh_vjp(g: Any, ans: Any, a: Any, lower: bool) -> Any:
    """Complex: ``A* (diag(gw) + F o (V^T gV)) V^T`` (the transpose of JAX's JVP), the
    diagonal of ``V^T gV`` being the phase gauge."""
    cores = eigh_cores(np.shape(a))
    w, v = unpack(ans, cores)
    gw, gv = unpack(g, cores)
    vg = mT(v) @ gv
    if is_complex(a):
        check_phase("eigh (or svd(hermitian=True), which uses it)",
                    np.imag(diag_part(vg)), _norm2(gv, -2))
        w, gw = np.real(w), np.real(gw)
    inner = diag_embed(gw) + inv_gaps(w) * vg
    return sym_cotangent(conj(v) @ inner @ mT(v), lower)


def _eigh_jvp(primals: list, tangents: list, lower: bool) -> tuple:
    """Complex: ``dw = Re diag(V^H dA V)``, ``dV = V (F o V^H dA V)`` (the gauge in which
    ``V^H dV`` has a zero diagonal, as JAX's)."""
    (a,), (t,) = primals, tangents
    packed = eigh_p.bind(a, lower=lower)
    w, v = unpack(packed, eigh_cores(np.shape(a)))
    e = mH(v) @ sym_tangent(t, lower) @ v
    dw = diag_part(e)
    if is_complex(a):
        w, dw = np.real(w), np.real(dw)
    return packed, pack(np.shape(packed)[:-1], dw, v @ (inv_gaps(w) * e))


eigh_p = primitive("eigh", _eigh_impl, _eigh_vjp, jvp=_eigh_jvp,
                   batch=gufunc_batch(lambda: eigh_p, (2,)),
                   shape=packed_shape("eigh", eigh_cores, square=True))


# ---- general eigendecomposition: packed (w, V) -------------------------------------
# A real matrix with complex eigenvalues gives complex (w, V), as numpy does: the output
# dtype then depends on the values, which eval_shape (no values) cannot see: it refuses a
# real input (DataDependentShapeError). Complex vectors follow LAPACK's gauge: unit 2-norm and
# the largest-magnitude component real; their derivative keeps both (``_gauge``).

def _eig_impl(a: Any) -> Any:
    w, v = np.linalg.eig(a)
    return pack(np.shape(a)[:-2], w, v)


def _largest(v: Any) -> tuple:
    """The mask of each column's largest-magnitude component (the one LAPACK makes real)
    and that component, shaped ``(..., 1, n)``."""
    mag = np.abs(v)
    big = mag == np.max(mag, axis=-2, keepdims=True)
    return big, np.sum(np.where(big, v, 0), axis=-2, keepdims=True)


def _gauge(v: Any, du: Any) -> Any:
    """Complex ``du`` (the tangent of some eigenvector basis) made tangent to LAPACK's
    gauge: the norm is kept by removing ``v real(v^H du)``, the phase by removing
    ``i v imag(du_k / v_k)`` (``k`` the largest component, kept real)."""
    big, vk = _largest(v)
    c = np.real(np.sum(np.conj(v) * du, axis=-2, keepdims=True)) \
        + 1j * np.imag(np.sum(np.where(big, du, 0), axis=-2, keepdims=True) / vk)
    return du - v * c


def _gauge_adjoint(v: Any, gv: Any) -> Any:
    """The transpose of ``_gauge(v, .)`` in the real pairing ``real(sum(g * t))``."""
    big, vk = _largest(v)
    h = np.sum(gv * v, axis=-2, keepdims=True)
    return gv - np.conj(v) * np.real(h) - np.where(big, 1j * np.imag(h) / vk, 0)


def _eig_vjp(g: Any, ans: Any, a: Any) -> Any:
    cores = eigh_cores(np.shape(a))
    w, v = unpack(ans, cores)
    gw, gv = unpack(g, cores)
    if is_complex(ans):
        gv = _gauge_adjoint(v, gv)
    else:
        gv = gv - v * np.sum(v * gv, axis=-2, keepdims=True)  # unit-norm columns
    ge = diag_embed(gw) + inv_gaps(w) * (mT(v) @ gv)
    return match(solve_p.bind(mT(v), ge @ mT(v)), a)  # V^-T gE V^T


def _eig_jvp(primals: list, tangents: list) -> tuple:
    (a,), (t,) = primals, tangents
    packed = eig_p.bind(a)
    w, v = unpack(packed, eigh_cores(np.shape(a)))
    e = solve_p.bind(v, t @ v)
    dv = v @ (inv_gaps(w) * e)
    if is_complex(packed):
        dv = _gauge(v, dv)
    else:
        dv = dv - v * np.sum(v * dv, axis=-2, keepdims=True)
    return packed, pack(np.shape(packed)[:-1], diag_part(e), dv)


eig_p = primitive("eig", _eig_impl, _eig_vjp, jvp=_eig_jvp,
                  batch=gufunc_batch(lambda: eig_p, (2,)),
                  shape=complex_if_values_say(packed_shape("eig", eigh_cores, square=True),
                                              "np.linalg.eig / eigvals"))


# ---- thin SVD: packed (U, s, Vh) ---------------------------------------------------

def svd_cores(s: tuple) -> list:
    m, n = s[-2], s[-1]
    k = min(m, n)
    return [(m, k), (k,), (k, n)]


def _svd_impl(a: Any) -> Any:
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    return pack(np.shape(a)[:-2], u, s, vh)


def _inv_s(s: Any) -> Any:
    """``1 / s``, 0 where ``s`` is 0 (the phase term there has a zero numerator)."""
    return 1 / np.where(s == 0, 1, s)


def _svd_vjp(g: Any, ans: Any, a: Any) -> Any:
    """The transpose of ``_svd_jvp``. Complex: ``u_k`` and ``v_k`` share a free phase;
    the loss must not depend on it (``check_phase``)."""
    shp = np.shape(a)
    cores = svd_cores(shp)
    u, s, vh = unpack(ans, cores)
    gu, gs, gvh = unpack(g, cores)
    vc = conj(vh)  # V^T
    gx = mT(u) @ gu  # U^T gU
    gy = conj(vh @ mT(gvh))  # V^T gV, with gV = gVh^H the cotangent of V
    cplx = is_complex(a)
    if cplx:
        check_phase("svd", np.imag(diag_part(gx) + diag_part(gy)),
                    _norm2(gu, -2) + _norm2(gvh, -1))
        s, gs = np.real(s), np.real(gs)
    f = inv_gaps(s * s)
    j, k = f * gx, f * gy
    sd, sl = s[..., None, :], s[..., :, None]  # multiply on the right / left by diag(s)
    core = diag_embed(gs) + (j + mH(j)) * sd + (k + mH(k)) * sl
    if cplx:  # the relative phase of u_k and v_k, fixed by A v_k = s_k u_k
        core = core + diag_embed(1j * np.imag(diag_part(gx)) * _inv_s(s))
    ga = conj(u) @ core @ vc
    m, n = shp[-2], shp[-1]
    if m > n:
        gu_s = gu / sd
        ga = ga + (gu_s - conj(u) @ (mT(u) @ gu_s)) @ vc
    if n > m:
        gh = gvh / sl
        ga = ga + conj(u) @ (gh - (gh @ mT(vh)) @ vc)
    return ga


def _svd_jvp(primals: list, tangents: list) -> tuple:
    """JAX's rule: with ``P = U^H dA V``, ``ds = Re diag(P)``; complex adds the relative
    phase ``i Im(P_kk) / s_k`` to ``U^H dU`` (``V^H dV`` keeps a zero diagonal)."""
    (a,), (t,) = primals, tangents
    packed = svd_p.bind(a)
    shp = np.shape(a)
    u, s, vh = unpack(packed, svd_cores(shp))
    v = mH(vh)
    p = mH(u) @ t @ v
    ds = diag_part(p)
    cplx = is_complex(a)
    if cplx:
        s, ds = np.real(s), np.real(ds)
    f = inv_gaps(s * s)
    sr, sl = s[..., None, :], s[..., :, None]
    du = u @ (f * (p * sr + sl * mH(p)))
    if cplx:
        du = du + u * (1j * np.imag(diag_part(p)) * _inv_s(s))[..., None, :]
    dv = v @ (f * (sl * p + mH(p) * sr))
    m, n = shp[-2], shp[-1]
    if m > n:
        x = (t @ v) / sr
        du = du + x - u @ (mH(u) @ x)
    if n > m:
        y = (mH(t) @ u) / sr
        dv = dv + y - v @ (vh @ y)
    return packed, pack(np.shape(packed)[:-1], du, ds, mH(dv))


svd_p = primitive("svd", _svd_impl, _svd_vjp, jvp=_svd_jvp,
                  batch=gufunc_batch(lambda: svd_p, (2,)),
                  shape=packed_shape("svd", svd_cores, square=False))


# ---- complements of full SVD / complete QR: the extra orthonormal columns ------------
#
# For a tall A (M > N) of full rank, the extra columns N_ of U (numpy's
# ``svd(full_matrices=True)``) or of Q (``qr(mode='complete')``) are an orthonormal basis
# of range(A)^perp; for a wide A the extra rows of Vh are one of null(A). The subspace is
# a smooth function of A, its basis is LAPACK's arbitrary choice. The rules fix the gauge
# "no rotation within the complement": with Q the thin factor spanning range(A) (U, Q,
# or V for the rows of Vh), N_^T dN_ = 0 and Q^T dN_ = -dQ^T N_, i.e.
#
#     dN_ = -Q dQ^T N_          (VJP:  gQ = -N_ G^T Q)
#
# A loss f(N_) invariant to N_ -> N_ O (O orthogonal) has the same derivative in every
# gauge, so these gradients are exact for it; infinitesimally (O = I + W, W
# antisymmetric) invariance reads <G, N_ W> = <N_^T G, W> = 0 for all W, i.e. N_^T G is
# symmetric. The VJP checks that when the cotangent's values exist and raises otherwise;
# a 1-column complement (O = +-1 only) always passes: like a singular vector it is
# determined up to sign, and its gradient is exact where LAPACK's sign stays put. Forward
# mode cannot see how the columns are used: its tangent is always this gauge's (that of a
# basis moved by parallel transport, not LAPACK's), exact for invariant uses and
# consistent with the VJP, so forward-over-reverse and linearize agree with reverse mode.
#
# The primitives take (A, Q): A gives LAPACK's basis (numpy's values), Q carries the
# derivative, which reaches A through the thin decomposition's own rule (Q^T N_ = 0
# makes that rule's gap terms vanish, leaving -N_ G^T Q S^-1 V^T resp. -N_ G^T Q R^-T).

def _complement_svd_impl(a: Any, q: Any, left: bool) -> Any:
    u, _, vh = np.linalg.svd(a, full_matrices=True)
    k = min(np.shape(a)[-2:])
    return u[..., :, k:] if left else mT(vh[..., k:, :])


def _complement_qr_impl(a: Any, q: Any) -> Any:
    return np.linalg.qr(a, mode="complete")[0][..., :, np.shape(a)[-1]:]



def _basis_dependent(g: Any, n_: Any) -> bool:
    """Whether ``N_^T G`` is visibly not symmetric (relative to the size of ``G``)."""
    g, n_ = concrete_values(g), concrete_values(n_)
    if g is None or n_ is None:
        return False
    g, n_ = np.asarray(g), np.asarray(n_)
    try:
        s = mT(n_) @ g
    except ValueError:  # loop dims of different vmap levels do not line up: cannot tell
        return False
    tol = math.sqrt(np.finfo(float_dtype(g.dtype)).eps)
    skew = np.linalg.norm(s - mT(s), axis=(-2, -1))
    return bool(np.any(skew > tol * np.linalg.norm(g, axis=(-2, -1))))


def _basis_error(op: str, cols: str, uses: str, instead: str) -> NoRuleError:
    return NoRuleError(
        f"{op}: the loss depends on the basis of the extra {cols}, which LAPACK picks "
        "arbitrarily (any rotation of it is as valid), so its gradient is undefined. Use "
        f"{instead}, or use the extra {cols} only through expressions invariant to that "
        f"basis ({uses}). Each call is checked on its own: decompose once and reuse it")


def _complement_rules(prim_ref: Callable[[], Primitive], error: Callable[..., NoRuleError],
                      cores: Callable[..., tuple]) -> dict:
    """VJP (for Q; A gets none), JVP, batching and shape rules of a complement primitive."""
    def vjp_q(g: Any, ans: Any, a: Any, q: Any, **params: Any) -> Any:
        if _basis_dependent(g, ans):
            raise error(**params)
        return -(ans @ (mT(g) @ q))

    def jvp(primals: list, tangents: list, **params: Any) -> tuple:
        a, q = primals
        out = prim_ref().bind(a, q, **params)
        tq = tangents[1]
        return out, None if tq is None else -(q @ (mT(tq) @ out))

    def shape(args: list, **params: Any) -> tuple:
        s = shape_of(args[0])
        return s[:-2] + cores(*matrix_dims(prim_ref().name, s), **params), linalg_dtype(args[0])

    return dict(jvp=jvp, shape=shape, batch=gufunc_batch(prim_ref, (2, 2)), vjps=(None, vjp_q))


def _svd_error(left: bool) -> NoRuleError:
    if left:
        return _basis_error("np.linalg.svd(full_matrices=True)", "columns U[..., :, K:]",
                            "U_perp @ U_perp.T, norms of U_perp.T @ x", "full_matrices=False")
    return _basis_error("np.linalg.svd(full_matrices=True)", "rows Vh[..., K:, :]",
                        "Vh_perp.T @ Vh_perp, norms of Vh_perp @ x", "full_matrices=False")


_svd_rules = _complement_rules(
    lambda: svd_complement_p, _svd_error,
    lambda m, n, left: (m, m - n) if left else (n, n - m))
svd_complement_p = primitive("svd_complement", _complement_svd_impl, *_svd_rules.pop("vjps"),
                             **_svd_rules)
"""``svd_complement(a, q, left)``: the extra columns of U (``left``, ``q`` the thin U) or
of V (the transposed extra rows of Vh, ``q`` the thin V) of numpy's full SVD."""

_qr_rules = _complement_rules(
    lambda: qr_complement_p,
    lambda: _basis_error("np.linalg.qr(mode='complete')", "columns Q[..., :, N:]",
                         "Q_perp @ Q_perp.T, norms of Q_perp.T @ x", "mode='reduced'"),
    lambda m, n: (m, m - n))
qr_complement_p = primitive("qr_complement", _complement_qr_impl, *_qr_rules.pop("vjps"),
                            **_qr_rules)
"""``qr_complement(a, q)``: the extra columns of numpy's complete Q (M > N; ``q`` the
reduced Q)."""


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
    """The symmetric matrix whose lower triangle is that of ``x``; complex: the adjoint of
    ``c -> omega`` in ``_qr_jvp`` (strict lower triangle conjugated, real diagonal)."""
    low = np.tril(x, -1)
    if is_complex(x):
        return np.conj(low) + mT(low) + diag_embed(np.real(diag_part(x)))
    return np.tril(x) + mT(low)


def _qr_vjp(g: Any, ans: Any, a: Any) -> Any:
    cores = qr_cores(np.shape(a))
    q, r = unpack(ans, cores)
    gq, gr = unpack(g, cores)
    m = r @ mT(gr) - mT(gq) @ q
    b = gq + conj(q) @ _copyltu(m)
    return mT(solve_p.bind(r, mT(b)))  # b R^-T


def _qr_jvp(primals: list, tangents: list) -> tuple:
    """Complex: LAPACK's R has a real diagonal, so ``Q^H dQ`` (skew-Hermitian) keeps the
    imaginary part of ``diag(Q^H dA R^-1)`` (JAX's correction)."""
    (a,), (t,) = primals, tangents
    packed = qr_p.bind(a)
    q, r = unpack(packed, qr_cores(np.shape(a)))
    tri = mT(solve_p.bind(mT(r), mT(t)))  # t R^-1
    c = mH(q) @ tri
    low = np.tril(c, -1)
    omega = low - mH(low)
    if is_complex(c):
        omega = omega + diag_embed(1j * np.imag(diag_part(c)))
    dr = (c - omega) @ r
    dq = tri - q @ c + q @ omega
    return packed, pack(np.shape(packed)[:-1], dq, dr)


qr_p = primitive("qr", _qr_impl, _qr_vjp, jvp=_qr_jvp,
                 batch=gufunc_batch(lambda: qr_p, (2,)),
                 shape=packed_shape("qr", qr_cores, square=False))
