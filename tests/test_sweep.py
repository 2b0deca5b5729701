"""The sweep: every case of every case table, run through every transform.

Cases come from ``sweep_cases.CASES`` and from the ``CASES`` of every
``sweep_cases_*.py`` module next to this file (see ``sweep_cases`` for the structure).
For each case the loss is ``L(args) = sum(f(args) * W)`` with a fixed random ``W`` per
output. The modes (``sweep_cases.MODES``):

- values: traced evaluation gives numpy's own values, shapes and dtypes.
- first_order: ``grad(L)`` against central differences of ``L``.
- second_order: the reverse-over-reverse Hessian-vector product against central
  differences of ``grad(L)``.
- jvp: ``jvp(f)`` gives numpy's values and, along random tangents, the central
  difference of ``f``; jvp_constants: the same with one argument perturbed and the others
  closed over as constants (symbolic-zero tangents).
- jvp_second_order: forward-over-reverse (``jvp(grad(L))``) and reverse-over-forward
  (``grad`` of the tangent of ``jvp(L)``) Hessian-vector products against
  reverse-over-reverse and against differences of ``grad(L)``.
- vmap: ``vmap(f)`` over 3 examples equals the loop, with the batch axis first, last,
  second, and
  (vmap_unmapped, for two or more arguments) on the first or last argument only.
- vmap_grad: ``vmap(grad(L))`` (per-example gradients) equals the loop of ``grad(L)``, and
  ``grad`` of the sum of ``vmap(L)`` equals the per-example gradients.
- eval_shape: ``eval_shape(f)`` gives the shapes and dtypes numpy gives, for the case's
  own, float32 and int32 inputs (where numpy takes them), and ``eval_shape(grad(L))``
  gives the arguments' shapes and dtypes; data-dependent cases must raise
  ``DataDependentShapeError``.
- graph: the case captured as a graph (``pycograd.capture``) evaluates to numpy's values;
  the gradient graph of ``L`` (``grad_graph``) gives the tape's gradients; ``optimize``
  and the compiled ``jit`` program leave both unchanged (1e-12 relative). Cases with a
  user rule (custom_vjp / custom_jvp) must raise ``CaptureError``, data-dependent shapes
  too; a dtype that depends on the values (``eig`` of a real matrix, which eval_shape
  skips) is refused at capture with ``CaptureError``, never given a guessed type.
- low_precision: with float32 and float16 inputs (float16 where numpy takes it) the traced
  outputs have numpy's dtypes, and backward never makes a cotangent more precise than the
  value it belongs to (checked at every tape node, not only after grad's final cast).

Coverage: every registered primitive has a case, and every case really runs the
primitives it claims.
"""

from __future__ import annotations

import functools
import importlib
import operator
import pkgutil
from pathlib import Path

import numpy as np
import pytest
import sweep_cases
from fd import directional, numerical_grad
from sweep_cases import MODES, Case

import pycograd
from pycograd.core.primitive import REGISTRY, Joint, PerArgument
from pycograd.core.pytree import tree_map
from pycograd.core.var import Var
from pycograd.ops.complex import is_complex


def _collect() -> list[Case]:
    """The cases of ``sweep_cases`` and of every ``sweep_cases_*`` module (a module that
    adds to ``sweep_cases.CASES`` through ``case()`` is counted once)."""
    tables = []
    for path in sorted(Path(__file__).parent.glob("sweep_cases_*.py")):
        table = getattr(importlib.import_module(path.stem), "CASES", None)
        if not isinstance(table, list):  # never drop a table's cases silently
            raise TypeError(f"{path.name} must define a module-level `CASES: list[Case]`")
        tables.append(table)
    seen: set[int] = set()
    out = []
    for table in [sweep_cases.CASES, *tables]:
        for c in table:
            if id(c) not in seen:
                seen.add(id(c))
                out.append(c)
    return out


CASES = _collect()
IDS = [c.name for c in CASES]
BATCH = 3


# Which cases each mode applies to, beyond the opt-outs: Hessians where the case has
# them, per-example gradients where outputs are not ragged (test_vmap checks that ragged
# ones raise), the constant-argument variants with 2+ args, low precision for real inputs.
APPLIES = {
    "second_order": lambda c: c.second_order,
    "jvp_second_order": lambda c: c.second_order,
    "jvp_constants": lambda c: len(c.args) >= 2,
    "vmap_unmapped": lambda c: not c.data_dependent and len(c.args) >= 2,
    "vmap_grad": lambda c: not c.data_dependent,
    "low_precision": lambda c: all(np.dtype(a.dtype).kind == "f" for a in c.args),
}


def runs(c: Case, mode: str) -> bool:
    return mode not in c.skip and APPLIES.get(mode, lambda c: True)(c)


def _params(mode: str) -> dict:
    """``parametrize`` arguments for the cases that run in ``mode``."""
    cs = [c for c in CASES if runs(c, mode)]
    return dict(argvalues=cs, ids=[c.name for c in cs])


def _outputs(out: object) -> list:
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _loss(case: Case, args: list, fn=None):
    """``L`` for ``case`` (or ``fn`` in its place) with weights drawn for the shapes of its
    outputs at ``args``; a complex output gets complex weights and adds the real part."""
    fn = case.fn if fn is None else fn
    rng = case.rng(salt=1)
    ws = [rng.standard_normal(np.shape(o)) + (1j * rng.standard_normal(np.shape(o))
                                              if np.iscomplexobj(o) else 0)
          for o in _outputs(case.fn(*args))]

    def L(*xs):
        terms = [_real_sum(o * w) for o, w in zip(_outputs(fn(*xs)), ws)]
        return functools.reduce(operator.add, terms)
    return L


def _real_sum(x):
    """``sum(x)``, or its real part for complex ``x`` (a real loss, a real pairing)."""
    s = np.sum(x)
    return np.real(s) if is_complex(x) else s


def _dot(xs, ys):
    return functools.reduce(operator.add, [_real_sum(x * y) for x, y in zip(xs, ys)])


def _close(actual, expected, case: Case, what: str) -> None:
    expected = np.asarray(expected)
    expected = expected.astype(np.result_type(expected, np.float64))
    scale = 1.0 + float(np.max(np.abs(expected), initial=0.0))
    actual = np.asarray(actual)
    np.testing.assert_allclose(actual.astype(np.result_type(actual, np.float64)), expected,
                               rtol=case.rtol,
                               atol=case.atol * scale, err_msg=f"{case.name}: {what}")


def _same(actual, expected, case: Case, what: str) -> None:
    """Equal shapes, dtypes and values (up to the rounding of a reordered sum)."""
    actual, expected = _outputs(actual), _outputs(expected)
    assert len(actual) == len(expected), f"{case.name}: {what}: {len(actual)} outputs, " \
                                         f"expected {len(expected)}"
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert not isinstance(a, pycograd.core.trace.Tracer), f"{case.name}: {what} leaked {a!r}"
        assert np.shape(a) == np.shape(e), \
            f"{case.name}: {what} output {i} has shape {np.shape(a)}, expected {np.shape(e)}"
        assert np.result_type(a) == np.result_type(e), \
            f"{case.name}: {what} output {i} has dtype {np.result_type(a)}, " \
            f"expected {np.result_type(e)}"
        tol = 1e-5 if np.result_type(e) in (np.float32, np.complex64) else 1e-11
        np.testing.assert_allclose(a, e, rtol=tol, atol=tol, err_msg=f"{case.name}: {what}")


@pytest.fixture(autouse=True)
def strict_residuals(monkeypatch):
    """Every residual a VJP reads for its shape only is a stand-in that refuses value
    reads, however small (the lean tape keeps small ones whole): a rule reading a residual
    the tape did not keep fails every reverse mode."""
    monkeypatch.setattr("pycograd.core.var.SHAPED_FROM_BYTES", 0)


@pytest.fixture
def executed(monkeypatch):
    """The names of the primitives that run during the test: their ``impl`` is called, or
    a tape node is recorded for them (custom_vjp runs the user's ``fwd`` instead)."""
    seen: set[str] = set()
    for name, prim in REGISTRY.items():
        def impl(*a, _impl=prim.impl, _name=name, **k):
            seen.add(_name)
            return _impl(*a, **k)
        monkeypatch.setattr(prim, "impl", impl)
    var_init = Var.__init__

    def init(self, value, trace=None, prim=None, *a, **k):
        if prim is not None:
            seen.add(prim.name)
        var_init(self, value, trace, prim, *a, **k)
    monkeypatch.setattr(Var, "__init__", init)
    return seen


# ---- the tables themselves ------------------------------------------------------------

def test_names_unique():
    assert len(set(IDS)) == len(IDS), sorted(n for n in IDS if IDS.count(n) > 1)


def test_opt_outs_are_reasoned():
    """A case leaves a mode only with a written reason, and only a mode that exists."""
    for c in CASES:
        for mode, reason in c.skip.items():
            assert mode in MODES, f"{c.name}: skip names unknown mode {mode!r}"
            assert isinstance(reason, str) and len(reason) > 10, f"{c.name}: skip {mode!r} " \
                                                                 "needs a reason"


# Subpackages that wire pycograd to the outside (lowering, notebooks, demos); primitives
# are declared elsewhere, so the registry is complete without importing them.
_NOT_PRIMITIVE_HOMES = ("pycograd.backends", "pycograd.dsl", "pycograd.examples")


def _import_all() -> None:
    """Import every pycograd module, so the registry holds every primitive however the
    test session was selected."""
    for info in pkgutil.walk_packages(pycograd.__path__, "pycograd."):
        if not info.name.startswith(_NOT_PRIMITIVE_HOMES):
            importlib.import_module(info.name)


def test_every_primitive_has_a_case():
    _import_all()
    covered = {p for c in CASES for p in c.prims}
    unknown = covered - set(REGISTRY)
    assert not unknown, f"cases claim primitives that are not registered: {sorted(unknown)}"
    missing = sorted(set(REGISTRY) - covered)
    assert not missing, f"registered primitives with no sweep case: {missing}"


def test_print_op_list():
    """The coverage table and the opt-outs (visible with ``pytest -s``)."""
    _import_all()
    rows = []
    for name, prim in sorted(REGISTRY.items()):
        n = sum(name in c.prims for c in CASES)
        rows.append(f"  {name:<16}{'' if prim.differentiable else '(no grad) '}{n} cases")
    counts = {m: sum(runs(c, m) for c in CASES) for m in MODES}
    print(f"\nsweep: {len(CASES)} cases over {len(REGISTRY)} primitives; per mode: {counts}")
    print("\n".join(rows))
    for c in CASES:
        for mode, reason in c.skip.items():
            print(f"  opt-out {c.name} [{mode}]: {reason}")
    assert all(not r.endswith(" 0 cases") for r in rows)


# ---- reverse mode ----------------------------------------------------------------------

@pytest.mark.parametrize("case", **_params("values"))
def test_values(case: Case):
    """Traced evaluation gives numpy's own values, shapes and dtypes."""
    args = case.sample()
    expected = _outputs(case.fn(*args))
    traced, _ = pycograd.vjp(case.fn, *args)
    traced = _outputs(traced)
    assert len(traced) == len(expected)
    for t, e in zip(traced, expected):
        assert not isinstance(t, Var)
        assert np.shape(t) == np.shape(e) and np.result_type(t) == np.result_type(e), case.name
        np.testing.assert_allclose(t, e, rtol=1e-12, atol=1e-14, err_msg=case.name)


@pytest.mark.parametrize("case", **_params("first_order"))
def test_first_order(case: Case, executed: set):
    args = case.sample()
    L = _loss(case, args)
    grads = pycograd.grad(L, argnums=tuple(range(len(args))))(*args)
    missing = set(case.prims) - executed
    assert not missing, f"{case.name} claims {sorted(missing)} but never runs them"
    reference = L if case.reference is None else _loss(case, args, case.reference(*args))
    expected = numerical_grad(reference, args, case.eps)
    for i, (x, g, e) in enumerate(zip(args, grads, expected)):
        assert isinstance(g, np.ndarray), f"{case.name}: gradient {i} is {type(g).__name__}"
        assert g.shape == x.shape and g.dtype == x.dtype, \
            f"{case.name}: gradient {i} is {g.shape} {g.dtype}, argument {x.shape} {x.dtype}"
        _close(g, e, case, f"d/d arg {i}")


def _hvp_setup(case: Case):
    args = case.sample()
    rng = case.rng(salt=2)
    v = [a.direction(rng) for a in case.args]
    nums = tuple(range(len(args)))
    return args, v, nums, pycograd.grad(_loss(case, args), argnums=nums)


@pytest.mark.parametrize("case", **_params("second_order"))
def test_second_order(case: Case):
    """Reverse-over-reverse Hessian-vector products against differences of the gradient."""
    args, v, nums, grad_L = _hvp_setup(case)
    hvp = pycograd.grad(lambda *xs: _dot(grad_L(*xs), v), argnums=nums)(*args)
    expected = directional(grad_L, args, v, case.hvp_eps)
    for i, (x, h, e) in enumerate(zip(args, hvp, expected)):
        assert h.shape == x.shape, f"{case.name}: HVP {i} has shape {h.shape}, not {x.shape}"
        _close(h, e, case, f"HVP component {i}")


# ---- forward mode ----------------------------------------------------------------------

@pytest.mark.parametrize("case", **_params("jvp"))
def test_jvp(case: Case):
    """Primal outputs are numpy's; tangents are directional derivatives along random v."""
    args = case.sample()
    v = [a.direction(case.rng(salt=3)) for a in case.args]
    out, tangent = pycograd.jvp(case.fn, tuple(args), tuple(v))
    _same(out, case.fn(*args), case, "jvp primal")
    fn = case.fn if case.reference is None else case.reference(*args)
    expected = directional(lambda *xs: _outputs(fn(*xs)), args, v, case.eps)
    _check_tangents(case, out, tangent, expected, "jvp")
    n = len(args)
    if not runs(case, "jvp_constants"):
        return
    for k in (0, n - 1):  # the other arguments are constants: their tangents are None
        def only_k(x, k=k):
            return case.fn(*args[:k], x, *args[k + 1:])
        vk = [d if i == k else np.zeros_like(d) for i, d in enumerate(v)]
        out, tangent = pycograd.jvp(only_k, (args[k],), (v[k],))
        expected = directional(lambda *xs: _outputs(fn(*xs)), args, vk, case.eps)
        _check_tangents(case, out, tangent, expected, f"jvp of argument {k} alone")


def _check_tangents(case: Case, out, tangent, expected: list, what: str) -> None:
    tangent = _outputs(tangent)
    assert len(tangent) == len(expected)
    for i, (t, e, o) in enumerate(zip(tangent, expected, _outputs(out))):
        assert np.shape(t) == np.shape(o), \
            f"{case.name}: {what}: tangent {i} has shape {np.shape(t)}, output {np.shape(o)}"
        if np.result_type(o).kind in "fc":
            assert np.result_type(t) == np.result_type(o), \
                f"{case.name}: {what}: tangent {i} is {np.result_type(t)}, output " \
                f"{np.result_type(o)}"
        _close(t, e, case, f"{what}: tangent {i}")


@pytest.mark.parametrize("case", **_params("jvp_second_order"))
def test_jvp_second_order(case: Case):
    """Forward-over-reverse and reverse-over-forward HVPs equal reverse-over-reverse and
    the differences of the gradient."""
    args, v, nums, grad_L = _hvp_setup(case)
    L = _loss(case, args)
    rr = pycograd.grad(lambda *xs: _dot(grad_L(*xs), v), argnums=nums)(*args)
    _, fr = pycograd.jvp(grad_L, tuple(args), tuple(v))
    rf = pycograd.grad(lambda *xs: pycograd.jvp(L, xs, tuple(v))[1], argnums=nums)(*args)
    fd = directional(grad_L, args, v, case.hvp_eps)
    for i, x in enumerate(args):
        for name, h in (("forward-over-reverse", fr[i]), ("reverse-over-forward", rf[i])):
            assert np.shape(h) == x.shape, f"{case.name}: {name} HVP {i} has shape {np.shape(h)}"
            _close(h, rr[i], case, f"{name} vs reverse-over-reverse, component {i}")
            _close(h, fd[i], case, f"{name} vs differences, component {i}")


# ---- vmap ------------------------------------------------------------------------------

def _loop(fn, examples: list, axis: int = 0) -> list:
    """Run ``fn`` per example and stack each output along ``axis``."""
    outs = [_outputs(fn(*ex)) for ex in examples]
    return [np.stack(col, axis=axis) for col in zip(*outs)]


def _stack(examples: list, axis: int = 0) -> list:
    return [np.stack(col, axis=axis) for col in zip(*examples)]


@pytest.mark.parametrize("case", **_params("vmap"))
def test_vmap(case: Case):
    """vmap equals the loop, whatever the batch axis and whichever arguments are mapped."""
    exs = case.examples(BATCH)
    f = case.fn
    if case.data_dependent:  # ragged per-example outputs: a clear error, never a guess
        with pytest.raises(pycograd.PycogradError):
            pycograd.vmap(f)(*_stack(exs))
        return
    _same(pycograd.vmap(f)(*_stack(exs)), _loop(f, exs), case, "vmap in_axes=0")
    _same(pycograd.vmap(f, in_axes=-1, out_axes=-1)(*_stack(exs, -1)), _loop(f, exs, -1),
          case, "vmap in_axes=-1, out_axes=-1")
    mid = tuple(min(1, np.ndim(x)) for x in exs[0])  # the batch axis inside the operands
    args = [np.stack(col, axis=ax) for col, ax in zip(zip(*exs), mid)]
    _same(pycograd.vmap(f, in_axes=mid)(*args), _loop(f, exs), case, f"vmap in_axes={mid}")
    n = len(case.args)
    if not runs(case, "vmap_unmapped"):
        return
    base = exs[0]
    for k in (0, n - 1):
        axes = tuple(0 if i == k else None for i in range(n))
        args = [np.stack([ex[i] for ex in exs]) if i == k else base[i] for i in range(n)]
        mixed = [[ex[i] if i == k else base[i] for i in range(n)] for ex in exs]
        _same(pycograd.vmap(f, in_axes=axes)(*args), _loop(f, mixed), case,
              f"vmap in_axes={axes}")


@pytest.mark.parametrize("case", **_params("vmap_grad"))
def test_vmap_grad(case: Case):
    """Per-example gradients: vmap of grad, and grad of the sum of vmap, equal the loop."""
    exs = case.examples(BATCH)
    L = _loss(case, exs[0])
    nums = tuple(range(len(exs[0])))
    g = pycograd.grad(L, argnums=nums)
    expected = _loop(g, exs)
    per_example = pycograd.vmap(g)(*_stack(exs))
    _same(per_example, expected, case, "vmap(grad)")
    total = pycograd.grad(lambda *xs: np.sum(pycograd.vmap(L)(*xs)), argnums=nums)
    _same(total(*_stack(exs)), expected, case, "grad(sum(vmap))")


# ---- eval_shape ------------------------------------------------------------------------

_COMPLEX = {np.float32: np.complex64}  # complex inputs keep complex in the dtype variants


@pytest.mark.parametrize("case", **_params("eval_shape"))
@pytest.mark.parametrize("dtype", [None, np.float32, np.int32],
                         ids=["own-dtype", "float32", "int32"])
def test_eval_shape(case: Case, dtype):
    """Shapes and dtypes without data equal numpy's (data-dependent shapes are refused),
    for integer inputs too, wherever numpy itself takes them."""
    args = [a if dtype is None else a.astype(_COMPLEX.get(dtype, a.dtype) if
                                              np.iscomplexobj(a) else dtype)
            for a in case.sample()]
    if dtype is np.int32:
        try:
            with np.errstate(all="ignore"):
                case.fn(*args)
        except (TypeError, ValueError, np.linalg.LinAlgError, ZeroDivisionError):
            return  # numpy refuses integer inputs here
    specs = [pycograd.ShapeDtypeStruct(a.shape, a.dtype) for a in args]
    if case.data_dependent:
        with pytest.raises(pycograd.DataDependentShapeError):
            pycograd.eval_shape(case.fn, *specs)
        return
    got = _outputs(pycograd.eval_shape(case.fn, *specs))
    with np.errstate(all="ignore"):
        expected = _outputs(case.fn(*args))
    assert len(got) == len(expected), f"{case.name}: {len(got)} outputs, not {len(expected)}"
    for i, (s, e) in enumerate(zip(got, expected)):
        assert isinstance(s, pycograd.ShapeDtypeStruct), f"{case.name}: output {i} is {s!r}"
        assert (s.shape, s.dtype) == (np.shape(e), np.result_type(e)), \
            f"{case.name}: eval_shape output {i} is {s!r}, numpy gives " \
            f"{np.shape(e)} {np.result_type(e)}"
    if dtype is None:  # the gradient's shapes too: the VJP rules' shape rules, abstractly
        grads = pycograd.eval_shape(pycograd.grad(_loss(case, args), argnums=tuple(
            range(len(args)))), *specs)
        if any(isinstance(g, np.generic) for g in grads):
            pytest.xfail("shapes.py _abstract: a numpy scalar output (np.float64 subclasses "
                         "float) is returned as a static value, not a ShapeDtypeStruct")
        for i, (g, a) in enumerate(zip(grads, args)):
            assert isinstance(g, pycograd.ShapeDtypeStruct) and \
                (g.shape, g.dtype) == (a.shape, a.dtype), \
                f"{case.name}: eval_shape of the gradient {i} is {g!r}, argument {a.shape} " \
                f"{a.dtype}"


# ---- low precision ---------------------------------------------------------------------

_LOW = {np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.complex64)}


def _recording(name: str, rule, record):
    def checked(g, ans, *args, _i, **params):
        ct = rule(g, ans, *args, **params)
        record(name, _i, ct, args[_i])
        return ct
    return checked


def _checked_vjps(prim, record):
    """``prim.vjps`` with every cotangent they return passed to ``record``."""
    vjps, name = prim.vjps, prim.name
    if isinstance(vjps, Joint):
        def joint(wanted, g, ans, *args, **params):
            cts = vjps.rule(wanted, g, ans, *args, **params)
            for i in wanted:
                record(name, i, cts[i], args[i])
            return cts
        return Joint(joint)
    if isinstance(vjps, PerArgument):
        def per(i, g, ans, *args, **params):
            ct = vjps.rule(i, g, ans, *args, **params)
            record(name, i, ct, args[i])
            return ct
        return PerArgument(per)
    return tuple(None if r is None else functools.partial(_recording(name, r, record), _i=i)
                 for i, r in enumerate(vjps))


@pytest.fixture
def too_precise(monkeypatch) -> list:
    """The cotangents backward makes with a dtype other than that of the float16, float32
    or complex64 argument they belong to (the rule: a cotangent is never more precise
    than its value), as ``(primitive, argument, argument dtype, cotangent dtype)``."""
    found: list = []

    def record(name, i, ct, x):
        dt = getattr(x, "dtype", None)
        if ct is not None and dt in _LOW and getattr(ct, "dtype", None) != dt:
            found.append((name, i, str(dt), str(getattr(ct, "dtype", type(ct).__name__))))
    for prim in REGISTRY.values():
        monkeypatch.setattr(prim, "vjps", _checked_vjps(prim, record))
        # every argument kept, so that each cotangent's dtype can be checked against its
        # argument's (the lean tape drops what the rules do not read; the other reverse
        # modes check that)
        monkeypatch.setattr(prim, "residuals", None)
    return found


@pytest.mark.parametrize("case", **_params("low_precision"))
@pytest.mark.parametrize("dtype", [np.float32, np.float16], ids=["float32", "float16"])
def test_low_precision(case: Case, dtype, too_precise: list):
    """float32/float16 inputs: numpy's output dtypes, and cotangents no more precise than
    their values at every tape node (a float64 constant mixed in promotes the forward, and
    the cotangent of the promoted value is float64 up to the op that promoted it)."""
    args = [a.astype(dtype) for a in case.sample()]
    with np.errstate(all="ignore"):
        try:
            expected = _outputs(case.fn(*args))
        except (TypeError, ValueError):
            if dtype is np.float16:
                return  # no float16 loop for this op (numpy.linalg, scipy.signal)
            raise
        out, vjp_fn = pycograd.vjp(case.fn, *args)
        for i, (o, e) in enumerate(zip(_outputs(out), expected)):
            assert np.result_type(o) == np.result_type(e), \
                f"{case.name}: output {i} is {np.result_type(o)}, numpy gives {np.result_type(e)}"
        grads = vjp_fn(tree_map(np.ones_like, out))
    for i, (x, g) in enumerate(zip(args, grads)):
        assert g.dtype == x.dtype, f"{case.name}: gradient {i} is {g.dtype}, not {x.dtype}"
    assert not too_precise, f"{case.name}: cotangents more precise than their values " \
                            f"(primitive, argument, value dtype, cotangent dtype): " \
                            f"{sorted(set(too_precise))}"


# ---- graph capture ------------------------------------------------------------------------

def _tight(actual, expected, case: Case, what: str) -> None:
    for i, (a, e) in enumerate(zip(pycograd.tree_flatten(actual)[0],
                                   pycograd.tree_flatten(expected)[0])):
        e = np.asarray(e)
        assert np.shape(a) == e.shape, f"{case.name}: {what} {i}: shape {np.shape(a)} != {e.shape}"
        tol = 1e-5 if np.result_type(e) in (np.float32, np.complex64) else 1e-12
        scale = 1.0 + float(np.max(np.abs(e), initial=0.0))
        np.testing.assert_allclose(a, e, rtol=tol, atol=tol * scale,
                                   err_msg=f"{case.name}: {what} {i}")


@pytest.mark.parametrize("case", **_params("graph"))
def test_graph(case: Case):
    from pycograd.graph import CaptureError, capture, grad_graph, optimize
    from pycograd.graph.jit import compile_graph

    args = case.sample()
    user_rule = {"custom_vjp", "custom_jvp"} & set(case.prims)
    if case.data_dependent or user_rule:
        with pytest.raises(CaptureError):
            capture(case.fn, *args)
        return
    if "eval_shape" in case.skip:  # a dtype that depends on the values: right, or refused
        try:
            capture(case.fn, *args)
        except CaptureError as e:
            assert "depends on the data" in str(e) or "dtype depends" in str(e), e
            return
    g = capture(case.fn, *args)
    _same(g(*args), case.fn(*args), case, "graph values")
    L = _loss(case, args)
    nums = tuple(range(len(args)))
    gg = grad_graph(capture(L, *args), argnums=nums)
    value, grads = gg(*args)
    v0, g0 = pycograd.value_and_grad(L, argnums=nums)(*args)
    _tight(value, v0, case, "grad_graph value")
    _tight(grads, g0, case, "grad_graph gradient")
    og = optimize(gg)
    _tight(og(*args), (v0, g0), case, "optimized grad_graph")
    leaves = pycograd.tree_flatten(args)[0]
    program = compile_graph(og)
    for what in ("compiled program", "compiled program, recycled outputs"):
        _tight(program(*leaves), pycograd.tree_flatten((v0, g0))[0], case, what)
