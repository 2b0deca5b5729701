"""Complex numbers: pycograd's gradients equal HIPS autograd's (its convention,
``df/dx - i df/dy`` for a real ``f`` of ``z = x + iy``), measured along the real and
imaginary axes; ``holomorphic_grad`` gives ``f'(z)``; forward mode and the tracer surface
(``.real``, ``.imag``) on complex values."""

from __future__ import annotations

import numpy as np
import pytest

import pycograd
from pycograd.transforms.grad import holomorphic_grad

autograd = pytest.importorskip("autograd")
anp = pytest.importorskip("autograd.numpy")

RNG = np.random.default_rng(0)
Z = RNG.standard_normal((2, 3)) + 1j * RNG.standard_normal((2, 3))
W = RNG.standard_normal((3, 2)) + 1j * RNG.standard_normal((3, 2))
X = RNG.standard_normal((2, 3))

# Real-valued functions of complex (and mixed) inputs, written once for both libraries.
REAL_VALUED = {
    "abs-squared": lambda n, z: n.sum(n.abs(z) ** 2),
    "real-sin": lambda n, z: n.sum(n.real(n.sin(z) * z)),
    "imag-exp": lambda n, z: n.sum(n.imag(n.exp(z) / (z + 3.0))),
    "angle": lambda n, z: n.sum(n.angle(z) * n.abs(z)),
    "conj-product": lambda n, z: n.sum(n.real(n.conj(z) * z * z)),
    "matmul": lambda n, z: n.real(n.sum(n.dot(z, W) ** 2)),
    "log-abs": lambda n, z: n.sum(n.log(n.abs(z)) + n.real(n.sqrt(z * z + 2))),
    "mean-prod": lambda n, z: n.abs(n.mean(z) * n.prod(z[0])),
    "power": lambda n, z: n.sum(n.real(z ** (1.5 + 0.5j))),
}


@pytest.mark.parametrize("name", sorted(REAL_VALUED))
def test_grad_matches_autograd(name):
    f = REAL_VALUED[name]
    expected = autograd.grad(lambda z: f(anp, z))(Z)
    got = pycograd.grad(lambda z: f(np, z), argnums=0)(Z)
    assert got.dtype == np.complex128
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(REAL_VALUED))
def test_second_order_matches_autograd(name):
    """The gradient of a real pairing of the gradient (an HVP) agrees too."""
    f = REAL_VALUED[name]
    v = RNG.standard_normal(Z.shape) + 1j * RNG.standard_normal(Z.shape)

    def hvp(n, g):
        return lambda z: n.real(n.sum(g(lambda u: f(n, u))(z) * v))
    expected = autograd.grad(hvp(anp, autograd.grad))(Z)
    got = pycograd.grad(hvp(np, lambda h: pycograd.grad(h, 0)), 0)(Z)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-11)


def test_convention_is_dfdx_minus_i_dfdy():
    """Finite differences along the real and the imaginary axis of each element."""
    def f(z):
        return np.sum(np.abs(np.sin(z)) * np.real(z) + np.imag(z * z) ** 2)
    g = pycograd.grad(f, 0)(Z)
    eps = 1e-6
    for j in range(Z.size):
        e = np.zeros(Z.size)
        e[j] = eps
        e = e.reshape(Z.shape)
        dfdx = (f(Z + e) - f(Z - e)) / (2 * eps)
        dfdy = (f(Z + 1j * e) - f(Z - 1j * e)) / (2 * eps)
        np.testing.assert_allclose(g.reshape(-1)[j], dfdx - 1j * dfdy, rtol=1e-6, atol=1e-8)


def test_descent_step_uses_the_conjugate():
    """Under this convention a descent step is ``z - lr * conj(grad)``."""
    def f(z):
        return np.sum(np.abs(z - (1 + 2j)) ** 2)
    z = Z.copy()
    for _ in range(50):
        z = z - 0.1 * np.conj(pycograd.grad(f, 0)(z))
    np.testing.assert_allclose(z, np.full(Z.shape, 1 + 2j), atol=1e-4)


@pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning")  # autograd's own cast
def test_real_input_meeting_complex_gets_real_gradient():
    def f(n, x, z):
        return n.sum(n.abs(x * z + 1j * x) ** 2) + n.sum(n.real(n.dot(x, W) * z[0, 0]))
    gx, gz = pycograd.grad(lambda x, z: f(np, x, z))(X, Z)
    ex, ez = autograd.grad(lambda x, z: f(anp, x, z), (0, 1))(X, Z)
    assert gx.dtype == np.float64 and gz.dtype == np.complex128
    np.testing.assert_allclose(gx, ex, rtol=1e-10)
    np.testing.assert_allclose(gz, ez, rtol=1e-10)


def test_complex64_keeps_its_dtype():
    z = Z.astype(np.complex64)
    g = pycograd.grad(lambda z: np.sum(np.abs(np.exp(z)) ** 2), 0)(z)
    assert g.dtype == np.complex64
    expected = autograd.grad(lambda z: anp.sum(anp.abs(anp.exp(z)) ** 2))(Z)
    np.testing.assert_allclose(g, expected, rtol=1e-4)


@pytest.mark.parametrize("f", [lambda z: z ** 3 + np.sin(z) * z, lambda z: np.exp(z) / (z + 2),
                               lambda z: np.log(z * z + 1) + np.conj(np.conj(z))],
                         ids=["poly-sin", "exp-div", "log"])
def test_holomorphic_grad_is_the_complex_derivative(f):
    z, h = 0.3 + 0.7j, 1e-6
    for step in (h, 1j * h):  # a holomorphic f has the same difference quotient both ways
        fd = (f(z + step) - f(z - step)) / (2 * step)
        np.testing.assert_allclose(holomorphic_grad(f)(z), fd, rtol=1e-7)


def test_holomorphic_grad_matches_autograd_on_arrays():
    def f(n, z, w):
        return n.sum(n.sin(n.dot(z, w)) * z[0, 0])
    got = holomorphic_grad(lambda z, w: f(np, z, w), argnums=(0, 1))(Z, W)
    expected = [autograd.holomorphic_grad(lambda z, w: f(anp, z, w), i)(Z, W) for i in (0, 1)]
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-10)


def test_holomorphic_grad_has_aux():
    g, aux = holomorphic_grad(lambda z: (z * z, "aux"), has_aux=True)(2.0 + 1.0j)
    assert aux == "aux"
    np.testing.assert_allclose(g, 4.0 + 2.0j)


def test_grad_refuses_complex_output():
    with pytest.raises(pycograd.NonScalarOutputError, match="holomorphic_grad"):
        pycograd.grad(lambda z: np.sum(z * z))(Z)


def test_vjp_with_complex_cotangent_matches_autograd():
    ct = RNG.standard_normal((2, 2)) + 1j * RNG.standard_normal((2, 2))
    _, vjp_fn = pycograd.vjp(lambda z: np.tanh(z @ W) * np.conj(z[:, :2]), Z)
    vjp_a, _ = autograd.make_vjp(lambda z: anp.tanh(anp.dot(z, W)) * anp.conj(z[:, :2]))(Z)
    np.testing.assert_allclose(vjp_fn(ct)[0], vjp_a(ct), rtol=1e-10)


def test_jvp_of_non_holomorphic_ops():
    t = RNG.standard_normal(Z.shape) + 1j * RNG.standard_normal(Z.shape)
    for f in (np.abs, np.real, np.imag, np.angle, np.conj,
              lambda z: np.abs(z) * z + X * z, lambda z: np.where(X > 0, X, z)):
        out, tangent = pycograd.jvp(f, (Z,), (t,))
        eps = 1e-6
        fd = (f(Z + eps * t) - f(Z - eps * t)) / (2 * eps)
        assert tangent.dtype == out.dtype
        np.testing.assert_allclose(tangent, fd, rtol=1e-6, atol=1e-8)


def test_jvp_of_real_input_into_complex_result():
    out, tangent = pycograd.jvp(lambda x: x * (1 + 2j) + x, (X,), (np.ones_like(X),))
    assert tangent.dtype == np.complex128
    np.testing.assert_allclose(tangent, np.full(X.shape, 2 + 2j))


def test_tracer_real_imag_attributes():
    g = pycograd.grad(lambda z: np.sum(z.real * 2 + z.imag * 3), 0)(Z)
    np.testing.assert_allclose(g, np.full(Z.shape, 2 - 3j))


def test_real_and_imag_of_real_traced_values():
    g = pycograd.grad(lambda x: np.sum(np.real(x) ** 2 + np.imag(x)), 0)(X)
    np.testing.assert_allclose(g, 2 * X)


def test_isreal_iscomplex_are_plain_results():
    z = np.array([1.0 + 0j, 2.0 + 1j])
    g = pycograd.grad(lambda z: np.sum(np.where(np.isreal(z), np.abs(z), 0.0)) +
                      np.sum(np.iscomplex(z) * np.real(z)), 0)(z)
    np.testing.assert_allclose(g, [1.0, 1.0])


def test_vmap_and_eval_shape_of_complex_grad():
    grad_f = pycograd.grad(lambda z: np.sum(np.abs(z) ** 2), 0)
    np.testing.assert_allclose(pycograd.vmap(grad_f)(Z), 2 * np.conj(Z))
    s = pycograd.eval_shape(grad_f, pycograd.ShapeDtypeStruct((2, 3), np.complex64))
    assert (s.shape, s.dtype) == ((2, 3), np.complex64)


# ---- numpy.fft (every transform is in the sweep; here: agreement with autograd) -----

import pycograd.numpy_api.fft  # noqa: E402,F401  (np.fft.* on tracers)

FFT_CASES = {  # where autograd has the gradient (it lacks hfft/ihfft and odd real lengths)
    "fft": (lambda n, a: n.real(n.sum(n.fft.fft(a, n=7, axis=0) ** 2)), Z),
    "ifft2-ortho": (lambda n, a: n.abs(n.sum(n.fft.ifft2(a, norm="ortho") ** 3)), Z),
    "fftn-s": (lambda n, a: n.real(n.sum(n.fft.fftn(a, s=(3, 2), axes=(0, 1)) * a[0, 0])), Z),
    "rfft": (lambda n, a: n.sum(n.abs(n.fft.rfft(a))), np.concatenate([X, X], axis=1)),
    "irfft": (lambda n, a: n.sum(n.fft.irfft(a, axis=0) ** 2), Z),
    "irfftn": (lambda n, a: n.sum(n.sin(n.fft.irfftn(a))), Z),
    "fftshift": (lambda n, a: n.real(n.sum(n.fft.fftshift(n.fft.fft(a)) * W.T)), Z),
}


@pytest.mark.parametrize("name", sorted(FFT_CASES))
def test_fft_grad_matches_autograd(name):
    f, a = FFT_CASES[name]
    expected = autograd.grad(lambda a: f(anp, a))(a)
    got = pycograd.grad(lambda a: f(np, a), 0)(a)
    assert got.dtype == a.dtype
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_fft_bad_norm():
    with pytest.raises(ValueError, match="norm"):
        pycograd.grad(lambda z: np.real(np.sum(np.fft.fft(z, norm="both"))), 0)(Z)


def test_var_and_std_of_complex_values_and_gradients():
    """np.var of complex data is the mean squared modulus (a real number), like numpy's."""
    z = np.array([1 + 2j, 3 - 1j, 0.5j])
    assert np.isclose(pycograd.value_and_grad(lambda z: np.var(z), 0)(z)[0], np.var(z))
    f = lambda x, y: np.std(x + 1j * y, ddof=1)  # noqa: E731
    gx, gy = pycograd.grad(f, (0, 1))(z.real, z.imag)
    h = 1e-6 * np.eye(3)
    fx = [(f(z.real + e, z.imag) - f(z.real - e, z.imag)) / 2e-6 for e in h]
    fy = [(f(z.real, z.imag + e) - f(z.real, z.imag - e)) / 2e-6 for e in h]
    np.testing.assert_allclose(gx, fx, rtol=1e-6)
    np.testing.assert_allclose(gy, fy, rtol=1e-6)
    # the complex-input gradient follows the convention df/dx - i df/dy
    np.testing.assert_allclose(pycograd.grad(lambda z: np.std(z, ddof=1), 0)(z),
                               np.array(fx) - 1j * np.array(fy), rtol=1e-6)
