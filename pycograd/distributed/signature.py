"""Checking that every rank passes the same pytree before any data moves.

A collective over trees of different shapes either deadlocks or mixes unrelated numbers, so
each collective first reduces a 62-bit hash of its tree's description (structure, keys,
shapes, dtypes, and the collective's name): one all-reduce of ``[h, -h]`` with MAX gives
every rank both the largest and the smallest hash, which agree exactly when all hashes do.
On a mismatch every rank sees it, so all of them gather the descriptions and raise the same
``RankMismatchError`` naming each rank's tree.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from pycograd.core.pytree import TreeDef
from pycograd.distributed.errors import RankMismatchError

_WINDOW = 160


def _leaf(a: Any) -> str:
    return f"{a.dtype}{list(a.shape)}"


def _node(td: TreeDef, leaves: Any) -> str:
    if td.kind is None:
        return _leaf(next(leaves))
    inner = [_node(c, leaves) for c in td.children]
    aux = td.aux[0] if isinstance(td.aux, tuple) else td.aux
    if td.kind is dict:
        return "{" + ", ".join(f"{k!r}: {v}" for k, v in zip(aux, inner)) + "}"
    if td.kind is type(None):
        return "None"
    label = "" if aux is None or not isinstance(aux, (str, int, tuple)) else repr(aux)
    return f"{td.kind.__qualname__}{label}(" + ", ".join(inner) + ")"


def describe(treedef: TreeDef, arrays: list[np.ndarray]) -> str:
    """The tree as text, e.g. ``{'w': float64[3, 2], 'b': None}``."""
    return _node(treedef, iter(arrays))


def fingerprint(what: str, text: str) -> int:
    """A 62-bit hash of the collective's name and its tree's description."""
    text = f"{what}\n{text}"
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 2


def _excerpt(text: str, at: int) -> str:
    lo = max(0, at - _WINDOW // 3)
    return ("..." if lo else "") + text[lo:lo + _WINDOW] + (
        "..." if lo + _WINDOW < len(text) else "")


def _gather_texts(dist: Any, torch: Any, text: str) -> list[str]:
    data = np.frombuffer(text.encode(), np.uint8)
    size = torch.tensor([data.size], dtype=torch.int64)
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    longest = max(int(s) for s in sizes)
    padded = torch.zeros(longest, dtype=torch.uint8)
    padded[:data.size] = torch.from_numpy(data.copy())
    out = [torch.zeros_like(padded) for _ in sizes]
    dist.all_gather(out, padded)
    return [bytes(o[:int(s)].numpy()).decode() for o, s in zip(out, sizes)]


_pair: list = []  # one reusable [h, -h] buffer, shared with torch


def agree(dist: Any, what: str, text: str, digest: int) -> None:
    """Return when every rank called ``what`` with a tree described by the same ``text``
    (``digest = fingerprint(what, text)``); otherwise raise ``RankMismatchError`` on every
    rank, naming each rank's tree."""
    import torch

    if not _pair:
        host = np.zeros(2, np.int64)
        _pair.extend((host, torch.from_numpy(host)))
    host, pair = _pair
    host[0], host[1] = digest, -digest
    dist.all_reduce(pair, op=dist.ReduceOp.MAX)
    if host[0] == -host[1]:
        return
    texts = _gather_texts(dist, torch, f"{what} of {text}")
    ref = texts[0]
    at = min(next((i for i, (a, b) in enumerate(zip(t, ref)) if a != b), min(len(t), len(ref)))
             for t in texts[1:] if t != ref)
    lines = [f"rank {r}: {_excerpt(t, at) if t != ref or r == 0 else '(as rank 0)'}"
             for r, t in enumerate(texts)]
    raise RankMismatchError(
        f"{what}: the ranks passed different pytrees (structure, shapes or dtypes), so no data "
        "moved:\n  " + "\n  ".join(lines) +
        "\nEvery rank must pass the same structure with the same shapes and dtypes (shard the "
        "batch, not the model).")
