"""debug_nans: the first primitive that produces a NaN/Inf raises, naming the op, the pass
(and for backward, whose VJP), the user's line, and the inputs; off, nothing changes."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys

import numpy as np
import pytest

import pycograd
from pycograd.core import trace as trace_mod
from pycograd.core import var as var_mod
from pycograd.core.var import ReverseTrace
from pycograd.debug import debugging_nans

PLAIN_PROCESS = ReverseTrace.process
PLAIN_IMPL = trace_mod.apply_impl


def _line(marker: str) -> int:
    src = inspect.getsource(sys.modules[__name__]).splitlines()
    return next(i for i, t in enumerate(src, 1) if marker in t and "_line(" not in t)


def log_loss(x):
    y = np.log(x)  # LOG-LINE
    return np.sum(y * 2)


def test_forward_inf_names_op_line_and_inputs():
    with pycograd.debug_nans(), pytest.raises(FloatingPointError) as info:
        pycograd.grad(log_loss)(np.array([1.0, 0.0, 2.0]))
    msg = str(info.value)
    assert msg.startswith("debug_nans: `log` produced Inf in the forward pass, at ")
    assert f"{__file__}:{_line('LOG-LINE')} in log_loss" in msg
    assert "y = np.log(x)" in msg
    assert "input 0: shape (3,) float64" in msg
    assert "Inf at (1,) (1 of 3)" in msg


def test_backward_names_the_forward_ops_vjp_and_its_line():
    # log(1e-310) is finite, but its VJP g / x overflows: the backward `1/x`
    with pycograd.debug_nans(), pytest.raises(FloatingPointError) as info:
        pycograd.grad(log_loss)(np.array([1.0, 1e-310, 2.0]))
    msg = str(info.value)
    assert msg.startswith("debug_nans: the backward pass of `log` (its VJP for argument 0) "
                          "produced Inf")
    assert f"that `log` was created at {__file__}:{_line('LOG-LINE')} in log_loss" in msg
    assert "forward input 0: shape (3,) float64, finite values in [1e-310, 2]" in msg
    assert "cotangent for input 0:" in msg and "Inf at (1,)" in msg


def test_second_order_reports_the_vjp_it_happened_in():
    def f(x):
        return np.sum(np.sqrt(x))  # SQRT-LINE

    with pycograd.debug_nans(), pytest.raises(FloatingPointError) as info:
        pycograd.grad(pycograd.grad(f))(np.array(0.0))
    msg = str(info.value)
    assert "inside the backward pass of `sqrt`" in msg
    assert f"{__file__}:{_line('SQRT-LINE')}" in msg


def test_forward_mode_and_vmap_are_checked_too():
    with pycograd.debug_nans():
        with pytest.raises(FloatingPointError, match="`log` produced Inf"):
            pycograd.jvp(np.log, (np.array([0.0, 1.0]),), (np.ones(2),))
        with pytest.raises(FloatingPointError, match="`divide` produced NaN"):
            pycograd.vmap(lambda x: x / np.sum(x))(np.zeros((2, 3)))


def test_values_that_came_in_non_finite_do_not_raise():
    x = np.array([1.0, np.nan, 2.0])
    mask = np.array([True, False, True])
    with pycograd.debug_nans():
        g, = pycograd.grad(lambda x: np.nansum(x * 3))(x)
        masked = pycograd.grad(
            lambda z: np.sum(pycograd.softmax(np.where(mask, z, -np.inf))))(np.ones(3))
    np.testing.assert_allclose(g, [3.0, 0.0, 3.0])
    assert np.all(np.isfinite(masked))


def test_off_restores_the_very_same_hot_path():
    assert not debugging_nans()
    with pycograd.debug_nans():
        assert debugging_nans()
        assert ReverseTrace.process is not PLAIN_PROCESS
        with pycograd.debug_nans(False):
            assert ReverseTrace.process is PLAIN_PROCESS
        assert debugging_nans()
    assert ReverseTrace.process is PLAIN_PROCESS
    assert trace_mod.apply_impl is PLAIN_IMPL and var_mod.apply_impl is PLAIN_IMPL
    with np.errstate(all="ignore"):  # off: numpy's inf, no error
        g = pycograd.grad(log_loss)(np.array([1.0, 0.0]))
    assert np.isinf(g[0][1])
    pycograd.debug_nans(True)
    try:
        assert debugging_nans()
    finally:
        pycograd.debug_nans(False)
    assert not debugging_nans() and ReverseTrace.process is PLAIN_PROCESS


def test_results_are_unchanged_when_on():
    rng = np.random.default_rng(0)
    w, x = rng.standard_normal((3, 2)), rng.standard_normal((4, 3))

    def f(w):
        return np.sum(np.tanh(x @ w) ** 2)

    plain = pycograd.grad(f)(w)
    with pycograd.debug_nans():
        on = pycograd.grad(f)(w)
        h = pycograd.hessian(f)(w)
    np.testing.assert_array_equal(on[0], plain[0])
    np.testing.assert_allclose(h, pycograd.hessian(f)(w))


def test_environment_variable_turns_it_on():
    code = ("import numpy as np, pycograd\n"
            "try:\n"
            "    pycograd.grad(lambda x: np.sum(np.log(x)))(np.zeros(2))\n"
            "except FloatingPointError as e:\n"
            "    print('raised', str(e).splitlines()[0])\n")
    env = dict(os.environ, PYCOGRAD_DEBUG_NANS="1")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120)
    assert "raised debug_nans: `log` produced Inf in the forward pass" in out.stdout, out.stderr


def test_custom_vjp_functions_are_watched_too():
    @pycograd.custom_vjp
    def safe_log(x):
        return np.log(x)

    def fwd(x):
        with np.errstate(all="ignore"):
            return np.log(x), x

    def bwd(x, g):
        return (g / (x - 1.0),)  # a bug: NaN/Inf at x == 1

    safe_log.defvjp(fwd, bwd)

    def f(x):
        return np.sum(safe_log(x))  # CUSTOM-LINE

    with pycograd.debug_nans(), pytest.raises(FloatingPointError) as info:
        pycograd.grad(f)(np.array([1.0, 2.0]))
    msg = str(info.value)
    assert "the backward pass of `custom_vjp` (its VJP for argument 0) produced" in msg
    assert f"{__file__}:{_line('CUSTOM-LINE')}" in msg
    with pycograd.debug_nans(), pytest.raises(FloatingPointError) as info:
        pycograd.grad(f)(np.array([0.0, 2.0]))
    msg = str(info.value)
    assert msg.startswith("debug_nans: `custom_vjp` produced Inf in the forward pass")
    assert f"{__file__}:{_line('CUSTOM-LINE')}" in msg
    assert ReverseTrace.node is PLAIN_NODE


PLAIN_NODE = ReverseTrace.node
