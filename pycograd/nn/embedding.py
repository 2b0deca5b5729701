"""Embedding lookup: a gather, whose VJP scatter-adds (repeated ids accumulate)."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from pycograd.core.errors import ArgumentTypeError, IndexOutOfRangeError
from pycograd.core.trace import Tracer
from pycograd.ops.elementwise import stop_gradient
from pycograd.ops.matrix import concrete_values


def check_range(op: str, what: str, ids: Any, n: int, of: str,
                allowed: int | None = None) -> None:
    """Raise if an integer id (a class label, a row) lies outside ``[0, n)`` and is not
    ``allowed``: numpy would wrap ``-1`` to the last row, and a one-hot comparison would
    silently give that row nothing. Traced ids are checked through their concrete values
    (under ``vmap`` too); under ``eval_shape`` there are none to check, and a symbolic
    ``n`` checks only the sign."""
    values = concrete_values(ids)
    if values is None:
        return
    values = np.asarray(values)
    bad = values < 0
    if isinstance(n, numbers.Integral):
        bad |= values >= n
    if allowed is not None:
        bad &= values != allowed
    if bad.any():
        first = values[bad].flat[0]
        extra = f" or equal ignore_index={allowed}" if allowed is not None else ""
        raise IndexOutOfRangeError(
            f"{op}: {what} {first} is out of range for {of}: each must lie in "
            f"[0, {n}){extra} ({int(bad.sum())} of {values.size} do not)")


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
        raise ArgumentTypeError(f"embedding: ids must be integers, got dtype {ids.dtype}")
    n = np.shape(table)[0]
    check_range("embedding", "id", ids, n, f"a table of {n} rows")
    if padding_idx is not None and isinstance(n, numbers.Integral) and not -n <= padding_idx < n:
        raise IndexOutOfRangeError(f"embedding: padding_idx={padding_idx} is out of range for "
                                   f"a table of {n} rows; it must lie in [-{n}, {n})")
    rows = table[ids]
    if padding_idx is None:
        return rows
    pad = (ids == padding_idx % np.shape(table)[0])[..., None]
    if isinstance(pad, np.ndarray) and not pad.any():
        return rows
    return np.where(pad, stop_gradient(rows), rows)
