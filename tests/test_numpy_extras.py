"""np.cov / np.corrcoef, the np.poly* family and np.roots, np.interp and np.unwrap on traced
values: numpy's values, dtypes, argument handling and errors (beyond what the sweep's
random cases reach), gradients against closed forms, and the refusals."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import pycograd
from pycograd import DataDependentShapeError, NoRuleError, grad, vjp, vmap

RNG = np.random.default_rng(7)
M = RNG.random((3, 5))
Y2 = RNG.random((2, 5))
AW = RNG.random(5) + 0.2
FW = np.array([1, 2, 0, 3, 1])
P = np.array([1.5, -0.5, 2.0, 0.7])
XQ = RNG.random((2, 4)) * 5 - 0.5
XP = np.array([0.0, 0.4, 1.5, 2.0, 3.1, 4.0])
FP = RNG.standard_normal(6)
XX = np.linspace(0, 1, 7) + RNG.random(7) * 0.05
YY = RNG.random(7)
WRAPPED = np.angle(np.exp(1j * np.cumsum(RNG.standard_normal((2, 8)) * 2, axis=1)))
F32 = np.float32

# (id, function, traced arguments): numpy's result, or numpy's exception, is the reference
CASES = [
    ("cov", lambda m: np.cov(m), [M]),
    ("cov-dtype32", lambda m: np.cov(m, dtype=F32), [M]),
    ("cov-float32-in", lambda m: np.cov(m.astype(F32)), [M]),
    ("cov-y", lambda m, y: np.cov(m, y), [M, Y2]),
    ("cov-y-columns", lambda m, y: np.cov(m, y, rowvar=False), [M.T, Y2.T]),
    ("cov-1d", lambda m: np.cov(m), [M[0]]),
    ("cov-0d", lambda m: np.cov(m), [M[0, 0]]),
    ("cov-empty", lambda m: np.cov(m[:0]), [M]),
    ("cov-too-many-ddof", lambda m: np.cov(m, ddof=7), [M]),
    ("cov-fweights", lambda m: np.cov(m, fweights=FW), [M]),
    ("cov-fweights-traced", lambda m, f: np.cov(m, fweights=f), [M, FW.astype(float)]),
    ("cov-aweights-traced", lambda m, a: np.cov(m, aweights=a), [M, AW]),
    ("cov-both-ddof0", lambda m, a: np.cov(m, fweights=FW, aweights=a, ddof=0), [M, AW]),
    ("cov-both-dtype32", lambda m, a: np.cov(m, fweights=FW, aweights=a, dtype=F32), [M, AW]),
    ("cov-complex", lambda m: np.cov(m * (1 + 2j) + 1j * m[::-1]), [M]),
    ("cov-complex64", lambda m: np.cov(m.astype(np.complex64)), [M]),
    ("cov-err-ddof", lambda m: np.cov(m, ddof=1.5), [M]),
    ("cov-err-3d", lambda m: np.cov(m[None]), [M]),
    ("cov-err-fweights", lambda m, f: np.cov(m, fweights=f), [M, FW + 0.5]),
    ("cov-err-negative", lambda m, f: np.cov(m, fweights=f), [M, FW - 1.0]),
    ("cov-err-length", lambda m, a: np.cov(m, aweights=a[:3]), [M, AW]),
    ("cov-err-2d-weights", lambda m, a: np.cov(m, aweights=a[None]), [M, AW]),
    ("cov-err-zero-sum", lambda m, a: np.cov(m, aweights=0 * a), [M, AW]),
    ("corrcoef", lambda m: np.corrcoef(m), [M]),
    ("corrcoef-pair", lambda m: np.corrcoef(m[0], m[1]), [M]),
    ("corrcoef-1d", lambda m: np.corrcoef(m), [M[0]]),
    ("corrcoef-constant-row", lambda m: np.corrcoef(np.stack([m[0], 0 * m[1]])), [M]),
    ("corrcoef-complex", lambda m: np.corrcoef(m * (1 + 2j) + 1j * m[::-1]), [M]),
    ("corrcoef-dtype32", lambda m: np.corrcoef(m, rowvar=False, dtype=F32), [M]),
    ("polyval", lambda p, x: np.polyval(p, x), [P, XQ]),
    ("polyval-float32-x", lambda p, x: np.polyval(p, x.astype(F32)), [P, XQ]),
    ("polyval-float32-p", lambda p: np.polyval(p.astype(F32), 2.0), [P]),
    ("polyval-rows", lambda p: np.polyval(p.reshape(2, 2), F32([2.0, 1.0])), [P]),
    ("polyval-empty", lambda p, x: np.polyval(p[:0], x), [P, XQ]),
    ("polyval-err-0d", lambda p: np.polyval(p[0], 2.0), [P]),
    ("polyder", lambda p: np.polyder(p), [P]),
    ("polyder-0", lambda p: np.polyder(p, 0), [P]),
    ("polyder-past-degree", lambda p: np.polyder(p, 6), [P]),
    ("polyder-float32", lambda p: np.polyder(p.astype(F32), 2), [P]),
    ("polyder-err-negative", lambda p: np.polyder(p, -1), [P]),
    ("polyder-err-0d", lambda p: np.polyder(p[0]), [P]),
    ("polyint", lambda p: np.polyint(p, 3), [P]),
    ("polyint-k", lambda p: np.polyint(p, 2, k=[1.0, 2.0]), [P]),
    ("polyint-k-scalar", lambda p: np.polyint(p, 2, k=3.0), [P]),
    ("polyint-k-traced", lambda p, k: np.polyint(p, 3, k=k), [P, P[:1]]),
    ("polyint-complex64", lambda p: np.polyint(p.astype(np.complex64)), [P]),
    ("polyint-err-k", lambda p: np.polyint(p, 3, k=[1.0, 2.0]), [P]),
    ("polyadd", lambda a, b: np.polyadd(a, b), [P, P[:2]]),
    ("polyadd-scalar", lambda a: np.polyadd(a[0], [1, 2]), [P]),
    ("polysub-float32", lambda a, b: np.polysub(b, a.astype(F32)), [P, P[:2]]),
    ("polymul", lambda a, b: np.polymul(a, b), [P, P[:2]]),
    ("polymul-leading-zeros", lambda a, b: np.polymul(a * np.array([0, 0, 1, 1]), b), [P, P]),
    ("polymul-all-zero", lambda a, b: np.polymul(0 * a, b), [P, P[:3]]),
    ("polymul-err-2d", lambda a: np.polymul(a.reshape(2, 2), a), [P]),
    ("vander", lambda x: np.vander(x), [XX[:4]]),
    ("vander-increasing", lambda x: np.vander(x, 3, increasing=True), [XX]),
    ("vander-0-columns", lambda x: np.vander(x, 0), [XX]),
    ("vander-float32", lambda x: np.vander(x.astype(F32), 4), [XX]),
    ("vander-err-2d", lambda x: np.vander(x[None]), [XX]),
    ("polyfit", lambda x, y: np.polyfit(x, y, 2), [XX, YY]),
    ("polyfit-columns", lambda x, y: np.polyfit(x, y, 3), [XX, RNG.random((7, 2))]),
    ("polyfit-weights", lambda x, y, w: np.polyfit(x, y, 2, w=w), [XX, YY, AW[:1] + XX]),
    ("polyfit-float32", lambda x, y, w: np.polyfit(x.astype(F32), y.astype(F32), 2, w=w),
     [XX, YY, XX + 0.5]),
    ("polyfit-cov", lambda x, y: np.polyfit(x, y, 2, cov=True), [XX, YY]),
    ("polyfit-cov-unscaled", lambda x, y: np.polyfit(x, y, 1, cov="unscaled"), [XX, YY]),
    ("polyfit-cov-columns", lambda x, y: np.polyfit(x, y, 1, cov=True),
     [XX, RNG.random((7, 3))]),
    ("polyfit-full", lambda x, y: np.polyfit(x, y, 2, rcond=1e-3, full=True)[:2], [XX, YY]),
    ("polyfit-err-deg", lambda x, y: np.polyfit(x, y, -1), [XX, YY]),
    ("polyfit-err-length", lambda x, y: np.polyfit(x, y[:3], 1), [XX, YY]),
    ("polyfit-err-weights", lambda x, y: np.polyfit(x, y, 1, w=x[:2]), [XX, YY]),
    ("polyfit-err-cov", lambda x, y: np.polyfit(x[:3], y[:3], 2, cov=True), [XX, YY]),
    ("roots", lambda p: np.roots(p), [P]),
    ("roots-real", lambda p: np.roots(p[0] * np.array([1.0, -6.0, 11.0, -6.0])), [P]),
    ("roots-stripped", lambda p: np.roots(p * np.array([0.0, 1, 1, 0])), [P]),
    ("roots-all-zero", lambda p: np.roots(0 * p), [P]),
    ("roots-constant", lambda p: np.roots(p[:1]), [P]),
    ("roots-float32", lambda p: np.roots(p.astype(F32)), [P]),
    ("roots-complex", lambda p: np.roots(p * (1 + 1j)), [P]),
    ("roots-err-2d", lambda p: np.roots(p.reshape(2, 2)), [P]),
    ("interp", lambda x, xp, fp: np.interp(x, xp, fp), [XQ, XP, FP]),
    ("interp-at-knots", lambda xp, fp: np.interp(xp, xp, fp), [XP, FP]),
    ("interp-left-right", lambda x, fp: np.interp(x, XP, fp, left=-5, right=F32(7)), [XQ, FP]),
    ("interp-complex", lambda x, fp: np.interp(x, XP, fp * (1 + 2j), left=1j), [XQ, FP]),
    ("interp-float32", lambda x, xp, fp: np.interp(x.astype(F32), xp.astype(F32),
                                                   fp.astype(F32)), [XQ, XP, FP]),
    ("interp-period", lambda x, fp: np.interp(x, XP, fp, period=3), [XQ, FP]),
    ("interp-negative-period", lambda x, xp: np.interp(x, xp, FP, period=-2.5), [XQ, XP]),
    ("interp-scalar", lambda x, fp: np.interp(x[0, 0], XP, fp), [XQ, FP]),
    ("interp-one-point", lambda x, fp: np.interp(x, XP[:1], fp[:1], left=2.0), [XQ, FP]),
    ("interp-nan", lambda x, fp: np.interp(x * np.nan, XP, fp), [XQ, FP]),
    ("interp-repeated-xp", lambda fp: np.interp(np.array([0.0, 1.0, 2.0, 3.0, 3.5]),
                                                np.array([0.0, 1, 1, 2, 3, 3]), fp, right=9), [FP]),
    ("interp-infinite-fp", lambda fp: np.interp(np.array([1.0, 1.5, 2.0, 2.5, 3.0]),
                                                np.array([1.0, 2, 2.5, 3]),
                                                fp[:4] * np.array([np.inf, np.inf, 1, -np.inf])),
     [np.abs(FP) + 1]),
    ("interp-err-period", lambda x, fp: np.interp(x, XP, fp, period=0), [XQ, FP]),
    ("interp-err-empty", lambda x, fp: np.interp(x, XP[:0], fp[:0]), [XQ, FP]),
    ("interp-err-length", lambda x, fp: np.interp(x, XP, fp[1:]), [XQ, FP]),
    ("interp-err-2d", lambda x, fp: np.interp(x, XP[None], fp), [XQ, FP]),
    ("interp-err-0d", lambda x, fp: np.interp(x, XP[0], fp[0]), [XQ, FP]),
    ("interp-err-complex-left", lambda x, fp: np.interp(x, XP, fp, left=1j), [XQ, FP]),
    ("interp-err-list-left", lambda x, fp: np.interp(x, XP, fp, left=[1.0]), [XQ, FP]),
    ("unwrap", lambda p: np.unwrap(p), [WRAPPED]),
    ("unwrap-axis0", lambda p: np.unwrap(p, axis=0), [WRAPPED]),
    ("unwrap-discont", lambda p: np.unwrap(p, discont=4.0), [WRAPPED]),
    ("unwrap-degrees", lambda p: np.unwrap(p * 50, period=360), [WRAPPED]),
    ("unwrap-float32", lambda p: np.unwrap(p.astype(F32)), [WRAPPED]),
    ("unwrap-float32-strong-period", lambda p: np.unwrap(p.astype(F32), period=np.float64(6)),
     [WRAPPED]),
    ("unwrap-integers", lambda p: np.unwrap(np.round(p * 3).astype(int), period=6), [WRAPPED]),
    ("unwrap-integers-odd", lambda p: np.unwrap(np.round(p * 3).astype(int), period=7),
     [WRAPPED]),
    ("unwrap-err-0d", lambda p: np.unwrap(p[0, 0]), [WRAPPED]),
]


def _run(f, args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return f(*args), None
        except Exception as e:  # noqa: BLE001  (the reference may be any of numpy's errors)
            return None, e


@pytest.mark.parametrize("f, args", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_matches_numpy(f, args):
    """The traced call returns numpy's values, shapes and dtypes, or raises numpy's error
    (type and message)."""
    expected, error = _run(f, args)
    traced, traced_error = _run(lambda *xs: vjp(f, *xs)[0], args)
    if error is not None:
        assert isinstance(traced_error, type(error)), (error, traced_error)
        assert str(traced_error) == str(error)
        return
    assert traced_error is None, traced_error
    expected = expected if isinstance(expected, tuple) else (expected,)
    traced = traced if isinstance(traced, tuple) else (traced,)
    assert len(traced) == len(expected)
    for t, e in zip(traced, expected):
        assert np.shape(t) == np.shape(e) and np.result_type(t) == np.result_type(e), (t, e)
        np.testing.assert_allclose(t, e, rtol=1e-12, atol=1e-14)


@np.errstate(all="ignore")
def test_warnings_like_numpy():
    with pytest.warns(RuntimeWarning, match="Degrees of freedom"):
        grad(lambda m: np.sum(np.cov(m, ddof=5)), 0)(M)
    with pytest.warns(RuntimeWarning, match="Degrees of freedom"):  # a traced fact
        out = vjp(lambda a: np.cov(M, aweights=a, ddof=10), AW)[0]
    assert np.all(np.isinf(out) | np.isnan(out))
    with pytest.warns(np.exceptions.RankWarning, match="poorly conditioned"):
        grad(lambda y: np.sum(np.polyfit(XX[:3], y, 3)), 0)(YY[:3])


def test_polyfit_full_extras_match_numpy():
    c, resid, rank, s, rcond = vjp(lambda y: np.polyfit(XX, y, 2, full=True), YY)[0]
    _, resid_np, rank_np, s_np, rcond_np = np.polyfit(XX, YY, 2, full=True)
    assert rank == rank_np and rcond == rcond_np and type(rcond) is type(rcond_np)
    np.testing.assert_allclose(s, s_np, rtol=1e-12)
    np.testing.assert_allclose(resid, resid_np, rtol=1e-10)


# ---- gradients against closed forms -------------------------------------------------------

def test_roots_gradient_is_the_implicit_derivative():
    """p(r) = 0 gives dr/dp_k = -r^(n-k) / p'(r), complex roots included."""
    n = len(P) - 1
    r = np.roots(P)
    dp = np.polyval(np.polyder(P), r)
    for i in range(n):
        for part in (np.real, np.imag):
            g = grad(lambda p, i=i, part=part: part(np.roots(p)[i]), 0)(P)
            want = part(-r[i] ** (n - np.arange(n + 1)) / dp[i])
            np.testing.assert_allclose(g, want, rtol=1e-9, atol=1e-12)


def test_roots_at_zero():
    """A simple root at 0 (one trailing zero): every root moves with the constant term,
    dr/dp3 = -1/p'(r) (x^3 - 3x^2 + 2x: roots 2, 1, 0, p' = 2, -1, 2); a double root at
    0 has no derivative and gets none."""
    p = np.array([1.0, -3.0, 2.0, 0.0])
    for i, want in enumerate([-0.5, 1.0, -0.5]):
        g = grad(lambda p, i=i: np.roots(p)[i], 0)(p)
        assert g[-1] == pytest.approx(want)
    g = grad(lambda p: np.sum(np.roots(p)), 0)(np.array([1.0, -3.0, 0.0, 0.0]))
    np.testing.assert_allclose(g, [-3.0, -1.0, 0, 0])  # the sum of the roots is -p1/p0
    r = vjp(np.roots, np.array([2.0, 0.0]))[0]
    assert r.dtype == np.float64 and r[0] == 0 and not np.signbit(r[0])


def test_interp_gradients():
    x = np.array([-1.0, 0.2, 1.5, 2.7, 4.0, 5.0])
    gx, gxp, gfp = grad(lambda x, xp, fp: np.sum(np.interp(x, xp, fp)),
                        argnums=(0, 1, 2))(x, XP, FP)
    slopes = np.diff(FP) / np.diff(XP)
    # the slope inside (the right interval at a knot, the last one at xp[-1]), 0 outside
    np.testing.assert_allclose(gx, [0, slopes[0], slopes[2], slopes[3], slopes[4], 0])
    # x = 0.2 in [0, 0.4]: fp weights 0.5/0.5, xp derivatives -slope*(1 - t), -slope*t
    t = 0.5
    np.testing.assert_allclose(gfp[:2], [1 - t + 1, t])  # fp[0] also gets x = -1 (left)
    np.testing.assert_allclose(gxp[:2], [-slopes[0] * (1 - t), -slopes[0] * t], atol=1e-12)


def test_unwrap_gradient_passes_through():
    p = np.cumsum(RNG.standard_normal(20)) * 3
    w = RNG.standard_normal(20)
    g = grad(lambda p: np.sum(np.unwrap(p) * w), 0)(p)
    np.testing.assert_allclose(g, w)
    out = vmap(np.unwrap)(np.stack([p, -p]))
    np.testing.assert_allclose(out, np.stack([np.unwrap(p), np.unwrap(-p)]))


def test_corrcoef_diagonal_is_constant():
    g = grad(lambda m: np.trace(np.corrcoef(m)))(M)
    np.testing.assert_allclose(g, 0, atol=1e-12)
    r = vjp(np.corrcoef, M)[0]
    assert np.all(np.abs(r) <= 1)


def test_cov_weights_under_vmap():
    """Under vmap the weights' values cannot be checked; the values are still numpy's."""
    aws = np.stack([AW, AW[::-1], AW + 1])
    out = vmap(lambda a: np.cov(M, aweights=a))(aws)
    np.testing.assert_allclose(out, np.stack([np.cov(M, aweights=a) for a in aws]))


def test_interp_and_polyfit_under_vmap_and_eval_shape():
    xps = np.stack([XP, XP * 1.1, XP + 0.2])
    out = vmap(lambda xp: np.interp(XQ, xp, FP))(xps)
    np.testing.assert_allclose(out, np.stack([np.interp(XQ, xp, FP) for xp in xps]))
    s = pycograd.eval_shape(lambda x: np.interp(x, XP, FP * 1j, period=2.0),
                            pycograd.ShapeDtypeStruct((3, 2), np.float32))
    assert s.shape == (3, 2) and s.dtype == np.complex128
    ys = np.stack([YY, YY ** 2])
    np.testing.assert_allclose(vmap(lambda y: np.polyfit(XX, y, 2))(ys),
                               np.stack([np.polyfit(XX, y, 2) for y in ys]))


# ---- refusals ------------------------------------------------------------------------------

@pytest.mark.parametrize("f", [lambda p: np.roots(p), lambda p: np.polymul(p, p)],
                         ids=["roots", "polymul"])
def test_stripping_zeros_needs_values(f):
    with pytest.raises(NoRuleError, match="vmap"):
        vmap(f)(np.stack([P, P]))
    with pytest.raises(DataDependentShapeError, match="length depends on the data"):
        pycograd.eval_shape(f, pycograd.ShapeDtypeStruct((4,), np.float64))


def test_refused_arguments_are_named():
    with pytest.raises(NoRuleError, match="period"):
        grad(lambda x, t: np.sum(np.interp(x, XP, FP, period=t)))(XQ, 2.0)
    with pytest.raises(NoRuleError, match="period"):
        grad(lambda p, t: np.sum(np.unwrap(p, period=t)))(WRAPPED, 6.0)
    with pytest.raises(NoRuleError, match="poly1d"):
        grad(lambda p: np.sum(np.polyadd(np.poly1d([1.0, 2.0]), p)))(P)
