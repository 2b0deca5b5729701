"""The parity sweep of one framework backend, shared by ``fw_torch.py``, ``fw_jax.py`` and
``fw_tf.py`` (each run in its own process by ``tests/test_lowering.py``).

For every case of the gradient sweep (``tests/sweep_cases*.py``): capture it; if a
primitive of the graph has no lowering to the backend, lowering must raise
``NoLoweringError`` naming exactly those primitives and the backend, before anything runs.
Otherwise ``compile_to(case.fn, backend)`` on the framework's tensors gives numpy's values,
and the framework's own autodiff of ``sum(f(x) * W)`` gives the numpy tape's VJP.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import test_sweep  # noqa: E402
from sweep_cases import Case  # noqa: E402

import pycograd  # noqa: E402
from pycograd.backends import NoLoweringError, compile_to  # noqa: E402
from pycograd.backends.compile import lower_graph  # noqa: E402
from pycograd.backends.lowering import load, rule_for, unlowerable  # noqa: E402
from pycograd.graph import capture  # noqa: E402

CASES = [c for c in test_sweep.CASES if not c.data_dependent
         and not {"custom_vjp", "custom_jvp"} & set(c.prims)]
IDS = [c.name for c in CASES]


def _one_per_primitive(cases: list) -> list:
    """The first case of each primitive (the per-primitive sweep of the slower backends)."""
    seen: set[str] = set()
    out = []
    for c in cases:
        if set(c.prims) - seen:
            seen |= set(c.prims)
            out.append(c)
    return out


# The fused nn primitives' lowerings branch on their parameters (one axis or several,
# which affine arguments, broadcasting): every case of theirs runs on every backend.
FUSED = {"softmax", "log_softmax", "layer_norm"}
PER_PRIMITIVE = _one_per_primitive(CASES)
PER_PRIMITIVE += [c for c in CASES if FUSED & set(c.prims) and c not in PER_PRIMITIVE
                  and all(np.dtype(a.dtype).kind == "f" for a in c.args)]
PER_PRIMITIVE_IDS = [c.name for c in PER_PRIMITIVE]

KNOWN = {("torch", "complex-nan_to_num"): "torch adds complex numbers with a NaN or Inf part "
                                          "as a whole (NaN in both parts); numpy per part"}


def _outputs(out: Any) -> list:
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _close(actual: Any, expected: Any, what: str, tol: float = 1e-10) -> None:
    expected = np.asarray(expected)
    actual = np.asarray(actual)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    if expected.dtype.kind in "fc" and expected.dtype.itemsize <= 8 - 4 * (
            expected.dtype.kind == "f"):
        tol = max(tol, 1e-5)  # float32 / complex64
    scale = 1.0 + float(np.max(np.abs(expected), initial=0.0)) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale, err_msg=what,
                               equal_nan=True)


def capture_or_skip(fn: Callable, args: list) -> Any:
    """The case's graph; a case capture refuses (a dtype that depends on the values) is
    the graph sweep's to check, not the lowering's."""
    from pycograd.graph import CaptureError

    try:
        return capture(fn, *args)
    except CaptureError as e:
        pytest.skip(f"not capturable: {str(e)[:120]}")


def check_case(case: Case, backend: str, to_fw: Callable, to_np: Callable,
               vjp: Callable | None, wrap: Callable = lambda f: f) -> None:
    """Values and VJPs of ``case`` through ``backend`` against numpy and the tape.
    ``vjp(fn, xs, ws) -> gradients of sum(fn(*xs) * ws) over xs`` in the framework."""
    if (backend, case.name) in KNOWN:
        pytest.skip(KNOWN[backend, case.name])
    args = case.sample()
    graph = capture_or_skip(case.fn, args)
    missing = sorted(unlowerable(graph, backend))
    if missing:
        with pytest.raises(NoLoweringError) as e:
            lower_graph(graph, backend)
        assert e.value.primitives == missing and e.value.backend == backend
        assert backend in str(e.value) and all(m in str(e.value) for m in missing)
        pytest.skip(f"no lowering to {backend} of {missing} (NoLoweringError checked)")
    with np.errstate(all="ignore"):
        expected = _outputs(case.fn(*args))
    fn = compile_to(case.fn, backend)
    got = _outputs(wrap(fn)(*[to_fw(a) for a in args]))
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected)):
        _close(to_np(g), e, f"{case.name}: {backend} value {i}")
    floats = [np.result_type(e).kind in "fc" for e in expected]
    if vjp is None or not all(floats) or any(np.iscomplexobj(a) for a in args) or \
            any(np.iscomplexobj(e) for e in expected):
        return
    rng = case.rng(salt=7)
    ws = [rng.standard_normal(np.shape(e)).astype(np.result_type(e)) for e in expected]
    out, pull = pycograd.vjp(case.fn, *args)
    tape = pull(type(out)(ws) if isinstance(out, (list, tuple)) else ws[0])
    grads = vjp(fn, [to_fw(a) for a in args], [to_fw(w) for w in ws])
    for i, (g, t) in enumerate(zip(grads, tape)):
        _close(to_np(g), t, f"{case.name}: {backend} VJP of argument {i}")


def coverage(backend: str) -> tuple[list[str], list[str]]:
    """``(lowered, not lowered)`` primitive names for ``backend``."""
    from pycograd.core.primitive import REGISTRY

    load(backend)
    done = sorted(n for n, p in REGISTRY.items() if rule_for(p, backend) is not None)
    return done, sorted(set(REGISTRY) - set(done))
