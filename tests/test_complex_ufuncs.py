"""Complex inputs to pycograd's ufuncs and ufunc-like functions: an audit of the ufunc table
(each ufunc numpy runs on complex values is swept, or has no gradient for a stated reason,
or is refused clearly), and the semantics the sweep cannot see: numpy's lexicographic
order in maximum/minimum, sign's special values, nan_to_num's separate parts, and
real_if_close's data-dependent dtype."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sweep_cases_complex

import pycograd
from pycograd.core.errors import NoRuleError
from pycograd.numpy_api.ufuncs import PRIMS

RNG = np.random.default_rng(3)
Z = RNG.standard_normal((2, 3)) + 1j * RNG.standard_normal((2, 3))
W = RNG.standard_normal((2, 3)) + 1j * RNG.standard_normal((2, 3))
SQUARE = RNG.standard_normal((3, 3)) + 1j * RNG.standard_normal((3, 3))  # matmul takes it too

# ---- audit of the ufunc table -------------------------------------------------------------

NO_GRADIENT = {  # numpy takes complex values; the result is constant in them
    **dict.fromkeys(["greater", "greater_equal", "less", "less_equal", "equal", "not_equal"],
                    "boolean (numpy orders complex lexicographically)"),
    **dict.fromkeys(["logical_and", "logical_or", "logical_xor", "logical_not"],
                    "boolean (a complex value is true when nonzero)"),
    **dict.fromkeys(["isfinite", "isinf", "isnan"], "boolean (tests both parts)"),
    "rint": "rounds the real and imaginary parts: piecewise constant",
}
REFUSED: dict[str, str] = {}
"""Ufuncs numpy runs on complex values that pycograd refuses (NoRuleError): none left."""


def _numpy_ufuncs() -> dict[str, np.ufunc]:
    """The ufuncs of pycograd's table that are numpy's own (scipy's join it once imported)."""
    return {u.__name__: u for u in PRIMS if getattr(np, u.__name__, None) is u}


def _takes_complex(u: np.ufunc) -> bool:
    try:
        with np.errstate(all="ignore"):
            u(*[SQUARE] * u.nin)
    except TypeError:
        return False
    return True


def _swept() -> set[str]:
    """The ufuncs a complex sweep case runs: by primitive, or by case name (a ufunc with a
    complex form, like sign, runs other primitives)."""
    names = set()
    for c in sweep_cases_complex.CASES:
        names.update(c.prims)
        names.add(c.name.split("-")[1])
    return names


def test_every_ufunc_on_complex_values_is_swept_or_accounted_for():
    swept = _swept()
    unaccounted = [name for name, u in _numpy_ufuncs().items() if _takes_complex(u)
                   and name not in REFUSED and name not in swept and name not in NO_GRADIENT]
    assert not unaccounted, f"no complex sweep case, and not listed here: {unaccounted}"
    for name in [*NO_GRADIENT, *REFUSED]:
        assert _takes_complex(getattr(np, name)), f"{name}: numpy refuses complex; drop it"
    for name in REFUSED:
        assert name not in swept, f"{name} is swept: drop it from REFUSED"
        u = getattr(np, name)
        with pytest.raises(NoRuleError):
            pycograd.grad(lambda z, u=u: np.real(np.sum(u(*[z] * u.nin))), 0)(SQUARE)


@pytest.mark.parametrize("name", sorted(NO_GRADIENT))
def test_no_gradient_ufuncs_give_numpy_values(name):
    u = getattr(np, name)
    out, _ = pycograd.vjp(lambda z: u(*[z, W][:u.nin]), Z)
    np.testing.assert_array_equal(out, u(*[Z, W][:u.nin]))
    if name == "rint":
        g = pycograd.grad(lambda z: np.real(np.sum(np.rint(z) * W)), 0)(Z)
        np.testing.assert_array_equal(g, np.zeros_like(Z))


def test_ufuncs_numpy_refuses_on_complex_fail_with_numpys_error():
    for name, u in _numpy_ufuncs().items():
        if _takes_complex(u):
            continue
        with pytest.raises(TypeError, match=name):
            pycograd.grad(lambda z, u=u: np.real(np.sum(u(*[z] * u.nin))), 0)(SQUARE)


# ---- semantics ----------------------------------------------------------------------------

def test_maximum_minimum_order_complex_lexicographically():
    z = np.array([1 + 5j, 2 - 1j, 3 + 0j, 3 + 1j])
    w = np.array([1 + 6j, 1 + 9j, 3 + 0j, 3 - 1j])  # real tie, real wins, equal, imag decides
    for f, picks_z in ((np.maximum, [0, 1, 0.5, 1]), (np.minimum, [1, 0, 0.5, 0]),
                       (np.fmax, [0, 1, 0.5, 1]), (np.fmin, [1, 0, 0.5, 0])):
        out, vjp_fn = pycograd.vjp(f, z, w)
        np.testing.assert_array_equal(out, f(z, w))
        gz, gw = vjp_fn(np.full(4, 2 - 1j))
        np.testing.assert_array_equal(gz, np.multiply(picks_z, 2 - 1j))
        np.testing.assert_array_equal(gw, np.multiply(np.subtract(1, picks_z), 2 - 1j))


def test_clip_of_complex_values_is_numpys():
    lo, hi = -0.5 - 1j, 0.5 + 0.5j
    out, vjp_fn = pycograd.vjp(lambda z: np.clip(z, lo, hi), Z)
    np.testing.assert_array_equal(out, np.clip(Z, lo, hi))
    inside = (np.clip(Z, lo, hi) == Z).astype(float)
    np.testing.assert_array_equal(vjp_fn(np.ones_like(Z))[0], inside)


def test_sign_special_values_and_gradient():
    z = np.array([0j, complex(np.inf, 1), complex(1, -np.inf), complex(np.nan, 1), 3 + 4j],
                 dtype=np.complex64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out, vjp_fn = pycograd.vjp(np.sign, z)
        g = vjp_fn(np.ones(5, np.complex64))[0]
    np.testing.assert_array_equal(out, np.sign(z))
    assert out.dtype == g.dtype == np.complex64
    np.testing.assert_array_equal(g[:4], 0)  # constant (or undefined) there
    # d sign / dz at 3+4j: the real-linear map t -> (t - s^2 conj(t)) / (2|z|), s = z/|z|
    s, a = 0.6 + 0.8j, 5.0
    np.testing.assert_allclose(g[4], (1 - np.conj(s * s)) / (2 * a), rtol=1e-6)
    assert pycograd.grad(lambda x: np.sum(np.sign(x) * x), 0)(np.array([-2.0, 3.0])).tolist() \
        == [-1.0, 1.0]  # the real sign keeps no gradient of its own


def test_sign_with_keyword_arguments():
    out = pycograd.vjp(lambda z: np.sign(z, dtype=np.complex64), Z)[0]
    assert out.dtype == np.complex64
    with pytest.raises(NoRuleError, match="sign"):
        pycograd.grad(lambda z: np.real(np.sum(np.sign(z, where=True))), 0)(Z)


def test_nan_to_num_replaces_the_parts_separately():
    bad = np.array([complex(np.nan, 1), complex(2, np.inf), complex(-np.inf, np.nan), 1 + 1j])
    for dt in (np.complex128, np.complex64):
        z = bad.astype(dt)
        for kw in ({}, {"nan": 1.5, "posinf": 3.0, "neginf": -2.0}):
            out, vjp_fn = pycograd.vjp(lambda z, kw=kw: np.nan_to_num(z, **kw), z)
            np.testing.assert_array_equal(out, np.nan_to_num(z, **kw))
            assert out.dtype == dt
            g = vjp_fn(np.full(4, 2 - 3j, dt))[0]
            assert g.dtype == dt
            np.testing.assert_array_equal(g, [-3j, 2, 0, 2 - 3j])  # finite parts only


def test_real_if_close_picks_the_dtype_from_the_values():
    near = np.array([1 + 1e-15j, 2 - 1e-16j])
    for a, tol, real in ((near, 100, True), (near, 1, True), (near, 2, False),
                         (near + 1e-3j, 1e-2, True), (Z, 100, False)):
        out, vjp_fn = pycograd.vjp(lambda z, tol=tol: np.real_if_close(z, tol=tol), a)
        e = np.real_if_close(a, tol=tol)
        assert out.dtype == e.dtype and (out.dtype.kind == "f") == real
        np.testing.assert_array_equal(out, e)
        g = vjp_fn(np.ones(a.shape, out.dtype))[0]   # a real result: a complex cotangent
        assert g.dtype == np.complex128
        np.testing.assert_array_equal(g, np.ones(a.shape))
    x = np.array([1.0, 2.0])
    assert pycograd.vjp(np.real_if_close, x)[0].dtype == np.float64


def test_real_if_close_under_eval_shape_and_vmap_is_refused():
    spec = pycograd.ShapeDtypeStruct((3,), np.complex128)
    with pytest.raises(pycograd.DataDependentShapeError, match="real_if_close"):
        pycograd.eval_shape(np.real_if_close, spec)
    with pytest.raises(NoRuleError, match="real_if_close"):
        pycograd.vmap(np.real_if_close)(Z)
    assert pycograd.eval_shape(np.real_if_close, pycograd.ShapeDtypeStruct((3,), float)).dtype \
        == np.float64


# ---- scipy.special ufuncs on complex values -----------------------------------------------

SCIPY_REFUSED = {"digamma": "its derivative, polygamma(1, z), has no complex form in scipy",
                 "psi": "digamma's other name"}
"""scipy ufuncs that take complex values but whose gradient pycograd refuses there."""


def test_every_scipy_ufunc_on_complex_values_is_swept_or_refused():
    sp = pytest.importorskip("scipy.special")
    import sweep_cases_scipy

    from pycograd.ops.special import SCIPY_UFUNCS

    swept = {c.name.removeprefix("scipy-complex-") for c in sweep_cases_scipy.CASES
             if c.name.startswith("scipy-complex-")}
    z = np.array([0.7 + 0.3j, 1.2 - 0.4j])
    order = np.array([1.0, 2.0])
    for name in SCIPY_UFUNCS:
        u = getattr(sp, name)
        args = [order, z] if name in ("iv", "ive", "jv", "jn", "yn", "polygamma") else \
            [z] * u.nin
        try:
            with np.errstate(all="ignore"):
                u(*args)
        except TypeError:  # scipy has no complex loop: nothing to differentiate
            assert name not in SCIPY_REFUSED, f"{name}: scipy refuses complex; drop it"
            continue
        if name in SCIPY_REFUSED:
            with pytest.raises(NoRuleError, match="complex"):
                pycograd.grad(lambda z, u=u: np.sum(np.abs(u(z)) ** 2), 0)(z)
        else:
            assert name in swept or name == "jn", f"scipy.special.{name} takes complex " \
                "values but has no complex sweep case"
