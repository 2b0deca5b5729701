"""check_grads: passes correct derivatives in every mode and order, and names the argument,
the element and both values when one is wrong."""

from __future__ import annotations

import numpy as np
import pytest

import pycograd
from pycograd import GradCheckError, check_grads


def test_pytree_arguments_and_every_mode_pass():
    rng = np.random.default_rng(0)
    w = {"a": rng.standard_normal((3, 2)), "b": [rng.standard_normal(2), 3]}

    def f(w, x):
        return np.tanh(x @ w["a"]) * w["b"][0] ** w["b"][1]

    check_grads(f, (w, rng.standard_normal((4, 3))), order=2)


def test_complex_inputs():
    z = np.array([0.3 + 0.2j, -1.1 + 0.5j, 0.7 - 0.4j])
    check_grads(lambda z: np.abs(np.sin(z)) ** 2, (z,), order=2)
    check_grads(lambda z, x: np.exp(z) * x, (z, np.arange(3.0)), order=1)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_low_precision_adapts_steps_and_tolerances(dtype):
    x = np.linspace(-1, 1, 5).astype(dtype)
    check_grads(lambda x: np.sum(np.exp(x) * np.sin(x)), (x,), order=1)


def _wrong_bwd():
    @pycograd.custom_vjp
    def sin(x):
        return np.sin(x)

    sin.defvjp(lambda x: (np.sin(x), x), lambda x, g: (g * np.sin(x),))  # should be cos
    return sin


def test_failure_report_names_argument_element_and_values():
    sin = _wrong_bwd()
    w = {"scale": np.array(2.0), "shift": np.linspace(0.1, 1.0, 4)}
    with pytest.raises(GradCheckError) as info:
        check_grads(lambda w, y: np.sum(sin(w["shift"]) * w["scale"] * y), (w, 3.0),
                    order=1, modes=("rev",))
    msg = str(info.value)
    assert "reverse-mode gradient" in msg
    assert "argument:      w['shift'] (shape (4,), float64)" in msg
    worst = int(np.argmax(np.abs(np.cos(w["shift"]) - np.sin(w["shift"]))))
    assert f"worst element: w['shift'][{worst}]" in msg
    analytic = 6 * np.sin(w["shift"][worst])
    numeric = 6 * np.cos(w["shift"][worst])
    assert f"analytic   {analytic:+.10g}"[:20] in msg and f"numeric    {numeric:+.6g}"[:16] in msg
    assert "agree: w['scale'], y" in msg
    assert isinstance(info.value, AssertionError) and isinstance(info.value, pycograd.PycogradError)


def test_custom_jvp_rules_are_checked_in_every_mode():
    @pycograd.custom_jvp
    def good(x):
        return np.sin(x)

    good.defjvp(lambda p, t: (np.sin(p[0]), np.cos(p[0]) * t[0]))
    check_grads(good, (np.linspace(0, 1, 4),), order=2)

    @pycograd.custom_jvp
    def bad(x):
        return np.sin(x)

    bad.defjvp(lambda p, t: (np.sin(p[0]), -np.cos(p[0]) * t[0]))
    with pytest.raises(GradCheckError, match="forward-mode gradient"):
        check_grads(bad, (np.linspace(0, 1, 4),), order=1, modes=("fwd",))


def test_second_order_failure_is_named_by_mode_pair():
    @pycograd.custom_jvp
    def cube(x):
        return x ** 3

    # right first derivative, but written with a constant so the second derivative is lost
    cube.defjvp(lambda p, t: (p[0] ** 3, 3 * pycograd.stop_gradient(p[0]) ** 2 * t[0]))
    check_grads(lambda x: np.sum(cube(x)), (np.array([0.5, 1.5]),), order=1)
    with pytest.raises(GradCheckError, match="rev-over-rev second derivative"):
        check_grads(lambda x: np.sum(cube(x)), (np.array([0.5, 1.5]),), order=2,
                    modes=("rev",))


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="write \\(x,\\)"):
        check_grads(np.sin, np.ones(2))
    with pytest.raises(ValueError, match="modes"):
        check_grads(np.sin, (np.ones(2),), modes=("backward",))
    with pytest.raises(ValueError, match="no argument"):
        check_grads(lambda i: i * 2, (np.arange(3),))


def test_sweep_differences_are_check_grads_differences():
    """The sweep's reference (tests/fd.py) is check_grads' own difference engine."""
    import fd

    f = lambda x: np.sum(np.sin(x))  # noqa: E731
    x = np.linspace(0, 1, 3)
    np.testing.assert_allclose(fd.numerical_grad(f, [x], 1e-6)[0], np.cos(x), rtol=1e-8)
