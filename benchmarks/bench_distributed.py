"""Data-parallel throughput of the digits MLP: samples/s at 1 and 2 processes, one thread each.

The model is the demo's (``pycograd.examples.mlp``: 64-64-10 ReLU MLP, softmax cross-entropy,
Adam) on the 1347 training digits, in float32, trained by ``train(...,
data_parallel=True)``. Each process count runs under ``torchrun --standalone`` on
127.0.0.1 with ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` / ``MKL_NUM_THREADS`` = 1 and
torch at one thread. Weak scaling (the default) keeps ``--batch`` rows per rank, so the
global batch grows with the ranks, as data parallelism is used; ``--scaling strong`` keeps
the global batch at ``--batch``. ``--accumulate K`` averages K such batches per optimizer
step in every configuration (the one-process rows too), so each process does the same
work per step everywhere and the ranks exchange gradients once per K batches; the
effective batch of a step is then K x the global batch. The values given (by default 1, 8,
32 and 64) run one after the other, each for ``--steps / K`` steps (at least 40), and end
in a summary: the speedup by the rows each rank computes between two exchanges, which is
what decides it (an exchange costs about the same whatever the rows). The row "1 (no data
parallel)" is plain ``train`` in one process, the baseline of the speedup: the distance to
it is the cost of the collectives. The row "2 plain, no exchange" runs two such plain
processes at once and adds their samples/s: the most two processes get from this machine
with no communication at all (its cores, caches and memory shared), the ceiling of the
speedup. Goal: >= 1.6x samples/s at 2 processes (the summary says at which rows per
exchange it is met). Needs torch and scikit-learn.

Each 2-process run ends with a probe of the collective itself: a forward pass, then
``all_gather_into_tensor`` of one float, 400 times; its median, mean and the share of calls
over 1 ms are printed. Where that mean is comparable to a step's compute (as on a small VM,
where gloo's worker and transport threads wait for a busy vCPU), no packing or overlap of
gradients can reach the goal at a small batch: the exchange is latency, not bytes.

The configurations run in turn for ``--rounds`` rounds, so a burst of load from other
work on a shared machine hits all of them alike; each reports the median samples/s over
its rounds and the best round (the least disturbed), and each round's 2-process / 1-process
ratio is printed with the CPU the rest of the machine used meanwhile ("others": busy CPU
seconds per second from ``/proc/stat`` minus this benchmark's own), since two processes
cannot run at once on a 2-core machine where something else holds a core.

    python benchmarks/bench_distributed.py [--steps 200] [--repeats 5] [--rounds 3]
                                           [--batch 64] [--accumulate 1 8 32 64] [--pin]
                                           [--scaling weak|strong] [--nprocs 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
GOAL = 1.6


def worker(args: argparse.Namespace) -> None:
    """One rank: warm up, then time ``--repeats`` runs of ``--steps`` steps; rank 0 prints
    the median samples/s as one ``RESULT {json}`` line."""
    if args.pin:  # this process (and the threads it starts) on one core of its own
        slot = int(os.environ.get("LOCAL_RANK", os.environ.get("BENCH_SLOT", "0")))
        os.sched_setaffinity(0, {slot % os.cpu_count()})
    import torch

    from pycograd import distributed, nn
    from pycograd.examples import mlp
    from pycograd.examples.datasets import load_digits_split
    from pycograd.optim import Adam, train

    torch.set_num_threads(1)
    parallel = args.nprocs_now > 0
    world = distributed.init().world_size if parallel else 1
    X, _, y, _ = load_digits_split(np.float32)
    weights, forward = mlp.build(np.random.default_rng(0), np.float32)

    def loss(x: np.ndarray, t: np.ndarray) -> np.ndarray:
        return nn.cross_entropy(forward(x), t)

    batch = args.batch * world if args.scaling == "weak" else args.batch
    opt = Adam(mlp.LR)

    def run(steps: int) -> None:
        train(weights, loss, steps, opt, X, y, batch_size=batch, progress=False,
              data_parallel=parallel, accumulate=args.accumulate)

    run(20)
    times = []
    for _ in range(args.repeats):
        if parallel:
            distributed.barrier()
        t0 = time.perf_counter()
        run(args.steps)
        if parallel:
            distributed.barrier()
        times.append(time.perf_counter() - t0)
    probe = _probe_latency(weights, forward, X[:batch // world]) if parallel else {}
    if not parallel or distributed.rank() == 0:
        t = median(times)
        rows = batch * args.accumulate
        print("RESULT " + json.dumps({"world": world, "batch": rows, "step_ms": 1e3 * t /
                                      args.steps, "samples_s": args.steps * rows / t,
                                      **probe}), flush=True)
    if parallel:
        distributed.shutdown()


def _probe_latency(weights: Any, forward: Any, x: np.ndarray, calls: int = 400) -> dict:
    """What one exchange costs between steps, with nothing of pycograd's around it: each
    rank runs one forward pass (as a step would compute), then torch.distributed gathers a
    single float from every rank. Its median, mean and share over 1 ms, in microseconds:
    the cost of a collective that no gradient size or packing explains."""
    import torch
    import torch.distributed as dist

    one = torch.zeros(1)
    out = torch.zeros(dist.get_world_size())
    waits = []
    for i in range(calls + 50):
        forward(x)
        t0 = time.perf_counter()
        dist.all_gather_into_tensor(out, one)
        if i >= 50:
            waits.append(time.perf_counter() - t0)
    w = np.array(waits) * 1e6
    return {"probe_median_us": float(np.median(w)), "probe_mean_us": float(w.mean()),
            "probe_over_1ms": float((w > 1000).mean())}


def measure(args: argparse.Namespace, nprocs: int) -> dict:
    """Run the worker with ``nprocs`` ranks under torchrun (0: plain, no torchrun; -n: n
    plain processes at once, each on its own, whose samples/s add up: the ceiling this
    machine gives n processes that never exchange anything)."""
    script = [str(HERE / "bench_distributed.py"), "--worker", "--nprocs-now",
              str(max(nprocs, 0)), "--steps", str(args.steps), "--repeats", str(args.repeats),
              "--batch", str(args.batch), "--scaling", args.scaling,
              "--accumulate", str(args.accumulate)] + (["--pin"] if args.pin else [])
    if nprocs > 0:
        torchrun = Path(sys.executable).with_name("torchrun")
        cmd = [str(torchrun), "--standalone", f"--nproc_per_node={nprocs}", "--local-addr",
               "127.0.0.1", *script]
    else:
        cmd = [sys.executable, *script]
    env = dict(os.environ, **ONE_THREAD, PYTHONPATH=str(HERE.parent))
    busy0, ours0, t0 = _busy_cpu_s(), _children_cpu_s(), time.perf_counter()
    procs = [subprocess.Popen(cmd, env=dict(env, BENCH_SLOT=str(i)), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(max(1, -nprocs))]
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=1800)
        lines = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not lines:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stdout}\n"
                             f"{stderr[-4000:]}")
        results.append(json.loads(lines[-1][len("RESULT "):]))
    wall = time.perf_counter() - t0
    others = (_busy_cpu_s() - busy0 - (_children_cpu_s() - ours0)) / wall
    probe = {k: v for k, v in results[0].items() if k.startswith("probe_")}
    return {**probe, "world": sum(r["world"] for r in results),
            "batch": sum(r["batch"] for r in results),
            "step_ms": median(r["step_ms"] for r in results),
            "samples_s": sum(r["samples_s"] for r in results), "others": max(0.0, others)}


def _busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy (every process, every core); 0 where
    ``/proc/stat`` is missing."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0.0
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _children_cpu_s() -> float:
    """CPU seconds of this benchmark's finished child processes (and theirs)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200,
                    help="steps per run at accumulate 1 (at K: steps / K, at least 40)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64,
                    help="rows per rank (weak scaling) or in all (strong scaling)")
    ap.add_argument("--accumulate", type=int, nargs="+", default=[1, 8, 32, 64],
                    help="batches averaged per optimizer step (one exchange per step); "
                         "several values run one after the other, then a summary")
    ap.add_argument("--scaling", choices=("weak", "strong"), default="weak")
    ap.add_argument("--pin", action="store_true",
                    help="bind each process to a core of its own (local rank i: core i)")
    ap.add_argument("--nprocs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--nprocs-now", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        args.accumulate = args.accumulate[0]
        worker(args)
        return
    from harness import environment, optional

    if optional("torch") is None or optional("sklearn") is None:
        print("bench_distributed: skipped (needs torch and scikit-learn: "
              "pip install 'pycograd[torch,examples]')")
        return
    print("env:", environment(), "| children:", " ".join(f"{k}=1" for k in ONE_THREAD))
    summary = []
    for k in args.accumulate:
        one = argparse.Namespace(**{**vars(args), "accumulate": k,
                                    "steps": max(40, args.steps // k)})
        summary.append(run_configs(one))
    if len(summary) > 1 and all(row is not None for row in summary):
        print(f"summary: speedup of 2 processes against 1 by the rows each rank computes "
              f"per exchange ({'one core per process' if args.pin else 'unpinned'})")
        print(f"  {'rows/rank/step':>15}{'1-process ms/step':>19}{'speedup':>9}{'best':>7}"
              f"{'ceiling':>9}  goal >= {GOAL}x")
        for row in summary:
            print(f"  {row['rows']:>15}{row['ms']:>19.2f}{row['speedup']:>8.2f}x"
                  f"{row['best']:>6.2f}x{row['ceiling']:>8.2f}x  "
                  f"{'met' if row['speedup'] >= GOAL else 'missed'}")


def run_configs(args: argparse.Namespace) -> dict | None:
    """One accumulate value: every configuration for ``--rounds`` rounds, then its table;
    returns the 2-process row of the summary (``None`` without a 2-process run)."""
    pinned = "one core per process, " if args.pin else ""
    print(f"digits MLP 64-64-10, Adam, float32, {args.scaling} scaling, {pinned}batch {args.batch}"
          f"{' per rank' if args.scaling == 'weak' else ''}, accumulate {args.accumulate}, "
          f"{args.steps} steps x {args.repeats} (median); load average before "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus")
    configs = ([("1 (no data parallel)", 0)] + [(str(n), n) for n in args.nprocs] +
               [("2 plain, no exchange", -2)])
    runs: dict[int, list[dict]] = {n: [] for _, n in configs}
    for r in range(args.rounds):
        for _, n in configs:
            runs[n].append(measure(args, n))
        if 2 in runs:
            others = ", ".join(f"{runs[n][r]['others']:.2f}" for _, n in configs)
            print(f"  round {r + 1}: 2 processes / plain = "
                  f"{runs[2][r]['samples_s'] / runs[0][r]['samples_s']:.2f}x, ceiling "
                  f"{runs[-2][r]['samples_s'] / runs[0][r]['samples_s']:.2f}x (others used "
                  f"{others} cpus)", flush=True)
    print(f"  {'processes':<24}{'rows/step':>10}{'ms/step':>10}{'samples/s':>12}"
          f"{'best':>10}{'speedup':>9}{'best':>7}{'others':>8}")
    rate = {n: median(r["samples_s"] for r in rs) for n, rs in runs.items()}
    best = {n: max(r["samples_s"] for r in rs) for n, rs in runs.items()}
    for label, n in configs:
        ms = median(r["step_ms"] for r in runs[n])
        speed = (f"{rate[n] / rate[0]:.2f}x", f"{best[n] / best[0]:.2f}x") if n else ("", "")
        others = median(r["others"] for r in runs[n])
        print(f"  {label:<24}{runs[n][0]['batch']:>10}{ms:>10.2f}{rate[n]:>12.0f}"
              f"{best[n]:>10.0f}{speed[0]:>9}{speed[1]:>7}{others:>8.2f}")
    if 2 in rate:
        ratio = rate[2] / rate[0]
        print(f"  2 processes / 1 process (plain train) = {ratio:.2f}x median, "
              f"{best[2] / best[0]:.2f}x best (goal >= {GOAL}x: "
              f"{'met' if ratio >= GOAL else 'MISSED'}) over {args.rounds} rounds; "
              f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus")
        print(f"  the machine's ceiling (2 processes that never exchange) = "
              f"{rate[-2] / rate[0]:.2f}x median; data parallel reaches "
              f"{rate[2] / rate[-2]:.0%} of it")
        probes = runs[2]
        print(f"  one torch.distributed all_gather of a single float after a forward pass "
              f"(gloo, 2 ranks): median {median(r['probe_median_us'] for r in probes):.0f} us,"
              f" mean {median(r['probe_mean_us'] for r in probes):.0f} us, "
              f"{median(r['probe_over_1ms'] for r in probes):.0%} of calls over 1 ms; "
              f"the step's own compute: {median(r['step_ms'] for r in runs[0]):.2f} ms")
        return {"rows": runs[0][0]["batch"], "ms": median(r["step_ms"] for r in runs[0]),
                "speedup": ratio, "best": best[2] / best[0], "ceiling": rate[-2] / rate[0]}
    return None


if __name__ == "__main__":
    main()
