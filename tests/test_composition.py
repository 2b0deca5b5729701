"""The composition matrix: every ordered pair of {grad, jvp, vmap, checkpoint}, and the
triples users reach for, over a fixed set of small models.

Each model is ``loss(p, ex) -> scalar`` with ``p`` one flat parameter vector (unpacked by
slicing, so indexing is exercised too) and ``ex`` one example (a pytree). Each composed
result is checked against a reference built only from first-order pieces: central finite
differences of the loss, finite differences of the (separately checked) first-order
``grad``, and unbatched Python loops in place of ``vmap``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

import pycograd.nn as nn
from pycograd import checkpoint, grad, hessian, jvp, value_and_grad, vmap
from tests.fd import numerical_grad

N = 3  # examples per batch


def _unpack(p, shapes):
    out, i = [], 0
    for s in shapes:
        n = math.prod(s)
        out.append(np.reshape(p[i:i + n], s))
        i += n
    return out


# ---- the models ---------------------------------------------------------------------

def logreg(p, ex):
    x, y = ex
    w, b = _unpack(p, [(4,), ()])
    z = x @ w + b
    return np.logaddexp(0.0, z) - y * z


def mlp(p, ex):
    x, label = ex
    w1, b1, w2, b2 = _unpack(p, [(3, 5), (5,), (5, 3), (3,)])
    h = np.tanh(x @ w1 + b1)
    return nn.cross_entropy(h @ w2 + b2, label)


def layer_norm(p, ex):
    x, y = ex
    w, g, b = _unpack(p, [(4, 4), (4,), (4,)])
    return np.sum(np.sin(nn.layer_norm(x @ w, g, b)) * y)


def attention(p, ex):
    x, y = ex  # one sequence (T, d)
    wq, wk, wv = _unpack(p, [(3, 3), (3, 3), (3, 3)])
    q, k, v = x @ wq, x @ wk, x @ wv
    s = q @ k.T / np.sqrt(3.0)
    return np.sum(nn.softmax(s, axis=-1) @ v * y)


def gru(p, ex):
    x, h = ex
    w_ih, w_hh, b_ih, b_hh = _unpack(p, [(6, 3), (6, 2), (6,), (6,)])
    h2 = nn.gru_cell(x, h, w_ih, w_hh, b_ih, b_hh)
    return np.sum(h2 * h2) + np.sum(h2)


def conv(p, ex):
    x, y = ex  # one image (C, H, W)
    w, b = _unpack(p, [(2, 1, 3, 3), (2,)])
    out = nn.conv2d(x[None], w, b, padding=1)[0]
    return np.mean(np.tanh(out) * y)


def _models():
    rng = np.random.default_rng(0)
    r = rng.normal
    return {
        "logreg": (logreg, 5, (r(size=(N, 4)), rng.integers(0, 2, N).astype(float))),
        "mlp": (mlp, 38, (r(size=(N, 3)), rng.integers(0, 3, N))),
        "layer_norm": (layer_norm, 24, (r(size=(N, 4)), r(size=(N, 4)))),
        "attention": (attention, 27, (r(size=(N, 2, 3)), r(size=(N, 2, 3)))),
        "gru": (gru, 42, (r(size=(N, 3)), r(size=(N, 2)))),
        "conv": (conv, 20, (r(size=(N, 1, 4, 4)), r(size=(N, 2, 4, 4)))),
    }


MODELS = _models()


def _setup(name):
    f, n_params, batch = MODELS[name]
    rng = np.random.default_rng(1)
    p = 0.5 * rng.normal(size=n_params)
    u = rng.normal(size=n_params)
    w = rng.normal(size=n_params)
    return f, p, batch, u, w


def _example(batch, i):
    return tuple(b[i] for b in batch)


# ---- references, from first-order pieces only --------------------------------------

def fd_grad(f, p, ex):
    return numerical_grad(lambda q: f(q, ex), [p], 1e-6)[0]


def fd_along(fun: Callable, p, u, eps=1e-5):
    """Central difference of ``fun`` (array-valued) at ``p`` along ``u``."""
    return (np.asarray(fun(p + eps * u)) - np.asarray(fun(p - eps * u))) / (2 * eps)


def ref_hvp(f, p, ex, u):
    """H u: the finite difference of the first-order gradient along ``u``."""
    return fd_along(lambda q: grad(f, 0)(q, ex), p, u)


def ref_loop(fun, batch):
    return np.stack([np.asarray(fun(_example(batch, i))) for i in range(N)])


def close(a, b, tol=1e-6):
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=tol, atol=tol)


# ---- compositions: name -> (composed(f, p, batch, u, w), reference(...)) ------------

def _dir(f, u):
    """The directional derivative of the loss along ``u`` in parameter space, by jvp."""
    return lambda p, ex: jvp(lambda q: f(q, ex), (p,), (u,))[1]


def _vmapped(f):
    return vmap(f, in_axes=(None, 0))


C = {}
C["grad"] = (lambda f, p, B, u, w: grad(f, 0)(p, _example(B, 0)),
             lambda f, p, B, u, w: fd_grad(f, p, _example(B, 0)))
C["jvp"] = (lambda f, p, B, u, w: _dir(f, u)(p, _example(B, 0)),
            lambda f, p, B, u, w: fd_along(lambda q: f(q, _example(B, 0)), p, u))
C["vmap"] = (lambda f, p, B, u, w: _vmapped(f)(p, B),
             lambda f, p, B, u, w: ref_loop(lambda ex: f(p, ex), B))
C["checkpoint"] = (lambda f, p, B, u, w: checkpoint(f)(p, _example(B, 0)),
                   lambda f, p, B, u, w: f(p, _example(B, 0)))

# outer(inner(f))
C["grad(grad)"] = (
    lambda f, p, B, u, w: grad(lambda q, ex: np.sum(grad(f, 0)(q, ex) * u), 0)(p, _example(B, 0)),
    lambda f, p, B, u, w: ref_hvp(f, p, _example(B, 0), u))
C["grad(jvp)"] = (lambda f, p, B, u, w: grad(_dir(f, u), 0)(p, _example(B, 0)),
                  lambda f, p, B, u, w: ref_hvp(f, p, _example(B, 0), u))
C["grad(vmap)"] = (
    lambda f, p, B, u, w: grad(lambda q: np.sum(_vmapped(f)(q, B) * np.arange(1, N + 1)))(p)[0],
    lambda f, p, B, u, w: sum((i + 1) * fd_grad(f, p, _example(B, i)) for i in range(N)))
C["grad(checkpoint)"] = (lambda f, p, B, u, w: grad(checkpoint(f), 0)(p, _example(B, 0)),
                         lambda f, p, B, u, w: fd_grad(f, p, _example(B, 0)))
C["jvp(grad)"] = (
    lambda f, p, B, u, w: jvp(lambda q: grad(f, 0)(q, _example(B, 0)), (p,), (u,))[1],
    lambda f, p, B, u, w: ref_hvp(f, p, _example(B, 0), u))
C["jvp(jvp)"] = (
    lambda f, p, B, u, w: jvp(lambda q: _dir(f, u)(q, _example(B, 0)), (p,), (w,))[1],
    lambda f, p, B, u, w: ref_hvp(f, p, _example(B, 0), u) @ w)
C["jvp(vmap)"] = (
    lambda f, p, B, u, w: jvp(lambda q: _vmapped(f)(q, B), (p,), (u,))[1],
    lambda f, p, B, u, w: ref_loop(lambda ex: fd_along(lambda q: f(q, ex), p, u), B))
C["jvp(checkpoint)"] = (lambda f, p, B, u, w: _dir(checkpoint(f), u)(p, _example(B, 0)),
                        lambda f, p, B, u, w: fd_along(lambda q: f(q, _example(B, 0)), p, u))
C["vmap(grad)"] = (lambda f, p, B, u, w: _vmapped(grad(f, 0))(p, B),
                   lambda f, p, B, u, w: ref_loop(lambda ex: fd_grad(f, p, ex), B))
C["vmap(jvp)"] = (lambda f, p, B, u, w: _vmapped(_dir(f, u))(p, B),
                  lambda f, p, B, u, w: ref_loop(lambda ex: fd_along(lambda q: f(q, ex), p, u), B))
C["vmap(vmap)"] = (
    lambda f, p, B, u, w: vmap(_vmapped(f), in_axes=(0, None))(np.stack([p, p + 0.1 * u]), B),
    lambda f, p, B, u, w: np.stack([ref_loop(lambda ex, q=q: f(q, ex), B)
                                    for q in (p, p + 0.1 * u)]))
C["vmap(checkpoint)"] = (lambda f, p, B, u, w: _vmapped(checkpoint(f))(p, B),
                         lambda f, p, B, u, w: ref_loop(lambda ex: f(p, ex), B))
C["checkpoint(grad)"] = (lambda f, p, B, u, w: checkpoint(grad(f, 0))(p, _example(B, 0)),
                         lambda f, p, B, u, w: fd_grad(f, p, _example(B, 0)))
C["checkpoint(jvp)"] = (lambda f, p, B, u, w: checkpoint(_dir(f, u))(p, _example(B, 0)),
                        lambda f, p, B, u, w: fd_along(lambda q: f(q, _example(B, 0)), p, u))
C["checkpoint(vmap)"] = (lambda f, p, B, u, w: checkpoint(_vmapped(f))(p, B),
                         lambda f, p, B, u, w: ref_loop(lambda ex: f(p, ex), B))
C["checkpoint(checkpoint)"] = (lambda f, p, B, u, w: checkpoint(checkpoint(f))(p, _example(B, 0)),
                               lambda f, p, B, u, w: f(p, _example(B, 0)))

# the triples users reach for
C["vmap(grad(checkpoint))"] = (lambda f, p, B, u, w: _vmapped(grad(checkpoint(f), 0))(p, B),
                               lambda f, p, B, u, w: ref_loop(lambda ex: fd_grad(f, p, ex), B))
C["grad(vmap(checkpoint))"] = (
    lambda f, p, B, u, w: grad(lambda q: np.sum(_vmapped(checkpoint(f))(q, B)))(p)[0],
    lambda f, p, B, u, w: sum(fd_grad(f, p, _example(B, i)) for i in range(N)))
C["grad(checkpoint(vmap))"] = (
    lambda f, p, B, u, w: grad(lambda q: np.sum(checkpoint(_vmapped(f))(q, B)))(p)[0],
    lambda f, p, B, u, w: sum(fd_grad(f, p, _example(B, i)) for i in range(N)))
C["jvp(grad(checkpoint))"] = (
    lambda f, p, B, u, w: jvp(lambda q: grad(checkpoint(f), 0)(q, _example(B, 0)), (p,), (u,))[1],
    lambda f, p, B, u, w: ref_hvp(f, p, _example(B, 0), u))
C["grad(grad(checkpoint))"] = (
    lambda f, p, B, u, w: grad(lambda q: np.sum(grad(checkpoint(f), 0)(q, _example(B, 0)) * u))(
        p)[0],
    lambda f, p, B, u, w: ref_hvp(f, p, _example(B, 0), u))
C["vmap(jvp(grad))"] = (
    lambda f, p, B, u, w: _vmapped(lambda q, ex: jvp(lambda r: grad(f, 0)(r, ex), (q,), (u,))[1])(
        p, B),
    lambda f, p, B, u, w: ref_loop(lambda ex: ref_hvp(f, p, ex, u), B))
C["grad(checkpoint(grad))"] = (
    lambda f, p, B, u, w: grad(lambda q: np.sum(checkpoint(grad(f, 0))(q, _example(B, 0)) * u))(
        p)[0],
    lambda f, p, B, u, w: ref_hvp(f, p, _example(B, 0), u))
C["jvp(checkpoint(jvp))"] = (
    lambda f, p, B, u, w: jvp(lambda q: checkpoint(_dir(f, u))(q, _example(B, 0)), (p,), (w,))[1],
    lambda f, p, B, u, w: ref_hvp(f, p, _example(B, 0), u) @ w)
C["hessian"] = (lambda f, p, B, u, w: hessian(lambda q: f(q, _example(B, 0)))(p),
                lambda f, p, B, u, w: np.stack(
                    [ref_hvp(f, p, _example(B, 0), e) for e in np.eye(p.size)], axis=-1))
C["value_and_grad(vmap(grad))"] = (
    lambda f, p, B, u, w: value_and_grad(
        lambda q: np.sum(_vmapped(grad(f, 0))(q, B) * u))(p)[1][0],
    lambda f, p, B, u, w: sum(ref_hvp(f, p, _example(B, i), u) for i in range(N)))

# second-order rows compare finite differences of a gradient; first order is tighter
LOOSE = {"grad(checkpoint(grad))", "jvp(checkpoint(jvp))", "grad(grad)", "grad(jvp)",
         "jvp(grad)", "jvp(jvp)", "jvp(grad(checkpoint))", "grad(grad(checkpoint))",
         "vmap(jvp(grad))", "hessian", "value_and_grad(vmap(grad))"}


def test_matrix_covers_every_ordered_pair():
    base = ("grad", "jvp", "vmap", "checkpoint")
    pairs = {f"{a}({b})" for a in base for b in base}
    assert pairs <= set(C)


@pytest.mark.parametrize("comp", list(C))
@pytest.mark.parametrize("model", list(MODELS))
def test_composition(model, comp):
    f, p, batch, u, w = _setup(model)
    composed, reference = C[comp]
    got = composed(f, p, batch, u, w)
    want = reference(f, p, batch, u, w)
    assert np.shape(got) == np.shape(want), (np.shape(got), np.shape(want))
    close(got, want, 1e-5 if comp in LOOSE else 1e-6)


# ---- nested derivatives keep their levels apart -------------------------------------

def _inner_grad(x):
    """d/dy (x + y) at y = 1, by reverse mode: 1, whatever x is."""
    return grad(lambda y: x + y)(1.0)[0]


def _inner_jvp(x):
    return jvp(lambda y: x + y, (1.0,), (1.0,))[1]


CONFUSION = {
    "grad(grad)": lambda x0: grad(lambda x: x * _inner_grad(x))(x0)[0],
    "jvp(jvp)": lambda x0: jvp(lambda x: x * _inner_jvp(x), (x0,), (1.0,))[1],
    "jvp(grad)": lambda x0: jvp(lambda x: x * _inner_grad(x), (x0,), (1.0,))[1],
    "grad(jvp)": lambda x0: grad(lambda x: x * _inner_jvp(x))(x0)[0],
    "vmap(grad(grad))": lambda x0: vmap(
        lambda x: grad(lambda x: x * _inner_grad(x))(x)[0])(np.array([x0, x0 + 1.0]))[1],
}


@pytest.mark.parametrize("how", list(CONFUSION))
@pytest.mark.parametrize("x0", [0.0, 3.0, -2.5])
def test_perturbation_confusion(how, x0):
    """d/dx [x * d/dy (x + y)] == 1: the inner derivative must not see x's perturbation
    (a confused implementation gives 2)."""
    assert float(CONFUSION[how](x0)) == pytest.approx(1.0, abs=1e-12)


def _g(x):
    return np.sin(x) * np.exp(0.5 * x)


def _g3(x):
    """The third derivative of _g by Leibniz's rule, in plain Python floats."""
    s, c, e = math.sin(x), math.cos(x), math.exp(0.5 * x)
    # d^k sin = sin(x + k pi/2); d^k exp(x/2) = exp(x/2) / 2^k
    ds = [s, c, -s, -c]
    return e * sum(math.comb(3, k) * ds[3 - k] / 2 ** k for k in range(4))


def _d_rev(f):
    return lambda x: grad(f)(x)[0]


def _d_fwd(f):
    return lambda x: jvp(f, (x,), (np.ones_like(x),))[1]


THIRD = {
    "grad^3": _d_rev(_d_rev(_d_rev(_g))),
    "jvp^3": _d_fwd(_d_fwd(_d_fwd(_g))),
    "jvp(grad(grad))": _d_fwd(_d_rev(_d_rev(_g))),
    "grad(jvp(grad))": _d_rev(_d_fwd(_d_rev(_g))),
    "grad(grad(jvp))": _d_rev(_d_rev(_d_fwd(_g))),
    "jvp(jvp(grad))": _d_fwd(_d_fwd(_d_rev(_g))),
    "grad(checkpoint(grad(grad)))": _d_rev(checkpoint(_d_rev(_d_rev(_g)))),
}


@pytest.mark.parametrize("how", list(THIRD))
def test_third_derivative(how):
    for x0 in (0.3, -1.2):
        assert float(THIRD[how](np.float64(x0))) == pytest.approx(_g3(x0), rel=1e-12)


def test_third_derivative_batched():
    xs = np.linspace(-1.0, 1.0, 5)
    got = vmap(THIRD["jvp(grad(grad))"])(xs)
    np.testing.assert_allclose(got, [_g3(x) for x in xs], rtol=1e-12)
