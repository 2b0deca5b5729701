"""A two-layer ReLU MLP on scikit-learn's 8x8 digits, trained with ``train`` and Adam.

The forward reads its weights by bare name (``w1``, ``b1``, ...): ``ParamDict`` binds
those names to traced values while ``weights.grad`` runs, and outside it they are the
plain arrays the optimizer updates in place, so evaluation is just ``forward(X_test)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pycograd import nn
from pycograd.examples.common import accuracy, check_weights, fit, he
from pycograd.examples.datasets import load_digits_split
from pycograd.examples.runner import DemoResult
from pycograd.optim import Adam
from pycograd.params import ParamDict

HIDDEN = 64
BATCH_SIZE = 64
LR = 3e-3
STEPS = 500
TARGET = 0.95


def build(rng: np.random.Generator, dtype: type = np.float64) -> tuple[ParamDict, Callable]:
    """``(weights, forward)`` for 64 pixels -> ``HIDDEN`` ReLU units -> 10 logits."""
    w1 = he(rng, (HIDDEN, 64), 64).astype(dtype)
    b1 = np.zeros(HIDDEN, dtype)
    w2 = he(rng, (10, HIDDEN), HIDDEN).astype(dtype)
    b2 = np.zeros(10, dtype)
    weights = ParamDict(w1=w1, b1=b1, w2=w2, b2=b2)

    def forward(x: np.ndarray) -> np.ndarray:
        return nn.linear(nn.relu(nn.linear(x, w1, b1)), w2, b2)

    return weights, forward


def run(seed: int = 0, quick: bool = False) -> DemoResult:
    X_train, X_test, y_train, y_test = load_digits_split()
    weights, forward = build(np.random.default_rng(seed))

    def loss(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return nn.cross_entropy(forward(x), y)

    fd = check_weights(weights, loss, X_train[:8], y_train[:8])
    curve = fit(weights, loss, 30 if quick else STEPS, Adam(LR), X_train, y_train,
                batch_size=BATCH_SIZE, seed=seed)
    return DemoResult("mlp", curve[0], curve[-1], accuracy(forward(X_test), y_test), fd,
                      target=None if quick else TARGET, losses=tuple(curve))
