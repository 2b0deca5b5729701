"""The graph IR: a flat SSA list of primitive applications, each value typed.

A ``Graph`` is what ``capture`` records and what ``optimize``, ``grad_graph``, ``jit``,
the remat planner and the framework lowerings consume:

- ``graph.inputs``: the input ``Value``s, the positional arguments' leaves first, then the
  named weights (ambient ``ParamDict`` entries the function read);
- ``graph.consts``: the constant ``Value``s (arrays the function closed over);
- ``graph.nodes``: the ``Node``s in a topological order. A node is one primitive
  application: ``node.prim`` (an entry of the primitive table, so ``prim.lower[backend]``
  and ``prim.vjps`` are one lookup away), ``node.args`` (``Value``s and static Python
  literals, in the primitive's argument order), ``node.params`` (the primitive's keyword
  parameters) and ``node.out`` (one ``Value``: every primitive has one output);
- ``graph.outputs``: the output ``Value``s, with ``graph.out_tree`` their structure.

A ``Value`` has an ``id`` (unique in its graph), a ``shape`` (ints, or ``Dim``s for
symbolic dimensions) and a ``dtype``. Nothing in a graph refers to the user's Python: it
can be evaluated, differentiated, rewritten and lowered without re-running it.
"""

from __future__ import annotations

import gc
import math
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from pycograd.core.errors import PycogradError, ShapeError
from pycograd.core.primitive import Primitive
from pycograd.core.pytree import TreeDef, tree_flatten, tree_unflatten
from pycograd.core.symbolic import Dim
from pycograd.core.trace import bind

_ABBREV = {"float64": "f64", "float32": "f32", "float16": "f16", "int64": "i64",
           "int32": "i32", "bool": "bool", "complex128": "c128", "complex64": "c64",
           "bfloat16": "bf16", "uint8": "u8", "int8": "i8"}


def type_str(shape: tuple, dtype: np.dtype) -> str:
    """``f64[128,256]``: a value's type as the listing prints it."""
    name = _ABBREV.get(np.dtype(dtype).name, np.dtype(dtype).name)
    return f"{name}[{','.join(str(d) for d in shape)}]"


class Value:
    """One SSA value: an input, a constant, or the output of one node."""

    __slots__ = ("id", "shape", "dtype", "name", "const", "producer")

    def __init__(self, id: int, shape: tuple, dtype: Any, name: str | None = None,
                 const: Any = None, producer: Node | None = None):
        self.id = id
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.name = name
        self.const = const
        self.producer = producer

    @property
    def is_const(self) -> bool:
        return self.const is not None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> Any:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> Any:
        return self.size * self.dtype.itemsize

    @property
    def type(self) -> str:
        return type_str(self.shape, self.dtype)

    def __repr__(self) -> str:
        return f"%{self.id}"


class Node:
    """``out = prim(*args, **params)``; ``args`` holds ``Value``s and static literals."""

    __slots__ = ("prim", "args", "params", "out")

    def __init__(self, prim: Primitive, args: list, params: dict, out: Value):
        self.prim = prim
        self.args = list(args)
        self.params = dict(params)
        self.out = out
        out.producer = self

    @property
    def inputs(self) -> list[Value]:
        """The ``Value`` arguments (the literals left out)."""
        return [a for a in self.args if isinstance(a, Value)]

    def __repr__(self) -> str:
        return f"<Node {self.out!r} = {self.prim.name}>"


def _fmt_param(v: Any) -> str:
    if callable(v) and not isinstance(v, (np.ndarray, np.generic)):
        return getattr(v, "__name__", type(v).__name__)
    if isinstance(v, np.ndarray):
        return f"array{type_str(v.shape, v.dtype)}"
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _fmt_arg(a: Any) -> str:
    return repr(a) if isinstance(a, Value) else _fmt_param(a)


class Graph:
    """A captured computation. ``graph(*args)`` evaluates it (differentiably, under any
    transform); ``print(graph)`` lists it; ``.to_dot()`` / ``.render(path)`` draw it.

    ``inputs`` are the positional arguments' leaves (``in_tree`` is their structure) and
    then the named weights, whose current values ``graph(*args)`` reads from
    ``weight_sources`` (``(ParamDict, name)`` pairs) at each call; ``nodes`` are the
    primitive applications in order and ``outputs`` the results.

    Examples:
        >>> import numpy as np
        >>> from pycograd import capture, value_and_grad
        >>> g = capture(lambda x: np.sum(np.sin(x)), np.ones(3))
        >>> len(g.inputs), len(g.nodes), len(g.outputs)
        (1, 2, 1)
        >>> v, (dx,) = value_and_grad(lambda x: g(x))(np.zeros(3))
        >>> dx.tolist()
        [1.0, 1.0, 1.0]
    """

    def __init__(self, inputs: list[Value], consts: list[Value], nodes: list[Node],
                 outputs: list[Value], in_tree: TreeDef, out_tree: TreeDef,
                 weight_sources: Sequence[tuple[Any, str]] = (), dims: Sequence[str] = (),
                 name: str = "graph"):
        self.inputs = inputs
        self.consts = consts
        self.nodes = nodes
        self.outputs = outputs
        self.in_tree = in_tree
        self.out_tree = out_tree
        self.weight_sources = list(weight_sources)
        self.dims = tuple(dims)
        self.name = name

    # ---- structure ------------------------------------------------------------------

    @property
    def num_positional(self) -> int:
        return len(self.inputs) - len(self.weight_sources)

    @property
    def weight_names(self) -> list[str]:
        return [n for _, n in self.weight_sources]

    def values(self) -> Iterator[Value]:
        yield from self.inputs
        yield from self.consts
        for n in self.nodes:
            yield n.out

    def op_counts(self) -> dict[str, int]:
        """``{primitive name: number of nodes}``."""
        counts: dict[str, int] = {}
        for n in self.nodes:
            counts[n.prim.name] = counts.get(n.prim.name, 0) + 1
        return counts

    def __len__(self) -> int:
        return len(self.nodes)

    # ---- evaluation -----------------------------------------------------------------

    def __call__(self, *args: Any) -> Any:
        return eval_graph(self, *args)

    def flat_inputs(self, args: tuple) -> list:
        """The input leaves for positional ``args``, then the weights' current values."""
        leaves, tree = tree_flatten(args)
        if tree != self.in_tree:
            raise GraphInputError(
                f"{self.name}: called with arguments structured as {_tree_str(tree)}, but it "
                f"was captured with {_tree_str(self.in_tree)}; capture again for the new "
                "structure (jit does so by itself)")
        return leaves + [pd[name] for pd, name in self.weight_sources]

    def call_flat(self, *leaves: Any) -> list:
        """Evaluate on all input leaves (weights included) with ``bind``: the result is
        differentiable by whatever transform the leaves belong to."""
        if len(leaves) != len(self.inputs):
            raise GraphInputError(f"{self.name}: takes {len(self.inputs)} input leaves, got "
                                  f"{len(leaves)}")
        env = {}
        dims = _check_inputs(self, leaves)
        for v, x in zip(self.inputs, leaves):
            env[v.id] = x
        for c in self.consts:
            env[c.id] = c.const
        for node in self.nodes:
            args = [env[a.id] if isinstance(a, Value) else a for a in node.args]
            params = resolve_dims(node.params, dims) if dims else node.params
            out = bind(node.prim, args, params)
            env[node.out.id] = out
        return [env[o.id] for o in self.outputs]

    # ---- display --------------------------------------------------------------------

    def pretty(self) -> str:
        """A typed listing, one line per node: ``%4 = matmul %1 %2 : f64[128,256]``."""
        names = {v.id: v.name for v in self.inputs}
        ins = ", ".join(f"%{v.id}: {v.type}" + (f" {names[v.id]}" if names[v.id] else "")
                        for v in self.inputs)
        lines = [f"{self.name}({ins}) {{"]
        for c in self.consts:
            lines.append(f"  %{c.id} = const {_const_str(c.const)} : {c.type}")
        for n in self.nodes:
            args = " ".join(_fmt_arg(a) for a in n.args)
            params = " ".join(f"{k}={_fmt_param(v)}" for k, v in n.params.items())
            body = " ".join(s for s in (n.prim.name, args, params and f"{{{params}}}") if s)
            lines.append(f"  %{n.out.id} = {body} : {n.out.type}")
        outs = ", ".join(repr(o) for o in self.outputs)
        lines.append(f"  return {outs}")
        lines.append("}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.pretty()

    def __repr__(self) -> str:
        return (f"<Graph {self.name}: {len(self.inputs)} inputs, {len(self.nodes)} nodes, "
                f"{len(self.outputs)} outputs>")

    def to_dot(self, highlight: Callable[[Node], str | None] | None = None) -> str:
        """Graphviz source: inputs as green boxes, constants grey, ops as ellipses labelled
        with their primitive and output type, outputs double-circled. ``highlight(node)``
        may return a fill colour for a node (the remat planner colours its decisions)."""
        lines = [f'digraph "{self.name}" {{', "  rankdir=TB;",
                 '  node [fontname="Helvetica", fontsize=10];']
        for v in self.inputs:
            label = f"{v.name or '%' + str(v.id)}\\n{v.type}"
            lines.append(f'  v{v.id} [shape=box, style=filled, fillcolor="#c8e6c9", '
                         f'label="{label}"];')
        for c in self.consts:
            lines.append(f'  v{c.id} [shape=box, style=filled, fillcolor="#eeeeee", '
                         f'label="const\\n{c.type}"];')
        outs = {o.id for o in self.outputs}
        for n in self.nodes:
            colour = highlight(n) if highlight is not None else None
            style = f', style=filled, fillcolor="{colour}"' if colour else ""
            shape = "doublecircle" if n.out.id in outs else "ellipse"
            lines.append(f'  v{n.out.id} [shape={shape}{style}, '
                         f'label="{n.prim.name}\\n{n.out.type}"];')
            for a in n.inputs:
                lines.append(f"  v{a.id} -> v{n.out.id};")
        for i, o in enumerate(self.outputs):
            if o.producer is None:
                lines.append(f'  out{i} [shape=doublecircle, label="out{i}"];')
                lines.append(f"  v{o.id} -> out{i};")
        lines.append("}")
        return "\n".join(lines)

    def render(self, path: str, format: str | None = None) -> str:
        """Draw the graph to ``path`` (SVG, PNG, PDF ... by its suffix, or ``format``)
        with Graphviz; returns the written path. Needs the ``graphviz`` Python package
        and the ``dot`` program."""
        try:
            import graphviz
        except ImportError:
            raise GraphvizMissingError(
                "Graph.render needs the graphviz Python package: pip install graphviz "
                "(or pip install 'pycograd[graph]'); .to_dot() gives the source without "
                "it") from None
        if shutil.which("dot") is None:
            raise GraphvizMissingError(
                "Graph.render needs the Graphviz `dot` program, which is not on PATH: "
                "install Graphviz (apt-get install graphviz, brew install graphviz, conda "
                "install graphviz); .to_dot() gives the source without it")
        stem, dot, suffix = str(path).rpartition(".")
        fmt = format or (suffix if dot else "svg")
        base = stem if dot else str(path)
        src = graphviz.Source(self.to_dot())
        return src.render(filename=base, format=fmt, cleanup=True)

    def _repr_svg_(self) -> str | None:
        """Inline drawing in Jupyter when Graphviz is available."""
        try:
            import graphviz
        except ImportError:
            return None
        if shutil.which("dot") is None:
            return None
        return graphviz.Source(self.to_dot()).pipe(format="svg").decode()


class GraphInputError(PycogradError, TypeError):
    """A graph called with arguments that do not match what it was captured with."""


class GraphvizMissingError(PycogradError, ImportError):
    """``Graph.render`` without the graphviz package or the ``dot`` program."""


def _tree_str(tree: TreeDef) -> str:
    if tree.kind is None:
        return "*"
    inner = ", ".join(_tree_str(c) for c in tree.children)
    return f"{tree.kind.__name__}({inner})"


def _const_str(c: Any) -> str:
    a = np.asarray(c)
    if a.size <= 4:
        return np.array2string(a, precision=4, separator=",").replace("\n", "")
    return "array"


def _check_inputs(graph: Graph, leaves: Sequence) -> dict[str, int]:
    """Check each leaf against its input's shape and dtype kind; returns the values of the
    symbolic dimensions, read off the leaves."""
    dims: dict[str, int] = {}
    for v, x in zip(graph.inputs, leaves):
        shape = np.shape(x)
        if len(shape) != len(v.shape):
            raise GraphInputError(f"{graph.name}: input {v.name or v!r} expects {v.type}, got "
                                  f"shape {shape}")
        for want, got in zip(v.shape, shape):
            if isinstance(want, Dim):
                names = want.names
                if len(want.terms) == 1 and list(want.terms.values())[0] == 1 and \
                        len(next(iter(want.terms))) == 1:
                    name = next(iter(names))
                    if dims.setdefault(name, got) != got:
                        raise ShapeError(
                            f"{graph.name}: dimension {name} is {dims[name]} in one input and "
                            f"{got} in input {v.name or v!r}")
            elif want != got:
                raise GraphInputError(f"{graph.name}: input {v.name or v!r} expects {v.type}, "
                                      f"got shape {shape}")
    return dims


def eval_dim(d: Any, dims: dict[str, int]) -> Any:
    """A ``Dim`` polynomial evaluated at the dimension values ``dims``."""
    if not isinstance(d, Dim):
        return d
    total = 0
    for mono, coeff in d.terms.items():
        term = coeff
        for name in mono:
            if name not in dims:
                raise ShapeError(f"symbolic dimension {name} has no value: no input carries it")
            term *= dims[name]
        total += term
    return total


def resolve_dims(x: Any, dims: dict[str, int]) -> Any:
    """``x`` (a param: tuple, list, dict, ``Dim``) with every ``Dim`` made concrete."""
    if isinstance(x, Dim):
        return eval_dim(x, dims)
    if isinstance(x, tuple) and not hasattr(x, "_fields"):
        return tuple(resolve_dims(y, dims) for y in x)
    if isinstance(x, list):
        return [resolve_dims(y, dims) for y in x]
    if isinstance(x, dict):
        return {k: resolve_dims(y, dims) for k, y in x.items()}
    return x


def eval_graph(graph: Graph, *args: Any) -> Any:
    """Evaluate ``graph`` on positional ``args`` (structured as at capture), reading the
    weights' current values; ``graph(*args)`` is the same. Every op goes through ``bind``,
    so ``value_and_grad(lambda x: graph(x))`` differentiates it like any function.

    Examples:
        >>> import numpy as np
        >>> from pycograd import capture, eval_graph
        >>> g = capture(lambda x: np.sin(x) * 2, np.ones(3))
        >>> eval_graph(g, np.zeros(3)).tolist()
        [0.0, 0.0, 0.0]
    """
    outs = graph.call_flat(*graph.flat_inputs(args))
    return tree_unflatten(graph.out_tree, outs)


def copy_graph(graph: Graph) -> Graph:
    """A copy with fresh ``Value`` and ``Node`` objects (same ids; constant arrays and
    params shared), for passes that rewrite in place."""
    new: dict[int, Value] = {}

    def cp(v: Value) -> Value:
        w = new.get(v.id)
        if w is None:
            w = new[v.id] = Value(v.id, v.shape, v.dtype, v.name, v.const)
        return w

    inputs = [cp(v) for v in graph.inputs]
    consts = [cp(c) for c in graph.consts]
    nodes = [Node(n.prim, [cp(a) if isinstance(a, Value) else a for a in n.args], n.params,
                  cp(n.out)) for n in graph.nodes]
    outputs = [cp(o) for o in graph.outputs]
    return Graph(inputs, consts, nodes, outputs, graph.in_tree, graph.out_tree,
                 graph.weight_sources, graph.dims, graph.name)


def next_id(graph: Graph) -> int:
    """An id no value of ``graph`` has."""
    return 1 + max((v.id for v in graph.values()), default=-1)


@contextmanager
def no_gc() -> Iterator[None]:
    """The graphs are acyclic trees of small objects: the cycle collector's full scans
    would make building them quadratic, so it pauses while they are built."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
