"""The two collectives data parallelism needs, over pytrees of numpy arrays.

``all_reduce_mean`` averages gradients across ranks, ``broadcast`` copies one rank's weights
to all. Both first check that every rank passed the same tree (``signature.agree``), then
move all leaves in as few collectives as there are buffers (``packing``), each wrapped by
``group.guarded`` so a lost peer is named instead of hanging the run. A small buffer is
summed by gathering every rank's copy (one exchange, what a small model waits on), a large
one by the ring all-reduce.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pycograd.core.pytree import tree_flatten, tree_unflatten
from pycograd.distributed import packing
from pycograd.distributed.group import guarded, require_group
from pycograd.distributed.signature import agree, describe, fingerprint

_MAX_PLANS = 64


@dataclass
class _Plan:
    """A tree's description, its fingerprint and (after the ranks agree) its layout."""

    text: str
    digest: int
    layout: packing.Layout | None = None


_plans: dict[tuple, _Plan] = {}


def _plan(what: str, treedef: Any, leaves: list, arrays: list[np.ndarray]) -> _Plan:
    """The plan for this tree, cached by structure, dtypes, shapes and leaf sharing, so a
    training loop describes and lays out its gradients once."""
    shared = packing.sharing(leaves)
    key = (what, treedef, shared, tuple((a.dtype, a.shape) for a in arrays))
    try:
        plan = _plans.get(key)
    except TypeError:  # a registered node with an unhashable aux: no caching
        key, plan = None, None
    if plan is None:
        text = describe(treedef, arrays)
        plan = _Plan(text, fingerprint(what, text))
        if key is not None:
            if len(_plans) >= _MAX_PLANS:
                _plans.clear()
            _plans[key] = plan
    return plan


def _moved(what: str, tree: Any, layout_of: Any,
           check: bool = True) -> tuple[Any, packing.Packed, Any]:
    """Check the ranks agree on ``tree``, then pack it; returns (dist, packed, treedef).
    Without ``check``, a tree whose plan was never agreed on is still checked."""
    dist = require_group(what)
    leaves, treedef = tree_flatten(tree)
    arrays = [np.asarray(x) for x in leaves]
    plan = _plan(what, treedef, leaves, arrays)
    if check or plan.layout is None:
        agree(dist, what, plan.text, plan.digest)
    if plan.layout is None:
        plan.layout = layout_of(arrays, packing.sharing(leaves), what)
    return dist, packing.pack(plan.layout, arrays), treedef


def all_reduce_mean(tree: Any, check: bool = True) -> Any:
    """The elementwise mean of ``tree`` over all ranks, on every rank: a new tree of the same
    structure whose leaves are fresh arrays (``None`` subtrees stay ``None``).

    Leaves may be float16 / bfloat16 / float32 / float64 or complex64 / complex128 arrays
    or scalars; every rank must pass the same structure, shapes and dtypes, or every rank
    raises ``RankMismatchError`` before anything is reduced. Every rank gets bit-identical
    results. In a script under ``torchrun --nproc_per_node=2``::

        value, grads = weights.grad(loss, X_shard, y_shard)
        grads = distributed.all_reduce_mean(grads)   # the gradient of the whole batch

    The check costs one small collective. ``check=False`` skips it for a tree this process
    has already had agreed (a new tree is still checked): for loops where every rank is
    known to pass the same tree each time, as ``train`` does after its first step.
    """
    with guarded("all_reduce_mean"):
        dist, packed, treedef = _moved("all_reduce_mean", tree, packing.sum_layout, check)
        world = dist.get_world_size()
        for buf in packed.buffers.values():
            _sum_into(dist, buf, world)
            np.divide(buf, world, out=buf)
    return tree_unflatten(treedef, packing.unpack(packed))


GATHER_BYTES = 1 << 20
"""Buffers whose copies from all ranks fit in this many bytes are summed by gathering
them: one exchange instead of the ring all-reduce's two phases, which is what a small
model's step waits on; larger buffers take the ring, whose traffic does not grow with the
ranks."""


def _sum_into(dist: Any, buf: np.ndarray, world: int) -> None:
    """``buf`` becomes the sum of every rank's ``buf``, bit-identical on every rank (a
    gathered sum adds the ranks' rows in rank order everywhere)."""
    import torch

    if buf.nbytes * world > GATHER_BYTES:
        dist.all_reduce(torch.from_numpy(buf))
        return
    rows = np.empty((world, buf.size), buf.dtype)
    dist.all_gather_into_tensor(torch.from_numpy(rows.reshape(-1)), torch.from_numpy(buf))
    np.sum(rows, axis=0, out=buf)


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
    tree, how = _state_of(weights)
    import torch

    what = f"broadcast from rank {src}"
    with guarded(what):
        dist, packed, treedef = _moved(what, tree, packing.bytes_layout)
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
