"""Sweep cases for four numpy-breadth gaps: nan-statistics of complex inputs (real
``nanvar``/``nanstd``), ``median``/``nanmedian`` of complex inputs (lexicographic order),
``geomspace`` with complex ends (a log-spiral), and reductions with ``where=`` / ``initial=``
(a plain mask, a traced mask, NaN-ignoring variants).

Masks and NaN positions are fixed (or computed from inputs kept away from the threshold),
so finite differences never move them; masked-out elements must get zero gradient, which
the finite differences check too.
"""

from __future__ import annotations

import numpy as np
from sweep_cases import A, Arg, Case

import pycograd.numpy_api.construction
import pycograd.numpy_api.nan_functions
import pycograd.numpy_api.selection  # noqa: F401

CASES: list[Case] = []


def case(name: str, fn, args: list, prims: str, **kw) -> None:
    CASES.append(Case(f"gaps-{name}", fn, tuple(args), tuple(prims.split()), **kw))


def Z(*shape: int, **kw: object) -> Arg:
    return Arg(tuple(shape), dtype="complex128", **kw)


def _nan(x):
    """``x`` with NaN at fixed positions: entry 1 of the first row, the last entry of the
    others (of a 1-d ``x``, the last entry)."""
    m = np.zeros(np.shape(x), dtype=bool)
    if np.ndim(x) > 1:
        m[0, 1] = True
        m[1:, -1] = True
    else:
        m[-1] = True
    return np.where(m, np.nan, x)


M34 = np.array([[True, False, True, True], [False, True, True, False],
                [True, True, False, True]])
ROW = np.array([True, False, True, True])
RIGHT = dict(low=0.3, high=2.0)  # geomspace ends: b / sign(a) stays off log's cut

# ---- 1. nan-statistics of complex inputs: real results ------------------------------------

case("nanvar-complex", lambda z: np.nanvar(_nan(z), axis=1), [Z(3, 4)],
     "where isnan multiply conjugate real sum divide")
case("nanstd-complex-ddof", lambda z: np.nanstd(_nan(z), axis=1, ddof=1), [Z(3, 4)],
     "where isnan multiply conjugate real sum sqrt")
case("nanvar-complex-flat", lambda z: np.nanvar(_nan(z)), [Z(2, 3)],
     "where isnan multiply conjugate real sum")
case("nanmean-complex", lambda z: np.nanmean(_nan(z), axis=1), [Z(3, 4)], "where isnan sum")
case("var-complex", lambda z: np.var(z, axis=0, keepdims=True), [Z(3, 4)],
     "multiply conjugate real sum")
case("std-complex", lambda z: np.std(z), [Z(2, 3)], "multiply conjugate real sum sqrt")

# ---- 2. median of complex inputs -------------------------------------------------------------

# (test_complex_coverage lists argsort, nan_quantile_positions and sign with their reasons,
# so complex cases do not claim them)
case("median-complex-odd", lambda z: np.median(z, axis=1), [Z(2, 5)], "take_along")
case("median-complex-even-flat", np.median, [Z(2, 3)], "take_along add divide")
case("median-complex-axes-keepdims", lambda z: np.median(z, axis=(0, 2), keepdims=True),
     [Z(2, 3, 2)], "take_along add divide transpose")
case("nanmedian-complex", lambda z: np.nanmedian(_nan(z), axis=1), [Z(3, 5)],
     "take_along where")
case("nanmedian-complex-even", lambda z: np.nanmedian(_nan(z), axis=1), [Z(3, 4)],
     "take_along where add divide")
case("median-real-even", lambda x: np.median(x, axis=0), [A(4, 3)], "argsort take_along add")

# ---- 3. geomspace with complex ends ---------------------------------------------------------

case("geomspace-complex", lambda a, b: np.geomspace(a, b, 5),
     [Z(**RIGHT), Z(**RIGHT)], "log10 power concatenate")
case("geomspace-complex-real-stop", lambda a, b: np.geomspace(a, b, 4, endpoint=False),
     [Z(**RIGHT), A(**RIGHT)], "log10 power concatenate")
case("geomspace-complex-axis", lambda a, b: np.geomspace(a, b, 3, axis=1),
     [Z(2, **RIGHT), Z(2, **RIGHT)], "log10 power concatenate transpose")

# ---- 4. reductions with where= and initial= -----------------------------------------------------

case("sum-where", lambda x: np.sum(x, where=M34), [A(3, 4)], "where sum")
case("sum-where-row-initial", lambda x: np.sum(x, axis=1, where=ROW, initial=1.5),
     [A(3, 4)], "where sum add")
case("sum-initial-keepdims", lambda x: np.sum(x, axis=0, initial=-2.0, keepdims=True),
     [A(3, 4)], "sum add")
case("prod-where", lambda x: np.prod(x, axis=0, where=M34), [A(3, 4)], "where prod")
case("mean-where", lambda x: np.mean(x, axis=1, where=M34), [A(3, 4)], "where sum divide")
case("mean-where-flat", lambda x: np.mean(x, where=ROW), [A(3, 4)], "where sum divide")
FIRST = np.arange(12).reshape(3, 4) < 4  # the first row, so no slice is empty
case("mean-where-traced-mask", lambda x: np.mean(x, axis=0, where=np.logical_or(x > 0, FIRST)),
     [A(3, 4, away=0.2)], "where sum divide")
case("var-where", lambda x: np.var(x, axis=1, where=M34), [A(3, 4)],
     "where sum multiply divide")
case("std-where-ddof", lambda x: np.std(x, axis=0, where=M34, ddof=1, keepdims=True),
     [A(3, 4)], "where sum multiply sqrt")
case("var-where-complex", lambda z: np.var(z, axis=1, where=M34), [Z(3, 4)],
     "where sum multiply conjugate real")
case("max-where-initial", lambda x: np.max(x, axis=1, where=M34, initial=-5.0), [A(3, 4)],
     "where max maximum")
case("amin-initial", lambda x: np.amin(x, axis=0, initial=0.0), [A(3, 4, away=0.2)],
     "min minimum")
case("min-where-initial-flat", lambda x: np.min(x, where=ROW, initial=5.0), [A(3, 4)],
     "where min minimum")
case("nansum-where", lambda x: np.nansum(_nan(x), axis=1, where=M34), [A(3, 4)],
     "where isnan sum")
case("nanmean-where", lambda x: np.nanmean(_nan(x), axis=0, where=M34), [A(3, 4)],
     "where isnan sum divide")
case("nanvar-where", lambda x: np.nanvar(_nan(x), axis=1, where=M34), [A(3, 4)],
     "where isnan sum multiply divide")
case("nanmax-initial", lambda x: np.nanmax(_nan(x), axis=1, initial=-5.0), [A(3, 4)],
     "where isnan max maximum")
# x * PICK is traced and zero exactly where PICK is (finite differences do not move that);
# the patterns make the masked results differ from the unmasked ones
ANY_PICK = np.array([[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0]])
ALL_PICK = np.array([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 1.0]])
case("any-where", lambda x: x * np.any(x * ANY_PICK, axis=1, where=M34, keepdims=True),
     [A(3, 4, away=0.2)], "any logical_and multiply")
case("all-where", lambda x: x * np.all(x * ALL_PICK, axis=0, where=M34), [A(3, 4, away=0.2)],
     "all logical_or multiply")
case("sum-method-where", lambda x: x.sum(axis=0, where=M34) * x.mean(where=M34),
     [A(3, 4)], "where sum multiply")
