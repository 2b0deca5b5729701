"""numpy functions given Python lists / tuples of traced values, library callables handed
straight to a transform, np.einsum's sublist form and np.rollaxis (HIPS autograd parity)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pycograd import eval_shape, grad, jacobian, jacrev, jvp, vmap
from pycograd.numpy_api.transparent import routed


def test_reductions_of_a_list_of_traced_values():
    assert grad(lambda x: np.mean([x, x + 2]), 0)(0.0) == 1.0
    assert grad(lambda x: np.mean((x, x + 2)), 0)(0.0) == 1.0
    assert grad(lambda x: np.std([x, x + 2]), 0)(0.0) == 0.0
    assert grad(lambda x: np.var((x, x + 2)), 0)(0.0) == 0.0
    assert grad(lambda x: np.linalg.norm([x, x + 2]), 0)(0.0) == 1.0
    assert grad(lambda x: np.linalg.norm((x, x + 2)), 0)(0.0) == 1.0
    assert grad(lambda x: np.sum(np.sin([x, 2 * x])), 0)(0.3) == pytest.approx(
        math.cos(0.3) + 2 * math.cos(0.6))


def test_list_with_constants_beside_a_traced_argument():
    """np.append([1.0, 2.0], x): the traced argument dispatches, the plain list is an array."""
    assert grad(lambda b: np.sum(np.append([1.0, 2.0], b) ** 2), 0)(3.0) == 6.0
    out, t = jvp(lambda b: np.append([1.0, 2.0], b), (3.0,), (1.0,))
    np.testing.assert_array_equal(out, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(t, [0.0, 0.0, 1.0])
    g = grad(lambda a, b: np.sum(np.append([a, a * 2], [[b]])), (0, 1))(1.0, 2.0)
    assert g == (3.0, 1.0)


def test_vmap_and_eval_shape_through_a_list():
    xs = np.array([0.1, 0.2, 0.3])
    np.testing.assert_allclose(vmap(grad(lambda x: np.mean([x, x ** 2]), 0))(xs),
                               (1 + 2 * xs) / 2)
    assert eval_shape(lambda x: np.stack([np.mean([x, x])]), 1.0).shape == (1,)


def test_library_callables_handed_to_a_transform():
    assert grad(math.sin, 0)(0.5) == pytest.approx(math.cos(0.5))
    np.testing.assert_allclose(grad(np.mean, 0)([1.0, 3.0]), [0.5, 0.5])
    jac = jacobian(np.append, (0, 1))([1.0, 2.0], 3.0)
    np.testing.assert_array_equal(np.stack(jac[0], -1), [[1, 0], [0, 1], [0, 0]])
    np.testing.assert_array_equal(jac[1], [0, 0, 1])


def test_scipy_callables_handed_to_a_transform():
    sp = pytest.importorskip("scipy.special")
    st = pytest.importorskip("scipy.stats")
    la = pytest.importorskip("scipy.linalg")
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(grad(sp.logsumexp, 0)(x), np.exp(x) / np.exp(x).sum())
    assert grad(st.norm.logpdf, 0)(0.5) == pytest.approx(-0.5)
    assert grad(st.norm(0, 2).logpdf, 0)(0.5) == pytest.approx(-0.125)
    np.testing.assert_allclose(jacrev(la.expm)(np.zeros((2, 2))).reshape(4, 4), np.eye(4))


def test_only_list_displays_make_a_function_routed():
    """np.zeros((n, m)) passes a tuple display to a shape: no routing for that."""
    def shapes(x):
        n, m = 2, 3
        return np.sum(np.zeros((n, m))) + np.sum(np.reshape(x, (n, m)))

    def listed(x):
        return np.mean([x, x])

    assert routed(shapes) is shapes
    assert routed(listed) is not listed


def test_einsum_sublist_form():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 3)), rng.normal(size=(3, 4))
    ga = grad(lambda a: np.sum(np.einsum(a, [0, 1], b, [1, 2]) ** 2), 0)(a)
    gs = grad(lambda a: np.sum(np.einsum("ij,jk->ik", a, b) ** 2), 0)(a)
    np.testing.assert_allclose(ga, gs)
    j = jacrev(lambda a: np.einsum(a, [0, 1], b, [1, 2], [2, 0]))(a)
    assert j.shape == (4, 2, 2, 3)
    np.testing.assert_allclose(j, jacrev(lambda a: np.einsum("ij,jk->ki", a, b))(a))


@pytest.mark.parametrize("axis,start", [(0, 0), (0, 3), (2, 0), (1, 2), (-1, -3), (2, 3)])
def test_rollaxis(axis, start):
    x = np.arange(24.0).reshape(2, 3, 4)
    want = np.rollaxis(x, axis, start)
    got, t = jvp(lambda x: np.rollaxis(x, axis, start), (x,), (x,))
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(t, want)
    assert eval_shape(lambda x: np.rollaxis(x, axis, start), x).shape == want.shape
