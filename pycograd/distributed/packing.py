"""Packing the leaves of a pytree into a few flat buffers, so one collective moves them all.

A buffer is a numpy array shared with torch through ``torch.from_numpy`` (no copy between
the two): the leaves are copied in once, the collective works on the buffer in place, and
the results are views of it. Sums need one buffer per arithmetic dtype: a complex leaf
travels as its real view (complex128 as float64 pairs, no copy), float16 / bfloat16 leaves
are summed in float32 and rounded back. A broadcast does no arithmetic, so every leaf of any
dtype travels as raw bytes in a single uint8 buffer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pycograd.distributed.errors import DistributedError

_DIRECT = {np.dtype(np.float64), np.dtype(np.float32)}
_SMALL_FLOATS = ("float16", "bfloat16", "float8")
_ALIGN_BYTES = 16


def reduce_dtype(dtype: np.dtype, what: str, where: str) -> np.dtype:
    """The dtype a leaf is summed in; an error for dtypes a mean does not apply to."""
    if dtype in _DIRECT:
        return dtype
    if dtype.kind == "c" and dtype.itemsize in (8, 16):
        return np.dtype(np.float32 if dtype.itemsize == 8 else np.float64)
    if dtype.name.startswith(_SMALL_FLOATS):
        return np.dtype(np.float32)
    raise DistributedError(f"{what}: leaf {where} has dtype {dtype}; only float16/bfloat16/"
                           "float32/float64 and complex64/complex128 arrays can be averaged")


@dataclass
class _Slot:
    leaf: int
    offset: int
    count: int
    dtype: np.dtype
    shape: tuple


@dataclass
class Layout:
    """Where each leaf lies in which buffer; leaves that are the same object (tied
    gradients) are packed once and share the result. Depends only on the leaves' dtypes,
    shapes and sharing, so one layout serves every step of a training loop."""

    sizes: dict[np.dtype, int] = field(default_factory=dict)
    slots: dict[np.dtype, list[_Slot]] = field(default_factory=dict)
    alias: dict[int, int] = field(default_factory=dict)
    n_leaves: int = 0


@dataclass
class Packed:
    """A layout and its freshly filled buffers."""

    layout: Layout
    buffers: dict[np.dtype, np.ndarray]


def sharing(leaves: list) -> tuple[int, ...]:
    """For each leaf, the index of the first leaf that is the same object."""
    first: dict[int, int] = {}
    return tuple(first.setdefault(id(x), i) for i, x in enumerate(leaves))


def _layout(arrays: list[np.ndarray], shared: tuple[int, ...], key: Any, count: Any,
            align: Any) -> Layout:
    layout = Layout(n_leaves=len(arrays))
    for i, a in enumerate(arrays):
        if shared[i] != i:
            layout.alias[i] = shared[i]
            continue
        k = key(i, a)
        off = -(-layout.sizes.get(k, 0) // align(k)) * align(k)
        layout.slots.setdefault(k, []).append(_Slot(i, off, count(a), a.dtype, a.shape))
        layout.sizes[k] = off + count(a)
    return layout


def sum_layout(arrays: list[np.ndarray], shared: tuple[int, ...], what: str) -> Layout:
    """One buffer per summing dtype holding every leaf (complex leaves as real pairs)."""
    return _layout(arrays, shared, key=lambda i, a: reduce_dtype(a.dtype, what, f"#{i}"),
                   count=lambda a: a.size * (2 if a.dtype.kind == "c" else 1),
                   align=lambda k: max(1, _ALIGN_BYTES // k.itemsize))


def bytes_layout(arrays: list[np.ndarray], shared: tuple[int, ...], what: str) -> Layout:
    """Every leaf's bytes in one uint8 buffer (for broadcast: no arithmetic)."""
    for i, a in enumerate(arrays):
        if a.dtype.hasobject:
            raise DistributedError(f"{what}: leaf #{i} is an object array; only plain "
                                   "numeric, bool and string arrays can be sent")
    return _layout(arrays, shared, key=lambda i, a: np.dtype(np.uint8), count=lambda a: a.nbytes,
                   align=lambda k: _ALIGN_BYTES)


def pack(layout: Layout, arrays: list[np.ndarray]) -> Packed:
    """New buffers holding ``arrays`` as ``layout`` says."""
    buffers = {k: np.empty(n, k) for k, n in layout.sizes.items()}
    for k, slots in layout.slots.items():
        buf = buffers[k]
        for s in slots:
            a = arrays[s.leaf]
            if a.dtype.kind == "c" or k == np.uint8:
                a = np.ascontiguousarray(a).reshape(-1).view(k)
            buf[s.offset:s.offset + s.count] = a.reshape(-1)
    return Packed(layout, buffers)


def unpack(packed: Packed) -> list[np.ndarray]:
    """The leaves again, as views of the buffers (a copy only to round back to a small
    float dtype)."""
    layout = packed.layout
    out: list[Any] = [None] * layout.n_leaves
    for k, slots in layout.slots.items():
        buf = packed.buffers[k]
        for s in slots:
            seg = buf[s.offset:s.offset + s.count]
            if s.dtype == k:
                out[s.leaf] = seg.reshape(s.shape)
            elif s.dtype.kind == "c" or k == np.uint8:
                out[s.leaf] = seg.view(s.dtype).reshape(s.shape)
            else:
                out[s.leaf] = seg.astype(s.dtype).reshape(s.shape)
    for i, j in layout.alias.items():
        out[i] = out[j]
    return out
