"""Shared timing and reporting for the benchmark scripts.

Contenders are timed round-robin (one sample of each in turn), so a burst of load on a
shared machine hits all of them alike; each reports the median over many samples.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
import time
from collections.abc import Callable
from importlib import metadata
from statistics import median
from typing import Any

import numpy as np


def optional(module: str) -> Any:
    """``import module``, or ``None`` when it is not installed (its column is skipped)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def environment() -> str:
    """One line naming everything that moves the numbers."""
    blas = "?"
    try:
        cfg = np.show_config(mode="dicts")
        b = cfg["Build Dependencies"]["blas"]
        blas = f"{b['name']} {b.get('version', '')}".strip()
    except Exception:
        pass
    env = " ".join(f"{k}={os.environ[k]}" for k in
                   ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                    "MKL_NUM_THREADS") if k in os.environ)
    versions = [f"numpy {np.__version__}"]
    for name in ("torch", "autograd", "jax"):
        if name in sys.modules:
            versions.append(f"{name} {metadata.version(name)}")
    torch = sys.modules.get("torch")
    threads = f" torch-threads={torch.get_num_threads()}" if torch is not None else ""
    return (f"python {platform.python_version()} | {', '.join(versions)} | BLAS {blas} | "
            f"{platform.machine()} {os.cpu_count()} cpus{threads} | {env or 'no BLAS env vars'}")


def calibrate(fn: Callable[[], Any], target_s: float = 2e-3) -> int:
    """Calls per sample so that one sample takes about ``target_s``."""
    fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    return max(1, int(target_s / once))


def compare(contenders: dict[str, Callable[[], Any]], repeats: int,
            budget_s: float = 3.0) -> dict[str, float]:
    """Median seconds per call of each contender, sampled round-robin.

    A contender stops being sampled once it has used ``budget_s`` and has at least a
    tenth of ``repeats`` samples, so one very slow entry does not stall the run.
    """
    numbers = {k: calibrate(f) for k, f in contenders.items()}
    samples: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(repeats):
        for k, f in contenders.items():
            n, done = numbers[k], samples[k]
            if len(done) >= max(5, repeats // 10) and sum(done) * n > budget_s:
                continue
            t0 = time.perf_counter()
            for _ in range(n):
                f()
            samples[k].append((time.perf_counter() - t0) / n)
    return {k: median(v) for k, v in samples.items()}


def report(title: str, medians: dict[str, float], floor: str, skipped: list[str]) -> None:
    """Print medians and each contender's ratio to ``floor`` (hand-written numpy)."""
    print(title)
    print(f"  env: {environment()}")
    base = medians[floor]
    for k, t in medians.items():
        print(f"  {k:<24} {t * 1e6:10.1f} us   {t / base:6.2f}x {floor}")
    for k in skipped:
        print(f"  {k:<24} skipped (not installed)")


def verdict(medians: dict[str, float], name: str, against: str, target: float) -> None:
    """Print ``name``'s ratio to ``against`` and whether it meets ``target``."""
    ratio = medians[name] / medians[against]
    print(f"  {name} / {against} = {ratio:.2f}x  (target <= {target:g}x: "
          f"{'met' if ratio <= target else 'MISSED'})")


def profile(fn: Callable[[], Any], calls: int, rows: int = 15) -> None:
    """cProfile ``calls`` calls of ``fn`` and print the top rows by own time."""
    import cProfile
    import pstats

    pr = cProfile.Profile()
    pr.enable()
    for _ in range(calls):
        fn()
    pr.disable()
    pstats.Stats(pr).sort_stats("tottime").print_stats(rows)
