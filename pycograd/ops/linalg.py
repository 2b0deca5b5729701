"""Contractions: matmul in every rank regime, and einsum in fully explicit form.

``einsum``'s spec is normalized by ``numpy_api`` to explicit letters with an output
(``"ij,jk->ik"``; no ellipsis, no implicit output), so one VJP rule serves every
operand: contract the cotangent with the other operands back to the operand's labels,
using an identity operand for a repeated label (a diagonal) and a ones operand for a
label that was summed away.
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np

from pycograd.core.primitive import PerArgument, primitive
from pycograd.ops.broadcasting import unbroadcast


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
    return unbroadcast(ga, np.shape(a))


def _matmul_db(g: Any, ans: Any, a: Any, b: Any) -> Any:
    na, nb = np.ndim(a), np.ndim(b)
    if na == 1:
        gb = a[:, None] * g[..., None, :] if nb > 1 else g * a
    elif nb == 1:
        gb = np.matmul(g[..., None, :], a)[..., 0, :]
    else:
        gb = np.matmul(_mT(a), g)
    return unbroadcast(gb, np.shape(b))


matmul_p = primitive("matmul", np.matmul, _matmul_da, _matmul_db)


def _einsum_impl(*operands: Any, spec: str) -> Any:
    big = sum(np.size(o) for o in operands) > 4096 or len(operands) > 2
    return np.einsum(spec, *operands, optimize=big)


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
    return einsum_p.bind(*ops, spec=",".join(subs) + "->" + "".join(target))


einsum_p = primitive("einsum", _einsum_impl, PerArgument(_einsum_vjp))
