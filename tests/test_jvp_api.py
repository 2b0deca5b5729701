"""Forward mode's API: jvp on pytrees, Python numbers and integer arguments, linearize,
jacfwd / jacrev / hessian / hvp / elementwise_grad against finite differences, errors."""

from __future__ import annotations

import numpy as np
import pytest

from pycograd import (
    elementwise_grad,
    grad,
    hessian,
    hvp,
    jacfwd,
    jacobian,
    jacrev,
    jvp,
    linearize,
    vmap,
)
from tests.fd import numerical_grad

RNG = np.random.default_rng(0)


def fd_jacobian(f, x, eps=1e-6):
    """Central differences, one column per input element: shape out + in."""
    x = np.asarray(x, float)
    cols = []
    for j in range(x.size):
        e = np.zeros(x.size)
        e[j] = eps
        e = e.reshape(x.shape)
        cols.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * eps))
    out = np.stack(cols, axis=-1)
    return out.reshape(np.shape(f(x)) + x.shape)


# ---- jvp --------------------------------------------------------------------------------

def test_jvp_matches_finite_differences():
    x, v = RNG.normal(size=(3, 2)), RNG.normal(size=(3, 2))

    def f(x):
        return np.tanh(x @ x.T) * np.sum(np.exp(x))

    out, t = jvp(f, (x,), (v,))
    np.testing.assert_allclose(out, f(x))
    np.testing.assert_allclose(t, (f(x + 1e-6 * v) - f(x - 1e-6 * v)) / 2e-6, rtol=1e-6)


def test_jvp_python_floats():
    out, t = jvp(lambda x, y: x * x * y, (3.0, 2.0), (1.0, 0.5))
    assert float(out) == 18.0
    assert float(t) == pytest.approx(2 * 3.0 * 2.0 + 9.0 * 0.5)
    assert np.result_type(t) == np.float64


def test_jvp_pytrees_in_and_out():
    p = {"w": RNG.normal(size=(2, 3)), "b": (RNG.normal(size=3), 2.0)}
    tp = {"w": RNG.normal(size=(2, 3)), "b": (RNG.normal(size=3), 1.0)}
    x = RNG.normal(size=2)

    def f(p, x):
        h = x @ p["w"] + p["b"][0]
        return {"h": h * p["b"][1], "s": np.sum(h ** 2)}

    out, t = jvp(f, (p, x), (tp, np.zeros(2)))
    assert set(out) == set(t) == {"h", "s"}

    def along(e):
        q = {"w": p["w"] + e * tp["w"], "b": (p["b"][0] + e * tp["b"][0], p["b"][1] + e)}
        return f(q, x)

    for k in ("h", "s"):
        fd = (along(1e-6)[k] - along(-1e-6)[k]) / 2e-6
        np.testing.assert_allclose(t[k], fd, rtol=1e-6)


def test_none_tangent_is_zero_for_a_leaf_or_a_subtree():
    p = {"a": RNG.normal(size=3), "b": RNG.normal(size=3)}

    def f(p, x):
        return np.sum(p["a"] * p["b"]) * x

    _, t1 = jvp(f, (p, 2.0), ({"a": np.ones(3), "b": None}, None))
    _, t2 = jvp(f, (p, 2.0), ({"a": np.ones(3), "b": np.zeros(3)}, 0.0))
    assert float(t1) == pytest.approx(float(t2)) == pytest.approx(2.0 * p["b"].sum())
    _, t3 = jvp(f, (p, 2.0), (None, 1.0))
    assert float(t3) == pytest.approx(np.sum(p["a"] * p["b"]))


def test_integer_arguments_take_none_or_zero_tangents():
    """Integers have no tangent space: their tangent is None (or zeros, which are dropped);
    a nonzero one is an error rather than silently ignored."""
    f = lambda x, n: x ** n  # noqa: E731
    for tn in (None, 0, np.zeros((), int)):
        out, t = jvp(f, (2.0, 3), (1.0, tn))
        assert float(out) == 8.0 and float(t) == 12.0
    with pytest.raises(ValueError, match="argument 1 has dtype int64.*pass None"):
        jvp(f, (2.0, 3), (1.0, 1))
    ids = np.array([2, 0])
    _, t = jvp(lambda x, i: x[i], (np.arange(3.0), ids), (np.ones(3), None))
    np.testing.assert_array_equal(t, [1.0, 1.0])


def test_integer_output_has_zero_tangent():
    out, t = jvp(lambda x: (np.argmax(x), np.max(x)), (np.array([1.0, 3.0, 2.0]),),
                 (np.array([0.0, 1.0, 0.0]),))
    assert int(out[0]) == 1 and float(t[1]) == 1.0
    assert np.shape(t[0]) == () and t[0] == 0


def test_tangent_dtype_follows_the_primal():
    _, t = jvp(np.sin, (np.ones(3),), (np.ones(3, np.float32),))
    assert t.dtype == np.float64
    _, t = jvp(np.sin, (np.ones(3, np.float32),), (np.ones(3),))
    assert t.dtype == np.float32


def test_jvp_errors():
    with pytest.raises(ValueError, match=r"tangent of shape \(2,\) for a primal of shape \(3,\)"):
        jvp(np.sin, (np.ones(3),), (np.ones(2),))
    with pytest.raises(ValueError, match=r"shape \(3,\) for a primal of shape \(2,\) "
                                         r"\(argument 0\['b'\]\[1\]\)"):
        jvp(lambda p: p["a"], ({"a": np.ones(3), "b": (1.0, np.ones(2))},),
            ({"a": np.ones(3), "b": (0.0, np.ones(3))},))
    with pytest.raises(ValueError, match="structure"):
        jvp(lambda p: p["a"], ({"a": 1.0},), ({"b": 1.0},))
    with pytest.raises(ValueError, match="2 primals but 1 tangents"):
        jvp(lambda a, b: a * b, (1.0, 2.0), (1.0,))
    with pytest.raises(TypeError, match="must be tuples"):
        jvp(np.sin, np.ones(3), np.ones(3))


# ---- linearize ----------------------------------------------------------------------------

def test_linearize():
    x = RNG.normal(size=4)
    f = lambda x: np.sin(x) * np.sum(x ** 2)  # noqa: E731
    out, f_jvp = linearize(f, x)
    np.testing.assert_allclose(out, f(x))
    for _ in range(2):
        v = RNG.normal(size=4)
        np.testing.assert_allclose(f_jvp(v), jvp(f, (x,), (v,))[1])
    np.testing.assert_allclose(f_jvp(2 * v), 2 * f_jvp(v), rtol=1e-13)


# ---- Jacobians ----------------------------------------------------------------------------

def wide(x):  # R^4 -> R^3
    return np.stack([np.sum(x ** 2), x[0] * x[1], np.sin(x[2]) * x[3]])


def tall(x):  # R^2 -> R^(3, 2)
    return np.outer(np.array([1.0, 2.0, 3.0]), np.tanh(x)) + x[0] * x[1]


@pytest.mark.parametrize("f, shape", [(wide, (4,)), (tall, (2,)), (np.tanh, (2, 3))])
def test_jacfwd_jacrev_agree_with_finite_differences(f, shape):
    x = RNG.normal(size=shape)
    ref = fd_jacobian(f, x)
    for jac in (jacfwd, jacrev, jacobian):
        got = jac(f)(x)
        assert got.shape == np.shape(f(x)) + shape
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-9)


def test_jacobians_argnums_and_pytrees():
    a, b = RNG.normal(size=3), RNG.normal(size=2)

    def f(a, b):
        return {"outer": np.outer(a, b), "dot": np.sum(a) * b}

    for jac in (jacfwd, jacrev):
        j = jac(f, argnums=(0, 1))(a, b)
        assert set(j) == {"outer", "dot"}
        assert j["outer"][0].shape == (3, 2, 3) and j["outer"][1].shape == (3, 2, 2)
        np.testing.assert_allclose(j["outer"][0], fd_jacobian(lambda a: np.outer(a, b), a),
                                   rtol=1e-6)
        np.testing.assert_allclose(j["dot"][1], fd_jacobian(lambda b: np.sum(a) * b, b),
                                   rtol=1e-6)
        j0 = jac(f)(a, b)
        np.testing.assert_allclose(j0["dot"], fd_jacobian(lambda a: np.sum(a) * b, a),
                                   rtol=1e-6)


def test_jacobian_wrt_a_dict_argument():
    p = {"w": RNG.normal(size=(2, 2)), "c": RNG.normal(size=2)}
    f = lambda p: np.tanh(p["w"] @ p["c"])  # noqa: E731
    jf, jr = jacfwd(f)(p), jacrev(f)(p)
    for j in (jf, jr):
        assert j["w"].shape == (2, 2, 2) and j["c"].shape == (2, 2)
    np.testing.assert_allclose(jf["w"], jr["w"], rtol=1e-13)
    np.testing.assert_allclose(jf["c"], fd_jacobian(lambda c: f({"w": p["w"], "c": c}), p["c"]),
                               rtol=1e-6)


# ---- Hessians -----------------------------------------------------------------------------

def mlp_loss(theta, x, y):
    w1, b1, w2 = theta[:6].reshape(2, 3), theta[6:9], theta[9:12].reshape(3, 1)
    h = np.tanh(x @ w1 + b1)
    return np.mean((h @ w2 - y) ** 2)


def test_hessian_of_a_small_mlp_loss():
    x, y = RNG.normal(size=(5, 2)), RNG.normal(size=(5, 1))
    theta = 0.5 * RNG.normal(size=12)
    H = hessian(mlp_loss)(theta, x, y)
    assert H.shape == (12, 12)
    ref = fd_jacobian(lambda t: grad(mlp_loss)(t, x, y)[0], theta)
    np.testing.assert_allclose(H, ref, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(H, H.T, rtol=1e-12, atol=1e-14)
    # and against second differences of the loss itself
    e = np.eye(12) * 1e-4
    second = np.array([[(mlp_loss(theta + e[i] + e[j], x, y) - mlp_loss(theta + e[i] - e[j], x, y)
                         - mlp_loss(theta - e[i] + e[j], x, y)
                         + mlp_loss(theta - e[i] - e[j], x, y)) / 4e-8
                        for j in range(12)] for i in range(12)])
    np.testing.assert_allclose(H, second, atol=1e-5)


def test_hessian_argnums_blocks():
    a, b = RNG.normal(size=3), RNG.normal(size=2)
    f = lambda a, b: np.sum(np.sin(a)) * np.sum(b ** 2)  # noqa: E731
    (haa, hab), (hba, hbb) = hessian(f, argnums=(0, 1))(a, b)
    assert haa.shape == (3, 3) and hab.shape == (3, 2) and hba.shape == (2, 3)
    np.testing.assert_allclose(haa, np.diag(-np.sin(a)) * np.sum(b ** 2), atol=1e-14)
    np.testing.assert_allclose(hab, np.outer(np.cos(a), 2 * b), rtol=1e-13)
    np.testing.assert_allclose(hba, hab.T, rtol=1e-13)
    np.testing.assert_allclose(hbb, 2 * np.eye(2) * np.sum(np.sin(a)), atol=1e-14)


def test_hvp():
    x, y = RNG.normal(size=(5, 2)), RNG.normal(size=(5, 1))
    theta, v = 0.5 * RNG.normal(size=12), RNG.normal(size=12)
    got = hvp(lambda t: mlp_loss(t, x, y), (theta,), (v,))
    np.testing.assert_allclose(got, hessian(mlp_loss)(theta, x, y) @ v, rtol=1e-12)
    a, b = RNG.normal(size=3), RNG.normal(size=3)
    va, vb = RNG.normal(size=3), RNG.normal(size=3)
    ga, gb = hvp(lambda a, b: np.sum(a * a * b), (a, b), (va, vb))
    np.testing.assert_allclose(ga, 2 * b * va + 2 * a * vb, rtol=1e-13)
    np.testing.assert_allclose(gb, 2 * a * va, rtol=1e-13)


def test_per_example_hvp_under_vmap():
    X, Y = RNG.normal(size=(4, 3, 2)), RNG.normal(size=(4, 3, 1))
    theta, v = 0.5 * RNG.normal(size=12), RNG.normal(size=12)
    got = vmap(lambda x, y: hvp(lambda t: mlp_loss(t, x, y), (theta,), (v,)))(X, Y)
    for i in range(4):
        np.testing.assert_allclose(got[i], hessian(mlp_loss)(theta, X[i], Y[i]) @ v,
                                   rtol=1e-12)


def test_elementwise_grad():
    x = RNG.normal(size=(2, 3))
    np.testing.assert_allclose(elementwise_grad(np.tanh)(x), 1 - np.tanh(x) ** 2, rtol=1e-14)
    g = elementwise_grad(lambda a, b: a * np.exp(b), 1)(x, x + 1)
    np.testing.assert_allclose(g, x * np.exp(x + 1), rtol=1e-14)
    ref = numerical_grad(lambda x: np.sum(np.sin(x) * x), [x], 1e-6)[0]
    np.testing.assert_allclose(elementwise_grad(lambda x: np.sin(x) * x)(x), ref, rtol=1e-7)
