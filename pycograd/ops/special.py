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

_ERF: list = []


def _erf_impl(x: Any) -> Any:
    """``scipy.special.erf``, imported on first use (importing scipy.special costs a third
    of a second), or ``math.erf`` elementwise without scipy."""
    if not _ERF:
        try:
            from scipy.special import erf
        except ImportError:  # pragma: no cover - exercised only without scipy
            vec = np.vectorize(math.erf, otypes=[np.float64])

            def erf(x: Any) -> Any:
                x = np.asarray(x)
                return vec(x).astype(np.result_type(x, np.float32))
        _ERF.append(erf)
    return _ERF[0](x)


_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)

erf_p = primitive("erf", _erf_impl,
                  lambda g, ans, x: g * (_TWO_OVER_SQRT_PI * np.exp(-(x * x))),
                  family="elementwise")


def erf(x: Any) -> Any:
    """The error function, differentiable on traced values."""
    return erf_p.bind(x)
