"""Per-sample gradients: ``vmap(grad(loss))`` of logistic regression, N=256, d=64, float64.

Each example's gradient separately, in one vectorized pass: pycograd against the same
gradients written by hand in numpy (the floor: ``(sigmoid(X @ w) - y)[:, None] * X``) and
``torch.func.vmap(torch.func.grad(...))`` when torch is installed. Target: pycograd at most
2x the torch time.

    python benchmarks/bench_per_sample.py [--repeats N] [--profile]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np
from harness import compare, optional, profile, report, verdict

import pycograd

N, D = 256, 64


def loss(w: Any, b: Any, x: Any, y: Any) -> Any:
    """Binary cross-entropy of ONE example, as a user writes it."""
    z = x @ w + b
    return np.logaddexp(0.0, z) - y * z


def hand(w: np.ndarray, b: float, X: np.ndarray, Y: np.ndarray) -> tuple:
    r = 1.0 / (1.0 + np.exp(-(X @ w + b))) - Y
    return r[:, None] * X, r


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=300)
    ap.add_argument("--profile", action="store_true", help="cProfile the pycograd step")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((N, D)), rng.integers(0, 2, N).astype(float)
    w, b = rng.standard_normal(D) * 0.1, np.float64(0.0)
    per_sample = pycograd.vmap(pycograd.grad(loss, (0, 1)), in_axes=(None, None, 0, 0))
    gw, gb = per_sample(w, b, X, Y)
    hw, hb = hand(w, b, X, Y)
    np.testing.assert_allclose(gw, hw, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gb, hb, rtol=1e-10, atol=1e-12)

    contenders: dict[str, Callable] = {
        "numpy (by hand)": lambda: hand(w, b, X, Y),
        "pycograd vmap(grad)": lambda: per_sample(w, b, X, Y),
    }
    skipped = []
    torch = optional("torch")
    if torch is not None:
        torch.set_num_threads(1)
        from torch.func import grad as tgrad
        from torch.func import vmap as tvmap

        def tloss(w: Any, b: Any, x: Any, y: Any) -> Any:
            z = x @ w + b
            return torch.logaddexp(torch.zeros_like(z), z) - y * z

        tw, tb = torch.tensor(w), torch.tensor(b)
        tX, tY = torch.tensor(X), torch.tensor(Y)
        t_per_sample = tvmap(tgrad(tloss, argnums=(0, 1)), in_dims=(None, None, 0, 0))
        tgw, tgb = t_per_sample(tw, tb, tX, tY)
        np.testing.assert_allclose(tgw.numpy(), hw, rtol=1e-10, atol=1e-12)
        contenders["torch.func vmap(grad)"] = lambda: t_per_sample(tw, tb, tX, tY)
    else:
        skipped.append("torch.func vmap(grad)")

    if args.profile:
        profile(lambda: per_sample(w, b, X, Y), 200)

    medians = compare(contenders, args.repeats)
    report(f"per-sample gradients of logistic regression, N={N}, d={D}, float64", medians,
           "numpy (by hand)", skipped)
    if "torch.func vmap(grad)" in medians:
        verdict(medians, "pycograd vmap(grad)", "torch.func vmap(grad)", 2)

if __name__ == "__main__":
    main()
