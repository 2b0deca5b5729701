"""dtype fidelity: float32/float16 values keep their dtype through forward and backward,
and mixed precision promotes as numpy does.

The forward dtype is numpy's (a float64 operand promotes a float32 one). Backward gives
every value a cotangent of the value's own dtype: the op that promoted casts the
cotangent back, so no cotangent is more precise than its value. ``Var.backward`` stores
the raw cotangents (no final cast, unlike ``grad``), so these tests read them there; the
sweep's ``low_precision`` mode checks the same at every tape node of every case.
"""

from __future__ import annotations

import numpy as np
import pytest

import pycograd
from pycograd.core.var import Var

F16, F32 = np.float16, np.float32


def _raw_grad(f, x: np.ndarray) -> tuple:
    """``(f(x) value, raw cotangent of x)`` on the eager tape, with no final cast."""
    v = Var(x)
    out = f(v)
    out.backward()
    return out.value, v.grad


@pytest.mark.parametrize("dt", [F32, F16])
def test_a_float64_operand_promotes_forward_not_the_cotangent(dt):
    x = np.array([1.0, 2.0, 3.0], dt)
    c = np.array([0.5, 1.5, 2.5])  # float64
    value, g = _raw_grad(lambda v: np.sum(np.sin(v) * c), x)
    assert value.dtype == np.float64  # numpy's promotion
    assert g.dtype == dt
    np.testing.assert_allclose(g, (np.cos(x) * c).astype(dt), rtol=1e-3)


@pytest.mark.parametrize("dt", [F32, F16])
@pytest.mark.parametrize("reduce", [np.max, np.min])
def test_extremum_ties_split_in_the_values_dtype(dt, reduce):
    """The tie count is an integer; dividing by it must not promote to float64."""
    x = np.array([[1.0, 3.0, 3.0], [-2.0, -2.0, 0.0]], dt)
    value, g = _raw_grad(lambda v: np.sum(reduce(v, axis=1) * 2), x)
    assert value.dtype == dt and g.dtype == dt
    expected = np.where(x == reduce(x, axis=1, keepdims=True), 1.0, 0.0)
    expected = 2 * expected / expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(g, expected)


def test_float_power_computes_in_float64_as_numpy_defines():
    x = np.array([0.5, 1.5], F32)
    value, g = _raw_grad(lambda v: np.sum(np.float_power(v, 3)), x)
    assert value.dtype == np.float64
    assert g.dtype == F32
    np.testing.assert_allclose(g, 3 * x.astype(np.float64) ** 2, rtol=1e-6)


def test_fft_of_float16_is_complex64_and_its_gradient_float16():
    x = np.array([1.0, -0.5, 0.25, 2.0], F16)
    assert np.fft.rfft(x).dtype == np.complex64
    value, g = _raw_grad(lambda v: np.sum(np.abs(np.fft.rfft(v))), x)
    assert value.dtype == F32 and g.dtype == F16


@pytest.mark.parametrize("name", ["gammaln", "erf", "expit"])
def test_scipy_special_promotes_float16_forward_not_backward(name):
    """scipy has no float16 loops (it computes float16 in float32 or float64)."""
    fn = getattr(pytest.importorskip("scipy.special"), name)
    x = np.array([0.5, 1.5, 3.0], F16)
    value, g = _raw_grad(lambda v: np.sum(fn(v)), x)
    assert np.sum(value).dtype == np.sum(fn(x)).dtype != F16
    assert g.dtype == F16
    g64 = pycograd.grad(lambda v: np.sum(fn(v)))(x.astype(np.float64))[0]
    np.testing.assert_allclose(g, g64, rtol=2e-3)


@pytest.mark.parametrize("ord", [None, 1, np.inf, 0, 3])
def test_vector_norms_keep_float16(ord):
    x = np.array([1.0, -2.0, 0.0, 0.5], F16)
    assert pycograd.vjp(lambda v: np.linalg.norm(v, ord), x)[0].dtype == \
        np.linalg.norm(x, ord).dtype == F16


def test_mixed_solve_gives_each_operand_its_own_dtype():
    a = np.array([[2.0, 0.5], [0.25, 3.0]], F32)
    b = np.array([[1.0], [2.0]])  # float64
    va, vb = Var(a), Var(b)
    out = np.sum(np.linalg.solve(va, vb))
    assert out.value.dtype == np.linalg.solve(a, b).dtype == np.float64
    out.backward()
    assert va.grad.dtype == F32 and vb.grad.dtype == np.float64


@pytest.mark.parametrize("dt", [F32, F16, np.float64])
def test_grad_of_a_chain_keeps_the_dtype_and_float64_is_unchanged(dt):
    def f(x):
        return np.sum(np.tanh(np.exp(x) * 0.5 + x[::-1]) ** 2) / np.max(x)

    x = np.array([0.1, 0.4, 0.7], dt)
    g = pycograd.grad(f)(x)[0]
    assert g.dtype == dt
    g64 = pycograd.grad(f)(x.astype(np.float64))[0]
    np.testing.assert_allclose(g, g64, rtol={F16: 2e-2, F32: 1e-5}.get(dt, 0))
