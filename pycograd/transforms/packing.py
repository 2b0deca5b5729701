"""Pack a pytree-to-pytree function into a function of leaves returning ONE array.

Function-carrying primitives (checkpoint, custom rules) then produce a single traced value
like every other primitive; the outputs are recovered by slicing it, which is
differentiable, so the tape needs no multi-output nodes. A single output is passed
through without a copy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from pycograd.core.errors import ArgumentError, ShapeError
from pycograd.core.pytree import TreeDef, _node, tree_flatten, tree_structure, tree_unflatten


class OutputSpec:
    """Structure, shapes and dtypes of a packed function's outputs, filled on first call."""

    __slots__ = ("tree", "shapes", "dtypes")

    def __init__(self) -> None:
        self.tree: TreeDef | None = None

    def record(self, tree: TreeDef, leaves: list) -> None:
        if not leaves:
            raise ArgumentError("a checkpointed or custom-rule function must return an array")
        shapes = [np.shape(x) for x in leaves]
        if self.tree is not None and shapes != self.shapes:
            raise ShapeError(f"function outputs changed shape between calls: {self.shapes} "
                             f"-> {shapes}; checkpointed functions must be deterministic")
        self.tree, self.shapes = tree, shapes
        self.dtypes = [np.result_type(x) for x in leaves]


def pack(leaves: list) -> Any:
    """One array of all ``leaves``. A Python number (``math.sin`` of an untraced value, in a
    primitive's impl) becomes a numpy scalar: every primitive output has a dtype."""
    if len(leaves) == 1:
        x = leaves[0]
        return x if hasattr(x, "dtype") else np.asarray(x)[()]
    return np.concatenate([np.ravel(x) for x in leaves])


def unpack(flat: Any, spec: OutputSpec) -> Any:
    if len(spec.shapes) == 1:
        return tree_unflatten(spec.tree, [flat])
    leaves, start = [], 0
    for shape, dtype in zip(spec.shapes, spec.dtypes):
        n = math.prod(shape)
        x = np.reshape(flat[start:start + n], shape)
        leaves.append(x if np.result_type(x) == dtype else x.astype(dtype))
        start += n
    return tree_unflatten(spec.tree, leaves)


def packed(f: Callable, in_tree: TreeDef, spec: OutputSpec) -> Callable:
    """``f`` as a function of the flat leaves of its arguments, returning one array."""
    def flat_f(*leaves: Any) -> Any:
        out_leaves, out_tree = tree_flatten(f(*tree_unflatten(in_tree, list(leaves))))
        spec.record(out_tree, out_leaves)
        return pack(out_leaves)
    return flat_f


def leaves_like(td: TreeDef, t: Any, where: str, what: str) -> list[tuple[Any, str]]:
    """The leaves of ``t`` (a tangent, a cotangent) for a value of structure ``td``, each
    with its position for messages: ``t`` mirrors the structure, except that ``None``
    stands for zeros of a whole subtree."""
    out: list = []
    _leaves_like(td, t, where, what, out)
    return out


def _leaves_like(td: TreeDef, t: Any, where: str, what: str, out: list) -> None:
    if td.kind is None:
        out.append((t, where))
        return
    if t is None:
        out.extend([(None, where)] * td.num_leaves)
        return
    rules = _node(t)
    children, aux = rules[0](t) if rules is not None else ((), None)
    if rules is None or type(t) is not td.kind or aux != td.aux[0] or \
            len(children) != len(td.children):
        value = tree_structure(tree_unflatten(td, [0] * td.num_leaves))
        raise ArgumentError(f"{what} of {where} is {type(t).__name__} {tree_structure(t)}, but "
                            f"the value has structure {value}; mirror the value's structure "
                            "(None for zeros)")
    keys = td.aux[0] if td.kind is dict else range(len(children))
    for k, c_td, c in zip(keys, td.children, children):
        _leaves_like(c_td, c, f"{where}[{k!r}]", what, out)
