"""Dropout with an explicit key: the same key drops the same units, so a step can be
replayed exactly (and vmapped or checkpointed) without hidden random state."""

from __future__ import annotations

from typing import Any

import numpy as np

from pycograd import random
from pycograd.core.errors import ArgumentError


def dropout(x: Any, p: float, key: Any, training: bool = True) -> Any:
    """Zero each element with probability ``p`` and scale the survivors by ``1 / (1 - p)``,
    so the expectation is unchanged; the identity when not ``training`` or ``p == 0``.

    Examples:
        >>> import numpy as np
        >>> from pycograd import dropout
        >>> from pycograd import random as prandom
        >>> y = dropout(np.ones(1000), 0.5, prandom.key(0))
        >>> sorted(set(y.tolist())), bool(0.4 < np.mean(y == 0) < 0.6)
        ([0.0, 2.0], True)
        >>> dropout(np.ones(3), 0.5, prandom.key(0), training=False).tolist()
        [1.0, 1.0, 1.0]
    """
    if not 0.0 <= p <= 1.0:
        raise ArgumentError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    keep = random.bernoulli(key, 1.0 - p, np.shape(x))
    return np.where(keep, x * (1.0 / (1.0 - p)), 0.0)
