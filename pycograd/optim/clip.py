"""Gradient clipping over pytrees of gradients (``None`` leaves pass through untouched).

Norms are taken in float64 over ``|g|**2``, so complex gradients (and float16 / bfloat16
ones) clip like real float64 ones; a complex gradient's norm counts both parts, as
PyTorch's ``clip_grad_norm_`` does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pycograd.core.pytree import tree_flatten, tree_map


def _sq_sum(g: Any) -> float:
    g = np.asarray(g)
    wide = g.astype(np.complex128 if np.iscomplexobj(g) else np.float64)
    return float(np.sum(np.real(wide) ** 2 + np.imag(wide) ** 2))


def global_norm(grads: Any) -> float:
    """The L2 norm of all gradient leaves taken together."""
    return float(np.sqrt(sum(_sq_sum(g) for g in tree_flatten(grads)[0] if g is not None)))


def _scaled(g: Any, scale: float) -> np.ndarray:
    g = np.asarray(g)
    return g * np.asarray(scale, np.real(np.zeros((), g.dtype)).dtype)


def clip_grad_norm(grads: Any, max_norm: float) -> tuple[Any, float]:
    """Scale all gradients by one factor so their global norm is at most ``max_norm``;
    returns ``(clipped, total_norm)`` with the norm measured before clipping.

    Examples:
        >>> import numpy as np
        >>> from pycograd import clip_grad_norm
        >>> clipped, norm = clip_grad_norm({"w": np.array([3.0, 4.0])}, 1.0)
        >>> float(norm), np.round(clipped["w"], 6).tolist()
        (5.0, [0.6, 0.8])
    """
    total = global_norm(grads)
    if total <= max_norm or total == 0.0:
        return grads, total
    scale = max_norm / total
    return tree_map(lambda g: _scaled(g, scale), grads), total


def clip_leaf_norm(grads: Any, max_norm: float) -> Any:
    """Clip each leaf separately to L2 norm at most ``max_norm``.

    Examples:
        >>> import numpy as np
        >>> from pycograd import clip_leaf_norm
        >>> out = clip_leaf_norm({"a": np.array([3.0, 4.0]), "b": np.array([0.1])}, 1.0)
        >>> np.round(out["a"], 6).tolist(), out["b"].tolist()      # each leaf on its own
        ([0.6, 0.8], [0.1])
    """

    def clip(g: Any) -> Any:
        n = float(np.sqrt(_sq_sum(g)))
        return np.asarray(g) if n <= max_norm else _scaled(g, max_norm / n)

    return tree_map(clip, grads)


def clip_grad_value(grads: Any, clip_value: float) -> Any:
    """Clip every gradient element to ``[-clip_value, clip_value]``; a complex element has
    its real and imaginary parts clipped separately.

    Examples:
        >>> import numpy as np
        >>> from pycograd import clip_grad_value
        >>> clip_grad_value({"w": np.array([-3.0, 0.5])}, 1.0)["w"].tolist()
        [-1.0, 0.5]
    """

    def clip(g: Any) -> Any:
        if np.iscomplexobj(g):
            return np.clip(np.real(g), -clip_value, clip_value) + 1j * np.clip(
                np.imag(g), -clip_value, clip_value)
        return np.clip(g, -clip_value, clip_value)

    return tree_map(clip, grads)
