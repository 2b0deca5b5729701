"""Gradient clipping over pytrees of gradients (``None`` leaves pass through untouched)."""

from __future__ import annotations

from typing import Any

import numpy as np

from pycograd.core.pytree import tree_flatten, tree_map


def global_norm(grads: Any) -> float:
    """The L2 norm of all gradient leaves taken together."""
    leaves = [np.asarray(g) for g in tree_flatten(grads)[0] if g is not None]
    return float(np.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in leaves)))


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
    return tree_map(lambda g: np.asarray(g) * np.asarray(scale, np.asarray(g).dtype), grads), total


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
        g = np.asarray(g)
        n = float(np.sqrt(np.sum(np.square(g, dtype=np.float64))))
        return g if n <= max_norm else g * np.asarray(max_norm / n, g.dtype)

    return tree_map(clip, grads)


def clip_grad_value(grads: Any, clip_value: float) -> Any:
    """Clip every gradient element to ``[-clip_value, clip_value]``.

    Examples:
        >>> import numpy as np
        >>> from pycograd import clip_grad_value
        >>> clip_grad_value({"w": np.array([-3.0, 0.5])}, 1.0)["w"].tolist()
        [-1.0, 0.5]
    """
    return tree_map(lambda g: np.clip(g, -clip_value, clip_value), grads)
