"""Run the bundled demos and report one line each; the exit code says whether all passed.

A demo is a module of this package, named in ``DEMOS``, whose ``run(seed) -> DemoResult``
trains a small model written in plain numpy with ``value_and_grad`` and checks the gradient
of its loss by finite differences. Adding a demo means adding a module and its name here.
"""

from __future__ import annotations

import argparse
import importlib
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass

from pycograd.examples.gradcheck import FDResult

DEMOS: list[str] = ["logreg"]


@dataclass(frozen=True)
class DemoResult:
    """What a demo reports: training progress and the gradient check."""

    name: str
    loss_start: float
    loss_end: float
    accuracy: float
    fd: FDResult

    @property
    def ok(self) -> bool:
        return self.fd.ok and self.loss_end < self.loss_start

    def line(self) -> str:
        verdict = "OK" if self.ok else "FAIL"
        return (f"{self.name:<8} loss {self.loss_start:.3f} -> {self.loss_end:.3g}   "
                f"acc {self.accuracy:.2f}   fd-check max abs err {self.fd.max_abs_err:.1e} "
                f"max rel err {self.fd.max_rel_err:.1e}  {verdict}")


def run_demo(module_name: str, seed: int = 0) -> DemoResult:
    """Import ``pycograd.examples.<module_name>`` and run it."""
    mod = importlib.import_module(f"pycograd.examples.{module_name}")
    return mod.run(seed)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m pycograd.examples``; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m pycograd.examples",
        description="Train each bundled demo and check its gradient by finite differences.")
    parser.add_argument("demos", nargs="*", help=f"demos to run (default: all of {DEMOS})")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    unknown = [d for d in args.demos if d not in DEMOS]
    if unknown:
        parser.error(f"unknown demo(s) {unknown}; choose from {DEMOS}")
    failures = 0
    for name in args.demos or DEMOS:
        t0 = time.perf_counter()
        try:
            result = run_demo(name, args.seed)
        except Exception:
            traceback.print_exc()
            print(f"{name:<8} ERROR (traceback above)")
            failures += 1
            continue
        print(f"{result.line()}   ({time.perf_counter() - t0:.2f} s)")
        failures += not result.ok
    return 1 if failures else 0
