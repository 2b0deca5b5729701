"""Fused primitives for the nn ops whose composition keeps more on the tape than their
gradient needs: ``softmax``, ``log_softmax`` and ``layer_norm``.

Written as compositions, ``softmax`` keeps both ``exp(x - m)`` and its normalized output
(two arrays of the input's size), and ``layer_norm`` keeps the centered input and the
normalized one. As primitives they keep what PyTorch keeps:

- ``softmax`` keeps its output: ``dx = y * (g - sum(g * y))``;
- ``log_softmax`` keeps its output: ``dx = g - exp(y) * sum(g)``;
- ``layer_norm`` (with its affine ``weight`` / ``bias``) keeps its input and recomputes the
  statistics in backward, so the normalized array is not stored beside the output that
  the next layer keeps anyway.

Every rule is written with numpy calls on possibly-traced values, so each differentiates
again. ``axis`` is a sorted tuple of *negative* axes: a batch axis put in front (vmap)
leaves it unchanged, so one batching rule serves all three.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pycograd.core.errors import ShapeError
from pycograd.core.primitive import Joint, Primitive, primitive
from pycograd.ops.batching import aligned
from pycograd.ops.broadcasting import unbroadcast
from pycograd.ops.complex import match
from pycograd.ops.shaping import broadcast_shapes, dtype_of, shape_of


def negative_axes(axis: Any, ndim: int, op: str) -> tuple:
    """``axis`` (an int, a tuple, or None for all axes) as the sorted tuple of negative
    axes the fused primitives take, with a ShapeError naming ``op`` for a bad one.

    Example: ``negative_axes(1, 3, "softmax") == (-2,)``."""
    axes = tuple(range(ndim)) if axis is None else \
        tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < ndim:
            raise ShapeError(f"{op}: axis {a} is out of bounds for an array of {ndim} dims")
        out.append(a % ndim - ndim)
    if len(set(out)) != len(out):
        raise ShapeError(f"{op}: repeated axis in {axis}")
    return tuple(sorted(out))


def _shift(x: Any, axis: tuple) -> Any:
    """The per-slice max of a concrete ``x``, non-finite maxima (all ``-inf``) set to 0."""
    m = np.max(x, axis=axis, keepdims=True)
    return np.where(np.isfinite(m), m, 0)


# ---- softmax and log_softmax -------------------------------------------------------------

def _own(z: Any) -> bool:
    """Whether ``z`` (a fresh result of the impl itself) can take further steps in place."""
    return isinstance(z, np.ndarray) and z.dtype.kind == "f"


def _softmax_impl(x: Any, axis: tuple) -> Any:
    z = x - _shift(x, axis)
    if not _own(z):
        e = np.exp(z)
        return e / np.sum(e, axis=axis, keepdims=True)
    np.exp(z, out=z)  # one array of x's size beside x, not three
    z /= np.sum(z, axis=axis, keepdims=True)
    return z


def _log_softmax_impl(x: Any, axis: tuple) -> Any:
    z = x - _shift(x, axis)
    lse = np.log(np.sum(np.exp(z), axis=axis, keepdims=True))
    if not _own(z):
        return z - lse
    z -= lse
    return z


def _softmax_vjp(g: Any, ans: Any, x: Any, axis: tuple) -> Any:
    return ans * (g - np.sum(g * ans, axis=axis, keepdims=True))


def _log_softmax_vjp(g: Any, ans: Any, x: Any, axis: tuple) -> Any:
    return g - np.exp(ans) * np.sum(g, axis=axis, keepdims=True)


def _softmax_jvp(primals: list, tangents: list, axis: tuple) -> tuple:
    (x,), (t,) = primals, tangents
    y = softmax_p.bind(x, axis=axis)
    return y, y * (t - np.sum(y * t, axis=axis, keepdims=True))


def _log_softmax_jvp(primals: list, tangents: list, axis: tuple) -> tuple:
    (x,), (t,) = primals, tangents
    y = log_softmax_p.bind(x, axis=axis)
    return y, t - np.sum(np.exp(y) * t, axis=axis, keepdims=True)


def _batch(prim: Primitive) -> Any:
    """vmap: batch axes first, ranks aligned as broadcasting would; the negative ``axis``
    still names the same axes of each example."""
    def rule(size: int, vals: list, dims: list, **params: Any) -> tuple:
        return prim.bind(*aligned(size, vals, dims), **params), 0
    return rule


def _shape(prim: Primitive) -> Any:
    """eval_shape: the operands broadcast; the dtype is what ``impl`` gives on one element
    of each operand's dtype (the shape may be symbolic, the rank is not)."""
    def rule(args: list, **params: Any) -> tuple:
        shapes = [shape_of(a) for a in args]
        out = broadcast_shapes(prim.name, *shapes)
        ones = [np.ones((1,) * len(s), dtype_of(a)) for s, a in zip(shapes, args)]
        return out, np.result_type(prim.impl(*ones, **params))
    return rule


softmax_p = primitive("softmax", _softmax_impl, _softmax_vjp, jvp=_softmax_jvp)
log_softmax_p = primitive("log_softmax", _log_softmax_impl, _log_softmax_vjp,
                          jvp=_log_softmax_jvp)


# ---- layer_norm ---------------------------------------------------------------------------
# layer_norm_p(x, *affine_args, axis, eps, affine): ``affine`` names the optional arguments
# that follow x, a sub-tuple of ("weight", "bias").

def normalized(x: Any, axis: tuple, eps: float) -> tuple[Any, Any]:
    """``(x - mean) * rstd`` and ``rstd = 1 / sqrt(var + eps)`` over ``axis``, in numpy
    calls (so the backward pass differentiates them again): ``layer_norm``'s statistics,
    recomputed from the input its tape node keeps.

    Example: ``xhat, rstd = normalized(x, (-1,), 1e-5)``."""
    d = x - np.mean(x, axis=axis, keepdims=True)
    rstd = 1.0 / np.sqrt(np.mean(d * d, axis=axis, keepdims=True) + eps)
    return d * rstd, rstd


def _layer_norm_impl(x: Any, *wb: Any, axis: tuple, eps: float, affine: tuple) -> Any:
    y = x - np.mean(x, axis=axis, keepdims=True)
    rstd = np.sqrt(np.mean(np.square(y), axis=axis, keepdims=True) + eps)
    y = np.divide(y, rstd, out=y) if _own(y) and y.dtype == rstd.dtype else y / rstd
    for name, p in zip(affine, wb):
        op = np.multiply if name == "weight" else np.add
        inplace = _own(y) and np.result_type(y, p) == y.dtype and \
            np.broadcast_shapes(y.shape, np.shape(p)) == y.shape
        y = op(y, p, out=y) if inplace else op(y, p)
    return y


def _layer_norm_vjp(wanted: tuple, g: Any, ans: Any, x: Any, *wb: Any, axis: tuple,
                    eps: float, affine: tuple) -> tuple:
    xhat, rstd = normalized(x, axis, eps)
    weight = wb[affine.index("weight")] if "weight" in affine else None
    out: list = [None] * (1 + len(wb))
    if 0 in wanted:
        gh = unbroadcast(g if weight is None else g * weight, np.shape(x))
        gx = rstd * (gh - np.mean(gh, axis=axis, keepdims=True)
                     - xhat * np.mean(gh * xhat, axis=axis, keepdims=True))
        out[0] = match(gx, x)
    for k, (name, p) in enumerate(zip(affine, wb), 1):
        if k in wanted:
            out[k] = match(unbroadcast(g * xhat if name == "weight" else g, np.shape(p)), p)
    return tuple(out)


def _layer_norm_jvp(primals: list, tangents: list, axis: tuple, eps: float,
                    affine: tuple) -> tuple:
    x, *wb = primals
    y = layer_norm_p.bind(x, *wb, axis=axis, eps=eps, affine=affine)
    xhat, rstd = normalized(x, axis, eps)
    weight = wb[affine.index("weight")] if "weight" in affine else None
    t_out = None
    if tangents[0] is not None:
        t = tangents[0]
        t_out = rstd * (t - np.mean(t, axis=axis, keepdims=True)
                        - xhat * np.mean(t * xhat, axis=axis, keepdims=True))
        if weight is not None:
            t_out = t_out * weight
    for name, t in zip(affine, tangents[1:]):
        if t is not None:
            term = xhat * t if name == "weight" else t
            t_out = term if t_out is None else t_out + term
    return y, np.broadcast_to(t_out, np.shape(y))


layer_norm_p = primitive("layer_norm", _layer_norm_impl, Joint(_layer_norm_vjp),
                         jvp=_layer_norm_jvp)

for _p in (softmax_p, log_softmax_p, layer_norm_p):
    _p.batch, _p.shape = _batch(_p), _shape(_p)
