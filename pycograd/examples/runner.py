"""Run the bundled demos and report one line each; the exit code says whether all passed.

A demo is a module of this package, named in ``DEMOS``, whose ``run(seed, quick=False) ->
DemoResult`` trains a small model written in plain numpy with pycograd and checks the
gradient of its loss by finite differences. ``quick`` trains for a few steps only (the
tests use it: the loss must still fall and the check pass). Adding a demo means adding a
module and its name here.
"""

from __future__ import annotations

import argparse
import importlib
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pycograd.examples.datasets import INSTALL, MissingExtra
from pycograd.examples.gradcheck import FDResult

DEMOS: list[str] = ["logreg", "mlp", "ln_mlp", "transformer", "gru", "lstm", "cnn", "dp_mlp"]
TITLES: dict[str, str] = {
    "logreg": "logistic regression",
    "mlp": "MLP on 8x8 digits",
    "ln_mlp": "MLP with LayerNorm and Dropout",
    "transformer": "Transformer block (reversal)",
    "gru": "GRU (sign of a sum)",
    "lstm": "LSTM (adding problem)",
    "cnn": "CNN on 8x8 digits",
    "dp_mlp": "differentially private MLP",
}
WIDTH = max(map(len, TITLES.values())) + 2


def title(name: str) -> str:
    """The demo's name in words, padded to one column."""
    return f"{TITLES.get(name, name):<{WIDTH}}"


@dataclass(frozen=True)
class DemoResult:
    """What a demo reports: training progress, held-out accuracy and the gradient check.

    ``target``, when set, is the accuracy the demo must reach to pass; ``losses`` is the
    loss of every training step (for ``--plot``); ``note`` ends the line (e.g. the privacy
    a private demo spent)."""

    name: str
    loss_start: float
    loss_end: float
    accuracy: float
    fd: FDResult
    target: float | None = None
    losses: tuple[float, ...] = ()
    note: str = ""

    @property
    def ok(self) -> bool:
        reached = self.target is None or self.accuracy >= self.target
        return self.fd.ok and self.loss_end < self.loss_start and reached

    def line(self) -> str:
        verdict = "OK" if self.ok else "FAIL"
        target = f" (>= {self.target:.2f})" if self.target is not None else ""
        return (f"{title(self.name)}loss {self.loss_start:.3f} -> {self.loss_end:.3g}   "
                f"accuracy {self.accuracy:.3f}{target}   gradient check vs finite differences: "
                f"max abs err {self.fd.max_abs_err:.1e}, max rel err {self.fd.max_rel_err:.1e}"
                f"  {verdict}" + (f"   {self.note}" if self.note else ""))


def run_demo(module_name: str, seed: int = 0, quick: bool = False) -> DemoResult:
    """Import ``pycograd.examples.<module_name>`` and run it."""
    mod = importlib.import_module(f"pycograd.examples.{module_name}")
    return mod.run(seed, quick=quick)


def plot_losses(result: DemoResult, directory: Path) -> Path:
    """Save the demo's loss curve (log scale, with a running mean over the minibatch
    noise) as ``<directory>/<name>.png``."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    losses = np.asarray(result.losses)
    fig = Figure(figsize=(6, 3.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(losses, color="0.75", linewidth=0.8, label="step")
    k = max(1, len(losses) // 25)
    if k > 1:
        smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
        ax.plot(np.arange(k - 1, len(losses)), smooth, color="C0", label=f"mean of {k}")
    ax.set_yscale("log")
    ax.set(xlabel="step", ylabel="training loss",
           title=f"{result.name}: held-out accuracy {result.accuracy:.3f}")
    ax.legend()
    path = directory / f"{result.name}.png"
    fig.savefig(path, dpi=100)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m pycograd.examples``; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m pycograd.examples",
        description="Train each bundled demo and check its gradient by finite differences.")
    listing = ", ".join(f"{name} ({TITLES[name]})" for name in DEMOS)
    parser.add_argument("demos", nargs="*", help=f"demos to run (default: all): {listing}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="a few training steps per demo, no accuracy targets")
    parser.add_argument("--plot", metavar="DIR", type=Path,
                        help="save each demo's loss curve as DIR/<demo>.png (needs matplotlib)")
    args = parser.parse_args(argv)
    unknown = [d for d in args.demos if d not in DEMOS]
    if unknown:
        parser.error(f"unknown demo(s) {unknown}; choose from {DEMOS}")
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error(f"--plot needs matplotlib: {INSTALL} (or pip install matplotlib)")
        args.plot.mkdir(parents=True, exist_ok=True)
    failures = 0
    start = time.perf_counter()
    names = args.demos or DEMOS
    for name in names:
        t0 = time.perf_counter()
        try:
            result = run_demo(name, args.seed, quick=args.quick)
        except MissingExtra as e:
            print(f"{title(name)}ERROR: {e}")
            failures += 1
            continue
        except Exception:
            traceback.print_exc()
            print(f"{title(name)}ERROR (traceback above)")
            failures += 1
            continue
        print(f"{result.line()}   ({time.perf_counter() - t0:.2f} s)", flush=True)
        failures += not result.ok
        if args.plot is not None and result.losses:
            plot_losses(result, args.plot)
    verdict = f"{failures} failed" if failures else "all OK"
    print(f"{len(names)} demos, {verdict}, {time.perf_counter() - start:.1f} s")
    return 1 if failures else 0
