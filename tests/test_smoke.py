import numpy as np

from pycograd import Var, grad, value_and_grad


def test_seed_quickstart():
    def f(x):
        return np.sum(np.sin(x * x))

    x = np.array([0.5, 1.0, 1.5])
    value, (g,) = value_and_grad(f)(x)
    np.testing.assert_allclose(value, np.sum(np.sin(x * x)))
    np.testing.assert_allclose(g, 2 * x * np.cos(x * x))


def test_second_order():
    d2 = grad(grad(lambda x: np.sin(x) * x, 0), 0)(1.3)
    np.testing.assert_allclose(d2, -np.sin(1.3) * 1.3 + 2 * np.cos(1.3))


def test_var_backward():
    a = Var(2.0)
    (a * a * a).backward()
    np.testing.assert_allclose(a.grad, 12.0)
