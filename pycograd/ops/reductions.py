"""Reductions: sum, max/min (ties split evenly), prod and the running sum, sharing one axis
convention.

``axis`` is ``None`` or a sorted tuple of non-negative ints (``numpy_api`` normalizes it;
``cumsum`` takes one non-negative int), so each rule can put the reduced axes back with
``keep`` before broadcasting.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pycograd.core.primitive import primitive
from pycograd.core.trace import Tracer
from pycograd.core.var import Var
from pycograd.ops.batching import to_front
from pycograd.ops.shaping import dtype_of, shape_of


def keep(r: Any, shape: tuple, axis: tuple | None, keepdims: bool) -> Any:
    """Reinsert reduced axes (as size 1) into a reduction result, so it broadcasts."""
    if keepdims or axis is None:
        return r
    return np.reshape(r, tuple(1 if i in axis else d for i, d in enumerate(shape)))


def _sum_vjp(g: Any, ans: Any, x: Any, axis: tuple | None, keepdims: bool) -> Any:
    shape = np.shape(x)
    return np.broadcast_to(keep(g, shape, axis, keepdims), shape)


def _extremum_vjp(g: Any, ans: Any, x: Any, axis: tuple | None, keepdims: bool) -> Any:
    shape = np.shape(x)
    hits = x == keep(ans, shape, axis, keepdims)
    count = np.sum(hits, axis=axis, keepdims=True).astype(g.dtype)  # an int count upcasts
    return keep(g, shape, axis, keepdims) * hits / count


def _concrete(x: Any) -> Any:
    while isinstance(x, Var):
        x = x.value
    return x


def _prod_vjp(g: Any, ans: Any, x: Any, axis: tuple | None, keepdims: bool) -> Any:
    shape = np.shape(x)
    gk = keep(g, shape, axis, keepdims)
    cx = _concrete(x)
    if not isinstance(cx, Tracer) and np.all(cx != 0):
        return gk * (keep(ans, shape, axis, keepdims) / x)
    # Some factor is zero: form each element's product of the *other* factors exactly.
    red = tuple(range(len(shape))) if axis is None else axis
    rest = [i for i in range(len(shape)) if i not in red]
    perm = rest + list(red)
    n = math.prod(shape[i] for i in red)
    flat = np.reshape(np.transpose(x, perm), tuple(shape[i] for i in rest) + (n,))
    others = np.prod(np.where(np.eye(n, dtype=bool), 1, flat[..., None, :]), axis=-1)
    others = np.reshape(others, tuple(shape[i] for i in perm))
    return gk * np.transpose(others, tuple(np.argsort(perm)))


sum_p = primitive("sum", lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims),
                  _sum_vjp, family="reduction", saves=())  # reads only x's shape
max_p = primitive("max", lambda x, axis, keepdims: np.max(x, axis=axis, keepdims=keepdims),
                  _extremum_vjp, family="reduction")
min_p = primitive("min", lambda x, axis, keepdims: np.min(x, axis=axis, keepdims=keepdims),
                  _extremum_vjp, family="reduction")
prod_p = primitive("prod", lambda x, axis, keepdims: np.prod(x, axis=axis, keepdims=keepdims),
                   _prod_vjp, family="reduction")


def _cumsum_vjp(g: Any, ans: Any, x: Any, axis: int) -> Any:
    """Each input reaches every later output: the reversed running sum of ``g``."""
    return np.flip(np.cumsum(np.flip(g, axis), axis), axis)


cumsum_p = primitive(
    "cumsum", lambda x, axis: np.cumsum(x, axis=axis), _cumsum_vjp, family="linear",
    batch=lambda size, vals, dims, axis: (
        cumsum_p.bind(to_front(vals[0], dims[0], size), axis=axis + 1), 0),
    shape=lambda args, axis: (
        shape_of(args[0]), np.result_type(np.cumsum(np.ones(1, dtype_of(args[0]))))))
