"""plan_remat / eval_scheduled: the time a memory budget costs, against plain graph replay.

The value+grad graph (``grad_graph``) of the 8-layer ``tanh(h @ w + 0.1)`` MLP, batch 4096,
width 256, float64 (one activation is 8 MiB), gradient with respect to the weights. For
budgets of 1.0x, 0.5x and 0.4x the plain peak: the plan's decisions, the peak measured by
tracemalloc while ``eval_scheduled`` runs, and its median time against replaying the graph
with every activation kept until its last use (the 1.0x plan, which keeps all: the
scheduler's own replay, freeing as it goes). Target: <= 1.3x plain replay at 0.5x the
budget (issue 12). Spilling is priced at the rate ``machine_rates`` measures through the
very spill store ``eval_scheduled`` writes to (a file, positioned writes and
``readinto``), recomputation at the measured flop rate and, for elementwise nodes, memory
bandwidth, so the plan (spills, or segments recomputed from spilled checkpoints), and the
time, depend on the machine. Also printed: the least budget recomputation alone reaches.

``graph(*args)`` is shown too, and is several times slower than plain replay, for memory,
not arithmetic: it runs the same nodes, but its environment keeps every value until it
returns (548 MiB here against plain replay's 88 MiB peak), and fresh memory is expensive
where first touching a page costs a fault. On the Firecracker VM these numbers were taken
on, the guest returns freed memory to the host (virtio-balloon free page reporting), and
touching such memory again measured ~6 ms per MiB against ~0.1 ms when it is reused: 512
MiB of fresh ``np.ones`` took 3.3 s, then 60 ms. Called back to back, so that its memory
is reused, ``graph(*args)`` measured 1.15x plain replay (355 ms against 310); called after
5 s idle, 3.5-6.4 s. Every contender pays this for the memory it touches, which is also
why all the timings here swing between runs; compare the ratios within one run.

    python benchmarks/bench_remat.py [--repeats N] [--layers L]
"""

from __future__ import annotations

import argparse
import tracemalloc
from typing import Any

import numpy as np
from harness import compare, environment, verdict

from pycograd.graph import capture, grad_graph
from pycograd.graph.remat import RematInfeasibleError, eval_scheduled, plan_remat

BATCH, WIDTH = 4096, 256


def mlp_graph(layers: int) -> tuple[Any, tuple]:
    rng = np.random.default_rng(0)
    ws = [rng.normal(size=(WIDTH, WIDTH)) / 16 for _ in range(layers)]
    x = rng.normal(size=(BATCH, WIDTH))

    def f(x: Any, ws: list) -> Any:
        h = x
        for w in ws:
            h = np.tanh(h @ w + 0.1)
        return np.sum(h * h)

    return grad_graph(capture(f, x, ws), argnums=1), (x, ws)


def peak_mib(fn: Any) -> float:
    fn()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        fn()
        return (tracemalloc.get_traced_memory()[1] - base) / 2**20
    finally:
        tracemalloc.stop()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--layers", type=int, default=8)
    args = ap.parse_args(argv)
    graph, inputs = mlp_graph(args.layers)
    plain = plan_remat(graph, 10 ** 12).plain_peak
    print(f"remat: {args.layers}-layer tanh MLP, batch {BATCH}, width {WIDTH}, float64, "
          f"value+grad graph of {len(graph.nodes)} nodes; plain peak (model) "
          f"{plain / 2**20:.1f} MiB")
    print(f"  env: {environment()}")
    contenders = {"graph(*args)": lambda: graph(*inputs)}
    for frac in (1.0, 0.5, 0.4):
        plan = plan_remat(graph, int(frac * plain))
        run = (lambda plan=plan: eval_scheduled(plan, *inputs))
        name = "plain replay" if frac == 1.0 else f"budget {frac}x"
        contenders[name] = run
        print(f"  {name} ({frac}x): {plan.method} {plan.counts()}, measured peak "
              f"{peak_mib(run):.1f} MiB of {plan.budget / 2**20:.1f}")
    try:
        plan_remat(graph, 0, spill=False)
    except RematInfeasibleError as e:  # what multi-level recomputation alone can reach
        print(f"  recompute only (no spill): least budget {e.smallest / 2**20:.1f} MiB "
              f"({e.smallest / plain:.2f}x)")
    print(f"  graph(*args): measured peak {peak_mib(contenders['graph(*args)']):.1f} MiB")
    medians = compare(contenders, args.repeats)
    for k, t in medians.items():
        print(f"  {k:<14} {t * 1e3:9.1f} ms   {t / medians['plain replay']:5.2f}x plain replay")
    verdict(medians, "budget 0.5x", "plain replay", 1.3)


if __name__ == "__main__":
    main()
