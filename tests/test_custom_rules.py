"""custom_vjp and custom_jvp: the user's rule is what every transform uses (vmap(grad),
grad(grad), jvp, eval_shape), with pytrees, several arguments, None cotangents, and
clear errors for malformed rules."""

from __future__ import annotations

import numpy as np
import pytest

from pycograd import (
    ShapeDtypeStruct,
    ShapeError,
    custom_jvp,
    custom_vjp,
    eval_shape,
    grad,
    hessian,
    jvp,
    value_and_grad,
    vmap,
)

XS = np.array([-800.0, -30.0, -3.0, 0.0, 2.0, 40.0, 800.0])


def sigmoid(x):
    """exp(-log(1 + exp(-x))): stable at both ends, and so are its derivatives."""
    return np.exp(-np.logaddexp(0.0, -x))


def d_sigmoid(x):
    return sigmoid(x) * sigmoid(-x)


def naive(x):
    return np.log(1.0 + np.exp(x))


# ---- a numerically stable log1pexp, both ways ------------------------------------------

@custom_vjp
def log1pexp_v(x):
    return np.logaddexp(0.0, x)


def _fwd(x):
    return log1pexp_v(x), x


def _bwd(x, g):
    return (g * sigmoid(x),)


log1pexp_v.defvjp(_fwd, _bwd)


@custom_jvp
def log1pexp_j(x):
    return np.logaddexp(0.0, x)


@log1pexp_j.defjvp
def _log1pexp_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return log1pexp_j(x), t * sigmoid(x)


RULES = {"custom_vjp": log1pexp_v, "custom_jvp": log1pexp_j}


@pytest.mark.parametrize("kind", list(RULES))
def test_log1pexp_is_stable_where_the_naive_form_is_not(kind):
    f = RULES[kind]
    with np.errstate(over="ignore", invalid="ignore"):
        assert not np.isfinite(naive(800.0))
        assert not np.all(np.isfinite(vmap(grad(naive))(XS)[0]))
    np.testing.assert_allclose(f(XS), np.logaddexp(0.0, XS))


@pytest.mark.parametrize("kind", list(RULES))
def test_vmap_of_grad(kind):
    g = vmap(grad(RULES[kind]))(XS)[0]
    np.testing.assert_allclose(g, sigmoid(XS), rtol=1e-15)
    assert np.all(np.isfinite(g))


@pytest.mark.parametrize("kind", list(RULES))
def test_grad_of_grad(kind):
    f = RULES[kind]
    gg = vmap(grad(grad(f)))(XS)[0]
    np.testing.assert_allclose(gg, d_sigmoid(XS), rtol=1e-13, atol=1e-300)
    h = hessian(lambda x: np.sum(f(x)))(XS[1:-1])
    np.testing.assert_allclose(h, np.diag(d_sigmoid(XS[1:-1])), rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("kind", list(RULES))
def test_jvp_and_forward_over_reverse(kind):
    f = RULES[kind]
    v = np.linspace(-1.0, 1.0, XS.size)
    out, t = jvp(f, (XS,), (v,))
    np.testing.assert_allclose(out, np.logaddexp(0.0, XS))
    np.testing.assert_allclose(t, sigmoid(XS) * v, rtol=1e-15)
    _, tg = jvp(lambda x: grad(lambda y: np.sum(f(y)))(x)[0], (XS,), (v,))
    np.testing.assert_allclose(tg, d_sigmoid(XS) * v, rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("kind", list(RULES))
def test_eval_shape(kind):
    f = RULES[kind]
    assert eval_shape(f, ShapeDtypeStruct((3, 2))) == ShapeDtypeStruct((3, 2))
    spec = eval_shape(grad(lambda x: np.sum(f(x))), ShapeDtypeStruct((4,), np.float32))
    assert spec == (ShapeDtypeStruct((4,), np.float32),)


# ---- the rule is what the transforms use ------------------------------------------------

@custom_vjp
def clip_gradient(x):
    return x


clip_gradient.defvjp(lambda x: (x, None), lambda _, g: (np.clip(g, -1.0, 1.0),))


@custom_jvp
def straight_through_round(x):
    return np.round(x)


@straight_through_round.defjvp
def _st_jvp(primals, tangents):
    return straight_through_round(primals[0]), tangents[0]


def test_custom_vjp_rule_replaces_the_derivative():
    x = np.array([0.5, 2.0, -3.0])
    g = grad(lambda x: np.sum(clip_gradient(x) * np.array([0.5, 5.0, -5.0])))(x)[0]
    np.testing.assert_array_equal(g, [0.5, 1.0, -1.0])
    per = vmap(grad(lambda x, w: clip_gradient(x) * w))(x, np.array([0.5, 5.0, -5.0]))
    np.testing.assert_array_equal(per[0], [0.5, 1.0, -1.0])


def test_custom_jvp_rule_is_used_in_forward_and_reverse():
    x = np.array([0.4, 1.6])
    np.testing.assert_array_equal(straight_through_round(x), [0.0, 2.0])
    np.testing.assert_array_equal(jvp(straight_through_round, (x,), (np.ones(2),))[1], [1, 1])
    np.testing.assert_array_equal(grad(lambda x: np.sum(straight_through_round(x) * 3))(x)[0],
                                  [3.0, 3.0])
    np.testing.assert_array_equal(vmap(grad(straight_through_round))(x)[0], [1.0, 1.0])


# ---- pytrees and several arguments -------------------------------------------------------

@custom_vjp
def affine(p, x):
    return {"y": p["w"] * x, "s": np.sum(p["b"] * x)}


def _affine_fwd(p, x):
    return affine(p, x), (p, x)


def _affine_bwd(res, g):
    p, x = res
    return {"w": g["y"] * x, "b": g["s"] * x}, None  # no gradient for x, on purpose


affine.defvjp(_affine_fwd, _affine_bwd)


def test_pytree_inputs_outputs_and_a_none_cotangent():
    p = {"w": np.arange(3.0), "b": np.ones(3)}
    x = np.array([1.0, 2.0, 3.0])

    def loss(p, x):
        out = affine(p, x)
        return np.sum(out["y"] ** 2) + out["s"]

    gp, gx = grad(loss)(p, x)
    np.testing.assert_allclose(gp["w"], 2 * p["w"] * x ** 2)
    np.testing.assert_allclose(gp["b"], x)
    np.testing.assert_array_equal(gx, np.zeros(3))  # the rule said None: zeros
    per = vmap(grad(loss), in_axes=(None, 0))(p, np.stack([x, 2 * x]))
    np.testing.assert_allclose(per[0]["w"][1], 2 * p["w"] * (2 * x) ** 2)


@custom_vjp
def scaled(x, y, n):
    return x * y * n


scaled.defvjp(lambda x, y, n: (scaled(x, y, n), (x, y, n)),
              lambda r, g: (g * r[1] * r[2], None, None))


def test_several_arguments_none_and_integer():
    v, (gx, gy, gn) = value_and_grad(scaled)(1.5, 2.0, 3)
    assert float(v) == 9.0 and float(gx) == 6.0
    assert float(gy) == 0.0  # None from the rule: zero, not None
    assert gn is None  # an integer argument has no gradient


def test_partial_subtree_none_in_cotangent():
    @custom_vjp
    def f(p):
        return np.sum(p["a"]) * np.sum(p["b"])

    f.defvjp(lambda p: (f(p), p), lambda p, g: ({"a": g * np.sum(p["b"]) * np.ones(2),
                                                  "b": None},))
    g = grad(f)({"a": np.ones(2), "b": np.full(3, 2.0)})[0]
    np.testing.assert_allclose(g["a"], [6.0, 6.0])
    np.testing.assert_array_equal(g["b"], np.zeros(3))


@custom_jvp
def hypot(x, y):
    return np.sqrt(x * x + y * y)


@hypot.defjvp
def _hypot_jvp(primals, tangents):
    x, y = primals
    tx, ty = tangents
    r = hypot(x, y)
    return r, (x * tx + y * ty) / r


def test_custom_jvp_several_arguments_transposed_for_grad():
    x, y = np.array([3.0, 1.0]), np.array([4.0, 1.0])
    gx, gy = grad(lambda x, y: np.sum(hypot(x, y)))(x, y)
    np.testing.assert_allclose(gx, x / np.hypot(x, y))
    np.testing.assert_allclose(gy, y / np.hypot(x, y))
    gx = grad(lambda x: np.sum(hypot(x, y)))(x)[0]  # y constant: only x's column
    np.testing.assert_allclose(gx, x / np.hypot(x, y))


# ---- errors ------------------------------------------------------------------------------

def _rule_fn(bwd):
    @custom_vjp
    def h(x, y):
        return np.sum(x * y)

    h.defvjp(lambda x, y: (h(x, y), (x, y)), bwd)
    return h


def test_error_bwd_wrong_arity():
    h = _rule_fn(lambda r, g: (g * r[1],))
    with pytest.raises(TypeError, match=r"bwd of 'h' must return a tuple with one cotangent per "
                                        r"argument \(2\)"):
        grad(h)(np.ones(3), np.ones(3))
    h = _rule_fn(lambda r, g: g * r[1])
    with pytest.raises(TypeError, match="must return a tuple"):
        grad(h)(np.ones(3), np.ones(3))


def test_error_bwd_wrong_shape():
    h = _rule_fn(lambda r, g: (np.ones(2), None))
    with pytest.raises(ShapeError, match=r"cotangent of shape \(2,\) for argument 0 of shape "
                                         r"\(3,\)"):
        grad(h)(np.ones(3), np.ones(3))


def test_error_bwd_wrong_structure():
    @custom_vjp
    def f(p):
        return np.sum(p["a"])

    f.defvjp(lambda p: (f(p), None), lambda _, g: ({"b": g},))
    with pytest.raises(ValueError, match="structure"):
        grad(f)({"a": np.ones(2)})


def test_error_missing_rules():
    @custom_vjp
    def f(x):
        return x

    @custom_jvp
    def j(x):
        return x

    with pytest.raises(TypeError, match=r"'f' has no rule yet; call .defvjp\(fwd, bwd\)"):
        grad(f)(1.0)
    with pytest.raises(TypeError, match="'j' has no rule yet; decorate one with @f.defjvp"):
        jvp(j, (1.0,), (1.0,))
