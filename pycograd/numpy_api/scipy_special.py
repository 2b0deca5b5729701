"""The ``scipy.special`` functions that are Python code rather than ufuncs.

scipy's ufuncs (``gammaln``, ``iv`` ...) reach traced values through ``__array_ufunc__``
(``pycograd.ops.special``), but ``logsumexp``, ``softmax``, ``log_softmax``, ``polygamma`` and
``multigammaln`` convert their inputs with ``np.asarray`` first. The transparent layer routes
call sites of these to the versions below (written with numpy on traced values, so they
differentiate to any order) when an argument is traced, and to scipy's own otherwise.
Importing this module does not import scipy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from pycograd.ops.elementwise import stop_gradient
from pycograd.ops.special import SCIPY_UFUNCS

NAMES = ("logsumexp", "softmax", "log_softmax", "polygamma", "multigammaln")
"""The routed ``scipy.special`` attributes."""


def _axes(a: Any, axis: Any) -> tuple:
    nd = max(np.ndim(a), 1)
    axes = range(nd) if axis is None else (axis,) if isinstance(axis, int) else axis
    return tuple(int(ax) % nd for ax in axes)


def _shift(a: Any, axes: tuple) -> Any:
    """The per-slice max, gradient-free (it cancels), non-finite maxima set to 0."""
    m = np.max(stop_gradient(a), axis=axes, keepdims=True)
    return np.where(np.isfinite(m), m, 0.0)


def logsumexp(a: Any, axis: Any = None, b: Any = None, keepdims: bool = False,
              return_sign: bool = False) -> Any:
    """``log(sum(b * exp(a)))`` over ``axis``, shifted by the max for stability."""
    a = a * 1.0  # integers promote to float, as scipy does
    if np.ndim(a) == 0:
        a = np.reshape(a, (1,))
        b = None if b is None else np.reshape(b, (1,))
    axes = _axes(a, axis)
    m = _shift(a, axes)
    e = np.exp(a - m)
    s = np.sum(e if b is None else b * e, axis=axes, keepdims=True)
    sign = np.sign(stop_gradient(s))
    out = np.log(np.abs(s) if return_sign else s) + m
    if not keepdims:
        out, sign = np.squeeze(out, axis=axes), np.squeeze(sign, axis=axes)
    return (out, sign) if return_sign else out


def softmax(x: Any, axis: Any = None) -> Any:
    axes = _axes(x, axis)
    e = np.exp(x - _shift(x, axes))
    return e / np.sum(e, axis=axes, keepdims=True)


def log_softmax(x: Any, axis: Any = None) -> Any:
    axes = _axes(x, axis)
    y = x - _shift(x, axes)
    return y - np.log(np.sum(np.exp(y), axis=axes, keepdims=True))


def polygamma(n: Any, x: Any) -> Any:
    return SCIPY_UFUNCS["polygamma"].bind(n, x)


def multigammaln(a: Any, d: int) -> Any:
    """The log of the multivariate gamma function: ``d(d-1)/4 log(pi)`` plus
    ``sum_j gammaln(a - j/2)``."""
    d = int(d)
    terms = SCIPY_UFUNCS["gammaln"].bind(np.expand_dims(a, -1) - np.arange(d) / 2.0)
    return d * (d - 1) / 4.0 * math.log(math.pi) + np.sum(terms, axis=-1)


_OURS: dict[str, Callable] = {"logsumexp": logsumexp, "softmax": softmax,
                              "log_softmax": log_softmax, "polygamma": polygamma,
                              "multigammaln": multigammaln}


def routes(dispatch: Callable[[Callable, Callable], Callable]) -> dict[Callable, Callable]:
    """scipy's function -> ``dispatch(scipy's, ours)`` (call once scipy.special is imported)."""
    import scipy.special as sp

    return {getattr(sp, n): dispatch(getattr(sp, n), _OURS[n]) for n in NAMES}
