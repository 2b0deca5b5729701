"""Which dtypes carry gradients: numpy's floats and complexes, and the extra float types of
``ml_dtypes`` (``bfloat16``, the float8 family), which numpy reports as kind ``"V"``.

``dtype.kind in "fc"`` misses ``bfloat16``, which then looks like an integer and silently
gets no gradient; every "is this differentiable?" question asks ``is_float`` instead.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

_EXTRA_FLOAT: dict[np.dtype, bool] = {}


def is_float(dt: Any) -> bool:
    """Whether ``dt`` is a real or complex floating dtype, ``ml_dtypes`` floats included:
    ``is_float(ml_dtypes.bfloat16)`` is True, ``is_float(np.int32)`` is False."""
    dt = np.dtype(dt)
    if dt.kind in "fc":
        return True
    if dt.kind != "V":
        return False
    hit = _EXTRA_FLOAT.get(dt)
    if hit is None:
        hit = _EXTRA_FLOAT[dt] = _ml_float(dt)
    return hit


def _ml_float(dt: np.dtype) -> bool:
    ml = sys.modules.get("ml_dtypes")  # a dtype of kind "V" with a type from ml_dtypes
    if ml is None or not getattr(dt.type, "__module__", "").startswith("ml_dtypes"):
        return False
    try:
        ml.finfo(dt)
    except (ValueError, TypeError):
        return False
    return True
