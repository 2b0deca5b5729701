"""Building and rearranging arrays from traced values: pad, linspace, rot90, kron, cross,
splits, choose/select, meshgrid, np.gradient, functional scatters, ``r_`` / ``c_`` (and
what the transparent layer loads for numpy's), and the remaining ufunc-like functions (sinc,
nan_to_num, real_if_close, fix ...).

All are compositions of existing primitives (getitem, concatenate, where, arithmetic), so
they differentiate to any order and run under every transform. numpy's in-place writers
(np.put, np.copyto ...) cannot change a traced value; ``scatter_add`` / ``scatter_set``
are their functional forms.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from pycograd.core.errors import ArgumentError, ArgumentTypeError, NoRuleError, ShapeError
from pycograd.core.trace import Tracer
from pycograd.numpy_api import functions as F
from pycograd.numpy_api.complex import imag, real
from pycograd.numpy_api.constructors import build, holds_tracer
from pycograd.numpy_api.functions import implements, normalize_axis, normalize_index
from pycograd.numpy_api.selection import constant
from pycograd.numpy_api.ufuncs import PRIMS
from pycograd.ops.indexing import scatter_add_p
from pycograd.ops.scans import UFUNCS
from pycograd.ops.shaping import full

PRIMS.update(UFUNCS)
HANDLED = F.HANDLED


def _is_concrete_true(x: Any) -> bool:
    """``bool(x)`` when ``x`` has a value; False for a batched or abstract flag."""
    return not isinstance(x, Tracer) and bool(x)


# ---- ufunc-like functions ----------------------------------------------------------------

@implements(np.sinc)
def sinc(x: Any) -> Any:
    """numpy's ``sin(pi x) / (pi x)`` away from 0; at 0 its Taylor polynomial, so the
    first two derivatives are exact there too."""
    zero = x == 0
    y = np.pi * np.where(zero, 1.0, x)
    return np.where(zero, 1 - (np.pi * x) ** 2 / 6, np.sin(y) / y)


@implements(np.fix)
def fix(x: Any, out: Any = None) -> Any:
    F._unsupported("fix", out=out)
    return np.trunc(x)


@implements(np.isposinf)
def isposinf(x: Any, out: Any = None) -> Any:
    F._unsupported("isposinf", out=out)
    return np.logical_and(np.isinf(x), np.logical_not(np.signbit(x)))


@implements(np.isneginf)
def isneginf(x: Any, out: Any = None) -> Any:
    F._unsupported("isneginf", out=out)
    return np.logical_and(np.isinf(x), np.signbit(x))


@implements(np.nan_to_num)
def nan_to_num(x: Any, copy: bool = True, nan: float = 0.0, posinf: Any = None,
               neginf: Any = None) -> Any:
    """Finite entries keep gradient 1; replaced ones get 0. A complex array has its real
    and imaginary parts replaced separately (numpy's rule), each part passing its gradient
    where it is finite."""
    dt = np.result_type(x)
    if dt.kind == "c":
        re, im = (nan_to_num(part(x), nan=nan, posinf=posinf, neginf=neginf)
                  for part in (real, imag))
        return re + im * 1j
    if dt.kind != "f":
        return x
    info = np.finfo(dt)
    hi = info.max if posinf is None else posinf
    lo = info.min if neginf is None else neginf
    x = np.where(np.isnan(x), np.asarray(nan, dt), x)
    x = np.where(isposinf(x), np.asarray(hi, dt), x)
    return np.where(isneginf(x), np.asarray(lo, dt), x)


@implements(np.real_if_close)
def real_if_close(a: Any, tol: float = 100) -> Any:
    """The real part when every imaginary part is below ``tol`` (in machine epsilons when
    ``tol > 1``), else ``a``. Which one is decided from the values (under grad and jvp); the
    output dtype depends on them, so eval_shape refuses (DataDependentShapeError) and vmap
    too (each example could decide differently). The real result's cotangent flows back to
    ``a`` as a complex one (``np.real``'s rule)."""
    dt = np.result_type(a)
    if dt.kind != "c":
        return a
    if tol > 1:
        tol = np.finfo(dt).eps * tol
    close = np.all(np.absolute(imag(a)) < tol)
    from pycograd.transforms.shapes import AbstractTracer, DataDependentShapeError

    if isinstance(close, AbstractTracer):
        raise DataDependentShapeError(
            "np.real_if_close: the output dtype (real or complex) depends on the data values, "
            "which eval_shape does not have; call np.real(a) (or keep a) explicitly")
    return real(a) if F._detach(close, "np.real_if_close") else a


# ---- ranges and grids --------------------------------------------------------------------

@implements(np.linspace)
def linspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True,
             retstep: bool = False, dtype: Any = None, axis: int = 0, *,
             device: Any = None) -> Any:
    """numpy's own recipe (``start + arange(num) * step``, the last sample set to
    ``stop``), so traced endpoints get exact gradients."""
    num = int(num)
    if num < 0:
        raise ArgumentError(f"Number of samples, {num}, must be non-negative.")
    div = num - 1 if endpoint else num
    dt = np.result_type(start, stop, float(num))
    delta = stop - start
    y = np.arange(0, num, dtype=dt).reshape((-1,) + (1,) * np.ndim(delta))
    if div > 0:
        step = delta / div
        if _is_concrete_true(np.any(step == 0)):
            y = y / div * delta
        else:
            y = y * step
    else:
        step = np.nan
        y = y * delta
    y = y + start
    if endpoint and num > 1:
        tail = F.broadcast_to(stop, np.shape(y)[1:])
        y = F.concatenate([y[:-1], F.reshape(tail, (1,) + np.shape(y)[1:])], 0)
    if axis != 0:
        y = F.moveaxis(y, 0, axis)
    if dtype is not None:
        if np.issubdtype(dtype, np.integer):
            y = np.floor(y)
        y = F.astype(y, dtype)
    elif np.result_type(y) != dt:
        y = F.astype(y, dt)
    return (y, step) if retstep else y


@implements(np.logspace)
def logspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True, base: Any = 10.0,
             dtype: Any = None, axis: int = 0) -> Any:
    y = linspace(start, stop, num=num, endpoint=endpoint, axis=axis)
    if axis != 0:
        base = F.expand_dims(base, axis) if np.ndim(base) else base
    r = np.power(base, y)
    return r if dtype is None else F.astype(r, dtype)


@implements(np.geomspace)
def geomspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True, dtype: Any = None,
              axis: int = 0) -> Any:
    """numpy's recipe: both ends rotated by ``sign(start)`` (``start/|start|`` for complex
    ends, so a complex grid is a log-spiral), a log-spaced grid between them with the ends
    set exactly, and the rotation undone."""
    start, stop = (e if isinstance(e, Tracer) else np.asarray(e) for e in (start, stop))
    if _is_concrete_true(np.any(start == 0)) or _is_concrete_true(np.any(stop == 0)):
        raise ArgumentError("Geometric sequence cannot include zero")
    dt = np.result_type(start, stop, float(num), np.zeros((), dtype))  # numpy's own rule
    start, stop = (F.astype(e, dt) if np.result_type(e) != dt else e for e in (start, stop))
    sign = np.sign(start)
    lo, hi = start / sign, stop / sign
    y = logspace(np.log10(lo), np.log10(hi), num=num, endpoint=endpoint, base=10.0)
    if num > 0:
        shape = np.shape(y)[1:]
        ends = [F.reshape(F.broadcast_to(lo, shape), (1,) + shape)]
        middle_stop = num - 1 if (num > 1 and endpoint) else num
        ends.append(y[1:middle_stop])
        if num > 1 and endpoint:
            ends.append(F.reshape(F.broadcast_to(hi, shape), (1,) + shape))
        y = F.concatenate(ends, 0)
    y = y * sign
    if axis != 0:
        y = F.moveaxis(y, 0, axis)
    dt = np.dtype(dtype) if dtype is not None else dt
    return F.astype(y, dt) if np.result_type(y) != dt else y


@implements(np.meshgrid)
def meshgrid(*xi: Any, copy: bool = True, sparse: bool = False, indexing: str = "xy") -> Any:
    if indexing not in ("xy", "ij"):
        raise ArgumentError("Valid values for `indexing` are 'xy' and 'ij'.")
    nd = len(xi)
    one = (1,) * nd
    out = [F.reshape(x, one[:i] + (-1,) + one[i + 1:]) for i, x in enumerate(xi)]
    if indexing == "xy" and nd > 1:
        out[0] = F.reshape(out[0], (1, -1) + one[2:])
        out[1] = F.reshape(out[1], (-1, 1) + one[2:])
    if not sparse:
        shape = np.broadcast_shapes(*[np.shape(o) for o in out])
        out = [F.broadcast_to(o, shape) for o in out]
    return tuple(out)


# ---- rearranging -------------------------------------------------------------------------

@implements(np.broadcast_arrays)
def broadcast_arrays(*args: Any, subok: bool = False) -> tuple:
    shape = np.broadcast_shapes(*[np.shape(a) for a in args])
    return tuple(F.broadcast_to(a, shape) for a in args)


if hasattr(np, "unstack"):
    @implements(np.unstack)
    def unstack(x: Any, /, *, axis: int = 0) -> tuple:
        ax = normalize_axis(axis, np.ndim(x), "unstack")[0]
        return tuple(x[(slice(None),) * ax + (i,)] for i in range(np.shape(x)[ax]))


if hasattr(np, "matrix_transpose"):
    @implements(np.matrix_transpose)
    def matrix_transpose(x: Any, /) -> Any:
        if np.ndim(x) < 2:
            raise ArgumentError("Input array must be at least 2-dimensional, but it is "
                                f"{np.ndim(x)}")
        return F.swapaxes(x, -1, -2)


@implements(np.rot90)
def rot90(m: Any, k: int = 1, axes: Any = (0, 1)) -> Any:
    axes = tuple(axes)
    if len(axes) != 2:
        raise ArgumentError("len(axes) must be 2.")
    nd = np.ndim(m)
    if axes[0] == axes[1] or builtins.abs(axes[0] - axes[1]) == nd:
        raise ArgumentError("Axes must be different.")
    if not (-nd <= axes[0] < nd and -nd <= axes[1] < nd):
        raise ArgumentError(f"Axes={axes} out of range for array of ndim={nd}.")
    k %= 4
    if k == 0:
        return m
    if k == 2:
        return F.flip(F.flip(m, axes[0]), axes[1])
    perm = list(range(nd))
    perm[axes[0]], perm[axes[1]] = perm[axes[1]], perm[axes[0]]
    if k == 1:
        return F.transpose(F.flip(m, axes[1]), perm)
    return F.flip(F.transpose(m, perm), axes[1])


@implements(np.kron)
def kron(a: Any, b: Any) -> Any:
    """Interleave the axes of ``a`` and ``b`` in an outer product, then merge pairs."""
    na, nb = np.ndim(a), np.ndim(b)
    if na == 0 or nb == 0:
        return a * b
    nd = builtins.max(na, nb)
    sa = (1,) * (nd - na) + np.shape(a)
    sb = (1,) * (nd - nb) + np.shape(b)
    ar = F.reshape(a, tuple(d for s in sa for d in (s, 1)))
    br = F.reshape(b, tuple(d for s in sb for d in (1, s)))
    return F.reshape(ar * br, tuple(x * y for x, y in zip(sa, sb)))


@implements(np.cross)
def cross(a: Any, b: Any, axisa: int = -1, axisb: int = -1, axisc: int = -1,
          axis: Any = None) -> Any:
    if axis is not None:
        axisa = axisb = axisc = axis
    a = F.moveaxis(a, axisa, -1)
    b = F.moveaxis(b, axisb, -1)
    na, nb = np.shape(a)[-1], np.shape(b)[-1]
    if na not in (2, 3) or nb not in (2, 3):
        raise ArgumentError("incompatible dimensions for cross product\n"
                            "(dimension must be 2 or 3)")
    a0, a1, b0, b1 = a[..., 0], a[..., 1], b[..., 0], b[..., 1]
    z = a0 * b1 - a1 * b0
    if na == 2 and nb == 2:
        return z
    a2 = a[..., 2] if na == 3 else 0
    b2 = b[..., 2] if nb == 3 else 0
    parts = [a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, z]
    shape = np.broadcast_shapes(*[np.shape(p) for p in parts])
    c = F.stack([F.broadcast_to(p, shape) for p in parts], -1)
    return F.moveaxis(c, -1, axisc)


def _split_along(ary: Any, indices_or_sections: Any, axis: int, least: int, op: str) -> list:
    if np.ndim(ary) < least:
        raise ArgumentError(f"{op} only works on arrays of {least} or more dimensions")
    return F.split(ary, indices_or_sections, axis)


@implements(np.vsplit)
def vsplit(ary: Any, indices_or_sections: Any) -> list:
    return _split_along(ary, indices_or_sections, 0, 2, "vsplit")


@implements(np.hsplit)
def hsplit(ary: Any, indices_or_sections: Any) -> list:
    if np.ndim(ary) == 0:
        raise ArgumentError("hsplit only works on arrays of 1 or more dimensions")
    return F.split(ary, indices_or_sections, 1 if np.ndim(ary) > 1 else 0)


@implements(np.dsplit)
def dsplit(ary: Any, indices_or_sections: Any) -> list:
    return _split_along(ary, indices_or_sections, 2, 3, "dsplit")


@implements(np.diagflat)
def diagflat(v: Any, k: int = 0) -> Any:
    return F.diag(F.ravel(v), k)


@implements(np.ediff1d)
def ediff1d(ary: Any, to_end: Any = None, to_begin: Any = None) -> Any:
    flat = F.ravel(ary)
    dt = np.result_type(ary)

    def end(v: Any) -> Any:
        return F.astype(F.ravel(v if isinstance(v, Tracer) else np.asarray(v)), dt)
    pieces = [end(to_begin)] if to_begin is not None else []
    pieces.append(flat[1:] - flat[:-1])
    if to_end is not None:
        pieces.append(end(to_end))
    return F.concatenate(pieces, 0) if len(pieces) > 1 else pieces[0]


# ---- pad -----------------------------------------------------------------------------------

_INDEX_MODES = ("edge", "reflect", "symmetric", "wrap")


@implements(np.pad)
def pad(array: Any, pad_width: Any, mode: Any = "constant", **kwargs: Any) -> Any:
    """``constant`` concatenates blocks axis by axis (later axes fill the corners, as in
    numpy); ``edge``/``reflect``/``symmetric``/``wrap`` gather with the index map numpy's
    own ``pad`` gives for ``arange(n)``, so the gradient sums over every copy."""
    nd = np.ndim(array)
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.intp), (nd, 2)) if nd else []
    if np.any(np.asarray(widths) < 0):
        raise ArgumentError("index can't contain negative values")
    if mode in _INDEX_MODES:
        if kwargs.get("reflect_type", "even") != "even":
            raise NoRuleError("np.pad(reflect_type='odd') is not supported on traced values")
        for ax, (lo, hi) in enumerate(widths):
            if lo or hi:
                idx = np.pad(np.arange(np.shape(array)[ax]), (lo, hi), mode=mode)
                array = array[(slice(None),) * ax + (idx,)]
        return array
    if mode != "constant":
        raise NoRuleError(f"np.pad(mode={mode!r}) is not supported on traced values; "
                          f"use 'constant' or one of {_INDEX_MODES}")
    values = kwargs.get("constant_values", 0)
    dt = np.result_type(array)
    if isinstance(values, Tracer):
        if np.ndim(values):
            raise NoRuleError("np.pad: traced constant_values must be a scalar")
        fills = [[F.astype(values, dt)] * 2] * nd
    else:
        fills = np.broadcast_to(np.asarray(values), (nd, 2)) if nd else []
    for ax, (lo, hi) in enumerate(widths):
        pieces = []
        for width, fill in ((lo, fills[ax][0]), (hi, fills[ax][1])):
            shape = list(np.shape(array))
            shape[ax] = int(width)
            block = F.broadcast_to(fill, tuple(shape)) if isinstance(fill, Tracer) else \
                full(shape, fill, dtype=dt)
            pieces.append(block)
        if lo or hi:
            array = F.concatenate([pieces[0], array, pieces[1]], ax)
    return array


# ---- choosing ------------------------------------------------------------------------------

@implements(np.choose)
def choose(a: Any, choices: Any, out: Any = None, mode: str = "raise") -> Any:
    F._unsupported("choose", out=out)
    idx = np.asarray(constant(a, "choose"))
    n = len(choices)
    if mode == "wrap":
        idx = idx % n
    elif mode == "clip":
        idx = np.clip(idx, 0, n - 1)
    elif np.any((idx < 0) | (idx >= n)):
        raise ArgumentError("invalid entry in choice array")
    opts = [choices[i] for i in range(n)]
    shape = np.broadcast_shapes(idx.shape, *[np.shape(c) for c in opts])
    r = F.broadcast_to(opts[0], shape)
    for i in range(1, n):
        r = np.where(idx == i, opts[i], r)
    dt = np.result_type(*opts)
    return F.astype(r, dt) if np.result_type(r) != dt else r


@implements(np.select)
def select(condlist: Sequence, choicelist: Sequence, default: Any = 0) -> Any:
    if len(condlist) != len(choicelist):
        raise ArgumentError("list of cases must be same length as list of conditions")
    if len(condlist) == 0:
        raise ShapeError("select with an empty condition list is not possible")
    for i, c in enumerate(condlist):
        if np.result_type(c) != np.bool_:
            raise ArgumentTypeError(f"invalid entry {i} in condlist: should be boolean ndarray")
    dt = np.result_type(*choicelist, default)
    shape = np.broadcast_shapes(*[np.shape(x) for x in (*condlist, *choicelist, default)])
    r = F.broadcast_to(default, shape)
    for cond, choice in zip(condlist[::-1], choicelist[::-1]):
        r = np.where(cond, choice, r)
    return F.astype(r, dt) if np.result_type(r) != dt else r


# ---- functional scatters -------------------------------------------------------------------

def _positions(shape: tuple, idx: Any) -> np.ndarray:
    """The flat positions ``x[idx]`` reads, as an integer array shaped like ``x[idx]``."""
    return np.arange(math.prod(shape)).reshape(shape)[normalize_index(idx)]


def _spread(x: Any, values: Any, pos: np.ndarray) -> tuple:
    v = values if np.shape(values) == pos.shape else F.broadcast_to(values, pos.shape)
    dt = np.result_type(x)
    return (F.astype(v, dt) if np.result_type(v) != dt else v), dt


def scatter_add(x: Any, idx: Any, values: Any) -> Any:
    """``x`` with ``values`` added at ``x[idx]``, repeated positions accumulating: the
    functional ``np.add.at(x, idx, values)``. Differentiable in ``x`` and ``values``.

    Examples:
        >>> import numpy as np
        >>> from pycograd import grad, scatter_add
        >>> idx = np.array([0, 2, 2])
        >>> scatter_add(np.zeros(3), idx, np.array([1.0, 2.0, 3.0])).tolist()
        [1.0, 0.0, 5.0]
        >>> f = lambda v: np.sum(scatter_add(np.zeros(3), idx, v) ** 2)
        >>> grad(f, 0)(np.array([1.0, 2.0, 3.0])).tolist()
        [2.0, 10.0, 10.0]
    """
    shape = np.shape(x)
    pos = _positions(shape, idx)
    v, _ = _spread(x, values, pos)
    flat = scatter_add_p.bind(v, idx=pos, shape=(math.prod(shape),))
    return x + F.reshape(flat, shape)


def scatter_set(x: Any, idx: Any, values: Any) -> Any:
    """``x`` with ``x[idx] = values`` applied (the last write wins for repeated positions),
    without mutation: the functional ``x[idx] = v`` / ``np.put``. The overwritten entries
    of ``x`` get zero gradient.

    Examples:
        >>> import numpy as np
        >>> from pycograd import grad, scatter_set
        >>> scatter_set(np.zeros(3), np.array([1]), np.array([7.0])).tolist()
        [0.0, 7.0, 0.0]
        >>> f = lambda x: np.sum(scatter_set(x, np.array([1]), np.array([7.0])))
        >>> grad(f, 0)(np.ones(3)).tolist()                    # the overwritten x[1] gets 0
        [1.0, 0.0, 1.0]
    """
    shape = np.shape(x)
    pos = _positions(shape, idx)
    v, _ = _spread(x, values, pos)
    flat_pos = pos.reshape(-1)
    uniq, first_rev = np.unique(flat_pos[::-1], return_index=True)
    last = len(flat_pos) - 1 - first_rev
    picked = F.reshape(v, (-1,))[last] if len(flat_pos) else F.reshape(v, (-1,))
    mask = np.zeros(math.prod(shape), dtype=bool)
    mask[uniq] = True
    placed = scatter_add_p.bind(picked, idx=uniq, shape=(math.prod(shape),))
    return np.where(mask.reshape(shape), 0, x) + F.reshape(placed, shape)


def _in_place(name: str, fix: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise NoRuleError(f"np.{name} writes into its argument in place, which a traced value "
                          f"cannot do; use {fix}, which returns a new array")
    refuse.refuses = True  # listed as refused, not as differentiable (numpy_api.coverage)
    return refuse


HANDLED[np.put] = _in_place("put", "pycograd.scatter_set(x.ravel(), ind, v).reshape(x.shape)")
HANDLED[np.put_along_axis] = _in_place("put_along_axis", "pycograd.scatter_set")
HANDLED[np.putmask] = _in_place("putmask", "np.where(mask, values, x)")
HANDLED[np.place] = _in_place("place", "np.where(mask, values, x)")
HANDLED[np.copyto] = _in_place("copyto", "np.where(where, src, dst) or the source itself")
HANDLED[np.fill_diagonal] = _in_place("fill_diagonal", "pycograd.scatter_set(a, "
                                      "np.diag_indices(n), value)")


# ---- numerical derivatives and integrals ---------------------------------------------------

def _edges(f: Any, ax: int, order: int, dx: Any) -> tuple:
    """numpy.gradient's one-sided differences at both ends of ``ax``."""
    def at(i: Any) -> Any:
        return f[(slice(None),) * ax + (slice(i, i + 1 if i != -1 else None),)]
    uniform = np.ndim(dx) == 0
    if order == 1:
        d0, dn = (dx, dx) if uniform else (dx[0], dx[-1])
        return (at(1) - at(0)) / d0, (at(-1) - at(-2)) / dn
    if uniform:
        a, b, c = -1.5 / dx, 2.0 / dx, -0.5 / dx
        first = a * at(0) + b * at(1) + c * at(2)
        a, b, c = 0.5 / dx, -2.0 / dx, 1.5 / dx
        return first, a * at(-3) + b * at(-2) + c * at(-1)
    d1, d2 = dx[0], dx[1]
    a = -(2.0 * d1 + d2) / (d1 * (d1 + d2))
    b = (d1 + d2) / (d1 * d2)
    c = -d1 / (d2 * (d1 + d2))
    first = a * at(0) + b * at(1) + c * at(2)
    d1, d2 = dx[-2], dx[-1]
    a = d2 / (d1 * (d1 + d2))
    b = -(d2 + d1) / (d1 * d2)
    c = (2.0 * d2 + d1) / (d2 * (d1 + d2))
    return first, a * at(-3) + b * at(-2) + c * at(-1)


@implements(np.gradient)
def gradient(f: Any, *varargs: Any, axis: Any = None, edge_order: int = 1) -> Any:
    """Second-order central differences inside, one-sided at the ends (numpy's formulas,
    uniform or coordinate spacing). Spacings and coordinates are constants."""
    nd = np.ndim(f)
    if axis is None:
        axes = tuple(range(nd))
    else:
        axes = tuple(normalize_axis(a, nd, "gradient")[0]
                     for a in (axis if isinstance(axis, (tuple, list)) else (axis,)))
    spacing = [np.asarray(constant(v, "gradient")) for v in varargs]
    if not spacing:
        spacing = [np.asarray(1.0)] * len(axes)
    elif len(spacing) == 1 and spacing[0].ndim == 0:
        spacing = spacing * len(axes)
    elif len(spacing) != len(axes):
        raise ArgumentTypeError("invalid number of arguments")
    if edge_order > 2:
        raise ArgumentError("'edge_order' greater than 2 not supported")
    otype = np.result_type(f) if np.result_type(f).kind in "fc" else np.dtype(np.float64)
    outs = []
    for ax, d in zip(axes, spacing):
        n = np.shape(f)[ax]
        if n < edge_order + 1:
            raise ShapeError("Shape of array too small to calculate a numerical gradient, "
                             "at least (edge_order + 1) elements are required.")
        if d.ndim == 1:
            if len(d) != n:
                raise ArgumentError("when 1d, distances must match the length of the "
                                    "corresponding dimension")
            dx = np.diff(d).astype(np.float64) if d.dtype.kind in "iub" else np.diff(d)
            if np.all(dx == dx[0]):
                dx = dx[0]
        elif d.ndim == 0:
            dx = d
        else:
            raise ArgumentError("distances must be either scalars or 1d")
        sl = [(slice(None),) * ax + (s,) for s in (slice(2, None), slice(1, -1),
                                                   slice(None, -2))]
        if np.ndim(dx) == 0:
            inner = (f[sl[0]] - f[sl[2]]) / (2.0 * dx)
        else:
            d1, d2 = dx[:-1], dx[1:]
            shape = [1] * nd
            shape[ax] = -1
            a = (-d2 / (d1 * (d1 + d2))).reshape(shape)
            b = ((d2 - d1) / (d1 * d2)).reshape(shape)
            c = (d1 / (d2 * (d1 + d2))).reshape(shape)
            inner = a * f[sl[2]] + b * f[sl[1]] + c * f[sl[0]]
        first, last = _edges(f, ax, edge_order, dx)
        g = F.concatenate([first, inner, last], ax)
        outs.append(F.astype(g, otype) if np.result_type(g) != otype else g)
    return outs[0] if len(outs) == 1 else tuple(outs)


if hasattr(np, "trapezoid"):
    @implements(np.trapezoid)
    def trapezoid(y: Any, x: Any = None, dx: float = 1.0, axis: int = -1) -> Any:
        ax = normalize_axis(axis, np.ndim(y), "trapezoid")[0]
        if x is None:
            d = dx
        elif np.ndim(x) == 1:
            d = F.diff(x)
            shape = [1] * np.ndim(y)
            shape[ax] = np.shape(d)[0]
            d = F.reshape(d, tuple(shape))
        else:
            d = F.diff(x, axis=ax)
        pre = (slice(None),) * ax
        return F.sum(d * (y[pre + (slice(1, None),)] + y[pre + (slice(None, -1),)]) / 2.0, ax)



# ---- r_ / c_ ---------------------------------------------------------------------------------

class IndexConcatenator:
    """``np.r_`` / ``np.c_`` for traced pieces (``pycograd.r_``, ``pycograd.c_``): numpy's own
    rules (slices as ranges, directives ``'axis[,ndmin[,trans1d]]'``, scalars promoted
    weakly), with the pieces reshaped instead of passed through ``np.array`` (which refuses
    tracers). Inside code pycograd routes, ``np.r_[...]`` is swapped for these automatically.
    Matrix directives ('r', 'c') are not supported.

    Examples:
        >>> import numpy as np
        >>> from pycograd import c_, grad, r_
        >>> grad(lambda x: np.sum(r_[x[0], x, 0.0] ** 2), 0)(np.array([1.0, 2.0])).tolist()
        [4.0, 4.0]
        >>> c_[np.ones(2), np.zeros(2)].tolist()
        [[1.0, 0.0], [1.0, 0.0]]
    """

    def __init__(self, axis: int = 0, ndmin: int = 1, trans1d: int = -1):
        self.axis, self.ndmin, self.trans1d = axis, ndmin, trans1d

    def __getitem__(self, key: Any) -> Any:
        key = key if isinstance(key, tuple) else (key,)
        axis, ndmin, trans1d = self.axis, self.ndmin, self.trans1d
        objs, kinds = [], []
        for k, item in enumerate(key):
            if isinstance(item, str):
                if k != 0:
                    raise ArgumentError("special directives must be the first entry.")
                if item in ("r", "c"):
                    raise NoRuleError("np.r_['r'] / ['c'] build np.matrix, which pycograd "
                                      "does not trace")
                try:
                    vec = [int(v) for v in item.split(",")]
                except ValueError as e:
                    raise ArgumentError(f"unknown special directive {item!r}") from e
                axis = vec[0]
                ndmin = vec[1] if len(vec) > 1 else ndmin
                trans1d = vec[2] if len(vec) > 2 else trans1d
                continue
            if isinstance(item, slice):
                obj = np.r_[item]
                if ndmin > 1:
                    obj = np.array(obj, ndmin=ndmin)
                    if trans1d != -1:
                        obj = obj.swapaxes(-1, trans1d)
                objs.append(obj)
                kinds.append(obj.dtype)
            elif type(item) in np.ScalarType:
                objs.append(item)
                kinds.append(item)
            else:
                obj = _ndmin(build(item) if holds_tracer(item) else item, ndmin, trans1d)
                objs.append(obj)
                kinds.append(np.result_type(obj))
        dt = np.result_type(*kinds)
        objs = [_ndmin(o, ndmin, -1) if isinstance(o, Tracer) else
                np.array(o, ndmin=ndmin, dtype=dt) for o in objs]
        objs = [F.astype(o, dt) if isinstance(o, Tracer) and o.dtype != dt else o
                for o in objs]
        return F.concatenate(objs, axis)


def _ndmin(item: Any, ndmin: int, trans1d: int) -> Any:
    """numpy's ``array(item, ndmin=ndmin)`` then its ``trans1d`` transpose, as a reshape."""
    nd = np.ndim(item)
    if not isinstance(item, Tracer):
        item = np.asarray(item)
    if nd >= ndmin:
        return item
    obj = F.reshape(item, (1,) * (ndmin - nd) + np.shape(item))
    if trans1d == -1:
        return obj
    k2, k1 = ndmin - nd, trans1d
    if k1 < 0:
        k1 += k2 + 1
    axes = list(range(ndmin))
    return F.transpose(obj, axes[:k1] + axes[k2:] + axes[k1:k2])


r_ = IndexConcatenator(0)
c_ = IndexConcatenator(-1, ndmin=2, trans1d=0)


class RoutedConcatenator:
    """What the transparent layer loads in place of ``np.r_`` / ``np.c_`` in user code:
    pycograd's concatenator when a piece is traced, numpy's own (its exact result) when
    none is."""

    __slots__ = ("numpy", "ours")

    def __init__(self, numpy: Any, ours: IndexConcatenator):
        self.numpy, self.ours = numpy, ours

    def __getitem__(self, key: Any) -> Any:
        for piece in key if isinstance(key, tuple) else (key,):
            if holds_tracer(piece):
                return self.ours[key]
        return self.numpy[key]

    def __len__(self) -> int:
        return len(self.numpy)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.numpy, name)


INDEX_ROUTES: dict[Any, RoutedConcatenator] = {
    np.r_: RoutedConcatenator(np.r_, r_), np.c_: RoutedConcatenator(np.c_, c_)}
"""numpy's index expression objects -> what a routed load of them gives."""
