"""``checkpoint`` (alias ``remat``): drop a function's activations on the forward pass and
recompute them in backward.

The function runs as one primitive whose forward is evaluated one level below the tape,
so none of its intermediates is recorded; only its inputs are kept. Its VJP re-runs the
function on a fresh tape and pulls the cotangent back through it. ``f`` must be
deterministic in its inputs (and in the weights it reads), since it runs twice.

Traced values that ``f`` reads without taking them as arguments (weights bound ambiently by
``ParamDict``, closure cells, ``functools.partial`` arguments) are its hidden inputs: they
are captured when the checkpointed function is called, passed to the primitive as explicit
inputs (so every interpreter sees them, and the tape records no op of ``f``), and rebound
to the values of the moment whenever ``f`` runs, including the recompute in backward,
which happens after the ambient binding has been restored.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from pycograd.core.errors import ArgumentTypeError
from pycograd.core.primitive import Joint, primitive
from pycograd.core.pytree import tree_flatten, tree_unflatten
from pycograd.core.trace import Tracer, new_trace
from pycograd.core.var import ReverseTrace, Var, backward
from pycograd.numpy_api.transparent import routed
from pycograd.params.ambient import Group, ambient_slots, plan, rebound
from pycograd.transforms.packing import OutputSpec, packed, unpack


def _recompute(wanted: tuple, g: Any, ans: Any, *args: Any, fun: Callable) -> list:
    """Run ``fun`` again on a fresh tape and pull ``g`` back through it, once (the tape is
    released as backward passes). Inputs it does not reach get None, not zeros, so unused
    hidden inputs (ambient weights another block reads) cost nothing."""
    with new_trace(ReverseTrace) as trace:
        full = list(args)
        lifted = {}
        for i in wanted:
            full[i] = lifted[i] = Var(args[i], trace)
        out = fun(*full)
        del full
    cts: list = [None] * len(args)
    if not (isinstance(out, Var) and out._trace is trace):
        return cts
    found = backward([out], [g])
    del out
    for i, leaf in lifted.items():
        ct = found.get(id(leaf))
        if ct is not None and np.result_type(ct) != np.result_type(args[i]):
            ct = ct.astype(np.result_type(args[i]))
        cts[i] = ct
    return cts


def _forward(*args: Any, fun: Callable) -> Any:
    """Run ``fun`` below the tape. A result traced above every input means ``fun`` read a
    traced value it was not given (the tape would record its ops after all)."""
    out = fun(*args)
    if isinstance(out, Tracer):
        level = max((a._trace.level for a in args if isinstance(a, Tracer)), default=-1)
        if out._trace.level > level:
            raise ArgumentTypeError(
                "checkpoint: the function read a traced value that is not one of its inputs "
                "(an attribute such as self.w, or a value looked up in a container); "
                "checkpoint finds arguments, closure variables, functools.partial arguments "
                "and ParamDict weights: pass the value in one of those ways")
    return out


checkpoint_p = primitive("checkpoint", _forward, Joint(_recompute), calls_user_code=True,
                         family="call")


def _traced(x: Any) -> bool:
    return isinstance(x, Tracer) and x._trace.alive


def _to_tree(v: Any) -> Any:
    """Weight groups as dicts, so that their traced leaves flatten like any pytree's."""
    return {k: _to_tree(x) for k, x in v.items()} if isinstance(v, Group) else v


def _from_tree(template: Any, v: Any) -> Any:
    if isinstance(template, Group):
        return Group({k: _from_tree(template[k], v[k]) for k in template})
    return v


def _is_library(fn: types.FunctionType) -> bool:
    return (fn.__module__ or "").partition(".")[0] == "pycograd"


def _traced_cells(f: Callable) -> list[tuple[Any, str]]:
    """The closure cells holding traced values among the functions ``f`` reaches through
    closures, partials and ``__wrapped__``. Library closures (pycograd's own: a pullback, a
    transform's wrapper) are followed but never rebound, since they rely on the identity of
    the traced values they hold."""
    slots: list[tuple[Any, str]] = []
    seen: set[int] = set()
    stack: list[Any] = [f]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, functools.partial):
            stack.append(obj.func)
        elif isinstance(obj, types.MethodType):
            stack.append(obj.__func__)
        elif isinstance(obj, types.FunctionType) and obj.__closure__:
            library = _is_library(obj)
            for name, cell in zip(obj.__code__.co_freevars, obj.__closure__):
                try:
                    v = cell.cell_contents
                except ValueError:
                    continue
                if callable(v) and not isinstance(v, Tracer):
                    stack.append(v)
                elif not library and any(map(_traced, tree_flatten(_to_tree(v))[0])):
                    slots.append((cell, name))
        wrapped = getattr(obj, "__wrapped__", None)
        if wrapped is not None:
            stack.append(wrapped)
    return slots


def _partial_inputs(f: Callable) -> tuple[Callable, tuple, dict]:
    """A top-level ``functools.partial`` split into its function and bound arguments, so
    that traced bound arguments become explicit inputs."""
    if isinstance(f, functools.partial):
        inner, args, kwargs = _partial_inputs(f.func)
        return inner, args + f.args, {**kwargs, **f.keywords}
    return f, (), {}


def _ambient_read_by(f: Callable) -> tuple[list, list]:
    """The ambient bindings in force that ``f`` (or a function it reaches) reads, found
    the way ``ParamDict`` finds where to bind them, and their current values."""
    slots, values = ambient_slots()
    if not slots:
        return slots, values
    read = {(id(h), n) for h, n in plan({n for _, n in slots}, (), [f])}
    keep = [i for i, (h, n) in enumerate(slots) if (id(h), n) in read]
    return [slots[i] for i in keep], [values[i] for i in keep]


class _Hidden:
    """The hidden inputs of one call: slots to rebind, their values at call time, and
    which leaves of those values are traced (passed to the primitive as inputs)."""

    def __init__(self, f: Callable):
        slots, values = _ambient_read_by(f)
        cells = _traced_cells(f)
        known = {(id(h), n) for h, n in slots}
        for holder, name in cells:
            if (id(holder), name) not in known:
                slots.append((holder, name))
                values.append(holder.cell_contents)
        self.slots = slots
        self.values = values
        self.leaves, self.tree = tree_flatten([_to_tree(v) for v in values])
        self.traced = [i for i, x in enumerate(self.leaves) if _traced(x)]

    def inputs(self) -> list:
        return [self.leaves[i] for i in self.traced]

    def bound(self, xs: tuple) -> Any:
        """Context manager: the slots hold their call-time values, with the traced leaves
        replaced by ``xs`` (the values of this run)."""
        leaves = list(self.leaves)
        for i, x in zip(self.traced, xs):
            leaves[i] = x
        trees = tree_unflatten(self.tree, leaves)
        return rebound(self.slots, [_from_tree(v, t) for v, t in zip(self.values, trees)])


def checkpoint(f: Callable) -> Callable:
    """``f`` with its intermediate activations rematerialized in backward, not stored.

    ``f`` must be deterministic: it runs again in backward. Traced values it reads from
    ambient weights, closures or partial arguments are handled as extra inputs.

    Examples:
        >>> import numpy as np
        >>> from pycograd import checkpoint, grad
        >>> block = checkpoint(lambda h: np.tanh(h * 2.0))    # activations recomputed in backward
        >>> grad(lambda x: np.sum(block(x)), 0)(np.zeros(3)).tolist()
        [2.0, 2.0, 2.0]
    """

    @functools.wraps(f)
    def checkpointed(*args: Any, **kwargs: Any) -> Any:
        fun, bound_args, bound_kwargs = _partial_inputs(f)
        args, kwargs = bound_args + args, {**bound_kwargs, **kwargs}
        hidden = _Hidden(fun)
        fun = routed(fun)  # run from pycograd's code: route it here, as grad does
        leaves, in_tree = tree_flatten((args, kwargs))
        n = len(leaves)

        def run(*xs: Any) -> Any:
            a, k = tree_unflatten(in_tree, list(xs[:n]))
            if not hidden.slots:
                return fun(*a, **k)
            with hidden.bound(xs[n:]):
                return fun(*a, **k)

        spec = OutputSpec()
        all_leaves = leaves + hidden.inputs()
        _, all_tree = tree_flatten(tuple(all_leaves))
        flat_f = packed(run, all_tree, spec)
        return unpack(checkpoint_p.bind(*all_leaves, fun=flat_f), spec)

    return checkpointed


remat = checkpoint
