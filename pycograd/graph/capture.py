"""``capture``: record a function as a ``Graph`` with a capture interpreter.

The ``CaptureTrace`` is one more level of the interpreter stack. Its tracers carry a graph
``Value`` (a shape and a dtype, no data); each primitive that reaches it appends a node and
gets its output type from the primitive's shape rule, as ``eval_shape`` does, so symbolic
dimensions flow through and nothing is computed. Transforms above it (``grad``, ``vmap``,
a tape's VJP rules) run their rules on capture tracers, which is how ``grad_graph`` records
a backward pass from the very rules the tape uses.

Closed-over arrays become constants; ``ParamDict`` weights the function reads by bare name
become named inputs (bound to capture tracers as ``weights.grad`` binds them to tape
values). Anything that needs a data value (``if x > 0:``, ``float(x)``, a shape that
depends on values) raises ``CaptureError`` naming the user's line.
"""

from __future__ import annotations

import functools
import inspect
import linecache
import os
import sys
import types
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Any

import numpy as np

from pycograd.core.errors import NoRuleError, PycogradError
from pycograd.core.primitive import Primitive
from pycograd.core.pytree import tree_flatten, tree_unflatten
from pycograd.core.trace import Trace, Tracer, new_trace, refuse_value_reads
from pycograd.core.tracebacks import PACKAGE_DIR
from pycograd.graph.ir import Graph, Node, Value, no_gc, type_str
from pycograd.routing.transparent import routed
from pycograd.transforms.shapes import DataDependentShapeError, ShapeDtypeStruct


class CaptureError(PycogradError, TypeError):
    """The captured function needs a data value: Python control flow on a traced value,
    ``float(x)``, a data-dependent shape, or a feature capture cannot record. The message
    names the user's source line and what to write instead.

    Examples:
        >>> import numpy as np
        >>> from pycograd import CaptureError, capture
        >>> def f(x):
        ...     return x if np.sum(x) > 0 else -x
        >>> try:
        ...     capture(f, np.ones(3))
        ... except CaptureError:
        ...     print("use np.where instead of if")
        use np.where instead of if
    """


_PKG = PACKAGE_DIR
_EXAMPLES = _PKG + "examples" + os.sep
_LIBS = (os.path.dirname(np.__file__) + os.sep, os.path.dirname(os.__file__) + os.sep)


def _is_library(filename: str) -> bool:
    if filename.startswith(_PKG):
        return not filename.startswith(_EXAMPLES)
    return filename.startswith(_LIBS) or filename.startswith("<frozen") or \
        "pyccolo" in filename or "pipescript" in filename


def _user_line(frames: Sequence[tuple[str, int]]) -> str:
    """``file.py:12: if x > 0:`` for the innermost user frame among ``frames``
    (``(filename, lineno)``, innermost first)."""
    for fn, line in frames:
        if not _is_library(fn):
            text = linecache.getline(fn, line).strip()
            return f"{os.path.basename(fn)}:{line}" + (f": {text}" if text else "")
    return "<unknown line>"


def _stack_frames() -> list[tuple[str, int]]:
    out = []
    frame = sys._getframe(1)
    while frame is not None:
        out.append((frame.f_code.co_filename, frame.f_lineno))
        frame = frame.f_back
    return out


def _tb_frames(tb: Any) -> list[tuple[str, int]]:
    out = []
    while tb is not None:
        out.append((tb.tb_frame.f_code.co_filename, tb.tb_lineno))
        tb = tb.tb_next
    return out[::-1]


_ADVICE = ("the graph cannot depend on data values: use np.where(cond, a, b) for a "
           "data-dependent choice, keep shapes fixed, or run the function eagerly (without "
           "capture / jit)")


def _refusal(what: str) -> Callable:
    def refuse(self: CaptureTracer, *args: Any, **kwargs: Any) -> Any:
        raise CaptureError(f"capture: {what} of a traced value ({self._value.type}) at "
                           f"{_user_line(_stack_frames())}; {_ADVICE}")
    return refuse


@refuse_value_reads(_refusal)
class CaptureTracer(Tracer):
    """A value being captured: a graph ``Value`` (shape, dtype), no data."""

    __slots__ = ("_value",)

    def __init__(self, trace: CaptureTrace, value: Value):
        self._trace = trace
        self._value = value

    @property
    def shape(self) -> tuple:
        return self._value.shape

    @property
    def dtype(self) -> np.dtype:
        return self._value.dtype

    @property
    def size(self) -> Any:
        return self._value.size


    def __repr__(self) -> str:
        return f"Captured({self._value!r}: {self._value.type})"


class _Builder:
    """The graph being recorded: values are numbered as they are made."""

    def __init__(self) -> None:
        self.next_id = 0
        self.inputs: list[Value] = []
        self.consts: list[Value] = []
        self.const_ids: dict[int, Value] = {}
        self.keep: list[Any] = []
        self.nodes: list[Node] = []

    def value(self, shape: tuple, dtype: Any, **kw: Any) -> Value:
        v = Value(self.next_id, shape, dtype, **kw)
        self.next_id += 1
        return v

    def const(self, x: Any) -> Value:
        v = self.const_ids.get(id(x))
        if v is None:
            arr = np.asarray(x)
            v = self.value(arr.shape, arr.dtype, const=arr)
            self.consts.append(v)
            self.const_ids[id(x)] = v
            self.keep.append(x)  # ids stay unique while capture runs
        return v


class CaptureTrace(Trace):
    """Appends a node per primitive application; types come from the shape rules."""

    __slots__ = ("builder",)

    def __init__(self, level: int, builder: _Builder):
        super().__init__(level)
        self.builder = builder

    def process(self, prim: Primitive, args: tuple, params: dict) -> Any:
        if prim.family == "call":  # checkpoint & co: record the body (the planner decides)
            return prim.impl(*args, **params)
        b = self.builder
        node_args, specs = [], []
        for a in args:
            if isinstance(a, CaptureTracer) and a._trace is self:
                v = a._value
                node_args.append(v)
                specs.append(v)  # a Value has the .shape and .dtype a shape rule reads
            elif isinstance(a, Tracer):
                raise CaptureError(
                    f"capture: {prim.name} got a value traced by an enclosing transform "
                    f"({type(a).__name__}) at {_user_line(_stack_frames())}; capture the "
                    "function outside the transform, or pass the value as an argument")
            elif isinstance(a, (np.ndarray, np.generic)):
                node_args.append(b.const(a))
                specs.append(a)
            else:
                node_args.append(a)
                specs.append(a)
        rule = prim.shape
        if rule is None:
            raise NoRuleError(f"capture: {prim.name} has no shape rule, so it cannot be "
                              "captured; run the function eagerly")
        shape, dtype = rule(specs, **params)
        out = b.value(shape, dtype)
        b.nodes.append(Node(prim, node_args, params, out))
        return CaptureTracer(self, out)

    def process_custom_vjp(self, fun: Any, fwd: Any, bwd: Any, args: tuple) -> Any:
        raise CaptureError(
            f"capture: a custom_vjp function ({getattr(fun, '__name__', fun)}) at "
            f"{_user_line(_stack_frames())}: its user-written rule cannot be recorded in a "
            "graph yet (recording the primal alone would change its gradient); run it eagerly")

    def process_custom_jvp(self, fun: Any, rule: Any, args: tuple) -> Any:
        raise CaptureError(
            f"capture: a custom_jvp function ({getattr(fun, '__name__', fun)}) at "
            f"{_user_line(_stack_frames())}: its user-written rule cannot be recorded in a "
            "graph yet; run it eagerly")


def traced_const(like: CaptureTracer, value: Any) -> CaptureTracer:
    """``value`` as a constant of ``like``'s graph, but traced: ops applied to it are
    recorded (a gradient seed broadcast to a symbolic shape stays symbolic)."""
    trace = like._trace
    return CaptureTracer(trace, trace.builder.const(np.asarray(value)))


# ---- inputs ------------------------------------------------------------------------

def _input_spec(x: Any, where: str) -> tuple:
    if isinstance(x, ShapeDtypeStruct):
        return x.shape, x.dtype
    if isinstance(x, Tracer):
        raise CaptureError(f"capture: argument {where} is a traced value "
                           f"({type(x).__name__}); capture outside other transforms")
    if isinstance(x, (bool, np.bool_)) and not isinstance(x, np.ndarray):
        raise CaptureError(f"capture: argument {where} is a bool, which would be baked in; "
                           "close over it, or mark it static (jit(f, static_argnums=...))")
    if isinstance(x, (int, float, complex, np.ndarray, np.generic)):
        a = np.asarray(x)
        return a.shape, a.dtype
    raise CaptureError(f"capture: argument {where} is a {type(x).__name__}; example arguments "
                       "are arrays, Python numbers or ShapeDtypeStructs (in pytrees); close "
                       "over other values, or mark them static (jit(f, static_argnums=...))")


def _leaf_names(args: tuple, f: Callable) -> list[str]:
    """A readable name per input leaf: the parameter's name, with dict keys and list
    positions appended (``x``, ``params.w1``, ``xs.0``)."""
    try:
        pnames = [p.name for p in inspect.signature(f).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        pnames = []
    out: list[str] = []
    for i, a in enumerate(args):
        _names(a, pnames[i] if i < len(pnames) else f"arg{i}", out)
    return out


def _names(x: Any, prefix: str, out: list) -> None:
    from pycograd.params import ParamDict

    if isinstance(x, ParamDict):
        for k in x.trainable():
            out.append(f"{prefix}.{k}")
    elif isinstance(x, dict):
        for k, v in x.items():
            _names(v, f"{prefix}.{k}", out)
    elif isinstance(x, (list, tuple)):
        for i, v in enumerate(x):
            _names(v, f"{prefix}.{i}", out)
    elif x is not None:
        out.append(prefix)


def _find_weights(f: Callable, args: tuple) -> list:
    """The ``ParamDict``s whose names ``f`` reads ambiently: found in the globals, closure
    cells and defaults of the functions ``f`` reaches, kept when ``f`` reads one of their
    names: as ambient binding finds it, or loading a name that a namespace it reaches binds
    to their array (``bind_globals``, a DSL ``params{}`` block)."""
    from pycograd.params import ParamDict
    from pycograd.routing.ambient import plan

    found: dict[int, Any] = {}
    seen: set[int] = set()
    stack: list[Any] = [f]
    scanned_globals: dict[int, dict] = {}
    loaded: set[str] = set()
    while stack and len(seen) < 500:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, functools.partial):
            stack.append(obj.func)
            stack.extend(a for a in (*obj.args, *obj.keywords.values()))
        elif isinstance(obj, types.MethodType):
            stack.append(obj.__func__)
        elif isinstance(obj, ParamDict):
            found[id(obj)] = obj
        elif isinstance(obj, types.FunctionType):
            for cell in obj.__closure__ or ():
                try:
                    stack.append(cell.cell_contents)
                except ValueError:
                    pass
            stack.extend(obj.__defaults__ or ())  # the DSL passes stages as defaults
            stack.extend((obj.__kwdefaults__ or {}).values())
            g = obj.__globals__
            if not _is_library(obj.__code__.co_filename):
                loaded |= _code_names(obj.__code__)
            if id(g) not in scanned_globals and not _is_library(obj.__code__.co_filename):
                scanned_globals[id(g)] = g
                for name in obj.__code__.co_names:
                    v = g.get(name)
                    if callable(v) or isinstance(v, ParamDict):
                        stack.append(v)
                for v in list(g.values()):
                    if isinstance(v, ParamDict):
                        found[id(v)] = v
        wrapped = getattr(obj, "__wrapped__", None)
        if wrapped is not None:
            stack.append(wrapped)
    explicit = {id(a) for a in tree_flatten(args)[0]}

    def bound_in_globals(pd: Any) -> bool:  # bind_globals / a DSL block put them there
        return any(g.get(n) is v for g in scanned_globals.values()
                   for n, v in pd.state_dict().items() if n in loaded)

    return [pd for pd in found.values() if id(pd) not in explicit and (
        bound_in_globals(pd) or plan(set(pd.keys()), (), [f]))]


def _code_names(code: types.CodeType) -> set[str]:
    """The names ``code`` and the code nested in it load (globals and attributes alike:
    a superset of the weight names it can read)."""
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _code_names(c)
    return names


# ---- capture -------------------------------------------------------------------------

def trace_flat(fn: Callable, specs: Sequence[tuple], names: Sequence[str | None],
               in_tree: Any, weight_sources: Sequence[tuple[Any, str]] = (),
               name: str = "graph", bind_weights: Callable | None = None) -> Graph:
    """The graph of ``fn(*input tracers)``, ``specs`` giving each input's (shape, dtype).
    ``bind_weights(weight tracers)`` (a context manager), when given, makes the last
    ``len(weight_sources)`` inputs visible to ``fn`` as the weights."""
    b = _Builder()
    with no_gc(), new_trace(CaptureTrace, b) as trace:
        tracers = []
        for (shape, dtype), n in zip(specs, names):
            v = b.value(shape, dtype, name=n)
            b.inputs.append(v)
            tracers.append(CaptureTracer(trace, v))
        nw = len(weight_sources)
        try:
            with ExitStack() as stack:
                if bind_weights is not None and nw:
                    stack.enter_context(bind_weights(tracers[len(tracers) - nw:]))
                out = fn(*tracers[:len(tracers) - nw] if bind_weights is not None else tracers)
        except DataDependentShapeError as e:
            raise CaptureError(f"capture: {e} (at {_user_line(_tb_frames(e.__traceback__))})"
                               ) from e
        except NoRuleError as e:  # a numpy function that needs the values ("CaptureTracer")
            if type(e) is not NoRuleError or "CaptureTracer" not in str(e):
                raise
            raise CaptureError(f"capture: {e} (at {_user_line(_tb_frames(e.__traceback__))}); "
                               f"{_ADVICE}") from e
        leaves, out_tree = tree_flatten(out)
        outs = []
        for o in leaves:
            if isinstance(o, CaptureTracer) and o._trace is trace:
                outs.append(o._value)
            elif isinstance(o, (np.ndarray, np.generic, int, float, complex)):
                outs.append(b.const(o))
            else:
                raise CaptureError(f"capture: the function returned a {type(o).__name__} "
                                   "among its outputs; return arrays (in pytrees)")
    dims = sorted({n for v in b.inputs for d in v.shape if hasattr(d, "names")
                   for n in d.names})
    return Graph(b.inputs, b.consts, b.nodes, outs, in_tree, out_tree, weight_sources, dims,
                 name)


def capture(f: Callable, *example_args: Any, weights: Any = None) -> Graph:
    """Record ``f(*example_args)`` as a ``Graph`` of primitive applications.

    Example arguments are arrays, Python numbers or ``ShapeDtypeStruct``s (symbolic dims
    allowed), in pytrees; only their shapes and dtypes are used. ``ParamDict`` weights that
    ``f`` reads by bare name (found among the globals and closures it reaches, or passed as
    ``weights=``) become named inputs, read afresh at every ``graph(*args)``. Raises
    ``CaptureError`` on Python control flow over traced values.

    Examples:
        >>> import numpy as np
        >>> from pycograd import ShapeDtypeStruct as S, capture
        >>> g = capture(lambda x, w: np.tanh(x @ w), S(("batch", 3)), np.ones((3, 2)))
        >>> [n.prim.name for n in g.nodes]
        ['matmul', 'tanh']
        >>> g(np.zeros((5, 3)), np.ones((3, 2))).shape     # any batch: the graph recomputes
        (5, 2)
    """
    leaves, in_tree = tree_flatten(example_args)
    names = _leaf_names(example_args, f)
    specs = [_input_spec(x, n) for x, n in zip(leaves, names)]
    if weights is None:
        pds = _find_weights(f, example_args)
    else:
        pds = list(weights) if isinstance(weights, (list, tuple)) else [weights]
    sources: list[tuple[Any, str]] = []
    wspecs: list[tuple] = []
    for pd in pds:
        for n, arr in pd.state_dict().items():
            sources.append((pd, n))
            wspecs.append((np.shape(arr), np.result_type(arr)))
    taken = set(names)
    wnames = []
    for pd, n in sources:
        label = n if n not in taken else f"{n}#{pds.index(pd)}"
        taken.add(label)
        wnames.append(label)

    def bind_weights(tracers: list) -> Any:
        stack = ExitStack()
        k = 0
        for pd in pds:
            mine = {}
            for src, n in sources:
                if src is pd:
                    mine[n] = tracers[k]
                    k += 1
            stack.enter_context(pd.bind(mine, f))
        return stack

    def run(*xs: Any) -> Any:
        return routed(f)(*tree_unflatten(in_tree, list(xs)))

    name = getattr(f, "__name__", "graph")
    if not name.isidentifier():
        name = "graph"
    return trace_flat(run, specs + wspecs, names + wnames, in_tree, sources, name,
                      bind_weights if sources else None)


__all__ = ["CaptureError", "CaptureTrace", "CaptureTracer", "capture", "trace_flat",
           "type_str"]
