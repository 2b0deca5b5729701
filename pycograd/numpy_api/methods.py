"""The ndarray surface of every tracer: numpy's two protocols, the Python operators and
the array methods people use. Attached to ``Tracer`` here so that the core stays about
the interpreter stack. Operators bind primitives directly: no protocol round trip on the
hot path."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from pycograd.core.errors import (
    ArgumentTypeError,
    ImmutableTracerError,
    NoRuleError,
    TracerConversionError,
)
from pycograd.core.trace import Tracer, bind
from pycograd.numpy_api import functions as F
from pycograd.numpy_api.list_args import with_lists_built
from pycograd.numpy_api.ufuncs import PRIMS, array_ufunc

_NO_PARAMS: dict = {}


def _array_function(self: Any, func: Any, types: tuple, args: tuple, kwargs: dict) -> Any:
    rule = F.HANDLED.get(func)
    if rule is None:
        raise NoRuleError(
            f"{_qualname(func)} has no differentiation rule in pycograd (called on a traced "
            "value); express it with differentiable numpy ops, or wrap it with "
            "pycograd.custom_vjp")
    for a in args:
        if type(a) in (list, tuple):  # np.append([a, b], c): lists of traced values
            built = with_lists_built(func, args, kwargs, dispatched=True)
            if built is not None:
                args, kwargs = built
            break
    return rule(*args, **kwargs)


def _qualname(func: Any) -> str:
    """``np.linalg.det`` for numpy's functions, ``module.name`` for others."""
    mod = getattr(func, "__module__", None) or "numpy"
    if mod in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray"):
        mod = "numpy"
    if mod == "numpy" or mod.startswith("numpy."):
        mod = "np" + mod[len("numpy"):]
    return f"{mod}.{func.__name__}"


def _binary(ufunc: np.ufunc) -> tuple:
    prim = PRIMS[ufunc]

    def op(self: Any, other: Any) -> Any:
        return bind(prim, (self, other), _NO_PARAMS)

    def rop(self: Any, other: Any) -> Any:
        return bind(prim, (other, self), _NO_PARAMS)

    return op, rop


def _unary(ufunc: np.ufunc) -> Any:
    prim = PRIMS[ufunc]
    return lambda self: bind(prim, (self,), _NO_PARAMS)


_TO_NUMBER = ("keep x an array and use numpy ops on it (np.sin(x), not math.sin(x)); "
              "to read the number without its gradient, write {what}(pycograd.stop_gradient(x))")

# What each conversion would do, and what to write instead.
CONVERSIONS = {
    "__array__": ("np.asarray(x) / np.array(x)",
                  "pass x itself to numpy functions (they accept traced values); build arrays "
                  "from traced pieces with np.stack / np.concatenate; for the value without its "
                  "gradient, write pycograd.stop_gradient(x)"),
    "__float__": ("float(x)", _TO_NUMBER.format(what="float")),
    "__int__": ("int(x)", _TO_NUMBER.format(what="int")),
    "__complex__": ("complex(x)", _TO_NUMBER.format(what="complex")),
    "item": ("x.item()", _TO_NUMBER.format(what="float")),
    "tolist": ("x.tolist()", "keep x an array; for the values without their gradient, write "
               "pycograd.stop_gradient(x).tolist()"),
    "__index__": ("using x as an index or a size",
                  "indices must be integers, which carry no gradient: index with an integer "
                  "array, or compute the index with np.argmax / np.searchsorted"),
}


_R_C_FIX = ("write pycograd.r_[...] / pycograd.c_[...] (np.r_ / np.c_ are routed only in "
            "functions whose source pycograd can read)")


def _conversion(kind: str, fix: str) -> Any:
    def convert(self: Any, *args: Any, **kwargs: Any) -> Any:
        caller = sys._getframe(1).f_code.co_filename
        raise TracerConversionError(
            f"{kind}, where x is a traced value (shape {self.shape}), would silently drop its "
            f"gradient; instead, {_R_C_FIX if caller.endswith('_index_tricks_impl.py') else fix}")
    return convert


def _setitem(self: Any, idx: Any, value: Any) -> None:
    raise ImmutableTracerError(
        "traced arrays are immutable: `x[i] = v` would lose the gradient. Build a new array "
        "instead: x = pycograd.scatter_set(x, i, v) (or x = pycograd.scatter_add(x, i, v) for "
        "x[i] += v), x = np.where(mask, v, x), or np.concatenate / np.stack of the pieces")


def _in_place(name: str) -> Any:
    def fail(self: Any, *args: Any, **kwargs: Any) -> None:
        raise ImmutableTracerError(f"x.{name}() works in place, and traced arrays are "
                                   f"immutable; write x = np.{name}(x, ...) instead")
    return fail


def _iter(self: Any) -> Any:
    if not self.shape:
        raise ArgumentTypeError("iteration over a 0-d traced array")
    return (self[i] for i in range(self.shape[0]))


def _len(self: Any) -> int:
    if not self.shape:
        raise ArgumentTypeError("len() of unsized (0-d) traced array")
    return self.shape[0]


def _shape_args(shape: tuple) -> Any:
    return shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape


SURFACE = {
    "__array_ufunc__": array_ufunc,
    "__array_function__": _array_function,
    **{name: _conversion(*why) for name, why in CONVERSIONS.items()},
    "__setitem__": _setitem,
    "__getitem__": F.getitem,
    "__iter__": _iter,
    "__len__": _len,
    "ndim": property(lambda self: len(self.shape)),
    "size": property(lambda self: int(np.prod(self.shape))),
    "T": property(lambda self: F.transpose(self)),
    "mT": property(lambda self: F.swapaxes(self, -1, -2)),
    "reshape": lambda self, *shape, order="C": F.reshape(self, _shape_args(shape), order),
    "transpose": lambda self, *axes: F.transpose(self, _shape_args(axes) or None),
    "swapaxes": F.swapaxes,
    "flatten": lambda self, order="C": F.ravel(self, order),
    "ravel": F.ravel,
    "squeeze": F.squeeze,
    "sum": F.sum,
    "prod": F.prod,
    "mean": F.mean,
    "var": F.var,
    "std": F.std,
    "max": F.max,
    "min": F.min,
    "clip": F.clip,
    "dot": F.dot,
    "round": F.round,
    "astype": F.astype,
    "copy": lambda self, order="C": self,
    "sort": _in_place("sort"),
    "partition": _in_place("partition"),
    "__neg__": _unary(np.negative),
    "__pos__": _unary(np.positive),
    "__abs__": _unary(np.absolute),
    "__invert__": lambda self: np.invert(self),
    "__lt__": _binary(np.less)[0],
    "__le__": _binary(np.less_equal)[0],
    "__gt__": _binary(np.greater)[0],
    "__ge__": _binary(np.greater_equal)[0],
    "__eq__": _binary(np.equal)[0],
    "__ne__": _binary(np.not_equal)[0],
    "__hash__": None,
}
for _name, _uf in [("add", np.add), ("sub", np.subtract), ("mul", np.multiply),
                   ("truediv", np.divide), ("pow", np.power), ("matmul", np.matmul),
                   ("mod", np.remainder), ("floordiv", np.floor_divide)]:
    SURFACE[f"__{_name}__"], SURFACE[f"__r{_name}__"] = _binary(_uf)
for _name, _uf in [("and", np.bitwise_and), ("or", np.bitwise_or), ("xor", np.bitwise_xor)]:
    # through the ufunc: on traced masks these are the logical ufuncs (ufuncs.BOOL_FORMS)
    SURFACE[f"__{_name}__"] = lambda self, other, uf=_uf: uf(self, other)
    SURFACE[f"__r{_name}__"] = lambda self, other, uf=_uf: uf(other, self)
# ndarray methods that are numpy functions of the array: forward to the function, which
# dispatches to whatever rule it has (or names itself when it has none).
for _name in ("argmax", "argmin", "argsort", "all", "any", "cumsum", "cumprod", "nonzero",
              "searchsorted", "take", "repeat", "diagonal", "trace", "conj",
              "conjugate"):
    SURFACE[_name] = (lambda f: lambda self, *a, **k: f(self, *a, **k))(getattr(np, _name))


def install() -> None:
    for name, impl in SURFACE.items():
        setattr(Tracer, name, impl)
    Tracer.__bool__ = _conversion(
        "bool(x)", "branch on a comparison (x > 0 gives a plain bool array) or select with "
        "np.where(cond, a, b)")


install()
