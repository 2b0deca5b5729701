"""The GRU's gate arithmetic as one primitive, ``gru_gates(xg, hg, h) -> h'``.

A GRU step is two matmuls and then ~17 small elementwise operations and slices on
``(batch, 3H)`` arrays. Run token by token under the tape, each of those is a node with
its own bookkeeping and VJP call, which costs more than its arithmetic. As one primitive
the tape records one node per step, its forward is plain numpy, and its VJP computes the
three cotangents together from the gates recomputed in numpy. The rules are written with
numpy calls, so they differentiate in turn (second order, ``jvp`` of ``grad``).

``gru_math`` is the arithmetic itself, written once for any array namespace: the impl, the
device impls and the torch / jax / tf lowerings all call it with their own ``tanh``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pycograd.core.errors import ShapeError
from pycograd.core.primitive import Joint, primitive
from pycograd.ops.batching import to_front
from pycograd.ops.broadcasting import unbroadcast
from pycograd.ops.complex import match
from pycograd.ops.shaping import broadcast_shapes, dtype_of, shape_of


def _parts(tanh: Callable, xg: Any, hg: Any, h: Any) -> tuple:
    """The gates ``(r|z, r, z, W_hn h + b_hn, n)`` of a GRU step; gates are sigmoids written
    ``(1 + tanh(x / 2)) / 2`` (never overflows)."""
    H = np.shape(h)[-1]
    two = 2 * H
    rz = 0.5 + 0.5 * tanh(0.5 * (xg[..., :two] + hg[..., :two]))
    r, z = rz[..., :H], rz[..., H:]
    hn = hg[..., two:]
    return rz, r, z, hn, tanh(xg[..., two:] + r * hn)


def gru_math(tanh: Callable, xg: Any, hg: Any, h: Any) -> Any:
    """``h' = n + z (h - n)`` from the stacked ``(r, z, n)`` pre-activations ``xg`` (input
    side) and ``hg`` (hidden side), with ``tanh`` of the arrays' own namespace."""
    _, _, z, _, n = _parts(tanh, xg, hg, h)
    return n + z * (h - n)


def _impl(xg: Any, hg: Any, h: Any) -> Any:
    return gru_math(np.tanh, xg, hg, h)


def _to(ct: Any, x: Any) -> Any:
    """``ct`` as the cotangent of ``x``: its precision and shape."""
    return unbroadcast(match(ct, x), shape_of(x))


def _vjp(wanted: tuple, g: Any, ans: Any, xg: Any, hg: Any, h: Any) -> list:
    rz, r, z, hn, n = _parts(np.tanh, xg, hg, h)
    da = g * (1 - z) * (1 - n * n)                                   # d/d(n's pre-activation)
    ds = np.concatenate([da * hn, g * (h - n)], axis=-1) * (rz * (1 - rz))
    out: list = [None, None, None]
    if 0 in wanted:
        out[0] = _to(np.concatenate([ds, da], axis=-1), xg)
    if 1 in wanted:
        out[1] = _to(np.concatenate([ds, da * r], axis=-1), hg)
    if 2 in wanted:
        out[2] = _to(g * z, h)
    return out


def _plus(*terms: Any) -> Any:
    """The sum of the terms that are not None (None if all are: a zero tangent)."""
    present = [t for t in terms if t is not None]
    if not present:
        return None
    total = present[0]
    for t in present[1:]:
        total = total + t
    return total


def _jvp(primals: list, tangents: list) -> tuple:
    xg, hg, h = primals
    txg, thg, th = tangents
    H = shape_of(h)[-1]
    two = 2 * H
    rz, r, z, hn, n = _parts(np.tanh, xg, hg, h)
    out = gru_gates_p.bind(xg, hg, h)
    ts = _plus(None if txg is None else txg[..., :two], None if thg is None else thg[..., :two])
    trz = None if ts is None else rz * (1 - rz) * ts
    tr, tz = (None, None) if trz is None else (trz[..., :H], trz[..., H:])
    ta = _plus(None if txg is None else txg[..., two:], None if tr is None else tr * hn,
               None if thg is None else r * thg[..., two:])
    tn = None if ta is None else (1 - n * n) * ta
    t = _plus(None if tn is None else (1 - z) * tn, None if tz is None else tz * (h - n),
              None if th is None else z * th)
    if t is not None and shape_of(t) != shape_of(out):
        t = np.broadcast_to(t, shape_of(out))
    return out, t


def _batch(size: int, vals: list, dims: list) -> tuple:
    """Batch axes first; a batched operand of lower rank gets size-1 axes after its batch
    axis, so every operand broadcasts as it did unbatched."""
    ranks = [np.ndim(v) - (d is not None) for v, d in zip(vals, dims)]
    rank = max(ranks)
    moved = []
    for v, d, k in zip(vals, dims, ranks):
        if d is not None:
            v = to_front(v, d, size)
            if k < rank:
                v = np.reshape(v, (size,) + (1,) * (rank - k) + tuple(shape_of(v)[1:]))
        moved.append(v)
    return gru_gates_p.bind(*moved), 0


def check_shapes(name: str, xg: tuple, hg: tuple, h: tuple) -> None:
    """``xg`` and ``hg`` must end in ``3H`` for the ``H`` that ends ``h``."""
    if not h or not xg or not hg or xg[-1] != 3 * h[-1] or hg[-1] != 3 * h[-1]:
        raise ShapeError(f"{name}: the gate pre-activations must be (..., 3H) for a hidden "
                         f"state (..., H); got input side {xg}, hidden side {hg}, state {h} "
                         "(w_ih and w_hh have 3H rows, stacked r, z, n)")


def _shape(args: list) -> tuple:
    xg, hg, h = (shape_of(a) for a in args)
    check_shapes("gru_gates", xg, hg, h)
    lead = broadcast_shapes("gru_gates", xg[:-1], hg[:-1], h[:-1])
    small = [np.zeros(n, dtype_of(a)) for n, a in zip((3, 3, 1), args)]  # numpy's promotion
    return lead + (h[-1],), _impl(*small).dtype


gru_gates_p = primitive("gru_gates", _impl, Joint(_vjp), jvp=_jvp, batch=_batch,
                        shape=_shape)
