"""Models the framework test files share: an MLP objective over ParamDict weights."""

from __future__ import annotations

import numpy as np

import pycograd as pg
from pycograd import nn

CALLS = {"forward": 0}


def mlp_weights(dtype=np.float64, seed: int = 0) -> pg.ParamDict:
    rng = np.random.default_rng(seed)
    return pg.ParamDict(
        W1=(rng.standard_normal((6, 16)) * 0.3).astype(dtype), b1=np.zeros(16, dtype),
        W2=(rng.standard_normal((16, 3)) * 0.3).astype(dtype),
        b2=pg.frozen[np.full(3, 0.1, dtype)])


def data(n: int = 32, dtype=np.float64, seed: int = 1) -> tuple:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 6)).astype(dtype), rng.integers(0, 3, n)


def forward(x):
    CALLS["forward"] += 1
    h = np.tanh(x @ W1 + b1)  # noqa: F821 (the weights, bound by bind_globals)
    return h @ W2 + b2  # noqa: F821


def objective(x, y):
    return nn.cross_entropy(forward(x), y)


def bound(weights: pg.ParamDict) -> pg.ParamDict:
    weights.bind_globals(globals())
    return weights


def check_backend_grads(backend: str, assert_close) -> None:
    """weights.grad(backend=) against the numpy tape: float64 to 1e-10, float32 with the
    framework's default closeness; the second call reuses the compiled step."""
    from pycograd.backends.training import _STEPS

    for dtype in (np.float64, np.float32):
        weights = bound(mlp_weights(dtype))
        x, y = data(dtype=dtype)
        v0, g0 = weights.grad(objective, x, y)
        v, g = weights.grad(objective, x, y, backend=backend, jit=True)
        assert set(g) == set(g0) and g["b2"] is None
        for k in ("W1", "b1", "W2"):
            assert isinstance(g[k], np.ndarray) and g[k].dtype == dtype, (k, type(g[k]))
        if dtype == np.float64:
            assert abs(v - v0) <= 1e-10 * abs(v0)
            for k in ("W1", "b1", "W2"):
                np.testing.assert_allclose(g[k], g0[k], rtol=1e-10, atol=1e-12)
        else:
            assert_close(np.asarray(v), np.asarray(v0))
            for k in ("W1", "b1", "W2"):
                assert_close(g[k], g0[k])
        calls = CALLS["forward"]
        steps = dict(_STEPS[weights])
        weights.grad(objective, x, y, backend=backend, jit=True)
        assert CALLS["forward"] == calls, "the second call re-ran the objective"
        assert {k: len(v) for k, v in _STEPS[weights].items()} == \
            {k: len(v) for k, v in steps.items()}


def check_train(backend: str) -> None:
    """train(backend=) follows the numpy tape's trajectory."""
    runs = []
    for be in (None, backend):
        weights = bound(mlp_weights())
        x, y = data()
        first, last = pg.train(weights, objective, 15, pg.Adam(0.05), x, y, progress=False,
                               backend=be)
        runs.append((first, last, weights["W1"].copy()))
    (f0, l0, w0), (f1, l1, w1) = runs
    assert l1 < f1
    np.testing.assert_allclose([f1, l1], [f0, l0], rtol=1e-9)
    np.testing.assert_allclose(w1, w0, rtol=1e-8, atol=1e-10)
