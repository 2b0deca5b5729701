"""Lowerings to ONNX, written with the ``onnx`` package's helper API (no torch involved).

An ONNX rule is ``rule(b, node, *args) -> output name``: ``b`` is the ``Builder`` being
filled, ``node`` the graph node (its output type, its parameters) and ``args`` the names
of the ONNX values of its arguments (literals are made constants first). Symbolic
dimensions (the dynamic batch) are read from the inputs' shapes inside the model
(``Shape`` ops), so the model runs at any batch size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from pycograd.backends.lowering import dim_sources, promoted_literals, register, rule_for
from pycograd.core.primitive import Primitive
from pycograd.core.symbolic import Dim
from pycograd.graph.ir import Graph, Value

OPSET = 18


def onnx_type(dtype: Any) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


class Builder:
    """The nodes and initializers of one ONNX graph under construction."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.nodes: list = []
        self.inits: list = []
        self.count = 0
        self.dim_src = dim_sources(graph)
        self.input_names: dict[int, str] = {}
        self.dim_cache: dict[str, str] = {}

    def fresh(self, hint: str = "t") -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def op(self, op_type: str, inputs: list[str], **attrs: Any) -> str:
        out = self.fresh(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def const(self, value: Any, dtype: Any = None) -> str:
        arr = np.asarray(value, dtype=dtype)
        name = self.fresh("const")
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def ints(self, values: Any) -> str:
        return self.const(np.asarray(list(values), dtype=np.int64))

    def dim(self, d: Any) -> str:
        """A 1-element int64 tensor holding the value of ``d`` (an int or a ``Dim``)."""
        if not isinstance(d, Dim):
            return self.ints([d])
        total = None
        for mono, coeff in d.terms.items():
            term = self.ints([coeff])
            for name in mono:
                term = self.op("Mul", [term, self._symbol(name)])
            total = term if total is None else self.op("Add", [total, term])
        return total if total is not None else self.ints([0])

    def _symbol(self, name: str) -> str:
        if name not in self.dim_cache:
            i, ax = self.dim_src[name]
            self.dim_cache[name] = self.op("Shape", [self.input_names[i]], start=ax, end=ax + 1)
        return self.dim_cache[name]

    def shape(self, dims: Any) -> str:
        """A 1-D int64 shape tensor for ``dims`` (ints and ``Dim``s)."""
        if all(not isinstance(d, Dim) for d in dims):
            return self.ints(dims)
        return self.op("Concat", [self.dim(d) for d in dims], axis=0)

    def cast(self, name: str, src: Any, dst: Any) -> str:
        if np.dtype(src) == np.dtype(dst):
            return name
        return self.op("Cast", [name], to=onnx_type(dst))


# ---- rules ------------------------------------------------------------------------------

_UNARY = {
    "negative": "Neg", "absolute": "Abs", "fabs": "Abs", "sqrt": "Sqrt", "exp": "Exp",
    "log": "Log", "sin": "Sin", "cos": "Cos", "tan": "Tan", "arcsin": "Asin",
    "arccos": "Acos", "arctan": "Atan", "sinh": "Sinh", "cosh": "Cosh", "tanh": "Tanh",
    "arcsinh": "Asinh", "arccosh": "Acosh", "arctanh": "Atanh", "reciprocal": "Reciprocal",
    "floor": "Floor", "ceil": "Ceil", "rint": "Round", "sign": "Sign", "erf": "Erf",
    "expit": "Sigmoid", "isnan": "IsNaN", "stop_gradient": "Identity",
    "positive": "Identity",
}
_BINARY = {
    "add": "Add", "subtract": "Sub", "multiply": "Mul", "divide": "Div", "power": "Pow",
    "maximum": "Max", "minimum": "Min", "greater": "Greater", "greater_equal": "GreaterOrEqual",
    "less": "Less", "less_equal": "LessOrEqual", "equal": "Equal", "logical_and": "And",
    "logical_or": "Or", "logical_xor": "Xor",
}


def _operands(b: Builder, node: Any, args: tuple) -> list[str]:
    """The arguments cast to the dtype the op computes in (numpy's promotion)."""
    dtypes = [a.dtype if isinstance(a, Value) else node.out.dtype if isinstance(a, Dim)
              else np.asarray(a).dtype for a in promoted_literals(node)]
    want = np.result_type(*dtypes)
    return [b.cast(name, dt, want) for name, dt in zip(args, dtypes)]


def _truth(b: Builder, arg: Any, name: str) -> str:
    dtype = arg.dtype if isinstance(arg, Value) else np.result_type(arg)
    return name if np.dtype(dtype).kind == "b" else b.op("Cast", [name], to=TensorProto.BOOL)


def _elementwise(prim: Primitive) -> Any:
    name = prim.name
    if name in _UNARY:
        return lambda b, node, x: b.op(_UNARY[name], [x])
    if name in ("logical_and", "logical_or", "logical_xor"):  # numpy: truth values
        return lambda b, node, x, y: b.op(_BINARY[name], [_truth(b, node.args[0], x),
                                                          _truth(b, node.args[1], y)])
    if name == "logical_not":
        return lambda b, node, x: b.op("Not", [_truth(b, node.args[0], x)])
    if name in _BINARY:
        def binary(b: Builder, node: Any, x: str, y: str) -> str:
            op = _BINARY[name]
            if node.out.dtype.kind == "b":  # numpy: + and * of booleans are or / and
                op = {"Add": "Or", "Mul": "And", "Max": "Or", "Min": "And"}.get(op, op)
            return b.op(op, _operands(b, node, (x, y)))
        return binary
    extra = {
        "square": lambda b, node, x: b.op("Mul", [x, x]),
        "log1p": lambda b, node, x: b.op("Log", [b.op("Add", [x, b.const(1, node.out.dtype)])]),
        "expm1": lambda b, node, x: b.op("Sub", [b.op("Exp", [x]), b.const(1, node.out.dtype)]),
        "not_equal": lambda b, node, x, y: b.op("Not", [b.op("Equal", _operands(
            b, node, (x, y)))]),
        "isinf": lambda b, node, x: b.op("IsInf", [x]),
        "isfinite": lambda b, node, x: b.op("Not", [b.op("Or", [b.op("IsNaN", [x]),
                                                                b.op("IsInf", [x])])]),
        "where": lambda b, node, c, x, y: b.op("Where", [c, x, y]),
    }
    return extra.get(name)


def _reduce(op_type: str) -> Any:
    def rule(b: Builder, node: Any, x: str) -> str:
        axis, keepdims = node.params["axis"], int(bool(node.params["keepdims"]))
        if axis is None:
            return b.op(op_type, [x], keepdims=keepdims)
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        if not axes:
            return b.op("Identity", [x])
        return b.op(op_type, [x, b.ints(axes)], keepdims=keepdims)
    return rule


def _getitem(b: Builder, node: Any, x: str, *arrays: str) -> str:
    """Basic indexing (ints, slices, None, Ellipsis) as Slice, Squeeze and Unsqueeze."""
    idx = node.params["idx"]
    parts = list(idx) if isinstance(idx, tuple) else [idx]
    src = node.args[0]
    if any(p is Ellipsis for p in parts):
        k = parts.index(Ellipsis)
        used = sum(1 for p in parts if p is not None and p is not Ellipsis)
        parts[k:k + 1] = [slice(None)] * (src.ndim - used)
    starts, ends, axes, steps, squeeze, unsqueeze = [], [], [], [], [], []
    ax = 0
    out_ax = 0
    for p in parts:
        if p is None:
            unsqueeze.append(out_ax)
            out_ax += 1
            continue
        if isinstance(p, (int, np.integer)):
            starts.append(int(p))
            ends.append(int(p) + 1 if int(p) != -1 else np.iinfo(np.int64).max)
            axes.append(ax)
            steps.append(1)
            squeeze.append(ax)
        elif isinstance(p, slice):
            if p != slice(None):
                step = 1 if p.step is None else p.step
                big = np.iinfo(np.int64).max
                starts.append(p.start if p.start is not None else (0 if step > 0 else big))
                ends.append(p.stop if p.stop is not None else (big if step > 0 else -big))
                axes.append(ax)
                steps.append(step)
            out_ax += 1
        ax += 1
    out = x
    if axes:
        out = b.op("Slice", [out, b.ints(starts), b.ints(ends), b.ints(axes), b.ints(steps)])
    if squeeze:
        out = b.op("Squeeze", [out, b.ints(squeeze)])
    if unsqueeze:
        out = b.op("Unsqueeze", [out, b.ints(unsqueeze)])
    return out if out != x else b.op("Identity", [x])


def _basic(idx: Any) -> bool:
    parts = idx if isinstance(idx, tuple) else (idx,)
    return all(p is None or p is Ellipsis or isinstance(p, (slice, int, np.integer))
               for p in parts)


def _gru_gates(b: Builder, node: Any, xg: str, hg: str, h: str) -> str:
    """``ops.gates.gru_math`` in ONNX operators (Slice on the last axis for the gates)."""
    H = node.args[2].shape[-1]
    xg, hg, h = _operands(b, node, (xg, hg, h))
    half = b.const(0.5, node.out.dtype)

    def cut(x: str, start: int, end: int) -> str:
        return b.op("Slice", [x, b.ints([start]), b.ints([end]), b.ints([-1])])

    s = b.op("Add", [cut(xg, 0, 2 * H), cut(hg, 0, 2 * H)])
    rz = b.op("Add", [half, b.op("Mul", [half, b.op("Tanh", [b.op("Mul", [half, s])])])])
    n = b.op("Tanh", [b.op("Add", [cut(xg, 2 * H, 3 * H),
                                   b.op("Mul", [cut(rz, 0, H), cut(hg, 2 * H, 3 * H)])])])
    return b.op("Add", [n, b.op("Mul", [cut(rz, H, 2 * H), b.op("Sub", [h, n])])])


def _softmax(op_type: str) -> Any:
    """``Softmax`` / ``LogSoftmax`` along one axis; over several, through
    ``ReduceLogSumExp``."""
    def rule(b: Builder, node: Any, x: str) -> str:
        axis = node.params["axis"]
        if len(axis) == 1:
            return b.op(op_type, [x], axis=axis[0])
        z = b.op("Sub", [x, b.op("ReduceLogSumExp", [x, b.ints(axis)], keepdims=1)
                         if axis else x])  # a 0-d input: log-probability 0
        return z if op_type == "LogSoftmax" else b.op("Exp", [z])
    return rule


def _layer_norm(b: Builder, node: Any, x: str, *wb: str) -> str:
    """The statistics over ``axis`` in the input's dtype, then the affine arguments in the
    result's (numpy's promotion)."""
    axes, src, dst = b.ints(node.params["axis"]), node.args[0].dtype, node.out.dtype
    d = b.op("Sub", [x, b.op("ReduceMean", [x, axes], keepdims=1)])
    var = b.op("ReduceMean", [b.op("Mul", [d, d]), axes], keepdims=1)
    y = b.op("Div", [d, b.op("Sqrt", [b.op("Add", [var, b.const(node.params["eps"], src)])])])
    y = b.cast(y, src, dst)
    for name, p, arg in zip(node.params["affine"], wb, node.args[1:]):
        dt = arg.dtype if isinstance(arg, Value) else np.result_type(arg)
        y = b.op("Mul" if name == "weight" else "Add", [y, b.cast(p, dt, dst)])
    return y


BY_NAME = {
    "gru_gates": _gru_gates,
    "softmax": _softmax("Softmax"), "log_softmax": _softmax("LogSoftmax"),
    "layer_norm": _layer_norm,
    "sum": _reduce("ReduceSum"), "max": _reduce("ReduceMax"), "min": _reduce("ReduceMin"),
    "prod": _reduce("ReduceProd"),
    "matmul": lambda b, node, x, y: b.op("MatMul", _operands(b, node, (x, y))),
    "einsum": lambda b, node, *xs: b.op("Einsum", list(xs), equation=node.params["spec"]),
    "transpose": lambda b, node, x: b.op("Transpose", [x], perm=list(
        node.params["axes"] if node.params["axes"] is not None
        else range(node.args[0].ndim - 1, -1, -1))),
    "reshape": lambda b, node, x: b.op("Reshape", [x, b.shape(node.params["shape"])]),
    "broadcast_to": lambda b, node, x: b.op("Expand", [x, b.shape(node.params["shape"])]),
    "concatenate": lambda b, node, *xs: b.op("Concat", list(xs), axis=node.params["axis"]),
    "astype": lambda b, node, x: b.op("Cast", [x], to=onnx_type(node.params["dtype"])),
    "getitem": _getitem,
    "cumsum": lambda b, node, x: b.op("CumSum", [x, b.const(node.params["axis"], np.int64)]),
    "take_along": lambda b, node, x, i: b.op("GatherElements", [x, i],
                                             axis=node.params["axis"]),
}


def _refuse(node: Any) -> str | None:
    if node.prim.name == "getitem" and not _basic(node.params["idx"]):
        return "an advanced (array) index"
    if node.prim.name in ("cumsum",) and node.params.get("axis") is None:
        return "a flattening cumsum"
    if node.prim.name in ("sum", "max", "min", "prod") and node.args[0].dtype.kind == "b":
        return "a boolean reduction"
    if any(isinstance(a, Value) and a.dtype.kind == "c" for a in node.args) or \
            node.out.dtype.kind == "c":
        return "complex values (ONNX has no complex tensors in these ops)"
    return None


register("onnx", BY_NAME, {"elementwise": _elementwise}, _refuse)


def to_model(graph: Graph, input_names: list[str] | None = None,
             output_names: list[str] | None = None, weights_as_inputs: bool = False
             ) -> onnx.ModelProto:
    """The ONNX model of ``graph``: its positional inputs are the model's inputs (symbolic
    dims as named dims), its weights initializers holding their current values."""
    from pycograd.backends.lowering import check_lowerable

    check_lowerable(graph, "onnx")
    b = Builder(graph)
    names: dict[int, str] = {}
    npos = graph.num_positional
    inputs = []
    in_names = input_names or [v.name or f"input{i}" for i, v in enumerate(graph.inputs[:npos])]
    for i, v in enumerate(graph.inputs):
        if i < npos:
            names[v.id] = in_names[i]
            shape = [str(d) if isinstance(d, Dim) else d for d in v.shape]
            inputs.append(helper.make_tensor_value_info(names[v.id], onnx_type(v.dtype), shape))
        else:
            pd, wname = graph.weight_sources[i - npos]
            names[v.id] = wname
            b.inits.append(numpy_helper.from_array(np.asarray(pd[wname], dtype=v.dtype), wname))
        b.input_names[i] = names[v.id]
    for c in graph.consts:
        names[c.id] = b.const(np.asarray(c.const))
    for node in graph.nodes:
        args = []
        for a in promoted_literals(node):
            if isinstance(a, Value):
                args.append(names[a.id])
            elif isinstance(a, np.ndarray):
                args.append(b.const(a))
            elif isinstance(a, Dim):
                args.append(b.cast(b.op("Squeeze", [b.dim(a), b.ints([0])]), np.int64,
                                   node.out.dtype))
            else:
                args.append(a)
        names[node.out.id] = rule_for(node.prim, "onnx")(b, node, *args)
    outputs = []
    out_names = output_names or [f"output{i}" for i in range(len(graph.outputs))]
    for name, o in zip(out_names, graph.outputs):
        b.nodes.append(helper.make_node("Identity", [names[o.id]], [name]))
        shape = [str(d) if isinstance(d, Dim) else d for d in o.shape]
        outputs.append(helper.make_tensor_value_info(name, onnx_type(o.dtype), shape))
    g = helper.make_graph(b.nodes, graph.name, inputs, outputs, b.inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="pycograd")
    model.ir_version = min(model.ir_version, 10)
    return model


def to_framework(x: Any, device: Any = None) -> Any:
    return np.asarray(x)


def signature(x: Any) -> tuple:
    return (np.shape(x), str(np.result_type(x)))
