"""What ``train(..., data_parallel=True)`` does around each step, kept out of the loop.

At the start every rank joins the group (``init``) and takes rank 0's weights and optimizer
state (``broadcast``). Each step it keeps its slice of the global batch (``sharding``),
computes loss and gradients on it, and averages both across ranks in one
``all_reduce_mean``, each rank's share weighted by its rows, so the result is the gradient
of the whole batch and every rank applies the same update to the same weights. A
callback's request to stop is shared so all ranks stop at the same step. The loop itself
talks to a hook; without data parallelism the hook does nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pycograd.core.pytree import tree_map
from pycograd.distributed.collectives import all_reduce_mean, any_rank, broadcast
from pycograd.distributed.group import init
from pycograd.distributed.sharding import bounds


class LocalHook:
    """One process: batches, losses and gradients pass through unchanged."""

    is_main = True

    def shard(self, batch: tuple) -> tuple:
        return batch

    def reduce(self, value: Any, grads: Any) -> tuple[Any, Any]:
        return value, grads

    def any_stop(self, stop: bool) -> bool:
        return stop


class DataParallelHook:
    """Data parallel over the running process group (started by ``init`` if needed)."""

    def __init__(self, weights: Any, optimizer: Any):
        group = init()
        self.rank, self.world_size = group.rank, group.world_size
        self.is_main = self.rank == 0
        self.scale = 1.0
        self.first = True
        broadcast(weights)
        if callable(getattr(optimizer, "state_dict", None)) and callable(
                getattr(optimizer, "load_state_dict", None)):
            broadcast(optimizer)

    def shard(self, batch: tuple) -> tuple:
        if not batch:
            self.scale = 1.0
            return batch
        arrays = [np.asarray(a) for a in batch]
        n = len(arrays[0])
        lo, hi = bounds(n, self.rank, self.world_size)
        self.scale = (hi - lo) * self.world_size / n
        return tuple(a[lo:hi] for a in arrays)

    def reduce(self, value: Any, grads: Any) -> tuple[float, Any]:
        if self.scale != 1.0:
            s = self.scale
            value, grads = tree_map(lambda x: np.asarray(x) * np.asarray(s, np.asarray(x).dtype),
                                    (value, grads))
        # The gradients mirror the weights, identical on every rank since the broadcast, so
        # their tree is checked at the first step only: one collective per step after it.
        value, grads = all_reduce_mean((np.asarray(value), grads), check=self.first)
        self.first = False
        return float(value), grads

    def any_stop(self, stop: bool) -> bool:
        return any_rank(stop)


def hook(data_parallel: bool, weights: Any, optimizer: Any) -> LocalHook | DataParallelHook:
    """The hook ``train`` runs each step through."""
    return DataParallelHook(weights, optimizer) if data_parallel else LocalHook()
