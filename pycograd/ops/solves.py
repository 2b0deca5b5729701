"""Solves and determinants: ``solve`` (and ``inv`` as ``solve(a, I)``), ``log |det|`` with
the sign of a real determinant, the holomorphic ``log det`` of a complex one, and the
pseudo-inverse.

Every primitive works on stacks ``(..., M, N)`` as numpy's gufuncs do (one batching rule,
``matrix.gufunc_batch``). Rules are written with numpy calls on possibly-traced values, so
each is differentiable again; under pycograd's complex convention (``ops.complex``) the
holomorphic ones (solve, logdet) keep their real formulas, and the pseudo-inverse's rule
transposes its conjugated terms.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pycograd.core.errors import ShapeError
from pycograd.core.primitive import Joint, primitive
from pycograd.ops.broadcasting import unbroadcast
from pycograd.ops.complex import match
from pycograd.ops.matrix import (
    conj,
    eye_like,
    gufunc_batch,
    linalg_dtype,
    matrix_dims,
    mH,
    mT,
    square_dim,
)
from pycograd.ops.shaping import broadcast_shapes, shape_of

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
    n = square_dim("solve", sa)
    if len(sb) < 2 or not sb[-2] == n:
        raise ShapeError(f"solve: right-hand side of shape {sb} does not match {sa}")
    batch = broadcast_shapes("solve", sa[:-2], sb[:-2])
    return batch + (n, sb[-1]), np.result_type(linalg_dtype(args[0]), linalg_dtype(args[1]))


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
    square_dim("slogdet", s)
    return s[:-2], linalg_dtype(args[0])


logabsdet_p = primitive("logabsdet", lambda a: np.linalg.slogdet(a)[1], _logabsdet_vjp,
                        jvp=_logabsdet_jvp, batch=gufunc_batch(lambda: logabsdet_p, (2,)),
                        shape=_logabsdet_shape)


sign_p = primitive("slogdet_sign", lambda a: np.linalg.slogdet(a)[0], differentiable=False,
                   jvp=lambda primals, tangents: (sign_p.bind(*primals), None),
                   batch=gufunc_batch(lambda: sign_p, (2,)), shape=_logabsdet_shape)
"""The sign of a real determinant: piecewise constant, so no gradient."""


def _logdet_impl(a: Any) -> Any:
    sign, logabs = np.linalg.slogdet(a)
    with np.errstate(divide="ignore"):  # singular: log(0) = -inf, as logabsdet
        return np.log(sign) + logabs


def _logdet_jvp(primals: list, tangents: list) -> tuple:
    (a,), (t,) = primals, tangents
    return logdet_p.bind(a), np.trace(solve_p.bind(a, t), axis1=-2, axis2=-1)


logdet_p = primitive("logdet", _logdet_impl, _logabsdet_vjp, jvp=_logdet_jvp,
                     batch=gufunc_batch(lambda: logdet_p, (2,)), shape=_logabsdet_shape)
"""``log det A`` of a complex ``A`` (``log|det| + i arg det``): holomorphic, with the same
transpose rule as ``log|det|`` (``g A^-T``); complex ``slogdet`` derives its phase
``sign = exp(i imag)`` and ``logabsdet = real`` from it, so the phase is differentiable."""


# ---- pseudo-inverse (Golub & Pereyra 1973: exact where the rank is constant) --------

def _pinv_impl(a: Any, rcond: Any, hermitian: bool) -> Any:
    return np.linalg.pinv(a, rcond, hermitian)


def _pinv_vjp(g: Any, ans: Any, a: Any, rcond: Any, hermitian: bool) -> Any:
    """The transpose of the JVP below: its ``t^H`` terms transpose conjugated."""
    x = ans
    xt, gt = mT(x), mT(g)
    xh = conj(xt)
    herm = gt @ x @ xh - a @ (x @ (gt @ (x @ xh)))
    herm = herm + (xh @ x @ gt - (xh @ (x @ gt)) @ (x @ a))
    return conj(herm) - xt @ g @ xt


def _pinv_jvp(primals: list, tangents: list, rcond: Any, hermitian: bool) -> tuple:
    """``dX = -X dA X + X X^H dA^H (I - A X) + (I - X A) dA^H X^H X``."""
    (a,), (t,) = primals, tangents
    x = pinv_p.bind(a, rcond=rcond, hermitian=hermitian)
    th, xh = mH(t), mH(x)
    d = -(x @ t @ x)
    d = d + (x @ xh) @ (th - th @ (a @ x))
    d = d + (th - x @ (a @ th)) @ (xh @ x)
    return x, d


def _pinv_shape(args: list, rcond: Any, hermitian: bool) -> tuple:
    s = shape_of(args[0])
    m, n = matrix_dims("pinv", s)
    return s[:-2] + (n, m), linalg_dtype(args[0])


pinv_p = primitive("pinv", _pinv_impl, _pinv_vjp, jvp=_pinv_jvp,
                   batch=gufunc_batch(lambda: pinv_p, (2,)), shape=_pinv_shape)
