"""Undo numpy broadcasting on a cotangent: the one helper every binary rule shares."""

from __future__ import annotations

from typing import Any

import numpy as np


def unbroadcast(g: Any, shape: tuple) -> Any:
    """Sum ``g`` over the axes that broadcasting added or stretched, back to ``shape``."""
    gshape = np.shape(g)
    if gshape == shape:
        return g
    lead = len(gshape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, d in enumerate(shape) if d == 1 and gshape[i + lead] != 1)
    if axes:
        g = np.sum(g, axis=axes)
    return np.reshape(g, shape) if np.shape(g) != shape else g
