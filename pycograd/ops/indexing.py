"""Indexing: gather forward, scatter-add backward (repeated indices accumulate)."""

from __future__ import annotations

from typing import Any

import numpy as np

from pycograd.core.primitive import primitive


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


getitem_p = primitive("getitem", lambda x, idx: x[idx],
                      lambda g, ans, x, idx: scatter_add_p.bind(g, idx=idx, shape=np.shape(x)))
scatter_add_p = primitive("scatter_add", _scatter_add_impl,
                          lambda g, ans, x, idx, shape: g[idx])
