"""Embedding lookup: a gather, whose VJP scatter-adds (repeated ids accumulate)."""

from __future__ import annotations

from typing import Any

import numpy as np

from pycograd.core.trace import Tracer
from pycograd.ops.elementwise import stop_gradient


def embedding(ids: Any, table: Any, padding_idx: int | None = None) -> Any:
    """Rows of ``table`` (``(num_embeddings, dim)``) at integer ``ids`` (any shape):
    ``ids.shape + (dim,)``. Rows looked up at ``padding_idx`` pass their value but no
    gradient, so that row of the table never trains (PyTorch's semantics).

    Examples:
        >>> import numpy as np
        >>> from pycograd import embedding, grad
        >>> table = np.arange(6.0).reshape(3, 2)
        >>> embedding(np.array([[2, 0]]), table).tolist()
        [[[4.0, 5.0], [0.0, 1.0]]]
        >>> grad(lambda t: np.sum(embedding(np.array([1, 1]), t)), 0)(table).tolist()
        [[0.0, 0.0], [2.0, 2.0], [0.0, 0.0]]
    """
    if not isinstance(ids, (np.ndarray, Tracer)):
        ids = np.asarray(ids)
    if np.dtype(ids.dtype).kind not in "iu":
        raise TypeError(f"embedding: ids must be integers, got dtype {ids.dtype}")
    rows = table[ids]
    if padding_idx is None:
        return rows
    pad = (ids == padding_idx % np.shape(table)[0])[..., None]
    if isinstance(pad, np.ndarray) and not pad.any():
        return rows
    return np.where(pad, stop_gradient(rows), rows)
