"""Affine maps."""

from __future__ import annotations

from typing import Any

import numpy as np


def linear(x: Any, weight: Any, bias: Any = None) -> Any:
    """``x @ weight.T + bias`` with ``weight`` shaped ``(out, in)`` (PyTorch's layout).

    Examples:
        >>> import numpy as np
        >>> from pycograd import linear
        >>> x, w, b = np.ones((4, 3)), np.ones((2, 3)), np.array([0.0, 1.0])   # w: (out, in)
        >>> linear(x, w, b).tolist()[0]
        [3.0, 4.0]
    """
    y = x @ np.swapaxes(weight, -1, -2) if np.ndim(weight) > 1 else x @ weight
    return y if bias is None else y + bias
