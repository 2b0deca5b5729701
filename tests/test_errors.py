"""Every deliberate error: its own type, and a message that names the problem and the fix."""

import numpy as np
import pytest

import pycograd
from pycograd import (
    LeakedTracerError,
    NonScalarOutputError,
    NoRuleError,
    PycogradError,
    ShapeError,
    TracerConversionError,
    grad,
    value_and_grad,
    vjp,
)
from pycograd.core.errors import ArgnumsError

X = np.array([0.5, 1.0, 1.5])


def raises(exc: type, f, *args, **kwargs) -> str:
    """The message of the ``exc`` that ``grad(f, 0)(*args)`` raises."""
    with pytest.raises(exc) as e:
        grad(f, 0)(*args, **kwargs)
    return str(e.value)


def test_hierarchy():
    for exc in (ShapeError, NoRuleError, NonScalarOutputError, TracerConversionError,
                LeakedTracerError, ArgnumsError):
        assert issubclass(exc, PycogradError)
    # existing `except ValueError` / `except TypeError` code keeps working
    assert issubclass(ShapeError, ValueError) and issubclass(ArgnumsError, ValueError)
    assert issubclass(NoRuleError, TypeError) and issubclass(TracerConversionError, TypeError)
    assert len({ShapeError, NoRuleError, NonScalarOutputError, TracerConversionError,
                LeakedTracerError, ArgnumsError}) == 6


# ---- non-scalar and complex outputs ---------------------------------------------------

def test_non_scalar_output_names_the_shape():
    msg = raises(NonScalarOutputError, lambda x: x * 2, X)
    assert "shape (3,)" in msg and "np.sum" in msg and "vjp" in msg
    with pytest.raises(NonScalarOutputError, match=r"shape \(2, 3\)"):
        value_and_grad(lambda x: np.ones((2, 3)) * x)(1.0)


def test_tuple_output_is_not_a_scalar():
    msg = raises(NonScalarOutputError, lambda x: (np.sum(x), np.sum(x * x)), X)
    assert "tuple of 2 values" in msg and "has_aux" in msg


def test_complex_output():
    msg = raises(NonScalarOutputError, lambda x: np.sum(x) * 1j, X)
    assert "complex" in msg and ("np.real" in msg or "np.abs" in msg)


def test_non_array_output():
    msg = raises(NonScalarOutputError, lambda x: "loss", X)
    assert "str" in msg


# ---- missing rules ----------------------------------------------------------------------

@pytest.mark.parametrize("fn, name", [
    (lambda x: np.histogram(x)[0].sum(), "np.histogram"),
    (lambda x: np.histogram2d(x, x)[0].sum(), "np.histogram2d"),
    (lambda x: np.sum(np.bincount(np.array([0, 1, 1]), weights=x)), "np.bincount"),
    (lambda x: np.sum(np.add.accumulate(x)), "np.add.accumulate"),
])
def test_missing_rule_names_the_function(fn, name):
    msg = raises(NoRuleError, fn, X)
    assert name in msg and "no differentiation rule" in msg


def test_ufunc_with_out_on_a_traced_value():
    msg = raises(NoRuleError, lambda x: np.sum(np.exp(x, out=np.empty(3))), X)
    assert "np.exp" in msg and "out=" in msg

    def in_place(x):
        acc = np.zeros(3)
        acc += x          # numpy's in-place add: np.add(acc, x, out=acc)
        return np.sum(acc)

    assert "out=" in raises(NoRuleError, in_place, X)


# ---- shapes -------------------------------------------------------------------------------

def test_matmul_shape_error_names_op_and_shapes():
    msg = raises(ShapeError, lambda x, y: np.sum(x @ y), np.ones((3, 4)), np.ones((5, 6)))
    assert msg.startswith("matmul: incompatible shapes (3, 4) and (5, 6)")
    msg = raises(ShapeError, lambda x: np.sum(x @ np.ones((5, 6))), np.ones((3, 4)))
    assert msg.startswith("matmul: incompatible shapes (3, 4) and (5, 6)")


def test_shape_error_is_caught_by_except_value_error():
    try:
        grad(lambda x: np.sum(x @ np.ones((5, 6))), 0)(np.ones((3, 4)))
    except ValueError as e:
        assert isinstance(e, ShapeError)
    else:
        pytest.fail("no error")


def test_broadcasting_mismatch_names_both_shapes():
    msg = raises(ShapeError, lambda x: np.sum(x + np.ones(4)), np.ones(3))
    assert msg.startswith("add:") and "(3,)" in msg and "(4,)" in msg
    msg = raises(ShapeError, lambda x: np.sum(x * np.ones((4, 3))), np.ones((2, 3)))
    assert msg.startswith("multiply:") and "(2, 3)" in msg and "(4, 3)" in msg


def test_bad_reshape():
    msg = raises(ShapeError, lambda x: np.sum(x.reshape(2, 2)), np.ones(3))
    assert "reshape" in msg and "(3,)" in msg and "(2, 2)" in msg
    assert "one dimension" in raises(ShapeError, lambda x: np.sum(x.reshape(-1, -1)), np.ones(4))


@pytest.mark.parametrize("fn, op", [
    (lambda x: np.sum(x, axis=2), "sum"),
    (lambda x: np.sum(np.mean(x, axis=-3)), "mean"),
    (lambda x: np.sum(np.max(x, axis=(0, 5))), "max"),
])
def test_bad_axis(fn, op):
    msg = raises(ShapeError, fn, np.ones((2, 3)))
    assert msg.startswith(op) and "out of bounds" in msg and "2 dims" in msg


# ---- conversions that would drop the gradient ----------------------------------------

@pytest.mark.parametrize("fn, kind, fix", [
    (lambda x: float(x), "float(x)", "stop_gradient"),
    (lambda x: int(x) * x, "int(x)", "stop_gradient"),
    # np.asarray / np.array in user code are routed by the transparent layer; called from
    # code it does not reach (here: C code, through map), they hit the protocol's refusal.
    (lambda x: np.sum(next(map(np.asarray, [x]))), "np.asarray", "pass x itself"),
    (lambda x: np.sum(next(map(np.array, [x]))), "np.array", "pass x itself"),
    (lambda x: x.item(), "x.item()", "stop_gradient"),
])
def test_conversion_errors_say_what_to_write(fn, kind, fix):
    msg = raises(TracerConversionError, fn, 2.0)
    assert kind in msg and "drop its gradient" in msg and fix in msg


def test_float_conversion_message_points_at_numpy_ops():
    msg = raises(TracerConversionError, lambda x: x * float(x), 2.0)
    assert "np.sin(x), not math.sin(x)" in msg and "float(pycograd.stop_gradient(x))" in msg


def test_stop_gradient_is_the_advertised_way_out():
    assert grad(lambda x: x * float(pycograd.stop_gradient(x)), 0)(3.0) == pytest.approx(3.0)


def test_item_assignment_on_a_traced_value():
    def f(x):
        x[0] = 1.0
        return np.sum(x)

    msg = raises(TypeError, f, X.copy())
    assert "immutable" in msg and "np.where" in msg


# ---- leaked tracers --------------------------------------------------------------------

def test_leaked_tracer_used_in_a_later_grad():
    leaked = []

    def f(x):
        leaked.append(x)
        return np.sum(x)

    grad(f, 0)(X)
    msg = raises(LeakedTracerError, lambda y: np.sum(y * leaked[0]), X)
    assert "escaped" in msg and "Return it" in msg


# ---- API misuse -----------------------------------------------------------------------

def test_vjp_cotangent_mismatch():
    _, vjp_fn = vjp(lambda x: x * 2, X)
    with pytest.raises(ShapeError, match=r"cotangent of shape \(2,\) for an output of shape"):
        vjp_fn(np.ones(2))
    _, vjp_fn = vjp(lambda x: (x, x), X)
    with pytest.raises(ShapeError, match="1 leaves, the output has 2"):
        vjp_fn(np.ones(3))
