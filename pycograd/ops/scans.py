"""Scans and orderings: the running product, index-valued primitives (argsort,
argpartition, argmax/argmin, all/any, searchsorted, NaN-aware quantile positions), a
gather/scatter pair along one axis whose indices are operands, and the ufuncs that remained
(nextafter, ldexp, spacing). Quantile positions follow Hyndman and Fan's definitions as numpy
writes them (the 13 methods of ``np.quantile``, each one's virtual index and interpolation
weight), written here from public numpy only, so they match numpy without its private modules.

Index-valued primitives carry no gradient, but they are primitives (not numpy calls on
detached values) so that vmap and eval_shape see them. ``take_along`` takes its indices
as an operand, not a parameter, so a batched index (from ``argsort`` under vmap) works;
sort, partition and the order statistics are built from these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from pycograd.core.primitive import Primitive, primitive
from pycograd.core.symbolic import Dim
from pycograd.core.trace import Tracer
from pycograd.core.var import Var
from pycograd.ops.batching import to_front
from pycograd.ops.broadcasting import unbroadcast
from pycograd.ops.shaping import dtype_of, full, shape_of

_INTP = np.dtype(np.intp)


def _concrete(x: Any) -> Any:
    while isinstance(x, Var):
        x = x.value
    return x


# ---- running product ------------------------------------------------------------

def _rev_cumsum(v: Any, axis: int) -> Any:
    return np.flip(np.cumsum(np.flip(v, axis), axis), axis)


def _others(x: Any) -> Any:
    """``C[..., j, i] = prod(x[..., k] for k <= i, k != j)`` for ``i >= j``, else 0 (axis
    last): the exact partials of a running product, zeros in ``x`` included."""
    n = np.shape(x)[-1]
    rows = np.where(np.eye(n, dtype=bool), 1, x[..., None, :])
    c = cumprod_p.bind(rows, axis=np.ndim(rows) - 1)
    return np.where(np.triu(np.ones((n, n), dtype=bool)), c, 0)


def _no_zeros(x: Any) -> bool:
    cx = _concrete(x)
    return not isinstance(cx, Tracer) and bool(np.all(cx != 0))


def _cumprod_vjp(g: Any, ans: Any, x: Any, axis: int) -> Any:
    """``dL/dx_j = sum_{i>=j} g_i y_i / x_j`` when no factor is zero; otherwise the exact
    products of the other factors (quadratic in the scanned length, as for ``prod``)."""
    if _no_zeros(x):
        return _rev_cumsum(g * ans, axis) / x
    c = _others(np.moveaxis(x, axis, -1))
    r = np.sum(c * np.moveaxis(g, axis, -1)[..., None, :], axis=-1)
    return np.moveaxis(r, -1, axis)


def _cumprod_jvp(primals: list, tangents: list, axis: int) -> tuple:
    (x,), (t,) = primals, tangents
    y = cumprod_p.bind(x, axis=axis)
    if _no_zeros(x):
        return y, y * np.cumsum(t / x, axis)
    c = _others(np.moveaxis(x, axis, -1))
    r = np.sum(c * np.moveaxis(t, axis, -1)[..., :, None], axis=-2)
    return y, np.moveaxis(r, -1, axis)


def _cumprod_dtype(x: Any) -> np.dtype:
    return np.result_type(np.cumprod(np.ones(1, dtype_of(x))))


cumprod_p = primitive(
    "cumprod", lambda x, axis: np.cumprod(x, axis=axis), _cumprod_vjp, jvp=_cumprod_jvp,
    batch=lambda size, vals, dims, axis: (
        cumprod_p.bind(to_front(vals[0], dims[0], size), axis=axis + 1), 0),
    shape=lambda args, axis: (shape_of(args[0]), _cumprod_dtype(args[0])))


# ---- index-valued primitives along one axis ----------------------------------------

def _along_axis(make: Any) -> tuple:
    """Batch and shape rules of an index-valued op along ``axis`` (result shaped like
    its operand): the batch axis goes first and ``axis`` shifts by one."""
    def batch(size: int, vals: list, dims: list, axis: int, **params: Any) -> tuple:
        return make().bind(to_front(vals[0], dims[0], size), axis=axis + 1, **params), 0

    def shape(args: list, axis: int, **params: Any) -> tuple:
        return shape_of(args[0]), _INTP
    return batch, shape


def _partition_perm(x: Any, kth: Any, axis: int) -> Any:
    """Indices ``p`` with ``x[p]`` (along ``axis``) equal to ``np.partition(x, kth)``
    itself, element for element (``argpartition`` may arrange the rest differently)."""
    part = np.partition(x, kth, axis=axis)
    order = np.argsort(x, axis=axis, kind="stable")
    rank = np.argsort(np.argsort(part, axis=axis, kind="stable"), axis=axis, kind="stable")
    return np.take_along_axis(order, rank, axis)


_b, _s = _along_axis(lambda: argsort_p)
argsort_p = primitive(
    "argsort", lambda x, axis, kind, stable: np.argsort(x, axis=axis, kind=kind, stable=stable),
    differentiable=False, batch=_b, shape=_s)
_b, _s = _along_axis(lambda: argpartition_p)
argpartition_p = primitive(
    "argpartition", lambda x, kth, axis: np.argpartition(x, kth, axis=axis),
    differentiable=False, batch=_b, shape=_s)
_b, _s = _along_axis(lambda: partition_perm_p)
partition_perm_p = primitive("partition_perm", _partition_perm, differentiable=False,
                             batch=_b, shape=_s)


def _arg_extremum(name: str, f: Any) -> Primitive:
    """argmax/argmin over one axis or all (``axis=None``)."""
    def batch(size: int, vals: list, dims: list, axis: int | None, keepdims: bool) -> tuple:
        x = to_front(vals[0], dims[0], size)
        if axis is not None:
            return p.bind(x, axis=axis + 1, keepdims=keepdims), 0
        nd = np.ndim(x) - 1
        r = p.bind(np.reshape(x, (size, -1)), axis=1, keepdims=False)
        return (np.reshape(r, (size,) + (1,) * nd) if keepdims else r), 0

    def shape(args: list, axis: int | None, keepdims: bool) -> tuple:
        s = shape_of(args[0])
        if axis is None:
            return ((1,) * len(s) if keepdims else ()), _INTP
        return (s[:axis] + ((1,) if keepdims else ()) + s[axis + 1:]), _INTP

    p = primitive(name, lambda x, axis, keepdims: f(x, axis=axis, keepdims=keepdims),
                  differentiable=False, batch=batch, shape=shape)
    return p


argmax_p = _arg_extremum("argmax", np.argmax)
argmin_p = _arg_extremum("argmin", np.argmin)
all_p = primitive("all", lambda x, axis, keepdims: np.all(x, axis=axis, keepdims=keepdims),
                  differentiable=False, family="reduction")
any_p = primitive("any", lambda x, axis, keepdims: np.any(x, axis=axis, keepdims=keepdims),
                  differentiable=False, family="reduction")


def _searchsorted_batch(size: int, vals: list, dims: list, side: str) -> tuple:
    (a, v), (da, dv) = vals, dims
    if da is None:
        return searchsorted_p.bind(a, v, side=side), dv
    a = to_front(a, da, size)
    v = v if dv is None else to_front(v, dv, size)
    if isinstance(size, Dim):  # a symbolic batch (eval_shape): shape and dtype, no loop
        return full((size,) + np.shape(v)[0 if dv is None else 1:], 0, np.intp), 0
    outs = [searchsorted_p.bind(a[i], v if dv is None else v[i], side=side)
            for i in range(size)]
    return np.stack(outs), 0


searchsorted_p = primitive(
    "searchsorted", lambda a, v, side: np.searchsorted(a, v, side=side), differentiable=False,
    batch=_searchsorted_batch, shape=lambda args, side: (shape_of(args[1]), _INTP))


# ---- quantile positions --------------------------------------------------------------

class _Method(NamedTuple):
    """One quantile method: ``index(n, q)`` is the (0-based) virtual index into ``n`` sorted
    values, an integer array for the methods that pick one value; ``gamma(frac, index)``
    turns the index's fractional part into the interpolation weight (None: keep it)."""

    index: Callable[[Any, Any], Any]
    gamma: Callable[[Any, Any], Any] | None = None


def _continuous(alpha: float, beta: float) -> _Method:
    """Hyndman and Fan's continuous estimators, ``p(k) = (k - alpha) / (n + 1 - alpha -
    beta)`` solved for the 0-based index."""
    return _Method(lambda n, q: n * q + (alpha + q * (1 - alpha - beta)) - 1)


def _step(offset: float, stay: Callable[[Any, Any], Any]) -> _Method:
    """A discrete estimator: from ``index = n q - 1 - offset``, the next value up, except
    where ``stay(frac, index)`` holds (then the value below); never before the first."""
    def index(n: Any, q: Any) -> Any:
        i = np.asarray(n * q - 1 - offset)
        below = np.floor(i)
        return np.maximum(np.where(stay(i - below, i), below, below + 1), 0).astype(np.intp)
    return _Method(index)


_QUANTILE_TABLE = {
    "inverted_cdf": _step(0.0, lambda frac, i: frac == 0),
    "averaged_inverted_cdf": _Method(lambda n, q: n * q - 1,
                                     lambda frac, i: np.where(frac == 0, 0.5, 1.0)),
    # ties go to the nearest even order statistic (1-based), an odd 0-based index
    "closest_observation": _step(0.5, lambda frac, i: (frac == 0) & (np.floor(i) % 2 == 1)),
    "interpolated_inverted_cdf": _continuous(0.0, 1.0),
    "hazen": _continuous(0.5, 0.5),
    "weibull": _continuous(0.0, 0.0),
    "linear": _Method(lambda n, q: (n - 1) * q),  # = _continuous(1, 1), rounded as numpy
    "median_unbiased": _continuous(1 / 3.0, 1 / 3.0),
    "normal_unbiased": _continuous(3 / 8.0, 3 / 8.0),
    "lower": _Method(lambda n, q: np.floor((n - 1) * q).astype(np.intp)),
    "higher": _Method(lambda n, q: np.ceil((n - 1) * q).astype(np.intp)),
    "midpoint": _Method(lambda n, q: 0.5 * (np.floor((n - 1) * q) + np.ceil((n - 1) * q)),
                        lambda frac, i: np.where(i % 1 == 0, 0.0, 0.5)),
    "nearest": _Method(lambda n, q: np.around((n - 1) * q).astype(np.intp)),
}
QUANTILE_METHODS = tuple(_QUANTILE_TABLE)


def quantile_positions(count: Any, q: np.ndarray, method: str) -> tuple:
    """Where numpy's quantile ``method`` reads rows of ``count`` sorted valid values:
    ``(lo, hi, gamma)`` shaped ``q.shape + count.shape``, the result being
    ``lerp(s[lo], s[hi], gamma)`` (``gamma`` None for the methods that pick one value).
    The method table gives the virtual index, so every method matches numpy."""
    method_ = _QUANTILE_TABLE[method]
    count = np.asarray(count)
    full = q.shape + count.shape
    qb = q.reshape(q.shape + (1,) * count.ndim)
    virtual = np.broadcast_to(np.asanyarray(method_.index(count, qb)), full)
    top = np.broadcast_to(np.maximum(count - 1, 0), full)
    if np.issubdtype(virtual.dtype, np.integer):
        lo = np.clip(virtual, 0, top).astype(np.intp)
        return lo, lo, None
    prev = np.floor(virtual)
    lo = np.where(virtual >= top, top, np.clip(prev, 0, None)).astype(np.intp)
    hi = np.where(virtual >= top, top, np.clip(prev + 1, 0, None)).astype(np.intp)
    frac = virtual - prev
    gamma = np.asarray(frac if method_.gamma is None else method_.gamma(frac, virtual),
                       dtype=virtual.dtype)
    return lo, hi, gamma


def _nan_positions(x: Any, q: np.ndarray, method: str) -> np.ndarray:
    """``quantile_positions`` for rows (last axis of ``x``) whose NaNs are ignored, stacked
    with a flag for all-NaN rows: ``[lo, hi, gamma, empty]`` as floats."""
    count = np.sum(~np.isnan(x), axis=-1)
    lo, hi, gamma = quantile_positions(count, q, method)
    empty = np.broadcast_to(count == 0, lo.shape)
    return np.stack([lo, hi, np.zeros(lo.shape) if gamma is None else gamma, empty]).astype(
        np.float64)


nan_positions_p = primitive(
    "nan_quantile_positions", _nan_positions, differentiable=False,
    batch=lambda size, vals, dims, q, method: (nan_positions_p.bind(
        to_front(vals[0], dims[0], size), q=q, method=method), 1 + q.ndim),
    shape=lambda args, q, method: ((4,) + q.shape + shape_of(args[0])[:-1],
                                   np.dtype(np.float64)))


# ---- gather / scatter along one axis, indices as an operand ------------------------

def _scatter_along_impl(g: Any, idx: Any, axis: int, n: int) -> Any:
    shape = list(np.shape(idx))
    shape[axis] = n
    out = np.zeros(shape, dtype=np.result_type(g))
    grid = list(np.ix_(*[np.arange(d) for d in np.shape(idx)]))
    grid[axis] = idx
    np.add.at(out, tuple(grid), g)
    return out


def _linear_in_first(make: Any) -> tuple:
    """JVP and batch rules of an op linear in its first operand whose second operand is an
    integer index array (no tangent; possibly batched)."""
    def jvp(primals: list, tangents: list, **params: Any) -> tuple:
        p = make()
        out = p.bind(*primals, **params)
        t = tangents[0]
        return out, None if t is None else p.bind(t, primals[1], **params)

    def batch(size: int, vals: list, dims: list, axis: int, **params: Any) -> tuple:
        x, idx = (to_front(v, d, size) for v, d in zip(vals, dims))
        return make().bind(x, idx, axis=axis + 1, **params), 0
    return jvp, batch


_j, _b = _linear_in_first(lambda: take_along_p)
take_along_p = primitive(
    "take_along", lambda x, idx, axis: np.take_along_axis(x, idx, axis),
    lambda g, ans, x, idx, axis: scatter_along_p.bind(g, idx, axis=axis, n=np.shape(x)[axis]),
    None, family="linear", jvp=_j, batch=_b,
    shape=lambda args, axis: (shape_of(args[1]), dtype_of(args[0])))
_j, _b = _linear_in_first(lambda: scatter_along_p)
scatter_along_p = primitive(
    "scatter_along", _scatter_along_impl,
    lambda g, ans, x, idx, axis, n: take_along_p.bind(g, idx, axis=axis),
    None, family="linear", jvp=_j, batch=_b,
    shape=lambda args, axis, n: (
        shape_of(args[1])[:axis] + (n,) + shape_of(args[1])[axis + 1:], dtype_of(args[0])))


# ---- the remaining real ufuncs -------------------------------------------------------

def _ufunc(uf: np.ufunc, *vjps: Any, differentiable: bool = True) -> Primitive:
    p = primitive(uf.__name__, uf, *vjps, differentiable=differentiable, family="elementwise")
    UFUNCS[uf] = p
    return p


UFUNCS: dict[np.ufunc, Primitive] = {}
# nextafter(x, y) is x moved by one ulp: slope 1 in x, piecewise constant in y.
_ufunc(np.nextafter, lambda g, ans, x, y: unbroadcast(g, np.shape(x)), None)
# ldexp(x, n) = x * 2**n with integer n.
_ufunc(np.ldexp, lambda g, ans, x, n: unbroadcast(np.ldexp(g, n), np.shape(x)), None)
_ufunc(np.spacing, differentiable=False)
# Integer bit arithmetic: no gradient (integers carry none), but traced integers (a key
# per example under vmap, an abstract key under eval_shape) go through it, so the
# counter-based random keys are ordinary values under every transform.
for _uf in (np.bitwise_and, np.bitwise_or, np.bitwise_xor, np.invert, np.left_shift,
            np.right_shift):
    _ufunc(_uf, differentiable=False)
