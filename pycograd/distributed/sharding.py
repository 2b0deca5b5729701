"""Cutting a batch into one contiguous slice per rank.

Every rank draws the same global batch (same data, same shuffle key) and keeps rows
``[n * rank // world, n * (rank + 1) // world)``, so together the ranks cover each batch
exactly once and a run gives the same batches whatever the number of processes.
"""

from __future__ import annotations

import numpy as np

from pycograd.distributed import backend
from pycograd.distributed.errors import DistributedError


def bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """The rows ``[lo, hi)`` of a batch of ``n`` rows that ``rank`` keeps."""
    if n < world_size:
        raise DistributedError(f"a batch of {n} rows cannot be split over {world_size} ranks; "
                               f"use a batch of at least {world_size} rows")
    return n * rank // world_size, n * (rank + 1) // world_size


def shard(batch: tuple, rank: int | None = None, world_size: int | None = None) -> tuple:
    """This rank's slice of every array in ``batch`` (along axis 0). Example, with 2
    ranks: ``shard((X, y))`` on rank 1 is ``(X[n//2:], y[n//2:])``."""
    rank = backend.rank() if rank is None else rank
    world_size = backend.world_size() if world_size is None else world_size
    if world_size == 1:
        return tuple(batch)
    arrays = [np.asarray(a) for a in batch]
    lo, hi = bounds(len(arrays[0]), rank, world_size)
    return tuple(a[lo:hi] for a in arrays)
