"""Central finite differences: the reference every gradient in the sweep is checked against."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from pycograd.transforms import check


def numerical_grad(f: Callable, args: Sequence[np.ndarray], eps: float) -> list[np.ndarray]:
    """d f(*args) / d args[i] for every i, one central difference per element: the engine
    of the public ``check_grads`` (``pycograd.transforms.check.numerical_grad``), so the
    sweep and users check against the same differences.

    The step actually taken (``x + eps`` rounded to the input dtype) is the denominator, so
    inputs on a float32 grid stay exact. A complex input ``z = x + iy`` is stepped along
    both axes and gets ``df/dx - i df/dy`` (autograd's convention, see
    ``pycograd.ops.complex``).
    """
    return check.numerical_grad(f, args, eps)


def directional(f: Callable, args: Sequence[np.ndarray], v: Sequence[np.ndarray],
                eps: float) -> list[np.ndarray]:
    """The derivative of the vector-valued ``f`` (a list of arrays) at ``args`` along ``v``."""
    up = f(*[(x + eps * d).astype(x.dtype) for x, d in zip(args, v)])
    down = f(*[(x - eps * d).astype(x.dtype) for x, d in zip(args, v)])
    return [(_wide(a) - _wide(b)) / (2 * eps) for a, b in zip(up, down)]


def _wide(a: object) -> np.ndarray:
    """``a`` in double precision, complex128 if it is complex."""
    return np.asarray(a, np.complex128 if np.iscomplexobj(a) else np.float64)
