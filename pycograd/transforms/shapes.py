"""``eval_shape``: the abstract interpreter, and ``summary`` on top of it.

An ``AbstractTracer`` has a shape and a dtype and no data, so a 100000 x 100000 matmul is
sized without allocating anything. Each primitive's shape rule comes from its family
(elementwise broadcasting, reductions, calls) or is declared with the primitive. Dtypes are
found by running the primitive on 0-d stand-ins, so numpy's promotion rules hold exactly.

Dimensions may be symbolic (``ShapeDtypeStruct(("batch", 784))``, see ``core.symbolic``):
they flow through broadcasting, matmul/einsum, reshape (``-1`` included), concatenate,
reductions and slicing, and anything that would need their value raises ``ShapeError``.
An output whose shape depends on data values (a boolean mask, ``np.nonzero``,
``np.unique``) raises ``DataDependentShapeError``, as does Python control flow on an
abstract value (``if x > 0:``): eval_shape never guesses a size.
"""

from __future__ import annotations

import linecache
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from numbers import Integral
from typing import Any

import numpy as np

from pycograd.core.errors import DataDependentShapeError, IndexingError, NoRuleError
from pycograd.core.primitive import Primitive, family_rules
from pycograd.core.pytree import tree_flatten, tree_unflatten
from pycograd.core.symbolic import Dim
from pycograd.core.trace import Trace, Tracer, find_top, new_trace, refuse_value_reads
from pycograd.core.tracebacks import PACKAGE_DIR, api_boundary
from pycograd.ops.shaping import broadcast_shapes, dtype_of, out_dtype, shape_of
from pycograd.routing.transparent import routed

_ABBREV = {"float64": "f64", "float32": "f32", "float16": "f16", "int64": "i64",
           "int32": "i32", "bool": "bool", "complex128": "c128", "complex64": "c64",
           "bfloat16": "bf16", "uint8": "u8", "int8": "i8"}


class ShapeDtypeStruct:
    """A shape and a dtype standing in for an array (``S((5, 2))`` in the examples).
    Dimensions given as strings are symbolic (``S(("batch", 784))``).

    Examples:
        >>> import numpy as np
        >>> from pycograd import ShapeDtypeStruct as S
        >>> S((5, 2)), S(("batch", 784), np.float32)
        (f64[5,2], f32[batch,784])
    """

    __slots__ = ("shape", "dtype")

    def __init__(self, shape: Any, dtype: Any = np.float64):
        shape = (shape,) if isinstance(shape, (Integral, str, Dim)) else tuple(shape)
        self.shape = tuple(Dim(d) if isinstance(d, str) else
                           d if isinstance(d, Dim) else int(d) for d in shape)
        self.dtype = np.dtype(dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> Any:
        return math.prod(self.shape)

    def __eq__(self, other: Any) -> bool:
        return (isinstance(other, ShapeDtypeStruct) and self.shape == other.shape
                and self.dtype == other.dtype)

    def __hash__(self) -> int:
        return hash((self.shape, self.dtype))

    def __repr__(self) -> str:
        name = _ABBREV.get(self.dtype.name, self.dtype.name)
        return f"{name}[{','.join(str(d) for d in self.shape)}]"


def _no_value(what: str) -> Callable:
    def refuse(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise DataDependentShapeError(
            f"{what} of an abstract value (shape {ShapeDtypeStruct(self.shape, self.dtype)!r})"
            " under eval_shape: it depends on data values, which eval_shape does not have "
            "(Python control flow such as `if x > 0:` needs them too); use np.where for a "
            "data-dependent choice, or eval_shape a function without the branch")
    return refuse


@refuse_value_reads(_no_value)
class AbstractTracer(Tracer):
    """A value with a shape and a dtype and no data."""

    __slots__ = ("shape", "dtype")

    def __init__(self, trace: AbstractTrace, shape: tuple, dtype: np.dtype):
        self._trace = trace
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)


    @property
    def size(self) -> Any:
        return math.prod(self.shape)

    def __array_function__(self, func: Any, types: tuple, args: tuple, kwargs: dict) -> Any:
        reason = _DATA_DEPENDENT.get(func)
        if reason is not None and (func is not np.where or len(args) + len(kwargs) == 1):
            raise DataDependentShapeError(
                f"np.{func.__name__}: the output shape depends on the data values ({reason}), "
                "which eval_shape does not have; size it outside eval_shape, or pad to a "
                "fixed size (e.g. np.where(mask, x, 0) keeps the shape)")
        if any(isinstance(t, Tracer) and not isinstance(t, AbstractTracer)
               for t in tree_flatten((args, kwargs))[0]):  # a transform above eval_shape's
            return Tracer.__array_function__(self, func, types, args, kwargs)
        if func in _LIKE:  # numpy_api would allocate the concrete array
            return _value_free(func, _LIKE[func], args, kwargs)
        try:
            return Tracer.__array_function__(self, func, types, args, kwargs)
        except NoRuleError:
            if func not in _VALUE_FREE:
                raise
        return _value_free(func, _VALUE_FREE[func], args, kwargs)

    def __repr__(self) -> str:
        return f"Abstract({ShapeDtypeStruct(self.shape, self.dtype)!r})"


class AbstractTrace(Trace):
    """Runs each primitive's shape rule; ``stages`` (when set) records each application
    for ``summary``."""

    __slots__ = ("stages",)

    def __init__(self, level: int, stages: _Stages | None = None):
        super().__init__(level)
        self.stages = stages

    def process(self, prim: Primitive, args: tuple, params: dict) -> Any:
        specs = [ShapeDtypeStruct(a.shape, a.dtype) if isinstance(a, AbstractTracer)
                 and a._trace is self else a for a in args]
        rule = prim.shape
        if rule is None:
            raise NoRuleError(f"eval_shape: {prim.name} has no shape rule")
        shape, dtype = rule(specs, **params)
        out = AbstractTracer(self, shape, dtype)
        if self.stages is not None:
            self.stages.record(prim.name, args, out)
        return out

    def lift(self, x: Any) -> AbstractTracer:
        """A concrete array as an abstract value of this trace (a constant table indexed by
        an abstract index)."""
        return AbstractTracer(self, np.shape(x), np.result_type(x))

    def index_placeholder(self, index: AbstractTracer) -> ShapeDtypeStruct:
        """What an abstract index array becomes inside ``getitem``'s params (called by
        ``numpy_api``): an integer array keeps its shape; a boolean mask selects a
        data-dependent number of elements."""
        if index.dtype == bool:
            raise DataDependentShapeError(
                f"boolean-mask indexing with an abstract mask "
                f"{ShapeDtypeStruct(index.shape, index.dtype)!r}: the number of selected "
                "elements depends on the data values, which eval_shape does not have; use "
                "np.where(mask, x, 0) to keep the shape, or pass the mask as a concrete array")
        if index.dtype.kind not in "iu":
            raise IndexingError(f"arrays used as indices must be of integer or boolean type, "
                                f"got {index.dtype}")
        return ShapeDtypeStruct(index.shape, index.dtype)


# ---- family rules -----------------------------------------------------------------

def shape_elementwise(prim: Primitive) -> Callable:
    def rule(args: list, **params: Any) -> tuple:
        return broadcast_shapes(prim.name, *map(shape_of, args)), out_dtype(prim, args, params)
    return rule


def shape_reduction(prim: Primitive) -> Callable:
    def rule(args: list, axis: Any, keepdims: bool) -> tuple:
        shape = shape_of(args[0])
        axes = range(len(shape)) if axis is None else axis
        out = tuple(1 if i in axes else d for i, d in enumerate(shape)) if keepdims else \
            tuple(d for i, d in enumerate(shape) if i not in axes)
        dummy = np.ones((1,) * len(shape), dtype=dtype_of(args[0]))
        return out, np.result_type(prim.impl(dummy, axis=axis, keepdims=keepdims))
    return rule


def shape_call(prim: Primitive) -> Callable:
    """Function-carrying primitives: evaluate the function itself abstractly."""
    def rule(args: list, fun: Callable, **params: Any) -> tuple:
        out = eval_shape(fun, *args)
        return out.shape, out.dtype
    return rule


family_rules("shape", {
    "elementwise": shape_elementwise,
    "cast": shape_elementwise,
    "reduction": shape_reduction,
    "call": shape_call,
})


# ---- indexing: computed, never materialized -----------------------------------------

# ---- numpy functions that are data-dependent, or value-free ------------------------

_DATA_DEPENDENT: dict[Callable, str] = {
    np.nonzero: "how many elements are nonzero",
    np.argwhere: "how many elements are nonzero",
    np.flatnonzero: "how many elements are nonzero",
    np.where: "np.where(cond) with one argument is np.nonzero(cond)",
    np.unique: "how many distinct values there are",
    np.extract: "how many elements the condition selects",
    np.compress: "how many elements the condition selects",
    np.trim_zeros: "how many zeros there are at the ends",
    **{getattr(np, n): "how many distinct values there are"
       for n in ("unique_values", "unique_counts", "unique_inverse", "unique_all")
       if hasattr(np, n)},
}


def _reduced(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False,
             **kwargs: Any) -> tuple:
    shape = shape_of(a)
    if axis is None:
        axes = set(range(len(shape)))
    else:
        axes = {int(x) % len(shape) for x in (axis if isinstance(axis, (tuple, list))
                                              else (axis,))}
    return tuple(1 if i in axes else d for i, d in enumerate(shape)) if keepdims else \
        tuple(d for i, d in enumerate(shape) if i not in axes)


def _argsort(a: Any, axis: Any = -1, **kwargs: Any) -> tuple:
    return ((math.prod(shape_of(a)),) if axis is None else shape_of(a)), np.dtype(np.intp)


def _like(a: Any, dtype: Any = None, order: Any = "K", subok: Any = True,
          shape: Any = None, **kwargs: Any) -> tuple:
    return (shape_of(a) if shape is None else tuple(shape) if isinstance(shape, (tuple, list))
            else (shape,)), np.dtype(dtype_of(a) if dtype is None else dtype)


_VALUE_FREE: dict[Callable, Callable] = {
    np.argmax: lambda *a, **k: (_reduced(*a, **k), np.dtype(np.intp)),
    np.argmin: lambda *a, **k: (_reduced(*a, **k), np.dtype(np.intp)),
    np.all: lambda *a, **k: (_reduced(*a, **k), np.dtype(bool)),
    np.any: lambda *a, **k: (_reduced(*a, **k), np.dtype(bool)),
    np.count_nonzero: lambda *a, **k: (_reduced(*a, **k), np.dtype(np.intp)),
    np.argsort: _argsort,
    np.isclose: lambda a, b, *r, **k: (broadcast_shapes("isclose", shape_of(a), shape_of(b)),
                                       np.dtype(bool)),
    np.searchsorted: lambda a, v, *r, **k: (shape_of(v), np.dtype(np.intp)),
}
"""Functions whose output shape follows from the input shapes and which carry no
gradient: where ``numpy_api`` has no abstract rule for one (it runs them on concrete
values), the abstract result is made directly."""

_LIKE: dict[Callable, Callable] = {
    np.zeros_like: _like,
    np.ones_like: _like,
    np.empty_like: _like,
    np.full_like: lambda a, fill_value, dtype=None, *r, **k: _like(a, dtype, **k),
}
"""Arrays whose values do not depend on the data: made abstract, never allocated."""


def _value_free(func: Callable, rule: Callable, args: tuple, kwargs: dict) -> AbstractTracer:
    shape, dtype = rule(*args, **kwargs)
    top = find_top(tree_flatten((args, kwargs))[0], func.__name__)
    return AbstractTracer(top, shape, dtype)


# ---- the transform ------------------------------------------------------------------

def _abstract(x: Any) -> Any:
    """A spec for an array or tracer; static values (Python numbers, dims, None) as is."""
    if x is None or isinstance(x, (ShapeDtypeStruct, Dim, str)) or type(x) in (
            bool, int, float, complex):
        return x
    if isinstance(x, Tracer):
        return ShapeDtypeStruct(x.shape, x.dtype)
    return ShapeDtypeStruct(np.shape(x), np.result_type(x))


def _run_abstract(f: Callable, args: tuple, stages: _Stages | None = None,
                  seen: Callable | None = None) -> Any:
    """The output specs of ``f(*args)``; ``seen`` is shown the arguments as ``f`` sees
    them (abstract) before it runs."""
    leaves, tree = tree_flatten(args)
    with new_trace(AbstractTrace, stages) as trace:
        ins = [AbstractTracer(trace, s.shape, s.dtype) if isinstance(s, ShapeDtypeStruct)
               else s for s in map(_abstract, leaves)]
        abstract_args = tree_unflatten(tree, ins)
        if seen is not None:
            seen(abstract_args)
        out = routed(f)(*abstract_args)
    out_leaves, out_tree = tree_flatten(out)
    return tree_unflatten(out_tree, [_abstract(o) for o in out_leaves])


@api_boundary
def eval_shape(f: Callable, *specs: Any) -> Any:
    """The output shapes and dtypes of ``f`` (a pytree of ``ShapeDtypeStruct``), computed
    with no data. Arguments may be ``ShapeDtypeStruct``s (with symbolic dims), arrays, or
    pytrees of them; arrays are only looked at for their shape and dtype.

    Raises ``ShapeError`` naming the op and shapes on a mismatch, and
    ``DataDependentShapeError`` when a shape depends on data values.

    Examples:
        >>> import numpy as np
        >>> from pycograd import ShapeDtypeStruct as S, eval_shape
        >>> eval_shape(lambda x, w: np.tanh(x @ w), S(("batch", 3)), S((3, 16)))
        f64[batch,16]
        >>> eval_shape(lambda x: {"mean": x.mean(0), "n": x.shape[0]}, S((8, 2)))["mean"]
        f64[2]
    """
    return _run_abstract(f, specs)


# ---- summary: stages, parameters, the table ------------------------------------------

_PKG = PACKAGE_DIR
_NN = _PKG + "nn" + os.sep
_EXAMPLES = _PKG + "examples" + os.sep
_LIBS = tuple(os.path.dirname(m.__file__) + os.sep for m in (np,))
_DSL_LIBS = tuple(os.sep + n + os.sep for n in ("pyccolo", "pipescript"))


def _is_library(filename: str) -> bool:
    if filename.startswith(_PKG):
        return not filename.startswith(_EXAMPLES)
    return filename.startswith(_LIBS) or filename.startswith(("<frozen", "<pyccolo")) \
        or any(d in filename for d in _DSL_LIBS)


def _compiled_stage(filename: str, line: int) -> bool:
    """Code the DSL compiled from the user's source (a ``|>`` stage, ``<sandbox-N>``): its
    lines are those of the user's code that runs it, further out."""
    return filename.startswith("<sandbox") and not linecache.getline(filename, line)


@dataclass
class Stage:
    """Consecutive primitives applied by one source line (or one call of a
    ``pycograd.nn`` function): its ops, output, and the parameters it reads."""

    layer: str
    ops: list[str]
    output: ShapeDtypeStruct
    params: list[str]
    source: str


class _Stages:
    """Groups primitive applications into stages by where they come from: the innermost
    frame of user code (file and line) and the outermost ``pycograd.nn`` call below it.
    Frames are held only while ``summary`` runs."""

    def __init__(self, param_names: dict[int, str]):
        self.param_names = param_names
        self.stages: list[Stage] = []
        self.last: tuple = ()

    def record(self, op: str, args: tuple, out: AbstractTracer) -> None:
        user, nn, filename = self._origin()
        pos = (user.f_lasti, user.f_lineno) if user is not None else (0, 0)
        last = self.last
        new = not last or user is not last[0] or pos[1] != last[1] or nn is not last[2] \
            or pos[0] < last[3]
        self.last = (user, pos[1], nn, pos[0])
        if new:
            name = nn.f_code.co_name if nn is not None else ""
            src = ""
            if user is not None and filename is not None:
                fn = filename
                text = linecache.getline(fn, pos[1]).strip()
                src = f"{os.path.basename(fn)}:{pos[1]}: {text}"
            self.stages.append(Stage(name, [], ShapeDtypeStruct(()), [], src))
        stage = self.stages[-1]
        if not stage.ops or stage.ops[-1] != op:
            stage.ops.append(op)
        stage.output = ShapeDtypeStruct(out.shape, out.dtype)
        for a in args:
            name = self.param_names.get(id(a))
            if name is not None and name not in stage.params:
                stage.params.append(name)

    @staticmethod
    def _origin() -> tuple:
        """(innermost user frame, outermost nn frame below it, the user file it is in)."""
        frame = sys._getframe(1)
        nn = stage = None
        while frame is not None:
            fn = frame.f_code.co_filename
            if _compiled_stage(fn, frame.f_lineno):
                stage = stage or frame
            elif not _is_library(fn):
                return stage or frame, nn, fn
            if fn.startswith(_NN):
                nn = frame
            frame = frame.f_back
        return stage, nn, None

    def close(self) -> None:
        self.last = ()


def _named_leaves(tree: Any, prefix: str = "") -> list:
    """``(dotted name, leaf, trainable)`` for each parameter; a ``ParamDict`` lists every
    entry once under its canonical name (tied names are the same array)."""
    from pycograd.params import ParamDict

    if isinstance(tree, ParamDict):
        return [(prefix + n, v, tree.kind(n) == "param") for n, v in tree.items()
                if tree.canonical(n) == n]
    if isinstance(tree, dict) or hasattr(tree, "items") and not isinstance(tree, np.ndarray):
        return [leaf for k, v in tree.items() for leaf in _named_leaves(v, f"{prefix}{k}.")]
    if isinstance(tree, (list, tuple)):
        return [leaf for i, v in enumerate(tree) for leaf in _named_leaves(v, f"{prefix}{i}.")]
    return [(prefix[:-1] or "params", tree, True)]


@dataclass
class Summary:
    """What ``summary`` found; ``str()`` is the printed table."""

    params: list[tuple[str, ShapeDtypeStruct, Any, bool]]  # name, spec, count, trainable
    stages: list[Stage]
    inputs: list[Any]
    output: Any
    total: Any
    trainable: Any
    table: str = field(repr=False, default="")

    def __str__(self) -> str:
        return self.table


def _is_shape(s: Any) -> bool:
    """A shape as ``summary`` takes it: a tuple, or a list of dims (``[5, 3]``, ``["batch",
    3]``), which would otherwise be read as an array of those numbers."""
    return isinstance(s, tuple) or isinstance(s, list) and all(
        isinstance(d, (Integral, str, Dim)) and not isinstance(d, bool) for d in s)


@api_boundary
def summary(f: Callable, params: Any, *input_shapes: Any, file: Any = None,
            verbose: bool = True) -> Summary:
    """Print (and return) a torchinfo-style table of ``f(params, *inputs)``: each parameter
    (dotted name, shape, dtype, count), the output shape of each stage, the total
    parameter count, and the output. Runs ``f`` abstractly: no data, no allocation.

    ``params`` is a (nested) dict, a ``ParamDict`` (frozen entries and buffers are listed
    and counted as non-trainable), or any pytree of arrays / ``ShapeDtypeStruct``s;
    ``input_shapes`` are shapes (tuples or lists, symbolic dims allowed), ``ShapeDtypeStruct``s, or
    arrays.

    Stages. Primitives are too fine-grained to be a network's layers, so consecutive
    primitives are grouped by where they come from: one stage per execution of a line of
    the user's code (``h = np.tanh(x @ w1 + b1)`` is one stage: matmul, add, tanh), and a
    call of a ``pycograd.nn`` function (``linear``, ``layer_norm``, ``conv2d``,
    ``multi_head_attention``...) is one stage named after it, however many primitives it
    takes and whichever nn functions it calls inside. A stage's params are the parameters
    its primitives read directly. The grouping reads the calling frames only while
    ``summary`` runs (a frame walk per primitive), so it costs nothing anywhere else.

    Examples:
        >>> import numpy as np
        >>> from pycograd import summary
        >>> def model(p, x):
        ...     return np.tanh(x @ p["w"] + p["b"])
        >>> info = summary(model, {"w": np.zeros((3, 4)), "b": np.zeros(4)}, ("batch", 3),
        ...                verbose=False)
        >>> info.total, str(info.output)
        (16, 'f64[batch,4]')
    """
    inputs = [ShapeDtypeStruct(s) if _is_shape(s) else s for s in input_shapes]
    rows = []
    for name, leaf, trainable in _named_leaves(params):
        spec = leaf if isinstance(leaf, ShapeDtypeStruct) else \
            ShapeDtypeStruct(np.shape(leaf), np.result_type(leaf))
        rows.append((name, spec, math.prod(spec.shape), trainable))
    names: dict[int, str] = {}

    def name_params(args: tuple) -> None:  # the params f sees are matched by identity
        names.update((id(leaf), name) for name, leaf, _ in _named_leaves(args[0])
                     if isinstance(leaf, (Tracer, np.ndarray)))

    stages = _Stages(names)
    try:
        out = _run_abstract(_ambient(f, params), (params, *inputs), stages, name_params)
    finally:
        stages.close()
    total = sum((n for _, _, n, _ in rows), 0)
    trainable = sum((n for _, _, n, t in rows if t), 0)
    result = Summary(rows, stages.stages, [_abstract(s) for s in inputs], out, total, trainable)
    result.table = _table(result)
    if verbose:
        print(result.table, file=file)
    return result


def _ambient(f: Callable, params: Any) -> Callable:
    """``f``, and when ``params`` is a ``ParamDict``, with its weight names bound to the
    abstract values while ``f`` runs (as ``weights.grad`` binds them to traced ones), so a
    model that reads its weights by bare name is seen reading them."""
    from pycograd.params import ParamDict

    if not isinstance(params, ParamDict):
        return f

    def bound(p: Any, *inputs: Any) -> Any:
        with params.bind(dict(p.items()), f):
            return routed(f)(p, *inputs)

    return bound


def _table(s: Summary) -> str:
    def cut(text: str, n: int) -> str:
        return text if len(text) <= n else text[:n - 3] + "..."

    rule, thin = "=" * 100, "-" * 100
    lines = [rule, f"{'Parameter':<40}{'Shape':<24}{'Dtype':<14}{'Count':>12}", thin]
    for name, spec, n, trainable in s.params:
        label = name if trainable else f"{name} (non-trainable)"
        lines.append(f"{cut(label, 39):<40}{cut(str(spec.shape), 23):<24}"
                     f"{spec.dtype.name:<14}{str(n):>12}")
    lines += [rule, f"{'Stage':<7}{'Layer / ops':<24}{'Output':<20}{'Params':>9}   Source", thin]
    counts = {name: n for name, _, n, _ in s.params}
    for i, st in enumerate(s.stages, 1):
        n = sum((counts.get(p, 0) for p in st.params), 0)
        lines.append(f"{i:<7}{cut(st.layer or ', '.join(st.ops), 23):<24}"
                     f"{cut(repr(st.output), 19):<20}{str(n) if st.params else '-':>9}   "
                     f"{st.source}")
    lines += [rule,
              f"Input: {', '.join(map(repr, s.inputs))}",
              f"Output: {s.output!r}",
              f"Total params: {s.total}",
              f"Trainable params: {s.trainable}",
              f"Non-trainable params: {s.total - s.trainable}",
              rule]
    return "\n".join(lines)
