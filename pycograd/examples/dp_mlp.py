"""The digits MLP of ``mlp``, trained with differential privacy (DP-SGD).

Each example's gradient is clipped to norm ``CLIP`` (norms by ghost clipping, without
per-example gradients), Gaussian noise of scale ``SIGMA * CLIP`` is added to their sum, and
the ``dp-accounting`` package's RDP accountant says what (epsilon, delta) the whole run
spent; the line ends with it. Batches are Poisson samples of expected size ``BATCH_SIZE``.
"""

from __future__ import annotations

import numpy as np

from pycograd import nn
from pycograd.examples.common import accuracy, check_weights
from pycograd.examples.datasets import load_digits_split
from pycograd.examples.mlp import build
from pycograd.examples.runner import DemoResult
from pycograd.optim import Adam
from pycograd.privacy import dp_train

BATCH_SIZE = 64
CLIP = 1.0
SIGMA = 1.1
DELTA = 1e-5
LR = 3e-3
STEPS = 400
TARGET = 0.85


def run(seed: int = 0, quick: bool = False) -> DemoResult:
    X_train, X_test, y_train, y_test = load_digits_split()
    weights, forward = build(np.random.default_rng(seed))

    def per_example_loss(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return nn.cross_entropy(forward(x), y, reduction="none")

    fd = check_weights(weights, lambda x, y: np.mean(per_example_loss(x, y)),
                       X_train[:8], y_train[:8])
    curve: list[float] = []
    res = dp_train(weights, per_example_loss, X_train, y_train, steps=60 if quick else STEPS,
                   optimizer_or_lr=Adam(3 * LR if quick else LR), clip_norm=CLIP,
                   noise_multiplier=SIGMA, batch_size=BATCH_SIZE, delta=DELTA, key=seed,
                   callbacks=[lambda _step, loss: curve.append(loss)])
    return DemoResult("dp_mlp", curve[0], curve[-1], accuracy(forward(X_test), y_test), fd,
                      target=None if quick else TARGET, losses=tuple(curve),
                      note=f"private: eps {res.epsilon:.2f} at delta {res.delta:g}, "
                           f"clip {CLIP}, noise {SIGMA}")
