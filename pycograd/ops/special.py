"""Special functions (``scipy.special``) as elementwise primitives, declared as one table.

scipy is optional and slow to import (a third of a second), so nothing here imports it at
pycograd import time: each primitive's ``impl`` looks its scipy function up on first call, and
``pycograd.numpy_api.ufuncs`` maps scipy's ufunc objects onto these primitives only once
``scipy.special`` has been imported by the user (``scipy_ufuncs``). ``erf`` falls back to
``math.erf`` without scipy (the exact GELU needs it).

VJP rules are written with these same primitives and numpy calls, so every function
differentiates to any order (the derivatives of special functions are special functions).
Orders and shape parameters (``iv``'s ``v``, ``gammainc``'s ``a`` ...) have no rule: their
VJP raises ``NoRuleError`` (only reached when such an argument is traced), as autograd does.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from pycograd.core.errors import NoRuleError
from pycograd.core.primitive import Primitive, primitive
from pycograd.ops.broadcasting import unbroadcast
from pycograd.ops.complex import is_complex, match

_SQRT_PI = math.sqrt(math.pi)
_TWO_OVER_SQRT_PI = 2.0 / _SQRT_PI
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

SCIPY_UFUNCS: dict[str, Primitive] = {}
"""``scipy.special`` attribute name -> its primitive (``psi`` and ``digamma`` share one)."""


def _special() -> Any:
    mod = sys.modules.get("scipy.special")
    if mod is None:
        import scipy.special as mod
    return mod


def _scipy(name: str) -> Callable:
    """The impl: ``scipy.special.<name>``, looked up when first called."""
    def impl(*args: Any) -> Any:
        return getattr(_special(), name)(*args)
    impl.__name__ = impl.__qualname__ = name
    return impl


def _erf_impl(x: Any) -> Any:
    """``scipy.special.erf``, or ``math.erf`` elementwise without scipy."""
    try:
        return _special().erf(x)
    except ImportError:  # pragma: no cover - exercised only without scipy
        x = np.asarray(x)
        return np.vectorize(math.erf, otypes=[np.float64])(x).astype(
            np.result_type(x, np.float32))


def _no_rule(fname: str, arg: str) -> Callable:
    def rule(*_: Any, **__: Any) -> Any:
        raise NoRuleError(f"scipy.special.{fname}: the derivative with respect to {arg} is not "
                          "implemented in pycograd (as in autograd); differentiate with "
                          "respect to the other argument, or give it a rule with "
                          "pycograd.custom_vjp")
    return rule


def _at(i: int, rule: Callable) -> Callable:
    """A rule ``g, ans, *args -> cotangent`` summed to argument ``i``'s shape and cast to its
    dtype (scipy computes float16 in float32, and the rules' float constants and integer
    orders promote: the cotangent is never more precise than the argument)."""
    return lambda g, ans, *args: match(unbroadcast(rule(g, ans, *args), np.shape(args[i])),
                                       args[i])


def _declare(name: str, *vjps: Any, impl: Callable | None = None, aliases: tuple = (),
             jvp: Callable | None = None) -> Primitive:
    p = primitive(name, impl or _scipy(name), *vjps, family="elementwise", jvp=jvp)
    for n in (name, *aliases):
        SCIPY_UFUNCS[n] = p
    return p


# The primitives, bound by name (each VJP may use the others, so they are looked up when run).

def _b(name: str) -> Callable:
    return lambda *args: SCIPY_UFUNCS[name].bind(*args)


gammaln, digamma, polygamma, gamma, rgamma = (_b(n) for n in (
    "gammaln", "digamma", "polygamma", "gamma", "rgamma"))
iv, ive, jv, yn, i0, i1, j0, j1, y0, y1 = (_b(n) for n in (
    "iv", "ive", "jv", "yn", "i0", "i1", "j0", "j1", "y0", "y1"))
erfinv, erfcinv, betaln, xlogy, xlog1py = (_b(n) for n in (
    "erfinv", "erfcinv", "betaln", "xlogy", "xlog1py"))


def _gammainc_dx(g: Any, ans: Any, a: Any, x: Any) -> Any:
    """``x^(a-1) e^-x / Gamma(a)``, in logs (no overflow for large ``a``)."""
    return g * np.exp(xlogy(a - 1.0, x) - x - gammaln(a))


def _betainc_dx(g: Any, ans: Any, a: Any, b: Any, x: Any) -> Any:
    return g * np.exp(xlogy(a - 1.0, x) + xlog1py(b - 1.0, -x) - betaln(a, b))


def _stdtr_dt(g: Any, ans: Any, df: Any, t: Any) -> Any:
    """Student's t density."""
    return g * np.exp(gammaln((df + 1.0) / 2) - gammaln(df / 2) - 0.5 * np.log(df * np.pi)
                      - (df + 1.0) / 2 * np.log1p(t * t / df))


def _ive_dx(g: Any, ans: Any, v: Any, x: Any) -> Any:
    """``ive(v, z) = iv(v, z) * exp(-|Re z|)``: holomorphic times a function of ``Re z``. The
    second factor's derivative reaches the cotangent through ``Re z`` only, so for complex
    ``z`` it contributes ``-sign(Re z) * Re(g * ive)`` (the real-linear part's transpose)."""
    bessel = g * _ive_slope(v, x)
    if is_complex(x):
        return bessel - np.sign(np.real(x)) * np.real(g * ans)
    return bessel - np.sign(x) * (g * ans)


def _ive_slope(v: Any, x: Any) -> Any:
    """The derivative of the holomorphic factor ``iv``, scaled like ``ive``."""
    return (ive(v - 1, x) + ive(v + 1, x)) / 2


def _ive_jvp(primals: list, tangents: list) -> tuple:
    """Forward mode of ``ive`` (declared: for complex ``z`` it is not holomorphic, so the
    elementwise family's JVP, the VJP applied to the tangent, does not hold)."""
    (v, x), (tv, tx) = primals, tangents
    out = SCIPY_UFUNCS["ive"].bind(v, x)
    if tv is not None:
        _no_rule("ive", "the order v")()
    if tx is None:
        return out, None
    bessel = tx * _ive_slope(v, x)
    if is_complex(x) or is_complex(tx):
        return out, bessel - np.sign(np.real(x)) * out * np.real(tx)
    return out, bessel - np.sign(x) * out * tx


def _real_only(name: str, x: Any) -> Any:
    if is_complex(x):
        raise NoRuleError(f"scipy.special.{name} of a complex value: its derivative needs "
                          "polygamma of a complex argument, which scipy does not implement; "
                          "only real arguments differentiate")
    return x


erf_p = _declare("erf", _at(0, lambda g, ans, x: g * (_TWO_OVER_SQRT_PI * np.exp(-(x * x)))),
                 impl=_erf_impl)

UNARY: dict[str, Callable] = {
    "erfc": lambda g, ans, x: g * (-_TWO_OVER_SQRT_PI * np.exp(-(x * x))),
    "erfinv": lambda g, ans, x: g * (_SQRT_PI / 2 * np.exp(ans * ans)),
    "erfcinv": lambda g, ans, x: g * (-_SQRT_PI / 2 * np.exp(ans * ans)),
    "ndtr": lambda g, ans, x: g * (_INV_SQRT_2PI * np.exp(-0.5 * x * x)),
    "log_ndtr": lambda g, ans, x: g * (_INV_SQRT_2PI * np.exp(-0.5 * x * x - ans)),
    "gammaln": lambda g, ans, x: g * digamma(x),
    "gamma": lambda g, ans, x: g * (ans * digamma(x)),
    "digamma": lambda g, ans, x: g * polygamma(1, _real_only("digamma", x)),
    "rgamma": lambda g, ans, x: g * (-ans * digamma(x)),
    "expit": lambda g, ans, x: g * (ans * (1 - ans)),
    "logit": lambda g, ans, x: g / (x * (1 - x)),
    "i0": lambda g, ans, x: g * i1(x),
    "i1": lambda g, ans, x: g * ((i0(x) + iv(2, x)) / 2),
    "j0": lambda g, ans, x: -g * j1(x),
    "j1": lambda g, ans, x: g * ((j0(x) - jv(2, x)) / 2),
    "y0": lambda g, ans, x: -g * y1(x),
    "y1": lambda g, ans, x: g * ((y0(x) - yn(2, x)) / 2),
}

BINARY: dict[str, tuple] = {
    "beta": (lambda g, ans, a, b: g * (ans * (digamma(a) - digamma(a + b))),
             lambda g, ans, a, b: g * (ans * (digamma(b) - digamma(a + b)))),
    "betaln": (lambda g, ans, a, b: g * (digamma(a) - digamma(a + b)),
               lambda g, ans, a, b: g * (digamma(b) - digamma(a + b))),
    "xlogy": (lambda g, ans, x, y: xlogy(g, y), lambda g, ans, x, y: g * x / y),
    "xlog1py": (lambda g, ans, x, y: xlog1py(g, y), lambda g, ans, x, y: g * x / (1 + y)),
    "polygamma": ("the order n", lambda g, ans, n, x: g * polygamma(n + 1, x)),
    "iv": ("the order v", lambda g, ans, v, x: g * ((iv(v - 1, x) + iv(v + 1, x)) / 2)),
    "ive": ("the order v", lambda g, ans, v, x: _ive_dx(g, ans, v, x)),
    "jv": ("the order v", lambda g, ans, v, x: g * ((jv(v - 1, x) - jv(v + 1, x)) / 2)),
    "yn": ("the order n", lambda g, ans, n, x: g * ((yn(n - 1, x) - yn(n + 1, x)) / 2)),
    "gammainc": ("the shape a", _gammainc_dx),
    "gammaincc": ("the shape a", lambda g, ans, a, x: -_gammainc_dx(g, ans, a, x)),
    "stdtr": ("the degrees of freedom df", _stdtr_dt),
}

TERNARY: dict[str, tuple] = {
    "betainc": ("the shape a", "the shape b", _betainc_dx),
}

_ALIASES = {"digamma": ("psi",), "jv": ("jn",)}

for _name, _vjp in UNARY.items():
    _declare(_name, _at(0, _vjp), aliases=_ALIASES.get(_name, ()))
for _name, _rules in {**BINARY, **TERNARY}.items():
    _declare(_name, *(_no_rule(_name, r) if isinstance(r, str) else _at(i, r)
                      for i, r in enumerate(_rules)), aliases=_ALIASES.get(_name, ()),
             jvp=_ive_jvp if _name == "ive" else None)


# Piecewise constant: the result carries no gradient (its derivative is 0 where defined).
NO_GRADIENT = ("gammasgn",)
for _name in NO_GRADIENT:
    SCIPY_UFUNCS[_name] = primitive(_name, _scipy(_name), differentiable=False,
                                    family="elementwise")


def erf(x: Any) -> Any:
    """The error function, differentiable on traced values, in ``x``'s precision: a
    half-precision input (float16, bfloat16) gives a half-precision result, as ``torch.erf``
    does, where ``scipy.special.erf`` (no half-precision loop) gives float64. A routed call of
    ``scipy.special.erf`` itself keeps scipy's dtypes.

    Example: ``erf(np.float16([0.5])).dtype == np.float16``."""
    out = erf_p.bind(x)
    dt = np.dtype(getattr(x, "dtype", None) or np.result_type(x))
    if dt.kind == "V" or dt.kind == "f" and dt.itemsize < 4:
        return out.astype(dt)
    return out


def scipy_ufuncs() -> dict[np.ufunc, Primitive]:
    """scipy's ufunc objects -> their primitives (call once ``scipy.special`` is imported)."""
    sp = _special()
    return {getattr(sp, n): p for n, p in SCIPY_UFUNCS.items()
            if isinstance(getattr(sp, n, None), np.ufunc)}
