"""The straight-line numpy program of a graph, which ``jit`` runs.

``compile_graph(graph)`` lowers the graph to Python source with one statement per step,
calling numpy directly (no ``bind``, no tracer, no tape), and compiles it once. Three
things make the program cheaper than the same numpy written out by hand:

- **Buffer reuse.** A liveness analysis done at compile time gives every array made by a
  ufunc, a matmul, a reduction or a fused step (a fresh array nothing else points into) a
  buffer: an elementwise step may write over an operand that dies at that very step (in
  place); otherwise it takes a buffer freed by an earlier value of the same shape and
  dtype, or a scratch buffer allocated once and kept between calls (one set per
  concurrent call). Values that may be views (reshape, transpose, indexing ...) keep every
  array they may alias alive, and inputs and constants are never written.
- **Recycled outputs.** An output made by such a step is written into an array of an
  earlier call that nothing references any more (checked by reference count, so a view
  or any other reference to an old result keeps it untouched), else into a new one: a
  training loop that drops last step's gradients allocates (and page-faults) nothing.
- **Fusion.** The max/min VJP ``g * (x > y) + (g * 0.5) * (x == y)`` (which splits ties)
  runs as one masked multiply, adding the tie term only when a tie exists; a
  ``broadcast_to`` feeding an elementwise ufunc of its own shape is left to the ufunc's
  broadcasting; reductions call ``ufunc.reduce`` with ``out=``. Each rewrite computes
  the same floating-point operations as the graph, so results equal ``eval_graph``'s.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from pycograd.graph.ir import Graph, Value

_REDUCE: dict[str, np.ufunc] = {"sum": np.add, "max": np.maximum, "min": np.minimum,
                                "prod": np.multiply}
"""Reductions that run as ``ufunc.reduce(x, axis=, keepdims=, out=)`` (what ``np.sum`` &c.
call)."""

_FRESH = frozenset(("sum", "max", "min", "prod", "all", "any", "astype"))
"""Primitives (besides ufuncs) whose result is always a new array, never a view."""

ELEMENTWISE, MATMUL, REDUCE, FUSED, CALL = "elementwise", "matmul", "reduce", "fused", "call"


def _balanced_grad(g: Any, x: Any, y: Any, half: Any, out: Any = None) -> Any:
    """``g * (x > y) + (g * half) * (x == y)``, the max/min VJP of ``ops.elementwise``,
    with the tie term only computed (and added, which is then exact) when a tie exists.
    Reads every operand before writing ``out``, so ``out`` may be one of them."""
    ties = np.equal(x, y)
    if ties.any():
        tie_term = np.multiply(np.multiply(g, half), ties)
        r = np.multiply(g, np.greater(x, y), out=out)
        return np.add(r, tie_term, out=r)
    return np.multiply(g, np.greater(x, y), out=out)


class _Step:
    """One statement of the program: ``out = fn(*args, **params)``."""

    __slots__ = ("name", "fn", "args", "params", "out", "kind")

    def __init__(self, name: str, fn: Callable, args: list, params: dict, out: Value,
                 kind: str):
        self.name, self.fn, self.args, self.params, self.out, self.kind = \
            name, fn, args, params, out, kind

    @property
    def inputs(self) -> list[Value]:
        return [a for a in self.args if isinstance(a, Value)]

    @property
    def fresh(self) -> bool:
        """Whether the result is always a new array (never a view of an operand)."""
        return self.kind != CALL or self.name in _FRESH


def _kind(node: Any) -> str:
    impl, name = node.prim.impl, node.prim.name
    if isinstance(impl, np.ufunc) and not node.params:
        return MATMUL if impl is np.matmul else ELEMENTWISE
    if name in _REDUCE and set(node.params) == {"axis", "keepdims"} and \
            node.inputs and node.inputs[0].ndim >= 1:
        return REDUCE
    return CALL


def _steps(graph: Graph) -> list[_Step]:
    """The graph's nodes as program steps, fused (see the module docstring)."""
    steps = []
    for n in graph.nodes:
        kind = _kind(n)
        fn = _REDUCE[n.prim.name].reduce if kind == REDUCE else n.prim.impl
        steps.append(_Step(n.prim.name, fn, list(n.args), dict(n.params), n.out, kind))
    outputs = {o.id for o in graph.outputs}
    steps = _fuse_balanced(steps, outputs)
    steps = _drop_broadcasts(steps, outputs)
    return steps


def _uses(steps: list[_Step], outputs: set[int]) -> dict[int, int]:
    uses: dict[int, int] = dict.fromkeys(outputs, 1)
    for s in steps:
        for a in s.inputs:
            uses[a.id] = uses.get(a.id, 0) + 1
    return uses


def _same_literal(a: Any, b: Any) -> bool:
    if isinstance(a, Value) or isinstance(b, Value):
        return a is b
    return type(a) is type(b) and isinstance(a, (int, float)) and a == b


def _fuse_balanced(steps: list[_Step], outputs: set[int]) -> list[_Step]:
    """``add(multiply(g, greater(x, y)), multiply(multiply(g, 0.5), equal(x, y)))`` (the
    two products used only there) becomes one ``_balanced_grad`` step; the comparisons
    and ``g * 0.5`` go too unless something else reads them. Operands may come in either
    order, ``x > y`` as ``less(y, x)``, and ``g * 0.5`` as a constant (folded from a
    constant ``g``): each is the same floating-point operation."""
    by_out = {s.out.id: s for s in steps}
    uses = _uses(steps, outputs)

    def made_by(v: Any, name: str, once: bool = False) -> _Step | None:
        s = by_out.get(v.id) if isinstance(v, Value) else None
        ok = s is not None and s.name == name and s.kind == ELEMENTWISE and \
            (not once or (uses.get(v.id) == 1 and v.id not in outputs))
        return s if ok else None

    def split(s: _Step | None, names: tuple[str, ...]) -> tuple | None:
        """``(other operand, comparison step)`` of a product ``s`` of something and a
        comparison named in ``names``."""
        for i in (0, 1):
            for name in names:
                inner = made_by(s.args[i], name) if s is not None else None
                if inner is not None:
                    return s.args[1 - i], inner
        return None

    def is_half_of(h: Any, g: Value) -> Any:
        """The literal 0.5 when ``h`` is ``g * 0.5``, else None."""
        if isinstance(h, Value) and h.is_const and g.is_const:
            same = np.shape(h.const) == np.shape(g.const) and np.array_equal(
                h.const, np.multiply(g.const, 0.5), equal_nan=True)
            return 0.5 if same else None
        half = made_by(h, "multiply")
        if half is None:
            return None
        args = half.args if half.args[0] is g else half.args[::-1]
        c = args[1]
        ok = args[0] is g and isinstance(c, (int, float, np.floating)) and c == 0.5
        return c if ok else None

    fused = 0
    for i, s in enumerate(steps):
        if s.name != "add" or s.kind != ELEMENTWISE or s.out.dtype.kind not in "fc":
            continue
        for first in (0, 1):
            win = split(made_by(s.args[first], "multiply", once=True), ("greater", "less"))
            tie = split(made_by(s.args[1 - first], "multiply", once=True), ("equal",))
            if win is None or tie is None:
                continue
            (g, greater), (half_g, equal) = win, tie
            if not isinstance(g, Value) or g.dtype != s.out.dtype:
                continue
            c = is_half_of(half_g, g)
            x, y = greater.args if greater.name == "greater" else greater.args[::-1]
            if c is None or not any(_same_literal(a, x) and _same_literal(b, y)
                                    for a, b in (equal.args, equal.args[::-1])):
                continue
            steps[i] = _Step("balanced_grad", _balanced_grad, [g, x, y, c], {}, s.out, FUSED)
            fused += 1
            break
    return _dce(steps, outputs) if fused else steps


def _dce(steps: list[_Step], outputs: set[int]) -> list[_Step]:
    """The steps something still reads (every step is pure)."""
    uses = _uses(steps, outputs)
    kept = []
    for s in reversed(steps):
        if uses.get(s.out.id, 0):
            kept.append(s)
        else:
            for a in s.inputs:
                uses[a.id] -= 1
    return kept[::-1]


def _drop_broadcasts(steps: list[_Step], outputs: set[int]) -> list[_Step]:
    """An elementwise ufunc broadcasts its operands itself: read a ``broadcast_to``'s
    source directly where the ufunc's result has the broadcast shape anyway."""
    by_out = {s.out.id: s for s in steps}
    changed = False
    for s in steps:
        if s.kind != ELEMENTWISE:
            continue
        for i, a in enumerate(s.args):
            b = by_out.get(a.id) if isinstance(a, Value) else None
            if b is not None and b.name == "broadcast_to" and isinstance(b.args[0], Value) \
                    and a.shape == s.out.shape:
                s.args[i] = b.args[0]
                changed = True
    return _dce(steps, outputs) if changed else steps


def _buffer_key(v: Value) -> tuple | None:
    if not v.shape or not all(isinstance(d, int) for d in v.shape):
        return None
    return (v.shape, v.dtype)


def _generate(graph: Graph) -> tuple[str, dict, list, list]:
    """``(source, namespace, scratch buffer specs, recycled output specs)``."""
    steps = _steps(graph)
    ns: dict[str, Any] = {"np": np}
    buffers: list[tuple] = []
    out_specs: list[tuple] = []
    name = {v.id: f"x{i}" for i, v in enumerate(graph.inputs)}
    for c in graph.consts:
        name[c.id] = f"c{c.id}"
        ns[name[c.id]] = c.const
    pos = {s.out.id: i for i, s in enumerate(steps)}
    outputs = {o.id for o in graph.outputs}
    # roots: the fresh arrays a value may point into (inputs / consts are never reusable)
    roots: dict[int, frozenset[int]] = {}
    for s in steps:
        if s.fresh:
            roots[s.out.id] = frozenset((s.out.id,))
        else:
            roots[s.out.id] = frozenset().union(*(roots.get(a.id, frozenset())
                                                  for a in s.inputs))
    last_use: dict[int, int] = {}  # root id -> last step index reading any value on it
    for i, s in enumerate(steps):
        for a in s.inputs:
            for r in roots.get(a.id, ()):
                last_use[r] = i
        for r in roots[s.out.id]:
            last_use[r] = max(last_use.get(r, i), i)
    pinned = set().union(*(roots.get(o, frozenset()) for o in outputs)) if outputs else set()
    free: dict[tuple, list[str]] = {}
    dies_at: dict[int, list[int]] = {}
    for r, i in last_use.items():
        if r not in pinned:
            dies_at.setdefault(i, []).append(r)
    lines = [f"def program({''.join(name[v.id] + ', ' for v in graph.inputs)}_scratch, _outs):"]
    for i, s in enumerate(steps):
        out = f"v{s.out.id}"
        name[s.out.id] = out
        args = []
        for k, a in enumerate(s.args):
            if isinstance(a, Value):
                args.append(name[a.id])
            else:
                lit = f"l{s.out.id}_{k}"
                ns[lit] = a
                args.append(lit)
        key = _buffer_key(s.out)
        target = None
        dying = set(dies_at.get(i, ()))
        if s.kind != CALL and key is not None:
            if s.out.id in outputs:  # an old output nothing references, or a new one
                target = f"o{len(out_specs)}"
                out_specs.append(key)
            elif s.out.id not in pinned:  # what outputs may view is always fresh
                if s.kind in (ELEMENTWISE, FUSED):  # may overwrite an operand dying here
                    for a in s.inputs:
                        if a.id in dying and roots.get(a.id) == frozenset((a.id,)) and \
                                _buffer_key(a) == key and a.id not in outputs:
                            target = name[a.id]
                            dying.discard(a.id)
                            break
                if target is None and free.get(key):
                    target = free[key].pop()
                if target is None:  # a scratch buffer kept across calls
                    target = f"b{len(buffers)}"
                    buffers.append(key)
        fn = f"f{s.out.id}"
        ns[fn] = s.fn
        call = ", ".join(args)
        note = f"  # {s.name} : {s.out.type}"
        if s.kind == REDUCE and target is not None:
            ns[f"a{s.out.id}"] = s.params["axis"]
            lines.append(f"    {out} = {fn}({call}, axis=a{s.out.id}, "
                         f"keepdims={bool(s.params['keepdims'])}, out={target}){note}")
        elif target is not None:
            lines.append(f"    {out} = {fn}({call}, out={target}){note}")
        elif s.params:
            ns[f"k{s.out.id}"] = s.params
            lines.append(f"    {out} = {fn}({call}, **k{s.out.id}){note}")
        else:
            lines.append(f"    {out} = {fn}({call}){note}")
        for r in dying:
            if r in name and r not in outputs and pos.get(r, -1) <= i:
                k2 = _buffer_key(steps[pos[r]].out)
                if k2 is not None and name[r] != target:
                    free.setdefault(k2, []).append(name[r])
    if out_specs:
        lines.insert(1, f"    {', '.join(f'o{k}' for k in range(len(out_specs)))}, = _outs")
    if buffers:
        lines.insert(1, f"    {', '.join(f'b{k}' for k in range(len(buffers)))}, = _scratch")
    lines.append(f"    return [{', '.join(name[o.id] for o in graph.outputs)}]")
    return "\n".join(lines) + "\n", ns, buffers, out_specs


# ---- recycled outputs ----------------------------------------------------------------------

_KEEP = 2
"""Old outputs kept per output slot: 2 lets a loop ``v, g = step(...)``, which still holds
the previous call's results while it makes the next, recycle those of the call before."""


def _refs(pool: list, i: int) -> int:
    return sys.getrefcount(pool[i])


_ALONE = _refs([np.empty(0)], 0)
"""``_refs`` of an array that only its pool holds (measured, not assumed: the count differs
between interpreter versions)."""


def _output_array(pool: list, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """An old output in ``pool`` that nothing references any more (no name, container,
    view or weak reference), else a new array, remembered in ``pool``."""
    for i in range(len(pool)):
        if _refs(pool, i) == _ALONE and not weakref.getweakrefcount(pool[i]):
            return pool[i]
    a = np.empty(shape, dtype)
    if len(pool) >= _KEEP:
        del pool[0]
    pool.append(a)
    return a


class Program:
    """A compiled graph: ``program(*input leaves) -> list of output leaves``. ``.source``
    is the generated code (see the module docstring)."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.source, namespace, self.buffers, self.out_specs = _generate(graph)
        exec(compile(self.source, f"<jit {graph.name}>", "exec"), namespace)
        self.run = namespace["program"]
        self._idle: list[tuple[list[np.ndarray], list[list[np.ndarray]]]] = []

    def __call__(self, *leaves: Any) -> list:
        # one set of scratch buffers and output pools per concurrent call (list.pop /
        # append are atomic)
        try:
            bufs, pools = self._idle.pop()
        except IndexError:
            bufs = [np.empty(shape, dtype) for shape, dtype in self.buffers]
            pools = [[] for _ in self.out_specs]
        try:
            outs = [_output_array(pool, shape, dtype)
                    for pool, (shape, dtype) in zip(pools, self.out_specs)]
            return self.run(*leaves, bufs, outs)
        finally:
            self._idle.append((bufs, pools))


def compile_graph(graph: Graph) -> Program:
    """The straight-line numpy program of ``graph`` (see the module docstring).

    Examples:
        >>> import numpy as np
        >>> from pycograd import capture
        >>> from pycograd.graph.program import compile_graph
        >>> prog = compile_graph(capture(lambda x: np.sum(np.exp(x) * 2.0), np.ones(3)))
        >>> float(prog(np.zeros(3))[0])
        6.0
        >>> "out=" in prog.source
        True
    """
    return Program(graph)


__all__ = ["Program", "compile_graph"]
