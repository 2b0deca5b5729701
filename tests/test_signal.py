"""Convolution and correlation beyond the sweep: numpy's and scipy's values for every mode
and operand order, their errors, the FFT path, and per-example kernels under vmap."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import pycograd
from pycograd.core.errors import NoRuleError
from pycograd.numpy_api import signal as S

RNG = np.random.default_rng(0)


def _pair(n: int, m: int, complex_: bool) -> tuple:
    a, v = RNG.normal(size=n), RNG.normal(size=m)
    if complex_:
        a, v = a + 1j * RNG.normal(size=n), v - 1j * RNG.normal(size=m)
    return a, v


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_numpy_values_every_mode_and_order(complex_):
    for n, m, mode in itertools.product([1, 2, 5, 6], [1, 3, 4, 7], S.MODES):
        a, v = _pair(n, m, complex_)
        for ours, theirs in [(S.convolve, np.convolve), (S.correlate, np.correlate)]:
            np.testing.assert_allclose(ours(a, v, mode), theirs(a, v, mode), atol=1e-12,
                                       err_msg=f"{theirs.__name__} {n} {m} {mode}")


def test_scipy_values_nd():
    ss = pytest.importorskip("scipy.signal")
    for sa, sb in [((4, 5), (2, 3)), ((2, 3), (4, 5)), ((5, 2), (2, 4)), ((3, 4, 5), (2, 2, 3))]:
        a = RNG.normal(size=sa) + 1j * RNG.normal(size=sa)
        b = RNG.normal(size=sb)
        for mode in S.MODES:
            for ours, theirs in [(S.sp_convolve, ss.convolve), (S.sp_correlate, ss.correlate),
                                 (S.sp_fftconvolve, ss.fftconvolve)]:
                try:
                    want = theirs(a, b, mode)
                except ValueError:
                    with pytest.raises(ValueError, match="at least as large"):
                        ours(a, b, mode)
                    continue
                np.testing.assert_allclose(ours(a, b, mode), want, atol=1e-12)


def test_fft_path_matches_direct(monkeypatch):
    """Large problems go through FFTs; values and gradients equal the direct method's."""
    import pycograd.ops.signal as PS

    a, v = RNG.normal(size=9000), RNG.normal(size=4001)

    def loss(a):
        return np.sum(np.convolve(a, v, "valid") ** 2)

    assert 5000 * 4001 > PS._DIRECT_LIMIT  # this problem takes the FFT path
    np.testing.assert_allclose(S.convolve(a, v, "valid"), np.convolve(a, v, "valid"),
                               atol=1e-9)
    by_fft = pycograd.grad(loss, argnums=0)(a)
    monkeypatch.setattr(PS, "_DIRECT_LIMIT", 1 << 40)
    np.testing.assert_allclose(by_fft, pycograd.grad(loss, argnums=0)(a), rtol=1e-9,
                               atol=1e-7)


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_fft_path_second_order(monkeypatch, complex_):
    """The FFT path forced on a small problem: the same hvp as the direct method."""
    import pycograd.ops.signal as PS

    a, v = _pair(7, 3, complex_)
    t = RNG.normal(size=7)

    def loss(a):
        return np.sum(np.abs(np.convolve(a, v, "full") * np.sin(a[0])) ** 2)

    def hvp():
        return pycograd.jvp(pycograd.grad(loss, argnums=0), (a,), (t,))[1]

    direct = hvp()
    monkeypatch.setattr(PS, "_DIRECT_LIMIT", 0)
    np.testing.assert_allclose(hvp(), direct, rtol=1e-10, atol=1e-10)


def test_untraced_scipy_calls_are_scipy():
    ss = pytest.importorskip("scipy.signal")

    def f(a, v):
        return ss.convolve(a, v, "same")

    a, v = RNG.normal(size=(3, 4)).astype(np.int64), np.ones((2, 2), dtype=np.int64)
    out = f(a, v)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, ss.convolve(a, v, "same"))


def test_per_example_kernels_under_vmap():
    xs, ks = RNG.normal(size=(4, 6)), RNG.normal(size=(4, 3))

    def loss(x, k):
        return np.sum(np.convolve(x, k, "same") ** 2)

    got = pycograd.vmap(pycograd.grad(loss, argnums=(0, 1)))(xs, ks)
    for i in range(4):
        want = pycograd.grad(loss, argnums=(0, 1))(xs[i], ks[i])
        for g, w in zip(got, want):
            np.testing.assert_allclose(g[i], w, atol=1e-12)


def test_errors_name_the_problem():
    ss = pytest.importorskip("scipy.signal")
    x = RNG.normal(size=5)
    with pytest.raises(ValueError, match="mode must be one of"):
        pycograd.grad(lambda x: np.sum(np.convolve(x, x, "wide")))(x)
    with pytest.raises(ValueError, match="same dimensionality"):
        pycograd.grad(lambda x: np.sum(ss.convolve(x, np.ones((2, 2)))))(x)
    with pytest.raises(ValueError, match="at least as large"):
        pycograd.grad(lambda x: np.sum(ss.convolve(np.ones((2, 6)), x[None, :4].T,
                                                   "valid")))(x)
    with pytest.raises(NoRuleError, match="boundary='wrap'"):
        pycograd.grad(lambda x: np.sum(ss.convolve2d(x[None], np.ones((1, 2)),
                                                     boundary="wrap")))(x)
    with pytest.raises(ValueError, match="cannot be empty"):
        pycograd.grad(lambda x: np.sum(np.convolve(x, x[:0])))(x)


def test_eval_shape():
    """np.convolve compares the lengths (the longer is the signal), so it needs concrete
    ones; scipy's full mode stays symbolic."""
    ss = pytest.importorskip("scipy.signal")
    out = pycograd.eval_shape(lambda x: np.convolve(x, np.ones(3), "same"),
                              pycograd.ShapeDtypeStruct((7,), np.float32))
    assert (out.shape, out.dtype) == ((7,), np.float64)
    out = pycograd.eval_shape(lambda x: ss.convolve(x, np.ones(3)),
                              pycograd.ShapeDtypeStruct(("n",), np.float64))
    assert str(out.shape[0]) == "n + 2"
