"""RWKV-4 building blocks: the WKV recurrence in a parallel form (for training) and a
recurrent form with O(1) state per token (for sampling), and the time-mix and channel-mix
cells written once over both.

WKV is a softmax-like average of past values whose weights decay with distance,
``wkv_t = (sum_{i<t} e^{k_i-(t-1-i)w} v_i + e^{u+k_t} v_t) / (same without v)``. The naive
sums overflow (``e^{k}`` with large ``k``), so both forms carry a running maximum exponent:
the parallel form subtracts the per-row maximum like a softmax, the recurrent form keeps
``(a, b, p)`` with ``a = sum e^{k_i - p} v_i``, ``b = sum e^{k_i - p}`` and ``p`` the largest
exponent so far. Both are compositions of differentiable numpy ops, so grad, jvp, vmap,
checkpoint and higher orders all apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pycograd.core.errors import ArgumentError, ShapeError
from pycograd.nn.activations import sigmoid
from pycograd.nn.rnn import scan
from pycograd.ops.elementwise import stop_gradient


class RecurrentStateError(ArgumentError):
    """A state passed to a form that cannot continue from one (the parallel WKV)."""


def _float(k: Any) -> np.dtype:
    """The float dtype the internal constants take, so float32 keys stay float32."""
    dtype = np.result_type(getattr(k, "dtype", np.float64))
    return dtype if dtype.kind in "fc" else np.dtype(np.float64)


def _check(name: str, k: Any, v: Any, w: Any, u: Any) -> None:
    c = np.shape(k)[-1:]
    if np.shape(k) != np.shape(v) or np.shape(w) != c or np.shape(u) != c:
        raise ShapeError(f"{name}: k and v must share a shape (..., C) and w, u be (C,); got "
                         f"k {np.shape(k)}, v {np.shape(v)}, w {np.shape(w)}, u {np.shape(u)}")


def wkv(w: Any, u: Any, k: Any, v: Any) -> Any:
    """The WKV average of RWKV-4 over a whole sequence at once (the training form).

    ``k`` and ``v`` are ``(..., T, C)``; ``w`` ``(C,)`` is the (positive) per-channel decay
    and ``u`` ``(C,)`` the bonus of the current token. Row ``t`` is a softmax over the
    tokens ``i <= t`` of the exponents ``k_i - (t-1-i) w`` (``u + k_t`` for ``i = t``),
    weighting ``v_i``; the maximum exponent is subtracted first, so large keys never
    overflow. Memory is ``O(T^2 C)``: use :func:`wkv_step` for long sequences.

    Examples:
        >>> import numpy as np
        >>> from pycograd import wkv
        >>> k, v = np.array([[0.0], [1000.0]]), np.array([[1.0], [3.0]])     # T=2, C=1
        >>> wkv(np.ones(1), np.zeros(1), k, v).tolist()     # e^1000 would overflow naively
        [[1.0], [3.0]]
    """
    _check("wkv", k, v, w, u)
    T = np.shape(k)[-2]
    pos = np.arange(T)
    dist = (pos[:, None] - 1 - pos[None, :]).astype(_float(k))[:, :, None]  # (t, i, 1): t-1-i
    past, now = dist >= 0, dist == -1
    ki = np.expand_dims(k, -3)                                           # (..., 1, i, C)
    expo = np.where(past, ki - dist * w, np.where(now, ki + u, -np.inf))  # (..., t, i, C)
    weight = np.exp(expo - stop_gradient(np.max(expo, axis=-2, keepdims=True)))
    return np.sum(weight * np.expand_dims(v, -3), axis=-2) / np.sum(weight, axis=-2)


def wkv_step(w: Any, u: Any, k: Any, v: Any,
             state: tuple[Any, Any, Any] | None = None) -> tuple[Any, tuple[Any, Any, Any]]:
    """One token of WKV in O(1) state (the sampling form); returns ``(wkv_t, state)``.

    ``k``, ``v`` are one token's ``(..., C)``; ``state = (a, b, p)`` summarizes the past
    (``None`` for an empty one). ``scan`` of this over a sequence equals :func:`wkv`.

    Examples:
        >>> import numpy as np
        >>> from pycograd import wkv, wkv_step, scan
        >>> rng = np.random.default_rng(0)
        >>> k, v, w, u = rng.normal(size=(5, 3)), rng.normal(size=(5, 3)), np.ones(3), np.zeros(3)
        >>> step = lambda s, kv: wkv_step(w, u, kv[0], kv[1], s)[::-1]     # (state, y)
        >>> _, ys = scan(step, None, (k, v), has_output=True)
        >>> bool(np.allclose(ys, wkv(w, u, k, v), rtol=0, atol=1e-12))
        True
    """
    _check("wkv_step", k, v, w, u)
    if state is None:  # an empty past: e^{p - q} is exactly 0, and p is finite so no
        # inf - inf can reach a derivative
        zero = np.zeros_like(k, _float(k))
        state = (zero, zero, np.full_like(k, np.finfo(_float(k)).min / 2, _float(k)))
    a, b, p = state
    q = np.maximum(p, u + k)
    e_past, e_now = np.exp(p - q), np.exp(u + k - q)
    out = (e_past * a + e_now * v) / (e_past * b + e_now)
    q = np.maximum(p - w, k)
    e_past, e_now = np.exp(p - w - q), np.exp(k - q)
    return out, (e_past * a + e_now * v, e_past * b + e_now, q)


def token_shift(x: Any, last: Any = None) -> tuple[Any, Any]:
    """``x`` ``(..., T, C)`` moved one token later along ``T``, the first row taken from
    ``last`` (the previous call's final token, zeros if ``None``); returns
    ``(shifted, x's last token)`` so a recurrent caller can pass it on.

    Examples:
        >>> import numpy as np
        >>> from pycograd import token_shift
        >>> shifted, last = token_shift(np.array([[1.0], [2.0], [3.0]]))
        >>> shifted.ravel().tolist(), last.tolist()
        ([0.0, 1.0, 2.0], [3.0])
    """
    first = np.zeros_like(x[..., 0, :], _float(x)) if last is None else last
    shifted = np.concatenate([np.expand_dims(first, -2), x[..., :-1, :]], axis=-2)
    return shifted, x[..., -1, :]


def rwkv_time_mix(x: Any, w: Mapping[str, Any], state: Any = None,
                  recurrent: bool = False) -> tuple[Any, Any]:
    """RWKV-4 time mixing of ``x`` ``(..., T, C)``; returns ``(y, state)``.

    ``w`` holds ``mix_k``, ``mix_v``, ``mix_r``, ``decay``, ``bonus`` (each ``(C,)``; the
    decay is ``exp(w['decay'])`` so it stays positive) and ``key``, ``value``,
    ``receptance``, ``output`` (``(C, C)``, applied as ``x @ W``). The projections run on
    all ``T`` tokens at once in both forms; only WKV differs: ``recurrent=False`` uses the
    parallel :func:`wkv` (training, or reading a prompt; a fresh sequence, so the WKV part
    of ``state`` must be empty), ``recurrent=True`` scans :func:`wkv_step` from ``state``
    (sampling one token at a time in O(1)). Both return the state
    ``(last token, (a, b, p))`` that continues the sequence recurrently.

    Examples:
        >>> import numpy as np
        >>> from pycograd import rwkv_time_mix
        >>> rng = np.random.default_rng(0)
        >>> C = 4
        >>> w = {n: rng.normal(size=C) for n in ("mix_k", "mix_v", "mix_r", "decay", "bonus")}
        >>> w.update({n: rng.normal(size=(C, C)) / 2 for n in ("key", "value", "receptance",
        ...                                                    "output")})
        >>> x = rng.normal(size=(6, C))
        >>> y, _ = rwkv_time_mix(x, w)                                     # parallel
        >>> state, ys = None, []
        >>> for t in range(6):                                             # one token at a time
        ...     y_t, state = rwkv_time_mix(x[t:t + 1], w, state, recurrent=True)
        ...     ys.append(y_t)
        >>> bool(np.allclose(np.concatenate(ys), y, rtol=0, atol=1e-10))
        True
    """
    last, wkv_state = (None, None) if state is None else state
    if not recurrent and wkv_state is not None:
        raise RecurrentStateError("rwkv_time_mix: the parallel form starts a fresh sequence; pass "
                         "recurrent=True to continue from a state")
    xx, last = token_shift(x, last)
    k = (x * w["mix_k"] + xx * (1 - w["mix_k"])) @ w["key"]
    v = (x * w["mix_v"] + xx * (1 - w["mix_v"])) @ w["value"]
    r = sigmoid((x * w["mix_r"] + xx * (1 - w["mix_r"])) @ w["receptance"])
    decay = np.exp(w["decay"])
    if recurrent:
        def step(s: Any, kv: tuple[Any, Any]) -> tuple[Any, Any]:
            y, s = wkv_step(decay, w["bonus"], kv[0], kv[1], s)
            return s, y
        wkv_state, out = scan(step, wkv_state, (k, v), axis=-2, has_output=True)
    else:
        out, wkv_state = wkv(decay, w["bonus"], k, v), _final_state(decay, k, v)
    return (r * out) @ w["output"], (last, wkv_state)


def _final_state(w: Any, k: Any, v: Any) -> tuple[Any, Any, Any]:
    """The ``(a, b, p)`` that :func:`wkv_step` reaches after the whole of ``k``, ``v``
    ``(..., T, C)``, computed at once: ``p`` is the largest ``k_i - (T-1-i) w``."""
    T = np.shape(k)[-2]
    expo = k - (T - 1 - np.arange(T, dtype=_float(k)))[:, None] * w
    p = np.max(expo, axis=-2)
    e = np.exp(expo - np.expand_dims(p, -2))
    return np.sum(e * v, axis=-2), np.sum(e, axis=-2), p


def rwkv_channel_mix(x: Any, w: Mapping[str, Any], last: Any = None) -> tuple[Any, Any]:
    """RWKV-4 channel mixing of ``x`` ``(..., T, C)``, ``sigmoid(r) * (relu(k)^2 @ value)``
    on token-shifted inputs; returns ``(y, x's last token)`` to pass as ``last`` next call.

    ``w`` holds ``mix_k``, ``mix_r`` ``(C,)``, ``key`` ``(C, F)``, ``value`` ``(F, C)``
    and ``receptance`` ``(C, C)``. It is the same code for a whole sequence and for one
    token.

    Examples:
        >>> import numpy as np
        >>> from pycograd import rwkv_channel_mix
        >>> C, F = 3, 8
        >>> w = {"mix_k": np.full(C, 0.5), "mix_r": np.full(C, 0.5), "key": np.ones((C, F)),
        ...      "value": np.ones((F, C)), "receptance": np.zeros((C, C))}
        >>> y, last = rwkv_channel_mix(np.ones((2, C)), w)
        >>> y.tolist()          # token 0 sees half of itself (no past): (1.5)^2 * 8 / 2
        [[9.0, 9.0, 9.0], [36.0, 36.0, 36.0]]
    """
    xx, last = token_shift(x, last)
    k = (x * w["mix_k"] + xx * (1 - w["mix_k"])) @ w["key"]
    r = sigmoid((x * w["mix_r"] + xx * (1 - w["mix_r"])) @ w["receptance"])
    return r * (np.maximum(k, 0.0) ** 2 @ w["value"]), last
