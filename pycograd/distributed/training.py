"""What ``train`` does around each step's gradient, kept out of the loop: gradient
accumulation over micro-batches, and data parallelism.

Each optimizer step computes the loss and gradients of ``accumulate`` consecutive batches
and averages them (``accumulate=1``: one batch, untouched), so a step sees
``accumulate * batch_size`` rows for the memory of one batch.

Under data parallelism every rank first joins the group (``init``) and takes rank 0's
weights and optimizer state (``broadcast``). Each micro-batch it keeps its slice of the
global batch (``sharding``), its loss and gradients weighted by its share of the rows; the
micro-batches are summed on the rank, and only then are loss and gradients averaged across
ranks, in one ``all_reduce_mean`` (one flat buffer, one collective) per optimizer step. The
result is the gradient of all the step's rows, so every rank applies the same update to the
same weights. Accumulating is what makes data parallelism pay for a small model: the
exchange costs the same whatever the rows, so ``accumulate=k`` divides its cost per row by
``k``.

A callback's request to stop must reach every rank, so all stop after the same step. It
travels in the next step's exchange (one more leaf in the same buffer) instead of a
collective of its own after every step: a stop costs every rank one gradient computation
that is thrown away, and a step costs one collective, callbacks or not. The loop talks to
a hook; a single process gets ``LocalHook``, which only accumulates and stops at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from pycograd.core.errors import ArgumentError
from pycograd.core.pytree import tree_map
from pycograd.distributed.collectives import all_reduce_mean, broadcast
from pycograd.distributed.group import init
from pycograd.distributed.sharding import bounds

Compute = Callable[..., tuple[Any, Any]]


def _add_into(total: Any, part: Any) -> Any:
    """``total + part`` leaf by leaf, in place where ``total``'s leaf is a fresh array."""
    def add(t: Any, p: Any) -> Any:
        if isinstance(t, np.ndarray) and t.ndim:
            return np.add(t, p, out=t, casting="same_kind")
        return np.asarray(t) + np.asarray(p)

    return tree_map(add, total, part)


def _fresh(tree: Any) -> Any:
    """A copy whose array leaves may be written in place (gradients may alias weights)."""
    return tree_map(lambda x: np.array(x, copy=True), tree)


def _scaled(tree: Any, s: float) -> Any:
    return tree_map(lambda x: np.asarray(x) * np.asarray(s, np.asarray(x).dtype), tree)


def check_accumulate(accumulate: Any) -> int:
    """``accumulate`` as a positive int, or an error naming the value."""
    if isinstance(accumulate, bool) or not isinstance(accumulate, (int, np.integer)) or (
            accumulate < 1):
        raise ArgumentError(f"train: accumulate must be a positive int (micro-batches per "
                            f"optimizer step), got {accumulate!r}")
    return int(accumulate)


class LocalHook:
    """One process: accumulates micro-batches, reduces nothing."""

    is_main = True

    def shard(self, batch: tuple) -> tuple:
        return batch

    def weighted(self, value: Any, grads: Any) -> tuple[Any, Any]:
        """This process's micro-batch loss and gradients as its share of the global mean."""
        return value, grads

    def reduce(self, value: Any, grads: Any) -> tuple[Any, Any]:
        return value, grads

    def gradient(self, compute: Compute, stream: Iterator[tuple],
                 accumulate: int = 1) -> tuple[Any, Any]:
        """The mean loss and gradients of the next ``accumulate`` batches of ``stream``,
        averaged over the ranks (``compute(*batch)`` gives one batch's ``(value, grads)``)."""
        value, grads = self.weighted(*compute(*self.shard(next(stream))))
        if accumulate > 1:
            value, grads = _fresh((value, grads))
            for _ in range(accumulate - 1):
                value, grads = _add_into((value, grads),
                                         self.weighted(*compute(*self.shard(next(stream)))))
            value, grads = _scaled((value, grads), 1.0 / accumulate)
        return self.reduce(value, grads)

    stopped = False
    """Whether a rank asked to stop after the previous step (read after ``gradient``)."""

    def stop(self, requested: bool, last_step: bool) -> bool:
        """Whether to stop now, after a step whose callbacks returned ``requested``."""
        return requested


class DataParallelHook(LocalHook):
    """Data parallel over the running process group (started by ``init`` if needed)."""

    def __init__(self, weights: Any, optimizer: Any):
        group = init()
        self.rank, self.world_size = group.rank, group.world_size
        self.is_main = self.rank == 0
        self.scale = 1.0
        self.first = True
        self.pending = False
        self.stopped = False
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

    def weighted(self, value: Any, grads: Any) -> tuple[Any, Any]:
        if self.scale == 1.0:
            return value, grads
        return _scaled((value, grads), self.scale)

    def reduce(self, value: Any, grads: Any) -> tuple[float, Any]:
        if self.world_size == 1:  # nothing to exchange
            self.stopped = self.pending
            return float(value), grads
        # The gradients mirror the weights, identical on every rank since the broadcast, so
        # their tree is checked at the first step only: one collective per step after it,
        # carrying the loss, the gradients and the previous step's stop requests.
        value = np.asarray(value)
        flag = np.asarray(float(self.pending), value.dtype)
        value, grads, flag = all_reduce_mean((value, grads, flag), check=self.first)
        self.first = False
        self.stopped = bool(flag > 0)
        return float(value), grads

    def stop(self, requested: bool, last_step: bool) -> bool:
        if last_step:  # every rank ends here anyway
            return requested
        self.pending = requested
        return False


def hook(data_parallel: bool, weights: Any, optimizer: Any) -> LocalHook | DataParallelHook:
    """The hook ``train`` runs each step through."""
    return DataParallelHook(weights, optimizer) if data_parallel else LocalHook()
