"""``np.*`` functions on traced values: each entry maps a numpy function onto primitives.

``Tracer.__array_function__`` looks the called function up in ``HANDLED``; a function
that is not there raises ``NoRuleError`` naming it, so a gradient is never silently lost.
Composite functions (mean, var, stack, tensordot ...) are written with primitives and
so need no rules of their own.
"""

from __future__ import annotations

import builtins
import inspect
import math
import operator
import string
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pycograd.backends.arrays.placed import same_device
from pycograd.core.errors import ArgumentError, IndexingError, NoRuleError, ShapeError
from pycograd.core.symbolic import Dim
from pycograd.core.trace import Tracer
from pycograd.ops.control import select_p
from pycograd.ops.elementwise import astype as astype_p
from pycograd.ops.elementwise import round_p, stop_gradient
from pycograd.ops.indexing import Slot, getitem_p
from pycograd.ops.linalg import einsum_p
from pycograd.ops.reductions import cumsum_p, max_p, min_p, prod_p, sum_p
from pycograd.ops.scans import take_along_p
from pycograd.ops.shape import broadcast_to_p, concatenate_p, reshape_p, transpose_p
from pycograd.ops.shaping import broadcast_constant, broadcast_shapes

HANDLED: dict[Callable, Callable] = {}

NO_VALUE: Any = inspect.signature(np.sum).parameters["initial"].default
"""numpy's "argument not given" default (``np._NoValue``), read from a public signature so
that no private numpy name is imported; numpy passes it on from its own wrappers."""


def implements(*np_funcs: Callable) -> Callable:
    def register(f: Callable) -> Callable:
        for nf in np_funcs:
            HANDLED[nf] = f
        return f
    return register


def _unsupported(fname: str, **kwargs: Any) -> None:
    for k, v in kwargs.items():
        if v is not None:
            raise NoRuleError(
                f"np.{fname}(..., {k}=...) is not differentiable in pycograd; "
                f"call np.{fname} without {k}= and use the returned array")


def normalize_axis(axis: Any, ndim: int, op: str) -> tuple | None:
    """``None`` or a sorted tuple of non-negative axes, with a ShapeError for bad ones."""
    if axis is None:
        return None
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < ndim:
            raise ShapeError(f"{op}: axis {a} is out of bounds for an array of {ndim} dims")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ShapeError(f"{op}: repeated axis in {axis}")
    return tuple(sorted(out))


def _single_axis(axis: int, ndim: int, op: str) -> int:
    return normalize_axis(axis, ndim, op)[0]


# ---- reductions -------------------------------------------------------------------

def _stand_in(x: Any) -> Any:
    """A zero-strided zero array of ``x``'s shape and dtype (no memory), for asking numpy
    about a call on traced values; None when the shape is symbolic."""
    shape = np.shape(x)
    if not builtins.all(isinstance(d, int) for d in shape):
        return None
    return np.broadcast_to(np.zeros((), np.result_type(x)), shape)


def numpy_reduction(f: Callable, a: Any, **kwargs: Any) -> np.dtype | None:
    """numpy's own checks and result dtype for the reduction ``f(a, **kwargs)``: numpy runs
    on stand-ins of the traced arguments (``a``, a traced ``where=`` or ``initial=``), so
    a bad mask, a missing ``initial=`` or a bad axis raise numpy's errors. None when a
    shape is symbolic (nothing is checked then)."""
    args = {k: v for k, v in kwargs.items() if v is not None}
    for k, v in [("a", a)] + list(args.items()):
        if isinstance(v, Tracer) or k == "a":
            args[k] = _stand_in(v)
            if args[k] is None:
                return None
    stand_in = args.pop("a")
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.result_type(f(stand_in, **args))


def _mask(where: Any) -> Any:
    """``where=`` as a mask, or None for no mask (numpy's default ``True``)."""
    if where is None or where is NO_VALUE or (isinstance(where, bool) and where):
        return None
    return where if isinstance(where, Tracer) else np.asarray(where)


def _initial(initial: Any, dtype: np.dtype) -> Any:
    """``initial=`` cast to the reduction's dtype, as numpy casts it."""
    if isinstance(initial, Tracer):
        return astype(initial, dtype)
    with np.errstate(all="ignore"):
        return np.asarray(initial).astype(dtype)


# ``where=`` masks with the reduction's identity; ``initial=`` joins through the binary op.
_IDENTITY = {"sum": 0, "prod": 1}
_JOIN = {"sum": np.add, "prod": np.multiply, "max": np.maximum, "min": np.minimum}
_NUMPY = {"sum": np.sum, "prod": np.prod, "max": np.max, "min": np.min}


def _reduce(prim: Any, fname: str, a: Any, axis: Any, dtype: Any, keepdims: bool,
            initial: Any, where: Any) -> Any:
    """One reduction as numpy computes it: in ``dtype`` when given, masked-out elements
    replaced by the identity (max/min: by ``initial``), then joined with ``initial``."""
    if initial is NO_VALUE:
        initial = None
    mask = _mask(where)
    ax = normalize_axis(axis, np.ndim(a), fname)
    dt = None
    if mask is not None or initial is not None:
        dt = numpy_reduction(_NUMPY[fname], a, axis=axis, dtype=dtype, keepdims=keepdims,
                             initial=initial, where=mask)
    if dtype is not None:
        a = astype(a, dtype)
    if mask is not None:  # max/min: numpy has checked that ``initial`` is given
        fill = _initial(initial, np.result_type(a)) if fname in ("max", "min") else \
            np.asarray(_IDENTITY[fname], np.result_type(a))
        a = select_p.bind(mask, a, fill)
    empty = dt is not None and _count(a, ax) == 0  # (dt is None for symbolic shapes)
    if initial is not None and empty and fname in ("max", "min"):
        return broadcast_to(_initial(initial, dt), _reduced_shape(np.shape(a), ax, keepdims))
    r = prim.bind(a, axis=ax, keepdims=bool(keepdims))
    if dtype is not None:  # integer sums widen unless told otherwise
        r = _in_dtype(r, np.dtype(dtype))
    if initial is not None:
        r = _JOIN[fname](r, _initial(initial, np.result_type(r)))
    return _in_dtype(r, dt)


def _reduction(prim: Any, fname: str) -> Callable:
    """np.sum / np.prod, and np.max / np.min with numpy's positional order (no ``dtype``
    there; ``np.maximum.reduce`` passes it by keyword)."""
    if fname in ("max", "min"):
        def reduce(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False,
                   initial: Any = None, where: Any = None, *, dtype: Any = None) -> Any:
            _unsupported(fname, out=out)
            return _reduce(prim, fname, a, axis, dtype, keepdims, initial, where)
    else:
        def reduce(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
                   keepdims: bool = False, initial: Any = None, where: Any = None) -> Any:
            _unsupported(fname, out=out)
            return _reduce(prim, fname, a, axis, dtype, keepdims, initial, where)
    reduce.__name__ = fname
    return reduce


sum = implements(np.sum)(_reduction(sum_p, "sum"))
prod = implements(np.prod)(_reduction(prod_p, "prod"))
max = implements(np.max, np.amax)(_reduction(max_p, "max"))
min = implements(np.min, np.amin)(_reduction(min_p, "min"))


def _count(a: Any, axis: tuple | None) -> int:
    shape = np.shape(a)
    return math.prod(shape) if axis is None else math.prod(shape[i] for i in axis)


def _reduced_shape(shape: tuple, axis: tuple | None, keepdims: bool) -> tuple:
    axes = range(len(shape)) if axis is None else axis
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _masked_count(a: Any, mask: Any, axis: tuple | None, keepdims: bool) -> Any:
    """How many elements each slice reduces: a Python int without a mask, else the mask's
    count per slice (numpy's ``rcount``)."""
    if mask is None:
        return _count(a, axis)
    if not isinstance(mask, Tracer):
        return np.sum(np.broadcast_to(mask, np.shape(a)), axis, np.intp, keepdims=keepdims)
    return sum(broadcast_to(mask, np.shape(a)), axis, np.intp, keepdims=keepdims)


def _in_dtype(r: Any, dt: Any) -> Any:
    """``r`` cast to numpy's result dtype ``dt`` (numpy divides in place, keeping it)."""
    return r if dt is None or np.result_type(r) == dt else astype(r, dt)


@implements(np.mean)
def mean(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
         keepdims: bool = False, *, where: Any = None) -> Any:
    """``sum / count``; with ``where=`` the masked sum over the mask's count per slice."""
    _unsupported("mean", out=out)
    mask = _mask(where)
    ax = normalize_axis(axis, np.ndim(a), "mean")
    dt = None if mask is None else numpy_reduction(np.mean, a, axis=axis, dtype=dtype,
                                                   keepdims=keepdims, where=mask)
    half = dtype is None and np.result_type(a) == np.float16  # numpy adds these in float32
    total = sum(a, ax, np.float32 if half else dtype, keepdims=keepdims, where=mask)
    if mask is None:
        r = total / _count(a, ax)
        return astype(r, np.float16) if half else r
    return _in_dtype(total / _masked_count(a, mask, ax, keepdims), dt)


_mean = mean  # ``var``'s ``mean=`` argument shadows the function


@implements(np.var)
def var(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: int = 0,
        keepdims: bool = False, *, where: Any = None, mean: Any = None,
        correction: Any = None) -> Any:
    """numpy's recipe: squared deviations (``|d|^2``, real, for complex ``a``) from the
    (masked) mean over ``max(count - ddof, 0)``."""
    _unsupported("var", out=out)
    if correction is not None:
        ddof = correction
    mask = _mask(where)
    ax = normalize_axis(axis, np.ndim(a), "var")
    dt = None if mask is None else numpy_reduction(
        np.var, a, axis=axis, dtype=dtype, keepdims=keepdims, where=mask)
    m = _mean(a, ax, dtype, keepdims=True, where=mask) if mean is None else mean
    d = a - m
    if mask is not None:  # zero deviations outside the mask: no inf * 0 in the gradient
        d = select_p.bind(mask, d, _zero(d))
    sq = np.real(d * np.conj(d)) if np.result_type(a).kind == "c" else d * d
    total = sum(sq, ax, keepdims=keepdims, where=mask)
    dof = _masked_count(a, mask, ax, keepdims) - ddof
    if mask is not None:
        dof = np.maximum(dof, 0)
    elif isinstance(dof, (int, float)):  # not a symbolic count
        dof = builtins.max(dof, 0)
    return _in_dtype(total / dof, dt)


@implements(np.std)
def std(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: int = 0,
        keepdims: bool = False, *, where: Any = None, mean: Any = None,
        correction: Any = None) -> Any:
    """``sqrt(var)``, with gradient 0 where the variance is 0 (see ``root``)."""
    return root(var(a, axis, dtype, out, ddof, keepdims, where=where, mean=mean,
                    correction=correction))


def root(v: Any, power: float = 0.5) -> Any:
    """``v ** power`` of a non-negative statistic (a variance, a sum of ``|x|^p``) whose
    derivative is 0 where ``v`` is 0. The exact slope there is infinite and the chain rule
    would multiply it by the statistic's zero slope (``inf * 0 = NaN``); 0 is a valid
    subgradient of std at a constant input and of a norm at the zero vector, and what
    PyTorch returns (HIPS autograd returns NaN). One NaN would otherwise poison every weight
    of a training step (a constant feature column under standardisation). NaN and positive
    values are unchanged, and so are the higher derivatives wherever ``v > 0``::

        grad(np.std)(np.ones(3))  # (array([0., 0., 0.]),), not NaN
    """
    if not isinstance(v, Tracer):
        return np.sqrt(v) if power == 0.5 else np.power(v, power)
    zero = v == 0  # moved to 1 and masked back to 0: finite slopes, times 0
    safe = v + zero
    return (np.sqrt(safe) if power == 0.5 else safe ** power) * ~zero


# ---- dtype ------------------------------------------------------------------------

def astype(a: Any, dtype: Any, copy: bool = True) -> Any:
    dtype = np.dtype(dtype)
    if isinstance(a, Tracer) and a.dtype == dtype:
        return a
    return astype_p.bind(a, dtype=dtype)


@implements(np.round, np.around)
def round(a: Any, decimals: int = 0, out: Any = None) -> Any:
    _unsupported("round", out=out)
    return round_p.bind(a, decimals=decimals)


# ---- shapes -----------------------------------------------------------------------

def _resolve_shape(shape: Any, size: Any, op: str, old: tuple) -> tuple:
    """The target shape with ``-1`` filled in; symbolic dims (``Dim``) are kept and divided
    exactly (``(batch, 4, 4) -> (-1, 16)`` gives ``(batch, 16)``)."""
    shape = tuple(d if isinstance(d, Dim) else operator.index(d)
                  for d in (shape if isinstance(shape, (tuple, list)) else (shape,)))
    if shape.count(-1) > 1:
        raise ShapeError(f"{op}: can only infer one dimension, got {shape}")
    if -1 in shape:
        known = math.prod(d for d in shape if d != -1)
        try:
            bad = known == 0 or size % known
        except ShapeError:  # a symbolic size that may not divide
            bad = True
        if bad:
            raise ShapeError(f"{op}: cannot reshape array of shape {old} into shape {shape}")
        shape = tuple(size // known if d == -1 else d for d in shape)
    if math.prod(shape) != size:
        raise ShapeError(f"{op}: cannot reshape array of shape {old} into shape {shape}")
    return shape


@implements(np.reshape)
def reshape(a: Any, shape: Any = None, order: str = "C", *, newshape: Any = None,
            copy: Any = None) -> Any:
    if order != "C":
        raise NoRuleError("np.reshape: only order='C' is supported on traced values")
    old = np.shape(a)
    new = _resolve_shape(newshape if shape is None else shape, math.prod(old), "reshape", old)
    return a if new == old else reshape_p.bind(a, shape=new)


@implements(np.ravel)
def ravel(a: Any, order: str = "C") -> Any:
    return reshape(a, (-1,), order)


@implements(np.transpose)
def transpose(a: Any, axes: Any = None) -> Any:
    nd = np.ndim(a)
    if axes is None:
        axes = tuple(range(nd))[::-1]
    axes = tuple(int(x) % nd if nd else int(x) for x in axes)
    if sorted(axes) != list(range(nd)):
        raise ShapeError(f"transpose: axes {axes} do not match an array of {nd} dims")
    return a if axes == tuple(range(nd)) else transpose_p.bind(a, axes=axes)


@implements(np.swapaxes)
def swapaxes(a: Any, axis1: int, axis2: int) -> Any:
    nd = np.ndim(a)
    i, j = _single_axis(axis1, nd, "swapaxes"), _single_axis(axis2, nd, "swapaxes")
    perm = list(range(nd))
    perm[i], perm[j] = perm[j], perm[i]
    return transpose(a, perm)


@implements(np.moveaxis)
def moveaxis(a: Any, source: Any, destination: Any) -> Any:
    nd = np.ndim(a)
    src = [_single_axis(s, nd, "moveaxis") for s in np.atleast_1d(source)]
    dst = [_single_axis(d, nd, "moveaxis") for d in np.atleast_1d(destination)]
    order = [n for n in range(nd) if n not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(a, order)


@implements(np.rollaxis)
def rollaxis(a: Any, axis: int, start: int = 0) -> Any:
    """numpy's older ``moveaxis``: ``axis`` ends up just before the axis that was at
    ``start`` (``start`` may equal ``ndim``)."""
    nd = np.ndim(a)
    ax = _single_axis(axis, nd, "rollaxis")
    if start < 0:
        start += nd
    if not 0 <= start <= nd:
        raise ShapeError(f"rollaxis: start {start} is out of bounds for an array of {nd} dims")
    if ax < start:
        start -= 1
    return moveaxis(a, ax, start)


@implements(np.expand_dims)
def expand_dims(a: Any, axis: Any) -> Any:
    shape = list(np.shape(a))
    axes = normalize_axis(axis, len(shape) + len(np.atleast_1d(axis)), "expand_dims")
    for ax in axes:
        shape.insert(ax, 1)
    return reshape(a, shape)


@implements(np.squeeze)
def squeeze(a: Any, axis: Any = None) -> Any:
    shape = np.shape(a)
    axes = normalize_axis(axis, len(shape), "squeeze")
    if axes is None:
        axes = tuple(i for i, d in enumerate(shape) if d == 1)
    for ax in axes:
        if shape[ax] != 1:
            raise ShapeError(f"squeeze: axis {ax} of shape {shape} has size {shape[ax]}, not 1")
    return reshape(a, tuple(d for i, d in enumerate(shape) if i not in axes))


@implements(np.broadcast_to)
def broadcast_to(array: Any, shape: Any, subok: bool = False) -> Any:
    shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    if np.shape(array) == shape:
        return array
    try:  # symbolic-safe (Dim) broadcasting; the result must be the target shape itself
        ok = broadcast_shapes("broadcast_to", np.shape(array), shape) == shape
    except ShapeError:
        ok = False
    if not ok:
        raise ShapeError(f"broadcast_to: cannot broadcast shape {np.shape(array)} "
                         f"to {shape}")
    return broadcast_to_p.bind(array, shape=shape)


_SEVERAL = type(np.atleast_1d(0, 0))  # list before numpy 2, tuple since


@implements(np.atleast_1d)
def atleast_1d(*arys: Any) -> Any:
    res = [a if np.ndim(a) >= 1 else reshape(a, (1,)) for a in arys]
    return res[0] if len(res) == 1 else _SEVERAL(res)


@implements(np.atleast_2d)
def atleast_2d(*arys: Any) -> Any:
    res = [a if np.ndim(a) >= 2 else reshape(a, (1,) * (2 - np.ndim(a)) + np.shape(a))
           for a in arys]
    return res[0] if len(res) == 1 else _SEVERAL(res)


@implements(np.atleast_3d)
def atleast_3d(*arys: Any) -> Any:
    def up(a: Any) -> Any:
        nd, s = np.ndim(a), np.shape(a)
        return a if nd >= 3 else reshape(a, {0: (1, 1, 1), 1: (1,) + s + (1,), 2: s + (1,)}[nd])
    res = [up(a) for a in arys]
    return res[0] if len(res) == 1 else _SEVERAL(res)


@implements(np.concatenate)
def concatenate(arrays: Sequence, axis: Any = 0, out: Any = None, dtype: Any = None,
                casting: str = "same_kind") -> Any:
    _unsupported("concatenate", out=out)
    arrays = list(arrays)
    if axis is None:
        arrays, axis = [ravel(a) for a in arrays], 0
    if not arrays:
        raise ArgumentError("need at least one array to concatenate")
    nd = np.ndim(arrays[0])
    ax = _single_axis(axis, nd, "concatenate")
    shapes = [np.shape(a) for a in arrays]
    for s in shapes:
        if len(s) != nd or s[:ax] + s[ax + 1:] != shapes[0][:ax] + shapes[0][ax + 1:]:
            raise ShapeError(f"concatenate: incompatible shapes {' and '.join(map(str, shapes))}"
                             f" along axis {ax}")
    r = concatenate_p.bind(*arrays, axis=ax)
    return r if dtype is None else astype(r, dtype)


@implements(np.stack)
def stack(arrays: Sequence, axis: int = 0, out: Any = None, *, dtype: Any = None,
          casting: str = "same_kind") -> Any:
    _unsupported("stack", out=out)
    arrays = list(arrays)
    shapes = {np.shape(a) for a in arrays}
    if len(shapes) != 1:
        raise ShapeError(f"stack: all input arrays must have the same shape, got "
                         f"{' and '.join(str(np.shape(a)) for a in arrays)}")
    ax = _single_axis(axis, np.ndim(arrays[0]) + 1, "stack")
    return concatenate([expand_dims(a, ax) for a in arrays], ax, dtype=dtype)


@implements(np.vstack)
def vstack(tup: Sequence, *, dtype: Any = None, casting: str = "same_kind") -> Any:
    return concatenate([atleast_2d(a) for a in tup], 0, dtype=dtype)


@implements(np.hstack)
def hstack(tup: Sequence, *, dtype: Any = None, casting: str = "same_kind") -> Any:
    arrs = [atleast_1d(a) for a in tup]
    return concatenate(arrs, 0 if np.ndim(arrs[0]) == 1 else 1, dtype=dtype)


@implements(np.split)
def split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list:
    n = np.shape(ary)[axis]
    if np.ndim(indices_or_sections) == 0 and isinstance(n, Dim):
        try:
            n % builtins.max(int(indices_or_sections), 1)
        except ShapeError:
            raise ShapeError(f"split: cannot split symbolic dimension {n} along axis {axis} "
                             f"into {indices_or_sections} equal sections: whether it divides "
                             "depends on its value; split a concrete axis, or reshape "
                             f"(e.g. to ({indices_or_sections}, -1)) instead") from None
    elif np.ndim(indices_or_sections) == 0 and n % builtins.max(int(indices_or_sections), 1):
        raise ShapeError(f"split: array of size {n} along axis {axis} does not divide into "
                         f"{indices_or_sections} equal sections (use np.array_split)")
    return array_split(ary, indices_or_sections, axis)


@implements(np.array_split)
def array_split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list:
    """numpy's own cut points: ``ary[b[i]:b[i+1]]`` along ``axis`` with
    ``b = [0, *indices, n]`` (plain slices, so negative and unsorted indices mean what
    they mean to numpy); ``k`` sections give the first ``n % k`` one extra element."""
    ax = _single_axis(axis, np.ndim(ary), "array_split")
    n = np.shape(ary)[ax]
    if np.ndim(indices_or_sections) == 0:
        k = int(indices_or_sections)
        if k <= 0:
            raise ArgumentError("number sections must be larger than 0.")
        sizes = [n // k + 1] * (n % k) + [n // k] * (k - n % k)
        bounds = [0]
        for size in sizes:
            bounds.append(bounds[-1] + size)
    else:
        bounds = [0] + [int(i) for i in indices_or_sections] + [n]
    pre = (slice(None),) * ax
    return [ary[pre + (slice(lo, hi),)] for lo, hi in zip(bounds, bounds[1:])]


# ---- selection --------------------------------------------------------------------

@implements(np.where)
def where(condition: Any, x: Any = None, y: Any = None) -> Any:
    if x is None and y is None:
        return np.where(stop_gradient(condition))
    if x is None or y is None:
        raise ArgumentError("np.where takes either one or three arguments")
    return select_p.bind(condition, x, y)


@implements(np.clip)
def clip(a: Any, a_min: Any = None, a_max: Any = None, out: Any = None, *,
         min: Any = None, max: Any = None, **kwargs: Any) -> Any:
    _unsupported("clip", out=out)
    lo = a_min if a_min is not None else min
    hi = a_max if a_max is not None else max
    if lo is not None:
        a = np.maximum(a, lo)
    if hi is not None:
        a = np.minimum(a, hi)
    return a


def getitem(a: Any, idx: Any) -> Any:
    if not isinstance(a, Tracer):  # a plain table read at traced positions (np.take)
        a = _lift_for_index(a, idx)
    idx, operands = normalize_index(idx, operands=True)
    return getitem_p.bind(a, *operands, idx=idx)


def _lift_for_index(a: Any, idx: Any) -> Any:
    """A plain array indexed by an abstract index under eval_shape, made abstract too (the
    index becomes a shape placeholder, so the array must carry the trace)."""
    for p in idx if isinstance(idx, tuple) else (idx,):
        lift = getattr(getattr(p, "_trace", None), "lift", None)
        if isinstance(p, Tracer) and lift is not None:
            return lift(a)
    return a


def normalize_index(idx: Any, operands: bool = False) -> Any:
    """Lists become integer/boolean arrays (as numpy reads them). A traced integer index
    (a batched token id under vmap) is refused, or with ``operands=True`` replaced by a
    ``Slot`` and returned as an operand: ``(template, operands)``."""
    parts = idx if isinstance(idx, tuple) else (idx,)
    out = []
    ops: list = []
    for p in parts:
        if isinstance(p, Tracer):
            p = stop_gradient(p)
            if isinstance(p, Tracer):
                placeholder = getattr(p._trace, "index_placeholder", None)  # eval_shape's
                if placeholder is not None:
                    p = placeholder(p)
                elif operands and np.dtype(p.dtype).kind in "iu":
                    ops.append(p)
                    p = Slot(len(ops) - 1)
                else:
                    _refuse_traced_index(p)
        if isinstance(p, list):
            p = np.asarray(p)
        if isinstance(p, np.ndarray) and p.dtype.kind not in "biu":
            raise IndexingError(f"arrays used as indices must be of integer or boolean type, "
                                f"got {p.dtype}")
        out.append(p)
    out = tuple(out) if isinstance(idx, tuple) else out[0]
    return (out, ops) if operands else out


def _refuse_traced_index(p: Any) -> None:
    """An index whose values are traced (batched or abstract) cannot be a static index; a
    boolean mask's result size depends on its values, which eval_shape must say."""
    from pycograd.transforms.shapes import AbstractTracer, DataDependentShapeError

    if isinstance(p, AbstractTracer) and p.dtype == bool:
        raise DataDependentShapeError(
            f"indexing with a boolean mask of shape {p.shape} computed from the data: the "
            "result's size depends on the mask's values; use np.where(mask, x, 0) to keep "
            "the shape")
    if np.dtype(p.dtype) == bool:
        raise NoRuleError(
            f"indexing with a boolean mask computed from traced values ({type(p).__name__}): "
            "the result's size would depend on the mask's values; use np.where(mask, x, 0) "
            "to keep the shape")
    if np.dtype(p.dtype).kind not in "iu":
        raise IndexingError(f"arrays used as indices must be of integer or boolean type, "
                            f"got {np.dtype(p.dtype)}")
    raise NoRuleError(f"indexing with an index array computed from traced values "
                      f"({type(p).__name__}) is not supported here; index with it in "
                      "x[...] or np.take")


# ---- contractions -----------------------------------------------------------------

_LETTERS = string.ascii_letters


def normalize_einsum(subscripts: str, shapes: list[tuple]) -> str:
    """Rewrite an einsum spec into explicit letters with an output, no ellipsis.

    Ellipsis dims get fresh letters; a size-1 dim that numpy would broadcast (inside the
    ellipsis or under a named label) gets a letter of its own (summed over size 1, which
    changes nothing) so all sizes per letter agree.
    """
    s = subscripts.replace(" ", "")
    lhs, out = s.split("->") if "->" in s else (s, None)
    ins = lhs.split(",")
    if len(ins) != len(shapes):
        raise ShapeError(f"einsum: {len(ins)} operand subscripts for {len(shapes)} operands")
    letters = [c for c in s if c.isalpha()]
    fresh = (c for c in _LETTERS if c not in letters)
    ell_nd = []
    for sub, shp in zip(ins, shapes):
        named = len(sub.replace("...", ""))
        n = len(shp) - named if "..." in sub else 0
        if n < 0 or ("..." not in sub and named != len(shp)):
            raise ShapeError(f"einsum: subscripts {sub!r} do not match an operand of shape {shp}")
        ell_nd.append(n)
    E = builtins.max(ell_nd, default=0)
    ell = [next(fresh) for _ in range(E)]
    sizes = [1] * E
    for sub, shp, n in zip(ins, shapes, ell_nd):
        start = sub.find("...")
        for j in range(n):
            d, pos = shp[start + j], E - n + j
            if d != 1 and sizes[pos] not in (1, d):
                raise ShapeError(f"einsum: incompatible shapes {' and '.join(map(str, shapes))}")
            sizes[pos] = d if sizes[pos] == 1 else sizes[pos]
    new_ins = []
    for sub, shp, n in zip(ins, shapes, ell_nd):
        if "..." in sub:
            start = sub.find("...")
            mid = "".join(ell[E - n + j] if shp[start + j] == sizes[E - n + j] else next(fresh)
                          for j in range(n))
            sub = sub.replace("...", mid)
        new_ins.append(sub)
    if out is None:
        counts = {c: letters.count(c) for c in letters}
        out = "".join(ell) + "".join(sorted(c for c, k in counts.items() if k == 1))
    elif "..." in out:
        out = out.replace("...", "".join(ell))
    elif E:
        raise ShapeError(f"einsum: {subscripts!r} gives the operands' broadcast dimensions no "
                         "place in the output; write '...' in the output (numpy refuses too)")
    size: dict[str, int] = {}
    for sub, shp in zip(new_ins, shapes):
        for c, d in zip(sub, shp):
            size[c] = d if size.get(c, 1) == 1 else size[c]
    new_ins = ["".join(next(fresh) if d == 1 != size[c] and sub.count(c) == 1 else c
                       for c, d in zip(sub, shp)) for sub, shp in zip(new_ins, shapes)]
    dims: dict[str, int] = {}
    for sub, shp in zip(new_ins, shapes):
        for c, d in zip(sub, shp):
            if dims.setdefault(c, d) != d:
                raise ShapeError(f"einsum: incompatible shapes {' and '.join(map(str, shapes))} "
                                 f"for {subscripts!r} (label {c!r}: {dims[c]} vs {d})")
    return ",".join(new_ins) + "->" + out


@implements(np.einsum)
def einsum(subscripts: Any, *operands: Any, out: Any = None, optimize: Any = False,
           **kwargs: Any) -> Any:
    _unsupported("einsum", out=out)
    if not isinstance(subscripts, str):
        subscripts, operands = _einsum_sublists((subscripts, *operands))
    spec = normalize_einsum(subscripts, [np.shape(o) for o in operands])
    return einsum_p.bind(*operands, spec=spec)


def _einsum_sublists(args: tuple) -> tuple[str, tuple]:
    """numpy's interleaved form ``einsum(a, [0, 1], b, [1, 2], [0, 2])`` as the string form
    (``'ab,bc->ac'``) and its operands; ``Ellipsis`` in a sublist is ``...``."""
    def letters(sub: Any) -> str:
        out = []
        for s in sub:
            if s is Ellipsis:
                out.append("...")
            elif isinstance(s, (int, np.integer)) and 0 <= int(s) < 52:
                out.append(_LETTERS[int(s)])
            else:
                raise ShapeError(f"einsum: sublist entries must be integers in [0, 52) or "
                                 f"Ellipsis, got {s!r}")
        return "".join(out)

    operands, subs = args[0:len(args) - len(args) % 2:2], args[1::2]
    spec = ",".join(letters(s) for s in subs)
    if len(args) % 2:
        spec += "->" + letters(args[-1])
    return spec, tuple(operands)


@implements(np.tensordot)
def tensordot(a: Any, b: Any, axes: Any = 2) -> Any:
    na, nb = np.ndim(a), np.ndim(b)
    if isinstance(axes, (int, np.integer)):
        ax_a, ax_b = list(range(na - axes, na)), list(range(axes))
    else:
        ax_a, ax_b = (list(np.atleast_1d(x)) for x in axes)
    ax_a = [int(x) % na for x in ax_a]
    ax_b = [int(x) % nb for x in ax_b]
    la, lb = _LETTERS[:na], list(_LETTERS[na:na + nb])
    for i, j in zip(ax_a, ax_b):
        lb[j] = la[i]
    lb = "".join(lb)
    out = "".join(c for i, c in enumerate(la) if i not in ax_a) + \
        "".join(c for j, c in enumerate(lb) if j not in ax_b)
    return einsum(f"{la},{lb}->{out}", a, b)


@implements(np.dot)
def dot(a: Any, b: Any, out: Any = None) -> Any:
    _unsupported("dot", out=out)
    na, nb = np.ndim(a), np.ndim(b)
    if na == 0 or nb == 0:
        return a * b
    if nb <= 2:
        return np.matmul(a, b)
    return tensordot(a, b, ([na - 1], [nb - 2]))


@implements(np.outer)
def outer(a: Any, b: Any, out: Any = None) -> Any:
    _unsupported("outer", out=out)
    return ravel(a)[:, None] * ravel(b)[None, :]


@implements(np.inner)
def inner(a: Any, b: Any) -> Any:
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return a * b
    return tensordot(a, b, ([-1], [-1]))


@implements(np.vdot)
def vdot(a: Any, b: Any) -> Any:
    return sum(ravel(np.conj(a)) * ravel(b), dtype=np.result_type(a, b))


# ---- composites: numpy functions written with the primitives above ------------------

def _along(a: Any, axis: int, idx: Any) -> Any:
    """``a`` indexed by ``idx`` (a slice or 1-D index array) along ``axis`` only."""
    return a[(slice(None),) * axis + (idx,)]


@implements(np.flip)
def flip(m: Any, axis: Any = None) -> Any:
    axes = normalize_axis(axis, np.ndim(m), "flip")
    axes = range(np.ndim(m)) if axes is None else axes
    return m[tuple(slice(None, None, -1) if i in axes else slice(None)
                   for i in range(np.ndim(m)))] if np.ndim(m) else m


@implements(np.fliplr)
def fliplr(m: Any) -> Any:
    return flip(m, 1)


@implements(np.flipud)
def flipud(m: Any) -> Any:
    return flip(m, 0)


@implements(np.roll)
def roll(a: Any, shift: Any, axis: Any = None) -> Any:
    if axis is None:
        return reshape(roll(ravel(a), shift, 0), np.shape(a))
    shifts, axes = np.broadcast_arrays(np.atleast_1d(shift), np.atleast_1d(axis))
    for s, ax in zip(shifts.tolist(), axes.tolist()):
        ax = _single_axis(ax, np.ndim(a), "roll")
        n = np.shape(a)[ax]
        if n and s % n:
            a = _along(a, ax, (np.arange(n) - s) % n)
    return a


@implements(np.diagonal)
def diagonal(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    """numpy's order: the other axes first, the diagonal last."""
    nd = np.ndim(a)
    i1, i2 = _single_axis(axis1, nd, "diagonal"), _single_axis(axis2, nd, "diagonal")
    if i1 == i2:
        raise ShapeError("diagonal: axis1 and axis2 cannot be the same")
    n1, n2 = np.shape(a)[i1], np.shape(a)[i2]
    m = builtins.max(0, builtins.min(n1, n2 - offset) if offset >= 0 else
                     builtins.min(n1 + offset, n2))
    rows = np.arange(m) - builtins.min(offset, 0)
    moved = moveaxis(a, [i1, i2], [-2, -1])
    return moved[..., rows, rows + offset]


@implements(np.trace)
def trace(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype: Any = None,
          out: Any = None) -> Any:
    _unsupported("trace", out=out)
    return sum(diagonal(a, offset, axis1, axis2), -1, dtype)


@implements(np.diag)
def diag(v: Any, k: int = 0) -> Any:
    if np.ndim(v) == 2:
        return diagonal(v, k)
    if np.ndim(v) != 1:
        raise ShapeError(f"diag: input must be 1-d or 2-d, got shape {np.shape(v)}")
    n = np.shape(v)[0]
    size = n + abs(k)
    place = np.zeros((size, size, n), dtype=bool)  # place[i, j, t]: v[t] lands at (i, j)
    t = np.arange(n)
    place[t - builtins.min(k, 0), t + builtins.max(k, 0), t] = True
    return einsum("ijt,t->ij", place, v)


@implements(np.triu)
def triu(m: Any, k: int = 0) -> Any:
    shape = np.shape(m)
    return where(np.tri(*shape[-2:], k=k - 1, dtype=bool), _zero(m), m)


@implements(np.tril)
def tril(m: Any, k: int = 0) -> Any:
    shape = np.shape(m)
    return where(np.tri(*shape[-2:], k=k, dtype=bool), m, _zero(m))


def _zero(m: Any) -> Any:
    """A zero of ``m``'s dtype (a Python 0 would promote a boolean ``m`` to int)."""
    return np.zeros((), np.result_type(m))


@implements(np.take)
def take(a: Any, indices: Any, axis: Any = None, out: Any = None, mode: str = "raise") -> Any:
    _unsupported("take", out=out)
    if axis is None:
        a, axis = ravel(a), 0
    ax = _single_axis(axis, np.ndim(a), "take")
    n = np.shape(a)[ax]
    idx = stop_gradient(indices) if isinstance(indices, Tracer) else np.asarray(indices)
    if mode == "wrap":
        idx = idx % n
    elif mode == "clip":
        idx = np.clip(idx, 0, n - 1)
    return getitem(a, (slice(None),) * ax + (idx,))


@implements(np.take_along_axis)
def take_along_axis(arr: Any, indices: Any, axis: Any = -1) -> Any:
    idx = stop_gradient(indices) if isinstance(indices, Tracer) else np.asarray(indices)
    if axis is None:
        arr, axis = ravel(arr), 0
    nd = np.ndim(arr)
    if idx.ndim != nd:
        raise ShapeError(f"take_along_axis: indices of shape {idx.shape} need as many dims "
                         f"as the array of shape {np.shape(arr)}")
    ax = _single_axis(axis, nd, "take_along_axis")
    sa, si = np.shape(arr), np.shape(idx)
    outer = broadcast_shapes("take_along_axis", sa[:ax] + (1,) + sa[ax + 1:],
                             si[:ax] + (1,) + si[ax + 1:])
    arr, idx = (x if np.shape(x) == outer[:ax] + (np.shape(x)[ax],) + outer[ax + 1:] else
                _broadcast_any(x, outer[:ax] + (np.shape(x)[ax],) + outer[ax + 1:])
                for x in (arr, idx))
    return take_along_p.bind(arr, idx, axis=ax)


def _broadcast_any(x: Any, shape: tuple) -> Any:
    """A traced or plain array broadcast to ``shape`` (which may be symbolic)."""
    return broadcast_to(x, shape) if isinstance(x, Tracer) else broadcast_constant(x, shape)


@implements(np.repeat)
def repeat(a: Any, repeats: Any, axis: Any = None) -> Any:
    if axis is None:
        a, axis = ravel(a), 0
    ax = _single_axis(axis, np.ndim(a), "repeat")
    return _along(a, ax, np.repeat(np.arange(np.shape(a)[ax]), repeats))


@implements(np.tile)
def tile(A: Any, reps: Any) -> Any:
    reps = tuple(int(r) for r in np.atleast_1d(reps))
    d = builtins.max(len(reps), np.ndim(A))
    A = reshape(A, (1,) * (d - np.ndim(A)) + np.shape(A))
    reps = (1,) * (d - len(reps)) + reps
    for ax, r in enumerate(reps):
        if r != 1:
            A = _along(A, ax, np.tile(np.arange(np.shape(A)[ax]), r))
    return A


@implements(np.diff)
def diff(a: Any, n: int = 1, axis: int = -1, prepend: Any = NO_VALUE,
         append: Any = NO_VALUE) -> Any:
    if n == 0:
        return a
    ax = _single_axis(axis, np.ndim(a), "diff")
    ends = []
    for end in (prepend, append):
        if end is not NO_VALUE and np.ndim(end) == 0:
            shape = list(np.shape(a))
            shape[ax] = 1
            end = broadcast_to(end, tuple(shape))
        ends.append(end)
    pieces = [e for e in (ends[0], a, ends[1]) if e is not NO_VALUE]
    if len(pieces) > 1:
        a = concatenate(pieces, ax)
    for _ in range(n):
        a = _along(a, ax, slice(1, None)) - _along(a, ax, slice(None, -1))
    return a


@implements(np.cumsum)
def cumsum(a: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Any:
    _unsupported("cumsum", out=out)
    if axis is None:
        a, axis = ravel(a), 0
    r = cumsum_p.bind(a, axis=_single_axis(axis, np.ndim(a), "cumsum"))
    return r if dtype is None else astype(r, dtype)


@implements(np.average)
def average(a: Any, axis: Any = None, weights: Any = None, returned: bool = False, *,
            keepdims: bool = False) -> Any:
    if weights is None:
        avg = mean(a, axis, keepdims=keepdims)
        total = np.asarray(_count(a, normalize_axis(axis, np.ndim(a), "average")),
                           dtype=np.result_type(avg))
    else:
        w = weights
        if np.ndim(w) == 1 and np.ndim(a) > 1:  # 1-d weights along a single axis
            ax = _single_axis(axis, np.ndim(a), "average")
            w = reshape(w, tuple(-1 if i == ax else 1 for i in range(np.ndim(a))))
        w = broadcast_to(w, np.broadcast_shapes(np.shape(w), np.shape(a)))
        total = sum(w, axis, keepdims=keepdims)
        avg = sum(a * w, axis, keepdims=keepdims) / total
    if returned:
        return avg, broadcast_to(total, np.shape(avg))
    return avg


@implements(np.append)
def append(arr: Any, values: Any, axis: Any = None) -> Any:
    if axis is None:
        return concatenate([ravel(arr), ravel(values)], 0)
    return concatenate([arr, values], axis)


@implements(np.column_stack)
def column_stack(tup: Sequence) -> Any:
    return concatenate([reshape(a, (-1, 1)) if np.ndim(a) < 2 else a for a in tup], 1)


@implements(np.dstack)
def dstack(tup: Sequence) -> Any:
    return concatenate([atleast_3d(a) for a in tup], 2)


# ---- values without a gradient ----------------------------------------------------

def _detached(f: Callable) -> Callable:
    """numpy function whose result carries no gradient: run it on the detached values."""
    def run(*args: Any, **kwargs: Any) -> Any:
        return f(*[_detach(a) for a in args], **{k: _detach(v) for k, v in kwargs.items()})
    return run


def _detach(x: Any, op: str = "this numpy function") -> Any:
    """The plain values of traced data (inside lists and tuples too), for results that
    carry no gradient; refused where the values do not exist (under vmap or eval_shape)."""
    if isinstance(x, Tracer):
        v = stop_gradient(x)
        if isinstance(v, Tracer):
            raise NoRuleError(f"{op} needs the values of its argument, which are not "
                              f"available for {type(v).__name__} values (under vmap or "
                              "eval_shape)")
        return v
    if isinstance(x, (list, tuple)):
        return type(x)(_detach(v, op) for v in x)
    return x


for _f in (np.nonzero, np.isclose, np.allclose, np.array_equal, np.can_cast, np.array_repr,
           np.array_str):
    HANDLED[_f] = _detached(_f)


@implements(np.iscomplexobj)
def iscomplexobj(x: Any) -> bool:
    """A question about the dtype alone, so it has an answer under every transform and on
    every device (the values are never read)."""
    return np.dtype(x.dtype).kind == "c"


@implements(np.isrealobj)
def isrealobj(x: Any) -> bool:
    """``not iscomplexobj(x)``: the dtype alone decides."""
    return not iscomplexobj(x)


@implements(np.count_nonzero)
def count_nonzero(a: Any, axis: Any = None, *, keepdims: bool = False) -> Any:
    """An integer count: no gradient. numpy's own where the values exist; under ``vmap`` a
    sum of ``a != 0``, so that it batches (as ``np.linalg.matrix_rank`` does)."""
    try:
        return np.count_nonzero(_detach(a), axis=axis, keepdims=keepdims)
    except NoRuleError:
        return np.sum(a != 0, axis=axis, keepdims=keepdims).astype(np.intp)


def _like(make: Callable) -> Callable:
    """``np.zeros_like`` & co: the value depends only on the (logical) shape and dtype, so
    they work unchanged under every transform."""
    def like(a: Any, dtype: Any = None, order: str = "K", subok: bool = True,
             shape: Any = None, **kwargs: Any) -> Any:
        return same_device(a, make(np.shape(a) if shape is None else shape,
                                   dtype=np.result_type(a) if dtype is None else dtype,
                                   **kwargs))
    return like


HANDLED[np.zeros_like] = _like(np.zeros)
HANDLED[np.ones_like] = _like(np.ones)
HANDLED[np.empty_like] = _like(np.zeros)
HANDLED[np.full_like] = lambda a, fill_value, dtype=None, **kw: same_device(a, np.full(
    np.shape(a), fill_value, dtype=np.result_type(a) if dtype is None else dtype))
HANDLED[np.result_type] = lambda *args: np.result_type(
    *[a.dtype if isinstance(a, Tracer) else a for a in args])

HANDLED[np.shape] = lambda a: a.shape
HANDLED[np.ndim] = lambda a: a.ndim
HANDLED[np.size] = lambda a, axis=None: a.size if axis is None else a.shape[axis]


@implements(np.copy)
def copy(a: Any, order: str = "K", subok: bool = False) -> Any:
    return a
