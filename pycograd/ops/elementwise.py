"""Elementwise primitives: every numpy ufunc we differentiate, declared as one table.

A unary rule is ``g, ans, x -> cotangent``; a binary rule gets ``g, ans, x, y`` and
undoes broadcasting with ``_back`` (which also keeps a real argument's cotangent real).
Rules use numpy calls, which dispatch to whatever tracer ``g``/``x`` are, so every rule is
differentiable in turn.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pycograd.core.primitive import Primitive, primitive, reads_shape_of_last
from pycograd.ops.broadcasting import unbroadcast
from pycograd.ops.complex import abs_jvp, abs_vjp, match

UFUNC_PRIMS: dict[np.ufunc, Primitive] = {}


def _ufunc(uf: np.ufunc, *vjps: Any, differentiable: bool = True, jvp: Any = None) -> Primitive:
    p = primitive(uf.__name__, uf, *vjps, differentiable=differentiable, family="elementwise",
                  jvp=jvp)
    UFUNC_PRIMS[uf] = p
    return p


_LN2, _LN10 = float(np.log(2.0)), float(np.log(10.0))
_RAD, _DEG = float(np.pi / 180), float(180 / np.pi)

# d/dx of each unary ufunc, written as the cotangent map  g -> g * f'(x). Where the order
# of terms is free, a temporary comes first (``-(ans * ans) + 1``, not ``1 - ans * ans``):
# numpy then computes each following step in place in it (temporary elision), so the
# backward of a tanh layer allocates one array of its size, not two.
UNARY = {
    np.negative: lambda g, ans, x: -g,
    np.positive: lambda g, ans, x: g,
    np.conjugate: lambda g, ans, x: np.conjugate(g),
    np.absolute: abs_vjp,
    np.fabs: lambda g, ans, x: g * np.sign(x),
    np.square: lambda g, ans, x: g * (2 * x),
    np.sqrt: lambda g, ans, x: g / (2 * ans),
    np.cbrt: lambda g, ans, x: g / (3 * ans * ans),
    np.reciprocal: lambda g, ans, x: -g * (ans * ans),
    np.exp: lambda g, ans, x: g * ans,
    np.exp2: lambda g, ans, x: g * (ans * _LN2),
    np.expm1: lambda g, ans, x: g * (ans + 1),
    np.log: lambda g, ans, x: g / x,
    np.log2: lambda g, ans, x: g / (x * _LN2),
    np.log10: lambda g, ans, x: g / (x * _LN10),
    np.log1p: lambda g, ans, x: g / (x + 1),
    np.sin: lambda g, ans, x: g * np.cos(x),
    np.cos: lambda g, ans, x: -g * np.sin(x),
    np.tan: lambda g, ans, x: g * (ans * ans + 1),
    np.arcsin: lambda g, ans, x: g / np.sqrt(1 - x * x),
    np.arccos: lambda g, ans, x: -g / np.sqrt(1 - x * x),
    np.arctan: lambda g, ans, x: g / (1 + x * x),
    np.sinh: lambda g, ans, x: g * np.cosh(x),
    np.cosh: lambda g, ans, x: g * np.sinh(x),
    np.tanh: lambda g, ans, x: g * (-(ans * ans) + 1),
    np.arcsinh: lambda g, ans, x: g / np.sqrt(x * x + 1),
    np.arccosh: lambda g, ans, x: g / np.sqrt(x * x - 1),
    np.arctanh: lambda g, ans, x: g / (1 - x * x),
    np.deg2rad: lambda g, ans, x: g * _RAD,
    np.radians: lambda g, ans, x: g * _RAD,
    np.rad2deg: lambda g, ans, x: g * _DEG,
    np.degrees: lambda g, ans, x: g * _DEG,
}


@reads_shape_of_last  # a rule ``_back(<ct>, x)`` keeps only x's shape on the tape
def _back(ct: Any, x: Any) -> Any:
    """The cotangent of argument ``x``: real if ``x`` is, of ``x``'s precision (a float32
    ``x`` that a float64 operand promoted gets a float32 cotangent), summed back to its
    shape."""
    dt = getattr(x, "dtype", None)
    if dt is None or ct.dtype != dt:
        ct = match(ct, x)
    shape = getattr(x, "shape", None)  # arrays, tracers and the tape's shape-only residuals
    return unbroadcast(ct, np.shape(x) if shape is None else shape)


def _balanced(g: Any, x: Any, y: Any) -> Any:
    """``g`` where ``x`` wins the max/min, split evenly on ties (as JAX does)."""
    wins, ties = x > y, x == y
    if type(ties) is np.ndarray and not ties.any():
        return g * wins
    return g * wins + (g * 0.5) * ties


def _nan_loses(y: Any, fill: float) -> Any:
    """``y`` with NaNs replaced by ``fill``, for fmax/fmin, which return the other operand
    where one is NaN (only compared, so it carries no gradient)."""
    return np.where(np.isnan(y), fill, y)


def _remainder_dy(rounding: Any) -> Any:
    """``x - r(x / y) * y`` has ``d/dy = -r(x / y)``, with ``r`` floor (mod) or trunc (fmod)."""
    return lambda g, ans, x, y: _back(-g * rounding(x / y), y)


def _power_dx(g: Any, ans: Any, x: Any, y: Any) -> Any:
    return _back(g * y * x ** np.where(y == 0, 1, y - 1), x)


def _power_dy(g: Any, ans: Any, x: Any, y: Any) -> Any:
    return _back(g * ans * np.log(np.where(x == 0, 1, x)), y)


BINARY = {
    np.add: (lambda g, ans, x, y: _back(g, x),
             lambda g, ans, x, y: _back(g, y)),
    np.subtract: (lambda g, ans, x, y: _back(g, x),
                  lambda g, ans, x, y: _back(-g, y)),
    np.multiply: (lambda g, ans, x, y: _back(g * y, x),
                  lambda g, ans, x, y: _back(g * x, y)),
    np.divide: (lambda g, ans, x, y: _back(g / y, x),
                lambda g, ans, x, y: _back(-g * ans / y, y)),
    np.power: (_power_dx, _power_dy),
    np.maximum: (lambda g, ans, x, y: _back(_balanced(g, x, y), x),
                 lambda g, ans, x, y: _back(_balanced(g, y, x), y)),
    np.minimum: (lambda g, ans, x, y: _back(_balanced(g, y, x), x),
                 lambda g, ans, x, y: _back(_balanced(g, x, y), y)),
    np.fmax: (lambda g, ans, x, y: _back(_balanced(g, x, _nan_loses(y, -np.inf)), x),
              lambda g, ans, x, y: _back(_balanced(g, y, _nan_loses(x, -np.inf)), y)),
    np.fmin: (lambda g, ans, x, y: _back(_balanced(g, _nan_loses(y, np.inf), x), x),
              lambda g, ans, x, y: _back(_balanced(g, _nan_loses(x, np.inf), y), y)),
    np.float_power: (_power_dx, _power_dy),
    np.arctan2: (lambda g, ans, x, y: _back(g * y / (x * x + y * y), x),
                 lambda g, ans, x, y: _back(-g * x / (x * x + y * y), y)),
    np.hypot: (lambda g, ans, x, y: _back(g * x / ans, x),
               lambda g, ans, x, y: _back(g * y / ans, y)),
    np.logaddexp: (lambda g, ans, x, y: _back(g * np.exp(x - ans), x),
                   lambda g, ans, x, y: _back(g * np.exp(y - ans), y)),
    np.logaddexp2: (lambda g, ans, x, y: _back(g * np.exp2(x - ans), x),
                    lambda g, ans, x, y: _back(g * np.exp2(y - ans), y)),
    np.remainder: (lambda g, ans, x, y: _back(g, x), _remainder_dy(np.floor)),
    np.fmod: (lambda g, ans, x, y: _back(g, x), _remainder_dy(np.trunc)),
    # |x| with the sign of y: piecewise constant in y.
    np.copysign: (lambda g, ans, x, y: _back(g * np.sign(x) * np.sign(ans), x),
                  None),
}

# Piecewise constant or boolean-valued: their results carry no gradient.
NO_GRADIENT = (
    np.sign, np.floor, np.ceil, np.rint, np.trunc,
    np.greater, np.greater_equal, np.less, np.less_equal, np.equal, np.not_equal,
    np.logical_and, np.logical_or, np.logical_xor, np.logical_not,
    np.isfinite, np.isinf, np.isnan, np.signbit, np.floor_divide, np.heaviside,
)

for _uf, _vjp in UNARY.items():
    _ufunc(_uf, _vjp, jvp=abs_jvp if _uf is np.absolute else None)
for _uf, _vjps in BINARY.items():
    _ufunc(_uf, *_vjps)
for _uf in NO_GRADIENT:
    _ufunc(_uf, differentiable=False)

astype = primitive("astype", lambda x, dtype: x.astype(dtype),
                   lambda g, ans, x, dtype: match(g, x).astype(x.dtype), family="cast",
                   saves=())
stop_gradient_p = primitive("stop_gradient", lambda x: x, differentiable=False,
                            family="elementwise")
round_p = primitive("round", lambda x, decimals: np.round(x, decimals), differentiable=False,
                    family="elementwise")


def stop_gradient(x: Any) -> Any:
    """``x`` with no gradient flowing back through it, under every transform.

    Examples:
        >>> import numpy as np
        >>> from pycograd import grad, stop_gradient
        >>> grad(lambda x: np.sum(x * stop_gradient(x)), 0)(np.array([1.0, 2.0])).tolist()
        [1.0, 2.0]
    """
    return stop_gradient_p.bind(x)
