"""One-dimensional discrete Fourier transforms: ``fft``, ``ifft``, ``rfft``, ``irfft``.

Each takes ``n`` (the transform length, resolved), a non-negative ``axis`` and ``norm``;
``numpy_api.fft`` builds the n-dimensional and Hermitian variants from these, as numpy
does. Under pycograd's complex convention (``pycograd.ops.complex``) the VJP is the plain
transpose: the DFT matrix is symmetric, so the VJP of ``fft`` is ``fft`` of the
cotangent (same ``norm``), cut or zero-padded back to the input's length. ``rfft`` is
``fft`` of a real input keeping ``n // 2 + 1`` outputs, and ``irfft`` reads only that
half of its input, counting the interior frequencies twice; their VJPs follow from those
descriptions. All four are linear, so their JVP applies them to the tangent.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pycograd.core.primitive import primitive
from pycograd.ops.batching import to_front
from pycograd.ops.complex import match
from pycograd.ops.shaping import dtype_of, shape_of


def resize(x: Any, length: int, axis: int) -> Any:
    """``x`` cut or zero-padded to ``length`` along ``axis`` (what ``n=`` does to the
    input of a transform)."""
    have = np.shape(x)[axis]
    if have == length:
        return x
    if have > length:
        return x[(slice(None),) * axis + (slice(0, length),)]
    shape = list(np.shape(x))
    shape[axis] = length - have
    return np.concatenate([x, np.zeros(shape, x.dtype)], axis=axis)


def _fft_vjp(g: Any, ans: Any, x: Any, n: int, axis: int, norm: str) -> Any:
    return match(resize(fft_p.bind(g, n=n, axis=axis, norm=norm), np.shape(x)[axis], axis), x)


def _ifft_vjp(g: Any, ans: Any, x: Any, n: int, axis: int, norm: str) -> Any:
    return match(resize(ifft_p.bind(g, n=n, axis=axis, norm=norm), np.shape(x)[axis], axis), x)


def _rfft_vjp(g: Any, ans: Any, x: Any, n: int, axis: int, norm: str) -> Any:
    full = fft_p.bind(resize(g, n, axis), n=n, axis=axis, norm=norm)
    return match(resize(full, np.shape(x)[axis], axis), x)


def _irfft_vjp(g: Any, ans: Any, a: Any, n: int, axis: int, norm: str) -> Any:
    half = n // 2 + 1
    w = np.full(half, 2.0)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    w = np.reshape(w, (half,) + (1,) * (np.ndim(g) - axis - 1))
    back = resize(ifft_p.bind(g, n=n, axis=axis, norm=norm), half, axis) * w
    return match(resize(back, np.shape(a)[axis], axis), a)


def _batch(prim_name: str) -> Any:
    def rule(size: int, vals: list, dims: list, n: int, axis: int, norm: str) -> tuple:
        x = to_front(vals[0], dims[0], size)
        return PRIMS[prim_name].bind(x, n=n, axis=axis + 1, norm=norm), 0
    return rule


def _shape(transform: Any, out_len: Any) -> Any:
    def rule(args: list, n: int, axis: int, norm: str) -> tuple:
        shape = list(shape_of(args[0]))
        shape[axis] = out_len(n)
        dt = np.result_type(transform(np.ones(2, dtype_of(args[0]))))
        return tuple(shape), dt
    return rule


def _declare(name: str, impl: Any, vjp: Any, out_len: Any) -> Any:
    p = primitive(name, lambda x, n, axis, norm: impl(x, n=n, axis=axis, norm=norm), vjp,
                  family="linear", batch=_batch(name), shape=_shape(impl, out_len))
    PRIMS[name] = p
    return p


PRIMS: dict = {}
fft_p = _declare("fft", np.fft.fft, _fft_vjp, lambda n: n)
ifft_p = _declare("ifft", np.fft.ifft, _ifft_vjp, lambda n: n)
rfft_p = _declare("rfft", np.fft.rfft, _rfft_vjp, lambda n: n // 2 + 1)
irfft_p = _declare("irfft", np.fft.irfft, _irfft_vjp, lambda n: n)
