"""Targeted checks for the numpy breadth modules that a finite-difference sweep cannot make:
exact gradients at zeros and ties, NaN handling, index-valued results under each
transform, numpy parity of rearrangements, and the errors for what cannot be traced."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import pycograd as pg
import pycograd.numpy_api.nan_functions  # noqa: F401
import pycograd.numpy_api.selection  # noqa: F401
from pycograd.core.errors import NoRuleError
from pycograd.numpy_api.construction import c_, r_, scatter_add, scatter_set

RNG = np.random.default_rng(0)


def _grad(f, *args):
    return pg.grad(f, argnums=tuple(range(len(args))))(*args)


# ---- cumprod: exact at zeros ---------------------------------------------------------------

def _cumprod_grad_brute(x, w):
    """d/dx_j sum_i w_i prod_{k<=i} x_k, term by term."""
    g = np.zeros_like(x)
    for j in range(len(x)):
        for i in range(j, len(x)):
            g[j] += w[i] * np.prod([x[k] for k in range(i + 1) if k != j])
    return g


@pytest.mark.parametrize("x", [[2.0, 0.0, 3.0, 0.0, 5.0], [0.0, 1.5, -2.0], [1.0, 2.0, 0.0],
                               [0.5, -1.5, 2.0]])
def test_cumprod_gradient_exact_with_zeros(x):
    x = np.array(x)
    w = RNG.standard_normal(len(x))
    (g,) = _grad(lambda x: np.sum(np.cumprod(x) * w), x)
    np.testing.assert_allclose(g, _cumprod_grad_brute(x, w), rtol=1e-13, atol=1e-13)
    _, t = pg.jvp(lambda x: np.sum(np.cumprod(x) * w), (x,), (np.ones_like(x),))
    np.testing.assert_allclose(t, g.sum(), rtol=1e-13, atol=1e-13)


def test_cumprod_hessian_with_zeros():
    """The Hessian of sum(w * cumprod(x)) at a point with two zeros, against brute force
    differences of the exact gradient."""
    x = np.array([1.5, 0.0, -2.0, 0.0])
    w = RNG.standard_normal(4)
    h = pg.hessian(lambda x: np.sum(np.cumprod(x) * w))(x)
    eps = 1e-6
    fd = np.stack([(_cumprod_grad_brute(x + eps * e, w) - _cumprod_grad_brute(x - eps * e, w))
                   / (2 * eps) for e in np.eye(4)])
    np.testing.assert_allclose(h, fd, atol=1e-7)


# ---- ties and NaNs -----------------------------------------------------------------------------

def test_max_ties_split_evenly():
    (g,) = _grad(np.max, np.array([1.0, 3.0, 3.0]))
    np.testing.assert_array_equal(g, [0.0, 0.5, 0.5])
    (g,) = _grad(lambda x: np.sum(np.amin(x, axis=0)), np.array([[1.0, 2.0], [1.0, 1.0]]))
    np.testing.assert_array_equal(g, [[0.5, 0.0], [0.5, 1.0]])
    (g,) = _grad(np.ptp, np.array([2.0, 2.0, -1.0, 0.0]))
    np.testing.assert_array_equal(g, [0.5, 0.5, -1.0, 0.0])


def test_median_subgradient_at_ties():
    (g,) = _grad(np.median, np.array([1.0, 2.0, 2.0, 3.0]))
    np.testing.assert_array_equal(g, [0.0, 0.5, 0.5, 0.0])
    (g,) = _grad(np.median, np.array([3.0, 1.0, 2.0]))
    np.testing.assert_array_equal(g, [0.0, 0.0, 1.0])


@pytest.mark.parametrize("f", [np.nansum, np.nanmean, np.nanvar, np.nanstd, np.nanmax, np.nanmin,
                               np.nanmedian, np.nanprod,
                               lambda x: np.nanpercentile(x, 30),
                               lambda x: np.nancumsum(x)[-1], lambda x: np.nancumprod(x)[-1]])
def test_nan_entries_get_zero_gradient(f):
    x = np.array([0.5, np.nan, -1.5, 2.0, np.nan])
    (g,) = _grad(f, x)
    assert np.all(np.isfinite(g))
    np.testing.assert_array_equal(g[[1, 4]], 0.0)
    (ref,) = _grad(f, x[[0, 2, 3]])
    np.testing.assert_allclose(g[[0, 2, 3]], ref, rtol=1e-12)


@pytest.mark.parametrize("f", [np.nanmax, np.nanmin, np.nanmean, np.nanmedian,
                               lambda x, axis: np.nanquantile(x, 0.2, axis=axis)])
def test_all_nan_slice_gives_nan_and_zero_gradient(f):
    x = np.array([[np.nan, np.nan], [1.0, 2.0]])
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = f(x, axis=1)
    with np.errstate(all="ignore"):
        v, _ = pg.vjp(lambda x: f(x, axis=1), x)
        (g,) = _grad(lambda x: np.sum(np.nan_to_num(f(x, axis=1))), x)
    np.testing.assert_array_equal(v, expected)
    np.testing.assert_array_equal(g[0], 0.0)
    assert np.all(np.isfinite(g))


def test_nanargmax_all_nan_slice_is_an_error():
    with pytest.raises(ValueError, match="All-NaN"):
        _grad(lambda x: np.sum(x * np.nanargmax(x, axis=1)[:, None]),
              np.array([[np.nan, np.nan], [1.0, 2.0]]))


def test_nansum_all_nan_is_zero():
    (g,) = _grad(lambda x: np.nansum(x, axis=0) * 2, np.array([np.nan, np.nan]))
    np.testing.assert_array_equal(g, 0.0)


# ---- index-valued functions under every transform ------------------------------------------

NO_GRAD = {
    "argsort": lambda x: np.argsort(x, axis=-1),
    "argmax": lambda x: np.argmax(x, axis=1, keepdims=True),
    "argmin-flat": np.argmin,
    "argpartition": lambda x: np.argpartition(x, 1, axis=-1),
    "all": lambda x: np.all(x > 0, axis=0),
    "any": lambda x: np.any(x, axis=1, keepdims=True),
    "searchsorted": lambda x: np.searchsorted(np.sort(x[0]), x),
    "nanargmax": lambda x: np.nanargmax(x, axis=0),
}


@pytest.mark.parametrize("name", NO_GRAD)
def test_index_functions_plain_under_grad_jvp_vmap_eval_shape(name):
    f = NO_GRAD[name]
    x = RNG.standard_normal((3, 4))
    seen = []

    def loss(x):
        r = f(x)
        seen.append(r)
        return np.sum(x * r)
    (g,) = _grad(loss, x)
    assert isinstance(seen[0], (np.ndarray, np.generic))
    assert not np.issubdtype(seen[0].dtype, np.floating)
    np.testing.assert_array_equal(seen[0], f(x))
    np.testing.assert_array_equal(g, np.broadcast_to(f(x), x.shape))
    out, t = pg.jvp(f, (x,), (np.ones_like(x),))
    np.testing.assert_array_equal(out, f(x))
    xs = RNG.standard_normal((2, 3, 4))
    np.testing.assert_array_equal(pg.vmap(f)(xs), np.stack([f(xi) for xi in xs]))
    s = pg.eval_shape(f, pg.ShapeDtypeStruct((3, 4)))
    assert (s.shape, s.dtype) == (f(x).shape, f(x).dtype)


def test_partition_matches_numpy_exactly():
    for _ in range(5):
        x = RNG.integers(0, 4, (3, 7)).astype(float)
        for kth in (0, 3, (1, 5)):
            v, _ = pg.vjp(lambda x, kth=kth: np.partition(x, kth, axis=1), x)
            np.testing.assert_array_equal(v, np.partition(x, kth, axis=1))


def test_data_dependent_index_lists():
    x = np.array([[0.0, 1.5], [-2.0, 0.0]])
    (g,) = _grad(lambda x: np.sum(x[tuple(np.argwhere(x).T)]) + np.sum(np.flatnonzero(x)), x)
    np.testing.assert_array_equal(g, x != 0)
    with pytest.raises(NoRuleError, match="flatnonzero"):
        pg.vmap(np.flatnonzero)(x)
    with pytest.raises(NoRuleError):
        pg.vmap(np.nonzero)(x)


# ---- arguments that decide positions must be plain --------------------------------------------

def test_traced_selector_arguments_refused():
    x = RNG.standard_normal(5)
    with pytest.raises(NoRuleError, match="quantile"):
        _grad(lambda q: np.quantile(x, q), np.array(0.3))
    with pytest.raises(NoRuleError, match="gradient"):
        _grad(lambda h: np.sum(np.gradient(x, h)), np.array(0.5))
    with pytest.raises(ValueError, match="range"):
        np.percentile(pg.Var(x), 120)


@pytest.mark.parametrize("call", [
    lambda x: np.put(x, [0], 1.0), lambda x: np.copyto(x, 1.0),
    lambda x: np.putmask(x, x > 0, 1.0), lambda x: np.fill_diagonal(x, 0.0),
    lambda x: np.put_along_axis(x, np.zeros((1, 2), int), 1.0, 0)])
def test_in_place_writers_refused(call):
    with pytest.raises(NoRuleError, match="in place"):
        _grad(lambda x: np.sum(call(x)), np.ones((2, 2)))


# ---- functional scatters ----------------------------------------------------------------------

def test_scatter_add_is_add_at():
    x, v = RNG.standard_normal((3, 4)), RNG.standard_normal(5)
    idx = (np.array([0, 2, 0, 0, 1]), np.array([1, 3, 1, 1, 0]))
    expected = x.copy()
    np.add.at(expected, idx, v)
    np.testing.assert_allclose(scatter_add(x, idx, v), expected)
    gx, gv = _grad(lambda x, v: np.sum(scatter_add(x, idx, v) ** 2), x, v)
    np.testing.assert_allclose(gv, 2 * expected[idx])
    np.testing.assert_allclose(gx, 2 * expected)


def test_scatter_set_last_write_wins():
    x, v = RNG.standard_normal(5), RNG.standard_normal(4)
    idx = np.array([3, 1, 3, 0])
    expected = x.copy()
    expected[idx] = v
    np.testing.assert_array_equal(scatter_set(x, idx, v), expected)
    gx, gv = _grad(lambda x, v: np.sum(scatter_set(x, idx, v) * np.arange(1.0, 6.0)), x, v)
    np.testing.assert_array_equal(gx, [0, 0, 3, 0, 5])
    np.testing.assert_array_equal(gv, [0, 2, 4, 1])


# ---- parity with numpy --------------------------------------------------------------------------

@pytest.mark.parametrize("mode,width", list(itertools.product(
    ["constant", "edge", "reflect", "symmetric", "wrap"], [1, (0, 4), ((3, 0), (2, 7), (1, 1))])))
def test_pad_matches_numpy(mode, width):
    x = RNG.standard_normal((2, 3, 2))
    v, _ = pg.vjp(lambda x: np.pad(x, width, mode=mode), x)
    np.testing.assert_array_equal(v, np.pad(x, width, mode=mode))
    (g,) = _grad(lambda x: np.sum(np.pad(x, width, mode=mode)), x)
    counts = np.pad(np.arange(x.size).reshape(x.shape), width, mode=mode)
    expected = np.bincount(counts.ravel(), minlength=x.size).reshape(x.shape)
    if mode == "constant":
        expected = np.ones_like(x)
    np.testing.assert_array_equal(g, expected)


def test_pad_refuses_what_it_cannot_trace():
    with pytest.raises(NoRuleError, match="linear_ramp"):
        _grad(lambda x: np.sum(np.pad(x, 1, mode="linear_ramp")), np.ones(3))
    with pytest.raises(NoRuleError, match="odd"):
        _grad(lambda x: np.sum(np.pad(x, 1, mode="reflect", reflect_type="odd")), np.ones(3))


def test_linspace_gradient_and_options():
    (ga, gb) = _grad(lambda a, b: np.sum(np.linspace(a, b, 5) * np.arange(5)), np.array(1.0),
                     np.array(3.0))
    t = np.linspace(0, 1, 5)
    np.testing.assert_allclose([ga, gb], [np.sum((1 - t) * np.arange(5)),
                                          np.sum(t * np.arange(5))])
    for kw in (dict(num=0), dict(num=1), dict(num=4, endpoint=False), dict(num=3, dtype=int),
               dict(num=3, dtype=np.float32)):
        v, _ = pg.vjp(lambda a, kw=kw: np.linspace(a, 4.0, **kw), np.array(-1.5))
        e = np.linspace(-1.5, 4.0, **kw)
        assert v.dtype == e.dtype and v.shape == e.shape
        np.testing.assert_array_equal(v, e)


def test_cross_with_two_component_vectors():
    a, b = RNG.standard_normal((4, 2)), RNG.standard_normal((4, 2))
    with pytest.warns(DeprecationWarning):
        expected = np.cross(a, b)
    with pytest.warns(DeprecationWarning):
        expected3 = np.cross(a, b[0, :2].tolist() + [0.5])
    np.testing.assert_allclose(pg.vjp(np.cross, a, b)[0], expected)
    np.testing.assert_allclose(pg.vjp(lambda a: np.cross(a, np.r_[b[0], 0.5]), a)[0], expected3)
    ga, gb = _grad(lambda a, b: np.sum(np.cross(a, b)), a, b)
    np.testing.assert_allclose(ga, np.stack([b[:, 1], -b[:, 0]], -1))


def test_nan_to_num_defaults_and_dtype():
    x = np.array([np.nan, np.inf, -np.inf, 1.5], dtype=np.float32)
    v, _ = pg.vjp(np.nan_to_num, x)
    assert v.dtype == np.float32
    np.testing.assert_array_equal(v, np.nan_to_num(x))
    (g,) = _grad(lambda x: np.sum(np.nan_to_num(x) * 0), x)
    assert g.dtype == np.float32


def test_sinc_second_derivative_at_zero():
    d2 = pg.grad(pg.grad(np.sinc))(0.0)
    np.testing.assert_allclose(d2, -np.pi ** 2 / 3)


# ---- r_ / c_ over traced pieces -----------------------------------------------------------------

@pytest.mark.parametrize("build", [
    lambda m, x: m.r_[x, 0.5, x], lambda m, x: m.r_[x, 1:4], lambda m, x: m.c_[x, x * 2],
    lambda m, x: m.r_["0,2", x, x], lambda m, x: m.c_[x, 0:3], lambda m, x: m.r_["-1,2,0", x, x],
    lambda m, x: m.r_[x.astype(np.float32), 2.0], lambda m, x: m.r_[0:1:3j, x]])
def test_index_concatenators_match_numpy(build):
    class Mine:
        pass
    mine = Mine()
    mine.r_, mine.c_ = r_, c_
    x = RNG.standard_normal(3)
    v, _ = pg.vjp(lambda x: build(mine, x), x)
    e = build(np, x)
    assert v.shape == e.shape and v.dtype == e.dtype
    np.testing.assert_array_equal(v, e)
    (g,) = _grad(lambda x: np.sum(build(mine, x)), x)
    assert np.all(g >= 1)
