"""Losses, built on the stable activations (log_softmax, softplus) rather than on
``log(softmax(x))`` or ``log(sigmoid(x))``, which lose precision and overflow."""

from __future__ import annotations

from typing import Any

import numpy as np

from pycograd.core.errors import ArgumentError
from pycograd.core.trace import Tracer
from pycograd.nn.activations import log_softmax, softplus
from pycograd.nn.embedding import check_range

REDUCTIONS = ("mean", "sum", "none")


def reduce_loss(loss: Any, reduction: str, count: Any = None) -> Any:
    """Apply ``reduction``; ``count`` overrides the divisor of ``'mean'`` (ignored items)."""
    if reduction == "none":
        return loss
    if reduction == "sum":
        return np.sum(loss)
    if reduction == "mean":
        return np.sum(loss) / (np.size(loss) if count is None else count)
    raise ArgumentError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def cross_entropy(logits: Any, target: Any, axis: int = -1, reduction: str = "mean",
                  label_smoothing: float = 0.0, ignore_index: int | None = None) -> Any:
    """Softmax cross-entropy over the class ``axis``.

    ``target`` is either integer labels, shaped like ``logits`` without the class axis, or
    soft targets (probabilities) shaped like ``logits``. Any leading batch dims are
    allowed. With ``label_smoothing=e`` the target becomes ``(1-e) * target + e / C``.
    Labels equal to ``ignore_index`` contribute nothing, and ``'mean'`` divides by the
    number of labels that are not ignored (as PyTorch does; 0 rather than NaN when every
    label is ignored).

    Examples:
        >>> import numpy as np
        >>> from pycograd import cross_entropy, grad
        >>> logits = np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
        >>> round(float(cross_entropy(logits, np.array([0, 1]))), 4)       # integer labels
        0.2395
        >>> round(float(cross_entropy(logits, np.eye(3)[[0, 1]])), 4)      # soft targets
        0.2395
        >>> grad(lambda z: cross_entropy(z, np.array([0, 1])), 0)(logits).shape
        (2, 3)
    """
    ndim = np.ndim(logits)
    axis = axis % ndim
    if axis != ndim - 1:
        logits = np.moveaxis(logits, axis, -1)
    n_classes = np.shape(logits)[-1]
    logp = log_softmax(logits, axis=-1)
    if not isinstance(target, (np.ndarray, Tracer)):
        target = np.asarray(target)
    if np.dtype(target.dtype).kind in "biu":
        labels = target
        if np.shape(labels) != np.shape(logp)[:-1]:
            raise ArgumentError(f"cross_entropy: integer labels of shape {np.shape(labels)} do "
                                f"not match logits of shape {np.shape(logits)} less the class axis")
        check_range("cross_entropy", "label", labels, n_classes, f"{n_classes} classes",
                    ignore_index)
        onehot = labels[..., None] == np.arange(n_classes)
        loss = -np.sum(np.where(onehot, logp, 0.0), axis=-1)
        if label_smoothing:
            smooth = -np.sum(logp, axis=-1) / n_classes
            loss = (1.0 - label_smoothing) * loss + label_smoothing * smooth
        if ignore_index is None:
            return reduce_loss(loss, reduction)
        keep = labels != ignore_index
        count = np.maximum(np.sum(keep), 1) if reduction == "mean" else None
        return reduce_loss(np.where(keep, loss, 0.0), reduction, count)
    if axis != ndim - 1:
        target = np.moveaxis(target, axis, -1)
    if np.shape(target) != np.shape(logp):
        raise ArgumentError(f"cross_entropy: soft targets of shape {np.shape(target)} do not "
                            f"match logits of shape {np.shape(logp)}")
    if label_smoothing:
        target = target * (1.0 - label_smoothing) + label_smoothing / n_classes
    return reduce_loss(-np.sum(target * logp, axis=-1), reduction)


def binary_cross_entropy_with_logits(logits: Any, target: Any, reduction: str = "mean",
                                     pos_weight: Any = None) -> Any:
    """``-[w y log sigmoid(x) + (1-y) log(1 - sigmoid(x))]`` via softplus, stable for any x.

    Examples:
        >>> import numpy as np
        >>> from pycograd import binary_cross_entropy_with_logits as bce
        >>> round(float(bce(np.array([0.0, 800.0]), np.array([1.0, 1.0]))), 4)  # log(2) / 2
        0.3466
    """
    if pos_weight is None:
        loss = softplus(logits) - logits * target
    else:
        loss = (1.0 - target) * logits + (1.0 + (pos_weight - 1.0) * target) * softplus(-logits)
    return reduce_loss(loss, reduction)


def mse(pred: Any, target: Any, reduction: str = "mean") -> Any:
    """Mean squared error, ``(pred - target) ** 2`` reduced by ``reduction``: ``"mean"``
    (the default), ``"sum"`` or ``"none"`` (elementwise), as PyTorch's ``mse_loss``.

    Examples:
        >>> import numpy as np
        >>> from pycograd import grad, mse
        >>> pred, target = np.array([1.0, 2.0, 4.0]), np.array([1.0, 2.0, 3.0])
        >>> round(float(mse(pred, target)), 4), mse(pred, target, reduction="none").tolist()
        (0.3333, [0.0, 0.0, 1.0])
        >>> np.round(grad(mse, 0)(pred, target), 4).tolist()           # 2 (pred - target) / n
        [0.0, 0.0, 0.6667]
    """
    d = pred - target
    return reduce_loss(d * d, reduction)


def huber(pred: Any, target: Any, delta: float = 1.0, reduction: str = "mean") -> Any:
    """Quadratic within ``delta`` of the target, linear beyond (PyTorch's ``huber_loss``).

    Examples:
        >>> import numpy as np
        >>> from pycograd import huber
        >>> huber(np.array([0.5, 3.0]), np.zeros(2), reduction="none").tolist()
        [0.125, 2.5]
    """
    d = pred - target
    a = np.abs(d)
    return reduce_loss(np.where(a < delta, 0.5 * d * d, delta * (a - 0.5 * delta)), reduction)


