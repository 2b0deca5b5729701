"""A GRU that reads a sequence of noisy numbers and tells whether their sum is positive.

The answer depends on every step equally, so the hidden state has to accumulate evidence
over the whole sequence rather than remember the last few inputs.
"""

from __future__ import annotations

import numpy as np

from pycograd.examples.recurrent import run_demo
from pycograd.examples.runner import DemoResult

LENGTH = 8


def make_data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(n, LENGTH, 1)`` standard normals, labelled 1 where they sum to more than 0."""
    x = rng.standard_normal((n, LENGTH, 1))
    return x, (x.sum(axis=(1, 2)) > 0).astype(np.int64)


def run(seed: int = 0, quick: bool = False) -> DemoResult:
    return run_demo("gru", make_data, seed, quick, steps=150, lr=1e-2)
