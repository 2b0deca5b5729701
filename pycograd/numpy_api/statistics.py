"""``np.cov`` and ``np.corrcoef`` on traced values.

numpy's own algorithm, step by step, on differentiable numpy: the data, the weights
(``aweights``, and ``fweights`` when traced) and ``y`` all get gradients. numpy updates
arrays in place (``X -= avg``, ``c *= 1 / fact``), which keeps their dtype; here each such
step is the out-of-place operation cast back (``in_dtype``), so values and dtypes are
numpy's. The checks on the weights' values (integer, non-negative, non-zero sum) run
whenever the values exist; under vmap and eval_shape they cannot, and are skipped.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from pycograd.core.errors import (
    ArgumentError,
    ArgumentTypeError,
    DivisionByZeroError,
    InputRuntimeError,
    ShapeError,
)
from pycograd.core.trace import Tracer
from pycograd.numpy_api import functions as F
from pycograd.numpy_api.functions import implements
from pycograd.ops.elementwise import stop_gradient


def _array(x: Any) -> Any:
    return x if isinstance(x, Tracer) else np.asarray(x)


def in_dtype(x: Any, dtype: Any) -> Any:
    """``np.asarray(x, dtype)`` for plain or traced ``x``: also what numpy's in-place
    update (``a *= b``, ``a -= b``) leaves in an array ``a`` of ``dtype``."""
    if not isinstance(x, Tracer):
        return np.asarray(x, dtype=dtype)
    return x if x.dtype == dtype else F.astype(x, dtype)


def _known(x: Any) -> Any:
    """The plain values of ``x``, or None where they do not exist (vmap, eval_shape)."""
    v = stop_gradient(x) if isinstance(x, Tracer) else x
    return None if isinstance(v, Tracer) else np.asarray(v)


def _ndmin2(x: Any, dtype: Any) -> Any:
    """``np.array(x, ndmin=2, dtype=dtype)``."""
    return F.atleast_2d(in_dtype(x, dtype))


def _weights(w: Any, n: int, name: str) -> Any:
    w = in_dtype(w, np.float64)
    if np.ndim(w) > 1:
        raise InputRuntimeError(f"cannot handle multidimensional {name}")
    if np.shape(w)[0] != n:
        raise InputRuntimeError(f"incompatible numbers of samples and {name}")
    v = _known(w)
    if v is not None and np.any(v < 0):
        raise ArgumentError(f"{name} cannot be negative")
    return w


@implements(np.cov)
def cov(m: Any, y: Any = None, rowvar: bool = True, bias: bool = False, ddof: Any = None,
        fweights: Any = None, aweights: Any = None, *, dtype: Any = None) -> Any:
    """numpy's covariance: ``(X - avg) @ ((X - avg) * w)^H / fact``."""
    if ddof is not None and ddof != int(ddof):
        raise ArgumentError("ddof must be integer")
    m = _array(m)
    if np.ndim(m) > 2:
        raise ArgumentError("m has more than 2 dimensions")
    if y is not None:
        y = _array(y)
        if np.ndim(y) > 2:
            raise ShapeError("y has more than 2 dimensions")
    if dtype is None:
        dtype = np.result_type(m, np.float64) if y is None else \
            np.result_type(m, y, np.float64)
    dtype = np.dtype(dtype)
    X = _ndmin2(m, dtype)
    if not rowvar and np.ndim(m) != 1:
        X = F.transpose(X)
    if np.shape(X)[0] == 0:
        return np.array([]).reshape(0, 0)
    if y is not None:
        y = _ndmin2(y, dtype)
        if not rowvar and np.shape(y)[0] != 1:
            y = F.transpose(y)
        X = F.concatenate((X, y), axis=0)
    if ddof is None:
        ddof = 1 if bias == 0 else 0
    n = np.shape(X)[1]
    w = None
    if fweights is not None:
        fw = in_dtype(fweights, np.float64)
        v = _known(fw)
        if v is not None and not np.all(v == np.around(v)):
            raise ArgumentTypeError("fweights must be integer")
        w = _weights(fw, n, "fweights")
    if aweights is not None:
        aweights = _weights(aweights, n, "aweights")
        w = aweights if w is None else w * aweights
    if w is None:
        avg = F.mean(X, axis=1)
        fact = n - ddof
    else:
        rdt = np.result_type(X, w, "f8") if np.result_type(X).kind in "biu" else \
            np.result_type(X, w)
        w_sum = F.sum(in_dtype(w, rdt))
        v = _known(w_sum)
        if v is not None and v == 0.0:
            raise DivisionByZeroError("Weights sum to zero, can't be normalized")
        avg = F.sum(in_dtype(X * w, rdt), axis=1) / w_sum
        if ddof == 0:
            fact = w_sum
        elif aweights is None:
            fact = w_sum - ddof
        else:
            fact = w_sum - ddof * F.sum(w * aweights) / w_sum
    f = _known(fact)
    if f is not None and f <= 0:
        warnings.warn("Degrees of freedom <= 0 for slice", RuntimeWarning, stacklevel=2)
    if isinstance(fact, Tracer):
        scale = 1 / np.where(fact <= 0, 0.0, fact)
    else:
        scale = np.true_divide(1, 0.0 if fact <= 0 else fact)
    X = in_dtype(X - avg[:, None], dtype)
    X_T = F.transpose(X if w is None else X * w)
    c = F.dot(X, np.conj(X_T) if np.result_type(X_T).kind == "c" else X_T)
    return F.squeeze(in_dtype(c * scale, np.result_type(c)))


@implements(np.corrcoef)
def corrcoef(x: Any, y: Any = None, rowvar: bool = True, *, dtype: Any = None) -> Any:
    """``C_ij / sqrt(C_ii C_jj)``, its real (and imaginary) parts clipped to [-1, 1]."""
    c = cov(x, y, rowvar, dtype=dtype)
    if np.ndim(c) == 0:  # a single variable: nan for a zero/nan/inf variance, else 1
        return c / c
    d = F.diagonal(c)
    stddev = np.sqrt(np.real(d))
    c = c / stddev[:, None]
    c = c / stddev[None, :]
    if np.result_type(c).kind != "c":
        return F.clip(c, -1, 1)
    return F.clip(np.real(c), -1, 1) + 1j * F.clip(np.imag(c), -1, 1)
