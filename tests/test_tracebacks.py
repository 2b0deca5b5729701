"""Tracebacks show the user's frames and at most one pycograd frame (issue 17, item 5)."""

from __future__ import annotations

import traceback

import numpy as np
import pytest

import pycograd
from pycograd import ShapeError, grad, jacrev, value_and_grad, vmap
from pycograd.core.tracebacks import PACKAGE_DIR


def _layer(x, w):
    return np.tanh(x @ w)


def _loss(w):
    return np.sum(_layer(np.ones((4, 3)), w))


def _files(e: BaseException) -> list[str]:
    out, tb = [], e.__traceback__
    while tb is not None:
        out.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    return out


TRANSFORMS = {
    "grad": lambda: grad(_loss)(np.ones((2, 5))),
    "value_and_grad": lambda: value_and_grad(_loss)(np.ones((2, 5))),
    "jacrev": lambda: jacrev(_loss)(np.ones((2, 5))),
    "vmap": lambda: vmap(_loss)(np.ones((7, 2, 5))),
    "grad_of_vmap": lambda: grad(lambda w: np.sum(vmap(_loss)(w)))(np.ones((7, 2, 5))),
}


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_shape_error_in_a_helper_shows_user_frames(name: str) -> None:
    with pytest.raises(ShapeError) as info:
        TRANSFORMS[name]()
    files = _files(info.value)
    lib = [f for f in files if f.startswith(PACKAGE_DIR)]
    assert len(lib) <= 1, files
    assert files[-1].startswith(PACKAGE_DIR)  # the line that raised
    assert files.count(__file__) >= 3  # the test's lambda, _loss, _layer
    text = "".join(traceback.format_exception(info.value))
    assert "direct cause" not in text and "During handling" not in text
    assert "incompatible shapes (4, 3) and (2, 5)" in text


def test_filtering_off_shows_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYCOGRAD_TRACEBACK_FILTERING", "off")
    with pytest.raises(ShapeError) as info:
        TRANSFORMS["grad"]()
    assert sum(f.startswith(PACKAGE_DIR) for f in _files(info.value)) > 3
    assert info.value.__cause__ is not None


def test_user_error_keeps_no_library_frame_and_its_own_cause() -> None:
    def f(x):
        try:
            {}["missing"]
        except KeyError as k:
            raise ValueError("user's own error") from k
        return x

    with pytest.raises(ValueError) as info:
        grad(f)(1.0)
    assert not any(f.startswith(PACKAGE_DIR) for f in _files(info.value))
    assert isinstance(info.value.__cause__, KeyError)  # the user's chain is kept


def test_errors_are_still_pycograd_errors() -> None:
    with pytest.raises(pycograd.PycogradError):
        TRANSFORMS["grad"]()


tb_w = np.ones((2, 5))  # a weight read by bare name


def _objective():
    return _loss(tb_w)


def test_weights_grad_is_a_boundary_too() -> None:
    weights = pycograd.ParamDict(tb_w=np.ones((2, 5)))
    with pytest.raises(ShapeError) as info:
        weights.grad(_objective)
    files = _files(info.value)
    assert sum(f.startswith(PACKAGE_DIR) for f in files) <= 1, files
    assert files.count(__file__) >= 4  # this test, _objective, _loss, _layer
