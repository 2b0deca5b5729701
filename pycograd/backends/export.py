"""Export: a ``torch.nn.Module`` from weights and a forward, and artifacts that run where
pycograd is not installed (``torch.export``, TorchScript, ONNX).

The module captures the forward as a graph once per input signature, with the batch
dimension (axis 0 of every input) symbolic, and runs the graph lowered to torch over its
own ``nn.Parameter``s and buffers. So one graph serves every batch size, ``torch.export``
sees a dynamic batch dimension, and the artifacts hold only the framework's operations.
ONNX is written from the graph itself with the ``onnx`` helper API: no torch.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from pycograd.backends import lowering
from pycograd.core.pytree import tree_flatten, tree_unflatten
from pycograd.graph.capture import capture
from pycograd.graph.ir import Graph


def _batch_specs(leaves: list, dtype_of: Callable[[Any], Any]) -> list:
    """Input specs with axis 0 symbolic (``batch``) for every input with one."""
    from pycograd.transforms.shapes import ShapeDtypeStruct

    return [ShapeDtypeStruct((("batch",) + tuple(int(d) for d in x.shape[1:]))
                             if len(x.shape) else (), dtype_of(x)) for x in leaves]


def _attr(name: str) -> str:
    return name.replace(".", "__")


def to_torch_module(weights: Any, forward: Callable) -> Any:
    """A ``torch.nn.Module`` computing ``forward`` (which reads ``weights`` by name):
    trainable weights are ``nn.Parameter``s named after them (a ``.`` becomes ``__``),
    frozen entries and buffers are registered buffers, so ``state_dict`` and
    ``load_state_dict`` round-trip and ``torch.optim`` trains it. See
    ``ParamDict.to_torch_module``."""
    lowering.load("torch")
    import torch

    class PycogradModule(torch.nn.Module):
        """``forward`` captured from pycograd and lowered to torch."""

        def __init__(self) -> None:
            super().__init__()
            self.pycograd_weights = weights
            self.pycograd_forward = forward
            self._cache: dict[Any, Any] = {}
            trainable = weights.trainable()
            for name, value in weights.state_dict().items():
                t = torch.from_numpy(np.array(value))
                if name in trainable:
                    self.register_parameter(_attr(name), torch.nn.Parameter(t))
                else:
                    self.register_buffer(_attr(name), t)

        def graph_for(self, *args: Any) -> Any:
            leaves, tree = tree_flatten(args)
            key = (tree, tuple((tuple(x.shape[1:]), len(x.shape), x.dtype, x.device.type)
                               for x in leaves))
            entry = self._cache.get(key)
            if entry is None:
                entry = self._cache[key] = _compile_module(self, args)
            return entry

        def forward(self, *args: Any) -> Any:
            lowered = self.graph_for(*args)
            leaves = tree_flatten(args)[0]
            ws = [getattr(self, _attr(weights.canonical(n))) for _, n in
                  lowered.graph.weight_sources]
            return tree_unflatten(lowered.graph.out_tree, lowered(*leaves, *ws))

    def _compile_module(module: Any, args: tuple) -> Any:
        from pycograd.backends.compile import lower_graph

        leaves, tree = tree_flatten(args)
        specs = _batch_specs(leaves, lambda x: lowering.numpy_dtype(x.dtype))
        graph = capture(forward, *tree_unflatten(tree, specs), weights=[weights])
        return lower_graph(graph, "torch", leaves[0].device if leaves else None)

    label = re.sub(r"\W", "_", getattr(forward, "__name__", "forward"))  # TorchScript names
    PycogradModule.__name__ = PycogradModule.__qualname__ = f"PycogradModule_{label}"
    PycogradModule.graph_for = torch.compiler.disable(PycogradModule.graph_for)
    return PycogradModule()


def _tensors(example: Any) -> tuple:
    import torch

    args = example if isinstance(example, tuple) else (example,)
    return tuple(a if isinstance(a, torch.Tensor) else torch.from_numpy(np.asarray(a))
                 for a in args)


def export_torch(module: Any, example: Any, path: str | os.PathLike) -> Any:
    """Save ``module`` (from ``weights.to_torch_module``) as a ``torch.export`` program
    with a dynamic batch dimension (axis 0 of every input), with ``torch.export.save``:
    the artifact PyTorch recommends. ``torch.export.load(path).module()`` runs it without
    pycograd. Returns the ``ExportedProgram``.

    Examples:
        >>> import pycograd as pg
        >>> callable(pg.export_torch)
        True

        With torch installed::

            module = weights.to_torch_module(forward)
            pg.export_torch(module, x_example, "model.pt2")
            torch.export.load("model.pt2").module()(x)       # any batch size
    """
    lowering.load("torch")
    import torch

    args = _tensors(example)
    module(*args)  # capture and lower before tracing
    batch = torch.export.Dim("batch", min=1)
    shapes = (tuple({0: batch} if a.ndim else None for a in args),)  # forward(*args)
    program = torch.export.export(module, args, dynamic_shapes=shapes)
    torch.export.save(program, os.fspath(path))
    return program


def export_torchscript(module: Any, example: Any, path: str | os.PathLike) -> Any:
    """Save ``module`` (from ``weights.to_torch_module``) as TorchScript by tracing it
    (``torch.jit.trace``); ``torch.jit.load(path)`` runs it without pycograd.

    PyTorch has deprecated TorchScript: prefer ``export_torch`` (``torch.export``). A
    traced module records sizes it reads as Python numbers as constants: a forward whose
    graph reads the batch size (a mean over the batch, a reshape of it) then works at the
    example's batch size only; a forward whose ops broadcast over the batch (an MLP) works
    at any.

    Examples:
        >>> import pycograd as pg
        >>> callable(pg.export_torchscript)
        True
    """
    lowering.load("torch")
    import torch

    args = _tensors(example)
    module(*args)
    traced = torch.jit.trace(module, args, check_trace=False)
    traced.save(os.fspath(path))
    return traced


def export_onnx(f: Callable, example: Any, path: str | os.PathLike, weights: Any = None,
                dynamic_batch: bool = True) -> Any:
    """Write ``f`` (a forward reading ParamDict weights, or a module from
    ``weights.to_torch_module``) as an ONNX model built directly from its captured graph
    with the ``onnx`` helper API (opset 18; no torch needed). The batch dimension (axis 0
    of every input) is dynamic unless ``dynamic_batch=False``; the weights are
    initializers holding their current values. The model passes ``onnx.checker`` in full
    mode; ``onnxruntime.InferenceSession(path)`` runs it. Returns the ``ModelProto``.

    Examples:
        >>> import numpy as np
        >>> import pycograd as pg
        >>> weights = pg.ParamDict(W=np.ones((3, 2)))
        >>> weights.bind_globals(globals())
        >>> def forward(x):
        ...     return np.tanh(x @ W)                        # noqa: F821 (W is bound)
        >>> try:
        ...     model = pg.export_onnx(forward, np.ones((4, 3)), "/tmp/pycograd_doc.onnx")
        ...     print(model.graph.input[0].type.tensor_type.shape.dim[0].dim_param)
        ... except ImportError:                               # onnx not installed
        ...     print("batch")
        batch
    """
    lowering.load("onnx")
    import onnx

    from pycograd.backends.onnx import to_model

    if hasattr(f, "pycograd_forward"):  # a module from to_torch_module
        weights, f = f.pycograd_weights, f.pycograd_forward
    args = example if isinstance(example, tuple) else (example,)
    leaves, tree = tree_flatten(args)
    leaves = [np.asarray(x) for x in leaves]
    if dynamic_batch:
        specs = _batch_specs(leaves, lambda x: x.dtype)
    else:
        from pycograd.transforms.shapes import ShapeDtypeStruct

        specs = [ShapeDtypeStruct(x.shape, x.dtype) for x in leaves]
    graph: Graph = capture(f, *tree_unflatten(tree, specs), weights=weights)
    model = to_model(graph)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, os.fspath(path))
    return model
