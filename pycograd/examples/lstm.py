"""An LSTM on the adding problem (Hochreiter & Schmidhuber, 1997), as classification.

Each step carries a random value and a marker bit; exactly two steps are marked, and the
label says whether their two values add up to more than 1. The LSTM must pick out and
hold the marked values while ignoring the rest, the task its gated cell was built for.
"""

from __future__ import annotations

import numpy as np

from pycograd.examples.recurrent import run_demo
from pycograd.examples.runner import DemoResult

LENGTH = 8


def make_data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(n, LENGTH, 2)`` (value, marker) pairs and the labels."""
    values = rng.uniform(0.0, 1.0, (n, LENGTH))
    marked = np.argsort(rng.random((n, LENGTH)), axis=1)[:, :2]
    markers = np.zeros((n, LENGTH))
    np.put_along_axis(markers, marked, 1.0, axis=1)
    labels = (np.sum(values * markers, axis=1) > 1.0).astype(np.int64)
    return np.stack([values, markers], axis=-1), labels


def run(seed: int = 0, quick: bool = False) -> DemoResult:
    return run_demo("lstm", make_data, seed, quick, steps=300, lr=1e-2)
