"""Normalization layers as functions. Statistics are computed on the traced input, so
their gradients (through the mean and the variance) are exact; running statistics are
plain buffers updated under ``stop_gradient``."""

from __future__ import annotations

from typing import Any

import numpy as np

from pycograd.core.errors import ArgumentError, ShapeError
from pycograd.core.symbolic import Dim
from pycograd.ops.elementwise import stop_gradient
from pycograd.ops.fused import layer_norm_p, negative_axes


def _affine(y: Any, weight: Any, bias: Any) -> Any:
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def _channel(p: Any, ndim: int) -> Any:
    """A per-channel vector shaped to broadcast against an ``(N, C, ...)`` input."""
    return None if p is None else np.reshape(p, (-1,) + (1,) * (ndim - 2))


def layer_norm(x: Any, weight: Any = None, bias: Any = None, eps: float = 1e-5,
               axis: int | tuple = -1) -> Any:
    """Normalize over ``axis`` (the trailing feature axis by default, or a tuple of axes,
    like PyTorch's ``normalized_shape``); ``weight``/``bias`` broadcast against ``x``.

    One primitive with its affine part: the tape keeps the input (as PyTorch does) and
    backward recomputes the statistics, instead of keeping the centered and the
    normalized arrays a composition would.

    Examples:
        >>> import numpy as np
        >>> from pycograd import layer_norm
        >>> y = layer_norm(np.array([[1.0, 2.0, 3.0, 4.0]]), np.ones(4), np.zeros(4))
        >>> round(float(y.mean()), 6), round(float(y.std()), 3)
        (0.0, 1.0)
    """
    parts = [(n, np.asarray(p) if isinstance(p, (list, tuple)) else p)
             for n, p in (("weight", weight), ("bias", bias)) if p is not None]
    return layer_norm_p.bind(x, *(p for _, p in parts), affine=tuple(n for n, _ in parts),
                             axis=negative_axes(axis, np.ndim(x), "layer_norm"), eps=eps)


def rms_norm(x: Any, weight: Any = None, eps: float = 1e-6, axis: int | tuple = -1) -> Any:
    """``x / sqrt(mean(x**2) + eps) * weight`` over ``axis`` (no centering).

    Examples:
        >>> import numpy as np
        >>> from pycograd import rms_norm
        >>> np.round(rms_norm(np.array([3.0, 4.0]), np.ones(2)), 4).tolist()   # / sqrt(12.5)
        [0.8485, 1.1314]
    """
    ms = np.mean(x * x, axis=axis, keepdims=True)
    return _affine(x / np.sqrt(ms + eps), weight, None)


def batch_norm(x: Any, running_mean: Any = None, running_var: Any = None, weight: Any = None,
               bias: Any = None, training: bool = True, momentum: float = 0.1,
               eps: float = 1e-5) -> tuple[Any, Any, Any]:
    """Batch normalization of an ``(N, C, ...)`` input over every axis but the channel.

    Returns ``(y, new_running_mean, new_running_var)`` in both modes, so a caller stores
    the buffers back without branching. In training, ``y`` uses the batch statistics and
    the buffers move by ``momentum`` toward the batch mean and the *unbiased* batch
    variance (PyTorch's convention), without gradient; a ``None`` buffer stays ``None``.
    In evaluation (``training=False``) ``y`` uses the buffers, which come back unchanged.

    Examples:
        >>> import numpy as np
        >>> from pycograd import batch_norm
        >>> x = np.random.default_rng(0).standard_normal((8, 3)) * 5 + 2
        >>> y, mean, var = batch_norm(x, np.zeros(3), np.ones(3), training=True)
        >>> bool(np.allclose(y.mean(0), 0)), np.round(mean, 3).shape     # buffers moved by 0.1
        (True, (3,))
        >>> y_eval, _, _ = batch_norm(x, mean, var, training=False)      # uses the buffers
    """
    nd = np.ndim(x)
    if nd < 2:
        raise ShapeError(f"batch_norm: expected an (N, C, ...) input, got shape {np.shape(x)}")
    if training:
        axes = (0,) + tuple(range(2, nd))
        mu = np.mean(x, axis=axes, keepdims=True)
        d = x - mu
        var = np.mean(d * d, axis=axes, keepdims=True)
        y = d / np.sqrt(var + eps)
        n = np.size(x) // np.shape(x)[1]
        bm = stop_gradient(np.reshape(mu, (-1,)))
        # Bessel's correction; a symbolic n exists only under eval_shape, where no value is
        # computed
        unbiased = 1.0 if isinstance(n, Dim) else n / max(n - 1, 1)
        bv = stop_gradient(np.reshape(var, (-1,))) * unbiased
        if running_mean is not None:
            running_mean = (1.0 - momentum) * running_mean + momentum * bm
        if running_var is not None:
            running_var = (1.0 - momentum) * running_var + momentum * bv
    else:
        if running_mean is None or running_var is None:
            raise ArgumentError("batch_norm: evaluation mode needs running_mean and running_var")
        y = (x - _channel(running_mean, nd)) / np.sqrt(_channel(running_var, nd) + eps)
    y = _affine(y, _channel(weight, nd), _channel(bias, nd))
    return y, running_mean, running_var


def group_norm(x: Any, num_groups: int, weight: Any = None, bias: Any = None,
               eps: float = 1e-5) -> Any:
    """Normalize an ``(N, C, ...)`` input over each group of ``C // num_groups`` channels
    and all spatial positions; ``weight``/``bias`` are per channel.

    Examples:
        >>> import numpy as np
        >>> from pycograd import group_norm
        >>> x = np.random.default_rng(0).standard_normal((2, 4, 5))
        >>> y = group_norm(x, 2)                                 # 2 groups of 2 channels
        >>> bool(np.allclose(y[:, :2].mean(axis=(1, 2)), 0))
        True
    """
    shape = np.shape(x)
    n, c = shape[0], shape[1]
    if c % num_groups:
        raise ArgumentError(f"group_norm: {c} channels do not split into {num_groups} groups")
    g = np.reshape(x, (n, num_groups, -1))
    mu = np.mean(g, axis=-1, keepdims=True)
    d = g - mu
    var = np.mean(d * d, axis=-1, keepdims=True)
    y = np.reshape(d / np.sqrt(var + eps), shape)
    return _affine(y, _channel(weight, len(shape)), _channel(bias, len(shape)))
