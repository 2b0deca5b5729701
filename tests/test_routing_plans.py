"""The routing verdict of a function is kept while the globals it reads hold data: a weight
rebound every training step (a new array, a new traced value) does not re-analyze the
function (issue 17, item 4: that re-analysis made a DSL step 25x a plain one)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pycograd import grad
from pycograd.routing import transparent

W = np.ones(3)
HELPER = np.sin


def _uses_weight(x):
    return np.sum(HELPER(x * W))


def _count_analyses(monkeypatch: pytest.MonkeyPatch) -> list:
    calls: list = []
    real = transparent._analyze

    def spy(code, glob, walk):
        calls.append(code.co_name)
        return real(code, glob, walk)

    monkeypatch.setattr(transparent, "_analyze", spy)
    return calls


def test_rebinding_a_data_global_keeps_the_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    global W
    grad(_uses_weight)(np.ones(3))
    calls = _count_analyses(monkeypatch)
    for k in range(5):
        W = np.full(3, float(k))  # a fresh array each step, as a training loop rebinds it
        grad(_uses_weight)(np.ones(3))
    W = grad(lambda w: np.sum(w * 2))(np.ones(3))[0]  # an array of gradients
    grad(_uses_weight)(np.ones(3))
    assert "_uses_weight" not in calls


def test_rebinding_a_global_to_a_function_still_replans(monkeypatch: pytest.MonkeyPatch) -> None:
    global HELPER, W
    W = np.ones(3)
    grad(_uses_weight)(np.ones(3))
    calls = _count_analyses(monkeypatch)
    try:
        HELPER = lambda v: np.array([math.sin(v[0]), v[1], v[2]])  # noqa: E731
        (g,) = grad(_uses_weight)(np.full(3, 0.5))
        assert "_uses_weight" in calls
        assert np.allclose(g, [math.cos(0.5), 1.0, 1.0])
    finally:
        HELPER = np.sin
