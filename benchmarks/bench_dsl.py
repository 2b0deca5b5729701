"""One training step of a small MLP written in the DSL (a ``params{}`` block and ``|>``
pipelines) against the same step in plain Python (``value_and_grad`` of a dict of arrays).

All run in an IPython ``InteractiveShell`` with ``%load_ext pycograd``, interleaved, and the
medians are compared. The plain step is timed twice: compiled as plain Python (``plain``,
the baseline), and written in the DSL cell (``in-cell``), where pyccolo instruments it like
any DSL code (its calls of ``relu``, ``cross_entropy`` ... are routed). Target (issue 17):
DSL <= 1.2x plain Python.

    python benchmarks/bench_dsl.py [--steps N] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats

SETUP = """
import numpy as np
from pycograd import relu, cross_entropy, value_and_grad
rng = np.random.default_rng(42)
centers = np.array([[0.0, 2.5], [-2.5, -1.5], [2.5, -1.5]])
labels = rng.integers(0, 3, 150)
X = centers[labels] + rng.standard_normal((150, 2))
Y = np.eye(3)[labels]
"""

MODEL = """
import time
with params{
w1 = 0.3 * rng.standard_normal((2, 16)); b1 = np.zeros(16)
w2 = 0.3 * rng.standard_normal((16, 3)); b2 = np.zeros(3)
} as weights:
    logits = $ |> $ @ w1 + b1 |> relu |> $ @ w2 + b2
    obj = |> X |> logits |> cross_entropy($, Y)
p = {k: np.array(v) for k, v in weights.items()}
def plain_loss(p):
    return cross_entropy(relu(X @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"], Y)
plain_vg = value_and_grad(plain_loss)
def dsl_step():
    value, grads = weights.grad(obj)
    weights.step(grads, 0.1)
    return float(value)
def plain_step():
    value, (grads,) = plain_vg(p)
    for k in p:
        p[k] -= 0.1 * grads[k]
    return float(value)
exec(compile('''
def raw_loss(p):
    return cross_entropy(relu(X @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"], Y)
raw_vg = value_and_grad(raw_loss)
raw_p = {k: np.array(v) for k, v in weights.items()}
def raw_step():
    value, (grads,) = raw_vg(raw_p)
    for k in raw_p:
        raw_p[k] -= 0.1 * grads[k]
    return float(value)
''', "plain", "exec"))
losses = [(dsl_step(), plain_step(), raw_step()) for _ in range(20)]
"""

TIMING = """
times = {"dsl": [], "plain": [], "in-cell": []}
for _ in range(%d):
    for name, f in (("dsl", dsl_step), ("plain", raw_step), ("in-cell", plain_step)):
        t0 = time.perf_counter()
        f()
        times[name].append(time.perf_counter() - t0)
ms = {name: 1e3 * sorted(t)[len(t) // 2] for name, t in times.items()}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--profile", action="store_true", help="cProfile the DSL step")
    parser.add_argument("--sort", default="tottime", help="pstats sort key for --profile")
    parser.add_argument("--top", type=int, default=25, help="rows of the profile")
    args = parser.parse_args()

    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    for cell in ("%load_ext pycograd", SETUP, MODEL, TIMING % args.steps):
        r = shell.run_cell(cell)
        if not r.success:
            raise SystemExit(f"cell failed: {r.error_before_exec or r.error_in_exec!r}")
    ns = shell.user_ns
    for dsl, *plain in ns["losses"]:
        assert all(abs(dsl - p) <= 1e-12 * abs(p) for p in plain), (dsl, plain)
    ms = ns["ms"]
    print(f"DSL step {ms['dsl']:.3f} ms, plain Python step {ms['plain']:.3f} ms, "
          f"ratio x{ms['dsl'] / ms['plain']:.2f} (target <= 1.2); the plain step written "
          f"in the DSL cell {ms['in-cell']:.3f} ms, DSL x{ms['dsl'] / ms['in-cell']:.2f} that")
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(args.steps):
            ns["dsl_step"]()
        prof.disable()
        pstats.Stats(prof).sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
