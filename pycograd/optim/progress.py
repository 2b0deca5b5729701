"""What ``train`` reports while it runs: a progress bar with the epoch, the loss and an
optional validation metric, as Keras and Lightning show them.

The bar comes from tqdm. In Jupyter, tqdm's auto mode wants ipywidgets for its widget bar
and, when ipywidgets is missing, warns "IProgress not found" before it falls back to the
plain bar. A first ``train()`` should not greet a newcomer with a warning, so the choice is
made here: the widget bar when a notebook kernel has ipywidgets, the plain bar otherwise,
and no warning either way.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from collections.abc import Callable, Mapping
from typing import Any

from pycograd.core.errors import ArgumentError, ArgumentTypeError, MissingDependencyError

Metric = Callable[[], "float | Mapping[str, float]"]


def in_notebook() -> bool:
    """True in a Jupyter kernel (notebook, lab, VS Code, Colab), False in a terminal."""
    zmqshell = sys.modules.get("ipykernel.zmqshell")
    ipython = sys.modules.get("IPython")
    if zmqshell is None or ipython is None:
        return False
    return isinstance(ipython.get_ipython(), zmqshell.ZMQInteractiveShell)


def bar_class() -> type:
    """tqdm's widget bar in a notebook with ipywidgets installed, its plain bar otherwise.

    Deciding before importing ``tqdm.notebook`` (whose bars raise without ipywidgets) and
    never importing ``tqdm.auto`` (which warns) keeps the choice silent."""
    if in_notebook() and importlib.util.find_spec("ipywidgets") is not None:
        from tqdm import notebook

        if notebook.IProgress is not None:
            return notebook.tqdm
    from tqdm import std

    return std.tqdm


def open_bar(progress: bool | None, total: int) -> Any:
    """A tqdm bar, or None. ``None`` means: on in a terminal or a notebook, if tqdm is
    installed; ``True`` insists (and says how to get tqdm)."""
    if progress is False:
        return None
    auto = progress is None
    if auto and not (in_notebook() or getattr(sys.stdout, "isatty", lambda: False)()):
        return None
    try:
        tqdm = bar_class()
    except ImportError:
        if auto:
            return None
        raise MissingDependencyError("train(progress=True) needs tqdm: pip install tqdm") from None
    return tqdm(total=total, unit="step", leave=True)


def read_metrics(val: Metric) -> dict[str, float]:
    """Call ``val()``; a number is reported as ``val``, a mapping under its own names."""
    result = val()
    items = result.items() if isinstance(result, Mapping) else [("val", result)]
    metrics = {}
    for name, value in items:
        try:
            metrics[str(name)] = float(value)
        except (TypeError, ValueError):
            raise ArgumentTypeError(
                f"train(val=...): the validation function must return a number or a dict of "
                f"numbers, got {type(value).__name__} for {name!r}") from None
    return metrics


class Reporter:
    """Tracks epochs and validation for one ``train`` run and draws them on the bar.

    An epoch is one pass over the data: ``steps_per_epoch`` minibatches, or a single step
    when every step sees all the data. ``val`` runs every ``val_every`` steps (default:
    once per epoch with minibatches, else every twentieth of the run) and after the last
    step, on the weights as the optimizer left them."""

    def __init__(self, steps: int, steps_per_epoch: int, progress: bool | None,
                 val: Metric | None = None, val_every: int | None = None) -> None:
        if val is not None and not callable(val):
            raise ArgumentTypeError("train(val=...) takes a function of no arguments that returns "
                                    f"a number or a dict of numbers, got {type(val).__name__}")
        if val_every is not None and (not isinstance(val_every, int) or val_every < 1):
            raise ArgumentError(f"train: val_every must be a positive int, got {val_every!r}")
        self.steps, self.steps_per_epoch = steps, max(1, steps_per_epoch)
        self.epochs = math.ceil(steps / self.steps_per_epoch)
        default_every = self.steps_per_epoch if self.steps_per_epoch > 1 else max(1, steps // 20)
        self.val, self.val_every = val, val_every or default_every
        self.metrics: dict[str, float] = {}
        self.evaluated_at = -1
        self.loss = float("nan")
        self.bar = open_bar(progress, steps)
        if self.bar is not None:
            self.bar.set_description(self.epoch_label(0), refresh=False)

    def epoch_label(self, step: int) -> str:
        return f"epoch {step // self.steps_per_epoch + 1}/{self.epochs}"

    def validate(self, step: int) -> None:
        if self.val is not None and self.evaluated_at != step:
            self.metrics = read_metrics(self.val)
            self.evaluated_at = step

    def step(self, step: int, loss: float) -> None:
        """Report finished step ``step`` (0-based), whose loss was ``loss``."""
        if (step + 1) % self.val_every == 0 or step == self.steps - 1:
            self.validate(step)
        self.loss = loss
        if self.bar is not None:
            self.bar.set_description(self.epoch_label(step), refresh=False)
            self.draw(refresh=False)
            self.bar.update(1)

    def draw(self, refresh: bool) -> None:
        shown = {name: f"{value:.4g}" for name, value in self.metrics.items()}
        self.bar.set_postfix(loss=f"{self.loss:.4g}", **shown, refresh=refresh)

    def finish(self, step: int) -> None:
        """The run ended after step ``step`` (early, if a callback stopped it)."""
        if step >= 0 and self.val is not None and self.evaluated_at != step:
            self.validate(step)
            if self.bar is not None:
                self.draw(refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


__all__ = ["Metric", "Reporter", "bar_class", "in_notebook", "open_bar", "read_metrics"]
