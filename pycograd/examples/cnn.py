"""A small convolutional network on scikit-learn's 8x8 digits.

Two 3x3 convolutions with stride 2 take the image from 8x8 to 4x4 to 2x2 (strided
convolutions downsample as pooling would, at half the cost here), then a linear head
reads the 2x2 feature maps. NCHW layout, PyTorch's weight shapes.

The convolution biases start at 0.01 rather than 0: on the digits' blank background a
pre-activation is exactly its bias, and at 0 it would sit on ReLU's kink, where the
finite-difference check averages the two one-sided slopes and disagrees with any
gradient.
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

CHANNELS = (16, 32)
STEPS = 400
TARGET = 0.95


def build(rng: np.random.Generator) -> tuple[ParamDict, Callable]:
    """``(weights, forward)`` for ``(n, 1, 8, 8)`` images -> 10 logits."""
    c1, c2 = CHANNELS
    k1, b1 = he(rng, (c1, 1, 3, 3), 9), np.full(c1, 0.01)
    k2, b2 = he(rng, (c2, c1, 3, 3), 9 * c1), np.full(c2, 0.01)
    w, b = he(rng, (10, c2 * 4), c2 * 4), np.zeros(10)
    weights = ParamDict(k1=k1, b1=b1, k2=k2, b2=b2, w=w, b=b)

    def forward(x: np.ndarray) -> np.ndarray:
        h = nn.relu(nn.conv2d(x, k1, b1, stride=2, padding=1))
        h = nn.relu(nn.conv2d(h, k2, b2, stride=2, padding=1))
        return nn.linear(np.reshape(h, (len(x), -1)), w, b)

    return weights, forward


def run(seed: int = 0, quick: bool = False) -> DemoResult:
    X_train, X_test, y_train, y_test = (a.reshape(-1, 1, 8, 8) if a.ndim == 2 else a
                                        for a in load_digits_split())
    weights, forward = build(np.random.default_rng(seed))

    def loss(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return nn.cross_entropy(forward(x), y)

    fd = check_weights(weights, loss, X_train[:4], y_train[:4])
    curve = fit(weights, loss, 30 if quick else STEPS, Adam(3e-3), X_train, y_train,
                batch_size=64, seed=seed)
    return DemoResult("cnn", curve[0], curve[-1], accuracy(forward(X_test), y_test), fd,
                      target=None if quick else TARGET, losses=tuple(curve))
