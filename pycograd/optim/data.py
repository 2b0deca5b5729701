"""Minibatches: ``batches`` yields one epoch, ``DataLoader`` re-iterates with a fresh
shuffle each epoch. Shuffling draws from a ``pycograd.random`` key, so the order is the
same on every run and platform for the same key."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from pycograd import random as prandom
from pycograd.core.errors import ArgumentError
from pycograd.distributed.sharding import shard


def _check(arrays: tuple, batch_size: int, window: int | None) -> tuple[list[np.ndarray], int]:
    if not arrays:
        raise ArgumentError("batches: give at least one array")
    if batch_size < 1:
        raise ArgumentError(f"batches: batch_size must be positive, got {batch_size}")
    arrays_ = [np.asarray(a) for a in arrays]
    if window is not None:
        if len(arrays_) != 1 or arrays_[0].ndim != 1:
            raise ArgumentError("batches: window=T takes exactly one 1-D token stream")
        if window < 1 or len(arrays_[0]) <= window:
            raise ArgumentError(f"batches: a stream of {len(arrays_[0])} tokens has no window of "
                                f"{window} inputs plus a next-token target")
        return arrays_, (len(arrays_[0]) - 1) // window
    n = len(arrays_[0])
    if any(len(a) != n for a in arrays_):
        raise ArgumentError(f"batches: arrays differ in length: {[len(a) for a in arrays_]}")
    return arrays_, n


def num_batches(n: int, batch_size: int, drop_last: bool) -> int:
    return n // batch_size if drop_last else math.ceil(n / batch_size)


def batches(*arrays: Any, batch_size: int, key: Any = None, shuffle: bool = True,
            drop_last: bool = False, window: int | None = None,
            data_parallel: bool = False) -> Iterator[tuple]:
    """One pass over ``arrays`` (sliced together along axis 0) as tuples of minibatches.

    ``shuffle`` permutes the examples with ``key`` (default ``key(0)``: pass a new key per
    epoch for a new order). ``drop_last`` drops a final short batch. ``window=T`` takes a
    single 1-D token stream, cuts it into non-overlapping windows of ``T`` tokens, and
    yields ``(inputs, targets)`` of shape ``(batch, T)`` with ``targets`` the inputs shifted
    by one token (the next-token objective). ``data_parallel=True`` yields this rank's
    slice of each batch (``pycograd.distributed.shard``): ``batch_size`` stays the global
    batch, and all ranks must pass the same arrays and key.

    Examples:
        >>> import numpy as np
        >>> from pycograd import batches
        >>> x, y = np.arange(10), np.arange(10) * 10
        >>> [len(xb) for xb, yb in batches(x, y, batch_size=4)]
        [4, 4, 2]
        >>> [xb.tolist() for xb, in batches(x, batch_size=4, shuffle=False, drop_last=True)]
        [[0, 1, 2, 3], [4, 5, 6, 7]]
        >>> inputs, targets = next(batches(np.arange(7), batch_size=2, window=3, shuffle=False))
        >>> inputs.tolist(), targets.tolist()                     # next-token pairs
        ([[0, 1, 2], [3, 4, 5]], [[1, 2, 3], [4, 5, 6]])
    """
    arrays_, n = _check(arrays, batch_size, window)
    order = prandom.permutation(0 if key is None else key, n) if shuffle else None
    for b in range(num_batches(n, batch_size, drop_last)):
        lo, hi = b * batch_size, min((b + 1) * batch_size, n)
        idx = slice(lo, hi) if order is None else order[lo:hi]
        if window is not None:
            starts = np.arange(n)[idx] * window
            pos = starts[:, None] + np.arange(window)
            batch = arrays_[0][pos], arrays_[0][pos + 1]
        else:
            batch = tuple(a[idx] for a in arrays_)
        yield shard(batch) if data_parallel else batch


class DataLoader:
    """``batches`` as a re-iterable: each ``iter()`` is a new epoch whose shuffle uses
    ``fold_in(key, epoch)``, so a run is reproducible from its key and every epoch sees a
    new order. ``len(loader)`` is the number of minibatches per epoch. ``data_parallel=True``
    yields this rank's slice of each batch.

    Examples:
        >>> import numpy as np
        >>> from pycograd import DataLoader
        >>> from pycograd import random as prandom
        >>> loader = DataLoader(np.arange(10), batch_size=4, key=prandom.key(0), drop_last=True)
        >>> len(loader)                                           # minibatches per epoch
        2
        >>> first = np.concatenate([b for (b,) in loader])
        >>> second = np.concatenate([b for (b,) in loader])       # a new epoch, a new order
        >>> first.shape, bool(np.array_equal(first, second))
        ((8,), False)
    """

    def __init__(self, *arrays: Any, batch_size: int, key: Any = None, shuffle: bool = True,
                 drop_last: bool = False, window: int | None = None,
                 data_parallel: bool = False):
        self.arrays, self.n = _check(arrays, batch_size, window)
        self.batch_size, self.shuffle, self.drop_last, self.window = (
            batch_size, shuffle, drop_last, window)
        self.data_parallel = data_parallel
        self.key = prandom.key(0) if key is None else key
        self.epoch = 0

    def __len__(self) -> int:
        return num_batches(self.n, self.batch_size, self.drop_last)

    def __iter__(self) -> Iterator[tuple]:
        k = prandom.fold_in(self.key, self.epoch)
        self.epoch += 1
        return batches(*self.arrays, batch_size=self.batch_size, key=k, shuffle=self.shuffle,
                       drop_last=self.drop_last, window=self.window,
                       data_parallel=self.data_parallel)
