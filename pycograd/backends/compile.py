"""``compile_to(f, backend)``: ``f`` as a function over torch, jax or tensorflow tensors.

The first call with a new input signature (pytree structure, shapes, dtypes; the device
for torch) captures ``f`` once as a ``Graph`` from the shapes alone and lowers the graph
with the lowering table; later calls with that signature run the lowered graph, never
``f``. The result is made of the framework's own operations, so the framework
differentiates it (``torch.autograd``, ``jax.grad``, ``tf.GradientTape``) and compiles it
(``torch.compile``, ``jax.jit``, ``tf.function``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from pycograd.backends import lowering
from pycograd.backends.errors import DeviceUnavailableError
from pycograd.core.pytree import tree_flatten, tree_unflatten
from pycograd.graph.capture import capture
from pycograd.graph.ir import Graph


def resolve(backend: str) -> tuple[str, Any]:
    """``(backend name, device)``: ``"mps"`` is torch on Apple's GPU, refused where the
    machine has none."""
    if str(backend).lower() == "mps":
        lowering.load("torch")
        import torch

        if not torch.backends.mps.is_available():
            raise DeviceUnavailableError(
                "backend='mps' needs Apple's GPU (Metal Performance Shaders), and this "
                "machine has none (torch.backends.mps.is_available() is False); use "
                "backend='torch' for the CPU")
        return "torch", torch.device("mps")
    return lowering.backend_name(backend), None


class Compiled:
    """``compile_to(f, backend)``: see ``compile_to``. ``.graphs`` holds the captured graph
    per signature and ``.captures`` counts the captures."""

    def __init__(self, f: Callable, backend: str, weights: Any = None):
        functools.update_wrapper(self, f)
        self.f = f
        self.backend, self.device = resolve(backend)
        self.ops = lowering.load(self.backend)
        self.weights = weights
        self.cache: dict[Any, Any] = {}
        self.captures = 0
        if self.backend == "torch":  # torch.compile runs the capture as Python, untraced
            import torch

            self._compile = torch.compiler.disable(self._compile)

    @property
    def graphs(self) -> list[Graph]:
        return [entry.graph for entry in self.cache.values()]

    def __call__(self, *args: Any) -> Any:
        leaves, tree = tree_flatten(args)
        key = (tree, tuple(self.ops.signature(x) for x in leaves))
        entry = self.cache.get(key)
        if entry is None:
            entry = self.cache[key] = self._compile(args)
        ws = [self.ops.to_framework(pd[n], self.device) for pd, n in entry.graph.weight_sources]
        outs = entry(*leaves, *ws)
        return tree_unflatten(entry.graph.out_tree, outs)

    def _compile(self, args: tuple) -> lowering.Lowered:
        from pycograd.transforms.shapes import ShapeDtypeStruct

        leaves, tree = tree_flatten(args)
        specs = [ShapeDtypeStruct(tuple(int(d) for d in x.shape), lowering.numpy_dtype(x.dtype))
                 for x in leaves]
        if self.backend == "jax" and any(s.dtype.itemsize == 8 for s in specs):
            self.ops.enable_x64()
        graph = capture(self.f, *tree_unflatten(tree, specs), weights=self.weights)
        self.captures += 1
        return lower_graph(graph, self.backend, self.device)


def lower_graph(graph: Graph, backend: str, device: Any = None) -> lowering.Lowered:
    """``graph`` lowered to ``backend``: a function of the input leaves (weights last)
    returning the output leaves. Raises ``NoLoweringError`` before anything runs."""
    ops = lowering.load(backend)
    return lowering.Lowered(graph, backend, lambda a: ops.to_framework(a, device))


def compile_to(f: Callable, backend: str, weights: Any = None) -> Compiled:
    """``f`` (numpy code, nn ops, DSL forwards) as a function over ``backend``'s tensors:
    ``"torch"``, ``"jax"`` or ``"tf"`` (``"mps"``: torch on Apple's GPU).

    Each new input signature (structure, shapes, dtypes) captures ``f`` once as a graph and
    lowers it with the lowering table; ``f`` itself is not called again for that signature.
    The result is made of the framework's operations: ``torch.autograd``, ``jax.grad`` and
    ``tf.GradientTape`` differentiate it, and ``torch.compile``, ``jax.jit`` and
    ``tf.function`` compile it. A primitive with no lowering raises ``NoLoweringError``
    (naming it and the backend) at that first call, before any framework op runs. Weights
    ``f`` reads from a ``ParamDict`` are passed as constants (their current values); to
    train them in torch, use ``weights.to_torch_module(f)``.

    Examples:
        >>> import numpy as np
        >>> import pycograd as pg
        >>> def f(x):
        ...     return np.sum(np.tanh(x) ** 2)
        >>> try:
        ...     pg.compile_to(f, "theano")
        ... except pg.PycogradError as e:
        ...     print(str(e).split(":")[0])
        unknown backend 'theano'

        With torch installed (``pip install "pycograd[torch]"``)::

            import torch
            g = pg.compile_to(f, "torch")
            x = torch.ones(3, dtype=torch.float64, requires_grad=True)
            g(x).backward()          # x.grad == 2 tanh(1) (1 - tanh(1)^2)
    """
    return Compiled(f, backend, weights)
