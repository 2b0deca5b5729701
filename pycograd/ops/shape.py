"""Structural primitives: they move elements around and never change a value. All are
linear (their JVP applies the op to the tangent); each states how it batches and sizes."""

from __future__ import annotations

from typing import Any

import numpy as np

from pycograd.core.primitive import PerArgument, primitive
from pycograd.ops.batching import front_all, to_front
from pycograd.ops.broadcasting import unbroadcast
from pycograd.ops.complex import match
from pycograd.ops.shaping import dtype_of, shape_of


def _broadcast_to_batch(size: int, vals: list, dims: list, shape: tuple) -> tuple:
    x = to_front(vals[0], dims[0], size)
    s = np.shape(x)
    x = np.reshape(x, s[:1] + (1,) * (len(shape) - len(s) + 1) + s[1:])
    return broadcast_to_p.bind(x, shape=(size,) + shape), 0


def _concatenate_vjp(i: int, g: Any, ans: Any, *xs: Any, axis: int) -> Any:
    start = sum(np.shape(x)[axis] for x in xs[:i])
    stop = start + np.shape(xs[i])[axis]
    return match(g[(slice(None),) * axis + (slice(start, stop),)], xs[i])


def _concatenate_shape(args: list, axis: int) -> tuple:
    shapes = [shape_of(a) for a in args]
    total: Any = 0
    for s in shapes:
        total = total + s[axis]
    return shapes[0][:axis] + (total,) + shapes[0][axis + 1:], dtype_of(*args)


reshape_p = primitive(
    "reshape", lambda x, shape: np.reshape(x, shape),
    lambda g, ans, x, shape: np.reshape(g, np.shape(x)), family="linear",
    batch=lambda size, vals, dims, shape: (
        reshape_p.bind(to_front(vals[0], dims[0], size), shape=(size,) + shape), 0),
    shape=lambda args, shape: (shape, dtype_of(args[0])))


def _inverse(axes: tuple) -> tuple:
    """The permutation that undoes ``axes`` (``np.argsort`` costs microseconds per call on a
    tuple this small, and this runs in every transpose's backward)."""
    return tuple(sorted(range(len(axes)), key=axes.__getitem__))


transpose_p = primitive(
    "transpose", lambda x, axes: np.transpose(x, axes),
    lambda g, ans, x, axes: np.transpose(g, _inverse(axes)), family="linear",
    batch=lambda size, vals, dims, axes: (transpose_p.bind(
        to_front(vals[0], dims[0], size), axes=(0,) + tuple(a + 1 for a in axes)), 0),
    shape=lambda args, axes: (tuple(shape_of(args[0])[a] for a in axes), dtype_of(args[0])))
broadcast_to_p = primitive(
    "broadcast_to", lambda x, shape: np.broadcast_to(x, shape),
    lambda g, ans, x, shape: unbroadcast(g, np.shape(x)), family="linear",
    batch=_broadcast_to_batch, shape=lambda args, shape: (shape, dtype_of(args[0])))
concatenate_p = primitive(
    "concatenate", lambda *xs, axis: np.concatenate(xs, axis=axis),
    PerArgument(_concatenate_vjp), family="linear",
    batch=lambda size, vals, dims, axis: (
        concatenate_p.bind(*front_all(size, vals, dims), axis=axis + 1), 0),
    shape=_concatenate_shape)
