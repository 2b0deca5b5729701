"""``train``: the loop the seed shows, ``first, last = train(weights, obj, 200, Adam(...))``.

Each step asks ``weights.grad(objective, *batch)`` for ``(loss, grads)`` and hands the
gradients to ``optimizer.step(weights, grads)``, so anything with that ``grad`` method and
the optimizer container protocol (``trainable()`` / ``assign()``) can be trained.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pycograd import random as prandom
from pycograd.core.errors import ArgumentError
from pycograd.distributed.training import check_accumulate
from pycograd.distributed.training import hook as parallel_hook
from pycograd.optim.data import DataLoader, num_batches
from pycograd.optim.optimizers import SGD
from pycograd.optim.progress import Metric, Reporter

Callback = Callable[[int, float], Any]


def _stream(data: Sequence[Any], batch_size: int | None, key: Any) -> Iterator[tuple]:
    if batch_size is None:
        while True:
            yield tuple(data)
    n = len(data[0])
    loader = DataLoader(*data, batch_size=batch_size, key=prandom.key(0) if key is None else key,
                        drop_last=n >= batch_size)
    while True:
        yield from loader


def _steps_per_epoch(data: Sequence[Any], batch_size: int | None) -> int:
    """Minibatches in one pass over ``data`` (as ``_stream`` cuts them); 1 without batching."""
    if batch_size is None:
        return 1
    n = len(data[0])
    return num_batches(n, batch_size, drop_last=n >= batch_size)


def train(weights: Any, objective: Callable, steps: int, optimizer_or_lr: Any, *data: Any,
          batch_size: int | None = None, callbacks: Sequence[Callback] | None = None,
          progress: bool | None = None, key: Any = None,
          val: Metric | None = None, val_every: int | None = None,
          jit: bool = False, data_parallel: bool = False,
          backend: str | None = None, accumulate: int = 1) -> tuple[float, float]:
    """Run ``steps`` optimizer steps of ``objective`` and return ``(first_loss, last_loss)``,
    the losses computed at the first and the last step (each before that step's update).

    ``optimizer_or_lr`` is an optimizer, or a float / schedule meaning ``SGD(lr)``. With
    ``batch_size`` the ``data`` arrays are cut into shuffled minibatches (epoch after epoch,
    shuffled with ``key``, default ``key(0)``; a final short batch is dropped), otherwise
    every step sees all of ``data``. Each callback is called as ``callback(step, loss)``
    after the update; one returning True stops training early. ``jit=True`` computes each
    step's value and gradients with ``weights.grad(..., jit=True)`` (one capture per batch
    signature, then a compiled program); ``backend="torch" | "jax" | "tf"`` computes them
    with ``weights.grad(..., backend=backend)``.

    The progress bar (``progress=None``: on in a terminal or a notebook) shows the epoch,
    the step, the loss and, with ``val``, a validation metric. ``val`` is a function of no
    arguments returning a number (shown as ``val``) or a dict of numbers (shown under their
    names), evaluated on the current weights every ``val_every`` steps (default: once per
    epoch with ``batch_size``, else every twentieth of the run) and after the last step.

    ``data_parallel=True`` (in a script launched by ``torchrun``, see
    ``pycograd.distributed``) starts every rank from rank 0's weights, gives each rank its
    slice of each batch and averages losses and gradients across ranks, so every rank
    takes the same steps as one process on the whole batch; only rank 0 shows progress
    and runs ``val``.

    ``accumulate=k`` makes each optimizer step average the loss and gradients of ``k``
    consecutive batches (gradient accumulation): a step then sees ``k * batch_size`` rows,
    the effective batch, with the memory of one batch, and ``steps`` still counts optimizer
    steps (``k`` batches each). Under ``data_parallel`` the ranks exchange gradients once
    per optimizer step, not once per batch.

    Examples:
        >>> import numpy as np
        >>> from pycograd import ParamDict, train
        >>> X, y = np.array([[1.0], [2.0], [3.0]]), np.array([2.0, 4.0, 6.0])
        >>> weights = ParamDict(w=np.zeros(1))
        >>> weights.bind_globals(globals())       # the objective reads ``w`` by bare name
        >>> objective = lambda: np.mean((X @ w - y) ** 2)
        >>> first, last = train(weights, objective, 50, 0.05, progress=False,
        ...                     val=lambda: {"w": weights["w"][0]})
        >>> bool(last < first), round(float(weights["w"][0]), 3)
        (True, 2.0)
    """
    if steps < 1:
        raise ArgumentError(f"train: steps must be positive, got {steps}")
    opt = optimizer_or_lr if callable(getattr(optimizer_or_lr, "step", None)) else SGD(
        optimizer_or_lr)
    accumulate = check_accumulate(accumulate)
    if batch_size is not None and not data:
        raise ArgumentError("train: batch_size needs data arrays to batch")
    stream = _stream(data, batch_size, key)
    dp = parallel_hook(data_parallel, weights, opt)
    report = Reporter(steps, _steps_per_epoch(data, batch_size) // accumulate,
                      progress if dp.is_main else False, val if dp.is_main else None, val_every)
    extra = {"jit": True} if jit else {}
    if backend is not None:
        extra["backend"] = backend
    first = last = float("nan")
    step = -1
    try:
        for step in range(steps):
            value, grads = dp.gradient(lambda *batch: weights.grad(objective, *batch, **extra),
                                       stream, accumulate)
            if dp.stopped:  # a callback asked to stop after the previous step
                step -= 1
                break
            last = float(value)
            if step == 0:
                first = last
            opt.step(weights, grads)
            report.step(step, last)
            stop = [cb(step, last) for cb in callbacks or ()]
            if callbacks and dp.stop(any(s is True for s in stop), step == steps - 1):
                break
        report.finish(step)
    finally:
        report.close()
    return first, last
