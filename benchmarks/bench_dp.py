"""A DP-SGD gradient (per-example clipping + noise) of the digits MLP, batch 256: ghost
clipping against ``vmap(grad)`` + clip, both against a plain (non-private) gradient step.

The MLP is the example's 64-64-10 ReLU net (``pycograd.examples.mlp``) in float64. Peak
memory is what numpy allocates during one step (tracemalloc), time the median step.
Targets: ghost clipping <= 1.2x the plain step's memory and <= 1.5x its time, where
``vmap(grad)`` holds B copies of the gradients.

    python benchmarks/bench_dp.py [--repeats N]
"""

from __future__ import annotations

import argparse
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
from harness import compare, report, verdict

import pycograd as pg
from pycograd import nn
from pycograd.examples.datasets import load_digits_split
from pycograd.examples.mlp import build

BATCH = 256
CLIP, SIGMA = 1.0, 1.1


def make_problem() -> tuple:
    X, _, y, _ = load_digits_split()
    weights, _ = build(np.random.default_rng(0))
    return dict(weights.trainable()), X[:BATCH], y[:BATCH]


def per_example(w: dict, x: np.ndarray, y: np.ndarray) -> Any:
    h = nn.relu(nn.linear(x, w["w1"], w["b1"]))
    return nn.cross_entropy(nn.linear(h, w["w2"], w["b2"]), y, reduction="none")


def vmap_step(w: dict, x: np.ndarray, y: np.ndarray, sigma: float = SIGMA) -> dict:
    """Per-example gradients by vmap(grad), clipped, summed and noised by hand."""
    def one(w: dict, x: np.ndarray, y: np.ndarray) -> Any:
        return per_example(w, x[None], y[None])[0]

    pe = pg.vmap(pg.grad(one, argnums=0), in_axes=(None, 0, 0))(w, x, y)
    norms = np.sqrt(sum(np.sum(g.reshape(len(x), -1) ** 2, axis=1) for g in pe.values()))
    scale = CLIP / np.maximum(norms, CLIP)
    rng = np.random.default_rng(0)
    return {k: (np.tensordot(scale, g, axes=1) + sigma * CLIP * rng.standard_normal(
        g.shape[1:])) / len(x) for k, g in pe.items()}


def peak_bytes(fn: Callable[[], Any]) -> int:
    fn()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=200)
    args = ap.parse_args(argv)

    w, x, y = make_problem()
    plain = pg.value_and_grad(lambda w, x, y: np.mean(per_example(w, x, y)), argnums=0)
    dp = pg.DPSGD(0.1, clip_norm=CLIP, noise_multiplier=0.0)
    exact = dp.grad(per_example, w, x, y)[1]
    by_vmap = vmap_step(w, x, y, sigma=0.0)
    for k in exact:  # the same clipped gradient both ways
        np.testing.assert_allclose(exact[k], by_vmap[k], rtol=1e-8, atol=1e-12)
    dp = pg.DPSGD(0.1, clip_norm=CLIP, noise_multiplier=SIGMA)

    contenders = {
        "plain step": lambda: plain(w, x, y),
        "DP ghost clipping": lambda: dp.grad(per_example, w, x, y),
        "DP vmap(grad)+clip": lambda: vmap_step(w, x, y),
    }
    medians = compare(contenders, args.repeats)
    report(f"digits MLP 64-64-10, batch {BATCH}, float64: one gradient (median)", medians,
           "plain step", [])
    verdict(medians, "DP ghost clipping", "plain step", 1.5)
    mem = {k: peak_bytes(fn) for k, fn in contenders.items()}
    print("peak memory (tracemalloc) per step")
    base = mem["plain step"]
    for k, m in mem.items():
        print(f"  {k:<24} {m / 1024:10.1f} KiB   {m / base:6.2f}x plain step")
    ratio = mem["DP ghost clipping"] / base
    print(f"  DP ghost clipping / plain step = {ratio:.2f}x  (target <= 1.2x: "
          f"{'met' if ratio <= 1.2 else 'MISSED'})")


if __name__ == "__main__":
    main()
