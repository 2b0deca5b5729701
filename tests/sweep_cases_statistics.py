"""Sweep cases for numpy's statistics, polynomial and interpolation functions written as
compositions: ``np.cov`` / ``np.corrcoef`` (``stats-``), ``np.poly*`` / ``np.roots`` /
``np.vander`` (``poly-``), ``np.interp`` / ``np.unwrap`` (``interp-``).

Sample points ``xp`` are built increasing from a traced argument (``cumsum`` of positive
steps) so their gradient is checked too. ``polymul`` and ``roots`` strip zero coefficients
on the values, which sets the output's length: they are ``data_dependent`` (eval_shape
raises DataDependentShapeError, vmap a clear error)."""

from __future__ import annotations

import numpy as np
from sweep_cases import A, Case, case

CASES: list[Case] = []


def add(name: str, fn: object, args: list, prims: str, **kw: object) -> None:
    case(name, fn, args, prims, table=CASES, **kw)


def Z(*shape: int, **kw: object) -> A:
    return A(*shape, dtype="complex128", **kw)


POS = dict(low=0.3, high=2.0)
FW = np.array([1, 3, 0, 2, 1])

# ---- cov / corrcoef ----------------------------------------------------------------------

add("stats-cov", lambda m: np.cov(m), [A(3, 5)], "matmul sum subtract")
add("stats-cov-y-columns", lambda m, y: np.cov(m, y, rowvar=False), [A(5, 2), A(5, 1)],
    "matmul concatenate")
add("stats-cov-1d-bias", lambda m: np.cov(m, bias=True), [A(6)], "matmul")
add("stats-cov-ddof", lambda m: np.cov(m, ddof=2), [A(2, 5)], "matmul")
add("stats-cov-aweights", lambda m, a: np.cov(m, aweights=a), [A(2, 5), A(5, **POS)],
    "matmul multiply divide where")
add("stats-cov-fweights", lambda m: np.cov(m, fweights=FW), [A(2, 5)], "matmul multiply")
add("stats-cov-both-weights", lambda m, a: np.cov(m, fweights=FW, aweights=a, ddof=1),
    [A(2, 5), A(5, **POS)], "matmul multiply divide")
add("stats-cov-complex", lambda m: np.cov(m), [Z(2, 4)], "matmul conjugate")
add("stats-corrcoef", lambda m: np.corrcoef(m), [A(3, 5)], "sqrt maximum minimum")
add("stats-corrcoef-pair", lambda x, y: np.corrcoef(x, y), [A(4), A(4)], "sqrt minimum")
add("stats-corrcoef-complex", lambda m: np.corrcoef(m), [Z(2, 4)], "real imag sqrt minimum")

# ---- polynomials ---------------------------------------------------------------------------

add("poly-polyval", lambda p, x: np.polyval(p, x), [A(4), A(3)], "multiply add")
add("poly-polyval-rows", lambda p, x: np.polyval(p, x), [A(3, 2), A(2)], "multiply add")
add("poly-polyder", lambda p: np.polyder(p, 2), [A(5)], "multiply")
KONLY = ("numpy dispatches np.polyint on p alone (its dispatcher ignores k): a traced k "
         "with a plain p runs numpy's own code, which refuses the tracer")
add("poly-polyint-k", lambda p, k: np.polyint(p, 2, k=k), [A(4), A(2)],
    "divide concatenate", skip={"jvp_constants": KONLY, "vmap_unmapped": KONLY})
add("poly-polyadd", lambda a, b: np.polyadd(a, b), [A(4), A(2)], "add concatenate")
add("poly-polysub", lambda a, b: np.polysub(a, b), [A(2), A(3)], "subtract concatenate")
add("poly-polymul", lambda a, b: np.polymul(a, b), [A(3, away=0.3), A(2, away=0.3)],
    "correlate", data_dependent=True)
add("poly-vander", lambda x: np.vander(x, 4), [A(3)], "cumprod concatenate")
add("poly-polyfit", lambda x, y: np.polyfit(x, y, 2), [A(6, low=-4.0, high=4.0), A(6)],
    "pinv cumprod")
add("poly-polyfit-weighted-columns", lambda x, y, w: np.polyfit(x, y, 1, w=w),
    [A(5), A(5, 2), A(5, **POS)], "pinv")
add("poly-polyfit-full", lambda x, y: np.polyfit(x, y, 2, full=True)[:2] + (
    np.polyfit(x, y, 2, full=True)[3],), [A(6), A(6)], "pinv svd")
add("poly-polyfit-cov", lambda x, y: np.polyfit(x, y, 1, cov=True), [A(6), A(6)],
    "pinv solve")
add("poly-polyfit-cov-unscaled", lambda x, y: np.polyfit(x, y, 2, cov="unscaled"),
    [A(5), A(5, 2)], "pinv solve")
add("poly-roots", lambda p: np.roots(p), [A(4, away=0.5)], "eig", data_dependent=True,
    rtol=1e-5)
add("poly-roots-zero-root", lambda p: np.roots(p), [A(4, away=0.5, zeros=(3,))], "eig",
    data_dependent=True, rtol=1e-5)
add("poly-roots-complex", lambda p: np.roots(p), [Z(3, away=0.5)], "eig",
    data_dependent=True, rtol=1e-5)

# ---- interp / unwrap ------------------------------------------------------------------------


def _xp(d: object) -> object:
    """Increasing sample points from positive steps."""
    return np.cumsum(d)


STEPS = A(5, low=0.4, high=1.0)
add("interp-linear", lambda x, d, fp: np.interp(x, _xp(d), fp),
    [A(2, 3, low=-0.5, high=5.5), STEPS, A(5)], "searchsorted take_along where")
add("interp-left-right", lambda x, lo, hi, fp: np.interp(x, np.arange(5.0), fp, lo, hi),
    [A(4, low=-1.0, high=5.0), A(), A(), A(5)], "take_along where")
add("interp-complex", lambda x, d, fp: np.interp(x, _xp(d), fp),
    [A(4, low=0.0, high=5.0), STEPS, Z(5)], "take_along where")
add("interp-period", lambda x, d, fp: np.interp(x, _xp(d), fp, period=2.5),
    [A(4, low=-3.0, high=3.0), A(4, low=0.2, high=0.5), A(4)], "argsort take_along remainder")
add("interp-one-point", lambda x, xp, fp: np.interp(x, xp, fp), [A(3), A(1), A(1)],
    "where")
add("interp-unwrap", lambda p: np.unwrap(3.0 * p), [A(2, 6)], "stop_gradient add concatenate")
add("interp-unwrap-axis0-period", lambda p: np.unwrap(p, discont=3.0, axis=0, period=4.0),
    [A(5, 2, low=-4.0, high=4.0)], "stop_gradient add concatenate")
