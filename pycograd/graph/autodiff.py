"""``grad_graph`` and ``vjp_graph``: gradient graphs from the tape's own VJP rules.

There is no second rule table. The gradient graph is the capture of ``vjp(graph)`` pulled
back from a seed of one: the graph is evaluated on capture tracers through the reverse
tape, so the tape's backward applies each primitive's VJP rule to capture tracers and
every operation those rules perform is recorded. The forward nodes appear once (the tape
computes the primal one level down, which is the capture), so the forward's values are the
very values the backward reads (``exp(x)`` computed once, read by its VJP).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pycograd.core.errors import NonScalarOutputError
from pycograd.core.pytree import tree_flatten, tree_unflatten
from pycograd.graph.capture import CaptureTracer, trace_flat, traced_const
from pycograd.graph.ir import Graph
from pycograd.transforms.grad import _check_argnums, vjp


def _retrace(graph: Graph, fn: Callable, extra: Sequence[tuple] = (),
             extra_names: Sequence[str] = (), in_tree: Any = None, name: str = "") -> Graph:
    """Capture ``fn`` over the graph's inputs, with ``extra`` inputs inserted after the
    positional ones (the weights stay last)."""
    npos = graph.num_positional
    specs = [(v.shape, v.dtype) for v in graph.inputs]
    names = [v.name for v in graph.inputs]
    specs = specs[:npos] + list(extra) + specs[npos:]
    names = names[:npos] + list(extra_names) + names[npos:]
    return trace_flat(fn, specs, names, graph.in_tree if in_tree is None else in_tree,
                      graph.weight_sources, name or graph.name)


def _args(graph: Graph, leaves: Sequence) -> tuple:
    return tree_unflatten(graph.in_tree, list(leaves))


def grad_graph(graph: Graph, argnums: int | Sequence[int] | None = None,
               weights: bool = False) -> Graph:
    """A graph computing ``(value, gradients)`` of a graph with one scalar output.

    ``argnums`` picks positional arguments as ``value_and_grad`` does (``None``: a tuple
    with one gradient per argument; an int: the bare gradient). With ``weights=True`` the
    result is ``(value, gradients, {weight name: gradient})`` for the named weight inputs.
    Built by capturing the reverse tape over the graph, so every VJP is the tape's own.

    Examples:
        >>> import numpy as np
        >>> from pycograd import capture, grad_graph
        >>> g = capture(lambda x: np.sum(np.exp(x)), np.ones(3))
        >>> value, (dx,) = grad_graph(g)(np.zeros(3))
        >>> float(value), dx.tolist()
        (3.0, [1.0, 1.0, 1.0])
    """
    if len(graph.outputs) != 1 or graph.outputs[0].shape != ():
        raise NonScalarOutputError(
            f"grad_graph: {graph.name} must have one scalar output, it has "
            f"{[o.type for o in graph.outputs]}; use vjp_graph for other outputs")
    npos = graph.num_positional
    nargs = graph.in_tree.num_leaves and len(graph.in_tree.children)
    nums = _check_argnums(argnums, nargs, "grad_graph")
    names = [n for _, n in graph.weight_sources]

    def objective(*args_and_ws: Any) -> Any:
        args, ws = args_and_ws[:nargs], args_and_ws[nargs]
        return graph.call_flat(*tree_flatten(args)[0], *[ws[n] for n in names])[0]

    base = tuple(nums)
    def fn(*leaves: Any) -> Any:
        args = _args(graph, leaves[:npos])
        ws = dict(zip(names, leaves[npos:]))
        value, pull = vjp(objective, *args, ws)
        # the seed is a traced constant, so a VJP that broadcasts it to a symbolic shape
        # records the broadcast instead of asking numpy for a concrete size
        like = next((x for x in leaves if isinstance(x, CaptureTracer)), None)
        seed = np.ones((), value.dtype) if like is None else traced_const(
            like, np.ones((), value.dtype))
        cts = pull(seed)
        g = cts[argnums] if isinstance(argnums, int) else tuple(cts[i] for i in base)
        return (value, g, cts[nargs]) if weights else (value, g)

    return _retrace(graph, fn, name=f"grad_{graph.name}")


def vjp_graph(graph: Graph) -> Graph:
    """A graph computing ``(outputs, cotangents)`` from ``(*args, output_cotangent)``: the
    cotangents mirror the positional arguments (a tuple, one per argument), followed by
    ``{weight name: cotangent}`` when the graph has weight inputs.

    Examples:
        >>> import numpy as np
        >>> from pycograd import capture, vjp_graph
        >>> g = capture(lambda x: 3.0 * x, np.ones(2))
        >>> out, (ct,) = vjp_graph(g)(np.ones(2), np.array([1.0, 2.0]))
        >>> out.tolist(), ct.tolist()
        ([3.0, 3.0], [3.0, 6.0])
    """
    npos = graph.num_positional
    nout = len(graph.outputs)
    names = [n for _, n in graph.weight_sources]
    args_template = tree_unflatten(graph.in_tree, [0] * npos)
    ct_template = tree_unflatten(graph.out_tree, [0] * nout)
    _, in_tree = tree_flatten((*args_template, ct_template))

    def fn(*leaves: Any) -> Any:
        xs, cts, ws = leaves[:npos], leaves[npos:npos + nout], leaves[npos + nout:]
        out, pull = vjp(lambda xs, ws: graph.call_flat(*xs, *ws), list(xs), list(ws))
        gx, gw = pull(list(cts))
        result = (tree_unflatten(graph.out_tree, out), _args(graph, gx))
        return (*result, dict(zip(names, gw))) if names else result

    extra = [(o.shape, o.dtype) for o in graph.outputs]
    return _retrace(graph, fn, extra, [f"ct{i}" for i in range(nout)], in_tree,
                    name=f"vjp_{graph.name}")
