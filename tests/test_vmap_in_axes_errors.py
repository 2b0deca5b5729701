"""A wrong ``in_axes`` names the argument, its shape, the axis and the sizes seen
(issue 17, item 6), as JAX's message does."""

from __future__ import annotations

import numpy as np
import pytest

from pycograd import ShapeError, vmap


def predict(x, batch):
    return x @ batch["w"]


def test_sizes_differ_names_every_mapped_argument() -> None:
    with pytest.raises(ShapeError) as info:
        vmap(predict)(np.ones((5, 3)), {"w": np.ones((4, 3, 2))})
    msg = str(info.value)
    assert "inconsistent sizes for the mapped axis: 4 and 5" in msg
    assert "argument 0 ('x'): shape (5, 3), in_axes=0, size 5" in msg
    assert "argument 1 ('batch')['w']: shape (4, 3, 2), in_axes=0, size 4" in msg
    assert "leaf" not in msg


def test_sizes_differ_on_a_requested_axis() -> None:
    with pytest.raises(ShapeError) as info:
        vmap(lambda a, b: a + b.T, in_axes=(0, 1))(np.ones((5, 2)), np.ones((2, 3)))
    msg = str(info.value)
    assert "argument 0 ('a'): shape (5, 2), in_axes=0, size 5" in msg
    assert "argument 1 ('b'): shape (2, 3), in_axes=1, size 3" in msg


def test_axis_out_of_range_names_the_argument() -> None:
    with pytest.raises(ShapeError) as info:
        vmap(predict, in_axes=(2, 0))(np.ones((5, 3)), {"w": np.ones((5, 3, 2))})
    msg = str(info.value)
    assert "in_axes=2 for argument 0 ('x'), which has shape (5, 3)" in msg
    assert "None to broadcast" in msg


def test_variadic_arguments_are_named_by_position() -> None:
    with pytest.raises(ShapeError, match=r"argument 1: shape \(3,\)"):
        vmap(lambda *xs: xs[0] + xs[1])(np.ones(5), np.ones(3))
