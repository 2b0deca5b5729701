"""Affine maps."""

from __future__ import annotations

from typing import Any

import numpy as np


def linear(x: Any, weight: Any, bias: Any = None) -> Any:
    """``x @ weight.T + bias`` with ``weight`` shaped ``(out, in)`` (PyTorch's layout)."""
    y = x @ np.swapaxes(weight, -1, -2) if np.ndim(weight) > 1 else x @ weight
    return y if bias is None else y + bias
