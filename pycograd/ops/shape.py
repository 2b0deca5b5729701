"""Structural primitives: they move elements around and never change a value."""

from __future__ import annotations

from typing import Any

import numpy as np

from pycograd.core.primitive import PerArgument, primitive
from pycograd.ops.broadcasting import unbroadcast

reshape_p = primitive("reshape", lambda x, shape: np.reshape(x, shape),
                      lambda g, ans, x, shape: np.reshape(g, np.shape(x)))
transpose_p = primitive("transpose", lambda x, axes: np.transpose(x, axes),
                        lambda g, ans, x, axes: np.transpose(g, tuple(np.argsort(axes))))
broadcast_to_p = primitive("broadcast_to", lambda x, shape: np.broadcast_to(x, shape),
                           lambda g, ans, x, shape: unbroadcast(g, np.shape(x)))


def _concatenate_vjp(i: int, g: Any, ans: Any, *xs: Any, axis: int) -> Any:
    start = sum(np.shape(x)[axis] for x in xs[:i])
    stop = start + np.shape(xs[i])[axis]
    return g[(slice(None),) * axis + (slice(start, stop),)]


concatenate_p = primitive("concatenate", lambda *xs, axis: np.concatenate(xs, axis=axis),
                          PerArgument(_concatenate_vjp))
