"""``vmap``: the batching interpreter.

A ``BatchTracer`` holds a value with one extra axis (``bdim``) that the function does
not see. Primitives process batched operands by their family's batching rule
(elementwise, reduction, call) or by the rule declared with the primitive (structural and
contraction ops). A primitive without a rule fails naming itself, and ``vmap(...,
loop_fallback=True)`` offers the slow, explicit alternative: it runs such primitives
once per example and stacks the results.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from pycograd.core.errors import InAxesError, NoRuleError, ShapeError, TracerConversionError
from pycograd.core.primitive import Primitive, family_rules
from pycograd.core.pytree import DictKeys, tree_flatten, tree_unflatten
from pycograd.core.trace import Trace, Tracer, bind, new_trace
from pycograd.core.tracebacks import api_boundary
from pycograd.ops.batching import aligned, to_front
from pycograd.routing.transparent import routed
from pycograd.transforms.packing import leaves_like


def _concrete(name: str) -> Callable:
    """A conversion (``np.asarray``, ``bool``, ``int`` ...) that an unbatched argument
    allows, since its value is the same in every example; batched ones refuse."""
    def method(self: BatchTracer, *args: Any, **kwargs: Any) -> Any:
        if self.bdim is None and not isinstance(self.val, Tracer):
            return getattr(np.asarray(self.val), name)(*args, **kwargs)
        if name == "__array__" and self.bdim is not None and self.dtype.kind in "iu":
            raise TracerConversionError(
                f"np.asarray of a batched integer value (shape {self.shape}) under vmap: if "
                "it indexes a plain numpy array closed over by the function (table[i], "
                "np.take(table, i)), numpy cannot hand that indexing to vmap; pass the array "
                "to the vmapped function (in_axes=None) so that table[i] is batched")
        return getattr(super(BatchTracer, self), name)(*args, **kwargs)
    return method


class BatchTracer(Tracer):
    """A value with a batch axis at ``bdim``. An argument mapped with ``in_axes=None``
    is a BatchTracer with ``bdim=None`` (so ``table[ids]`` with batched ``ids`` reaches
    the batching rules even when ``table`` is a plain array); ops on unbatched values alone
    return plain results."""

    __slots__ = ("val", "bdim")

    def __init__(self, trace: BatchTrace, val: Any, bdim: int | None):
        self._trace = trace
        self.val = val
        self.bdim = bdim

    @property
    def shape(self) -> tuple:
        s = np.shape(self.val)
        return s if self.bdim is None else s[:self.bdim] + s[self.bdim + 1:]

    __array__ = _concrete("__array__")
    __bool__ = _concrete("__bool__")
    __float__ = _concrete("__float__")
    __int__ = _concrete("__int__")
    __index__ = _concrete("__index__")
    item = _concrete("item")
    tolist = _concrete("tolist")

    @property
    def dtype(self) -> np.dtype:
        return np.result_type(self.val)

    def __repr__(self) -> str:
        return f"BatchTracer(bdim={self.bdim}, val={self.val!r})"


class BatchTrace(Trace):
    __slots__ = ("axis_size", "loop_fallback")

    def __init__(self, level: int, axis_size: int, loop_fallback: bool = False):
        super().__init__(level)
        self.axis_size = axis_size
        self.loop_fallback = loop_fallback

    def process(self, prim: Primitive, args: tuple, params: dict) -> Any:
        vals, dims = [], []
        for a in args:
            if isinstance(a, BatchTracer) and a._trace is self:
                vals.append(a.val)
                dims.append(a.bdim)
            else:
                vals.append(a)
                dims.append(None)
        if all(d is None for d in dims):
            return bind(prim, vals, params)
        rule = prim.batch
        if rule is None:
            if not self.loop_fallback:
                raise NoRuleError(
                    f"vmap: {prim.name} has no batching rule. To run it once per example "
                    "instead (slow but general), call vmap(f, ..., loop_fallback=True)")
            rule = functools.partial(batch_loop, prim)
        out, out_dim = rule(self.axis_size, vals, dims, **params)
        return out if out_dim is None else BatchTracer(self, out, out_dim)


# ---- family rules ------------------------------------------------------------------

def batch_loop(prim: Primitive, size: int, vals: list, dims: list, **params: Any) -> tuple:
    """Run ``prim`` per example and stack: the explicit fallback for rule-less primitives."""
    def pick(v: Any, d: int | None, i: int) -> Any:
        return v if d is None else np.take(v, i, axis=d) if not isinstance(v, Tracer) else \
            v[(slice(None),) * d + (i,)]
    outs = [bind(prim, [pick(v, d, i) for v, d in zip(vals, dims)], params) for i in range(size)]
    return np.stack(outs), 0


def batch_elementwise(prim: Primitive) -> Callable:
    """Move batch axes first and pad batched operands' ranks so they broadcast as unbatched
    operands would."""
    def rule(size: int, vals: list, dims: list, **params: Any) -> tuple:
        return bind(prim, aligned(size, vals, dims), params), 0
    return rule


def batch_reduction(prim: Primitive) -> Callable:
    def rule(size: int, vals: list, dims: list, axis: Any, keepdims: bool) -> tuple:
        x = to_front(vals[0], dims[0], size)
        nd = np.ndim(x) - 1
        ax = tuple(range(1, nd + 1)) if axis is None else tuple(a + 1 for a in axis)
        return bind(prim, [x], {"axis": ax, "keepdims": keepdims}), 0
    return rule


def batch_call(prim: Primitive) -> Callable:
    """Function-carrying primitives (checkpoint): the same primitive over the vmapped
    function, so ``vmap(checkpoint(f)) == checkpoint(vmap(f))``."""
    def rule(size: int, vals: list, dims: list, fun: Callable, **params: Any) -> tuple:
        bf = vmap(fun, in_axes=tuple(dims), axis_size=size)
        return bind(prim, vals, {"fun": bf, **params}), 0
    return rule


family_rules("batch", {
    "elementwise": batch_elementwise,
    "cast": batch_elementwise,
    "reduction": batch_reduction,
    "call": batch_call,
})


# ---- the transform -----------------------------------------------------------------

def _axes_for(axes: Any, tree: Any, what: str) -> list:
    """Broadcast an ``in_axes``/``out_axes`` prefix tree over the leaves of ``tree``."""
    if axes is None or isinstance(axes, int):
        return [axes] * len(tree_flatten(tree)[0])
    if isinstance(axes, (tuple, list)) and isinstance(tree, (tuple, list)):
        if len(axes) != len(tree):
            raise InAxesError(f"vmap: {what} has {len(axes)} entries but there are "
                              f"{len(tree)} values to map; give one entry (None or an int) each")
        return [a for ax, t in zip(axes, tree) for a in _axes_for(ax, t, what)]
    if isinstance(axes, dict) and isinstance(tree, dict):
        if set(axes) != set(tree):
            raise InAxesError(f"vmap: {what} keys {sorted(axes)} do not match {sorted(tree)}")
        return [a for k in DictKeys(tree) for a in _axes_for(axes[k], tree[k], what)]
    raise InAxesError(f"vmap: {what}={axes!r} does not match the structure of the values; use "
                      "None, an int, or a tuple/dict shaped like the arguments")


def _wrap(trace: BatchTrace, x: Any, d: int | None) -> Any:
    """An argument leaf as the function sees it: batched leaves (and unbatched arrays,
    so that indexing them with batched indices is batched) become BatchTracers."""
    if d is not None:
        return BatchTracer(trace, x if isinstance(x, Tracer) else np.asarray(x), d)
    return BatchTracer(trace, x, None) if type(x) is np.ndarray else x


def _arg_name(f: Callable, args: tuple, leaf: int) -> str:
    """Leaf ``leaf`` of ``args`` in words: ``argument 1 ('x')``, ``argument 0 ('p')['w']``."""
    labels = [where for _, where in leaves_like(tree_flatten(args)[1], args, "", "argument")]
    head, _, rest = labels[leaf][1:].partition("]")
    pos = int(head)
    try:
        names = [n for n, q in inspect.signature(f).parameters.items()
                 if q.kind in (q.POSITIONAL_ONLY, q.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        names = []
    name = f" ({names[pos]!r})" if pos < len(names) else ""
    return f"argument {pos}{name}{rest}"


def _size_mismatch(f: Callable, args: tuple, leaves: list, axes: list) -> str:
    """The message for mapped axes of different sizes: each mapped argument with its shape,
    in_axes and size, as JAX lists them."""
    seen, sizes = [], set()
    for i, (x, ax) in enumerate(zip(leaves, axes)):
        shape = np.shape(x)
        if ax is None or not -len(shape) <= ax < len(shape):
            continue
        sizes.add(shape[ax])
        seen.append(f"  {_arg_name(f, args, i)}: shape {shape}, in_axes={ax}, size {shape[ax]}")
    return ("vmap: inconsistent sizes for the mapped axis: "
            + " and ".join(map(str, sorted(sizes)))
            + " (every mapped argument needs the same batch size):\n" + "\n".join(seen)
            + "\nmap the right axis (in_axes) or pass None for an argument to broadcast it")


def vmap(f: Callable, in_axes: Any = 0, out_axes: Any = 0, axis_size: int | None = None,
         loop_fallback: bool = False) -> Callable:
    """Vectorize ``f`` over a batch axis of its arguments (JAX's ``vmap``): ``f`` is written
    for one example and runs on the whole batch in one pass, with no Python loop.

    ``in_axes``: None (broadcast), an int (negative allowed), or a tree of those matching
    the positional arguments. ``out_axes`` likewise for the outputs. ``axis_size`` gives the
    batch size when no argument is mapped. ``vmap(grad(f))`` gives per-example gradients, and
    ``vmap`` composes with every other transform in either order.

    Examples:
        >>> import numpy as np
        >>> from pycograd import grad, vmap
        >>> dot = lambda a, b: a @ b                          # written for one pair of vectors
        >>> vmap(dot)(np.ones((5, 3)), np.ones((5, 3))).tolist()
        [3.0, 3.0, 3.0, 3.0, 3.0]
        >>> vmap(dot, in_axes=(0, None))(np.ones((5, 3)), np.ones(3)).shape
        (5,)
        >>> loss = lambda w, x: np.sum(np.tanh(x @ w))
        >>> vmap(grad(loss, 0), in_axes=(None, 0))(np.zeros(2), np.ones((4, 2))).shape
        (4, 2)
    """

    @api_boundary
    @functools.wraps(f)
    def batched(*args: Any) -> Any:
        if isinstance(in_axes, (tuple, list)) and len(in_axes) != len(args):
            raise InAxesError(f"vmap: in_axes has {len(in_axes)} entries but f was called with "
                              f"{len(args)} positional arguments")
        leaves, tree = tree_flatten(args)
        axes = _axes_for(tuple(in_axes) if isinstance(in_axes, list) else in_axes
                         if not isinstance(in_axes, (int, type(None))) else in_axes,
                         args, "in_axes")
        size, dims = axis_size, []
        for i, (x, ax) in enumerate(zip(leaves, axes)):
            if ax is None:
                dims.append(None)
                continue
            shape = np.shape(x)
            if not -len(shape) <= ax < max(len(shape), 1) or not shape:
                raise ShapeError(f"vmap: in_axes={ax} for {_arg_name(f, args, i)}, which has "
                                 f"shape {shape} ({len(shape)} dims): there is no axis {ax} "
                                 "to map over; give an axis in range, or None to broadcast it")
            ax %= len(shape)
            if size is None:
                size = shape[ax]
            elif shape[ax] != size:
                raise ShapeError(_size_mismatch(f, args, leaves, axes))
            dims.append(ax)
        if size is None:
            raise InAxesError("vmap: no argument is mapped (all in_axes are None); pass "
                              "axis_size= to say how many copies to make")
        with new_trace(BatchTrace, size, loop_fallback) as trace:
            ins = [_wrap(trace, x, d) for x, d in zip(leaves, dims)]
            out = routed(f)(*tree_unflatten(tree, ins))
        out_leaves, out_tree = tree_flatten(out)
        oaxes = _axes_for(out_axes, out, "out_axes")
        res = []
        for i, (o, oa) in enumerate(zip(out_leaves, oaxes)):
            val, bdim = (o.val, o.bdim) if isinstance(o, BatchTracer) and o._trace is trace \
                else (o, None)
            if oa is None:
                if bdim is not None:
                    raise InAxesError(
                        f"vmap: out_axes=None for output leaf {i} (shape {np.shape(o)}), "
                        "which depends on the mapped axis; give it an int out_axes, or "
                        "reduce over the batch inside f")
                res.append(val)
                continue
            v = to_front(val, bdim, size)
            if not -np.ndim(v) <= oa < max(np.ndim(v), 1):
                raise InAxesError(f"vmap: out_axes={oa} is out of range for output leaf {i}, "
                                  f"which has {np.ndim(v)} dims with the batch axis")
            res.append(v if oa % max(np.ndim(v), 1) == 0 else np.moveaxis(v, 0, oa))
        return tree_unflatten(out_tree, res)

    return batched
