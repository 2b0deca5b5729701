"""NaN-ignoring reductions and the running products/sums, on traced values.

Each nan-function replaces NaNs by the neutral element of its reduction with ``np.where``
before reducing, so NaN entries get exactly zero gradient and the others the gradient of
the reduction over the valid entries. All-NaN slices give numpy's results (NaN for
mean/var/max, 0 for sum) with zero gradient. ``where=`` and ``initial=`` go to the plain
reductions (``functions.py``), which apply them as numpy does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pycograd.core.errors import ShapeError
from pycograd.numpy_api import functions as F
from pycograd.numpy_api.functions import implements, normalize_axis
from pycograd.ops.scans import cumprod_p


def _valid(a: Any, fill: float) -> Any:
    return np.where(np.isnan(a), fill, a)


def _count(a: Any, axis: Any, keepdims: bool, where: Any = None) -> Any:
    return F.sum(np.logical_not(np.isnan(a)), axis, keepdims=keepdims, where=where)


@implements(np.nansum)
def nansum(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
           keepdims: bool = False, initial: Any = None, where: Any = None) -> Any:
    F._unsupported("nansum", out=out)
    return F.sum(_valid(a, 0), axis, dtype, keepdims=keepdims, initial=initial, where=where)


@implements(np.nanprod)
def nanprod(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
            keepdims: bool = False, initial: Any = None, where: Any = None) -> Any:
    F._unsupported("nanprod", out=out)
    return F.prod(_valid(a, 1), axis, dtype, keepdims=keepdims, initial=initial, where=where)


@implements(np.nanmean)
def nanmean(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
            keepdims: bool = False, *, where: Any = None) -> Any:
    F._unsupported("nanmean", out=out)
    total = F.sum(_valid(a, 0), axis, dtype, keepdims=keepdims, where=where)
    return _divide(total, _count(a, axis, keepdims, where))


def _divide(total: Any, count: Any) -> Any:
    """``total / count`` in the dtype of ``total`` (numpy keeps float32 sums float32)."""
    r = total / count
    dt = np.result_type(total)
    return F.astype(r, dt) if dt.kind in "fc" and np.result_type(r) != dt else r


@implements(np.nanvar)
def nanvar(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: float = 0,
           keepdims: bool = False, *, where: Any = None, mean: Any = None,
           correction: Any = None) -> Any:
    """numpy's recipe: squared deviations from the NaN-ignoring mean, ``|d|^2`` (real)
    for complex ``a``, over ``count - ddof`` (NaN where that is not positive)."""
    F._unsupported("nanvar", out=out)
    if correction is not None:
        ddof = correction
    m = nanmean(a, axis, dtype, keepdims=True, where=where) if mean is None else mean
    d = _valid(a - m, 0)
    mask = F._mask(where)
    if mask is not None:  # zero outside the mask too: no inf * 0 in the gradient
        d = np.where(mask, d, 0)
    sq = np.real(d * np.conj(d)) if np.result_type(d).kind == "c" else d * d
    dof = _count(a, axis, keepdims, where) - ddof
    return _divide(F.sum(sq, axis, dtype, keepdims=keepdims, where=where),
                   np.where(dof > 0, dof, np.nan))


@implements(np.nanstd)
def nanstd(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: float = 0,
           keepdims: bool = False, *, where: Any = None, mean: Any = None,
           correction: Any = None) -> Any:
    """``sqrt(nanvar)``, with gradient 0 where the variance is 0 (``functions.root``)."""
    return F.root(nanvar(a, axis, dtype, out, ddof, keepdims, where=where, mean=mean,
                         correction=correction))


def _nan_extremum(reduce: Any, fill: float, op: str) -> Any:
    """nanmax/nanmin (numpy's fmax/fmin reductions): NaNs lose; an all-NaN slice gives NaN,
    or ``initial`` when it is given."""
    def extremum(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False,
                 initial: Any = None, where: Any = None) -> Any:
        F._unsupported(op, out=out)
        mask = F._mask(where)
        if initial is not None or mask is not None:
            F.numpy_reduction(getattr(np, op), a, axis=axis, keepdims=keepdims,
                              initial=initial, where=mask)
            return reduce(_valid(a, fill), axis, keepdims=keepdims, initial=initial,
                          where=mask)
        r = reduce(_valid(a, fill), axis, keepdims=keepdims)
        return np.where(np.all(np.isnan(a), axis=axis, keepdims=keepdims), np.nan, r)
    extremum.__name__ = op
    return extremum


nanmax = implements(np.nanmax)(_nan_extremum(F.max, -np.inf, "nanmax"))
nanmin = implements(np.nanmin)(_nan_extremum(F.min, np.inf, "nanmin"))


# ---- running products and sums ---------------------------------------------------------

@implements(np.cumprod)
def cumprod(a: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Any:
    F._unsupported("cumprod", out=out)
    if axis is None:
        a, axis = F.ravel(a), 0
    r = cumprod_p.bind(a, axis=normalize_axis(axis, np.ndim(a), "cumprod")[0])
    return r if dtype is None else F.astype(r, dtype)


@implements(np.nancumsum)
def nancumsum(a: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Any:
    return F.cumsum(_valid(a, 0), axis, dtype, out)


@implements(np.nancumprod)
def nancumprod(a: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Any:
    return cumprod(_valid(a, 1), axis, dtype, out)


def _cumulative(scan: Any, neutral: int, op: str) -> Any:
    """numpy 2's ``cumulative_sum`` / ``cumulative_prod``: the scan, optionally preceded
    by the neutral element."""
    def cumulative(x: Any, /, *, axis: Any = None, dtype: Any = None, out: Any = None,
                   include_initial: bool = False) -> Any:
        F._unsupported(op, out=out)
        if axis is None:
            if np.ndim(x) > 1:
                raise ShapeError(f"{op}: axis must be given for arrays of more than one "
                                 "dimension")
            axis = 0
        ax = normalize_axis(axis, np.ndim(x), op)[0]
        r = scan(x, ax, dtype)
        if not include_initial:
            return r
        shape = list(np.shape(r))
        shape[ax] = 1
        return F.concatenate([np.full(shape, neutral, dtype=np.result_type(r)), r], ax)
    cumulative.__name__ = op
    return cumulative


if hasattr(np, "cumulative_sum"):
    HANDLED = F.HANDLED
    HANDLED[np.cumulative_sum] = _cumulative(F.cumsum, 0, "cumulative_sum")
    HANDLED[np.cumulative_prod] = _cumulative(cumprod, 1, "cumulative_prod")
