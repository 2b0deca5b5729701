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
from pycograd.ops.fused import log_softmax_p, negative_axes, softmax_p
from pycograd.ops.special import erf


def relu(x: Any) -> Any:
    """``max(x, 0)``, with gradient 0 at 0 (as PyTorch).

    Examples:
        >>> import numpy as np
        >>> from pycograd import elementwise_grad, relu
        >>> x = np.array([-2.0, 0.0, 2.0])
        >>> np.round(relu(x), 4).tolist()
        [0.0, 0.0, 2.0]
        >>> np.round(elementwise_grad(relu)(x), 4).tolist()
        [0.0, 0.0, 1.0]
    """
    return np.where(x > 0, x, 0.0)


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Any:
    """``x`` where positive, ``negative_slope * x`` elsewhere: a ReLU whose negative side
    keeps a small gradient, so units cannot die. The gradient at 0 is ``negative_slope``.

    Examples:
        >>> import numpy as np
        >>> from pycograd import elementwise_grad, leaky_relu
        >>> x = np.array([-2.0, 0.0, 2.0])
        >>> np.round(leaky_relu(x, 0.1), 4).tolist()
        [-0.2, 0.0, 2.0]
        >>> np.round(elementwise_grad(leaky_relu)(x), 4).tolist()
        [0.01, 0.01, 1.0]
    """
    return np.where(x > 0, x, x * negative_slope)


def elu(x: Any, alpha: float = 1.0) -> Any:
    """``x`` where positive, ``alpha * (exp(x) - 1)`` elsewhere (Clevert et al.): smooth for
    ``alpha=1``, saturating at ``-alpha``. ``expm1`` keeps small negative inputs exact, and
    the exponential only ever sees non-positive values, so it cannot overflow.

    Examples:
        >>> import numpy as np
        >>> from pycograd import elementwise_grad, elu
        >>> x = np.array([-2.0, 0.0, 2.0])
        >>> np.round(elu(x), 4).tolist()
        [-0.8647, 0.0, 2.0]
        >>> np.round(elementwise_grad(elu)(x), 4).tolist()
        [0.1353, 1.0, 1.0]
    """
    return np.where(x > 0, x, alpha * np.expm1(np.where(x > 0, 0.0, x)))


def _neg_abs(x: Any) -> Any:
    """``-|x|`` whose derivative at 0 is that of the ``x >= 0`` branch (-1), not
    ``abs``'s 0: the smooth functions built on it then differentiate correctly at 0."""
    return np.where(x >= 0, -x, x)


def sigmoid(x: Any) -> Any:
    """``1 / (1 + exp(-x))`` through ``exp(-|x|)``, which never overflows.

    Examples:
        >>> import numpy as np
        >>> from pycograd import elementwise_grad, sigmoid
        >>> x = np.array([-2.0, 0.0, 2.0])
        >>> np.round(sigmoid(x), 4).tolist()
        [0.1192, 0.5, 0.8808]
        >>> np.round(elementwise_grad(sigmoid)(x), 4).tolist()
        [0.105, 0.25, 0.105]
    """
    e = np.exp(_neg_abs(x))
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


def tanh(x: Any) -> Any:
    """The hyperbolic tangent, ``np.tanh``: listed with the other activations so a model can
    import all of them from one place (``np.tanh`` differentiates just the same).

    Examples:
        >>> import numpy as np
        >>> from pycograd import elementwise_grad, tanh
        >>> x = np.array([-2.0, 0.0, 2.0])
        >>> np.round(tanh(x), 4).tolist()
        [-0.964, 0.0, 0.964]
        >>> np.round(elementwise_grad(tanh)(x), 4).tolist()
        [0.0707, 1.0, 0.0707]
    """
    return np.tanh(x)


_SQRT_HALF = math.sqrt(0.5)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def gelu(x: Any, approximate: str | bool = "none") -> Any:
    """GELU: exact ``x * Phi(x)`` via erf, or the tanh approximation with
    ``approximate='tanh'`` (or ``True``).

    Examples:
        >>> import numpy as np
        >>> from pycograd import elementwise_grad, gelu
        >>> x = np.array([-2.0, 0.0, 2.0])
        >>> np.round(gelu(x), 4).tolist()
        [-0.0455, 0.0, 1.9545]
        >>> np.round(elementwise_grad(gelu)(x), 4).tolist()
        [-0.0852, 0.5, 1.0852]
    """
    if approximate in ("tanh", True):
        return 0.5 * x * (1.0 + np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * (x * x * x))))
    if approximate not in ("none", False, None):
        raise ArgumentError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return 0.5 * x * (1.0 + erf(x * _SQRT_HALF))


def silu(x: Any) -> Any:
    """SiLU (swish): ``x * sigmoid(x)``, through the overflow-free ``sigmoid``.

    Examples:
        >>> import numpy as np
        >>> from pycograd import elementwise_grad, silu
        >>> x = np.array([-2.0, 0.0, 2.0])
        >>> np.round(silu(x), 4).tolist()
        [-0.2384, 0.0, 1.7616]
        >>> np.round(elementwise_grad(silu)(x), 4).tolist()
        [-0.0908, 0.5, 1.0908]
    """
    return x * sigmoid(x)


def softplus(x: Any, beta: float = 1.0) -> Any:
    """``log(1 + exp(beta x)) / beta`` as ``max(z, 0) + log1p(exp(-|z|))``, stable both ways.

    Examples:
        >>> import numpy as np
        >>> from pycograd import elementwise_grad, softplus
        >>> x = np.array([-2.0, 0.0, 2.0])
        >>> np.round(softplus(x), 4).tolist()
        [0.1269, 0.6931, 2.1269]
        >>> np.round(elementwise_grad(softplus)(x), 4).tolist()
        [0.1192, 0.5, 0.8808]
    """
    z = x * beta if beta != 1.0 else x
    r = np.where(z >= 0, z, 0.0) + np.log1p(np.exp(_neg_abs(z)))
    return r / beta if beta != 1.0 else r


def _shift(x: Any, axis: Any) -> Any:
    """The per-slice max, gradient-free, with non-finite maxima (all -inf rows) set to 0."""
    m = np.max(stop_gradient(x), axis=axis, keepdims=True)
    return np.where(np.isfinite(m), m, 0.0)


def logsumexp(x: Any, axis: Any = -1, keepdims: bool = False) -> Any:
    """``log(sum(exp(x)))`` along ``axis``, computed as ``m + log(sum(exp(x - m)))`` with the
    max ``m`` held under ``stop_gradient``, so it never overflows and its gradient (the
    softmax) is exact. Rows that are all ``-inf`` give ``-inf``.

    Examples:
        >>> import numpy as np
        >>> from pycograd import grad, logsumexp, softmax
        >>> round(float(logsumexp(np.array([1000.0, 1000.0]))), 4)   # log(2) + 1000, no overflow
        1000.6931
        >>> x = np.array([1.0, 2.0, 3.0])
        >>> bool(np.allclose(grad(logsumexp, 0)(x), softmax(x)))      # its gradient is softmax
        True
    """
    m = _shift(x, axis)
    r = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return r if keepdims else np.squeeze(r, axis=axis)


def softmax(x: Any, axis: Any = -1) -> Any:
    """``exp(x) / sum(exp(x))`` along ``axis``: the probabilities of a row of logits.

    The row's max is subtracted first, so large logits never overflow. One primitive: the
    tape keeps only the output, which is all its gradient ``y * (g - sum(g * y))`` reads.

    Examples:
        >>> import numpy as np
        >>> from pycograd import softmax
        >>> np.round(softmax(np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 1000.0]])), 4).tolist()
        [[0.09, 0.2447, 0.6652], [0.0, 0.0, 1.0]]
    """
    return softmax_p.bind(x, axis=negative_axes(axis, np.ndim(x), "softmax"))


def log_softmax(x: Any, axis: Any = -1) -> Any:
    """``x - logsumexp(x)`` along ``axis``: the log-probabilities of a row of logits, stable
    where ``np.log(softmax(x))`` would underflow to ``-inf``. One primitive, keeping only its
    output for the gradient ``g - exp(y) * sum(g)``.

    Examples:
        >>> import numpy as np
        >>> from pycograd import log_softmax
        >>> np.round(log_softmax(np.array([1.0, 2.0, 3.0])), 4).tolist()
        [-2.4076, -1.4076, -0.4076]
        >>> float(log_softmax(np.array([0.0, 1000.0]))[1])       # no overflow, no log(0)
        0.0
    """
    return log_softmax_p.bind(x, axis=negative_axes(axis, np.ndim(x), "log_softmax"))
