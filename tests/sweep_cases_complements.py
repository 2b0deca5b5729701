"""Sweep cases for the extra columns of ``svd(full_matrices=True)`` and
``qr(mode='complete')``: the orthogonal complement of the thin factor's range, in LAPACK's
arbitrary basis.

Only uses invariant to that basis have a gradient, so every case reaches the extra
columns through one (projectors ``N @ N.T``, norms of ``N.T @ x``, a full ``U w U^T``
with equal weights on the complement), except the one-column complements, which like a
singular vector are fixed up to a sign that LAPACK keeps locally constant. Inputs are
shifted by ``spread`` (distinct singular values, full rank), as in the linalg table.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sweep_cases import Arg, Case
from sweep_cases_linalg import spread

CASES: list[Case] = []
SMALL = dict(low=-0.5, high=0.5)
la = np.linalg


def case(name: str, fn: Callable, shapes: list, prims: str, **kw: object) -> None:
    args = tuple(Arg(tuple(s), **SMALL) for s in shapes)
    CASES.append(Case(f"complement-{name}", fn, args, tuple(prims.split()), **kw))


def proj(n: np.ndarray) -> np.ndarray:
    """``N @ N.T``: the projector onto the span of the columns of ``N``."""
    return n @ np.swapaxes(n, -1, -2)


def u_perp(a: np.ndarray) -> np.ndarray:
    return la.svd(a).U[..., :, min(np.shape(a)[-2:]):]


def vh_perp(a: np.ndarray) -> np.ndarray:
    return la.svd(a).Vh[..., min(np.shape(a)[-2:]):, :]


def q_perp(a: np.ndarray) -> np.ndarray:
    return la.qr(a, mode="complete").Q[..., :, np.shape(a)[-1]:]


def weighted(a: np.ndarray) -> tuple:
    """The whole full SVD of a tall 4 x 2 matrix: ``U diag(1, 2, 3, 3) U^T`` (the same
    weight on both extra columns is basis-invariant), ``s`` and ``Vh``."""
    u, s, vh = la.svd(a)
    return (u * np.array([1.0, 2.0, 3.0, 3.0])) @ np.swapaxes(u, -1, -2), s, vh


def qr_complete(a: np.ndarray) -> tuple:
    """Complete QR of a tall matrix: the complement's projector and the padded R."""
    q, r = la.qr(a, mode="complete")
    return proj(q[..., :, np.shape(a)[-1]:]), r


case("svd-tall-projector", lambda a: proj(u_perp(spread(a))), [(5, 2)], "svd svd_complement")
case("svd-tall-norms", lambda a, x: la.norm(np.swapaxes(u_perp(spread(a)), -1, -2) @ x,
                                            axis=0), [(4, 2), (4, 3)], "svd svd_complement")
case("svd-tall-full-stacked", lambda a: weighted(spread(a)), [(2, 4, 2)],
     "svd svd_complement")
case("svd-tall-one-column", lambda a: u_perp(spread(a)), [(4, 3)], "svd svd_complement")
case("svd-wide-projector", lambda a: proj(np.swapaxes(vh_perp(spread(a)), -1, -2)),
     [(2, 5)], "svd svd_complement")
case("svd-wide-norms-stacked", lambda a, x: la.norm(vh_perp(spread(a)) @ x, axis=-1),
     [(2, 2, 4), (4,)], "svd svd_complement")
case("qr-tall-projector-r", lambda a: qr_complete(spread(a)), [(5, 2)], "qr qr_complement")
case("qr-norms-stacked", lambda a, x: la.norm(x @ q_perp(spread(a)), axis=-1),
     [(2, 4, 2), (4,)], "qr qr_complement")
case("qr-one-column", lambda a: q_perp(spread(a)), [(3, 2)], "qr qr_complement")
