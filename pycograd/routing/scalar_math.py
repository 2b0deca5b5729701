"""Scalar ``math.*`` on traced values, as the transparent layer swaps it in.

``math.sin`` is C code that calls ``float(v)``, which a tracer refuses. Each math function with a
numpy counterpart becomes a dispatcher that calls the ufunc when an argument is traced (the ufunc
then reaches the tracer through ``__array_ufunc__``) and the original function otherwise, so
``math.sin(2.0)`` still returns a Python float. Math functions without a counterpart become a
guard that names them, rather than letting ``float()`` fail without saying which call did it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from pycograd.core.errors import TracerConversionError
from pycograd.core.trace import Tracer
from pycograd.routing.constructors import build, holds_tracer

_UFUNC_OF: dict[str, np.ufunc] = {
    "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "atan2": np.arctan2,
    "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh,
    "asinh": np.arcsinh, "acosh": np.arccosh, "atanh": np.arctanh,
    "exp": np.exp, "exp2": np.exp2, "expm1": np.expm1,
    "log2": np.log2, "log10": np.log10, "log1p": np.log1p,
    "sqrt": np.sqrt, "cbrt": np.cbrt, "pow": np.power, "fabs": np.absolute,
    "hypot": np.hypot, "copysign": np.copysign, "fmod": np.fmod, "ldexp": np.ldexp,
    "degrees": np.degrees, "radians": np.radians,
    "floor": np.floor, "ceil": np.ceil, "trunc": np.trunc,
    "isnan": np.isnan, "isinf": np.isinf, "isfinite": np.isfinite,
}

# Work on tracers as they are (``math.prod`` multiplies with ``*``): neither routed nor guarded.
_NATIVE = frozenset({"prod"})


def _traced(args: tuple) -> bool:
    for a in args:
        if isinstance(a, Tracer):
            return True
    return False


def _named(fn: Callable, name: str, orig: Callable) -> Callable:
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = orig.__doc__
    fn.__wrapped__ = orig
    return fn


def _dispatcher(name: str, orig: Callable, ufunc: np.ufunc) -> Callable:
    def dispatch(*args: Any) -> Any:
        return ufunc(*args) if _traced(args) else orig(*args)
    return _named(dispatch, name, orig)


def _log(x: Any, base: Any = None) -> Any:
    if not _traced((x, base)):
        return math.log(x) if base is None else math.log(x, base)
    return np.log(x) if base is None else np.log(x) / np.log(base)


def _fsum(seq: Any) -> Any:
    items = list(seq)
    return np.sum(build(items)) if holds_tracer(items) else math.fsum(items)


def _dist(p: Any, q: Any) -> Any:
    if not (holds_tracer(p) or holds_tracer(q)):
        return math.dist(p, q)
    d = build(p) - build(q)
    return np.sqrt(np.sum(d * d))


def _erf(x: Any) -> Any:
    if not _traced((x,)):
        return math.erf(x)
    from pycograd.ops.special import erf  # imports scipy.special: only when needed

    return erf(x)


def _erfc(x: Any) -> Any:
    return math.erfc(x) if not _traced((x,)) else 1.0 - _erf(x)


def _guard(name: str, orig: Callable) -> Callable:
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if _traced(args) or _traced(tuple(kwargs.values())):
            raise TracerConversionError(
                f"math.{name} of a traced value has no differentiable counterpart in pycograd "
                "and would silently drop the gradient; write it with numpy ops on arrays "
                f"(np.* ufuncs differentiate), or give it a rule with pycograd.custom_vjp")
        return orig(*args, **kwargs)
    return _named(guarded, name, orig)


def _routes() -> dict[Callable, Callable]:
    out: dict[Callable, Callable] = {}
    special = {"log": _log, "fsum": _fsum, "dist": _dist, "erf": _erf, "erfc": _erfc}
    for name in dir(math):
        orig = getattr(math, name)
        if name.startswith("_") or not callable(orig) or name in _NATIVE:
            continue
        if name in special:
            out[orig] = _named(special[name], name, orig)
        elif name in _UFUNC_OF:
            out[orig] = _dispatcher(name, orig, _UFUNC_OF[name])
        else:
            out[orig] = _guard(name, orig)
    return out


MATH_ROUTES: dict[Callable, Callable] = _routes()
"""``math`` function -> what a routed call site runs instead."""

MATH_NAMES: frozenset[str] = frozenset(f.__name__ for f in MATH_ROUTES)
