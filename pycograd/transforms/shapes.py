"""``eval_shape``: the abstract interpreter, and ``summary`` on top of it.

An ``AbstractTracer`` has a shape and a dtype and no data, so a 100000 x 100000 matmul is
sized without allocating anything. Each primitive's shape rule comes from its family
(elementwise broadcasting, reductions, calls) or is declared with the primitive. Dtypes are
found by running the primitive on 0-d stand-ins, so numpy's promotion rules hold exactly.
Dimensions may be symbolic (``ShapeDtypeStruct(("batch", 784))``); a shape that depends
on data values (boolean masks, nonzero) raises ``DataDependentShapeError``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from pycograd.core.errors import NoRuleError, ShapeError
from pycograd.core.primitive import Primitive, family_rules
from pycograd.core.pytree import tree_flatten, tree_unflatten
from pycograd.core.symbolic import Dim
from pycograd.core.trace import Trace, Tracer, new_trace
from pycograd.numpy_api.transparent import routed
from pycograd.ops.shaping import broadcast_shapes, dtype_of, out_dtype, shape_of


class DataDependentShapeError(ShapeError):
    """An output whose shape depends on the values of the data, not only on shapes."""


_ABBREV = {"float64": "f64", "float32": "f32", "float16": "f16", "int64": "i64",
           "int32": "i32", "bool": "bool", "complex128": "c128", "complex64": "c64",
           "bfloat16": "bf16", "uint8": "u8", "int8": "i8"}


class ShapeDtypeStruct:
    """A shape and a dtype standing in for an array (``S((5, 2))`` in the examples).
    Dimensions given as strings are symbolic."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape: Any, dtype: Any = np.float64):
        shape = (shape,) if isinstance(shape, (int, str, Dim)) else tuple(shape)
        self.shape = tuple(Dim(d) if isinstance(d, str) else d for d in shape)
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


class AbstractTracer(Tracer):
    __slots__ = ("shape", "dtype")

    def __init__(self, trace: AbstractTrace, shape: tuple, dtype: np.dtype):
        self._trace = trace
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)

    def __bool__(self) -> bool:
        raise DataDependentShapeError(
            "bool() of an abstract value under eval_shape: control flow that depends on data "
            "values cannot be sized without data; use np.where, or eval_shape a function "
            "without the branch")

    def __repr__(self) -> str:
        return f"Abstract({ShapeDtypeStruct(self.shape, self.dtype)!r})"


class AbstractTrace(Trace):
    __slots__ = ("log",)

    def __init__(self, level: int, log: list | None = None):
        super().__init__(level)
        self.log = log

    def process(self, prim: Primitive, args: tuple, params: dict) -> Any:
        specs = [ShapeDtypeStruct(a.shape, a.dtype) if isinstance(a, AbstractTracer)
                 and a._trace is self else a for a in args]
        rule = prim.shape
        if rule is None:
            raise NoRuleError(f"eval_shape: {prim.name} has no shape rule")
        shape, dtype = rule(specs, **params)
        out = AbstractTracer(self, shape, dtype)
        if self.log is not None:
            self.log.append((prim.name, out))
        return out


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


# ---- the transforms ----------------------------------------------------------------

def _abstract(x: Any) -> ShapeDtypeStruct:
    if isinstance(x, ShapeDtypeStruct):
        return x
    if isinstance(x, Tracer):
        return ShapeDtypeStruct(x.shape, x.dtype)
    return ShapeDtypeStruct(np.shape(x), np.result_type(x))


def _run_abstract(f: Callable, specs: tuple, log: list | None) -> Any:
    leaves, tree = tree_flatten(specs)
    with new_trace(AbstractTrace, log) as trace:
        ins = [AbstractTracer(trace, s.shape, s.dtype) for s in map(_abstract, leaves)]
        out = routed(f)(*tree_unflatten(tree, ins))
    out_leaves, out_tree = tree_flatten(out)
    return tree_unflatten(out_tree, [_abstract(o) for o in out_leaves])


def eval_shape(f: Callable, *specs: Any) -> Any:
    """The output shapes and dtypes of ``f`` (a pytree of ``ShapeDtypeStruct``), computed
    with no data. Arguments may be ``ShapeDtypeStruct``s, arrays, or pytrees of them."""
    return _run_abstract(f, specs, None)


def _count(shape: tuple) -> Any:
    return math.prod(shape)


def summary(f: Callable, params: Any, *input_shapes: Any, file: Any = None) -> str:
    """Print (and return) a torchinfo-style table of ``f(params, *inputs)``: each parameter
    (name, shape, dtype, count), the output shape of each stage, and the total count.
    ``input_shapes`` are shapes (tuples) or ``ShapeDtypeStruct``s."""
    named = _named_leaves(params)
    inputs = [s if isinstance(s, ShapeDtypeStruct) or not isinstance(s, tuple)
              else ShapeDtypeStruct(s) for s in input_shapes]
    log: list = []
    out = _run_abstract(f, (params, *inputs), log)
    lines = [f"{'parameter':<24}{'shape':<20}{'dtype':<10}{'count':>12}"]
    total = 0
    for name, leaf in named:
        spec = _abstract(leaf)
        n = _count(spec.shape)
        total = total + n
        lines.append(f"{name:<24}{str(spec.shape):<20}{spec.dtype.name:<10}{str(n):>12}")
    lines.append("")
    lines.append(f"{'stage':<6}{'op':<18}{'output':<30}")
    for i, (op, t) in enumerate(log):
        lines.append(f"{i:<6}{op:<18}{ShapeDtypeStruct(t.shape, t.dtype)!r:<30}")
    lines.append("")
    lines.append(f"output: {out!r}")
    lines.append(f"total parameters: {total}")
    text = "\n".join(lines)
    print(text, file=file)
    return text


def _named_leaves(tree: Any, prefix: str = "") -> list:
    if isinstance(tree, dict) or hasattr(tree, "items") and not isinstance(tree, np.ndarray):
        out = []
        for k, v in tree.items():
            out.extend(_named_leaves(v, f"{prefix}{k}."))
        return out
    if isinstance(tree, (list, tuple)):
        out = []
        for i, v in enumerate(tree):
            out.extend(_named_leaves(v, f"{prefix}{i}."))
        return out
    return [(prefix[:-1] or "param", tree)]

