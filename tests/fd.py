"""Central finite differences: the reference every gradient in the sweep is checked against."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def numerical_grad(f: Callable, args: Sequence[np.ndarray], eps: float) -> list[np.ndarray]:
    """d f(*args) / d args[i] for every i, one central difference per element.

    The step actually taken (``x + eps`` rounded to the input dtype) is the denominator, so
    inputs on a float32 grid stay exact.
    """
    grads = []
    for i, x in enumerate(args):
        g = np.zeros(np.shape(x))
        for j in range(np.size(x)):
            hi, lo = x.copy(), x.copy()
            hi.reshape(-1)[j] += eps
            lo.reshape(-1)[j] -= eps
            step = float(hi.reshape(-1)[j]) - float(lo.reshape(-1)[j])
            up = f(*args[:i], hi, *args[i + 1:])
            down = f(*args[:i], lo, *args[i + 1:])
            g.reshape(-1)[j] = (float(up) - float(down)) / step
        grads.append(g)
    return grads


def directional(f: Callable, args: Sequence[np.ndarray], v: Sequence[np.ndarray],
                eps: float) -> list[np.ndarray]:
    """The derivative of the vector-valued ``f`` (a list of arrays) at ``args`` along ``v``."""
    up = f(*[(x + eps * d).astype(x.dtype) for x, d in zip(args, v)])
    down = f(*[(x - eps * d).astype(x.dtype) for x, d in zip(args, v)])
    return [(np.asarray(a, np.float64) - np.asarray(b, np.float64)) / (2 * eps)
            for a, b in zip(up, down)]
