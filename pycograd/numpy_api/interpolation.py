"""``np.interp`` and ``np.unwrap`` on traced values.

``interp`` is numpy's piecewise-linear formula ``slope * (x - xp[j]) + fp[j]`` with the
interval ``j`` found by ``searchsorted`` (an index without gradient, so it runs under
every transform) and numpy's special cases as ``np.where`` selections: the gradient
is the slope with respect to ``x`` (0 outside ``[xp[0], xp[-1]]``, the right slope at a
knot), the two interpolation weights with respect to ``fp``, and the derivative through
the slope with respect to ``xp`` (defined where ``x`` lies strictly inside an interval).

``unwrap`` adds multiples of the period that are piecewise constant in the input, so
they are computed on the stopped values and the gradient passes straight through.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pycograd.core.errors import ArgumentError, ArgumentTypeError, NoRuleError, ShapeError
from pycograd.core.trace import Tracer
from pycograd.numpy_api import functions as F
from pycograd.numpy_api.functions import implements
from pycograd.numpy_api.statistics import in_dtype
from pycograd.ops.elementwise import stop_gradient
from pycograd.ops.scans import take_along_p


def _gather(a: Any, idx: Any) -> Any:
    """``a[idx]`` for a 1-d ``a`` (plain or traced) and an index computed from traced
    values (batched under vmap, abstract under eval_shape)."""
    return F.reshape(take_along_p.bind(a, F.ravel(idx), axis=0), np.shape(idx))


def _plain(x: Any, op: str, name: str) -> Any:
    if isinstance(x, Tracer):
        raise NoRuleError(f"np.{op}: a traced {name} is not supported (pycograd does not "
                          f"differentiate with respect to it); pass a plain number")
    return x


def _fill(v: Any, default: Any, dtype: Any) -> Any:
    """``left`` / ``right`` converted as numpy's C code does (a real or complex scalar)."""
    if v is None:
        return default
    if isinstance(v, Tracer):
        if v.ndim:
            raise ArgumentTypeError("only 0-dimensional arrays can be converted to Python scalars")
        if v.dtype.kind == "c" and np.dtype(dtype).kind != "c":
            raise ArgumentTypeError("must be real number, not complex")
        return in_dtype(v, dtype)
    if np.dtype(dtype).kind == "c":
        return np.asarray(complex(v), dtype)
    if (isinstance(v, complex) and not isinstance(v, np.generic)) or \
            not hasattr(type(v), "__float__"):  # what PyFloat_AsDouble refuses
        raise ArgumentTypeError(f"must be real number, not {type(v).__name__}")
    return np.asarray(float(v), dtype)


def _points(a: Any, dtype: Any) -> Any:
    if np.ndim(a) == 0:
        raise ArgumentError("object of too small depth for desired array")
    if np.ndim(a) > 1:
        raise ArgumentError("object too deep for desired array")
    return in_dtype(a, dtype)


@implements(np.interp)
def interp(x: Any, xp: Any, fp: Any, left: Any = None, right: Any = None,
           period: Any = None) -> Any:
    fp = fp if isinstance(fp, Tracer) else np.asarray(fp)
    dt = np.dtype(np.complex128 if np.result_type(fp).kind == "c" else np.float64)
    x = in_dtype(x, np.float64)
    if period is not None:
        period = _plain(period, "interp", "period")
        if period == 0:
            raise ArgumentError("period must be a non-zero value")
        period = abs(period)
        left = right = None
        xp, fp = in_dtype(xp, np.float64), in_dtype(fp, dt)
        if np.ndim(xp) != 1 or np.ndim(fp) != 1:
            raise ShapeError("Data points must be 1-D sequences")
        if np.shape(xp)[0] != np.shape(fp)[0]:
            raise ArgumentError("fp and xp are not of the same length")
        x = x % period
        xp = xp % period
        order = np.argsort(xp)
        xp, fp = _gather(xp, order), _gather(fp, order)
        xp = F.concatenate((xp[-1:] - period, xp, xp[0:1] + period))
        fp = F.concatenate((fp[-1:], fp, fp[0:1]))
    fp = _points(fp, dt)
    xp = _points(xp, np.float64)
    n = np.shape(xp)[0]
    if n == 0:
        raise ShapeError("array of sample points is empty")
    if np.shape(fp)[0] != n:
        raise ArgumentError("fp and xp are not of the same length.")
    lval = _fill(left, fp[0], dt)
    rval = _fill(right, fp[-1], dt)
    if n == 1:
        return np.where(x < xp[0], lval, np.where(x > xp[0], rval, fp[0]))
    j = np.searchsorted(xp, x, side="right") - 1
    at_end = j == n - 1
    j = np.clip(j, 0, n - 2)
    xj, xk, yj, yk = (_gather(a, i) for a in (xp, fp) for i in (j, j + 1))
    slope = (yk - yj) / (xk - xj)
    xa, ya = np.where(at_end, xk, xj), np.where(at_end, yk, yj)
    inner = slope * (x - xa) + ya
    # numpy's fallbacks where the formula gives NaN (infinite values): the value at a
    # knot, else the formula from the right end, else fp[j] if both ends are equal
    other = slope * (x - xk) + yk
    other = np.where(np.logical_and(np.isnan(other), yj == yk), yj, other)
    inner = np.where(np.isnan(inner), np.where(x == xa, ya, other), inner)
    out = np.where(x < xp[0], lval, np.where(x > xp[-1], rval, inner))
    return np.where(np.isnan(x), x, out)


@implements(np.unwrap)
def unwrap(p: Any, discont: Any = None, axis: int = -1, *, period: Any = 2 * np.pi) -> Any:
    """``p`` plus the cumulative sum of numpy's phase corrections, which are computed on
    the stopped values (they are piecewise constant), in numpy's dtype."""
    period = _plain(period, "unwrap", "period")
    if np.ndim(p) == 0:
        raise ArgumentError("diff requires input that is at least one dimensional")
    ax = F.normalize_axis(axis, np.ndim(p), "unwrap")[0]
    pv = stop_gradient(p) if isinstance(p, Tracer) else np.asarray(p)
    dd = np.diff(pv, axis=ax)
    if discont is None:
        discont = period / 2
    elif isinstance(discont, Tracer):
        discont = stop_gradient(discont)
    dtype = np.result_type(dd, period)
    if np.issubdtype(dtype, np.integer):
        interval_high, rem = divmod(period, 2)
        boundary_ambiguous = rem == 0
    else:
        interval_high = period / 2
        boundary_ambiguous = True
    interval_low = -interval_high
    ddmod = np.mod(dd - interval_low, period) + interval_low
    if boundary_ambiguous:
        ddmod = np.where(np.logical_and(ddmod == interval_low, dd > 0),
                         np.asarray(interval_high, np.result_type(ddmod)), ddmod)
    correction = np.where(abs(dd) < discont, np.zeros((), np.result_type(ddmod)), ddmod - dd)
    head = (slice(None),) * ax
    rest = in_dtype(p[head + (slice(1, None),)] + np.cumsum(correction, axis=ax), dtype)
    return F.concatenate((in_dtype(p[head + (slice(0, 1),)], dtype), rest), ax)
