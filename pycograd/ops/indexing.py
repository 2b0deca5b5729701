"""Indexing: gather forward, scatter-add backward (repeated indices accumulate)."""

from __future__ import annotations

from typing import Any

import numpy as np

from pycograd.core.primitive import primitive
from pycograd.core.symbolic import Dim
from pycograd.ops.batching import batched_index, to_front
from pycograd.ops.shaping import dtype_of, shape_of


def is_basic_index(idx: Any) -> bool:
    """Whether ``idx`` selects each element at most once (no integer arrays), so a
    scatter can assign instead of accumulate."""
    parts = idx if isinstance(idx, tuple) else (idx,)
    for p in parts:
        if isinstance(p, np.ndarray) and p.dtype != bool:
            return False
    return True


def _scatter_add_impl(g: Any, idx: Any, shape: tuple) -> Any:
    out = np.zeros(shape, dtype=np.result_type(g))
    if is_basic_index(idx):
        out[idx] = g
    else:
        np.add.at(out, idx, g)
    return out


def _getitem_batch(size: int, vals: list, dims: list, idx: Any) -> tuple:
    new, pos = batched_index(idx)
    return getitem_p.bind(to_front(vals[0], dims[0], size), idx=new), pos


def _scatter_add_batch(size: int, vals: list, dims: list, idx: Any, shape: tuple) -> tuple:
    new, pos = batched_index(idx)
    g = to_front(vals[0], dims[0], size)
    if pos:
        g = np.moveaxis(g, 0, pos)
    return scatter_add_p.bind(g, idx=new, shape=(size,) + shape), 0


def _getitem_shape(args: list, idx: Any) -> tuple:
    """Index an allocation-free, zero-strided view of the operand's shape; each symbolic
    dim stands in as a distinct large size and is mapped back afterwards."""
    stand: dict[Any, int] = {}
    concrete = []
    for d in shape_of(args[0]):
        if isinstance(d, Dim):
            concrete.append(stand.setdefault(d, 1_000_003 + 2 * len(stand)))
        else:
            concrete.append(d)
    view = np.broadcast_to(np.zeros((), dtype_of(args[0])), tuple(concrete))
    back = {v: k for k, v in stand.items()}
    return tuple(back.get(d, d) for d in view[idx].shape), dtype_of(args[0])


getitem_p = primitive(
    "getitem", lambda x, idx: x[idx],
    lambda g, ans, x, idx: scatter_add_p.bind(g, idx=idx, shape=np.shape(x)),
    family="linear", batch=_getitem_batch, shape=_getitem_shape)
scatter_add_p = primitive(
    "scatter_add", _scatter_add_impl, lambda g, ans, x, idx, shape: g[idx],
    family="linear", batch=_scatter_add_batch,
    shape=lambda args, idx, shape: (shape, dtype_of(args[0])))
