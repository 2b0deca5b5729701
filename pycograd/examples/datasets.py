"""The real data the demos train on: scikit-learn's bundled 8x8 digits (no download).

scikit-learn is an optional dependency (the ``examples`` extra), so its absence is turned
into one clear ``MissingExtra`` error naming the install command, which the runner prints
as the demo's result instead of a traceback.
"""

from __future__ import annotations

import numpy as np

INSTALL = "pip install 'pycograd[examples]'"
SPLIT_SEED = 0
TEST_FRACTION = 0.25


class MissingExtra(ImportError):
    """An optional package a demo needs is not installed."""


def load_digits_split(dtype: type = np.float64) -> tuple[np.ndarray, ...]:
    """``(X_train, X_test, y_train, y_test)``: the 1797 digits as ``(n, 64)`` pixels scaled
    to [0, 1] and integer labels, split 75/25, stratified, with a fixed seed (the same
    split whatever the demo's seed, so accuracies compare across runs)."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as e:
        raise MissingExtra(f"the digits demos need scikit-learn: {INSTALL} "
                           "(or pip install scikit-learn)") from e
    digits = load_digits()
    X = (digits.data / 16.0).astype(dtype)
    return tuple(train_test_split(X, digits.target, test_size=TEST_FRACTION,
                                  random_state=SPLIT_SEED, stratify=digits.target))
