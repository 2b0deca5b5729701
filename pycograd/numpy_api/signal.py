"""Convolution and correlation: ``np.convolve``, ``np.correlate`` and ``scipy.signal``'s
``convolve``, ``correlate``, ``fftconvolve``, ``convolve2d``, ``correlate2d``.

All of them are the valid correlation primitive (``pycograd.ops.signal``) on a padded
input with the kernel flipped, then a slice for the 'same' mode, so they share one set of
rules. ``numpy`` dispatches ``np.convolve`` / ``np.correlate`` on traced values through
``__array_function__``; scipy converts its inputs with ``np.asarray`` first, so the
transparent layer routes its call sites here (only when an argument is traced: untraced
calls keep scipy's own result). Importing this module does not import scipy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pycograd.core.errors import ArgumentError, NoRuleError, ShapeError
from pycograd.numpy_api import functions as F
from pycograd.numpy_api.functions import implements
from pycograd.ops.signal import correlate_p, flip, full_convolve

MODES = ("full", "valid", "same")


def _check_mode(name: str, mode: Any) -> str:
    if mode not in MODES:
        raise ArgumentError(f"{name}: mode must be one of {MODES}, got {mode!r}")
    return mode


def convolve_nd(a: Any, v: Any, mode: str, batch: int = 0, same_as: tuple | None = None) -> Any:
    """n-d convolution of ``a`` and ``v`` (same rank) in scipy's modes: 'full'; 'valid',
    where one operand must be at least as large as the other along every axis; 'same',
    the full result's center cut to ``same_as`` (``a``'s core shape by default)."""
    sa, sv = np.shape(a)[batch:], np.shape(v)[batch:]
    if mode == "valid":
        if not all(n >= k for n, k in zip(sa, sv)):
            if not all(k >= n for n, k in zip(sa, sv)):
                raise ShapeError("For 'valid' mode, one must be at least as large as the "
                                 f"other in every dimension (shapes {sa} and {sv})")
            a, v = v, a
        return correlate_p.bind(a, flip(v, batch), batch=batch)
    full = full_convolve(a, v, batch)
    if mode == "full":
        return full
    want = sa if same_as is None else same_as
    start = [(f - w) // 2 for f, w in zip(np.shape(full)[batch:], want)]
    return full[(slice(None),) * batch + tuple(slice(s, s + w) for s, w in zip(start, want))]


def _vectors(name: str, a: Any, v: Any) -> tuple:
    a = a if np.ndim(a) else np.reshape(a, (1,))
    v = v if np.ndim(v) else np.reshape(v, (1,))
    if np.ndim(a) != 1 or np.ndim(v) != 1:
        raise ShapeError(f"np.{name}: object too deep for desired array (needs 1-d inputs, "
                         f"got shapes {np.shape(a)} and {np.shape(v)})")
    if np.shape(a)[0] == 0:
        raise ShapeError("a cannot be empty")
    if np.shape(v)[0] == 0:
        raise ArgumentError("v cannot be empty")
    return a, v


@implements(np.convolve)
def convolve(a: Any, v: Any, mode: str = "full") -> Any:
    """numpy's 1-d convolution: the longer operand is the signal; 'same' has its length."""
    a, v = _vectors("convolve", a, v)
    mode = _check_mode("np.convolve", mode)
    if np.shape(v)[0] > np.shape(a)[0]:
        a, v = v, a
    if mode == "same":  # numpy centers on the kernel's half length, rounding down
        m, n = np.shape(v)[0], np.shape(a)[0]
        start = m - 1 - m // 2
        return full_convolve(a, v)[start:start + n]
    return convolve_nd(a, v, mode)


@implements(np.correlate)
def correlate(a: Any, v: Any, mode: str = "valid") -> Any:
    """``c[k] = sum_n a[n + k] * conj(v[n])``: the convolution with ``conj(v)`` reversed."""
    a, v = _vectors("correlate", a, v)
    _check_mode("np.correlate", mode)
    if np.shape(v)[0] > np.shape(a)[0]:  # numpy swaps, then reverses and conjugates back
        return np.conj(flip(correlate(v, a, mode)))
    return convolve(a, flip(np.conj(v)), mode)


# ---- scipy.signal ---------------------------------------------------------------------

def _same_rank(name: str, in1: Any, in2: Any) -> None:
    if np.ndim(in1) != np.ndim(in2):
        raise ShapeError(f"scipy.signal.{name}: in1 and in2 should have the same "
                         f"dimensionality (shapes {np.shape(in1)} and {np.shape(in2)})")


def sp_convolve(in1: Any, in2: Any, mode: str = "full", method: str = "auto") -> Any:
    """scipy.signal.convolve (``method`` only picks an algorithm: the values agree)."""
    _same_rank("convolve", in1, in2)
    if np.ndim(in1) == 0:
        return in1 * in2
    return convolve_nd(in1, in2, _check_mode("scipy.signal.convolve", mode))


def sp_correlate(in1: Any, in2: Any, mode: str = "full", method: str = "auto") -> Any:
    """scipy.signal.correlate: the convolution with ``in2`` reversed and conjugated."""
    _same_rank("correlate", in1, in2)
    if np.ndim(in1) == 0:
        return in1 * np.conj(in2)
    return convolve_nd(in1, flip(np.conj(in2)), _check_mode("scipy.signal.correlate", mode))


def _fft_dtype(x: Any) -> Any:
    """What scipy's FFTs compute in: integers as float64, float16 as float32."""
    dt = np.result_type(x)
    if dt.kind not in "fc":
        return F.astype(x, np.float64)
    return F.astype(x, np.float32) if dt == np.float16 else x


def sp_fftconvolve(in1: Any, in2: Any, mode: str = "full", axes: Any = None) -> Any:
    """scipy.signal.fftconvolve; with ``axes``, the other axes are matched (broadcast)."""
    _same_rank("fftconvolve", in1, in2)
    mode = _check_mode("scipy.signal.fftconvolve", mode)
    in1, in2 = (_fft_dtype(x) for x in (in1, in2))
    nd = np.ndim(in1)
    if axes is None or nd == 0:
        return sp_convolve(in1, in2, mode)
    conv = sorted({int(ax) % nd for ax in np.atleast_1d(axes)})
    rest = [i for i in range(nd) if i not in conv]
    try:
        lead = np.broadcast_shapes(*[tuple(np.shape(x)[i] for i in rest) for x in (in1, in2)])
    except ValueError:
        raise ShapeError(f"scipy.signal.fftconvolve: shapes {np.shape(in1)} and "
                         f"{np.shape(in2)} do not broadcast along the axes not convolved "
                         f"{tuple(rest)}") from None

    def moved(x: Any) -> Any:
        y = np.transpose(x, rest + conv)
        return np.broadcast_to(y, lead + np.shape(y)[len(rest):])

    out = convolve_nd(moved(in1), moved(in2), mode, batch=len(rest),
                      same_as=tuple(np.shape(in1)[i] for i in conv))
    return np.transpose(out, np.argsort(rest + conv))


def _two_d(name: str, in1: Any, in2: Any, boundary: str, fillvalue: Any) -> None:
    if np.ndim(in1) != 2 or np.ndim(in2) != 2:
        raise ShapeError(f"scipy.signal.{name}: in1 and in2 should be 2-D arrays (shapes "
                         f"{np.shape(in1)} and {np.shape(in2)})")
    if boundary != "fill" or np.any(np.asarray(fillvalue) != 0):
        raise NoRuleError(f"scipy.signal.{name}(boundary={boundary!r}, fillvalue={fillvalue!r})"
                          " is not differentiable in pycograd; use boundary='fill', "
                          "fillvalue=0 (pad the input with np.pad for other boundaries)")


def sp_convolve2d(in1: Any, in2: Any, mode: str = "full", boundary: str = "fill",
                  fillvalue: Any = 0) -> Any:
    _two_d("convolve2d", in1, in2, boundary, fillvalue)
    return sp_convolve(in1, in2, mode)


def sp_correlate2d(in1: Any, in2: Any, mode: str = "full", boundary: str = "fill",
                   fillvalue: Any = 0) -> Any:
    _two_d("correlate2d", in1, in2, boundary, fillvalue)
    return sp_correlate(in1, in2, mode)


_OURS = {"convolve": sp_convolve, "correlate": sp_correlate, "fftconvolve": sp_fftconvolve,
         "convolve2d": sp_convolve2d, "correlate2d": sp_correlate2d}
NAMES = tuple(_OURS)
"""The routed ``scipy.signal`` attributes."""


def routes(dispatch: Callable[[Callable, Callable], Callable]) -> dict[Callable, Callable]:
    """scipy's function -> ``dispatch(scipy's, ours)`` (call once scipy.signal is imported)."""
    import scipy.signal as ss

    return {getattr(ss, n): dispatch(getattr(ss, n), _OURS[n]) for n in NAMES}
