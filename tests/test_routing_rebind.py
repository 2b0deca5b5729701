"""Whether a function needs routing follows the current bindings of the globals it reads
(and of the attributes it reads from user modules), not the first call's: the notebook loop
over candidate functions rebinds one global and differentiates the same objective."""

from __future__ import annotations

import math
import sys
import types

import numpy as np
import pytest

from pycograd import grad, jacrev, vmap
from pycograd.numpy_api.transparent import routed

F = np.sin


def objective(x):
    return np.sum(F(x))


def via_helper(x):
    return helper(x) * 2.0


def helper(x):
    return np.cos(x)


CANDIDATES = [
    (np.sin, np.cos),
    (lambda x: np.array([x, x ** 2]), lambda x: 1.0 + 2.0 * x),
    (lambda x: math.cos(x), lambda x: -math.sin(x)),
    (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2),
    (lambda x: np.r_[x, 3.0 * x], lambda x: 4.0 + 0.0 * x),
]


def test_loop_over_candidate_functions():
    """F = np.sin at the first call, then a lambda building np.array of traced values,
    then math.*: each call differentiates the function F is bound to now."""
    global F
    saved = F
    try:
        for _ in range(2):  # and back again: the verdict is not stuck on either side
            for cand, deriv in CANDIDATES:
                F = cand
                assert grad(objective, 0)(0.5) == pytest.approx(deriv(0.5))
                np.testing.assert_allclose(jacrev(lambda x: objective(x) * x)(0.5),
                                           deriv(0.5) * 0.5 + float(np.sum(cand(0.5))))
                np.testing.assert_allclose(vmap(grad(objective, 0))(np.array([0.1, 0.2])),
                                           [deriv(0.1), deriv(0.2)])
    finally:
        F = saved


def test_plain_function_is_returned_again_after_rebinding_back():
    global F
    saved = F
    try:
        F = np.sin
        assert routed(objective) is objective
        F = lambda x: math.sin(x)  # noqa: E731
        assert routed(objective) is not objective
        F = np.sin
        assert routed(objective) is objective
    finally:
        F = saved


def test_helper_rebound_to_one_that_needs_routing():
    global helper
    saved = helper
    try:
        assert grad(via_helper, 0)(0.3) == pytest.approx(-2 * np.sin(0.3))
        helper = lambda x: math.exp(x)  # noqa: E731
        assert grad(via_helper, 0)(0.3) == pytest.approx(2 * np.exp(0.3))
    finally:
        helper = saved


def uses_late(x):
    try:
        return LATE(x)  # noqa: F821  (defined by the test after the first call)
    except NameError:
        return np.sin(x)


def test_global_defined_after_first_call():
    """A name missing at the first analysis (a NameError there), defined afterwards, is
    followed too."""
    assert grad(uses_late, 0)(0.2) == pytest.approx(np.cos(0.2))
    globals()["LATE"] = lambda x: np.array([x, x])[0] * 3.0
    try:
        assert grad(uses_late, 0)(0.2) == pytest.approx(3.0)
    finally:
        del globals()["LATE"]
    assert grad(uses_late, 0)(0.2) == pytest.approx(np.cos(0.2))


def test_user_module_attribute_rebound(tmp_path, monkeypatch):
    """mod.F read through a user module follows the module's current binding."""
    src = tmp_path / "cand_mod_core.py"
    src.write_text("import numpy as np\nF = np.sin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import cand_mod_core as mod  # noqa: PLC0415

    user = tmp_path / "cand_user_core.py"
    user.write_text("import numpy as np\nimport cand_mod_core as mod\n\n"
                    "def obj(x):\n    return np.sum(mod.F(x))\n")
    import cand_user_core as u  # noqa: PLC0415

    try:
        assert grad(u.obj, 0)(0.4) == pytest.approx(np.cos(0.4))
        mod.F = lambda x: np.array([x, 2.0 * x])
        assert grad(u.obj, 0)(0.4) == pytest.approx(3.0)
    finally:
        for name in ("cand_mod_core", "cand_user_core"):
            sys.modules.pop(name, None)
    assert isinstance(mod, types.ModuleType)
