"""Finite-difference check of a gradient: the demos' evidence that the tape is exact.

Central differences in float64 on every coordinate (or a random sample of them, for
large parameters), compared with the gradient pycograd returned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FDResult:
    """Worst disagreement between the analytic and the finite-difference gradient."""

    max_abs_err: float
    max_rel_err: float
    ok: bool


def fd_check(loss: Callable[..., float], params: Sequence[np.ndarray],
             grads: Sequence[np.ndarray], *, eps: float = 1e-6, max_coords: int = 64,
             rtol: float = 1e-5, atol: float = 1e-8,
             rng: np.random.Generator | None = None) -> FDResult:
    """Compare ``grads`` with central differences of ``loss(*params)``.

    At most ``max_coords`` coordinates per parameter are perturbed (chosen at random) so
    the check stays cheap for big layers. A coordinate passes when
    ``|g - fd| <= atol + rtol * |fd|``; the relative error reported covers the coordinates
    where the relative term dominates that tolerance (``rtol * |g| > atol``): on smaller
    gradients it measures only finite-difference noise over a tiny denominator.
    """
    rng = rng or np.random.default_rng(0)
    params = [np.array(p, dtype=np.float64) for p in params]
    max_abs = max_rel = 0.0
    ok = True
    for p, g in zip(params, grads):
        g = np.asarray(g).reshape(-1)
        coords = np.arange(p.size)
        if p.size > max_coords:
            coords = rng.choice(p.size, max_coords, replace=False)
        for i in coords:
            at = np.unravel_index(i, p.shape)
            old = p[at]
            p[at] = old + eps
            hi = float(loss(*params))
            p[at] = old - eps
            lo = float(loss(*params))
            p[at] = old
            fd = (hi - lo) / (2 * eps)
            err = abs(float(g[i]) - fd)
            max_abs = max(max_abs, err)
            scale = max(abs(float(g[i])), abs(fd))
            if rtol * scale > atol:
                max_rel = max(max_rel, err / scale)
            ok = ok and err <= atol + rtol * abs(fd)
    return FDResult(max_abs, max_rel, ok)
