"""``jit``: capture once per input signature, optimize, and run a generated numpy program.

The program is straight-line Python source with one statement per graph node, calling each
primitive's ``impl`` directly (no ``bind``, no tracer, no tape). Buffers are reused by a
liveness analysis done once at compile time: an array made by a ufunc or a matmul (a fresh
array nothing else points into) is returned to a pool after its last use, and a later
ufunc / matmul of the same shape and dtype writes into it with ``out=``; an elementwise
ufunc may write over an operand that dies at that very node (in place); the others write
into scratch buffers allocated once and kept between calls (one set per concurrent call),
so a step allocates only its outputs and the results of non-ufunc ops. Values that may be
views (reshape, transpose, indexing ...) keep every array they may alias alive, inputs and
constants are never written, and outputs (and whatever they may view) are always fresh.

``weights.grad(objective, *data, jit=True)`` and ``train(..., jit=True)`` jit the value and
gradient of the objective over the weights (``weights_value_and_grad``).
"""

from __future__ import annotations

import functools
import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pycograd.core.errors import NoRuleError
from pycograd.core.pytree import tree_flatten, tree_unflatten
from pycograd.core.trace import Tracer
from pycograd.graph.capture import CaptureError, capture
from pycograd.graph.ir import Graph, Value
from pycograd.graph.passes import optimize
from pycograd.numpy_api.transparent import routed


class JitFallbackWarning(UserWarning):
    """``jit`` could not capture a function and runs it eagerly."""


class Program:
    """A compiled graph: ``program(*input leaves) -> list of output leaves``. ``.source``
    is the generated code."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.source, namespace, self.buffers = _generate(graph)
        exec(compile(self.source, f"<jit {graph.name}>", "exec"), namespace)
        self.run = namespace["program"]
        self._idle: list[list[np.ndarray]] = []

    def __call__(self, *leaves: Any) -> list:
        # one set of scratch buffers per concurrent call (list.pop / append are atomic)
        try:
            bufs = self._idle.pop()
        except IndexError:
            bufs = [np.empty(shape, dtype) for shape, dtype in self.buffers]
        try:
            return self.run(*leaves, bufs)
        finally:
            self._idle.append(bufs)


def _owns_fresh(node_prim: Any) -> bool:
    """Ops whose result is always a new array (never a view of an operand)."""
    return isinstance(node_prim.impl, np.ufunc)


def _generate(graph: Graph) -> tuple[str, dict, list]:
    ns: dict[str, Any] = {"np": np}
    buffers: list[tuple] = []
    name = {v.id: f"x{i}" for i, v in enumerate(graph.inputs)}
    for c in graph.consts:
        name[c.id] = f"c{c.id}"
        ns[name[c.id]] = c.const
    pos = {n.out.id: i for i, n in enumerate(graph.nodes)}
    outputs = {o.id for o in graph.outputs}
    # roots: the fresh arrays a value may point into (inputs / consts are never reusable)
    roots: dict[int, frozenset[int]] = {}
    for n in graph.nodes:
        if _owns_fresh(n.prim):
            roots[n.out.id] = frozenset((n.out.id,))
        else:
            roots[n.out.id] = frozenset().union(*(roots.get(a.id, frozenset())
                                                  for a in n.inputs))
    last_use: dict[int, int] = {}  # root id -> last node index reading any value on it
    for i, n in enumerate(graph.nodes):
        for a in n.inputs:
            for r in roots.get(a.id, ()):
                last_use[r] = i
        for r in roots[n.out.id]:
            last_use[r] = max(last_use.get(r, i), i)
    pinned = set().union(*(roots.get(o, frozenset()) for o in outputs)) if outputs else set()
    free: dict[tuple, list[str]] = {}
    dies_at: dict[int, list[int]] = {}
    for r, i in last_use.items():
        if r not in pinned:
            dies_at.setdefault(i, []).append(r)
    lines = [f"def program({''.join(name[v.id] + ', ' for v in graph.inputs)}_scratch):"]
    for i, n in enumerate(graph.nodes):
        out = f"v{n.out.id}"
        name[n.out.id] = out
        args = []
        for k, a in enumerate(n.args):
            if isinstance(a, Value):
                args.append(name[a.id])
            else:
                key = f"l{n.out.id}_{k}"
                ns[key] = a
                args.append(key)
        key = _buffer_key(n.out)
        target = None
        dying = set(dies_at.get(i, ()))
        if isinstance(n.prim.impl, np.ufunc) and not n.params and key is not None and \
                n.out.id not in pinned:  # outputs (and what they view) are always fresh
            if n.prim.name != "matmul":  # elementwise: may overwrite an operand dying here
                for a in n.inputs:
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
        fn = f"f{n.out.id}"
        ns[fn] = n.prim.impl
        call = ", ".join(args)
        note = f"  # {n.prim.name} : {n.out.type}"
        if target is not None:
            lines.append(f"    {out} = {fn}({call}, out={target}){note}")
        elif n.params:
            ns[f"k{n.out.id}"] = n.params
            lines.append(f"    {out} = {fn}({call}, **k{n.out.id}){note}")
        else:
            lines.append(f"    {out} = {fn}({call}){note}")
        for r in dying:
            if r in name and r not in outputs and pos.get(r, -1) <= i:
                rv = graph.nodes[pos[r]].out
                k2 = _buffer_key(rv)
                if k2 is not None and name[r] != target:
                    free.setdefault(k2, []).append(name[r])
    if buffers:
        lines.insert(1, f"    {', '.join(f'b{k}' for k in range(len(buffers)))}, = _scratch")
    lines.append(f"    return [{', '.join(name[o.id] for o in graph.outputs)}]")
    return "\n".join(lines) + "\n", ns, buffers


def _buffer_key(v: Value) -> tuple | None:
    if not v.shape or not all(isinstance(d, int) for d in v.shape):
        return None
    return (v.shape, v.dtype)


def compile_graph(graph: Graph) -> Program:
    """The straight-line numpy program of ``graph`` (see the module docstring)."""
    return Program(graph)


def _signature(leaves: Sequence) -> tuple:
    return tuple((type(x), np.shape(x), np.result_type(x)) if not isinstance(x, Tracer) else
                 (Tracer, tuple(x.shape), np.dtype(x.dtype)) for x in leaves)


class Jitted:
    """``jit(f)``: see ``jit``. ``.graphs`` holds the optimized graph per signature."""

    def __init__(self, f: Callable, static_argnums: Sequence[int], strict: bool,
                 optimize_graph: bool, weights: Any = None):
        functools.update_wrapper(self, f)
        self.f = f
        self.static = tuple(static_argnums)
        self.strict = strict
        self.optimize = optimize_graph
        self.weights = weights
        self.cache: dict[Any, Any] = {}
        self.warned = False

    @property
    def graphs(self) -> list[Graph]:
        return [c.graph for c in self.cache.values() if isinstance(c, Program)]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        static = tuple((i, args[i]) for i in self.static)
        dyn = (tuple(a for i, a in enumerate(args) if i not in self.static), kwargs)
        leaves, tree = tree_flatten(dyn)
        key = (tree, _signature(leaves), static)
        entry = self.cache.get(key)
        if entry is None:
            entry = self.cache[key] = self._compile(args, dyn)
        if entry == "eager":
            return routed(self.f)(*args, **kwargs)
        weights = [pd[n] for pd, n in entry.graph.weight_sources]
        if any(isinstance(x, Tracer) for x in leaves):  # under a transform: differentiable
            outs = entry.graph.call_flat(*leaves, *weights)
        else:
            outs = entry(*leaves, *weights)
        return tree_unflatten(entry.graph.out_tree, outs)

    def _compile(self, args: tuple, dyn: tuple) -> Any:
        def call(args_: tuple, kwargs: dict) -> Any:  # the dynamic arguments, as captured
            it = iter(args_)
            full = [args[i] if i in self.static else next(it) for i in range(len(args))]
            return routed(self.f)(*full, **kwargs)

        call.__name__ = getattr(self.f, "__name__", "jitted")
        leaves, tree = tree_flatten(dyn)
        example = tree_unflatten(tree, [_Spec.of(x) if isinstance(x, Tracer) else x
                                        for x in leaves])
        try:
            graph = capture(call, *example, weights=self.weights)
        except (CaptureError, NoRuleError) as e:
            if self.strict:
                raise
            if not self.warned:
                self.warned = True
                warnings.warn(f"jit({getattr(self.f, '__name__', self.f)}): cannot capture "
                              f"({e}); running eagerly", JitFallbackWarning, stacklevel=3)
            return "eager"
        return Program(optimize(graph) if self.optimize else graph)


class _Spec:
    @staticmethod
    def of(x: Tracer) -> Any:
        from pycograd.transforms.shapes import ShapeDtypeStruct

        return ShapeDtypeStruct(tuple(x.shape), x.dtype)


def jit(f: Callable | None = None, *, static_argnums: int | Sequence[int] = (),
        strict: bool = False, optimize: bool = True, weights: Any = None) -> Any:
    """Compile ``f``: capture it once per input signature (shapes, dtypes, pytree
    structure, the values of ``static_argnums``), optimize the graph, and run a generated
    straight-line numpy program with buffer reuse. A new signature captures again.

    A function that cannot be captured (Python control flow on data, ``float(x)`` ...)
    runs eagerly, with one ``JitFallbackWarning`` saying why; ``strict=True`` raises the
    ``CaptureError`` instead. Called on traced values (inside ``grad``, ``vmap`` ...) the
    captured graph is evaluated through the transforms, so ``grad(jit(f))`` works.
    ``ParamDict`` weights ``f`` reads by bare name are inputs of the program (read at each
    call), found as ``capture`` finds them or given as ``weights=`` (``[]`` for none).

    Examples:
        >>> import numpy as np
        >>> from pycograd import jit, value_and_grad
        >>> loss = lambda w, x: np.sum(np.tanh(x @ w) ** 2)
        >>> step = jit(value_and_grad(loss, argnums=0))
        >>> w, x = np.ones((3, 2)), np.ones((4, 3))
        >>> value, gw = step(w, x)            # captured and compiled on the first call only
        >>> bool(np.allclose(gw, value_and_grad(loss, argnums=0)(w, x)[1]))
        True
    """
    if f is None:
        return functools.partial(jit, static_argnums=static_argnums, strict=strict,
                                 optimize=optimize, weights=weights)
    nums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
    return Jitted(f, nums, strict, optimize, weights)


# ---- weights.grad(..., jit=True) ---------------------------------------------------------

_WEIGHT_STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""``{weights: {objective: jitted value-and-grad}}``: one compiled program per pair (and
signature), dropped with the weights."""


def weights_value_and_grad(weights: Any, objective: Callable, *data: Any) -> tuple:
    """``(value, {canonical name: gradient})`` of ``objective(*data)`` over the trainable
    weights, through a jitted value-and-grad program cached per (weights, objective).
    Frozen entries and buffers are inputs of the program too (never baked constants), but
    get no gradient."""
    from pycograd.params.paramdict import _scalar_objective
    from pycograd.transforms.grad import value_and_grad

    per = _WEIGHT_STEPS.setdefault(weights, {})
    step = per.get(objective)
    if step is None:
        def loss(train: dict, other: dict, *d: Any) -> Any:
            return _scalar_objective({**train, **other}, weights, objective, *d)

        def value_grad(train: dict, other: dict, *d: Any) -> Any:
            return value_and_grad(loss, 0)(train, other, *d)

        value_grad.__name__ = f"grad_{getattr(objective, '__name__', 'objective')}"
        step = per[objective] = jit(value_grad, weights=[])
    train = weights.trainable()
    other = {n: v for n, v in weights.state_dict().items() if n not in train}
    return step(train, other, *data)


__all__ = ["JitFallbackWarning", "Jitted", "Program", "compile_graph", "jit",
           "weights_value_and_grad"]
