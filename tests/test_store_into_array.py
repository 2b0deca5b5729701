"""``h = np.zeros(3); h[i] = w[i] * 2`` under a transform says what happened and what to write
instead, not numpy's 'setting an array element with a sequence' (issue 17, item 8)."""

from __future__ import annotations

import numpy as np
import pytest

from pycograd import ImmutableTracerError, grad, jacrev, scatter_set, vmap


def _fill(w, dtype=float):
    h = np.zeros(3, dtype=dtype)
    for i in range(3):
        h[i] = w[i] * 2
    return np.sum(h)


def _fill_slice(w):
    h = np.zeros(3)
    h[:2] = w[:2] * 2
    return np.sum(h)


@pytest.mark.parametrize("f", [_fill, _fill_slice,
                               lambda w: _fill(w, complex).real, lambda w: _fill(w, np.float32)])
def test_storing_a_traced_value_into_an_array_says_what_to_write(f) -> None:
    with pytest.raises(ImmutableTracerError) as info:
        grad(f)(np.ones(3))
    msg = str(info.value)
    assert "h[i] = v" in msg and "plain numpy array" in msg
    assert "scatter_set" in msg and "np.where" in msg and "np.stack" in msg
    assert "sequence" not in msg


def test_other_transforms_say_it_too() -> None:
    with pytest.raises(ImmutableTracerError):
        jacrev(_fill)(np.ones(3))
    with pytest.raises(ImmutableTracerError):
        vmap(grad(_fill))(np.ones((2, 3)))


def test_the_user_line_is_in_the_traceback() -> None:
    with pytest.raises(ImmutableTracerError) as info:
        grad(_fill)(np.ones(3))
    tb = info.value.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    assert tb.tb_frame.f_code is _fill.__code__


def test_a_value_error_of_the_user_is_left_alone() -> None:
    def f(w):
        try:
            np.zeros(3)[0] = w[0]
        except ValueError:
            pass
        raise ValueError("the user's own")

    with pytest.raises(ValueError, match="the user's own"):
        grad(f)(np.ones(3))


def test_what_the_message_suggests_differentiates() -> None:
    def f(w):
        h = np.zeros(3)
        for i in range(3):
            h = scatter_set(h, i, w[i] * 2)
        return np.sum(h)

    assert np.allclose(grad(f)(np.ones(3))[0], 2.0)
