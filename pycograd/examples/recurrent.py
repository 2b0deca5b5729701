"""What the GRU and LSTM demos share: a one-layer recurrent classifier, run over the
sequence with ``nn.scan``, whose last hidden state feeds a linear head.

The cell's weights are read by bare name inside the step function, so ``ParamDict``
rebinds them for ``weights.grad`` however deep the closure; ``scan`` unrolls the loop,
and the tape records every step (backpropagation through time is just backward).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pycograd import nn
from pycograd.examples.common import accuracy, check_weights, fit, glorot
from pycograd.examples.runner import DemoResult
from pycograd.optim import Adam
from pycograd.params import ParamDict

HIDDEN = 16
CELLS: dict[str, tuple[Callable, int, Callable]] = {
    "gru": (nn.gru_cell, 3, lambda h: h),
    "lstm": (nn.lstm_cell, 4, lambda h: (h, np.zeros_like(h))),
}
"""cell, gates stacked in its weights, initial carry from a zero hidden state"""


def build(rng: np.random.Generator, kind: str, inputs: int,
          classes: int = 2) -> tuple[ParamDict, Callable]:
    """``(weights, forward)``: ``(batch, time, inputs)`` sequences -> ``(batch, classes)``."""
    cell, gates, carry0 = CELLS[kind]
    w_ih, w_hh = glorot(rng, (gates * HIDDEN, inputs), HIDDEN), glorot(
        rng, (gates * HIDDEN, HIDDEN), HIDDEN)
    b_ih, b_hh = glorot(rng, (gates * HIDDEN,), HIDDEN), glorot(rng, (gates * HIDDEN,), HIDDEN)
    w_out, b_out = glorot(rng, (classes, HIDDEN), HIDDEN), np.zeros(classes)
    weights = ParamDict(w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh, w_out=w_out, b_out=b_out)

    def step(carry: Any, x_t: Any) -> Any:
        return cell(x_t, carry, w_ih, w_hh, b_ih, b_hh)

    def forward(x: np.ndarray) -> Any:
        carry, _ = nn.scan(step, carry0(np.zeros((len(x), HIDDEN))), x, axis=1)
        h = carry[0] if isinstance(carry, tuple) else carry
        return nn.linear(h, w_out, b_out)

    return weights, forward


def run_demo(kind: str, make_data: Callable, seed: int, quick: bool, steps: int,
             lr: float) -> DemoResult:
    """Train a ``kind`` classifier on ``make_data(rng, n) -> (x, labels)``."""
    rng = np.random.default_rng(seed)
    X_train, y_train = make_data(rng, 2048)
    X_test, y_test = make_data(rng, 512)
    weights, forward = build(rng, kind, X_train.shape[-1])

    def loss(x: np.ndarray, y: np.ndarray) -> Any:
        return nn.cross_entropy(forward(x), y)

    fd = check_weights(weights, loss, X_train[:4], y_train[:4])
    curve = fit(weights, loss, steps // 5 if quick else steps, Adam(lr), X_train, y_train,
                batch_size=64, seed=seed)
    return DemoResult(kind, curve[0], curve[-1], accuracy(forward(X_test), y_test), fd,
                      losses=tuple(curve))
