"""``np.fft.*`` on traced values, built from the four 1-D primitives of ``pycograd.ops.fft``
the way numpy builds them: an n-dimensional transform is 1-D transforms over its axes,
``hfft`` / ``ihfft`` are ``irfft`` / ``rfft`` of the conjugate with the norm swapped, and
the shifts are rolls."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pycograd.core.errors import ArgumentError, ShapeError
from pycograd.numpy_api.functions import implements, normalize_axis
from pycograd.ops.fft import fft_p, ifft_p, irfft_p, rfft_p

_NORMS = ("backward", "ortho", "forward")
_SWAP = {"backward": "forward", "ortho": "ortho", "forward": "backward"}


def _norm(norm: str | None) -> str:
    norm = "backward" if norm is None else norm
    if norm not in _NORMS:
        raise ArgumentError(f'Invalid norm value {norm}; should be "backward", "ortho" or '
                            '"forward".')
    return norm


def _one(prim: Any, a: Any, n: int | None, axis: int, norm: str | None, default: Any) -> Any:
    ax = normalize_axis(axis, np.ndim(a), prim.name)[0]
    n = default(np.shape(a)[ax]) if n is None else int(n)
    if n < 1:
        raise ArgumentError(f"Invalid number of FFT data points ({n}) specified.")
    return prim.bind(a, n=n, axis=ax, norm=_norm(norm))


def _same(m: int) -> int:
    return m


def _full(m: int) -> int:
    return 2 * (m - 1)


@implements(np.fft.fft)
def fft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None,
        out: Any = None) -> Any:
    return _one(fft_p, a, n, axis, norm, _same)


@implements(np.fft.ifft)
def ifft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None,
         out: Any = None) -> Any:
    return _one(ifft_p, a, n, axis, norm, _same)


@implements(np.fft.rfft)
def rfft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None,
         out: Any = None) -> Any:
    return _one(rfft_p, a, n, axis, norm, _same)


@implements(np.fft.irfft)
def irfft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None,
          out: Any = None) -> Any:
    return _one(irfft_p, a, n, axis, norm, _full)


@implements(np.fft.hfft)
def hfft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None,
         out: Any = None) -> Any:
    return irfft(np.conj(a), n, axis, _SWAP[_norm(norm)])


@implements(np.fft.ihfft)
def ihfft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None,
          out: Any = None) -> Any:
    return np.conj(rfft(a, n, axis, _SWAP[_norm(norm)]))


def _cook(a: Any, s: Sequence[int] | None, axes: Sequence[int] | None,
          last_full: bool = False) -> tuple[list, list]:
    """numpy's ``s`` / ``axes`` defaults: all axes (or the last ``len(s)``); lengths from
    the shape, the last one ``2 * (m - 1)`` for the inverse real transforms."""
    nd = np.ndim(a)
    if axes is None:
        axes = list(range(nd)) if s is None else list(range(nd - len(s), nd))
    axes = [int(ax) % nd if -nd <= int(ax) < nd else _bad_axis(ax, nd) for ax in axes]
    if s is None:
        s = [np.shape(a)[ax] for ax in axes]
        if last_full and s:
            s[-1] = _full(s[-1])
    elif len(s) != len(axes):
        raise ShapeError("Shape and axes have different lengths.")
    return [int(n) for n in s], axes


def _bad_axis(ax: Any, nd: int) -> int:
    raise ShapeError(f"fft: axis {ax} is out of bounds for an array of {nd} dims")


def _nd(f: Any) -> Any:
    def transform(a: Any, s: Any = None, axes: Any = None, norm: str | None = None,
                  out: Any = None) -> Any:
        s, axes = _cook(a, s, axes)
        for n, ax in reversed(list(zip(s, axes))):
            a = f(a, n, ax, norm)
        return a
    return transform


fftn = implements(np.fft.fftn)(_nd(fft))
ifftn = implements(np.fft.ifftn)(_nd(ifft))


@implements(np.fft.fft2)
def fft2(a: Any, s: Any = None, axes: Any = (-2, -1), norm: str | None = None,
         out: Any = None) -> Any:
    return fftn(a, s, axes, norm)


@implements(np.fft.ifft2)
def ifft2(a: Any, s: Any = None, axes: Any = (-2, -1), norm: str | None = None,
          out: Any = None) -> Any:
    return ifftn(a, s, axes, norm)


@implements(np.fft.rfftn)
def rfftn(a: Any, s: Any = None, axes: Any = None, norm: str | None = None,
          out: Any = None) -> Any:
    s, axes = _cook(a, s, axes)
    a = rfft(a, s[-1], axes[-1], norm)
    for n, ax in zip(s[:-1], axes[:-1]):
        a = fft(a, n, ax, norm)
    return a


@implements(np.fft.irfftn)
def irfftn(a: Any, s: Any = None, axes: Any = None, norm: str | None = None,
           out: Any = None) -> Any:
    s, axes = _cook(a, s, axes, last_full=True)
    for n, ax in zip(s[:-1], axes[:-1]):
        a = ifft(a, n, ax, norm)
    return irfft(a, s[-1], axes[-1], norm)


@implements(np.fft.rfft2)
def rfft2(a: Any, s: Any = None, axes: Any = (-2, -1), norm: str | None = None,
          out: Any = None) -> Any:
    return rfftn(a, s, axes, norm)


@implements(np.fft.irfft2)
def irfft2(a: Any, s: Any = None, axes: Any = (-2, -1), norm: str | None = None,
           out: Any = None) -> Any:
    return irfftn(a, s, axes, norm)


def _shift(x: Any, axes: Any, sign: int) -> Any:
    axes = list(range(np.ndim(x))) if axes is None else (
        [axes] if isinstance(axes, (int, np.integer)) else list(axes))
    shifts = [sign * (np.shape(x)[ax] // 2) for ax in axes]
    return np.roll(x, shifts, axes)


@implements(np.fft.fftshift)
def fftshift(x: Any, axes: Any = None) -> Any:
    return _shift(x, axes, 1)


@implements(np.fft.ifftshift)
def ifftshift(x: Any, axes: Any = None) -> Any:
    return _shift(x, axes, -1)
