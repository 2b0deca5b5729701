"""Data-parallel training across processes and machines, on ``torch.distributed``.

Launch one process per worker with ``torchrun``; each calls ``init()`` (or just
``train(..., data_parallel=True)``), keeps its slice of every batch, and averages gradients
with the others, so all ranks hold identical weights at every step. gloo is the default
backend (CPU). torch is needed only when a group is used: ``import pycograd`` never imports
it, and ``rank()`` / ``world_size()`` answer 0 / 1 without it.

Modules, one job each: ``backend`` (the torch import; rank queries), ``group`` (init,
shutdown, failures naming the lost rank), ``liveness`` (which rank was lost),
``signature`` (same tree on every rank, checked before any reduction), ``packing`` (leaves
into flat buffers), ``collectives`` (``all_reduce_mean``, ``broadcast``), ``sharding``
(each rank's slice of a batch), ``training`` (the ``train`` hook), ``files`` (rank-0,
atomic writes).

Examples:
    >>> import numpy as np
    >>> from pycograd import distributed
    >>> distributed.rank(), distributed.world_size()     # no group: one process, rank 0
    (0, 1)
    >>> X = np.arange(10).reshape(5, 2)
    >>> [len(distributed.shard((X,), rank=r, world_size=2)[0]) for r in (0, 1)]
    [2, 3]

    In a script launched by ``torchrun --standalone --nproc_per_node=2 train.py``::

        distributed.init()
        grads = distributed.all_reduce_mean(grads)       # or: train(..., data_parallel=True)
"""

from pycograd.distributed.backend import is_active, is_main, launched, rank, world_size
from pycograd.distributed.collectives import all_reduce_mean, any_rank, broadcast
from pycograd.distributed.errors import (
    DistributedError,
    RankLostError,
    RankMismatchError,
    TorchMissingError,
)
from pycograd.distributed.group import Group, barrier, init, shutdown
from pycograd.distributed.sharding import shard

__all__ = [
    "init", "shutdown", "barrier", "Group", "all_reduce_mean", "broadcast", "any_rank",
    "shard", "rank", "world_size", "is_main", "is_active", "launched",
    "DistributedError", "RankLostError", "RankMismatchError", "TorchMissingError",
]
