"""Complex coverage of the primitive table: every primitive runs in a complex sweep case,
or is listed here with the reason it has none, and the reasons are checked (numpy or scipy
really refuses complex values; the primitive really carries no gradient)."""

from __future__ import annotations

import numpy as np
import pytest
from test_sweep import CASES, _import_all

import pycograd
from pycograd.core.primitive import REGISTRY

NO_COMPLEX_LOOP = [  # numpy / scipy raise TypeError on complex values: nothing to differentiate
    "arctan2", "cbrt", "copysign", "deg2rad", "degrees", "rad2deg", "radians", "fabs",
    "floor", "ceil", "trunc", "fmod", "remainder", "floor_divide", "heaviside", "ldexp",
    "logaddexp", "logaddexp2", "nextafter", "signbit", "spacing",
    "bitwise_and", "bitwise_or", "bitwise_xor", "invert", "left_shift", "right_shift",
    "beta", "betaln", "betainc", "erfinv", "erfcinv", "expit", "logit", "gammaln",
    "gammainc", "gammaincc", "gammasgn", "i0", "i1", "j0", "j1", "y0", "y1", "yn", "polygamma",
    "stdtr",
]
NO_GRADIENT = [  # boolean, integer or piecewise-constant results (tests/test_complex_ufuncs.py)
    "equal", "not_equal", "greater", "greater_equal", "less", "less_equal", "logical_and",
    "logical_or", "logical_xor", "logical_not", "isfinite", "isinf", "rint", "all", "any",
    "argmax", "argmin", "argsort", "argpartition", "searchsorted", "partition_perm",
    "nan_quantile_positions", "slogdet_sign",
]
OTHER = {
    "sign": "the real sign; complex values take sign's complex form, z / |z| (swept)",
    "logabsdet": "the real slogdet path; complex det / slogdet go through logdet (swept)",
    "rfft": "a transform of real input by definition (numpy drops an imaginary part)",
    "digamma": "refused for complex values (its derivative needs complex polygamma)",
    "svd_complement": "refused for complex values (tests/test_complements.py)",
    "qr_complement": "refused for complex values (tests/test_complements.py)",
    "scatter_along": "take_along's VJP: runs in the second order of complex-sort",
    "checkpoint": "carries a function; complex values pass through (test below)",
    "custom_vjp": "carries a function; complex values pass through (test below)",
    "custom_jvp": "carries a function; complex values pass through (test below)",
    "stop_gradient": "the identity with no gradient, for any dtype",
    "checkpoint_name": "the identity (a tag for checkpoint policies), for any dtype",
    "odeint": "scipy.integrate.odeint integrates real systems only (LSODA)",
}


def _complex_prims() -> set[str]:
    out: set[str] = set()
    for c in CASES:
        if any(np.dtype(a.dtype).kind == "c" for a in c.args):
            out.update(c.prims)
    return out


def test_every_primitive_has_a_complex_case_or_a_reason():
    _import_all()
    listed = set(NO_COMPLEX_LOOP) | set(NO_GRADIENT) | set(OTHER)
    swept = _complex_prims()
    unaccounted = sorted(set(REGISTRY) - swept - listed)
    assert not unaccounted, f"no complex sweep case and no reason given: {unaccounted}"
    stale = sorted(listed & swept)
    assert not stale, f"these now have complex cases: drop them from the lists: {stale}"
    assert not sorted(listed - set(REGISTRY)), "listed names that are not primitives"


@pytest.mark.parametrize("name", NO_COMPLEX_LOOP)
def test_no_complex_loop_is_true(name):
    z = np.array([0.7 + 0.3j, 1.2 - 0.4j])
    fn = getattr(np, name, None)
    if fn is None:
        fn = getattr(pytest.importorskip("scipy.special"), name)
    nin = getattr(fn, "nin", 1)
    with pytest.raises(TypeError):
        fn(*[z] * nin)


@pytest.mark.parametrize("name", ["equal", "greater", "isfinite", "rint", "argmax", "argsort"])
def test_no_gradient_ops_take_complex_values(name):
    z = np.array([0.7 + 0.3j, 1.2 - 0.4j, -0.5j])
    fn = getattr(np, name)
    args = [z] * getattr(fn, "nin", 1)
    out, _ = pycograd.vjp(lambda z: fn(*[z] * len(args)), z)
    np.testing.assert_array_equal(out, fn(*args))


def test_function_carrying_primitives_pass_complex_values():
    z = np.array([0.7 + 0.3j, 1.2 - 0.4j])

    def f(z):
        return np.exp(z) * np.conj(z)

    @pycograd.custom_vjp
    def g(z):
        return f(z)

    g.defvjp(lambda z: (f(z), z), lambda z, ct: (pycograd.vjp(f, z)[1](ct)[0],))

    @pycograd.custom_jvp
    def h(z):
        return f(z)

    h.defjvp(lambda primals, tangents: pycograd.jvp(f, primals, tangents))

    def loss(fn):
        return lambda z: np.sum(np.abs(fn(z)) ** 2)

    want = pycograd.grad(loss(f), 0)(z)
    for fn in (pycograd.checkpoint(f), g, h):
        np.testing.assert_allclose(pycograd.grad(loss(fn), 0)(z), want, rtol=1e-12)
