"""scipy.integrate.odeint on traced values (the adjoint VJP, forward sensitivities, vmap,
eval_shape), and scipy callables reached through a functools.partial in a closure."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from pycograd import eval_shape, grad, hessian, jvp, vmap

si = pytest.importorskip("scipy.integrate")
st = pytest.importorskip("scipy.stats")


def func(y, t, a1, a2):
    return -np.sqrt(t) - y + a1 - np.mean((y + a2) ** 2)


RNG = np.random.default_rng(0)
Y0, A1, A2 = RNG.normal(size=3), RNG.normal(size=3), RNG.normal(size=3)
T = np.linspace(0.1, 0.2, 4)


def loss(y0, t, a1, a2):
    return np.sum(np.sin(si.odeint(func, y0, t, (a1, a2))))


def fd(f, x, eps=1e-5):
    g = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = eps
        g[i] = (f(x + e) - f(x - e)) / (2 * eps)
    return g


def test_odeint_adjoint_gradient():
    g = grad(loss, (0, 1, 2, 3))(Y0, T, A1, A2)
    np.testing.assert_allclose(g[0], fd(lambda y: loss(y, T, A1, A2), Y0), rtol=1e-4)
    np.testing.assert_allclose(g[1], fd(lambda t: loss(Y0, t, A1, A2), T), rtol=1e-4)
    np.testing.assert_allclose(g[2], fd(lambda a: loss(Y0, T, a, A2), A1), rtol=1e-4)
    np.testing.assert_allclose(g[3], fd(lambda a: loss(Y0, T, A1, a), A2), rtol=1e-4,
                               atol=1e-7)


def test_odeint_forward_vmap_shapes_and_second_order():
    ref = si.odeint(func, Y0, T, (A1, A2))
    out, tan = jvp(lambda y: si.odeint(func, y, T, (A1, A2)), (Y0,), (np.ones(3),))
    np.testing.assert_allclose(out, ref)
    eps = 1e-5
    want = (si.odeint(func, Y0 + eps, T, (A1, A2)) - si.odeint(func, Y0 - eps, T, (A1, A2)))
    np.testing.assert_allclose(tan, want / (2 * eps), rtol=1e-4)
    np.testing.assert_allclose(vmap(lambda y: si.odeint(func, y, T, (A1, A2)))(Y0[None])[0], ref)
    assert eval_shape(lambda y: si.odeint(func, y, T, (A1, A2)), Y0).shape == (4, 3)
    h = hessian(lambda a: loss(Y0, T, a, A2))(A1)
    g = grad(lambda a: loss(Y0, T, a, A2), 0)
    np.testing.assert_allclose(h, np.stack([fd(lambda a, i=i: g(a)[i], A1) for i in range(3)]),
                               rtol=1e-3, atol=1e-6)


def _symmetrized(fun):
    def call(x, mean, cov):
        return fun(x, mean, 0.5 * (cov + cov.T))
    return call


def test_partial_of_a_scipy_method_in_a_closure():
    cov = np.diag([1.0, 2.0])
    pdf = _symmetrized(functools.partial(st.multivariate_normal.logpdf, allow_singular=True))
    x, m = np.array([0.3, 0.1]), np.zeros(2)
    np.testing.assert_allclose(grad(lambda x: pdf(x, m, cov), 0)(x), -x / np.array([1.0, 2.0]))
