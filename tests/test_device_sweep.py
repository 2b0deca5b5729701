"""The sweep on a foreign array library: every case whose primitives the Array API
standard covers runs under ``device("array_api_strict")`` (values, first and second
order, jvp, vmap, per-example gradients) and equals the numpy run within 1e-12.
array_api_strict refuses ``__array__``, and ``np.asarray`` / ``np.from_dlpack`` are spied
on, so any silent trip through numpy fails the test."""

from __future__ import annotations

import numpy as np
import pytest
from test_sweep import BATCH, CASES, _dot, _loss, _outputs, runs

import pycograd
from pycograd import PycogradError, device, on_cpu, on_device
from pycograd.backends.arrays import DeviceArray
from pycograd.backends.arrays.impls import IMPLS

pytest.importorskip("array_api_strict")

DEV = "array_api_strict"

# Cases whose primitives the standard covers, but in a form it leaves out: each must
# refuse loudly on the device (a PycogradError naming the op), never compute a wrong value.
GAPS = {
    "einsum with a repeated label (a diagonal; no array-API form)": (
        "einops-einsum-batch-trace einsum-...ii->...i-2x3x3 einsum-i...i-3x2x3 einsum-ii-3x3 "
        "einsum-ii->i-3x3 einsum-iij->j-2x2x3 einsum-iji->j-2x3x2"),
    "boolean masks beside other indices, or masks from traced values": (
        "getitem-bool-from-values getitem-bool-mask getitem-bool-mask-row "
        "getitem-bool-mask-then-slice getitem-bool-scalar getitem-np-int"),
    "advanced indices split by a slice; out-of-bounds slice stops (unspecified)": (
        "getitem-split-advanced split-unsorted-overflow"),
    "scipy densities built on gammaln, which has no array-API equivalent": (
        "scipy-chi2-pdf scipy-gamma-pdf scipy-poisson-pmf"),
    "scipy rules that convert their inputs with np.asarray (refused)": (
        "scipy-log_softmax scipy-logsumexp "
        "scipy-logsumexp-axis scipy-logsumexp-b scipy-logsumexp-sign "
        "scipy-mvn-entropy-diagonal scipy-mvn-pdf scipy-norm-frozen scipy-norm-logpdf "
        "scipy-norm-logpdf-default scipy-norm-pdf scipy-softmax scipy-softmax-all "
        "core-scipy-mvn-logpdf-singular"),
    "numpy functions given Python lists of traced values (stacked through np.asarray)": (
        "core-list-mean core-list-mean-tuple-axis core-list-var core-list-std core-list-norm "
        "core-list-sum-nested core-list-append core-list-append-2d core-list-ufunc"),
    "the VJP adds booleans (numpy's logical or; the standard has no bool add)": "logical_not",
}
GAP_NAMES = {n for names in GAPS.values() for n in names.split()}
ON_DEVICE = [c for c in CASES if set(c.prims) <= set(IMPLS) and c.name not in GAP_NAMES
             and all(np.dtype(a.dtype).kind == "f" for a in c.args)]
GAP_CASES = [c for c in CASES if c.name in GAP_NAMES]


def _params(mode: str) -> dict:
    cs = [c for c in ON_DEVICE if runs(c, mode)]
    return dict(argvalues=cs, ids=[c.name for c in cs])


@pytest.fixture
def no_numpy(monkeypatch):
    """Fail on any conversion of a device array to numpy (explicit ``on_cpu`` aside)."""
    real_asarray, real_array = np.asarray, np.array
    allowed = [0]

    def guard(real):
        def check(a, *args, **kwargs):
            if isinstance(a, DeviceArray) or type(a).__module__.startswith("array_api_strict"):
                raise AssertionError(f"silent conversion of {a!r} to numpy")
            return real(a, *args, **kwargs)
        return check
    monkeypatch.setattr(np, "asarray", guard(real_asarray))
    monkeypatch.setattr(np, "array", guard(real_array))
    real_dlpack = np.from_dlpack

    def dlpack(a, *args, **kwargs):
        if not allowed[0]:
            raise AssertionError("a device array reached numpy (np.from_dlpack)")
        return real_dlpack(a, *args, **kwargs)
    monkeypatch.setattr(np, "from_dlpack", dlpack)
    return allowed


def _back(tree, allowed):
    """The leaves of ``tree`` checked to be on the device, then brought to numpy."""
    leaves = _outputs(tree)
    for x in leaves:
        assert isinstance(x, DeviceArray) and x.device.name == DEV, f"left the device: {x!r}"
    allowed[0] = 1
    try:
        return [on_cpu[x] for x in leaves]
    finally:
        allowed[0] = 0


def _equal(actual, expected, what):
    for a, e in zip(actual, _outputs(expected)):
        assert a.dtype == np.asarray(e).dtype, f"{what}: dtype {a.dtype} vs {np.asarray(e).dtype}"
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12, err_msg=what)


def test_cases_run_on_device():
    """The table is not empty: the standard covers the common primitives."""
    assert len(ON_DEVICE) > 100, len(ON_DEVICE)


@pytest.mark.parametrize("case", **_params("values"))
def test_values(case, no_numpy):
    args = case.sample()
    with device(DEV):
        out = case.fn(*on_device(args))
    _equal(_back(out, no_numpy), case.fn(*args), case.name)


@pytest.mark.parametrize("case", **_params("first_order"))
def test_first_order(case, no_numpy):
    args = case.sample()
    nums = tuple(range(len(args)))
    L = _loss(case, args)
    with device(DEV):
        got = pycograd.grad(L, argnums=nums)(*on_device(args))
    _equal(_back(got, no_numpy), pycograd.grad(L, argnums=nums)(*args), case.name)


@pytest.mark.parametrize("case", **_params("second_order"))
def test_second_order(case, no_numpy):
    args = case.sample()
    v = [a.direction(case.rng(salt=2)) for a in case.args]
    nums = tuple(range(len(args)))
    grad_L = pycograd.grad(_loss(case, args), argnums=nums)

    def hvp(xs, v):
        return pycograd.grad(lambda *xs: _dot(grad_L(*xs), v), argnums=nums)(*xs)
    with device(DEV):
        got = hvp(on_device(args), on_device(v))
    _equal(_back(got, no_numpy), hvp(args, v), case.name)


@pytest.mark.parametrize("case", **_params("jvp"))
def test_jvp(case, no_numpy):
    args = case.sample()
    v = [a.direction(case.rng(salt=3)) for a in case.args]
    with device(DEV):
        out, t = pycograd.jvp(case.fn, tuple(on_device(args)), tuple(on_device(v)))
    e_out, e_t = pycograd.jvp(case.fn, tuple(args), tuple(v))
    _equal(_back(out, no_numpy), e_out, case.name)
    _equal(_back(t, no_numpy), e_t, case.name)


@pytest.mark.parametrize("case", **_params("vmap"))
def test_vmap(case, no_numpy):
    stacked = [np.stack(xs) for xs in zip(*case.examples(BATCH))]
    with device(DEV):
        got = pycograd.vmap(case.fn)(*on_device(stacked))
    _equal(_back(got, no_numpy), pycograd.vmap(case.fn)(*stacked), case.name)


def test_gaps_are_known_cases():
    assert {c.name for c in GAP_CASES} == GAP_NAMES


@pytest.mark.parametrize("case", GAP_CASES, ids=[c.name for c in GAP_CASES])
def test_gap_refuses_loudly(case):
    """A gap raises a PycogradError in some mode; wherever it runs, it equals numpy."""
    args = case.sample()
    nums = tuple(range(len(args)))
    L = _loss(case, args)
    runs_ = {"values": (lambda *xs: case.fn(*xs), case.fn(*args)),
             "first_order": (pycograd.grad(L, argnums=nums),
                             pycograd.grad(L, argnums=nums)(*args))}
    refused = []
    for mode, (f, expected) in runs_.items():
        with device(DEV):
            try:
                got = f(*on_device(args))
            except PycogradError as e:
                refused.append(f"{mode}: {e}")
                continue
        _equal([on_cpu[x] for x in _outputs(got)], expected, f"{case.name} {mode}")
    assert refused, f"{case.name} now runs on {DEV}: remove it from GAPS"


@pytest.mark.parametrize("case", **_params("vmap_grad"))
def test_vmap_grad(case, no_numpy):
    """Per-example gradients (``vmap(grad(L))``) on the device equal numpy's."""
    stacked = [np.stack(xs) for xs in zip(*case.examples(BATCH))]
    L = _loss(case, case.sample())
    nums = tuple(range(len(stacked)))
    per_example = pycograd.vmap(pycograd.grad(L, argnums=nums))
    with device(DEV):
        got = per_example(*on_device(stacked))
    _equal(_back(got, no_numpy), per_example(*stacked), case.name)


def test_every_device_primitive_is_swept_on_the_device():
    """Each primitive with an array-API implementation is claimed by a case that runs on
    the device (not only by cases listed in GAPS)."""
    swept = {p for c in ON_DEVICE for p in c.prims}
    # complex inputs stay out of the device sweep (numpy orders complex numbers, the
    # standard does not), so real / imag are claimed only by cases not run here
    assert set(IMPLS) - swept == {"real", "imag", "logical_not"}, sorted(set(IMPLS) - swept)
