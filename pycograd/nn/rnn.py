"""Recurrent cells with PyTorch's weight layout and gate order, and ``scan`` to run any
cell over a sequence (an unrolled Python loop: the tape records each step)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pycograd.core.errors import ArgumentError, ShapeError
from pycograd.core.pytree import tree_flatten, tree_unflatten
from pycograd.nn.linear import linear
from pycograd.ops.gates import check_shapes, gru_gates_p
from pycograd.routing.transparent import routed


def _gate(x: Any) -> Any:
    """The sigmoid of a gate as ``(1 + tanh(x / 2)) / 2``: never overflows, and is 4
    traced ops instead of ``sigmoid``'s 8 (a recurrent step runs it every token). Values
    and derivatives agree with ``sigmoid`` to rounding in absolute terms; only the relative
    precision of gates below ~1e-16 (|x| > 37) is lost, which no gate product notices."""
    return 0.5 + 0.5 * np.tanh(0.5 * x)


def rnn_cell(x: Any, h: Any, w_ih: Any, w_hh: Any, b_ih: Any = None, b_hh: Any = None,
             nonlinearity: str = "tanh") -> Any:
    """``act(x W_ih^T + b_ih + h W_hh^T + b_hh)``; ``nonlinearity`` is 'tanh' or 'relu'.

    Examples:
        >>> import numpy as np
        >>> from pycograd import rnn_cell
        >>> x, h = np.ones((2, 3)), np.zeros((2, 4))                 # (batch, I), (batch, H)
        >>> rnn_cell(x, h, np.zeros((4, 3)), np.zeros((4, 4))).shape
        (2, 4)
    """
    z = linear(x, w_ih, b_ih) + linear(h, w_hh, b_hh)
    if nonlinearity == "tanh":
        return np.tanh(z)
    if nonlinearity == "relu":
        return np.where(z > 0, z, 0.0)
    raise ArgumentError(f"rnn_cell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")


def gru_cell(x: Any, h: Any, w_ih: Any, w_hh: Any, b_ih: Any = None, b_hh: Any = None) -> Any:
    """GRU step, gates stacked ``(r, z, n)`` in ``w_ih`` ``(3H, I)`` and ``w_hh`` ``(3H, H)``:
    ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``h' = (1 - z) * n + z * h``.

    Examples:
        >>> import numpy as np
        >>> from pycograd import gru_cell
        >>> x, h = np.ones((2, 3)), np.zeros((2, 4))
        >>> gru_cell(x, h, np.zeros((12, 3)), np.zeros((12, 4))).shape      # 3H rows
        (2, 4)

    The gate arithmetic after the two matmuls is one primitive (``gru_gates``): one tape
    node per step instead of ~17, the same numbers as the composition it replaces.
    """
    xg, hg = linear(x, w_ih, b_ih), linear(h, w_hh, b_hh)
    check_shapes("gru_cell", np.shape(xg), np.shape(hg), np.shape(h))
    return gru_gates_p.bind(xg, hg, h)


def lstm_cell(x: Any, state: tuple[Any, Any], w_ih: Any, w_hh: Any, b_ih: Any = None,
              b_hh: Any = None) -> tuple[Any, Any]:
    """LSTM step on ``state = (h, c)``, gates stacked ``(i, f, g, o)`` in ``w_ih`` ``(4H, I)``
    and ``w_hh`` ``(4H, H)``; returns the new ``(h, c)``.

    Examples:
        >>> import numpy as np
        >>> from pycograd import lstm_cell
        >>> x, state = np.ones((2, 3)), (np.zeros((2, 4)), np.zeros((2, 4)))
        >>> h, c = lstm_cell(x, state, np.zeros((16, 3)), np.zeros((16, 4)))  # 4H rows
        >>> h.shape, c.shape
        ((2, 4), (2, 4))
    """
    h, c = state
    i, f, g, o = np.split(linear(x, w_ih, b_ih) + linear(h, w_hh, b_hh), 4, axis=-1)
    c = _gate(f) * c + _gate(i) * np.tanh(g)
    return _gate(o) * np.tanh(c), c


def _take(x: Any, t: int, axis: int) -> Any:
    return x[(slice(None),) * axis + (t,)]


def scan(cell: Callable, init: Any, xs: Any, axis: int = 0,
         has_output: bool = False) -> tuple[Any, Any]:
    """Run ``cell`` over ``xs`` along ``axis`` (time first by default); ``xs`` may be a pytree
    of arrays sharing that axis. Returns ``(final_carry, outputs)``, the outputs stacked
    along ``axis``.

    By default ``cell(carry, x_t) -> carry`` and the output of a step is the carry itself,
    or its first element for a tuple carry (an LSTM's ``h`` in ``(h, c)``), so
    ``scan(lambda h, x: gru_cell(x, h, *w), h0, xs)`` just works. With ``has_output=True``
    the cell returns ``(carry, y)`` (JAX's convention) and the ``y``s (a pytree) are stacked.

    Examples:
        >>> import numpy as np
        >>> from pycograd import grad, scan
        >>> final, states = scan(lambda h, x: 0.5 * h + x, np.zeros(2), np.ones((3, 2)))
        >>> final.tolist(), states.shape                       # carry after each of 3 steps
        ([1.75, 1.75], (3, 2))
        >>> grad(lambda xs: np.sum(scan(lambda h, x: 0.5 * h + x, 0.0, xs)[0]), 0)(
        ...     np.ones(3)).tolist()
        [0.25, 0.5, 1.0]
    """
    leaves, tree = tree_flatten(xs)
    if not leaves:
        raise ArgumentError("scan: xs has no arrays to scan over")
    steps = {np.shape(a)[axis] for a in leaves}
    if len(steps) != 1:
        raise ArgumentError(f"scan: the arrays in xs disagree on the length of axis {axis}: "
                            f"{sorted(steps)}")
    length = steps.pop()
    if not isinstance(length, (int, np.integer)):
        raise ShapeError(f"scan: the scanned axis {axis} has symbolic length {length}; scan "
                         "runs one step per element, so that length must be concrete: keep "
                         "the symbolic (batch) dimension on another axis")
    carry, ys = init, []
    cell = routed(cell)  # called from here, not from the user's (routed) code
    for t in range(length):
        out = cell(carry, tree_unflatten(tree, [_take(a, t, axis % np.ndim(a)) for a in leaves]))
        if has_output:
            carry, y = out
        else:
            carry = out
            y = carry[0] if isinstance(carry, tuple) else carry
        ys.append(y)
    if not ys:
        return carry, None
    y_tree = tree_flatten(ys[0])[1]
    y_leaves = [tree_flatten(y)[0] for y in ys]
    stacked = [np.stack([yl[j] for yl in y_leaves], axis=axis % (np.ndim(y_leaves[0][j]) + 1))
               for j in range(len(y_leaves[0]))]
    return carry, tree_unflatten(y_tree, stacked)
