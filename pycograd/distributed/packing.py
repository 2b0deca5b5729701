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
class Packed:
    """Flat buffers and where each leaf lies in them; leaves that are the same object
    (tied gradients) are packed once and share the result."""

    buffers: dict[np.dtype, np.ndarray] = field(default_factory=dict)
    slots: dict[np.dtype, list[_Slot]] = field(default_factory=dict)
    alias: dict[int, int] = field(default_factory=dict)
    n_leaves: int = 0


def _layout(arrays: list[np.ndarray], originals: list[Any], key: Any, count: Any,
            align: Any) -> Packed:
    packed = Packed(n_leaves=len(arrays))
    first: dict[int, int] = {}
    sizes: dict[np.dtype, int] = {}
    for i, (a, orig) in enumerate(zip(arrays, originals)):
        if id(orig) in first:
            packed.alias[i] = first[id(orig)]
            continue
        first[id(orig)] = i
        k = key(a)
        off = -(-sizes.get(k, 0) // align(k)) * align(k)
        packed.slots.setdefault(k, []).append(_Slot(i, off, count(a), a.dtype, a.shape))
        sizes[k] = off + count(a)
    for k, n in sizes.items():
        packed.buffers[k] = np.empty(n, k)
    return packed


def pack_for_sum(arrays: list[np.ndarray], originals: list[Any], what: str) -> Packed:
    """One buffer per summing dtype holding every leaf (complex leaves as real pairs)."""
    keys = [reduce_dtype(a.dtype, what, f"#{i}") for i, a in enumerate(arrays)]
    by_id = {id(a): k for a, k in zip(arrays, keys)}
    packed = _layout(arrays, originals, key=lambda a: by_id[id(a)],
                     count=lambda a: a.size * (2 if a.dtype.kind == "c" else 1),
                     align=lambda k: max(1, _ALIGN_BYTES // k.itemsize))
    for k, slots in packed.slots.items():
        buf = packed.buffers[k]
        for s in slots:
            a = arrays[s.leaf]
            src = np.ascontiguousarray(a).reshape(-1).view(k) if a.dtype.kind == "c" else a
            buf[s.offset:s.offset + s.count] = src.reshape(-1)
    return packed


def pack_bytes(arrays: list[np.ndarray], originals: list[Any], what: str) -> Packed:
    """Every leaf's bytes in one uint8 buffer (for broadcast: no arithmetic)."""
    for i, a in enumerate(arrays):
        if a.dtype.hasobject:
            raise DistributedError(f"{what}: leaf #{i} is an object array; only plain "
                                   "numeric, bool and string arrays can be sent")
    u8 = np.dtype(np.uint8)
    packed = _layout(arrays, originals, key=lambda a: u8, count=lambda a: a.nbytes,
                     align=lambda k: _ALIGN_BYTES)
    buf = packed.buffers.get(u8)
    for s in packed.slots.get(u8, ()):
        buf[s.offset:s.offset + s.count] = np.ascontiguousarray(
            arrays[s.leaf]).reshape(-1).view(np.uint8)
    return packed


def unpack(packed: Packed) -> list[np.ndarray]:
    """The leaves again, as views of the buffers (a copy only to round back to a small
    float dtype)."""
    out: list[Any] = [None] * packed.n_leaves
    for k, slots in packed.slots.items():
        buf = packed.buffers[k]
        for s in slots:
            seg = buf[s.offset:s.offset + s.count]
            if s.dtype == k:
                out[s.leaf] = seg.reshape(s.shape)
            elif s.dtype.kind == "c" or k == np.uint8:
                out[s.leaf] = seg.view(s.dtype).reshape(s.shape)
            else:
                out[s.leaf] = seg.astype(s.dtype).reshape(s.shape)
    for i, j in packed.alias.items():
        out[i] = out[j]
    return out
