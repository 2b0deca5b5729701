"""scipy functions HIPS autograd differentiates and pycograd did not: gammasgn (zero
gradient), solve_sylvester, solve_banded, multivariate_normal with allow_singular."""

from __future__ import annotations

import numpy as np
import pytest

from pycograd import grad, jacfwd, jvp, vmap

sp = pytest.importorskip("scipy.special")
sl = pytest.importorskip("scipy.linalg")
st = pytest.importorskip("scipy.stats")


def fd(f, x, eps=1e-6):
    x = np.asarray(x, dtype=float)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        g[i] = (f(x + e) - f(x - e)) / (2 * eps)
    return g


def test_gammasgn_has_zero_gradient():
    x = np.array([0.5, -0.5, -1.5])
    np.testing.assert_array_equal(grad(lambda x: np.sum(sp.gammasgn(x)), 0)(x), 0.0)
    np.testing.assert_array_equal(grad(lambda x: np.sum(sp.gammasgn(x) * x), 0)(x),
                                  sp.gammasgn(x))
    np.testing.assert_array_equal(jvp(sp.gammasgn, (x,), (np.ones(3),))[1], 0.0)


def test_solve_sylvester():
    rng = np.random.default_rng(1)
    a, b, q = rng.normal(size=(3, 3)), rng.normal(size=(2, 2)), rng.normal(size=(3, 2))

    def f(a, b, q):
        return np.sum(np.sin(sl.solve_sylvester(a, b, q)))

    g = grad(f, (0, 1, 2))(a, b, q)
    np.testing.assert_allclose(g[0], fd(lambda a: f(a, b, q), a), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(g[1], fd(lambda b: f(a, b, q), b), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(g[2], fd(lambda q: f(a, b, q), q), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(vmap(lambda q: sl.solve_sylvester(a, b, q))(np.stack([q, 2 * q])),
                               [sl.solve_sylvester(a, b, q), sl.solve_sylvester(a, b, 2 * q)])


def test_solve_banded():
    rng = np.random.default_rng(2)
    ab, b = rng.normal(size=(3, 5)), rng.normal(size=5)
    ab[1] += 4.0

    def f(ab, b):
        return np.sum(np.cos(sl.solve_banded((1, 1), ab, b)))

    g_ab, g_b = grad(f, (0, 1))(ab, b)
    np.testing.assert_allclose(g_ab, fd(lambda ab: f(ab, b), ab), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(g_b, fd(lambda b: f(ab, b), b), rtol=1e-5, atol=1e-8)
    assert g_ab[0, 0] == 0.0 and g_ab[2, 4] == 0.0  # the corners scipy never reads
    np.testing.assert_allclose(jacfwd(lambda b: sl.solve_banded((1, 1), ab, b))(b),
                               np.linalg.inv(np.diag(ab[1]) + np.diag(ab[0, 1:], 1)
                                             + np.diag(ab[2, :-1], -1)))


def test_mvn_allow_singular():
    cov = np.zeros((4, 4))
    cov[0, 0], cov[1, 1] = 1.0, 2.0
    m = np.array([0.1, 0.4, 0.0, 0.0])
    x = np.array([0.3, -0.2, 0.0, 0.0])

    def logpdf(x, m):
        return st.multivariate_normal.logpdf(x, m, cov, allow_singular=True)

    assert logpdf(x, m) == pytest.approx(
        st.multivariate_normal.logpdf(x, m, cov, allow_singular=True))
    gx, gm = grad(logpdf, (0, 1))(x, m)
    want = -(x - m) / np.array([1.0, 2.0, 1.0, 1.0]) * np.array([1, 1, 0, 0])
    np.testing.assert_allclose(gx, want)
    np.testing.assert_allclose(gm, -want)
    off = np.array([0.3, -0.2, 1.0, 0.0])  # off the support: scipy says -inf
    assert grad(logpdf, (0, 1))(off, m)[0].tolist() == [0.0] * 4
    pdf = vmap(lambda x: st.multivariate_normal.pdf(x, m, cov, allow_singular=True))
    np.testing.assert_allclose(pdf(np.stack([x, off])),
                               st.multivariate_normal.pdf(np.stack([x, off]), m, cov,
                                                          allow_singular=True))
    # Python lists, as scipy accepts them: d/ds at s = 1 is -dim/2 + |x|^2 / 2
    g = grad(lambda s: st.multivariate_normal.logpdf([0.3, 0.1], [0.0, 0.0], s * np.eye(2)),
             0)(1.0)
    assert g == pytest.approx(-1.0 + 0.05)
