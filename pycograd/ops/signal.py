"""One primitive for every convolution and correlation: the n-d *valid* correlation.

``correlate(a, v, batch=k)[b, n] = sum_j a[b, n + j] * v[b, j]`` over the trailing axes
(``j`` runs over ``v``'s core shape, ``n`` over ``a.shape - v.shape + 1``), with ``k``
leading axes that are matched, not correlated (vmap adds them). Full and 'same'
convolutions are this on a zero-padded input with the kernel flipped, so the numpy and
scipy front ends (``numpy_api.signal``) are compositions. The operation is bilinear and
its two VJPs are correlations again, so every order of derivative comes for free:
``da = correlate(pad(g, V - 1), flip(v))`` (the full convolution of ``g`` with ``v``) and
``dv = correlate(a, g)``. No conjugation appears: under pycograd's complex convention a
bilinear map's VJP is its plain transpose.

Small problems are computed directly (a strided window view contracted with the kernel,
exact for integers); large ones by FFT, as scipy's ``method='auto'`` does.
"""

from __future__ import annotations

import math
import string
from typing import Any

import numpy as np

from pycograd.core.errors import ShapeError
from pycograd.core.primitive import primitive
from pycograd.ops.batching import to_front
from pycograd.ops.complex import match
from pycograd.ops.linalg import einsum_any
from pycograd.ops.shaping import dtype_of, shape_of

_DIRECT_LIMIT = 1 << 24
"""Multiply-adds per batch element up to which the direct method is used (measured: it
wins below ~20M here, the FFT above)."""


def _fast_len(n: int) -> int:
    """The smallest 5-smooth integer >= n: FFT lengths with only small prime factors."""
    best = 1 << max(n - 1, 0).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def _core_out(a_core: tuple, v_core: tuple) -> tuple:
    return tuple(n - k + 1 for n, k in zip(a_core, v_core))


def _direct(a: np.ndarray, v: np.ndarray, batch: int) -> np.ndarray:
    axes = tuple(range(batch, a.ndim))
    win = np.lib.stride_tricks.sliding_window_view(a, v.shape[batch:], axis=axes)
    letters = iter(string.ascii_letters)
    b = "".join(next(letters) for _ in range(batch))
    n = "".join(next(letters) for _ in axes)
    j = "".join(next(letters) for _ in axes)
    return einsum_any(f"{b}{n}{j},{b}{j}->{b}{n}", win, v)


def _by_fft(a: np.ndarray, v: np.ndarray, batch: int) -> np.ndarray:
    axes = tuple(range(batch, a.ndim))
    a_core, v_core = a.shape[batch:], v.shape[batch:]
    size = tuple(_fast_len(n + k - 1) for n, k in zip(a_core, v_core))  # no wrap-around
    flipped = v[(slice(None),) * batch + (slice(None, None, -1),) * len(axes)]
    if np.iscomplexobj(a) or np.iscomplexobj(v):
        full = np.fft.ifftn(np.fft.fftn(a, size, axes) * np.fft.fftn(flipped, size, axes),
                            axes=axes)
    else:
        full = np.fft.irfftn(np.fft.rfftn(a, size, axes) * np.fft.rfftn(flipped, size, axes),
                             size, axes)
    keep = tuple(slice(k - 1, n) for n, k in zip(a_core, v_core))
    return full[(slice(None),) * batch + keep].astype(np.result_type(a, v), copy=False)


def _correlate_impl(a: Any, v: Any, batch: int) -> Any:
    a, v = np.asarray(a), np.asarray(v)
    work = math.prod(_core_out(a.shape[batch:], v.shape[batch:])) * math.prod(v.shape[batch:])
    exact = np.result_type(a, v).kind not in "fc"
    return _direct(a, v, batch) if exact or work <= _DIRECT_LIMIT else _by_fft(a, v, batch)


def flip(x: Any, batch: int = 0) -> Any:
    """``x`` reversed along every axis after the first ``batch``."""
    return x[(slice(None),) * batch + (slice(None, None, -1),) * (np.ndim(x) - batch)]


def full_convolve(a: Any, v: Any, batch: int = 0) -> Any:
    """The full n-d convolution of ``a`` and ``v`` over the axes after the first
    ``batch``: the valid correlation of ``a`` zero-padded by ``v``'s size - 1 with ``v``
    flipped."""
    width = [(0, 0)] * batch + [(k - 1, k - 1) for k in np.shape(v)[batch:]]
    return correlate_p.bind(np.pad(a, width), flip(v, batch), batch=batch)


def _vjp_a(g: Any, ans: Any, a: Any, v: Any, batch: int) -> Any:
    return match(full_convolve(g, v, batch), a)


def _vjp_v(g: Any, ans: Any, a: Any, v: Any, batch: int) -> Any:
    return match(correlate_p.bind(a, g, batch=batch), v)


def _batch(size: int, vals: list, dims: list, batch: int) -> tuple:
    a, v = (to_front(x, d, size) for x, d in zip(vals, dims))
    return correlate_p.bind(a, v, batch=batch + 1), 0


def _shape(args: list, batch: int) -> tuple:
    sa, sv = shape_of(args[0]), shape_of(args[1])
    if len(sa) != len(sv) or sa[:batch] != sv[:batch] or len(sa) == batch:
        raise ShapeError(f"correlate: operands of shapes {sa} and {sv} do not match "
                         f"(same rank, {batch} matched leading axes, at least one more axis)")
    out = _core_out(sa[batch:], sv[batch:])
    if any(isinstance(d, int) and d < 1 for d in out):
        raise ShapeError(f"correlate (valid): the kernel of shape {sv[batch:]} is larger than "
                         f"the input of shape {sa[batch:]} along some axis")
    return sa[:batch] + out, dtype_of(args[0], args[1])


correlate_p = primitive("correlate", _correlate_impl, _vjp_a, _vjp_v, family="multilinear",
                        batch=_batch, shape=_shape)
