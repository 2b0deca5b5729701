"""Attention: scaled dot-product (batched over any leading dims) and multi-head."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pycograd.core.errors import ArgumentError
from pycograd.nn.activations import softmax
from pycograd.nn.linear import linear
from pycograd.ops.shaping import full, is_symbolic


def scaled_dot_product_attention(q: Any, k: Any, v: Any, mask: Any = None,
                                 is_causal: bool = False, scale: float | None = None) -> Any:
    """``softmax(q k^T * scale + mask) v`` over ``(..., L, D)`` queries and ``(..., S, D)``
    keys/values. ``mask`` is additive (float, ``-inf`` blocks) or boolean (``True`` keeps),
    broadcast against ``(..., L, S)``; ``is_causal`` blocks keys after each query
    (top-left aligned, as PyTorch). ``scale`` defaults to ``1 / sqrt(D)``.

    Examples:
        >>> import numpy as np
        >>> from pycograd import scaled_dot_product_attention
        >>> q = k = v = np.random.default_rng(0).standard_normal((2, 5, 8))   # (batch, L, D)
        >>> scaled_dot_product_attention(q, k, v, is_causal=True).shape
        (2, 5, 8)
        >>> out = scaled_dot_product_attention(q, k, v, is_causal=True)
        >>> bool(np.allclose(out[:, 0], v[:, 0]))               # the first query sees one key
        True
    """
    L, S = np.shape(q)[-2], np.shape(k)[-2]
    s = (q @ np.swapaxes(k, -1, -2)) * (1.0 / math.sqrt(np.shape(q)[-1]) if scale is None
                                        else scale)
    if is_causal:
        # a symbolic length exists only under eval_shape, which computes no values: there
        # the mask is its shape
        keep = full((L, S), True) if is_symbolic((L, S)) else np.tril(np.ones((L, S), bool))
        s = np.where(keep, s, -np.inf)
    if mask is not None:
        if getattr(mask, "dtype", None) == np.bool_:
            s = np.where(mask, s, -np.inf)
        else:
            s = s + mask
    return softmax(s, axis=-1) @ v


def _split_heads(x: Any, h: int) -> Any:
    shape = np.shape(x)
    return np.swapaxes(np.reshape(x, shape[:-1] + (h, shape[-1] // h)), -2, -3)


def multi_head_attention(query: Any, key: Any, value: Any, num_heads: int, w_q: Any, w_k: Any,
                         w_v: Any, w_o: Any, b_q: Any = None, b_k: Any = None, b_v: Any = None,
                         b_o: Any = None, mask: Any = None, is_causal: bool = False) -> Any:
    """Multi-head attention over ``(..., L, E)`` queries and ``(..., S, E)`` keys/values.

    Projections are ``linear`` maps with ``(out, in)`` weights (``w_q``/``w_k``/``w_v``:
    ``(E, E_in)``, ``w_o``: ``(E_out, E)``); heads split ``E`` into ``num_heads`` slices.
    ``mask`` broadcasts against ``(..., num_heads, L, S)``.

    Examples:
        >>> import numpy as np
        >>> from pycograd import multi_head_attention
        >>> rng = np.random.default_rng(0)
        >>> x = rng.standard_normal((2, 5, 8))                    # (batch, L, E)
        >>> w_q, w_k, w_v, w_o = (0.3 * rng.standard_normal((8, 8)) for _ in range(4))
        >>> multi_head_attention(x, x, x, 2, w_q, w_k, w_v, w_o).shape
        (2, 5, 8)
    """
    e = np.shape(w_q)[0]
    if e % num_heads:
        raise ArgumentError(f"multi_head_attention: embedding size {e} does not split into "
                            f"{num_heads} heads")
    q = _split_heads(linear(query, w_q, b_q), num_heads)
    k = _split_heads(linear(key, w_k, b_k), num_heads)
    v = _split_heads(linear(value, w_v, b_v), num_heads)
    o = np.swapaxes(scaled_dot_product_attention(q, k, v, mask, is_causal), -2, -3)
    return linear(np.reshape(o, np.shape(o)[:-2] + (e,)), w_o, b_o)
