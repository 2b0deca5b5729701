"""Sorting and order statistics on traced values: sort, partition, median, quantiles.

Every value here is a gather of the input at indices computed without gradient
(``argsort``, ``partition_perm``), so the gradient flows to the selected elements only
(the subgradient; ties go to the element numpy's stable ordering picks). Index-valued
functions (argsort, argmax, all, searchsorted ...) are primitives without gradient, so they
also run under vmap and eval_shape. Quantile positions follow numpy's own method table.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pycograd.core.errors import ArgumentError, NoRuleError
from pycograd.core.trace import Tracer
from pycograd.numpy_api import functions as F
from pycograd.numpy_api.functions import implements, normalize_axis
from pycograd.ops.elementwise import stop_gradient
from pycograd.ops.scans import (
    QUANTILE_METHODS,
    all_p,
    any_p,
    argmax_p,
    argmin_p,
    argpartition_p,
    argsort_p,
    nan_positions_p,
    partition_perm_p,
    quantile_positions,
    searchsorted_p,
    take_along_p,
)
from pycograd.ops.shaping import broadcast_constant


def _axis(a: Any, axis: Any, op: str) -> tuple[Any, int]:
    """``(a, axis)`` with ``axis=None`` meaning the flattened array."""
    if axis is None:
        return F.ravel(a), 0
    return a, normalize_axis(axis, np.ndim(a), op)[0]


def constant(x: Any, op: str) -> Any:
    """An argument that selects positions or sets weights (``q``, ``kth``, spacings): it
    must be a plain value, since pycograd does not differentiate with respect to it."""
    if isinstance(x, Tracer):
        raise NoRuleError(f"np.{op}: this argument must be a plain array, not a traced "
                          "value (pycograd has no rule for its gradient)")
    return x


# ---- indices (no gradient) --------------------------------------------------------------

@implements(np.argsort)
def argsort(a: Any, axis: Any = -1, kind: Any = None, order: Any = None, *,
            stable: Any = None) -> Any:
    F._unsupported("argsort", order=order)
    a, ax = _axis(a, axis, "argsort")
    return argsort_p.bind(a, axis=ax, kind=kind, stable=stable)


@implements(np.argpartition)
def argpartition(a: Any, kth: Any, axis: Any = -1, kind: str = "introselect",
                 order: Any = None) -> Any:
    F._unsupported("argpartition", order=order)
    a, ax = _axis(a, axis, "argpartition")
    return argpartition_p.bind(a, kth=_kth(kth), axis=ax)


def _kth(kth: Any) -> Any:
    k = np.asarray(constant(kth, "partition"))
    return int(k) if k.ndim == 0 else tuple(int(i) for i in k)


def _arg_extremum(prim: Any, op: str) -> Any:
    def arg(a: Any, axis: Any = None, out: Any = None, *, keepdims: bool = False) -> Any:
        F._unsupported(op, out=out)
        ax = None if axis is None else normalize_axis(axis, np.ndim(a), op)[0]
        return prim.bind(a, axis=ax, keepdims=bool(keepdims))
    arg.__name__ = op
    return arg


argmax = implements(np.argmax)(_arg_extremum(argmax_p, "argmax"))
argmin = implements(np.argmin)(_arg_extremum(argmin_p, "argmin"))


def _nan_arg(arg: Any, fill: float, op: str) -> Any:
    """argmax/argmin with NaNs losing; like numpy, an all-NaN slice is an error (checked
    when the values are available)."""
    def nanarg(a: Any, axis: Any = None, out: Any = None, *, keepdims: bool = False) -> Any:
        nan = np.isnan(a)
        empty = np.all(nan, axis=axis)
        if not isinstance(empty, Tracer) and np.any(empty):
            raise ArgumentError("All-NaN slice encountered")
        return arg(np.where(nan, fill, a), axis, out, keepdims=keepdims)
    nanarg.__name__ = op
    return nanarg


nanargmax = implements(np.nanargmax)(_nan_arg(argmax, -np.inf, "nanargmax"))
nanargmin = implements(np.nanargmin)(_nan_arg(argmin, np.inf, "nanargmin"))


def _logical(prim: Any, f: Any, op: str) -> Any:
    """np.all / np.any; ``where=`` sets the masked-out elements to the identity (True for
    all, False for any)."""
    def reduce(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False, *,
               where: Any = None) -> Any:
        F._unsupported(op, out=out)
        mask = F._mask(where)
        if mask is not None:
            F.numpy_reduction(f, a, axis=axis, keepdims=keepdims, where=mask)
            a = (np.logical_or(a, np.logical_not(mask)) if op == "all" else
                 np.logical_and(a, mask))
        return prim.bind(a, axis=normalize_axis(axis, np.ndim(a), op), keepdims=bool(keepdims))
    reduce.__name__ = op
    return reduce


all = implements(np.all)(_logical(all_p, np.all, "all"))
any = implements(np.any)(_logical(any_p, np.any, "any"))


@implements(np.searchsorted)
def searchsorted(a: Any, v: Any, side: str = "left", sorter: Any = None) -> Any:
    if sorter is not None:
        sorter = sorter if isinstance(sorter, Tracer) else np.asarray(sorter, dtype=np.intp)
        a = take_along_p.bind(a, sorter, axis=0)
    return searchsorted_p.bind(a, v, side=side)


def _data_dependent(f: Any) -> Any:
    """Index lists whose length depends on the values: computed on the plain values."""
    def run(a: Any, *args: Any, **kwargs: Any) -> Any:
        return f(F._detach(a, f"np.{f.__name__}"), *args, **kwargs)
    return run


HANDLED = F.HANDLED
for _f in (np.flatnonzero, np.argwhere):
    HANDLED[_f] = _data_dependent(_f)


# ---- values: sort, partition ----------------------------------------------------------

@implements(np.sort)
def sort(a: Any, axis: Any = -1, kind: Any = None, order: Any = None, *,
         stable: Any = None) -> Any:
    """Sorted values; the gradient goes back through the sorting permutation."""
    F._unsupported("sort", order=order)
    a, ax = _axis(a, axis, "sort")
    return take_along_p.bind(a, argsort_p.bind(a, axis=ax, kind=kind, stable=stable), axis=ax)


@implements(np.partition)
def partition(a: Any, kth: Any, axis: Any = -1, kind: str = "introselect",
              order: Any = None) -> Any:
    """numpy's partitioned array exactly; gradient to the elements placed."""
    F._unsupported("partition", order=order)
    a, ax = _axis(a, axis, "partition")
    return take_along_p.bind(a, partition_perm_p.bind(a, kth=_kth(kth), axis=ax), axis=ax)


@implements(np.ptp)
def ptp(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False) -> Any:
    F._unsupported("ptp", out=out)
    return F.max(a, axis, keepdims=keepdims) - F.min(a, axis, keepdims=keepdims)


# ---- order statistics ----------------------------------------------------------------

def _rows(a: Any, axis: Any, op: str) -> tuple[Any, tuple, tuple]:
    """``a`` with the reduced axes flattened into one last axis, the kept shape, and the
    shape ``keepdims`` gives."""
    shape = np.shape(a)
    axes = normalize_axis(axis, len(shape), op)
    axes = tuple(range(len(shape))) if axes is None else axes
    rest = [i for i in range(len(shape)) if i not in axes]
    kept = tuple(shape[i] for i in rest)
    x = F.reshape(F.transpose(a, rest + list(axes)), kept + (math.prod(shape[i] for i in axes),))
    return x, kept, tuple(1 if i in axes else d for i, d in enumerate(shape))


def _quantile(a: Any, q: Any, axis: Any, method: str, keepdims: bool, op: str,
              ignore_nan: bool, weak_q: bool) -> Any:
    if method not in QUANTILE_METHODS:
        raise ArgumentError(f"{method!r} is not a valid method. Use one of: "
                            f"{list(QUANTILE_METHODS)}")
    q = np.asarray(q)
    if np.any((q < 0) | (q > 1)):
        raise ArgumentError("Quantiles must be in the range [0, 1]")
    x, kept, kept_dims = _rows(a, axis, op)
    n = np.shape(x)[-1]
    last = len(kept)
    s = take_along_p.bind(x, argsort_p.bind(x, axis=last, kind=None, stable=None), axis=last)
    full = q.shape + kept
    if ignore_nan:
        pos = nan_positions_p.bind(x, q=q, method=method)
        lo, hi, gamma = F.astype(pos[0], np.intp), F.astype(pos[1], np.intp), pos[2]
    else:
        # the same positions in every row: computed for one, broadcast to the rows (which
        # may be a symbolic number under eval_shape)
        lo, hi, gamma = (None if p is None else broadcast_constant(p, full)
                         for p in quantile_positions(np.full((1,) * len(kept), n), q, method))
    sb = F.broadcast_to(s, full + (n,))
    r = take_along_p.bind(sb, lo[..., None], axis=len(full))[..., 0]
    if gamma is not None:
        hi_v = take_along_p.bind(sb, hi[..., None], axis=len(full))[..., 0]
        d = hi_v - r
        r = np.where(gamma >= 0.5, hi_v - d * (1 - gamma), r + d * gamma)
    if ignore_nan:
        r = np.where(pos[3] > 0, np.nan, r)
    elif np.result_type(s).kind in "fc":
        r = np.where(np.isnan(s[..., -1]), np.nan, r)
    like = np.zeros((1,), np.result_type(a))
    dtype = np.result_type(np.quantile(like, float(q.flat[0]) if weak_q else q,
                                       method=method))
    r = F.astype(r, dtype) if np.result_type(r) != dtype else r
    return F.reshape(r, q.shape + kept_dims) if keepdims else r


def _q_arg(q: Any, scale: float, op: str) -> tuple[Any, bool]:
    weak = isinstance(q, (int, float))
    return np.true_divide(np.asarray(constant(q, op)), scale), weak


def _order_stat(op: str, scale: float, ignore_nan: bool) -> Any:
    def stat(a: Any, q: Any, axis: Any = None, out: Any = None, overwrite_input: bool = False,
             method: str = "linear", keepdims: bool = False, *, weights: Any = None,
             interpolation: Any = None) -> Any:
        F._unsupported(op, out=out, weights=weights, interpolation=interpolation)
        qv, weak = _q_arg(q, scale, op)
        return _quantile(a, qv, axis, method, keepdims, op, ignore_nan, weak)
    stat.__name__ = op
    return stat


quantile = implements(np.quantile)(_order_stat("quantile", 1.0, False))
percentile = implements(np.percentile)(_order_stat("percentile", 100.0, False))
nanquantile = implements(np.nanquantile)(_order_stat("nanquantile", 1.0, True))
nanpercentile = implements(np.nanpercentile)(_order_stat("nanpercentile", 100.0, True))


def _accumulate_dtype(dt: np.dtype) -> np.dtype:
    """The dtype numpy's ``mean`` adds in: float64 for integers and bools, float32 for
    float16, else the input's."""
    if dt.kind in "biu":
        return np.dtype(np.float64)
    return np.dtype(np.float32) if dt == np.float16 else dt


def _median(a: Any, axis: Any, keepdims: bool, op: str, ignore_nan: bool) -> Any:
    """numpy's median: the mean of the middle element(s) of each sorted slice (complex
    values sort lexicographically, as in numpy), so the gradient goes to those elements.
    A slice holding NaN gives its largest element (a NaN, numpy's ``_median_nancheck``);
    nanmedian skips NaNs, and an all-NaN slice gives NaN (or, where numpy reads it along
    one flattened axis, the slice's last element)."""
    x, kept, kept_dims = _rows(a, axis, op)
    n = np.shape(x)[-1]
    last = len(kept)
    dt = np.result_type(np.median(np.zeros((1,), np.result_type(a))))
    s = take_along_p.bind(x, argsort_p.bind(x, axis=last, kind=None, stable=None), axis=last)
    acc = _accumulate_dtype(np.result_type(s))
    if n == 0:
        r = F.mean(F.astype(s, acc), -1)
    elif ignore_nan:
        pos = nan_positions_p.bind(x, q=np.asarray(0.5), method="linear")
        lo = F.astype(pos[0], np.intp)
        hi = F.astype(np.where(pos[2] > 0, pos[1], pos[0]), np.intp)
        s_lo = take_along_p.bind(s, lo[..., None], axis=last)[..., 0]
        s_hi = take_along_p.bind(s, hi[..., None], axis=last)[..., 0]
        mid = (F.astype(s_lo, acc) + F.astype(s_hi, acc)) / 2
        r = np.where(pos[2] > 0, mid, F.astype(s_lo, acc))
        fill = stop_gradient(x[..., -1]) if (not kept or n >= 600) else np.nan
        r = np.where(pos[3] > 0, fill, r)
    else:
        lo, hi = (n - 1) // 2, n // 2
        r = F.astype(s[..., lo], acc)
        if hi != lo:
            r = (r + F.astype(s[..., hi], acc)) / 2
        if np.result_type(s).kind in "fc":
            top = s[..., -1]
            r = np.where(np.isnan(top), stop_gradient(top), r)
    r = F.astype(r, dt) if np.result_type(r) != dt else r
    return F.reshape(r, kept_dims) if keepdims else r


@implements(np.median)
def median(a: Any, axis: Any = None, out: Any = None, overwrite_input: bool = False,
           keepdims: bool = False) -> Any:
    F._unsupported("median", out=out)
    return _median(a, axis, keepdims, "median", False)


@implements(np.nanmedian)
def nanmedian(a: Any, axis: Any = None, out: Any = None, overwrite_input: bool = False,
              keepdims: bool = False) -> Any:
    F._unsupported("nanmedian", out=out)
    return _median(a, axis, keepdims, "nanmedian", True)
