"""``train``: the loop the seed shows, ``first, last = train(weights, obj, 200, Adam(...))``.

Each step asks ``weights.grad(objective, *batch)`` for ``(loss, grads)`` and hands the
gradients to ``optimizer.step(weights, grads)``, so anything with that ``grad`` method and
the optimizer container protocol (``trainable()`` / ``assign()``) can be trained.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pycograd import random as prandom
from pycograd.optim.data import DataLoader
from pycograd.optim.optimizers import SGD

Callback = Callable[[int, float], Any]


def _in_notebook() -> bool:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def _progress_bar(progress: bool | None, total: int) -> Any:
    """A tqdm bar, or None. ``None`` means: on in a terminal or a notebook, if tqdm is
    installed; ``True`` insists (and says how to get tqdm)."""
    if progress is False:
        return None
    auto = progress is None
    if auto and not (_in_notebook() or getattr(sys.stdout, "isatty", lambda: False)()):
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if auto:
            return None
        raise ImportError("train(progress=True) needs tqdm: pip install tqdm") from None
    return tqdm(total=total, desc="train", unit="step", leave=True)


def _stream(data: Sequence[Any], batch_size: int | None, key: Any) -> Iterator[tuple]:
    if batch_size is None:
        while True:
            yield tuple(data)
    n = len(data[0])
    loader = DataLoader(*data, batch_size=batch_size, key=prandom.key(0) if key is None else key,
                        drop_last=n >= batch_size)
    while True:
        yield from loader


def train(weights: Any, objective: Callable, steps: int, optimizer_or_lr: Any, *data: Any,
          batch_size: int | None = None, callbacks: Sequence[Callback] | None = None,
          progress: bool | None = None, key: Any = None,
          jit: bool = False) -> tuple[float, float]:
    """Run ``steps`` optimizer steps of ``objective`` and return ``(first_loss, last_loss)``,
    the losses computed at the first and the last step (each before that step's update).

    ``optimizer_or_lr`` is an optimizer, or a float / schedule meaning ``SGD(lr)``. With
    ``batch_size`` the ``data`` arrays are cut into shuffled minibatches (epoch after epoch,
    shuffled with ``key``, default ``key(0)``; a final short batch is dropped), otherwise
    every step sees all of ``data``. Each callback is called as ``callback(step, loss)``
    after the update; one returning True stops training early. ``jit=True`` computes each
    step's value and gradients with ``weights.grad(..., jit=True)`` (one capture per batch
    signature, then a compiled program)."""
    if steps < 1:
        raise ValueError(f"train: steps must be positive, got {steps}")
    opt = optimizer_or_lr if callable(getattr(optimizer_or_lr, "step", None)) else SGD(
        optimizer_or_lr)
    if batch_size is not None and not data:
        raise ValueError("train: batch_size needs data arrays to batch")
    stream = _stream(data, batch_size, key)
    bar = _progress_bar(progress, steps)
    extra = {"jit": True} if jit else {}
    first = last = float("nan")
    try:
        for step in range(steps):
            value, grads = weights.grad(objective, *next(stream), **extra)
            last = float(value)
            if step == 0:
                first = last
            opt.step(weights, grads)
            if bar is not None:
                bar.set_postfix(loss=f"{last:.4g}", refresh=False)
                bar.update(1)
            stop = [cb(step, last) for cb in callbacks or ()]
            if any(s is True for s in stop):
                break
    finally:
        if bar is not None:
            bar.close()
    return first, last
