"""Sweep cases for issue 10's numpy surface: ``np.rollaxis``, ``np.einsum``'s sublist form,
and numpy functions given Python lists / tuples of traced values (``np.mean([a, b])``),
which the transparent layer routes (``pycograd.numpy_api.list_args``). Same ``Case`` table as
``sweep_cases.py``, run in every mode."""

from __future__ import annotations

import numpy as np
from sweep_cases import A, Case, case

CASES: list[Case] = []


def add(name: str, fn: object, args: list, prims: str, **kw: object) -> None:
    case(f"core-{name}", fn, args, prims, table=CASES, **kw)


for _axis, _start in [(1, 0), (0, 2), (2, 0), (1, 3), (-1, 1), (2, -3)]:
    add(f"rollaxis-{_axis}-{_start}", lambda x, a=_axis, s=_start: np.rollaxis(x, a, s),
        [A(2, 3, 4)], "transpose")

add("einsum-sublist-matmul", lambda a, b: np.einsum(a, [0, 1], b, [1, 2]),
    [A(2, 3), A(3, 4)], "einsum")
add("einsum-sublist-out", lambda a, b: np.einsum(a, [0, 1], b, [1, 2], [2, 0]),
    [A(2, 3), A(3, 4)], "einsum")
add("einsum-sublist-ellipsis", lambda a: np.einsum(a, [Ellipsis, 0, 1], [Ellipsis, 1, 0]),
    [A(2, 3, 4)], "einsum")

add("list-mean", lambda a, b: np.mean([a, b * 2.0]), [A(3), A(3)], "sum")
add("list-mean-tuple-axis", lambda a, b: np.mean((a, b), axis=0), [A(3), A(3)], "sum")
add("list-var", lambda a, b: np.var([a, b + 1.0]), [A(2), A(2)], "add")
add("list-std", lambda a, b: np.std([a, b, a * b], axis=0), [A(3), A(3)], "sqrt")
add("list-norm", lambda a, b: np.linalg.norm([a, b]), [A(), A(low=0.5)], "sqrt")
add("list-sum-nested", lambda a, b: np.sum([[a, b], [b, a * a]], axis=1), [A(), A()],
    "multiply")
add("list-append", lambda a, b: np.append([a, 1.0], [b, a]), [A(), A()], "concatenate")
add("list-append-2d", lambda a, b: np.append([[a, b]], [[b, a]], axis=0), [A(), A()],
    "concatenate")
add("list-ufunc", lambda a, b: np.sin([a, b]), [A(), A()], "sin")
add("list-dot", lambda a, b: np.dot(a, [b, 2.0 * b, 1.0]), [A(3), A()], "multiply")

try:
    import scipy.linalg as sl
    import scipy.special as sp
    import scipy.stats as st
except ImportError:  # scipy is optional: its cases are simply absent
    sl = sp = st = None

if sp is not None:
    _COV = np.diag([1.0, 2.0, 0.0])  # singular: density on the first two coordinates
    _BAND = np.array([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])

    add("scipy-gammasgn", lambda x: sp.gammasgn(x) * x, [A(2, 3, away=0.3)],
        "gammasgn multiply")
    add("scipy-solve_sylvester", lambda a, b, q: sl.solve_sylvester(a, b, q),
        [A(3, 3), A(2, 2), A(3, 2)], "solve", rtol=1e-5)
    add("scipy-solve_banded", lambda ab, b: sl.solve_banded((1, 1), ab + 3.0 * _BAND, b),
        [A(3, 4), A(4)], "solve")
    add("scipy-mvn-logpdf-singular",
        lambda x, m: st.multivariate_normal.logpdf(x * np.array([1.0, 1.0, 0.0]),
                                                   m * np.array([1.0, 1.0, 0.0]), _COV,
                                                   allow_singular=True),
        [A(3), A(3)], "matmul")

try:
    import scipy.integrate as si
except ImportError:
    si = None

if si is not None:
    _T = np.linspace(0.1, 0.3, 3)

    def _decay(y, t, a):
        return -a * y + np.sin(t) * y ** 2 / 4.0

    add("scipy-odeint", lambda y0, a: si.odeint(_decay, y0, _T, (a,)),
        [A(2, low=0.5, high=1.5), A(2, low=0.5, high=1.5)], "odeint",
        eps=1e-4, rtol=2e-3, atol=1e-5)
