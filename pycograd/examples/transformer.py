"""A single-head Transformer block that learns to reverse a sequence of tokens.

Reversal needs attention: the token for output position ``i`` sits at input position
``T-1-i``, so the block must learn, from the position embeddings alone, to attend there.
This demo uses the functional style: the parameters are a plain dict, ``value_and_grad``
differentiates ``loss(params, ...)``, and ``Adam.step`` returns the updated dict.
"""

from __future__ import annotations

from itertools import count, islice
from typing import Any

import numpy as np

from pycograd import nn, random, value_and_grad
from pycograd.examples.common import accuracy, check_gradient, glorot
from pycograd.examples.runner import DemoResult
from pycograd.optim import Adam, batches

VOCAB = 8
LENGTH = 8
DIM = 32
STEPS = 150


def init(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Embeddings, a pre-LayerNorm attention sublayer and MLP sublayer, and the head."""
    def lin(n_out: int, n_in: int) -> np.ndarray:
        return glorot(rng, (n_out, n_in), n_in)

    return {
        "tok": rng.standard_normal((VOCAB, DIM)) * 0.5,
        "pos": rng.standard_normal((LENGTH, DIM)) * 0.5,
        "ln1_g": np.ones(DIM), "ln1_b": np.zeros(DIM),
        "wq": lin(DIM, DIM), "wk": lin(DIM, DIM), "wv": lin(DIM, DIM), "wo": lin(DIM, DIM),
        "ln2_g": np.ones(DIM), "ln2_b": np.zeros(DIM),
        "w1": lin(2 * DIM, DIM), "b1": np.zeros(2 * DIM),
        "w2": lin(DIM, 2 * DIM), "b2": np.zeros(DIM),
        "head": lin(VOCAB, DIM), "head_b": np.zeros(VOCAB),
    }


def forward(p: dict[str, Any], tokens: np.ndarray) -> Any:
    """``(batch, LENGTH)`` tokens -> ``(batch, LENGTH, VOCAB)`` logits."""
    h = nn.embedding(tokens, p["tok"]) + p["pos"]
    a = nn.layer_norm(h, p["ln1_g"], p["ln1_b"])
    att = nn.scaled_dot_product_attention(nn.linear(a, p["wq"]), nn.linear(a, p["wk"]),
                                          nn.linear(a, p["wv"]))
    h = h + nn.linear(att, p["wo"])
    a = nn.layer_norm(h, p["ln2_g"], p["ln2_b"])
    h = h + nn.linear(nn.relu(nn.linear(a, p["w1"], p["b1"])), p["w2"], p["b2"])
    return nn.linear(h, p["head"], p["head_b"])


def loss(p: dict[str, Any], tokens: np.ndarray, targets: np.ndarray) -> Any:
    """Mean cross-entropy over every position of every sequence."""
    return nn.cross_entropy(forward(p, tokens), targets)


def make_data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    tokens = rng.integers(0, VOCAB, (n, LENGTH))
    return tokens, tokens[:, ::-1].copy()


def run(seed: int = 0, quick: bool = False) -> DemoResult:
    rng = np.random.default_rng(seed)
    X_train, y_train = make_data(rng, 2048)
    X_test, y_test = make_data(rng, 512)
    params = init(rng)
    vg = value_and_grad(loss, argnums=0)
    _, grads = vg(params, X_train[:4], y_train[:4])
    fd = check_gradient(lambda p: loss(p, X_train[:4], y_train[:4]), params, grads)
    opt = Adam(3e-3)
    steps = 20 if quick else STEPS
    curve: list[float] = []
    stream = (batch for epoch in count() for batch in batches(
        X_train, y_train, batch_size=64, key=random.fold_in(random.key(seed), epoch)))
    for xb, yb in islice(stream, steps):
        value, grads = vg(params, xb, yb)
        params = opt.step(params, grads)
        curve.append(float(value))
    return DemoResult("transformer", curve[0], curve[-1],
                      accuracy(forward(params, X_test), y_test), fd, losses=tuple(curve))
