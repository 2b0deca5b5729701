"""numpy parity for four breadth gaps, beyond the sweep's finite differences: exact values
and dtypes of nan-statistics and medians of complex inputs, complex ``geomspace``, and
reductions with ``where=`` / ``initial=`` (values, dtypes, numpy's own errors, exactly zero
gradient at masked-out elements, traced masks under vmap and eval_shape)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import pycograd as pg
import pycograd.numpy_api.construction
import pycograd.numpy_api.nan_functions
import pycograd.numpy_api.selection  # noqa: F401

RNG = np.random.default_rng(7)


def traced(f, *args):
    """``f``'s value computed on traced inputs (reverse mode)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value, _ = pg.vjp(f, *args)
    return value


def plain(f, *args):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return f(*args)


def same(got, want):
    """Equal values (NaNs in the same places, complex parts alike) and the same dtype."""
    assert np.result_type(got) == np.result_type(want), (np.result_type(got),
                                                         np.result_type(want))
    assert np.shape(got) == np.shape(want)
    np.testing.assert_array_equal(got, want)


def close(got, want):
    """Equal dtypes and shapes; values up to the rounding of a different summation order."""
    assert np.result_type(got) == np.result_type(want), (np.result_type(got),
                                                         np.result_type(want))
    assert np.shape(got) == np.shape(want)
    single = np.result_type(want) in (np.float32, np.complex64)
    np.testing.assert_allclose(got, want, rtol=1e-5 if single else 1e-12)


def _complex(shape, dtype="complex128"):
    z = RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)
    return z.astype(dtype)


def _with_nans(z):
    z = z.copy()
    z[0, 1] = complex(1.0, np.nan)
    z[1, -1] = complex(np.nan, 2.0)
    z[2, 0] = np.nan
    return z


# ---- 1. nan-statistics of complex inputs ------------------------------------------------------

NAN_STATS = {
    "nanvar": lambda z: np.nanvar(z, axis=1),
    "nanvar-ddof-keepdims": lambda z: np.nanvar(z, axis=0, ddof=1, keepdims=True),
    "nanstd": lambda z: np.nanstd(z),
    "nanstd-correction": lambda z: np.nanstd(z, axis=1, correction=1),
    "nanmean": lambda z: np.nanmean(z, axis=0),
    "nansum": lambda z: np.nansum(z, axis=1),
    "nanprod": lambda z: np.nanprod(z, axis=0),
    "nancumsum": lambda z: np.nancumsum(z, axis=1),
    "nancumprod": lambda z: np.nancumprod(z),
    "nanmax": lambda z: np.nanmax(z, axis=1),
    "nanmin": lambda z: np.nanmin(z),
    "nanmedian": lambda z: np.nanmedian(z, axis=1),
    "var": lambda z: np.var(z, axis=1),
    "std-keepdims": lambda z: np.std(z, axis=0, keepdims=True),
}


@pytest.mark.parametrize("dtype", ["complex128", "complex64"])
@pytest.mark.parametrize("name", NAN_STATS)
def test_nan_statistics_of_complex_match_numpy(name, dtype):
    f = NAN_STATS[name]
    z = _with_nans(_complex((4, 5), dtype))
    close(traced(f, z), plain(f, z))


@pytest.mark.parametrize("dtype, real", [("complex128", np.float64), ("complex64", np.float32)])
def test_complex_variances_are_real(dtype, real):
    z = _with_nans(_complex((4, 5), dtype))
    for f in (np.nanvar, np.nanstd, np.var, np.std):
        assert traced(lambda z, f=f: f(z, axis=1), z).dtype == real


def test_nanvar_of_complex_is_mean_squared_modulus():
    z = np.array([1 + 1j, np.nan, 3 - 1j, 2j])
    valid = z[~np.isnan(z)]
    want = np.mean(np.abs(valid - valid.mean()) ** 2)
    np.testing.assert_allclose(traced(np.nanvar, z), want, rtol=1e-14)
    (g,) = pg.grad(np.nanvar)(z)  # d/dz of mean |z - m|^2, stored as df/dx - i df/dy
    np.testing.assert_allclose(g[[0, 2, 3]], 2 * np.conj(valid - valid.mean()) / 3, rtol=1e-12)
    assert g[1] == 0


# ---- 2. median of complex inputs ------------------------------------------------------------

def _median_inputs():
    z = _complex((3, 4, 5))
    ties = np.round(z.real) + 1j * np.round(z.imag)  # ties in the real part: order by imag
    nans = z.copy()
    nans[0, 1, 2] = complex(1, np.nan)
    nans[1, :, 3] = complex(np.nan, 2)
    nans[2, 2, :] = np.nan
    return {"z": z, "ties": ties, "nans": nans, "complex64": nans.astype(np.complex64),
            "float16": RNG.standard_normal((3, 4, 5)).astype(np.float16),
            "int": RNG.integers(-5, 5, (3, 4, 5))}


MEDIAN_INPUTS = _median_inputs()
AXES = [None, 0, 2, (0, 2), (1, 2), (0, 1, 2)]


@pytest.mark.parametrize("name", MEDIAN_INPUTS)
@pytest.mark.parametrize("f", [np.median, np.nanmedian])
def test_median_matches_numpy_exactly(name, f):
    x = MEDIAN_INPUTS[name]
    for axis in AXES:
        for keepdims in (False, True):
            g = lambda x, a=axis, k=keepdims: f(x, axis=a, keepdims=k)  # noqa: E731
            same(traced(g, x), plain(g, x))
    for part in (x[0, 0, :4], x[2, 2], x[2]):  # even length, an all-NaN row, 2-d
        same(traced(f, part), plain(f, part))


def test_median_of_complex_sorts_lexicographically():
    z = np.array([2 + 0j, 1 + 5j, 1 - 5j, 3 + 0j, 1 + 0j])
    same(traced(np.median, z), np.complex128(1 + 5j))
    same(traced(np.median, z[:4]), np.median(z[:4]))


def test_median_of_complex_gradient_goes_to_the_middle_elements():
    z = np.array([2 + 1j, -1 + 0j, 5 - 2j, 0 + 3j, 1 + 0j])
    (g,) = pg.grad(lambda z: np.real(np.median(z)))(z)
    np.testing.assert_array_equal(g, [0, 0, 0, 0, 1])
    (g,) = pg.grad(lambda z: np.imag(np.median(z)))(z)
    np.testing.assert_array_equal(g, [0, 0, 0, 0, -1j])
    (g,) = pg.grad(lambda z: np.real(np.median(z)))(z[:4])  # 0+3j and 2+1j are the middle
    np.testing.assert_array_equal(g, [0.5, 0, 0, 0.5])


def test_nanmedian_of_complex_gradient_skips_nans():
    z = np.array([[2 + 1j, np.nan, 5 - 2j, 0 + 3j], [1j, 2j, 3j, np.nan]])
    (g,) = pg.grad(lambda z: np.sum(np.real(np.nanmedian(z, axis=1))))(z)
    np.testing.assert_array_equal(g, [[1, 0, 0, 0], [0, 1, 0, 0]])


@pytest.mark.parametrize("f", [lambda z: np.quantile(z, 0.3), lambda z: np.percentile(z, 40),
                               lambda z: np.nanquantile(z, [0.1, 0.5], axis=0),
                               lambda z: np.nanpercentile(z, 50)])
def test_quantiles_of_complex_are_refused_like_numpy(f):
    z = _complex((3, 4))
    with pytest.raises(TypeError, match="a must be an array of real numbers"):
        f(z)
    with pytest.raises(TypeError, match="a must be an array of real numbers"):
        pg.grad(lambda z: np.real(np.sum(f(z))))(z)


# ---- 3. geomspace with complex ends ------------------------------------------------------------

GEOMSPACE = [
    (1 + 1j, -3 + 2j, dict(num=5)),
    (1j, 8.0, dict(num=4, endpoint=False)),
    (-2.0, 3 - 1j, dict(num=6)),
    (np.complex64(1 + 1j), np.complex64(2 - 2j), dict(num=5)),
    (1 + 1j, 2 + 0j, dict(num=3, dtype=np.complex64)),
    (np.array([1 + 1j, 2j]), np.array([-1 + 0j, 4 + 4j]), dict(num=3, axis=1)),
    (1 + 1j, 2 + 0j, dict(num=1)),
    (1 + 1j, 2 + 0j, dict(num=0)),
    (-2.0, -7.0, dict(num=5)),
]


@pytest.mark.parametrize("start, stop, kw", GEOMSPACE)
def test_geomspace_complex_matches_numpy_exactly(start, stop, kw):
    start, stop = np.asarray(start), np.asarray(stop)
    want = np.geomspace(start, stop, **kw)
    same(traced(lambda a, b: np.geomspace(a, b, **kw), start, stop), want)


def test_geomspace_complex_is_a_log_spiral_with_exact_gradient():
    a, b = 1 + 1j, -2 + 3j
    loss = lambda a, b: np.real(np.sum(np.geomspace(a, b, 6) * (0.3 - 0.7j)))  # noqa: E731
    ga, gb = pg.grad(loss, argnums=(0, 1))(a, b)
    eps = 1e-6
    for g, bump in ((ga, lambda h: (a + h, b)), (gb, lambda h: (a, b + h))):
        dx = (loss(*bump(eps)) - loss(*bump(-eps))) / (2 * eps)
        dy = (loss(*bump(1j * eps)) - loss(*bump(-1j * eps))) / (2 * eps)
        np.testing.assert_allclose(g, dx - 1j * dy, rtol=1e-7)


@pytest.mark.parametrize("start, stop", [(0j, 2 + 0j), (1 + 1j, 0j), (1.0, 0.0)])
def test_geomspace_through_zero_is_numpys_error(start, stop):
    with pytest.raises(ValueError, match="Geometric sequence cannot include zero"):
        np.geomspace(start, stop, 3)
    with pytest.raises(ValueError, match="Geometric sequence cannot include zero"):
        pg.grad(lambda a, b: np.real(np.sum(np.geomspace(a, b, 3))), argnums=(0, 1))(
            np.asarray(start), np.asarray(stop))


# ---- 4. reductions with where= and initial= ----------------------------------------------------

M = np.array([[True, False, True, True], [False, False, False, False], [True, True, False, True]])
ROW = np.array([True, False, True, True])

WHERE = {
    "sum": lambda x: np.sum(x, where=M),
    "sum-axis-row": lambda x: np.sum(x, axis=1, where=ROW),
    "sum-initial": lambda x: np.sum(x, axis=0, initial=2.5, keepdims=True),
    "sum-where-initial": lambda x: np.sum(x, axis=1, where=M, initial=-1.0),
    "sum-dtype": lambda x: np.sum(x, axis=0, where=M, dtype=np.float32),
    "prod": lambda x: np.prod(x, axis=1, where=M),
    "prod-initial": lambda x: np.prod(x, initial=0.5, where=ROW),
    "mean": lambda x: np.mean(x, axis=1, where=M),
    "mean-flat": lambda x: np.mean(x, where=ROW),
    "mean-keepdims": lambda x: np.mean(x, axis=0, where=M, keepdims=True),
    "mean-none-selected": lambda x: np.mean(x, where=False),
    "var": lambda x: np.var(x, axis=1, where=M),
    "var-ddof": lambda x: np.var(x, axis=0, where=M, ddof=1),
    "std": lambda x: np.std(x, axis=1, where=ROW, keepdims=True),
    "var-mean-given": lambda x: np.var(x, axis=1, mean=np.mean(x, axis=1, keepdims=True)),
    "var-ddof-past-count": lambda x: np.var(x[:1, :2], ddof=3),
    "max": lambda x: np.max(x, axis=1, where=M, initial=-0.5),
    "amax-initial": lambda x: np.amax(x, axis=0, initial=0.25),
    "min": lambda x: np.min(x, where=M, initial=3.0),
    "amin": lambda x: np.amin(x, axis=1, where=ROW, initial=10.0, keepdims=True),
    "max-empty": lambda x: np.max(x[:, :0], axis=1, initial=3.0),
    "nansum": lambda x: np.nansum(x, axis=1, where=M, initial=1.0),
    "nanprod": lambda x: np.nanprod(x, where=ROW),
    "nanmean": lambda x: np.nanmean(x, axis=1, where=M),
    "nanvar": lambda x: np.nanvar(x, axis=0, where=M),
    "nanstd": lambda x: np.nanstd(x, axis=1, where=ROW, ddof=1),
    "nanmax-initial": lambda x: np.nanmax(x, axis=1, initial=0.5),
    "nanmin-where": lambda x: np.nanmin(x, axis=0, where=M, initial=1.0),
    "method-sum": lambda x: x.sum(axis=0, where=M),
    "method-mean": lambda x: x.mean(where=ROW),
    "method-max": lambda x: x.max(axis=1, where=M, initial=-9.0),
}


@pytest.mark.parametrize("dtype", ["float64", "float32", "complex128"])
@pytest.mark.parametrize("name", WHERE)
def test_where_reductions_match_numpy(name, dtype):
    f = WHERE[name]
    if dtype == "complex128" and ("max" in name or "min" in name):
        return  # ordering complex values is covered elsewhere; where= adds nothing there
    x = RNG.standard_normal((3, 4)).astype(dtype)
    if dtype == "complex128":
        x = x + 1j * RNG.standard_normal((3, 4))
    x[2, 2] = np.nan  # masked out by M
    if name.startswith("nan"):
        x[0, 2] = np.nan
    close(traced(f, x), plain(f, x))


@pytest.mark.parametrize("f", [
    lambda x: np.sum((x > 0).astype(int), initial=1.5),
    lambda x: np.sum(x > 0, axis=0, where=M, initial=3),
    lambda x: np.mean((x > 0).astype(np.int32), axis=1, where=M),
    lambda x: np.max((x * 10).astype(np.int16), axis=1, where=M, initial=-100),
    lambda x: np.mean(x.astype(np.float16), where=ROW),
])
def test_where_reduction_dtypes_of_integer_and_bool_inputs(f):
    x = RNG.standard_normal((3, 4))
    same(traced(f, x), plain(f, x))


@pytest.mark.parametrize("call", [
    lambda x: np.sum(x, where=np.array([1, 0, 1, 1])),  # an integer mask
    lambda x: np.sum(x, where=np.ones((2, 3, 4), bool)),  # a mask that does not broadcast
    lambda x: np.mean(x, axis=1, where=np.ones(3, bool)),
    lambda x: np.max(x, where=M),  # no identity: numpy asks for initial=
    lambda x: np.amin(x, axis=0, where=ROW),
    lambda x: np.nanmax(x, where=M),
    lambda x: np.sum(x, initial=[1.0, 2.0]),
    lambda x: np.any(x, where=np.ones(5, bool)),
])
def test_where_errors_are_numpys(call):
    x = RNG.standard_normal((3, 4))
    with pytest.raises(Exception) as want:
        call(x)
    with pytest.raises(type(want.value)) as got:
        pg.grad(lambda x: np.sum(np.real(call(x))))(x)
    assert str(got.value) == str(want.value)


@pytest.mark.parametrize("f, masked", [
    (lambda x: np.sum(x, axis=1, where=M), ~M),
    (lambda x: np.prod(x, axis=0, where=M), ~M),
    (lambda x: np.mean(x, where=M), ~M),
    (lambda x: np.var(x, axis=1, where=ROW), np.broadcast_to(~ROW, M.shape)),
    (lambda x: np.std(x, where=M, ddof=1), ~M),
    (lambda x: np.max(x, axis=1, where=M, initial=-50.0), ~M),
    (lambda x: np.nanmean(x, axis=0, where=M), ~M),
    (lambda x: np.nanvar(x, axis=1, where=M), ~M),
])
def test_masked_out_elements_get_exactly_zero_gradient(f, masked):
    x = RNG.standard_normal((3, 4))
    x[masked] = np.array([np.inf, -np.inf, np.nan] * 4)[:masked.sum()]
    with np.errstate(invalid="ignore"):
        (g,) = pg.grad(lambda x: np.sum(f(x)))(x)
        # the selected elements' gradient does not depend on the masked-out values
        (g0,) = pg.grad(lambda x: np.sum(f(np.where(masked, 0.0, x))))(x)
    np.testing.assert_array_equal(g[masked], 0.0)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g[~masked], g0[~masked], rtol=1e-12)


def test_where_sum_gradient_is_the_mask():
    x = RNG.standard_normal((3, 4))
    (g,) = pg.grad(lambda x: np.sum(x, where=M, initial=4.0))(x)
    np.testing.assert_array_equal(g, M.astype(float))
    _, t = pg.jvp(lambda x: np.mean(x, axis=1, where=ROW), (x,), (np.ones_like(x),))
    np.testing.assert_allclose(t, 1.0)


def test_traced_mask_under_grad_vmap_and_eval_shape():
    xs = RNG.standard_normal((5, 3, 4))

    def f(x):
        return np.mean(x, axis=1, where=np.logical_or(x > 0, ROW))
    loop = np.stack([f(x) for x in xs])
    np.testing.assert_allclose(pg.vmap(f)(xs), loop, rtol=1e-13)
    masks = xs > 0.3
    np.testing.assert_allclose(pg.vmap(lambda x, m: np.sum(x, axis=0, where=m))(xs, masks),
                               np.sum(xs, axis=1, where=masks), rtol=1e-13)
    (g,) = pg.grad(lambda x: np.sum(f(x)))(xs[0])
    m = np.logical_or(xs[0] > 0, ROW)
    np.testing.assert_allclose(g, m / m.sum(axis=1, keepdims=True), rtol=1e-13)
    out = pg.eval_shape(lambda x: np.var(x, axis=0, where=x > 0),
                        np.zeros((3, 4), np.float32))
    assert out.shape == (4,) and out.dtype == np.float32


def test_any_all_where():
    x = np.array([[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0]])
    for f in (lambda x: np.any(x, axis=1, where=M), lambda x: np.all(x, axis=0, where=M),
              lambda x: np.all(x, where=False), lambda x: np.any(x > 0.5, where=ROW)):
        g = lambda x, f=f: x[0, 0] * 0 + f(x)  # noqa: E731  (a float result, for vjp)
        same(traced(g, x), plain(g, x))
        same(pg.vmap(f)(np.stack([x, 1 - x])), np.stack([f(x), f(1 - x)]))
