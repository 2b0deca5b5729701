"""The public differentiation API: argnums, has_aux, pytrees, dtypes, the ndarray surface of
traced values, the ``Var`` view, nested derivatives."""

from collections import namedtuple

import numpy as np
import pytest

from pycograd import NonScalarOutputError, Var, grad, stop_gradient, value_and_grad, vjp
from pycograd.core.errors import ArgnumsError
from pycograd.core.trace import Tracer

X3 = np.array([0.5, 1.0, 1.5])
Point = namedtuple("Point", "w b")


def f2(x, y):
    return np.sum(x * x * y)


# ---- argnums ------------------------------------------------------------------------

def test_argnums_none_gives_one_gradient_per_positional_argument():
    x, y = X3, np.array([2.0, 3.0, 4.0])
    value, grads = value_and_grad(f2)(x, y)
    assert isinstance(grads, tuple) and len(grads) == 2
    np.testing.assert_allclose(value, np.sum(x * x * y))
    np.testing.assert_allclose(grads[0], 2 * x * y)
    np.testing.assert_allclose(grads[1], x * x)
    (g,) = grad(lambda x: np.sum(x * x))(x)
    np.testing.assert_allclose(g, 2 * x)


def test_seed_unpacking_form():
    value, (g,) = value_and_grad(lambda x: np.sum(np.sin(x * x)))(X3)
    np.testing.assert_allclose(g, 2 * X3 * np.cos(X3 * X3))


def test_int_argnums_gives_bare_gradient():
    x, y = X3, np.array([2.0, 3.0, 4.0])
    g = grad(f2, 1)(x, y)
    assert isinstance(g, np.ndarray)
    np.testing.assert_allclose(g, x * x)
    value, g0 = value_and_grad(f2, 0)(x, y)
    np.testing.assert_allclose(g0, 2 * x * y)
    np.testing.assert_allclose(value, np.sum(x * x * y))


def test_tuple_argnums_gives_tuple_in_requested_order():
    x, y = X3, np.array([2.0, 3.0, 4.0])
    gy, gx = grad(f2, (1, 0))(x, y)
    np.testing.assert_allclose(gx, 2 * x * y)
    np.testing.assert_allclose(gy, x * x)
    (gy_only,) = grad(f2, (1,))(x, y)
    np.testing.assert_allclose(gy_only, x * x)


def test_negative_argnums_and_numpy_integer_argnums():
    x, y = X3, np.array([2.0, 3.0, 4.0])
    np.testing.assert_allclose(grad(f2, -1)(x, y), x * x)
    np.testing.assert_allclose(grad(f2, (-2,))(x, y)[0], 2 * x * y)
    np.testing.assert_allclose(grad(f2, np.int64(1))(x, y), x * x)


def test_argnum_alias():
    x, y = X3, np.array([2.0, 3.0, 4.0])
    np.testing.assert_allclose(grad(f2, argnum=1)(x, y), x * x)
    np.testing.assert_allclose(value_and_grad(f2, argnum=0)(x, y)[1], 2 * x * y)


def test_argnums_and_argnum_together_is_an_error():
    with pytest.raises(ArgnumsError, match="not both"):
        grad(f2, 0, argnum=0)
    with pytest.raises(ArgnumsError, match="not both"):
        value_and_grad(f2, argnums=1, argnum=1)


@pytest.mark.parametrize("argnums", [2, -3, (0, 2), True, 0.5])
def test_bad_argnums(argnums):
    with pytest.raises(ArgnumsError) as e:
        grad(f2, argnums)(X3, X3)
    assert "2 positional argument" in str(e.value) and "range(2)" in str(e.value)
    assert isinstance(e.value, ValueError)


# ---- has_aux --------------------------------------------------------------------------

def aux_f(x):
    return np.sum(x * x), {"double": 2 * x, "n": 3}


def test_grad_has_aux():
    g, aux = grad(aux_f, 0, has_aux=True)(X3)
    np.testing.assert_allclose(g, 2 * X3)
    assert aux["n"] == 3
    assert type(aux["double"]) is np.ndarray and not isinstance(aux["double"], Tracer)
    np.testing.assert_allclose(aux["double"], 2 * X3)
    (g,), aux = grad(aux_f, has_aux=True)(X3)
    np.testing.assert_allclose(g, 2 * X3)


def test_value_and_grad_has_aux():
    (value, aux), g = value_and_grad(aux_f, 0, has_aux=True)(X3)
    np.testing.assert_allclose(value, np.sum(X3 * X3))
    assert not isinstance(value, Tracer)
    np.testing.assert_allclose(aux["double"], 2 * X3)
    np.testing.assert_allclose(g, 2 * X3)


def test_vjp_has_aux():
    out, vjp_fn, aux = vjp(lambda x: (x * x, x + 1), X3, has_aux=True)
    np.testing.assert_allclose(out, X3 * X3)
    np.testing.assert_allclose(aux, X3 + 1)
    assert not isinstance(aux, Tracer) and not isinstance(out, Tracer)
    (ct,) = vjp_fn(np.ones(3))
    np.testing.assert_allclose(ct, 2 * X3)


@pytest.mark.parametrize("transform", [
    lambda f: grad(f, has_aux=True)(X3),
    lambda f: value_and_grad(f, has_aux=True)(X3),
    lambda f: vjp(f, X3, has_aux=True),
])
def test_has_aux_needs_a_pair(transform):
    with pytest.raises(TypeError, match=r"pair \(output, aux\)"):
        transform(lambda x: np.sum(x))


# ---- pytrees --------------------------------------------------------------------------

def test_dict_argument():
    params = {"w": np.array([1.0, 2.0]), "b": np.array(0.5)}

    def f(p):
        return np.sum(p["w"] ** 2) * p["b"]

    g = grad(f, 0)(params)
    assert set(g) == {"w", "b"}
    np.testing.assert_allclose(g["w"], 2 * params["w"] * 0.5)
    np.testing.assert_allclose(g["b"], 5.0)
    assert g["b"].shape == ()


def test_list_tuple_namedtuple_and_nested():
    w = np.array([1.0, -2.0])
    tree = {"layers": [Point(w, np.array(0.3)), (w * 2, [np.array(1.5)])], "scale": 2.0}

    def f(t):
        p0, (a, [c]) = t["layers"]
        return t["scale"] * (np.sum(p0.w * a) + p0.b * c)

    g = grad(f, 0)(tree)
    p0, (ga, [gc]) = g["layers"]
    assert isinstance(g["layers"], list) and isinstance(g["layers"][1], tuple)
    assert type(p0) is Point
    np.testing.assert_allclose(p0.w, 2.0 * w * 2)
    np.testing.assert_allclose(p0.b, 2.0 * 1.5)
    np.testing.assert_allclose(ga, 2.0 * w)
    np.testing.assert_allclose(gc, 2.0 * 0.3)
    np.testing.assert_allclose(g["scale"], np.sum(w * w * 2) + 0.3 * 1.5)


def test_pytree_with_several_positional_args():
    gs = grad(lambda a, b: np.sum(a[0] * b["k"]))((X3, X3), {"k": np.ones(3)})
    assert isinstance(gs, tuple) and len(gs) == 2
    np.testing.assert_allclose(gs[0][0], np.ones(3))
    np.testing.assert_allclose(gs[0][1], np.zeros(3))
    np.testing.assert_allclose(gs[1]["k"], X3)


def test_integer_and_boolean_leaves_get_none():
    tree = {"x": X3, "n": 3, "idx": np.arange(3), "flag": True,
            "mask": np.array([True, False, True])}

    def f(t):
        return np.sum(t["x"][t["idx"]] ** t["n"] * t["mask"]) if t["flag"] else 0.0

    g = grad(f, 0)(tree)
    assert g["n"] is None and g["idx"] is None and g["flag"] is None and g["mask"] is None
    np.testing.assert_allclose(g["x"], 3 * X3**2 * [1, 0, 1])


def test_integer_and_boolean_positional_args_get_none():
    gx, gn, gb = grad(lambda x, n, b: np.sum(x**n) if b else np.sum(x))(X3, 2, True)
    np.testing.assert_allclose(gx, 2 * X3)
    assert gn is None and gb is None
    assert grad(lambda x, i: np.sum(x) * i, 1)(X3, np.int32(2)) is None


def test_unused_float_argument_gets_zeros_of_its_shape_and_dtype():
    y = np.ones((2, 4), dtype=np.float32)
    gx, gy = grad(lambda x, y: np.sum(x))(X3, y)
    np.testing.assert_allclose(gx, np.ones(3))
    assert gy.shape == (2, 4) and gy.dtype == np.float32 and not gy.any()
    value, g = value_and_grad(lambda x: 3.0, 0)(X3)
    assert value == 3.0
    assert g.shape == (3,) and not g.any()


def test_python_float_arguments():
    (g,) = grad(lambda x: x * x * x)(2.0)
    assert isinstance(g, float)
    assert g == pytest.approx(12.0)
    assert grad(lambda x, y: x * y, 1)(3.0, 5.0) == pytest.approx(3.0)
    assert grad(lambda x: np.sin(x), 0)(0.0) == pytest.approx(1.0)


def test_zero_d_array_argument_gets_zero_d_array_gradient():
    g = grad(lambda x: x * x, 0)(np.array(3.0))
    assert type(g) is np.ndarray and g.shape == () and g == 6.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradient_dtype_follows_input(dtype):
    x = X3.astype(dtype)
    # Python and float64 scalars would promote under value-based casting rules: they must not.
    g = grad(lambda x: np.sum(2.5 * x * x + np.float64(1.0) * x), 0)(x)
    assert g.dtype == dtype
    np.testing.assert_allclose(g, 5 * X3 + 1, rtol=1e-6)
    assert grad(lambda x: x * x, 0)(dtype(2.0)).dtype == dtype


def test_keyword_arguments_are_passed_through_not_differentiated():
    def f(x, *, scale=1.0, offset=0.0):
        return np.sum(x * scale + offset)

    g = grad(f)(X3, scale=3.0, offset=np.ones(3))
    assert isinstance(g, tuple) and len(g) == 1
    np.testing.assert_allclose(g[0], 3.0 * np.ones(3))
    value, g = value_and_grad(f, 0)(X3, scale=2.0)
    np.testing.assert_allclose(value, 2 * np.sum(X3))


def test_gradients_are_writable_arrays_the_caller_owns():
    cases = [
        lambda x, y: np.sum(x + y),                        # read-only broadcast views
        lambda x, y: np.sum((x + y) * 2.0),                # one array for both inputs
        lambda x, y: x[0] * 1.0 + y[1],                    # scatter into zeros
        lambda x, y: np.sum(np.broadcast_to(x, (4, 3)) * y),
    ]
    for f in cases:
        gx, gy = grad(f)(X3.copy(), X3.copy())
        for g in (gx, gy):
            assert type(g) is np.ndarray and g.flags.writeable
        assert not np.shares_memory(gx, gy)
        before = gy.copy()
        gx += 100.0
        np.testing.assert_array_equal(gy, before)


def test_vjp_returns_fresh_cotangents():
    ct = np.ones(3)
    (g,) = vjp(lambda x: x, X3)[1](ct)
    assert g is not ct and g.flags.writeable
    g[0] = 5.0
    assert ct[0] == 1.0


def test_vjp_fn_can_be_called_many_times():
    out, vjp_fn = vjp(lambda x, y: np.sin(x) * y, X3, 2.0)
    np.testing.assert_allclose(out, np.sin(X3) * 2.0)
    for scale in (1.0, 2.0, -3.0):
        gx, gy = vjp_fn(scale * np.ones(3))
        np.testing.assert_allclose(gx, scale * 2.0 * np.cos(X3))
        assert gy == pytest.approx(scale * np.sum(np.sin(X3)))


def test_vjp_pytree_output_and_cotangent_shape_check():
    out, vjp_fn = vjp(lambda x: {"a": x * 2, "b": np.sum(x)}, X3)
    np.testing.assert_allclose(out["a"], 2 * X3)
    (g,) = vjp_fn({"a": np.ones(3), "b": 10.0})
    np.testing.assert_allclose(g, 2 + 10 * np.ones(3))
    with pytest.raises(ValueError, match=r"shape \(2,\).*shape \(3,\)"):
        vjp_fn({"a": np.ones(2), "b": 1.0})


# ---- stop_gradient -----------------------------------------------------------------------

def test_stop_gradient_blocks_gradient():
    g = grad(lambda x: np.sum(x * stop_gradient(x)), 0)(X3)
    np.testing.assert_allclose(g, X3)
    assert not grad(lambda x: np.sum(stop_gradient(x * x)), 0)(X3).any()
    np.testing.assert_array_equal(stop_gradient(X3), X3)


def test_stop_gradient_under_grad_of_grad():
    # d/dx [x * sg(x^2)] = sg(x^2) = x^2 (as a constant); d2/dx2 = 0.
    d1 = grad(lambda x: x * stop_gradient(x * x), 0)
    assert d1(3.0) == pytest.approx(9.0)
    assert grad(d1, 0)(3.0) == pytest.approx(0.0)
    # It blocks every level (as in JAX): d/dy [y * sg(y)] = sg(y), which has no x-derivative...
    assert grad(grad(lambda y: y * stop_gradient(y), 0), 0)(2.0) == pytest.approx(0.0)
    # ...while the outer level still differentiates what it did not stop.
    outer = lambda x: x * grad(lambda y: y * stop_gradient(x), 0)(1.0)  # noqa: E731  x * sg(x)
    assert grad(outer, 0)(2.0) == pytest.approx(2.0)


# ---- the ndarray surface on traced values -------------------------------------------------

def test_ndarray_surface_on_traced_values():
    A = np.arange(1.0, 7.0).reshape(2, 3)
    seen = {}

    def f(x):
        seen.update(
            T=x.T.shape, shape=x.shape, ndim=x.ndim, dtype=x.dtype, size=x.size, len=len(x),
            reshape=(x.reshape(3, 2).shape, x.reshape((6,)).shape, x.reshape(-1, 2).shape),
            transpose=(x.transpose().shape, x.transpose(1, 0).shape, x.transpose((1, 0)).shape),
            red=(x.sum(axis=0).shape, x.mean(1).shape, x.max().shape,
                 x.min(axis=1, keepdims=True).shape),
            astype=x.astype(np.float32).dtype, flatten=x.flatten().shape, ravel=x.ravel().shape,
            squeeze=(x[None].squeeze().shape, x[:1].squeeze(0).shape),
            rows=[type(r) for r in x],
        )
        return (np.sum(x.T.reshape(6) * np.arange(6.0))
                + x.sum() + x.mean() * 6 + x.max() + x.min()
                + np.sum(x.astype(np.float32)) + x.flatten()[0] + x.ravel()[-1]
                + np.sum(x.dot(np.ones(3))) + np.sum(x[None].squeeze(0))
                + sum(np.sum(r) for r in x) + x[1, 2] + np.sum(x[:, 1:]))

    g = grad(f, 0)(A)
    assert seen["T"] == (3, 2) and seen["shape"] == (2, 3) and seen["ndim"] == 2
    assert seen["dtype"] == np.float64 and seen["size"] == 6 and seen["len"] == 2
    assert seen["reshape"] == ((3, 2), (6,), (3, 2))
    assert seen["transpose"] == ((3, 2),) * 3
    assert seen["red"] == ((3,), (2,), (), (2, 1))
    assert seen["astype"] == np.float32
    assert seen["flatten"] == (6,) and seen["ravel"] == (6,)
    assert seen["squeeze"] == ((2, 3), (3,))
    assert all(issubclass(t, Tracer) for t in seen["rows"]) and len(seen["rows"]) == 2
    expected = np.arange(6.0).reshape(3, 2).T + 6  # sum, mean, astype, dot, squeeze, rows
    expected[1, 2] += 1 + 1 + 1   # max, ravel()[-1], x[1, 2]
    expected[0, 0] += 1 + 1       # min, flatten()[0]
    expected[:, 1:] += 1
    np.testing.assert_allclose(g, expected)


def test_reflected_and_unary_operators():
    A = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])

    def f(x):
        parts = [2 - x, 2 / x, 2**x, np.float64(3.0) * x, np.float64(1.0) - x, -x, +x, abs(-x),
                 A @ x, x**2, x / 4]
        assert all(isinstance(p, Tracer) for p in parts)
        return sum(np.sum(p) for p in parts)

    x = np.array([0.5, 1.5])
    g = grad(f, 0)(x)
    expected = (-1 - 2 / x**2 + 2**x * np.log(2) + 3 - 1 - 1 + 1 + 1 + A.sum(axis=0)
                + 2 * x + 0.25)
    np.testing.assert_allclose(g, expected)


def test_comparisons_return_plain_bool_arrays():
    out = {}

    def f(x):
        for name, r in [("gt", x > 1), ("lt", x < 1), ("eq", x == 1.0), ("ne", x != 1.0),
                        ("ge", x >= 1), ("le", 1 <= x), ("ufunc", np.greater(x, 1))]:
            out[name] = r
        return np.sum(x * (x > 1))

    g = grad(f, 0)(X3)
    for name, r in out.items():
        assert type(r) is np.ndarray and r.dtype == bool, name
    np.testing.assert_array_equal(out["gt"], [False, False, True])
    np.testing.assert_array_equal(out["le"], [False, True, True])
    np.testing.assert_allclose(g, [0, 0, 1])


def test_constants_built_inside_the_function_stay_plain():
    def f(x):
        c = np.exp(np.ones(3)) @ np.ones(3)
        assert not isinstance(c, Tracer)
        return np.sum(x) * c

    np.testing.assert_allclose(grad(f, 0)(X3), 3 * np.e * np.ones(3))


# ---- the Var view -------------------------------------------------------------------------

def test_var_public_view():
    a = Var(np.array([1.0, 2.0]))
    b = Var(3.0)
    c = np.sum(a * b + np.exp(a))
    assert isinstance(c, Var)
    np.testing.assert_allclose(c.value, 3 * 3.0 + np.e + np.e**2)
    c.backward()
    np.testing.assert_allclose(a.grad, 3.0 + np.exp([1.0, 2.0]))
    np.testing.assert_allclose(b.grad, 3.0)
    assert Var(2).value.dtype == np.float64


def test_var_backward_twice_needs_retain_graph():
    a = Var(2.0)
    c = a * a * a
    c.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        c.backward()
    a = Var(2.0)
    c = a * a * a
    c.backward(retain_graph=True)
    c.backward()
    np.testing.assert_allclose(a.grad, 24.0)   # accumulated twice


def test_var_backward_non_scalar():
    a = Var(np.array([1.0, 2.0]))
    c = a * a
    with pytest.raises(NonScalarOutputError, match=r"shape \(2,\).*backward\(g\)"):
        c.backward()
    c.backward(np.array([1.0, 10.0]))
    np.testing.assert_allclose(a.grad, [2.0, 40.0])


# ---- nested derivatives -----------------------------------------------------------------

def test_grad_of_grad():
    f = lambda x: np.sin(x) * x  # noqa: E731
    for x in (0.3, 1.3, -2.0):
        expected = -np.sin(x) * x + 2 * np.cos(x)
        assert grad(grad(f, 0), 0)(x) == pytest.approx(expected)
        (d2,) = grad(grad(f))(x)   # argnums=None nests: grad of a 1-tuple of gradients
        assert d2 == pytest.approx(expected)


def test_third_derivative():
    d3 = grad(grad(grad(np.sin, 0), 0), 0)
    for x in (0.1, 1.0, 2.5):
        assert d3(x) == pytest.approx(-np.cos(x))
    xs = np.array([0.1, 1.0, 2.5])
    d3v = grad(lambda x: np.sum(grad(lambda x: np.sum(grad(lambda x: np.sum(np.sin(x)), 0)(x)),
                                     0)(x)), 0)
    np.testing.assert_allclose(d3v(xs), -np.cos(xs))


@pytest.mark.parametrize("x", [0.5, 1.0, 3.0, -2.0])
def test_no_perturbation_confusion(x):
    # d/dx [x * d/dy (x + y)] = d/dx [x * 1] = 1, whatever x and y are.
    assert grad(lambda x: x * grad(lambda y: x + y, 0)(1.0), 0)(x) == pytest.approx(1.0)
    # d/dx [x * d/dy (x * y)] = d/dx [x * x] = 2x.
    assert grad(lambda x: x * grad(lambda y: x * y, 0)(2.0), 0)(x) == pytest.approx(2 * x)


def test_operators_mod_floordiv_and_function_methods():
    """``%``, ``//`` and the ndarray methods that are numpy functions differentiate like
    the functions; in-place ``.sort()`` is refused with the functional spelling."""
    def f(x):
        return (np.sum((x % 1.5) * (x // 1.0) + x.cumsum() + x.cumprod())
                + x.take([0, 1]).sum() + x.repeat(2).sum() + np.outer(x, x).trace()
                + np.ptp(x) + np.sum(x[x.argsort()] * np.arange(3.0)))

    x = np.array([0.3, 1.7, 2.2])
    g = grad(f, 0)(x)
    fd = np.array([(f(x + e * 1e-6) - f(x - e * 1e-6)) / 2e-6 for e in np.eye(3)])
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
    with pytest.raises(TypeError, match=r"np\.sort"):
        grad(lambda x: x.sort() or 1.0, 0)(x)
