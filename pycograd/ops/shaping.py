"""Helpers for writing shape rules (``eval_shape``): shapes and dtypes of abstract operands.

A shape rule is ``rule(args, **params) -> (shape, dtype)``. Abstract operands have
``.shape`` and ``.dtype`` (``ShapeDtypeStruct``); concrete ones are arrays or Python
scalars. Dimensions may be symbolic (``Dim``), so rules compare dims with ``==`` only.
"""

from __future__ import annotations

import warnings
from numbers import Integral
from typing import Any

import numpy as np

from pycograd.core.errors import IndexingError, ShapeError
from pycograd.core.primitive import Primitive
from pycograd.core.symbolic import Dim, provably_nonneg
from pycograd.core.trace import Tracer, live_traces


def shape_of(x: Any) -> tuple:
    if isinstance(x, Dim):
        return ()
    s = getattr(x, "shape", None)
    return tuple(s) if s is not None else np.shape(x)


def stand_in(x: Any) -> Any:
    """A 0-d array of ``x``'s dtype; Python scalars (and symbolic dims, which act as
    ints) stay scalars, since numpy promotes them weakly."""
    if isinstance(x, (bool, int, float, complex)):
        return x
    if isinstance(x, Dim):
        return 1
    dt = getattr(x, "dtype", None)
    return np.ones((), dtype=dt if dt is not None else np.result_type(x))


def dtype_of(*xs: Any) -> np.dtype:
    """The dtype numpy's promotion gives for combining ``xs``."""
    return np.result_type(*[stand_in(x) for x in xs])


def is_symbolic(shape: Any) -> bool:
    return any(isinstance(d, Dim) for d in shape)


def broadcast_constant(x: Any, shape: Any) -> Any:
    """``np.broadcast_to(x, shape)``, also for a constant ``x`` and a shape with symbolic
    dims, which only ``eval_shape`` has: there numpy cannot allocate it, so ``x`` is lifted
    into the innermost abstract trace, whose broadcast keeps the dims. Library code that
    makes a constant of an operand's shape (a padding block, an identity stack, a batch
    rule's unbatched operand) goes through here or ``full``, so it runs under eval_shape
    with a symbolic batch.

    Example: ``broadcast_constant(np.eye(3), x.shape)`` for ``x`` of shape ``(batch, 3, 3)``."""
    shape = tuple(shape)
    if isinstance(x, Tracer) or not is_symbolic(shape):
        return np.broadcast_to(x, shape)
    for trace in reversed(live_traces()):
        lift = getattr(trace, "lift", None)
        if lift is not None:
            return np.broadcast_to(lift(np.asarray(x)), shape)
    raise ShapeError(f"a constant of shape {shape}: symbolic dimensions exist only under "
                     "eval_shape")


def full(shape: Any, value: Any, dtype: Any = None) -> Any:
    """``np.full(shape, value, dtype)`` that a shape with symbolic dims keeps abstract (see
    ``broadcast_constant``)."""
    shape = tuple(shape)
    if not is_symbolic(shape):
        return np.full(shape, value, dtype=dtype)
    return broadcast_constant(np.asarray(value, dtype=dtype), shape)


def out_dtype(prim: Primitive, args: list, params: dict) -> np.dtype:
    """The dtype ``prim`` produces, found by running it on 0-d stand-ins."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return np.result_type(prim.impl(*[stand_in(a) for a in args], **params))


def broadcast_shapes(op: str, *shapes: tuple) -> tuple:
    """numpy broadcasting that also accepts symbolic dims (which match themselves or 1)."""
    nd = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(nd):
        d: Any = 1
        for s in shapes:
            j = len(s) - nd + i
            if j < 0 or (isinstance(s[j], int) and s[j] == 1):
                continue
            if isinstance(d, int) and d == 1:
                d = s[j]
            elif d != s[j]:
                raise ShapeError(f"{op}: incompatible shapes "
                                 f"{' and '.join(str(tuple(s)) for s in shapes)}")
        out.append(d)
    return tuple(out)


def _is_abstract(p: Any) -> bool:
    """An abstract index operand (a ``ShapeDtypeStruct``): a shape and dtype, no values."""
    return hasattr(p, "shape") and hasattr(p, "dtype") and not isinstance(p, np.ndarray)


def is_int(p: Any) -> bool:
    return isinstance(p, (Integral, np.integer)) and not isinstance(p, (bool, np.bool_))


def slice_len(d: Any, s: slice, axis: int) -> Any:
    """The length of ``s`` on a dimension of size ``d``. On a symbolic dim (at least 1)
    only slices whose length that assumption decides are sized: ``x[:]``, ``x[::-1]``,
    ``x[1:]``, ``x[:-1]``, ``x[k:k+d]`` on a larger dim; ``x[:5]`` is ``min(5, d)``, so
    it raises."""
    if not isinstance(d, Dim) and not any(isinstance(v, Dim) for v in (s.start, s.stop)):
        return len(range(*s.indices(d)))
    step = 1 if s.step is None else s.step
    if step == -1 and s.start is None and s.stop is None:
        return d
    if step == 1:
        lo = 0 if s.start is None else s.start + d if is_int(s.start) and s.start < 0 \
            else s.start
        hi = d if s.stop is None else s.stop + d if is_int(s.stop) and s.stop < 0 else s.stop
        if all(provably_nonneg(v) for v in (lo, hi - lo, d - hi)):
            return hi - lo
    bounds = f"{'' if s.start is None else s.start}:{'' if s.stop is None else s.stop}" + \
        ("" if s.step is None else f":{s.step}")
    raise ShapeError(
        f"getitem: the length of the slice [{bounds}] on axis {axis} of symbolic size {d} "
        "depends on the value of the dimension (it would be clipped when the dimension is "
        "small); slice symbolic axes fully (x[:], x[1:], x[:-1]) or use a concrete size")


def index_shape(shape: tuple, idx: Any) -> tuple:
    """numpy's indexing rules, on shapes only: basic indices (ints, slices, None,
    Ellipsis) and advanced ones (integer arrays and abstract integer indices, which
    broadcast together, and concrete boolean masks)."""
    parts = list(idx) if isinstance(idx, tuple) else [idx]
    parts = [np.asarray(p) if isinstance(p, (bool, np.bool_)) else p for p in parts]
    used = sum(0 if p is None or p is Ellipsis else
               p.ndim if isinstance(p, np.ndarray) and p.dtype == bool else 1 for p in parts)
    if used > len(shape):
        raise IndexingError(f"too many indices for an array of shape {shape}: {used} were indexed")
    ell = [i for i, p in enumerate(parts) if p is Ellipsis]
    if len(ell) > 1:
        raise IndexingError("an index can only have a single ellipsis ('...')")
    fill = [slice(None)] * (len(shape) - used)
    parts = parts[:ell[0]] + fill + parts[ell[0] + 1:] if ell else parts + fill
    pieces: list = []  # ("dim", d) or ("adv", shape)
    axis = 0
    for p in parts:
        if p is None:
            pieces.append(("dim", 1))
        elif isinstance(p, slice):
            pieces.append(("dim", slice_len(shape[axis], p, axis)))
            axis += 1
        elif is_int(p) or isinstance(p, np.ndarray) and p.ndim == 0 and p.dtype.kind in "iu":
            d = shape[axis]
            if not isinstance(d, Dim) and not -d <= int(p) < d:
                raise IndexingError(
                    f"index {int(p)} is out of bounds for axis {axis} with size {d}")
            pieces.append(("int", ()))
            axis += 1
        elif isinstance(p, np.ndarray) and p.dtype == bool:
            dims = shape[axis:axis + p.ndim]
            if tuple(p.shape) != tuple(dims):
                raise IndexingError(f"boolean index of shape {p.shape} does not match the "
                                    f"indexed dimensions {tuple(dims)} at axis {axis}")
            pieces.append(("adv", (int(np.count_nonzero(p)),)))
            axis += p.ndim
        elif (isinstance(p, np.ndarray) or _is_abstract(p)) and p.dtype.kind in "iu":
            d = shape[axis]
            if isinstance(p, np.ndarray) and p.size and not isinstance(d, Dim) and \
                    not (-d <= p.min() and p.max() < d):
                raise IndexingError(f"an index is out of bounds for axis {axis} with size {d}")
            pieces.append(("adv", tuple(p.shape)))
            axis += 1
        else:
            raise IndexingError(f"only integers, slices, None, Ellipsis and integer or boolean "
                                f"arrays are valid indices, got {type(p).__name__}")
    adv = [i for i, (k, _) in enumerate(pieces) if k == "adv"]
    if not adv:
        return tuple(v for k, v in pieces if k == "dim")
    ints = [i for i, (k, _) in enumerate(pieces) if k == "int"]
    where = sorted(adv + ints)
    b = broadcast_shapes("getitem", *(pieces[i][1] for i in where))
    rest = [v for k, v in pieces if k == "dim"]
    if where == list(range(where[0], where[-1] + 1)):  # adjacent: the result goes in place
        before = sum(1 for k, _ in pieces[:where[0]] if k == "dim")
        return tuple(rest[:before]) + b + tuple(rest[before:])
    return b + tuple(rest)
