"""``np.<ufunc>(...)`` on traced values: ``__call__`` binds the ufunc's primitive, and the
``reduce`` / ``outer`` methods of the ufuncs that have a reduction map onto primitives.

A ufunc whose complex loop is not the continuation of its real one gets a complex form
(``COMPLEX_FORMS``): numpy 2's ``sign(z)`` is ``z / |z|``, smooth away from 0, while the
real ``sign`` is piecewise constant (no gradient)."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from pycograd.core.errors import ImmutableTracerError, NoRuleError
from pycograd.core.primitive import Primitive
from pycograd.core.trace import bind
from pycograd.numpy_api import functions as F
from pycograd.ops.complex import imag_p, is_complex, real_p
from pycograd.ops.elementwise import UFUNC_PRIMS
from pycograd.ops.linalg import matmul_p

PRIMS: dict[np.ufunc, Primitive] = {**UFUNC_PRIMS, np.matmul: matmul_p}
REDUCTIONS = {np.add: F.sum, np.multiply: F.prod, np.maximum: F.max, np.minimum: F.min}
_NO_PARAMS: dict = {}
_LATE: list = []


def _late_prim(ufunc: np.ufunc) -> Primitive | None:
    """The primitive of a ufunc from an optional library (``scipy.special``): its table is
    merged into PRIMS once that library has been imported (never importing it ourselves)."""
    if _LATE or "scipy.special" not in sys.modules:
        return None
    from pycograd.ops.special import scipy_ufuncs

    PRIMS.update(scipy_ufuncs())
    _LATE.append(True)
    return PRIMS.get(ufunc)


def _complex_sign(z: Any) -> Any:
    """``z / |z|`` where that is finite and nonzero (so it differentiates), computed as
    numpy does (``hypot`` of the parts, each part divided by it: ``np.abs`` and a complex
    division round differently); numpy's own value (0 at 0, its limits at infinities, NaN)
    elsewhere, with no gradient there. The parts are moved to 1 + 0j off the smooth set, so
    the branch ``where`` drops has finite derivatives (else 0 * inf = NaN leaks back)."""
    x, y = real_p.bind(z), imag_p.bind(z)
    a = np.hypot(x, y)
    smooth = np.logical_and(a != 0, np.isfinite(a))
    x, y = np.where(smooth, x, 1), np.where(smooth, y, 0)
    a = np.hypot(x, y)
    return np.where(smooth, x / a + (y / a) * 1j, UFUNC_PRIMS[np.sign].bind(z))


COMPLEX_FORMS: dict[np.ufunc, Any] = {np.sign: _complex_sign}
"""Ufuncs whose complex inputs take a composition of primitives instead of the primitive."""


BOOL_FORMS = {np.bitwise_and: np.logical_and, np.bitwise_or: np.logical_or,
              np.bitwise_xor: np.logical_xor, np.invert: np.logical_not}
"""On booleans (traced masks under vmap: ``(x > 0) | (x < -1)``) the bitwise ufuncs are the
logical ones; on integers they are the integer primitives (no gradient, as for any integer
op: the bits of the random keys)."""


_OTHER_FORMS = frozenset(BOOL_FORMS) | frozenset(COMPLEX_FORMS)


def array_ufunc(self: Any, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
    """``Tracer.__array_ufunc__``."""
    if method == "__call__":
        if ufunc in _OTHER_FORMS:  # one check on the hot path for the few such ufuncs
            if ufunc in BOOL_FORMS and all(np.result_type(x) == np.bool_ for x in inputs):
                ufunc = BOOL_FORMS[ufunc]
            form = COMPLEX_FORMS.get(ufunc)
            if form is not None and is_complex(inputs[0]):
                dtype = kwargs.pop("dtype", None)
                if kwargs:
                    raise NoRuleError(f"np.{ufunc.__name__}(..., "
                                      f"{', '.join(k + '=' for k in kwargs)}) of a complex "
                                      "traced value is not differentiable")
                r = form(*inputs)
                return r if dtype is None else F.astype(r, dtype)
        prim = PRIMS.get(ufunc) or _late_prim(ufunc)
        if not kwargs and prim is not None:
            return bind(prim, inputs, _NO_PARAMS)
        name = _qualified(ufunc)
        if prim is None:
            raise NoRuleError(
                f"{name} has no differentiation rule in pycograd (called on a traced value); "
                "use a differentiable formulation, or wrap it with pycograd.custom_vjp")
        dtype = kwargs.pop("dtype", None)
        if kwargs:
            raise NoRuleError(
                f"{name}(..., {', '.join(k + '=' for k in kwargs)}) is not differentiable; "
                f"write y = {name}(x) and combine the result with np.where if needed")
        r = bind(prim, inputs, _NO_PARAMS)
        return r if dtype is None else F.astype(r, dtype)
    if method == "reduce" and ufunc in REDUCTIONS:
        (a,) = inputs
        return REDUCTIONS[ufunc](a, kwargs.pop("axis", 0), **kwargs)
    if method == "outer" and (ufunc in PRIMS or _late_prim(ufunc)):
        a, b = inputs
        return ufunc(F.reshape(a, np.shape(a) + (1,) * np.ndim(b)), b)
    if method == "at":
        raise ImmutableTracerError(_at_message(ufunc))
    raise NoRuleError(f"{_qualified(ufunc)}.{method} has no differentiation rule in pycograd "
                      "(called on a traced value)")


def _at_message(ufunc: np.ufunc) -> str:
    """``np.add.at(x, idx, v)`` updates ``x`` in place, which a traced computation cannot: the
    functional forms that return the updated array instead."""
    name = _qualified(ufunc)
    fix = {np.add: "x = pycograd.scatter_add(x, idx, v)",
           np.subtract: "x = pycograd.scatter_add(x, idx, -v)"}.get(
        ufunc, "pycograd.scatter_set(x, idx, ...) for one write per index, or "
               "x = pycograd.scatter_add(x, idx, v) for sums")
    return (f"{name}.at(x, idx, v) updates x in place, which loses the gradient of traced "
            f"values; write {fix} (it returns the updated array)")


def _qualified(ufunc: np.ufunc) -> str:
    """``np.exp``, ``scipy.special.loggamma``: where the user found the ufunc."""
    name = ufunc.__name__
    if getattr(np, name, None) is ufunc:
        return f"np.{name}"
    special = sys.modules.get("scipy.special")
    if special is not None and getattr(special, name, None) is ufunc:
        return f"scipy.special.{name}"
    return f"ufunc {name}"
