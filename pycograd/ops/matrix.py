"""Pieces shared by the linear-algebra primitives (``solves``, ``decompositions``,
``matrix_functions``): transposes and conjugate transposes, the dtype numpy.linalg
computes in, diagonals, the packing of multi-output decompositions into one array, the
one batching rule of gufunc-like primitives, shape checks, one-triangle reads of
symmetric (Hermitian) inputs, and the concrete values under tracers that the runtime
gauge checks read.

Decompositions with several outputs (eigh -> w, V; svd -> U, s, Vh; qr -> Q, R; eig -> w,
V) are *packed*: the primitive returns one array ``(..., P)`` holding each output's matrix
flattened along the last axis, and ``unpack`` recovers them by slicing and reshaping, which
is differentiable. One LAPACK call feeds every output and the tape stays single-output;
packing along the last axis keeps the loop dims in front, so batching and broadcasting are
unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from pycograd.core.errors import DataDependentShapeError, ShapeError
from pycograd.core.primitive import Primitive
from pycograd.core.trace import Tracer
from pycograd.ops.batching import to_front
from pycograd.ops.complex import is_complex
from pycograd.ops.shaping import broadcast_constant, dtype_of, shape_of


def mT(x: Any) -> Any:
    return np.swapaxes(x, -1, -2)


def conj(x: Any) -> Any:
    """``np.conj`` for complex values; real ones pass unchanged (no extra tape node)."""
    return np.conj(x) if is_complex(x) else x


def mH(x: Any) -> Any:
    """The conjugate transpose ``x^H`` (``mT`` for real ``x``)."""
    return conj(mT(x))


def float_dtype(dt: Any) -> np.dtype:
    """The dtype numpy.linalg computes in for inputs of dtype ``dt``: float32/float64 and
    complex64/complex128 stay, anything else (ints, bools, float16) is float64. Which
    functions accept complex inputs is decided in ``numpy_api.linalg`` (``COMPLEX_OK``)."""
    dt = np.dtype(dt)
    if dt.kind == "c":
        return dt
    return dt if dt.kind == "f" and dt.itemsize >= 4 else np.dtype(np.float64)


def linalg_dtype(x: Any) -> np.dtype:
    return float_dtype(getattr(x, "dtype", None) or np.result_type(x))


def eye_like(a: Any) -> Any:
    """The identity broadcast to ``a``'s stack shape (square ``a``), in ``a``'s dtype."""
    s = np.shape(a)
    return broadcast_constant(np.eye(s[-1], dtype=linalg_dtype(a)), s)


def diag_embed(v: Any) -> Any:
    """``(..., n) -> (..., n, n)`` with ``v`` on the diagonal (differentiable)."""
    n = np.shape(v)[-1]
    return v[..., :, None] * np.eye(n, dtype=linalg_dtype(v))


def diag_part(x: Any) -> Any:
    return np.diagonal(x, 0, -2, -1)


def inv_gaps(w: Any) -> Any:
    """``F[..., i, j] = 1 / (w_j - w_i)``; 0 on the diagonal and wherever the gap is
    exactly 0, so that functions of a degenerate spectrum alone (``sum(eigvalsh(a))``,
    the nuclear norm) keep their gradient, and gauge-invariant uses of the vectors too."""
    d = w[..., None, :] - w[..., :, None]
    off = d != 0
    return np.where(off, 1.0 / np.where(off, d, 1.0), 0.0).astype(linalg_dtype(w))


# ---- packing of multi-output decompositions ---------------------------------------

def pack(lead: tuple, *outs: Any) -> Any:
    """Outputs with loop dims ``lead`` flattened and joined along one last axis."""
    return np.concatenate([np.reshape(o, lead + (-1,)) for o in outs], axis=-1)


def unpack(flat: Any, cores: list[tuple]) -> list:
    """Slice a packed array back into outputs of core shapes ``cores``."""
    lead = np.shape(flat)[:-1]
    out, start = [], 0
    for core in cores:
        n = math.prod(core)
        out.append(np.reshape(flat[..., start:start + n], lead + tuple(core)))
        start += n
    return out


# ---- shared rule helpers ----------------------------------------------------------

def gufunc_batch(prim_ref: Callable[[], Primitive], cores: tuple) -> Callable:
    """Batching rule of a gufunc-like primitive whose operand ``i`` has ``cores[i]`` core
    dims: batch axis first, ranks padded so every operand's loop dims line up."""
    def rule(size: int, vals: list, dims: list, **params: Any) -> tuple:
        loops = [np.ndim(v) - (d is not None) - c for v, d, c in zip(vals, dims, cores)]
        top = max(loops)
        moved = []
        for v, d, lp in zip(vals, dims, loops):
            if d is not None:
                v = to_front(v, d, size)
                s = np.shape(v)
                v = np.reshape(v, s[:1] + (1,) * (top - lp) + s[1:])
            moved.append(v)
        return prim_ref().bind(*moved, **params), 0
    return rule


def square_dim(name: str, s: tuple) -> int:
    if len(s) < 2 or not s[-1] == s[-2]:
        raise ShapeError(f"{name}: needs square matrices (..., n, n), got shape {s}")
    return s[-1]


def matrix_dims(name: str, s: tuple) -> tuple:
    if len(s) < 2:
        raise ShapeError(f"{name}: needs matrices (..., M, N), got shape {s}")
    return s[-2], s[-1]


def packed_shape(name: str, cores: Callable[[tuple], list], square: bool) -> Callable:
    def rule(args: list, **params: Any) -> tuple:
        s = shape_of(args[0])
        (square_dim if square else matrix_dims)(name, s)
        total = sum(math.prod(c) for c in cores(s))
        return s[:-2] + (total,), linalg_dtype(args[0])
    return rule


def complex_if_values_say(rule: Callable, name: str) -> Callable:
    """``rule`` for an op whose result on a real matrix is real or complex depending on the
    values (``eig``, ``sqrtm``: complex when some eigenvalue or root is), as numpy and scipy
    return it: eval_shape, which has no values, refuses a real input rather than guess."""
    def checked(args: list, **params: Any) -> tuple:
        if dtype_of(args[0]).kind != "c":
            raise DataDependentShapeError(
                f"{name} of a real matrix is complex when some of its eigenvalues are complex "
                f"and real otherwise: its dtype depends on the data values, which eval_shape "
                f"does not have; pass a complex matrix (a.astype(complex)) for a complex "
                f"result of fixed dtype")
        return rule(args, **params)
    return checked


def same_shape(name: str, square: bool = True) -> Callable:
    def rule(args: list, **params: Any) -> tuple:
        s = shape_of(args[0])
        (square_dim if square else matrix_dims)(name, s)
        return s, linalg_dtype(args[0])
    return rule


def sym_tangent(t: Any, lower: bool) -> Any:
    """The symmetric (complex: Hermitian) matrix a solver actually sees when it reads one
    triangle of ``t``; LAPACK ignores the imaginary part of a complex diagonal."""
    tri = np.tril if lower else np.triu
    off = tri(t, -1 if lower else 1)
    if is_complex(t):
        return off + mH(off) + diag_embed(np.real(diag_part(t)))
    return tri(t) + mT(off)


def sym_cotangent(g: Any, lower: bool) -> Any:
    """Adjoint of ``sym_tangent``: fold ``g`` onto the triangle that was read (a complex
    ``g`` folds conjugated and keeps the real part of its diagonal)."""
    tri = np.tril if lower else np.triu
    k = -1 if lower else 1
    if is_complex(g):
        return tri(g, k) + tri(mH(g), k) + diag_embed(np.real(diag_part(g)))
    return tri(g) + tri(mT(g), k)

def concrete_values(x: Any) -> Any:
    """The plain array under a traced value (batch axes first), None where there is none
    (eval_shape, graph capture)."""
    if not isinstance(x, Tracer):
        return x
    for attr in ("value", "primal"):
        if hasattr(x, attr):
            return concrete_values(getattr(x, attr))
    if hasattr(x, "bdim") and hasattr(x, "val"):
        v = concrete_values(x.val)
        if v is None or x.bdim is None:
            return v
        return np.moveaxis(v, x.bdim % np.ndim(x.val) + np.ndim(v) - np.ndim(x.val), 0)
    return None
