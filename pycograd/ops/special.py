"""Special functions that numpy lacks as ufuncs: ``erf``, for the exact GELU.

The implementation uses ``scipy.special.erf`` when scipy is present (it is a test and
examples dependency, not a core one) and falls back to ``math.erf`` elementwise. The VJP
is written with numpy calls, so ``erf`` differentiates to any order.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pycograd.core.primitive import primitive

try:
    from scipy.special import erf as _erf_impl
except ImportError:  # pragma: no cover - exercised only without scipy
    _erf_vec = np.vectorize(math.erf, otypes=[np.float64])

    def _erf_impl(x: Any) -> Any:
        x = np.asarray(x)
        return _erf_vec(x).astype(np.result_type(x, np.float32))

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)

erf_p = primitive("erf", _erf_impl,
                  lambda g, ans, x: g * (_TWO_OVER_SQRT_PI * np.exp(-(x * x))),
                  family="elementwise")


def erf(x: Any) -> Any:
    """The error function, differentiable on traced values."""
    return erf_p.bind(x)
