"""Activations and the softmax family, written in numpy so every transform sees them.

Each op is arranged so that no branch overflows for large ``|x|`` (both sides of an
``np.where`` are evaluated and differentiated, so an ``inf`` in the unused side would
still poison the gradient with ``0 * inf``). ``logsumexp`` subtracts a max held under
``stop_gradient``: the identity is exact, so the gradient stays exact too.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pycograd.core.errors import ArgumentError
from pycograd.ops.elementwise import stop_gradient
from pycograd.ops.special import erf


def relu(x: Any) -> Any:
    """``max(x, 0)``, with gradient 0 at 0 (as PyTorch)."""
    return np.where(x > 0, x, 0.0)


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Any:
    return np.where(x > 0, x, x * negative_slope)


def elu(x: Any, alpha: float = 1.0) -> Any:
    return np.where(x > 0, x, alpha * np.expm1(np.where(x > 0, 0.0, x)))


def _neg_abs(x: Any) -> Any:
    """``-|x|`` whose derivative at 0 is that of the ``x >= 0`` branch (-1), not
    ``abs``'s 0: the smooth functions built on it then differentiate correctly at 0."""
    return np.where(x >= 0, -x, x)


def sigmoid(x: Any) -> Any:
    """``1 / (1 + exp(-x))`` through ``exp(-|x|)``, which never overflows."""
    e = np.exp(_neg_abs(x))
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


def tanh(x: Any) -> Any:
    return np.tanh(x)


_SQRT_HALF = math.sqrt(0.5)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def gelu(x: Any, approximate: str | bool = "none") -> Any:
    """GELU: exact ``x * Phi(x)`` via erf, or the tanh approximation with
    ``approximate='tanh'`` (or ``True``)."""
    if approximate in ("tanh", True):
        return 0.5 * x * (1.0 + np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * (x * x * x))))
    if approximate not in ("none", False, None):
        raise ArgumentError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return 0.5 * x * (1.0 + erf(x * _SQRT_HALF))


def silu(x: Any) -> Any:
    return x * sigmoid(x)


def softplus(x: Any, beta: float = 1.0) -> Any:
    """``log(1 + exp(beta x)) / beta`` as ``max(z, 0) + log1p(exp(-|z|))``, stable both ways."""
    z = x * beta if beta != 1.0 else x
    r = np.where(z >= 0, z, 0.0) + np.log1p(np.exp(_neg_abs(z)))
    return r / beta if beta != 1.0 else r


def _shift(x: Any, axis: Any) -> Any:
    """The per-slice max, gradient-free, with non-finite maxima (all -inf rows) set to 0."""
    m = np.max(stop_gradient(x), axis=axis, keepdims=True)
    return np.where(np.isfinite(m), m, 0.0)


def logsumexp(x: Any, axis: Any = -1, keepdims: bool = False) -> Any:
    m = _shift(x, axis)
    r = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return r if keepdims else np.squeeze(r, axis=axis)


def softmax(x: Any, axis: Any = -1) -> Any:
    e = np.exp(x - _shift(x, axis))
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x: Any, axis: Any = -1) -> Any:
    return x - logsumexp(x, axis=axis, keepdims=True)
