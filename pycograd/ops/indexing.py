"""Indexing: gather forward, scatter-add backward (repeated indices accumulate).

An index is static (a primitive param) unless some of its arrays are traced, as the token
ids of an embedding lookup are under ``vmap``: those become operands of the primitive, and
the index template in the params holds a ``Slot`` in their place. Integer index operands
carry no gradient; the value operand's VJP scatters with the same index operands.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pycograd.core.primitive import primitive
from pycograd.ops.batching import batched_index, to_front
from pycograd.ops.shaping import dtype_of, index_shape, shape_of


class Slot:
    """The place of index operand ``k`` in an index template."""

    __slots__ = ("k",)

    def __init__(self, k: int):
        self.k = k

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Slot) and other.k == self.k

    def __hash__(self) -> int:
        return hash(("Slot", self.k))

    def __repr__(self) -> str:
        return f"Slot({self.k})"


def fill(idx: Any, arrays: Any) -> Any:
    """The index template ``idx`` with its slots replaced by the index operands."""
    if not arrays:
        return idx
    if isinstance(idx, tuple):
        return tuple(arrays[p.k] if isinstance(p, Slot) else p for p in idx)
    return arrays[idx.k] if isinstance(idx, Slot) else idx


def is_basic_index(idx: Any) -> bool:
    """Whether ``idx`` selects each element at most once (no integer arrays), so a
    scatter can assign instead of accumulate."""
    parts = idx if isinstance(idx, tuple) else (idx,)
    for p in parts:
        if isinstance(p, np.ndarray) and p.dtype != bool:
            return False
    return True


def _getitem_impl(x: Any, *arrays: Any, idx: Any) -> Any:
    return x[fill(idx, arrays)]


def _scatter_add_impl(g: Any, *arrays: Any, idx: Any, shape: tuple) -> Any:
    idx = fill(idx, arrays)
    out = np.zeros(shape, dtype=np.result_type(g))
    if not arrays and is_basic_index(idx):
        out[idx] = g
    else:
        np.add.at(out, idx, g)
    return out


# ---- batching -------------------------------------------------------------------------

def _is_adv(p: Any) -> bool:
    return isinstance(p, (Slot, np.ndarray, int, np.integer)) and not isinstance(p, bool)


def _dynamic_template(size: int, idx: Any, nd: int, arrays: list, dims: list) -> tuple:
    """Rewrite a template with index operands for a batch of ``size``: a leading
    ``arange(size)`` index picks each example's own slice of the (batched-first) operand,
    batched index operands move their batch axis first. Returns ``(template, operands,
    q, k)``: the batched gather yields ``(size, *adv, *rest)`` where ``adv`` (``k`` dims) is
    the broadcast shape of the advanced indices; the unbatched result has them after
    ``q`` of the ``rest`` dims (numpy's placement rule)."""
    parts = list(idx) if isinstance(idx, tuple) else [idx]
    used = sum(0 if p is None or p is Ellipsis else
               p.ndim if isinstance(p, np.ndarray) and p.dtype == bool else 1 for p in parts)
    ell = [i for i, p in enumerate(parts) if p is Ellipsis]
    if ell:
        parts[ell[0]:ell[0] + 1] = [slice(None)] * (nd - used)
    expanded: list = []
    for p in parts:
        if isinstance(p, np.ndarray) and p.dtype == bool:
            expanded.extend(np.nonzero(p))
        else:
            expanded.append(p)
    parts = expanded
    adv = [i for i, p in enumerate(parts) if _is_adv(p)]
    shapes = []
    for p in parts:
        if isinstance(p, Slot):
            s = np.shape(arrays[p.k])
            shapes.append(s if dims[p.k] is None else s[:dims[p.k]] + s[dims[p.k] + 1:])
        elif _is_adv(p):
            shapes.append(np.shape(p))
    k = len(np.broadcast_shapes(*shapes))
    q = 0
    if adv == list(range(adv[0], adv[-1] + 1)):
        q = sum(1 for p in parts[:adv[0]] if p is None or isinstance(p, slice))
    operands = []
    for a, d in zip(arrays, dims):
        if d is not None:
            a = to_front(a, d, size)
            s = np.shape(a)
            a = np.reshape(a, s[:1] + (1,) * (k - len(s) + 1) + s[1:])
        operands.append(a)
    bi = np.arange(size).reshape((size,) + (1,) * k)
    return (bi, *parts), operands, q, k


def _getitem_batch(size: int, vals: list, dims: list, idx: Any) -> tuple:
    x, arrays = vals[0], vals[1:]
    if not arrays:
        new, pos = batched_index(idx)
        return getitem_p.bind(to_front(x, dims[0], size), idx=new), pos
    nd = np.ndim(x) - (dims[0] is not None)
    tmpl, operands, q, k = _dynamic_template(size, idx, nd, arrays, dims[1:])
    out = getitem_p.bind(to_front(x, dims[0], size), *operands, idx=tmpl)
    if q:
        out = np.moveaxis(out, list(range(1, 1 + k)), list(range(1 + q, 1 + q + k)))
    return out, 0


def _scatter_add_batch(size: int, vals: list, dims: list, idx: Any, shape: tuple) -> tuple:
    g, arrays = vals[0], vals[1:]
    g = to_front(g, dims[0], size)
    if not arrays:
        new, pos = batched_index(idx)
        if pos:
            g = np.moveaxis(g, 0, pos)
        return scatter_add_p.bind(g, idx=new, shape=(size,) + shape), 0
    tmpl, operands, q, k = _dynamic_template(size, idx, len(shape), arrays, dims[1:])
    if q:
        g = np.moveaxis(g, list(range(1 + q, 1 + q + k)), list(range(1, 1 + k)))
    return scatter_add_p.bind(g, *operands, idx=tmpl, shape=(size,) + shape), 0


# ---- forward mode and shapes ------------------------------------------------------------

def _getitem_jvp(primals: list, tangents: list, idx: Any) -> tuple:
    out = getitem_p.bind(*primals, idx=idx)
    t = tangents[0]
    return out, None if t is None else getitem_p.bind(t, *primals[1:], idx=idx)


def _scatter_add_jvp(primals: list, tangents: list, idx: Any, shape: tuple) -> tuple:
    out = scatter_add_p.bind(*primals, idx=idx, shape=shape)
    t = tangents[0]
    return out, None if t is None else scatter_add_p.bind(t, *primals[1:], idx=idx, shape=shape)


def _getitem_shape(args: list, idx: Any) -> tuple:
    """numpy's indexing rules on shapes alone: nothing is allocated, symbolic dims and
    abstract index operands (``Slot``s in ``idx``) are sized."""
    return index_shape(shape_of(args[0]), fill(idx, args[1:])), dtype_of(args[0])


getitem_p = primitive(
    "getitem", _getitem_impl,
    lambda g, ans, x, *arrays, idx: scatter_add_p.bind(g, *arrays, idx=idx, shape=np.shape(x)),
    family="linear", jvp=_getitem_jvp, batch=_getitem_batch, shape=_getitem_shape)
scatter_add_p = primitive(
    "scatter_add", _scatter_add_impl,
    lambda g, ans, x, *arrays, idx, shape: getitem_p.bind(g, *arrays, idx=idx),
    family="linear", jvp=_scatter_add_jvp, batch=_scatter_add_batch,
    shape=lambda args, idx, shape: (shape, dtype_of(args[0])))
