"""``jit``: capture once per input signature, optimize, and run a generated numpy program.

The program (``pycograd.graph.program``) is straight-line Python source calling numpy
directly (no ``bind``, no tracer, no tape), with buffers reused by a liveness analysis done
once at compile time, outputs recycled from earlier calls when nothing references them any
more, and the max/min VJP fused.

``weights.grad(objective, *data, jit=True)`` and ``train(..., jit=True)`` jit the value and
gradient of the objective over the weights (``weights_value_and_grad``).
"""

from __future__ import annotations

import functools
import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pycograd.core.errors import NoRuleError
from pycograd.core.pytree import tree_flatten, tree_unflatten
from pycograd.core.trace import Tracer
from pycograd.core.tracebacks import api_boundary
from pycograd.graph.capture import CaptureError, capture
from pycograd.graph.ir import Graph
from pycograd.graph.passes import optimize
from pycograd.graph.program import Program, compile_graph
from pycograd.routing.transparent import routed


class JitFallbackWarning(UserWarning):
    """``jit`` could not capture a function and runs it eagerly."""


def _signature(leaves: Sequence) -> tuple:
    return tuple((np.ndarray, x.shape, x.dtype) if type(x) is np.ndarray else  # fast path
                 (type(x), np.shape(x), np.result_type(x)) if not isinstance(x, Tracer) else
                 (Tracer, tuple(x.shape), np.dtype(x.dtype)) for x in leaves)


class Jitted:
    """``jit(f)``: see ``jit``. ``.graphs`` holds the optimized graph per signature."""

    def __init__(self, f: Callable, static_argnums: Sequence[int], strict: bool,
                 optimize_graph: bool, weights: Any = None):
        functools.update_wrapper(self, f)
        self.f = f
        self.static = tuple(static_argnums)
        self.strict = strict
        self.optimize = optimize_graph
        self.weights = weights
        self.cache: dict[Any, Any] = {}
        self.warned = False

    @property
    def graphs(self) -> list[Graph]:
        return [c.graph for c in self.cache.values() if isinstance(c, Program)]

    @api_boundary
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        static = tuple((i, args[i]) for i in self.static)
        dyn = (tuple(a for i, a in enumerate(args) if i not in self.static), kwargs)
        leaves, tree = tree_flatten(dyn)
        key = (tree, _signature(leaves), static)
        entry = self.cache.get(key)
        if entry is None:
            entry = self.cache[key] = self._compile(args, dyn)
        if entry == "eager":
            return routed(self.f)(*args, **kwargs)
        weights = [pd[n] for pd, n in entry.graph.weight_sources]
        if any(isinstance(x, Tracer) for x in leaves):  # under a transform: differentiable
            outs = entry.graph.call_flat(*leaves, *weights)
        else:
            outs = entry(*leaves, *weights)
        return tree_unflatten(entry.graph.out_tree, outs)

    def _compile(self, args: tuple, dyn: tuple) -> Any:
        def call(args_: tuple, kwargs: dict) -> Any:  # the dynamic arguments, as captured
            it = iter(args_)
            full = [args[i] if i in self.static else next(it) for i in range(len(args))]
            return routed(self.f)(*full, **kwargs)

        call.__name__ = getattr(self.f, "__name__", "jitted")
        leaves, tree = tree_flatten(dyn)
        example = tree_unflatten(tree, [_Spec.of(x) if isinstance(x, Tracer) else x
                                        for x in leaves])
        try:
            graph = capture(call, *example, weights=self.weights)
        except (CaptureError, NoRuleError) as e:
            if self.strict:
                raise
            if not self.warned:
                self.warned = True
                warnings.warn(f"jit({getattr(self.f, '__name__', self.f)}): cannot capture "
                              f"({e}); running eagerly", JitFallbackWarning, stacklevel=3)
            return "eager"
        return Program(optimize(graph) if self.optimize else graph)


class _Spec:
    @staticmethod
    def of(x: Tracer) -> Any:
        from pycograd.transforms.shapes import ShapeDtypeStruct

        return ShapeDtypeStruct(tuple(x.shape), x.dtype)


def jit(f: Callable | None = None, *, static_argnums: int | Sequence[int] = (),
        strict: bool = False, optimize: bool = True, weights: Any = None) -> Any:
    """Compile ``f``: capture it once per input signature (shapes, dtypes, pytree
    structure, the values of ``static_argnums``), optimize the graph, and run a generated
    straight-line numpy program with buffer reuse. A new signature captures again.

    A function that cannot be captured (Python control flow on data, ``float(x)`` ...)
    runs eagerly, with one ``JitFallbackWarning`` saying why; ``strict=True`` raises the
    ``CaptureError`` instead. Called on traced values (inside ``grad``, ``vmap`` ...) the
    captured graph is evaluated through the transforms, so ``grad(jit(f))`` works.
    ``ParamDict`` weights ``f`` reads by bare name are inputs of the program (read at each
    call), found as ``capture`` finds them or given as ``weights=`` (``[]`` for none).

    Examples:
        >>> import numpy as np
        >>> from pycograd import jit, value_and_grad
        >>> loss = lambda w, x: np.sum(np.tanh(x @ w) ** 2)
        >>> step = jit(value_and_grad(loss, argnums=0))
        >>> w, x = np.ones((3, 2)), np.ones((4, 3))
        >>> value, gw = step(w, x)            # captured and compiled on the first call only
        >>> bool(np.allclose(gw, value_and_grad(loss, argnums=0)(w, x)[1]))
        True
    """
    if f is None:
        return functools.partial(jit, static_argnums=static_argnums, strict=strict,
                                 optimize=optimize, weights=weights)
    nums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
    return Jitted(f, nums, strict, optimize, weights)


# ---- weights.grad(..., jit=True) ---------------------------------------------------------

_WEIGHT_STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""``{weights: {objective: jitted value-and-grad}}``: one compiled program per pair (and
signature), dropped with the weights."""


def weights_value_and_grad(weights: Any, objective: Callable, *data: Any) -> tuple:
    """``(value, {canonical name: gradient})`` of ``objective(*data)`` over the trainable
    weights, through a jitted value-and-grad program cached per (weights, objective).
    Frozen entries and buffers are inputs of the program too (never baked constants), but
    get no gradient."""
    from pycograd.params.paramdict import _scalar_objective
    from pycograd.transforms.grad import value_and_grad

    per = _WEIGHT_STEPS.setdefault(weights, {})
    step = per.get(objective)
    if step is None:
        def loss(train: dict, other: dict, *d: Any) -> Any:
            return _scalar_objective({**train, **other}, weights, objective, *d)

        def value_grad(train: dict, other: dict, *d: Any) -> Any:
            return value_and_grad(loss, 0)(train, other, *d)

        value_grad.__name__ = f"grad_{getattr(objective, '__name__', 'objective')}"
        step = per[objective] = jit(value_grad, weights=[])
    train = weights.trainable()
    other = {n: v for n, v in weights.state_dict().items() if n not in train}
    return step(train, other, *data)


__all__ = ["JitFallbackWarning", "Jitted", "Program", "compile_graph", "jit",
           "weights_value_and_grad"]
