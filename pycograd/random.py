"""Splittable, counter-based random keys (Threefry-2x32, as in JAX and Random123).

A key is a ``(2,)`` uint32 array. Every draw is a pure function of its key and its shape,
computed with wrapping uint32 arithmetic in numpy, so the same key gives the same numbers
on every run and platform, and no global generator state exists to leak between layers
or tests. To get independent streams, ``split`` a key (or ``fold_in`` a step number or a
name) rather than reusing it: two draws from the same key are identical by design.

Every function accepting a key also accepts a plain ``int`` seed, meaning ``key(seed)``.

Keys are first-class under every transform: a key may be a traced value (one key per
example under ``vmap``, ``vmap(lambda x, k: dropout(x, 0.5, k))(X, split(key, N))``, or an
abstract key under ``eval_shape``), since the cipher is plain integer array arithmetic. A
draw of a symbolic shape (``eval_shape`` with a symbolic batch) is abstract: its shape and
dtype are known, its values are never computed.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from pycograd.core.errors import ArgumentError, ArgumentTypeError, ShapeError
from pycograd.core.symbolic import Dim
from pycograd.core.trace import Tracer
from pycograd.ops.shaping import full, is_symbolic

Key = np.ndarray
Shape = int | Sequence[int]

_U32 = 0xFFFFFFFF
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = 0x1BD11BDA


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def threefry2x32(k: Key, x0: np.ndarray, x1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Threefry-2x32 block cipher, 20 rounds: encrypt counter pairs ``(x0, x1)`` under
    key ``k``. Arrays must be uint32 (they wrap on overflow, which the cipher relies on)."""
    ks = (k[0], k[1], k[0] ^ k[1] ^ np.uint32(_PARITY))
    x0 = np.asarray(x0, np.uint32) + ks[0]
    x1 = np.asarray(x1, np.uint32) + ks[1]
    for block in range(5):
        for r in _ROTATIONS[block % 2]:
            x0 = x0 + x1
            x1 = _rotl(x1, r) ^ x0
        x0 = x0 + ks[(block + 1) % 3]
        x1 = x1 + ks[(block + 2) % 3] + np.uint32(block + 1)
    return x0, x1


def key(seed: int) -> Key:
    """A key from an integer seed (any Python int; taken modulo 2**64)."""
    s = int(seed) % (1 << 64)
    return np.array([s >> 32, s & _U32], dtype=np.uint32)


def _key(k: Any) -> Key:
    if isinstance(k, (int, np.integer)) and not isinstance(k, bool):
        return key(int(k))
    if not isinstance(k, Tracer):  # a traced key (vmap, eval_shape...) goes through as is
        k = np.asarray(k)
    if tuple(k.shape) != (2,) or k.dtype != np.uint32:
        raise ArgumentTypeError(
            f"expected a key (a (2,) uint32 array from pycograd.random.key / split) or an int "
            f"seed, got {k.dtype} array of shape {k.shape}")
    return k


def _shape(shape: Shape | None) -> tuple[int, ...]:
    if shape is None:
        return ()
    if isinstance(shape, (int, np.integer, Dim)):
        shape = (shape,)
    return tuple(d if isinstance(d, Dim) else int(d) for d in shape)


def _counters(n: int) -> tuple[np.ndarray, np.ndarray]:
    i = np.arange(n, dtype=np.uint64)
    return (i >> np.uint64(32)).astype(np.uint32), (i & np.uint64(_U32)).astype(np.uint32)


def split(k: Key | int, num: int = 2) -> np.ndarray:
    """``num`` new independent keys as a ``(num, 2)`` array (unpack or index it)."""
    y0, y1 = threefry2x32(_key(k), *_counters(num))
    return np.stack([y0, y1], axis=1)


def _data_words(data: Any) -> tuple[int, int]:
    if isinstance(data, str):
        data = int.from_bytes(hashlib.sha256(data.encode()).digest()[:8], "little")
    d = int(data) % (1 << 64)
    return d >> 32, d & _U32


def fold_in(k: Key | int, data: int | str) -> Key:
    """A new key derived from ``k`` and ``data`` (an int such as a step number, or a str
    such as a layer name), so streams can be named instead of threaded through splits."""
    hi, lo = _data_words(data)
    y0, y1 = threefry2x32(_key(k), np.array([hi], np.uint32), np.array([lo], np.uint32))
    return np.concatenate([y0, y1])


def bits(k: Key | int, shape: Shape = (), dtype: Any = np.uint32) -> np.ndarray:
    """Uniformly random raw bits, uint32 or uint64."""
    k, shape, dtype = _key(k), _shape(shape), np.dtype(dtype)
    if dtype not in (np.uint32, np.uint64):
        raise ArgumentTypeError(f"bits: dtype must be uint32 or uint64, got {dtype}")
    if is_symbolic(shape):  # eval_shape with a symbolic batch: the shape, never the values
        return full(shape, 0, dtype)
    n = math.prod(shape)
    if dtype == np.uint64:
        y0, y1 = threefry2x32(k, *_counters(n))
        return ((y0.astype(np.uint64) << np.uint64(32)) | y1).reshape(shape)
    if dtype != np.uint32:
        raise ArgumentTypeError(f"bits: dtype must be uint32 or uint64, got {dtype}")
    y0, y1 = threefry2x32(k, *_counters((n + 1) // 2))
    return np.concatenate([y0, y1])[:n].reshape(shape)


def _finfo(dtype: np.dtype) -> Any:
    if dtype.kind == "f":
        return np.finfo(dtype)
    import ml_dtypes

    try:
        return ml_dtypes.finfo(dtype)
    except ValueError:
        raise ArgumentTypeError(f"expected a floating dtype, got {dtype}") from None


def _unit(k: Key, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Uniform on [0, 1) in ``dtype``: the top ``nmant + 1`` random bits scaled by a power of
    two, so every value is exactly representable and 1.0 never occurs."""
    p = _finfo(dtype).nmant + 1
    if p <= 24:
        k32 = bits(k, shape, np.uint32) >> np.uint32(32 - p)
        return (k32.astype(np.float64) * 2.0 ** -p).astype(dtype)
    k64 = bits(k, shape, np.uint64) >> np.uint64(64 - p)
    return (k64.astype(np.float64) * 2.0 ** -p).astype(dtype)


def uniform(k: Key | int, shape: Shape = (), dtype: Any = np.float64,
            minval: Any = 0.0, maxval: Any = 1.0) -> np.ndarray:
    """Uniform on ``[minval, maxval)`` (bounds broadcast against ``shape``)."""
    dtype = np.dtype(dtype)
    u = _unit(_key(k), _shape(shape), dtype)
    lo, hi = np.asarray(minval, dtype), np.asarray(maxval, dtype)
    out = lo + u * (hi - lo)
    return np.minimum(out, np.nextafter(hi, lo)).astype(dtype)


def normal(k: Key | int, shape: Shape = (), dtype: Any = np.float64) -> np.ndarray:
    """Standard normal draws (Box-Muller in float64, then cast to ``dtype``)."""
    shape = _shape(shape)
    n = math.prod(shape)
    m = (n + 1) // 2
    u = _unit(_key(k), (2, m), np.dtype(np.float64))
    r = np.sqrt(-2.0 * np.log1p(-u[0]))
    theta = 2.0 * np.pi * u[1]
    z = np.concatenate([r * np.cos(theta), r * np.sin(theta)])[:n]
    return z.reshape(shape).astype(dtype)


def bernoulli(k: Key | int, p: Any = 0.5, shape: Shape | None = None) -> np.ndarray:
    """Booleans that are True with probability ``p`` (``shape`` defaults to ``p``'s)."""
    p = np.asarray(p)
    shape = p.shape if shape is None else _shape(shape)
    return uniform(k, shape) < p


def randint(k: Key | int, shape: Shape, minval: Any, maxval: Any,
            dtype: Any = np.int64) -> np.ndarray:
    """Integers uniform on ``[minval, maxval)`` (bounds broadcast against ``shape``).
    Drawn as 64 random bits modulo the span, so the bias is below span / 2**64."""
    shape = _shape(shape)
    lo = np.broadcast_to(np.asarray(minval, np.int64), shape)
    hi = np.broadcast_to(np.asarray(maxval, np.int64), shape)
    if np.any(hi <= lo):
        raise ArgumentError(f"randint: need minval < maxval, got {minval} and {maxval}")
    span = (hi - lo).astype(np.uint64)
    r = bits(k, shape, np.uint64) % span
    return (lo + r.astype(np.int64)).astype(dtype)


def permutation(k: Key | int, x: int | Any, axis: int = 0) -> np.ndarray:
    """A random permutation of ``range(x)`` for an int, else ``x`` shuffled along ``axis``."""
    n = int(x) if np.ndim(x) == 0 else np.shape(x)[axis]
    perm = np.argsort(bits(k, n, np.uint64), kind="stable")
    return perm if np.ndim(x) == 0 else np.take(np.asarray(x), perm, axis=axis)


def gumbel(k: Key | int, shape: Shape = (), dtype: Any = np.float64) -> np.ndarray:
    """Standard Gumbel draws, ``-log(-log(u))`` with ``u`` strictly inside (0, 1): the
    midpoints of 2**52 equal cells, so neither log ever sees 0."""
    cells = bits(k, shape, np.uint64) >> np.uint64(12)
    u = (cells.astype(np.float64) + 0.5) * 2.0 ** -52
    return (-np.log(-np.log(u))).astype(dtype)


def categorical(k: Key | int, logits: Any, axis: int = -1,
                shape: Shape | None = None) -> np.ndarray:
    """Class indices drawn with probabilities ``softmax(logits, axis)`` (Gumbel-max).

    The result has ``logits``' shape without ``axis``, or ``shape`` if given, which must
    end in a shape that broadcasts with that batch shape (extra leading dims are
    independent draws)."""
    logits = np.moveaxis(np.asarray(logits, np.float64), axis, -1)
    batch = logits.shape[:-1]
    shape = batch if shape is None else _shape(shape)
    tail = shape[len(shape) - len(batch):]
    if len(shape) < len(batch) or any(b not in (1, t) for t, b in zip(tail, batch)):
        raise ShapeError(f"categorical: shape {shape} does not end in the batch shape {batch}")
    noise = gumbel(k, shape + logits.shape[-1:])
    return np.argmax(logits + noise, axis=-1)


__all__ = ["key", "split", "fold_in", "bits", "uniform", "normal", "bernoulli", "randint",
           "permutation", "gumbel", "categorical", "threefry2x32"]
