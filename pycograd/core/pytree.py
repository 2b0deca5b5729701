"""Pytrees: nested tuples, lists, dicts, namedtuples and ``None`` whose leaves are arrays.

Transforms flatten their arguments to a list of leaves, work on the leaves, and rebuild
results of the same structure, so gradients mirror the arguments they belong to. Other
containers join with ``register_pytree_node``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from pycograd.core.errors import ArgumentError


class TreeDef(NamedTuple):
    """Structure of a pytree: ``kind`` is None for a leaf, else the node's type."""

    kind: type | None
    aux: Any
    children: tuple

    @property
    def num_leaves(self) -> int:
        if self.kind is None:
            return 1
        return sum(c.num_leaves for c in self.children)


LEAF = TreeDef(None, None, ())


class DictKeys(tuple):
    """A dict node's keys, sorted (as JAX sorts them), so that ``{"a": 1, "b": 2}`` and
    ``{"b": 20, "a": 10}`` have the same structure and their leaves pair up by key.
    ``order`` keeps the dict's own key order, so an unflattened dict reads like the one
    flattened; equality and hashing ignore it."""

    order: tuple

    def __new__(cls, keys: Any) -> DictKeys:
        keys = tuple(keys)
        try:
            ordered = sorted(keys)
        except TypeError:
            ordered = sorted(keys, key=lambda k: (type(k).__name__, repr(k)))
        new = super().__new__(cls, ordered)
        new.order = keys
        return new

    def missing_extra(self, other: tuple) -> tuple[list, list]:
        """The keys of ``self`` not in ``other`` and those of ``other`` not in ``self``."""
        mine, theirs = set(self), set(other)
        return [k for k in self if k not in theirs], [k for k in other if k not in mine]


def _flatten_dict(d: dict) -> tuple[tuple, DictKeys]:
    keys = DictKeys(d)
    return tuple(d[k] for k in keys), keys


def _unflatten_dict(keys: DictKeys, children: list) -> dict:
    by_key = dict(zip(keys, children))
    return {k: by_key[k] for k in keys.order}


_NODES: dict[type, tuple[Callable, Callable]] = {
    tuple: (lambda t: (t, None), lambda _, cs: tuple(cs)),
    list: (lambda t: (t, None), lambda _, cs: list(cs)),
    dict: (_flatten_dict, _unflatten_dict),
    type(None): (lambda _: ((), None), lambda _, cs: None),
}


def register_pytree_node(cls: type, flatten: Callable[[Any], tuple[tuple, Any]],
                         unflatten: Callable[[Any, list], Any]) -> None:
    """Make ``cls`` a pytree node: ``flatten(x) -> (children, aux)``,
    ``unflatten(aux, children) -> x``.

    Examples:
        >>> import numpy as np
        >>> from pycograd import grad, register_pytree_node
        >>> class Linear:
        ...     def __init__(self, w, b):
        ...         self.w, self.b = w, b
        >>> register_pytree_node(Linear, lambda m: ((m.w, m.b), None),
        ...                      lambda aux, children: Linear(*children))
        >>> g = grad(lambda m, x: np.sum(x @ m.w + m.b), 0)(Linear(np.ones((2, 3)), np.zeros(3)),
        ...                                                  np.ones(2))
        >>> type(g).__name__, g.b.tolist()
        ('Linear', [1.0, 1.0, 1.0])
    """
    _NODES[cls] = (flatten, unflatten)


def _node(x: Any) -> tuple[Callable, Callable] | None:
    rules = _NODES.get(type(x))
    if rules is None and isinstance(x, tuple) and hasattr(x, "_fields"):
        cls = type(x)
        return (lambda t: (tuple(t), None), lambda _, cs: cls(*cs))
    return rules


def tree_flatten(tree: Any) -> tuple[list, TreeDef]:
    """The leaves of ``tree`` in order, and its structure. A dict's leaves come in sorted-key
    order (as in JAX), so dicts with the same keys in any order pair up by key; rebuilding
    gives the dict back in its own key order.

    Examples:
        >>> import numpy as np
        >>> from pycograd import tree_flatten, tree_unflatten
        >>> leaves, treedef = tree_flatten({"b": 2.0, "a": (1.0, [3.0])})
        >>> leaves                                               # dicts by sorted key
        [1.0, 3.0, 2.0]
        >>> tree_unflatten(treedef, [10.0, 30.0, 20.0])
        {'b': 20.0, 'a': (10.0, [30.0])}
    """
    leaves: list = []
    return leaves, _flatten(tree, leaves)


def _flatten(x: Any, leaves: list) -> TreeDef:
    # Module-level recursion, not a nested closure: a self-referencing closure is a reference
    # cycle that would keep the leaves (tape nodes included) alive until the cyclic GC runs.
    rules = _node(x)
    if rules is None:
        leaves.append(x)
        return LEAF
    children, aux = rules[0](x)
    return TreeDef(type(x), (aux, rules[1]), tuple(_flatten(c, leaves) for c in children))


def tree_unflatten(treedef: TreeDef, leaves: list) -> Any:
    """Rebuild a tree of structure ``treedef`` from ``leaves``.

    Examples:
        >>> from pycograd import tree_flatten, tree_unflatten
        >>> leaves, treedef = tree_flatten([1.0, (2.0, 3.0)])
        >>> tree_unflatten(treedef, [x * 10 for x in leaves])
        [10.0, (20.0, 30.0)]
    """
    return _unflatten(treedef, iter(leaves))


def _unflatten(td: TreeDef, it: Iterator) -> Any:
    if td.kind is None:
        return next(it)
    aux, unflatten = td.aux
    return unflatten(aux, [_unflatten(c, it) for c in td.children])


def tree_paths(tree: Any) -> list[str]:
    """One name per leaf, in ``tree_flatten``'s order: ``$`` for the root, then a
    ``[key]`` per level (dict keys by repr, other nodes by position), e.g. ``$['enc'][0]``.
    Optimizer state and checkpoints of pytrees are keyed by these, so they follow keys,
    not positions."""
    out: list[str] = []
    _paths(tree, "$", out)
    return out


def _paths(x: Any, prefix: str, out: list) -> None:
    rules = _node(x)
    if rules is None:
        out.append(prefix)
        return
    children, aux = rules[0](x)
    keys = aux if isinstance(aux, DictKeys) else range(len(children))
    for k, c in zip(keys, children):
        _paths(c, f"{prefix}[{k!r}]", out)


def tree_leaves(tree: Any) -> list:
    return tree_flatten(tree)[0]


def tree_map(f: Callable, tree: Any, *rest: Any) -> Any:
    """Apply ``f`` leafwise over ``tree`` and trees of the same structure in ``rest``.

    Examples:
        >>> import numpy as np
        >>> from pycograd import tree_map
        >>> params = {"w": np.ones(2), "b": 1.0}
        >>> grads = {"w": np.array([0.5, 0.5]), "b": 2.0}
        >>> new = tree_map(lambda p, g: p - 0.1 * g, params, grads)      # one SGD step
        >>> new["w"].tolist(), round(new["b"], 6)
        ([0.95, 0.95], 0.8)
    """
    leaves, td = tree_flatten(tree)
    others = [tree_flatten(r) for r in rest]
    for _, r_td in others:
        if _shape(r_td) != _shape(td):
            raise ArgumentError(f"tree_map: structures differ: {_shape(td)} vs {_shape(r_td)}"
                                f"{key_mismatch(td, r_td)}")
    return tree_unflatten(td, [f(*xs) for xs in zip(leaves, *(r for r, _ in others))])


def _shape(td: TreeDef) -> Any:
    """A comparable description of a structure (types and keys, not functions)."""
    if td.kind is None:
        return "*"
    return (td.kind.__name__, td.aux[0], tuple(_shape(c) for c in td.children))


def key_mismatch(td: TreeDef, other: TreeDef, path: str = "") -> str:
    """``"; at path: missing keys [...], extra keys [...]"`` for the first dict whose keys
    differ between two structures ("" if none does), to say what to fix."""
    if td.kind is None or other.kind is None or td.kind is not other.kind:
        return ""
    keys, other_keys = td.aux[0], other.aux[0]
    if isinstance(keys, DictKeys) and keys != other_keys:
        missing, extra = keys.missing_extra(other_keys)
        return f"; at {path or 'the top'}: missing keys {missing}, extra keys {extra}"
    names = keys if isinstance(keys, DictKeys) else range(len(td.children))
    for k, a, b in zip(names, td.children, other.children):
        found = key_mismatch(a, b, f"{path}[{k!r}]")
        if found:
            return found
    return ""


def tree_structure(tree: Any) -> Any:
    return _shape(tree_flatten(tree)[1])
