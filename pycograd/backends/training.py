"""``weights.grad(objective, *data, backend=...)`` and ``train(..., backend=...)``.

The objective is captured once per signature of (weights, data) as a graph of its value,
the graph is lowered to the backend, and the framework's own autodiff gives the
gradients (``torch.autograd``; ``jax.value_and_grad``, under ``jax.jit`` with ``jit=True``;
``tf.GradientTape``, under ``tf.function`` with ``jit=True``). Values and gradients come
back as numpy arrays keyed like the weights, so optimizers and ``train`` use them as they
are.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from pycograd.backends import lowering
from pycograd.backends.compile import lower_graph, resolve
from pycograd.core.pytree import tree_flatten, tree_unflatten
from pycograd.graph.capture import capture

_STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""``{weights: {(objective, backend, jit): {signature: step}}}``, dropped with the weights."""


def _signature(leaves: list) -> tuple:
    return tuple((np.shape(x), np.result_type(x)) for x in leaves)


def weights_value_and_grad(weights: Any, objective: Callable, *data: Any, backend: str,
                           jit: bool = True) -> tuple:
    """``(value, {canonical name: gradient})`` of ``objective(*data)`` over the trainable
    weights, computed by ``backend``; frozen entries and buffers are inputs too, without
    gradients."""
    from pycograd.params.paramdict import _scalar_objective

    name, device = resolve(backend)
    train = weights.trainable()
    other = {n: v for n, v in weights.state_dict().items() if n not in train}
    leaves, _ = tree_flatten((train, other, *data))
    steps = _STEPS.setdefault(weights, {}).setdefault((objective, name, jit), {})
    key = (tuple(train), tuple(other), len(data), _signature(leaves))
    step = steps.get(key)
    if step is None:
        def loss(train: dict, other: dict, *d: Any) -> Any:
            return _scalar_objective({**train, **other}, weights, objective, *d)

        loss.__name__ = getattr(objective, "__name__", "objective")
        ops = lowering.load(name)
        if name == "jax" and any(np.result_type(x).itemsize == 8 for x in leaves):
            ops.enable_x64()
        graph = capture(loss, train, other, *data, weights=[])
        step = steps[key] = ops.value_and_grad(lower_graph(graph, name, device),
                                               len(tree_flatten(train)[0]), jit, device)
    value, grads = step(leaves)
    # the gradients come in the flattened order of ``train`` (dict keys sorted, as JAX):
    # pair them by key through its tree, never by the dict's own order
    grads = tree_unflatten(tree_flatten(train)[1], list(grads))
    return value[()] if np.ndim(value) == 0 else value, grads
