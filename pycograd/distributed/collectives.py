"""The two collectives data parallelism needs, over pytrees of numpy arrays.

``all_reduce_mean`` averages gradients across ranks, ``broadcast`` copies one rank's weights
to all. Both first check that every rank passed the same tree (``signature.agree``), then
move all leaves in as few collectives as there are buffers (``packing``), each wrapped by
``group.guarded`` so a lost peer is named instead of hanging the run.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pycograd.core.pytree import tree_flatten, tree_unflatten
from pycograd.distributed import packing
from pycograd.distributed.group import guarded, require_group
from pycograd.distributed.signature import agree, describe


def _arrays(leaves: list) -> list[np.ndarray]:
    return [np.asarray(x) for x in leaves]


def all_reduce_mean(tree: Any) -> Any:
    """The elementwise mean of ``tree`` over all ranks, on every rank: a new tree of the same
    structure whose leaves are fresh arrays (``None`` subtrees stay ``None``).

    Leaves may be float16 / bfloat16 / float32 / float64 or complex64 / complex128 arrays
    or scalars; every rank must pass the same structure, shapes and dtypes, or every rank
    raises ``RankMismatchError`` before anything is reduced. Every rank gets bit-identical
    results. In a script under ``torchrun --nproc_per_node=2``::

        value, grads = weights.grad(loss, X_shard, y_shard)
        grads = distributed.all_reduce_mean(grads)   # the gradient of the whole batch
    """
    dist = require_group("all_reduce_mean")
    leaves, treedef = tree_flatten(tree)
    arrays = _arrays(leaves)
    world = dist.get_world_size()
    import torch

    with guarded("all_reduce_mean"):
        agree(dist, "all_reduce_mean", describe(treedef, arrays))
        packed = packing.pack_for_sum(arrays, leaves, "all_reduce_mean")
        for buf in packed.buffers.values():
            dist.all_reduce(torch.from_numpy(buf))
            np.divide(buf, world, out=buf)
    return tree_unflatten(treedef, packing.unpack(packed))


def _state_of(weights: Any) -> tuple[Any, str]:
    if callable(getattr(weights, "state_dict", None)) and callable(
            getattr(weights, "load_state_dict", None)):
        return dict(weights.state_dict()), "state_dict"
    if callable(getattr(weights, "trainable", None)) and callable(
            getattr(weights, "assign", None)):
        return dict(weights.trainable()), "assign"
    return weights, "tree"


def broadcast(weights: Any, src: int = 0) -> Any:
    """Every rank's ``weights`` become rank ``src``'s, so all ranks start alike.

    A container with ``state_dict()`` / ``load_state_dict()`` (``ParamDict``, optimizers)
    or ``trainable()`` / ``assign()`` is updated in place and returned; a plain pytree of
    arrays comes back as a new tree. Any non-object dtype travels (ints, strings, bools),
    all leaves in one collective. Example::

        weights = ParamDict(w=np.random.default_rng().standard_normal(3))  # differs by rank
        distributed.broadcast(weights)                                     # now rank 0's
    """
    dist = require_group("broadcast")
    tree, how = _state_of(weights)
    leaves, treedef = tree_flatten(tree)
    arrays = _arrays(leaves)
    import torch

    with guarded("broadcast"):
        agree(dist, f"broadcast from rank {src}", describe(treedef, arrays))
        packed = packing.pack_bytes(arrays, leaves, "broadcast")
        for buf in packed.buffers.values():
            dist.broadcast(torch.from_numpy(buf), src)
    new = tree_unflatten(treedef, packing.unpack(packed))
    if how == "state_dict":
        weights.load_state_dict(new)
        return weights
    if how == "assign":
        for name, value in new.items():
            weights.assign(name, value)
        return weights
    return new


def any_rank(flag: bool) -> bool:
    """Whether ``flag`` is true on at least one rank (so all ranks stop together)."""
    dist = require_group("any_rank")
    import torch

    t = torch.tensor([int(bool(flag))], dtype=torch.int64)
    with guarded("any_rank"):
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t[0])
