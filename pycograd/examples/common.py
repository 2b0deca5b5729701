"""What every demo does the same way: initialise weights, train while recording the loss
curve, score held-out accuracy, and check its gradient against finite differences.

The gradient check runs on a small batch in float64, where central differences are
accurate to ~1e-9, so a wrong VJP anywhere in the model shows up as a relative error far
above the check's 1e-5 tolerance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from pycograd import random
from pycograd.examples.gradcheck import FDResult, fd_check
from pycograd.optim import train
from pycograd.params import ParamDict

FD_COORDS = 16
"""Coordinates perturbed per parameter in the gradient check (sampled at random)."""


def he(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    """He-normal initialisation, for layers followed by a ReLU."""
    return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)


def glorot(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    """Uniform in ``+-1/sqrt(fan_in)`` (PyTorch's default for linear and recurrent layers)."""
    return rng.uniform(-1.0, 1.0, shape) / np.sqrt(fan_in)


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of ``argmax`` over the last axis equal to ``labels``."""
    return float(np.mean(np.argmax(logits, axis=-1) == labels))


def fit(weights: ParamDict, objective: Callable, steps: int, optimizer: Any, *data: Any,
        batch_size: int, seed: int) -> list[float]:
    """``train`` with shuffled minibatches; returns the loss of every step."""
    curve: list[float] = []
    train(weights, objective, steps, optimizer, *data, batch_size=batch_size,
          callbacks=[lambda _step, loss: curve.append(loss)], progress=False,
          key=random.key(seed))
    return curve


def check_gradient(loss: Callable[[dict], Any], values: Mapping[str, np.ndarray],
                   grads: Mapping[str, np.ndarray], max_coords: int = FD_COORDS) -> FDResult:
    """``fd_check`` of ``loss(values)`` (a function of a dict of named arrays) against
    ``grads``, the gradient pycograd computed for those names."""
    names = list(values)
    return fd_check(lambda *vs: loss(dict(zip(names, vs))), [values[n] for n in names],
                    [grads[n] for n in names], max_coords=max_coords)


def check_weights(weights: ParamDict, objective: Callable, *batch: Any,
                  max_coords: int = FD_COORDS) -> FDResult:
    """Finite-difference check of ``weights.grad(objective, *batch)``; the objective reads
    the weights by bare name, and ``weights.functional`` turns it into a function of
    explicit values for the perturbed evaluations."""
    _, grads = weights.grad(objective, *batch)
    f = weights.functional(objective)
    return check_gradient(lambda v: f(v, *batch), weights.trainable(), grads, max_coords)
