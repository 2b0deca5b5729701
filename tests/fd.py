"""Central finite differences: the reference every gradient in the sweep is checked against."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def numerical_grad(f: Callable, args: Sequence[np.ndarray], eps: float) -> list[np.ndarray]:
    """d f(*args) / d args[i] for every i, one central difference per element.

    The step actually taken (``x + eps`` rounded to the input dtype) is the denominator, so
    inputs on a float32 grid stay exact. A complex input ``z = x + iy`` is stepped along
    both axes and gets ``df/dx - i df/dy`` (autograd's convention, see
    ``pycograd.ops.complex``).
    """
    grads = []
    for i, x in enumerate(args):
        g = np.zeros(np.shape(x), np.result_type(x, np.float64))
        for j in range(np.size(x)):
            for unit in (1, 1j) if np.iscomplexobj(x) else (1,):
                hi, lo = x.copy(), x.copy()
                hi.reshape(-1)[j] += eps * unit
                lo.reshape(-1)[j] -= eps * unit
                step = ((hi.reshape(-1)[j] - lo.reshape(-1)[j]) / unit).real
                up = f(*args[:i], hi, *args[i + 1:])
                down = f(*args[:i], lo, *args[i + 1:])
                g.reshape(-1)[j] += np.conj(unit) * (float(up) - float(down)) / step
        grads.append(g)
    return grads


def directional(f: Callable, args: Sequence[np.ndarray], v: Sequence[np.ndarray],
                eps: float) -> list[np.ndarray]:
    """The derivative of the vector-valued ``f`` (a list of arrays) at ``args`` along ``v``."""
    up = f(*[(x + eps * d).astype(x.dtype) for x, d in zip(args, v)])
    down = f(*[(x - eps * d).astype(x.dtype) for x, d in zip(args, v)])
    return [(_wide(a) - _wide(b)) / (2 * eps) for a, b in zip(up, down)]


def _wide(a: object) -> np.ndarray:
    """``a`` in double precision, complex128 if it is complex."""
    return np.asarray(a, np.complex128 if np.iscomplexobj(a) else np.float64)
