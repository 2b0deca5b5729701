"""Contractions: matmul in every rank regime, and einsum in fully explicit form.

``einsum``'s spec is normalized by ``numpy_api`` to explicit letters with an output
(``"ij,jk->ik"``; no ellipsis, no implicit output), so one VJP rule serves every
operand: contract the cotangent with the other operands back to the operand's labels,
using an identity operand for a repeated label (a diagonal) and a ones operand for a
label that was summed away.
"""

from __future__ import annotations

import math
import string
from typing import Any

import numpy as np

from pycograd.core.errors import ShapeError
from pycograd.core.primitive import PerArgument, primitive
from pycograd.ops.batching import to_front
from pycograd.ops.broadcasting import unbroadcast
from pycograd.ops.complex import match
from pycograd.ops.shaping import broadcast_shapes, dtype_of, shape_of


def _mT(x: Any) -> Any:
    return np.swapaxes(x, -1, -2)


def _matmul_da(g: Any, ans: Any, a: Any, b: Any) -> Any:
    na, nb = np.ndim(a), np.ndim(b)
    if nb == 1:
        ga = g[..., None] * b
    elif na == 1:
        ga = np.matmul(g[..., None, :], _mT(b))[..., 0, :]
    else:
        ga = np.matmul(g, _mT(b))
    return unbroadcast(match(ga, a), np.shape(a))


def _matmul_db(g: Any, ans: Any, a: Any, b: Any) -> Any:
    na, nb = np.ndim(a), np.ndim(b)
    if na == 1:
        gb = a[:, None] * g[..., None, :] if nb > 1 else g * a
    elif nb == 1:
        gb = np.matmul(g[..., None, :], a)[..., 0, :]
    elif nb == 2 and na > 2:
        # (..., i, j) @ (j, k): fold the batch into the contraction, as one (j, k) matmul,
        # rather than a (..., j, k) stack of products summed afterwards
        j, k = np.shape(a)[-1], np.shape(g)[-1]
        gb = np.matmul(_mT(np.reshape(a, (math.prod(np.shape(a)[:-1]), j))),
                       np.reshape(g, (math.prod(np.shape(g)[:-1]), k)))
    else:
        gb = np.matmul(_mT(a), g)
    return unbroadcast(match(gb, b), np.shape(b))


def _matmul_spec(sa: tuple, sb: tuple) -> str:
    """The einsum spec of ``a @ b`` for operands of shapes ``sa`` and ``sb``."""
    from pycograd.numpy_api.functions import normalize_einsum

    lhs = "...ij" if len(sa) >= 2 else "j"
    rhs = "...jk" if len(sb) >= 2 else "j"
    out = ("..." if max(len(sa), len(sb)) > 2 else "") + ("i" if len(sa) >= 2 else "") + \
        ("k" if len(sb) >= 2 else "")
    return normalize_einsum(f"{lhs},{rhs}->{out}", [sa, sb])


def _matmul_batch(size: int, vals: list, dims: list) -> tuple:
    (a, b), (da, db) = vals, dims
    if db is None and np.ndim(b) == 2:  # x @ W with a batch of x: one big matmul
        return matmul_p.bind(to_front(a, da, size), b), 0
    logical = [np.shape(v) if d is None else np.shape(v)[:d] + np.shape(v)[d + 1:]
               for v, d in zip(vals, dims)]
    return _einsum_batch(size, vals, dims, _matmul_spec(*logical))


def _matmul_shape(args: list) -> tuple:
    a, b = (shape_of(x) for x in args)
    a2 = (1,) + a if len(a) == 1 else a
    b2 = b + (1,) if len(b) == 1 else b
    if not a or not b or a2[-1] != b2[-2]:
        raise ShapeError(f"matmul: incompatible shapes {a} and {b}")
    batch = broadcast_shapes("matmul", a2[:-2], b2[:-2])
    out = batch + ((a2[-2],) if len(a) > 1 else ()) + ((b2[-1],) if len(b) > 1 else ())
    return out, dtype_of(*args)


matmul_p = primitive("matmul", np.matmul, _matmul_da, _matmul_db, family="multilinear",
                     batch=_matmul_batch, shape=_matmul_shape)


def einsum_any(spec: str, *operands: Any, optimize: bool = False) -> np.ndarray:
    """``np.einsum`` for every float dtype: numpy has no einsum loop for bfloat16 and the
    other ml_dtypes floats (kind ``"V"``), which are summed in float32 and rounded back,
    as numpy's own ``dot`` / ``matmul`` do for them."""
    dt = np.result_type(*operands)
    if dt.kind == "V":
        wide = [np.asarray(o, np.float32) for o in operands]
        return np.einsum(spec, *wide, optimize=optimize).astype(dt)
    return np.einsum(spec, *operands, optimize=optimize)


def _einsum_impl(*operands: Any, spec: str) -> Any:
    big = sum(np.size(o) for o in operands) > 4096 or len(operands) > 2
    return einsum_any(spec, *operands, optimize=big)


def _einsum_vjp(k: int, g: Any, ans: Any, *operands: Any, spec: str) -> Any:
    lhs, out = spec.split("->")
    ins = lhs.split(",")
    subs = [out] + [s for j, s in enumerate(ins) if j != k]
    ops = [g] + [o for j, o in enumerate(operands) if j != k]
    present = set("".join(subs))
    fresh = (c for c in string.ascii_letters if c not in spec)
    target = []
    for c, d in zip(ins[k], np.shape(operands[k])):
        if c in target:  # repeated label: a diagonal, so route through an identity
            c2 = next(fresh)
            subs.append(c + c2)
            ops.append(np.eye(d, dtype=bool))
            c = c2
        elif c not in present:  # label summed away in the forward: broadcast it back
            subs.append(c)
            ops.append(np.ones(d, dtype=bool))
            present.add(c)
        target.append(c)
    return match(einsum_p.bind(*ops, spec=",".join(subs) + "->" + "".join(target)), operands[k])


def _einsum_batch(size: int, vals: list, dims: list, spec: str) -> tuple:
    """A fresh letter for the batch axis on every batched operand and on the output."""
    z = next(c for c in string.ascii_letters if c not in spec)
    lhs, out = spec.split("->")
    subs = lhs.split(",")
    ops = []
    for i, (v, d) in enumerate(zip(vals, dims)):
        if d is not None:
            v, subs[i] = to_front(v, d, size), z + subs[i]
        ops.append(v)
    return einsum_p.bind(*ops, spec=",".join(subs) + "->" + z + out), 0


def _einsum_shape(args: list, spec: str) -> tuple:
    lhs, out = spec.split("->")
    sizes: dict = {}
    for sub, a in zip(lhs.split(","), args):
        for c, d in zip(sub, shape_of(a)):
            if sizes.setdefault(c, d) != d:
                shapes = " and ".join(str(shape_of(x)) for x in args)
                raise ShapeError(f"einsum: incompatible shapes {shapes} for {spec!r}")
    return tuple(sizes[c] for c in out), dtype_of(*args)


einsum_p = primitive("einsum", _einsum_impl, PerArgument(_einsum_vjp), family="multilinear",
                     batch=_einsum_batch, shape=_einsum_shape)
