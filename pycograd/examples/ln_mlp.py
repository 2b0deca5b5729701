"""An MLP with LayerNorm and Dropout on three interleaved spirals, in a hand-written loop.

Dropout draws its mask from an explicit key: each step folds the step number into the
run's key, so training is reproducible, and the gradient check, which fixes one key,
sees a deterministic function of the weights. Evaluation passes no key (no dropout).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import count, islice

import numpy as np

from pycograd import nn, random
from pycograd.examples.common import accuracy, check_weights, he
from pycograd.examples.runner import DemoResult
from pycograd.optim import AdamW, DataLoader, cosine_decay
from pycograd.params import ParamDict

CLASSES = 3
HIDDEN = 64
DROPOUT = 0.1
STEPS = 400


def spirals(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points in 2-D on ``CLASSES`` noisy spiral arms, with their arm as label."""
    y = np.arange(n) % CLASSES
    r = np.sqrt(rng.uniform(0.05, 1.0, n))
    theta = 3.0 * np.pi * r + 2 * np.pi * y / CLASSES
    X = r[:, None] * np.stack([np.cos(theta), np.sin(theta)], axis=1)
    return X + 0.03 * rng.standard_normal((n, 2)), y


def build(rng: np.random.Generator) -> tuple[ParamDict, Callable]:
    """``(weights, forward)``: two (linear, LayerNorm, ReLU, Dropout) blocks and a head."""
    w1, b1 = he(rng, (HIDDEN, 2), 2), np.zeros(HIDDEN)
    g1, s1 = np.ones(HIDDEN), np.zeros(HIDDEN)
    w2, b2 = he(rng, (HIDDEN, HIDDEN), HIDDEN), np.zeros(HIDDEN)
    g2, s2 = np.ones(HIDDEN), np.zeros(HIDDEN)
    w3, b3 = he(rng, (CLASSES, HIDDEN), HIDDEN), np.zeros(CLASSES)
    weights = ParamDict(w1=w1, b1=b1, g1=g1, s1=s1, w2=w2, b2=b2, g2=g2, s2=s2, w3=w3, b3=b3)

    def forward(x: np.ndarray, key: np.ndarray | None = None) -> np.ndarray:
        """Logits; ``key`` turns dropout on (training), ``None`` off (evaluation)."""
        keys = random.split(key) if key is not None else (None, None)
        h = nn.relu(nn.layer_norm(nn.linear(x, w1, b1), g1, s1))
        h = nn.dropout(h, DROPOUT, keys[0], training=key is not None)
        h = nn.relu(nn.layer_norm(nn.linear(h, w2, b2), g2, s2))
        h = nn.dropout(h, DROPOUT, keys[1], training=key is not None)
        return nn.linear(h, w3, b3)

    return weights, forward


def run(seed: int = 0, quick: bool = False) -> DemoResult:
    rng = np.random.default_rng(seed)
    X_train, y_train = spirals(rng, 900)
    X_test, y_test = spirals(rng, 600)
    weights, forward = build(rng)

    def loss(x: np.ndarray, y: np.ndarray, key: np.ndarray) -> np.ndarray:
        return nn.cross_entropy(forward(x, key), y)

    key = random.key(seed)
    fd = check_weights(weights, loss, X_train[:8], y_train[:8], random.fold_in(key, "gradcheck"))
    steps = 30 if quick else STEPS
    opt = AdamW(cosine_decay(1e-2, steps), weight_decay=1e-4)
    loader = DataLoader(X_train, y_train, batch_size=64, key=key, drop_last=True)
    curve = []
    stream = (batch for _ in count() for batch in loader)
    for step, (xb, yb) in enumerate(islice(stream, steps)):
        value, grads = weights.grad(loss, xb, yb, random.fold_in(key, step))
        opt.step(weights, grads)
        curve.append(float(value))
    return DemoResult("ln_mlp", curve[0], curve[-1], accuracy(forward(X_test), y_test), fd,
                      losses=tuple(curve))
