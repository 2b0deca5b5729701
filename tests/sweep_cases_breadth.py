"""Sweep cases for the numpy breadth modules: remaining ufuncs, scans, nan-functions,
sorting and order statistics, and array construction (see ``sweep_cases`` for the
structure; ``test_sweep`` runs every case in every mode).

NaN inputs are made with a fixed mask (``_nan``), so the NaN positions do not move under
finite differences; index-valued functions appear as factors (``x * np.argsort(x)``),
so their primitives run on traced values.
"""

from __future__ import annotations

import numpy as np
from sweep_cases import A, Case

import pycograd.numpy_api.construction
import pycograd.numpy_api.nan_functions
import pycograd.numpy_api.selection  # noqa: F401
from pycograd.numpy_api.construction import scatter_add, scatter_set

CASES: list[Case] = []


def case(name: str, fn, args: list, prims: str, **kw) -> None:
    CASES.append(Case(name, fn, tuple(args), tuple(prims.split()), **kw))


def _nan(x):
    """``x`` with NaN at fixed positions: entries 0 and 2 of the first row, the last entry
    of the other rows (of a 1-d ``x``, the last entry)."""
    m = np.zeros(np.shape(x), dtype=bool)
    if np.ndim(x) > 1:
        m[0, [0, 2]] = True
        m[1:, -1] = True
    else:
        m[-1] = True
    return np.where(m, np.nan, x)


AW = dict(away=0.2)

# ---- remaining ufuncs -----------------------------------------------------------------------

case("nextafter", lambda x, y: np.nextafter(x, y), [A(2, 3), A(3)], "nextafter")
case("nextafter-0d", np.nextafter, [A(), A(2)], "nextafter")
case("ldexp", lambda x: np.ldexp(x, np.array([[1], [-2]])), [A(2, 3)], "ldexp")
case("spacing", lambda x: x * np.spacing(x), [A(2, 3, **AW)], "spacing multiply")
case("sinc", np.sinc, [A(2, 3)], "sin divide where")
case("sinc-at-zero", np.sinc, [A(4, zeros=(1, 3))], "sin divide where", hvp_eps=1e-4)
case("fix", lambda x: x * np.fix(x * 2), [A(2, 3)],
     "trunc multiply")
_K = np.array([[np.inf, 0.0, 0.0], [0.0, np.nan, -np.inf]])
case("nan_to_num", lambda x: np.nan_to_num(np.where(np.isfinite(_K), x, _K), nan=1.5,
                                           posinf=2.0, neginf=-3.0), [A(2, 3)],
     "where isnan isinf signbit")
case("nan_to_num-nan", lambda x: np.nan_to_num(_nan(x)), [A(2, 3)], "where isnan isinf")
case("real_if_close", lambda x: np.real_if_close(x) * 2, [A(3)], "multiply")

# ---- scans and nan-reductions --------------------------------------------------------------

case("cumprod", lambda x: np.cumprod(x, axis=1), [A(2, 4, **AW)], "cumprod")
case("cumprod-flat", np.cumprod, [A(2, 3, **AW)], "cumprod reshape")
case("cumprod-zeros", lambda x: np.cumprod(x, axis=1), [A(2, 4, zeros=(1, 6, 7))],
     "cumprod")
case("cumprod-zeros-axis0", lambda x: np.cumprod(x, axis=0), [A(3, 2, zeros=(0,))],
     "cumprod")
case("cumprod-dtype", lambda x: np.cumprod(x, axis=-1, dtype=np.float32),
     [A(2, 3, **AW)], "cumprod astype", rtol=1e-4, atol=1e-5, eps=1e-3, hvp_eps=1e-2)
case("cumulative_prod", lambda x: np.cumulative_prod(x, axis=0, include_initial=True),
     [A(3, 2, **AW)], "cumprod concatenate")
case("cumulative_sum", lambda x: np.cumulative_sum(x, include_initial=True), [A(4)],
     "cumsum concatenate")
case("nancumsum", lambda x: np.nancumsum(_nan(x), axis=1), [A(2, 4)], "cumsum where isnan")
case("nancumprod", lambda x: np.nancumprod(_nan(x)), [A(2, 3, **AW)],
     "cumprod where isnan reshape")
case("nansum", lambda x: np.nansum(_nan(x), axis=0), [A(3, 4)], "sum where isnan")
case("nanprod", lambda x: np.nanprod(_nan(x), axis=1, keepdims=True), [A(3, 4)],
     "prod where isnan")
case("nanmean", lambda x: np.nanmean(_nan(x), axis=1), [A(3, 4)], "sum divide isnan")
case("nanmean-flat", lambda x: np.nanmean(_nan(x)), [A(3, 4)], "sum divide isnan")
case("nanvar", lambda x: np.nanvar(_nan(x), axis=1, ddof=1), [A(3, 4)],
     "sum multiply divide isnan")
case("nanstd", lambda x: np.nanstd(_nan(x), axis=1, keepdims=True), [A(3, 4)],
     "sqrt sum divide isnan")
case("nanmax", lambda x: np.nanmax(_nan(x), axis=1), [A(3, 4)], "max where isnan")
case("nanmin-flat", lambda x: np.nanmin(_nan(x)), [A(3, 4)], "min where isnan")
case("ptp", lambda x: np.ptp(x, axis=1), [A(3, 4)], "max min subtract")
case("amax-ties-free", lambda x: np.amax(x, axis=(0, 2)), [A(2, 3, 2)], "max")

# ---- sorting and order statistics ------------------------------------------------------------

case("sort-traced-index", np.sort, [A(2, 4)], "argsort take_along scatter_along")
case("sort-axis0-stable", lambda x: np.sort(x, axis=0, stable=True), [A(3, 2)],
     "argsort take_along")
case("sort-none", lambda x: np.sort(x, axis=None), [A(2, 3)], "argsort take_along reshape")
case("partition", lambda x: np.partition(x, 1), [A(2, 5)], "partition_perm take_along")
case("partition-kths-axis0", lambda x: np.partition(x, (0, 2), axis=0), [A(4, 2)],
     "partition_perm take_along")
case("argsort", lambda x: x * np.argsort(x, axis=0), [A(3, 2)], "argsort multiply")
case("argpartition", lambda x: x * np.argpartition(x, 2), [A(2, 4)],
     "argpartition multiply")
case("argmax-keepdims", lambda x: x * np.argmax(x, axis=1, keepdims=True), [A(2, 3)],
     "argmax multiply")
case("argmin-flat", lambda x: x * np.argmin(x), [A(2, 3)], "argmin multiply")
case("argmax-flat-keepdims", lambda x: x * np.argmax(x, keepdims=True), [A(2, 3)],
     "argmax multiply")
case("nanargmax", lambda x: x * np.nanargmax(_nan(x), axis=1, keepdims=True), [A(3, 4)],
     "argmax where isnan")
case("nanargmin", lambda x: x * np.nanargmin(_nan(x), axis=0), [A(3, 4)],
     "argmin where isnan")
case("all-any", lambda x: x * np.all(x, axis=0) + x * np.any(x, axis=1, keepdims=True),
     [A(2, 3)], "all any multiply add")
case("searchsorted", lambda a, v: v * np.searchsorted(np.sort(a), v, side="right"),
     [A(5), A(2, 3)], "searchsorted argsort take_along multiply")
case("searchsorted-sorter", lambda a, v: v * np.searchsorted(a, v, sorter=np.argsort(a)),
     [A(5), A(3)], "searchsorted multiply")
case("median-odd", lambda x: np.median(x, axis=1), [A(2, 5)], "argsort take_along")
case("median-even-flat", np.median, [A(2, 3)], "argsort take_along")
case("median-axes-keepdims", lambda x: np.median(x, axis=(0, 2), keepdims=True),
     [A(2, 3, 2)], "argsort take_along transpose")
case("quantile", lambda x: np.quantile(x, [0.25, 0.8], axis=0), [A(5, 2)],
     "argsort take_along broadcast_to")
case("quantile-0d-q", lambda x: np.quantile(x, 0.4), [A(6)], "argsort take_along")
case("percentile-float32", lambda x: np.percentile(x, [10.0, 95.0], axis=1),
     [A(2, 5, dtype="float32", grid=2.0**-8)], "argsort take_along",
     eps=2.0**-10, hvp_eps=2.0**-8, rtol=1e-4, atol=1e-4)
for _m in ("lower", "higher", "nearest", "midpoint", "hazen", "weibull", "median_unbiased",
           "normal_unbiased", "inverted_cdf", "averaged_inverted_cdf", "closest_observation",
           "interpolated_inverted_cdf"):
    case(f"percentile-{_m}", lambda x, m=_m: np.percentile(x, [3, 37, 50, 99], axis=1,
                                                         method=m),
         [A(2, 6)], "argsort take_along")
case("nanmedian", lambda x: np.nanmedian(_nan(x), axis=1), [A(3, 5)],
     "argsort take_along nan_quantile_positions")
case("nanpercentile", lambda x: np.nanpercentile(_nan(x), 30, axis=0), [A(3, 4)],
     "argsort take_along nan_quantile_positions")
case("nanquantile-flat", lambda x: np.nanquantile(_nan(x), [0.2, 0.9]), [A(3, 4)],
     "argsort take_along nan_quantile_positions")

# ---- construction --------------------------------------------------------------------------

case("linspace", lambda a, b: np.linspace(a, b, 5), [A(), A()],
     "multiply add concatenate")
case("linspace-arrays-axis", lambda a, b: np.linspace(a, b, 4, axis=1), [A(2), A(2)],
     "multiply add concatenate transpose")
case("linspace-noendpoint-retstep",
     lambda a, b: list(np.linspace(a, b, 3, endpoint=False, retstep=True)),
     [A(), A(3)], "multiply add divide")
case("linspace-num1", lambda a, b: np.linspace(a, b, 1), [A(), A()], "multiply add")
case("logspace", lambda a, b: np.logspace(a, b, 4, base=2.0), [A(low=-1, high=1), A()],
     "power")
case("geomspace", lambda a, b: np.geomspace(a, b, 4), [A(low=0.5, high=2), A(low=1, high=3)],
     "log10 power concatenate")
case("geomspace-negative-axis", lambda a, b: np.geomspace(-a, -b, 3, endpoint=False, axis=1),
     [A(2, low=0.5, high=2), A(2, low=1, high=3)], "log10 power concatenate transpose")
case("broadcast_arrays", lambda x, y: np.broadcast_arrays(x, y), [A(3, 1), A(2)],
     "broadcast_to")
case("unstack", lambda x: np.unstack(x, axis=1), [A(2, 3)], "getitem")
case("matrix_transpose", np.matrix_transpose, [A(2, 3, 4)], "transpose")
case("meshgrid-xy", lambda x, y: np.meshgrid(x, y), [A(3), A(2)], "reshape broadcast_to")
case("meshgrid-ij-sparse", lambda x, y, z: np.meshgrid(x, y, z, indexing="ij", sparse=True),
     [A(2), A(3), A(2)], "reshape")
for _k in (1, 2, 3, -1):
    case(f"rot90-k{_k}", lambda m, k=_k: np.rot90(m, k), [A(2, 3)], "getitem")
case("rot90-axes", lambda m: np.rot90(m, 1, axes=(2, 0)), [A(2, 3, 4)], "getitem transpose")
case("kron", np.kron, [A(2, 3), A(2, 2)], "multiply reshape")
case("kron-ranks", np.kron, [A(3), A(2, 2)], "multiply reshape")
case("kron-0d", np.kron, [A(), A(2)], "multiply")
case("cross", np.cross, [A(4, 3), A(4, 3)], "multiply subtract concatenate")
case("linalg-cross", lambda a, b: np.linalg.cross(a, b, axis=0), [A(3, 2), A(3, 1)],
     "multiply subtract concatenate")
case("linalg-cross-complex", np.linalg.cross, [A(2, 3, dtype="complex128"), A(3)],
     "multiply subtract concatenate")
case("cross-broadcast-axes", lambda a, b: np.cross(a, b, axisa=0, axisb=1, axisc=0),
     [A(3, 2), A(2, 3)], "multiply subtract concatenate")
case("vsplit", lambda x: np.vsplit(x, 2), [A(4, 3)], "getitem")
case("hsplit", lambda x: np.hsplit(x, [1, 2]), [A(2, 4)], "getitem")
case("hsplit-1d", lambda x: np.hsplit(x, 2), [A(4)], "getitem")
case("dsplit", lambda x: np.dsplit(x, 2), [A(2, 1, 4)], "getitem")
case("diagflat", lambda x: np.diagflat(x, 1), [A(2, 2)], "einsum reshape")
case("ediff1d", lambda x, b: np.ediff1d(x, to_end=[9.0], to_begin=b), [A(2, 3), A(2)],
     "subtract concatenate")
for _mode in ("edge", "reflect", "symmetric", "wrap"):
    case(f"pad-{_mode}", lambda x, m=_mode: np.pad(x, ((1, 2), (4, 1)), mode=m), [A(2, 3)],
         "getitem")
case("pad-constant", lambda x: np.pad(x, 2), [A(2, 3)], "concatenate")
case("pad-constant-values", lambda x: np.pad(x, ((0, 1), (2, 1)),
                                             constant_values=((1.5, 2.0), (3.0, -1.0))),
     [A(2, 3)], "concatenate")
_DISPATCH = ("numpy dispatches np.pad on `array` only (np.select not on `default`), so a "
             "traced constant with plain arrays never reaches pycograd")
case("pad-constant-traced", lambda x, c: np.pad(x, (1, 2), constant_values=c), [A(3), A()],
     "concatenate broadcast_to", skip={"jvp_constants": _DISPATCH, "vmap_unmapped": _DISPATCH})
case("pad-wrap-wide", lambda x: np.pad(x, (5, 4), mode="wrap"), [A(3)], "getitem")
_IDX = np.array([[0, 1, 2], [2, 1, 0]])
case("choose", lambda x, y, z: np.choose(_IDX, [x, y, z]), [A(2, 3), A(3), A()], "where")
case("choose-clip-array", lambda c: np.choose(np.array([0, 3, -1]), c, mode="clip"),
     [A(3, 3)], "where getitem")
case("select", lambda x, y: np.select([x > 0.5, x < -1], [x, y * y], default=0.25),
     [A(2, 3), A(3)], "where greater less")
case("select-traced-default", lambda x, d: np.select([x > 0], [np.exp(x)], d), [A(3), A()],
     "where exp broadcast_to", skip={"jvp_constants": _DISPATCH, "vmap_unmapped": _DISPATCH})
case("scatter_add", lambda x, v: scatter_add(x, (np.array([0, 1, 0]), np.array([2, 0, 2])), v),
     [A(2, 3), A(3)], "scatter_add add reshape")
case("scatter_add-slice", lambda x, v: scatter_add(x, (slice(None), 1), v), [A(3, 2), A()],
     "scatter_add add broadcast_to")
case("scatter_set", lambda x, v: scatter_set(x, np.array([1, 0, 1]), v), [A(3, 2), A(3, 2)],
     "scatter_add where getitem")
case("scatter_set-mask", lambda x, v: scatter_set(x, np.array([[True, False], [False, True]]), v),
     [A(2, 2), A(2)], "scatter_add where")
case("gradient", np.gradient, [A(4, 5)], "subtract divide concatenate")
case("gradient-order2-axis", lambda x: np.gradient(x, 0.5, axis=1, edge_order=2), [A(3, 4)],
     "multiply add concatenate")
case("gradient-coords", lambda x: np.gradient(x, [0.0, 0.5, 1.5, 1.7], axis=0, edge_order=2),
     [A(4, 3)], "multiply add concatenate")
case("gradient-coords-order1", lambda x: np.gradient(x, np.array([0.0, 1.0, 1.5]), 2.0),
     [A(3, 2)], "multiply add concatenate")
case("trapezoid", lambda y, x: np.trapezoid(y, x), [A(2, 4), A(4)], "subtract sum multiply")
case("trapezoid-dx-axis0", lambda y: np.trapezoid(y, dx=0.5, axis=0), [A(3, 2)],
     "sum multiply add")

