"""Helpers for writing batching rules (``vmap``): where the batch axis is and moving it.

A batching rule is ``rule(size, vals, dims, **params) -> (out, out_dim)``: ``vals`` are the
operands with their batch axis at ``dims[i]`` (``None`` for an unbatched operand), ``size``
the batch size; ``out_dim`` says where the result's batch axis is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pycograd.ops.shaping import broadcast_constant


def to_front(x: Any, d: int | None, size: int) -> Any:
    """``x`` with its batch axis first (broadcast to ``size`` if it has none)."""
    if d is None:
        return broadcast_constant(x, (size,) + np.shape(x))
    return x if d == 0 else np.moveaxis(x, d, 0)


def front_all(size: int, vals: list, dims: list) -> list:
    return [to_front(v, d, size) for v, d in zip(vals, dims)]


def aligned(size: int, vals: list, dims: list) -> list:
    """The operands of a broadcasting op with each batch axis moved first and the batched
    ones' ranks padded after it, so all operands broadcast as the unbatched ones would;
    unbatched operands stay as they are (they broadcast against the batch axis)."""
    nd = max(np.ndim(v) - (d is not None) for v, d in zip(vals, dims))
    out = []
    for v, d in zip(vals, dims):
        if d is not None:
            v = to_front(v, d, size)
            s = np.shape(v)
            if len(s) - 1 < nd:
                v = np.reshape(v, s[:1] + (1,) * (nd - len(s) + 1) + s[1:])
        out.append(v)
    return out


def _is_advanced(p: Any) -> bool:
    return isinstance(p, (np.ndarray, int, np.integer)) and not isinstance(p, bool)


def batched_index(idx: Any) -> tuple[tuple, int]:
    """``idx`` with a leading full slice for the batch axis, and where numpy puts that axis
    in the result: first, unless advanced indices split by a slice move to the front."""
    parts = idx if isinstance(idx, tuple) else (idx,)
    arrays = [p for p in parts if isinstance(p, np.ndarray)]
    pos = 0
    if arrays:
        adv = [i for i, p in enumerate(parts) if _is_advanced(p)]
        if adv != list(range(adv[0], adv[-1] + 1)):
            shapes = [p.shape if p.dtype != bool else (int(p.sum()),) for p in arrays]
            pos = len(np.broadcast_shapes(*shapes))
    return (slice(None),) + parts, pos
