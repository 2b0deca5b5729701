"""Complex numbers: ``real``, ``imag``, ``angle``, and the cotangent convention they share.

The convention is HIPS autograd's. A complex value ``z = x + iy`` is a pair of reals, and
its cotangent is stored as one complex number ``df/dx - i df/dy``. With that encoding the
VJP of every holomorphic op is the plain (unconjugated) transpose, ``g * f'(z)``, the
same formula as for reals, so the elementwise, reduction and contraction rules need no
change; only the non-holomorphic ops (``abs``, ``conj``, ``real``, ``imag``, ``angle``)
have rules of their own, and a real input that fed a complex result keeps the real part
of its cotangent (``match``). ``grad`` of a real ``f`` at ``z`` is then
``df/dx - i df/dy``, and the descent step is ``z - lr * conj(grad)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pycograd.core.dtypes import is_float
from pycograd.core.primitive import primitive


def is_complex(x: Any) -> bool:
    """``x`` (an array, tracer or number) holds complex values."""
    dt = getattr(x, "dtype", None)
    return (np.result_type(x) if dt is None else dt).kind == "c"


def match(ct: Any, x: Any) -> Any:
    """The cotangent ``ct`` fitted to the argument ``x``: its real part when ``x`` is real
    (``x`` fed a complex result, and only moves along the real axis), and ``x``'s
    precision (a float32 ``x`` that a float64 operand promoted gets a float32 cotangent:
    no cotangent is more precise than its value)."""
    dt = getattr(x, "dtype", None)  # None for a Python number (weakly typed: no cast)
    if dt is not None and ct.dtype == dt:
        return ct
    if ct.dtype.kind == "c" and not is_complex(x):
        ct = real_p.bind(ct)
    if dt is None or not is_float(dt) or ct.dtype == dt:
        return ct
    return ct.astype(dt)


def _safe(x: Any) -> Any:
    """``x`` with zeros replaced by ones (a denominator that is zero only where the
    numerator is)."""
    return np.where(x == 0, 1, x)


def _real_vjp(g: Any, ans: Any, x: Any) -> Any:
    return g.astype(np.result_type(x)) if is_complex(x) else g


def _imag_vjp(g: Any, ans: Any, x: Any) -> Any:
    return g * -1j if is_complex(x) else g * 0


def _angle_vjp(g: Any, ans: Any, x: Any) -> Any:
    if not is_complex(x):  # 0 or pi: piecewise constant
        return g * 0
    return g * (np.conj(x) * -1j) / _safe(np.real(x * np.conj(x)))


def _real_jvp(primals: list, tangents: list) -> tuple:
    return real_p.bind(primals[0]), real_p.bind(tangents[0])


def _imag_jvp(primals: list, tangents: list) -> tuple:
    return imag_p.bind(primals[0]), imag_p.bind(tangents[0])


def _angle_jvp(primals: list, tangents: list) -> tuple:
    (x,), (t,) = primals, tangents
    out = angle_p.bind(x)
    if not is_complex(x):
        return out, None
    return out, imag_p.bind(np.conj(x) * t) / _safe(np.real(x * np.conj(x)))


def abs_vjp(g: Any, ans: Any, x: Any) -> Any:
    """``|x|``: ``sign(x)`` for reals; ``conj(x) / |x|`` (0 at 0) for complex."""
    if is_complex(x):
        return g * np.conj(x) / _safe(ans)
    return g * np.sign(x)


def abs_jvp(primals: list, tangents: list) -> tuple:
    (x,), (t,) = primals, tangents
    out = np.absolute(x)
    if is_complex(x):
        return out, real_p.bind(np.conj(x) * t) / _safe(out)
    return out, t * np.sign(x)


real_p = primitive("real", np.real, _real_vjp, family="elementwise", jvp=_real_jvp)
imag_p = primitive("imag", np.imag, _imag_vjp, family="elementwise", jvp=_imag_jvp)
angle_p = primitive("angle", np.angle, _angle_vjp, family="elementwise", jvp=_angle_jvp)
