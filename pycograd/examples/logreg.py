"""Logistic regression on two overlapping Gaussian blobs, trained by gradient descent.

The model and loss are ordinary numpy (``@``, ``np.exp``, ``np.log``, ``np.mean``);
``value_and_grad`` differentiates them as written.
"""

from __future__ import annotations

import numpy as np

from pycograd import value_and_grad
from pycograd.examples.gradcheck import fd_check
from pycograd.examples.runner import DemoResult


def make_data(rng: np.random.Generator, n: int = 200, dim: int = 2) -> tuple:
    """Two classes, labels 0/1, centred at -mu and +mu with unit noise."""
    y = (np.arange(n) % 2).astype(np.float64)
    mu = np.full(dim, 1.2)
    X = rng.standard_normal((n, dim)) + np.where(y[:, None] == 1, mu, -mu)
    return X, y


def loss(w: np.ndarray, b: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mean binary cross-entropy of ``sigmoid(X @ w + b)`` against labels ``y``."""
    p = 1 / (1 + np.exp(-(X @ w + b)))
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))


def accuracy(w: np.ndarray, b: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(((X @ w + b) > 0) == (y == 1)))


def run(seed: int = 0, quick: bool = False, steps: int = 100, lr: float = 0.5) -> DemoResult:
    rng = np.random.default_rng(seed)
    X, y = make_data(rng)
    w, b = np.zeros(X.shape[1]), np.zeros(())
    vg = value_and_grad(loss, argnums=(0, 1))
    curve = []
    for _ in range(20 if quick else steps):
        value, (gw, gb) = vg(w, b, X, y)
        curve.append(float(value))
        w, b = w - lr * gw, b - lr * gb
    _, (gw, gb) = vg(w, b, X, y)
    fd = fd_check(lambda w, b: loss(w, b, X, y), [w, b], [gw, gb])
    return DemoResult("logreg", curve[0], float(loss(w, b, X, y)), accuracy(w, b, X, y), fd,
                      losses=tuple(curve))
