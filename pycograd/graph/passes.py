"""Graph passes and ``optimize``: each pass is a function ``Graph -> Graph`` that returns a
rewritten copy and leaves its argument alone.

- ``dce``: drop nodes no output depends on.
- ``cse``: one node per (primitive, arguments, params), one constant per distinct array;
  on a gradient graph this merges the backward's recomputations with the forward's values
  (an ``exp(x)`` the VJP would recompute is the forward's ``exp(x)``).
- ``fold_constants``: evaluate nodes whose inputs are all constants.
- ``simplify``: ``x*1``, ``x/1``, ``x+0``, ``x-0``, multiplication by broadcast ones,
  ``x**1``, ``x**2 -> x*x``, ``-(-x)``, a transpose of a transpose, a reshape to the same
  shape or of a reshape; a rewrite applies only when the result keeps ``x``'s shape and
  dtype, so values never change.
- ``reorder_matmul_chains``: a chain ``A @ B @ C ...`` of 2-D matrices whose intermediate
  products are used once is re-parenthesized to the fewest flops (the classic dynamic
  program).

``optimize(graph, passes=None)`` runs them (or the given ones) until nothing changes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pycograd.core.primitive import REGISTRY
from pycograd.core.trace import apply_impl
from pycograd.graph.ir import Graph, Node, Value, copy_graph, next_id, no_gc

Pass = Callable[[Graph], Graph]
_FOLD_LIMIT = 1 << 20  # elements: larger constants are left to be computed at run time


def _pass(rewrite: Callable[[Graph], Graph]) -> Pass:
    """A pass from an in-place rewrite: the pass works on a copy; ``optimize`` copies once
    and calls the rewrites (``.inplace``) directly."""
    def run(graph: Graph) -> Graph:
        with no_gc():
            return rewrite(copy_graph(graph))

    functools.update_wrapper(run, rewrite)
    run.inplace = rewrite  # type: ignore[attr-defined]
    return run


def _substitute(graph: Graph, subst: dict[int, Value]) -> None:
    """Replace uses of the values in ``subst`` (by id), following chains."""
    if not subst:
        return

    def get(v: Any) -> Any:
        while isinstance(v, Value):
            w = subst.get(v.id)
            if w is None or w is v:  # a folded constant keeps its node's id
                break
            v = w
        return v

    for n in graph.nodes:
        n.args = [get(a) for a in n.args]
    graph.outputs = [get(o) for o in graph.outputs]


def _prune_consts(graph: Graph) -> None:
    used = {a.id for n in graph.nodes for a in n.inputs} | {o.id for o in graph.outputs}
    graph.consts = [c for c in graph.consts if c.id in used]


@_pass
def dce(g: Graph) -> Graph:
    """Remove the nodes that no output depends on (and unused constants)."""
    live = {o.id for o in g.outputs}
    keep = []
    for n in reversed(g.nodes):
        if n.out.id in live:
            keep.append(n)
            live.update(a.id for a in n.inputs)
    g.nodes = keep[::-1]
    _prune_consts(g)
    return g


def _freeze(x: Any) -> Any:
    """A hashable key for a param or literal (arrays by content); raises TypeError for
    what has none."""
    if isinstance(x, Value):
        return ("%", x.id)
    if isinstance(x, np.ndarray):
        return ("arr", x.dtype.str, x.shape, x.tobytes())
    if isinstance(x, (tuple, list)):
        return (type(x).__name__, tuple(_freeze(y) for y in x))
    if isinstance(x, dict):
        return ("dict", tuple(sorted((k, _freeze(v)) for k, v in x.items())))
    if isinstance(x, slice):
        return ("slice", _freeze(x.start), _freeze(x.stop), _freeze(x.step))
    if isinstance(x, (float, np.floating)) and x != x:
        return ("nan", type(x).__name__)
    hash(x)
    return (type(x).__name__, x)


@_pass
def cse(g: Graph) -> Graph:
    """Merge equal constants, then nodes with the same primitive, arguments and params."""
    subst: dict[int, Value] = {}
    consts: dict[Any, Value] = {}
    kept = []
    for c in g.consts:
        key = _freeze(np.asarray(c.const))
        if key in consts:
            subst[c.id] = consts[key]
        else:
            consts[key] = c
            kept.append(c)
    g.consts = kept
    _substitute(g, subst)
    seen: dict[Any, Value] = {}
    nodes = []
    for n in g.nodes:
        n.args = [subst.get(a.id, a) if isinstance(a, Value) else a for a in n.args]
        try:  # Values are keys by identity (each is one object in the graph)
            key = (n.prim.name, tuple(a if a.__class__ is Value else _freeze(a) for a in n.args),
                   _freeze(n.params) if n.params else ())
        except TypeError:
            nodes.append(n)
            continue
        hit = seen.get(key)
        if hit is not None:
            subst[n.out.id] = hit
            continue
        seen[key] = n.out
        nodes.append(n)
    g.nodes = nodes
    _substitute(g, subst)
    return g


@_pass
def fold_constants(g: Graph) -> Graph:
    """Evaluate each node whose arguments are all constants (up to a size limit)."""
    nodes = []
    subst: dict[int, Value] = {}
    for n in g.nodes:
        n.args = [subst.get(a.id, a) if isinstance(a, Value) else a for a in n.args]
        if (n.prim.calls_user_code or not all(a.is_const for a in n.inputs)
                or not isinstance(n.out.size, int) or n.out.size > _FOLD_LIMIT):
            nodes.append(n)
            continue
        args = [a.const if isinstance(a, Value) else a for a in n.args]
        value = np.asarray(apply_impl(n.prim, args, n.params))
        c = Value(n.out.id, n.out.shape, n.out.dtype, const=value.astype(n.out.dtype))
        g.consts.append(c)
        subst[n.out.id] = c
    g.nodes = nodes
    _substitute(g, subst)
    _prune_consts(g)
    return g


def _const_equal(v: Any, x: float) -> bool:
    """Whether ``v`` (a constant Value or a literal) is ``x`` everywhere."""
    if isinstance(v, Value):
        if not v.is_const:
            return False
        return bool(np.all(v.const == x))
    if isinstance(v, (int, float, complex, np.number)) and not isinstance(v, bool):
        return v == x
    return False


def _same_type(x: Any, out: Value) -> bool:
    return isinstance(x, Value) and x.shape == out.shape and x.dtype == out.dtype


def _compose_axes(inner: Any, outer: Any, ndim: int) -> tuple:
    inner = tuple(range(ndim))[::-1] if inner is None else tuple(inner)
    outer = tuple(range(ndim))[::-1] if outer is None else tuple(outer)
    return tuple(inner[i] for i in outer)


def _simplified(n: Node, counter: list[int]) -> Any:
    """What ``n`` simplifies to: an existing Value, a new Node, or None."""
    name, args, out = n.prim.name, n.args, n.out
    if len(args) == 2:
        a, b = args
        if name == "multiply":
            for x, c in ((a, b), (b, a)):
                if _const_equal(c, 1) and _same_type(x, out):
                    return x
        if name == "divide" and _const_equal(b, 1) and _same_type(a, out):
            return a
        if name in ("add", "subtract") and _const_equal(b, 0) and _same_type(a, out):
            return a
        if name == "add" and _const_equal(a, 0) and _same_type(b, out):
            return b
        if name == "power" and _const_equal(b, 1) and _same_type(a, out):
            return a
        if name == "power" and _const_equal(b, 2) and _same_type(a, out) and \
                a.dtype.kind in "fc":
            return Node(REGISTRY["multiply"], [a, a], {}, out)
    if len(args) == 1 and isinstance(args[0], Value):
        x = args[0]
        p = x.producer
        if name == "negative" and p is not None and p.prim.name == "negative" and \
                _same_type(p.args[0], out):
            return p.args[0]
        if name == "transpose":
            if p is not None and p.prim.name == "transpose":
                axes = _compose_axes(p.params.get("axes"), n.params.get("axes"), out.ndim)
                src = p.args[0]
                if axes == tuple(range(out.ndim)):
                    return src if _same_type(src, out) else None
                return Node(n.prim, [src], {**n.params, "axes": axes}, out)
            axes = n.params.get("axes")
            if axes is not None and tuple(axes) == tuple(range(out.ndim)) and \
                    _same_type(x, out):
                return x
        if name == "reshape":
            if _same_type(x, out):
                return x
            if p is not None and p.prim.name == "reshape":
                src = p.args[0]
                return src if _same_type(src, out) else Node(n.prim, [src], n.params, out)
    return None


@_pass
def simplify(g: Graph) -> Graph:
    """Algebraic identities that leave every value unchanged (see the module docstring)."""
    subst: dict[int, Value] = {}
    nodes = []
    counter = [next_id(g)]
    for n in g.nodes:
        n.args = [subst.get(a.id, a) if isinstance(a, Value) else a for a in n.args]
        r = _simplified(n, counter)
        if isinstance(r, Value):
            subst[n.out.id] = r
        elif isinstance(r, Node):
            nodes.append(r)
        else:
            nodes.append(n)
    g.nodes = nodes
    _substitute(g, subst)
    _prune_consts(g)
    return g


def _matmul2d(n: Node) -> bool:
    return n.prim.name == "matmul" and len(n.args) == 2 and all(
        isinstance(a, Value) and a.ndim == 2 and all(isinstance(d, int) for d in a.shape)
        for a in n.args)


def _chain_order(dims: list[int]) -> list[list[int]]:
    """``split[i][j]``: where the cheapest product of matrices ``i..j`` splits."""
    k = len(dims) - 1
    cost = [[0] * k for _ in range(k)]
    split = [[0] * k for _ in range(k)]
    for length in range(1, k):
        for i in range(k - length):
            j = i + length
            best = None
            for s in range(i, j):
                c = cost[i][s] + cost[s + 1][j] + dims[i] * dims[s + 1] * dims[j + 1]
                if best is None or c < best:
                    best, split[i][j] = c, s
            cost[i][j] = best
    return split


def _build_chain(n: Node, mats: list[Value], dims: list[int], split: list[list[int]], i: int,
                 j: int, out: Value | None, nodes: list[Node], counter: list[int]) -> Value:
    """Emit the product of ``mats[i..j]`` as ``split`` parenthesizes it; returns its value."""
    if i == j:
        return mats[i]
    s = split[i][j]
    left = _build_chain(n, mats, dims, split, i, s, None, nodes, counter)
    right = _build_chain(n, mats, dims, split, s + 1, j, None, nodes, counter)
    if out is None:
        out = Value(counter[0], (dims[i], dims[j + 1]), n.out.dtype)
        counter[0] += 1
    nodes.append(Node(n.prim, [left, right], n.params, out))
    return out


@_pass
def reorder_matmul_chains(g: Graph) -> Graph:
    """Re-parenthesize chains of 2-D matmuls (intermediates used once) to the fewest
    flops."""
    uses: dict[int, int] = {}
    for n in g.nodes:
        for a in n.inputs:
            uses[a.id] = uses.get(a.id, 0) + 1
    for o in g.outputs:
        uses[o.id] = uses.get(o.id, 0) + 1
    inner: set[int] = set()

    def leaves(v: Value) -> list[Value]:
        p = v.producer
        if p is not None and _matmul2d(p) and uses.get(v.id, 0) == 1 and v.dtype == \
                p.args[0].dtype == p.args[1].dtype:
            inner.add(v.id)
            return leaves(p.args[0]) + leaves(p.args[1])
        return [v]

    counter = [next_id(g)]
    replaced: dict[int, list[Node]] = {}
    for n in reversed(g.nodes):
        if not _matmul2d(n) or n.out.id in inner:
            continue
        mats = leaves(n.args[0]) + leaves(n.args[1])
        if len(mats) < 3:
            continue
        dims = [mats[0].shape[0]] + [m.shape[1] for m in mats]
        new_nodes: list[Node] = []
        _build_chain(n, mats, dims, _chain_order(dims), 0, len(mats) - 1, n.out, new_nodes,
                     counter)
        replaced[id(n)] = new_nodes
    if not replaced:
        return g
    nodes = []
    for n in g.nodes:
        if n.out.id in inner:
            continue
        nodes.extend(replaced.get(id(n), [n]))
    g.nodes = nodes
    return dce.inplace(g)


DEFAULT_PASSES: tuple[Pass, ...] = (fold_constants, simplify, cse, reorder_matmul_chains, dce)


def _signature(g: Graph) -> tuple:
    return (len(g.nodes), len(g.consts),
            tuple((n.prim.name, tuple(a.id if isinstance(a, Value) else None for a in n.args))
                  for n in g.nodes), tuple(o.id for o in g.outputs))


def optimize(graph: Graph, passes: Sequence[Pass] | None = None, max_rounds: int = 20) -> Graph:
    """Run ``passes`` (default: constant folding, algebraic simplification, CSE,
    matmul-chain ordering, DCE) over ``graph`` until it stops changing; returns a new
    graph that computes the same values (to rounding, 1e-12 relative in float64).

    Examples:
        >>> import numpy as np
        >>> from pycograd import capture, grad_graph, optimize
        >>> gg = grad_graph(capture(lambda x: np.sum(np.exp(x) * 1.0), np.ones(3)))
        >>> opt = optimize(gg)
        >>> len(opt.nodes) < len(gg.nodes)     # x * 1.0 folded, exp shared with its VJP
        True
        >>> bool(np.allclose(opt(np.zeros(3))[1][0], gg(np.zeros(3))[1][0]))
        True
    """
    passes = DEFAULT_PASSES if passes is None else tuple(passes)
    with no_gc():
        g = copy_graph(graph)
        for _ in range(max_rounds):
            before = _signature(g)
            for p in passes:
                inplace = getattr(p, "inplace", None)
                g = inplace(g) if inplace is not None else p(g)
            if _signature(g) == before:
                break
    return g
