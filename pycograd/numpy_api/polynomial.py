"""numpy's polynomial functions on traced coefficient arrays: ``polyval``, ``polyder``,
``polyint``, ``polyadd``, ``polysub``, ``polymul``, ``polyfit``, ``roots`` and ``vander``.

Each is numpy's own recipe on differentiable numpy (Horner's rule, a convolution, a
least-squares solve, the eigenvalues of the companion matrix), so values and dtypes are
numpy's and the gradients are those of the recipe. ``polymul`` and ``roots`` strip
zero coefficients first, a decision on the values that sets the output's length: it is
made on the detached values, and refused where there are none (eval_shape:
``DataDependentShapeError``; vmap, where each example could strip differently:
``NoRuleError``). ``np.poly1d`` objects are not traced containers: pass their
coefficient arrays.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from pycograd.core.errors import ArgumentError, ArgumentTypeError, NoRuleError, ShapeError
from pycograd.core.trace import Tracer
from pycograd.numpy_api import functions as F
from pycograd.numpy_api.functions import implements
from pycograd.numpy_api.statistics import in_dtype
from pycograd.ops.elementwise import stop_gradient


def _array(x: Any, op: str) -> Any:
    if isinstance(x, np.poly1d):
        raise NoRuleError(f"np.{op}: np.poly1d arguments are not supported with traced "
                          "coefficients; pass the coefficient array (p.coeffs) instead")
    return x if isinstance(x, Tracer) else np.asarray(x)


def _len(p: Any) -> int:
    if np.ndim(p) == 0:
        raise ArgumentTypeError("len() of unsized object")
    return np.shape(p)[0]


def _values(x: Any, op: str, why: str) -> np.ndarray:
    """The plain values of ``x`` for a decision that sets the output's shape."""
    if not isinstance(x, Tracer):
        return np.asarray(x)
    from pycograd.transforms.shapes import AbstractTracer, DataDependentShapeError

    v = stop_gradient(x)
    if isinstance(v, AbstractTracer):
        raise DataDependentShapeError(
            f"np.{op}: the output's length depends on the data values ({why}), which "
            "eval_shape does not have")
    if isinstance(v, Tracer):
        raise NoRuleError(
            f"np.{op}: the output's length depends on the values ({why}), so each example "
            f"could give a different length; under {type(v).__name__} (vmap) there is no "
            f"single answer. Call np.{op} outside vmap (a Python loop over examples)")
    return np.asarray(v)


# ---- construction and evaluation --------------------------------------------------------

@implements(np.vander)
def vander(x: Any, N: Any = None, increasing: bool = False) -> Any:
    """Columns of powers built by repeated multiplication (a cumulative product), as
    numpy does, so the values are numpy's to the last bit."""
    x = _array(x, "vander")
    if np.ndim(x) != 1:
        raise ShapeError("x must be a one-dimensional array or sequence.")
    n = np.shape(x)[0]
    N = n if N is None else int(N)
    dt = np.promote_types(np.result_type(x), int)
    if N <= 0:
        return np.zeros((n, N), dt)
    cols = [np.ones((n, 1), dt)]
    if N > 1:
        cols.append(np.cumprod(F.broadcast_to(in_dtype(x, dt)[:, None], (n, N - 1)), axis=1))
    v = F.concatenate(cols, 1)
    return v if increasing else v[:, ::-1]


@implements(np.polyval)
def polyval(p: Any, x: Any) -> Any:
    """Horner's rule from ``zeros_like(x)``, numpy's loop (so the dtypes follow numpy's
    promotion of ``p``'s elements with ``x``)."""
    p = _array(p, "polyval")
    x = _array(x, "polyval")
    if np.ndim(p) == 0:
        raise ArgumentTypeError("iteration over a 0-d array")
    y = np.zeros_like(x)
    for i in range(np.shape(p)[0]):
        y = y * x + p[i]
    return y


@implements(np.polyder)
def polyder(p: Any, m: Any = 1) -> Any:
    m = int(m)
    if m < 0:
        raise ArgumentError("Order of derivative must be positive (see polyint)")
    p = _array(p, "polyder")
    n = _len(p) - 1
    y = p[:-1] * np.arange(n, 0, -1)
    return p if m == 0 else polyder(y, m - 1)


@implements(np.polyint)
def polyint(p: Any, m: Any = 1, k: Any = None) -> Any:
    """``k`` (the integration constants) may be traced too."""
    m = int(m)
    if m < 0:
        raise ArgumentError("Order of integral must be positive (see polyder)")
    if k is None:
        k = np.zeros(m, float)
    k = np.atleast_1d(k)
    if _len(k) == 1 and m > 1:
        k = k[0] * np.ones(m, float)
    if _len(k) < m:
        raise ArgumentError("k must be a scalar or a rank-1 array of length 1 or >m.")
    p = _array(p, "polyint")
    if m == 0:
        return p
    first = F.reshape(k[0], (1,)) if isinstance(k, Tracer) else np.asarray([k[0]])
    y = np.concatenate((p / np.arange(_len(p), 0, -1), first))
    return polyint(y, m - 1, k=k[1:])


def _aligned(a1: Any, a2: Any, op: str) -> tuple:
    """Both coefficient arrays, the shorter padded with leading zeros of its dtype."""
    a1 = np.atleast_1d(_array(a1, op))
    a2 = np.atleast_1d(_array(a2, op))
    diff = _len(a2) - _len(a1)
    if diff > 0:
        a1 = np.concatenate((np.zeros(diff, np.result_type(a1)), a1))
    elif diff < 0:
        a2 = np.concatenate((np.zeros(-diff, np.result_type(a2)), a2))
    return a1, a2


@implements(np.polyadd)
def polyadd(a1: Any, a2: Any) -> Any:
    a1, a2 = _aligned(a1, a2, "polyadd")
    return a1 + a2


@implements(np.polysub)
def polysub(a1: Any, a2: Any) -> Any:
    a1, a2 = _aligned(a1, a2, "polysub")
    return a1 - a2


def _trim_leading(a: Any, op: str) -> Any:
    """``np.poly1d(a).coeffs``: leading zeros stripped (all zeros keep the last one, whose
    gradient is that of the constant term)."""
    a = np.atleast_1d(_array(a, op))
    if np.ndim(a) > 1:
        raise ShapeError("Polynomial must be 1d only.")
    if np.shape(a)[0] == 0:
        return np.zeros((1,), np.result_type(a))
    nz = np.flatnonzero(_values(a, op, "leading zero coefficients are stripped"))
    return a[int(nz[0]) if len(nz) else -1:]


@implements(np.polymul)
def polymul(a1: Any, a2: Any) -> Any:
    return np.convolve(_trim_leading(a1, "polymul"), _trim_leading(a2, "polymul"))


# ---- fitting and roots --------------------------------------------------------------------

@implements(np.polyfit)
def polyfit(x: Any, y: Any, deg: Any, rcond: Any = None, full: bool = False, w: Any = None,
            cov: Any = False) -> Any:
    """numpy's weighted, column-scaled least squares; ``x``, ``y`` and ``w`` get gradients
    (``lstsq``'s: exact where the rank is locally constant), as do ``residuals``, the
    singular values and the covariance (``cov=True`` or ``'unscaled'``)."""
    order = int(deg) + 1
    x = _array(x, "polyfit") + 0.0
    y = _array(y, "polyfit") + 0.0
    if deg < 0:
        raise ArgumentError("expected deg >= 0")
    if np.ndim(x) != 1:
        raise ArgumentTypeError("expected 1D vector for x")
    if np.size(x) == 0:
        raise ArgumentTypeError("expected non-empty vector for x")
    if np.ndim(y) < 1 or np.ndim(y) > 2:
        raise ArgumentTypeError("expected 1D or 2D array for y")
    n = np.shape(x)[0]
    if n != np.shape(y)[0]:
        raise ArgumentTypeError("expected x and y to have same length")
    if rcond is None:
        rcond = n * np.finfo(np.result_type(x)).eps
    lhs = vander(x, order)
    rhs = y
    if w is not None:
        w = _array(w, "polyfit") + 0.0
        if np.ndim(w) != 1:
            raise ArgumentTypeError("expected a 1-d array for weights")
        if np.shape(w)[0] != np.shape(y)[0]:
            raise ArgumentTypeError("expected w and y to have the same length")
        lhs = in_dtype(lhs * w[:, None], np.result_type(lhs))
        rhs = in_dtype(rhs * (w[:, None] if np.ndim(rhs) == 2 else w), np.result_type(rhs))
    scale = np.sqrt(np.sum(lhs * lhs, axis=0))
    lhs = lhs / scale
    c, resids, rank, s = np.linalg.lstsq(lhs, rhs, rcond)
    c = F.transpose(F.transpose(c) / scale)
    if rank != order and not full:
        warnings.warn("Polyfit may be poorly conditioned", np.exceptions.RankWarning,
                      stacklevel=2)
    if full:
        return c, resids, rank, s, rcond
    if not cov:
        return c
    vbase = np.linalg.inv(np.dot(F.transpose(lhs), lhs)) / np.outer(scale, scale)
    if cov == "unscaled":
        fac = 1
    else:
        if n <= order:
            raise ArgumentError("the number of data points must exceed order to scale the "
                                "covariance matrix")
        fac = resids / (n - order)
    return c, (vbase * fac if np.ndim(y) == 1 else vbase[:, :, None] * fac)


def _companion_eigvals(p: Any) -> Any:
    """numpy's companion matrix of ``p`` (leading coefficient nonzero) and its
    eigenvalues; no roots for a constant."""
    if np.result_type(p).kind not in "fc":
        p = F.astype(p, float)
    n = _len(p)
    if n < 2:
        return np.array([])
    row = F.reshape(-p[1:] / p[0], (1, n - 1))
    return np.linalg.eigvals(np.concatenate((row, np.eye(n - 2, n - 1,
                                                         dtype=np.result_type(p)))))


@implements(np.roots)
def roots(p: Any) -> Any:
    """numpy's roots: the eigenvalues of the companion matrix of ``p`` stripped of its
    leading and trailing zeros, then a root at 0 per trailing zero. Complex where numpy's
    are. The gradient (the eigenvalues') is defined at distinct roots; a single trailing
    zero is a simple root at 0, differentiable: the values stay numpy's, and the
    derivatives (all orders) are those of the unstripped polynomial's roots, which see the
    constant term move. A multiple root at 0 has no derivative, and gets none."""
    p = np.atleast_1d(_array(p, "roots"))
    if np.ndim(p) != 1:
        raise ArgumentError("Input must be a rank-1 array.")
    nz = np.flatnonzero(_values(p, "roots", "leading and trailing zero coefficients are "
                                            "stripped"))
    if len(nz) == 0:
        return np.array([])
    trailing = _len(p) - int(nz[-1]) - 1
    r = _companion_eigvals(p[int(nz[0]):int(nz[-1]) + 1])
    r = np.hstack((r, np.zeros(trailing, np.result_type(r))))
    if trailing != 1 or not isinstance(p, Tracer):
        return r
    moving = _companion_eigvals(p[int(nz[0]):])  # the same roots, in LAPACK's order
    r_v, m_v = _values(r, "roots", ""), _values(moving, "roots", "")
    moving = moving[np.argmin(np.abs(m_v[None, :] - r_v[:, None]), axis=1)]
    if np.result_type(moving) != np.result_type(r):
        moving = np.real(moving)
    return stop_gradient(r) + (moving - stop_gradient(moving))
