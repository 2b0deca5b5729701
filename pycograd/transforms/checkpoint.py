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

A *policy* keeps some of ``f``'s intermediates after all, so that backward recomputes
only the rest: ``"dots"`` keeps the outputs of matrix products (the costly ops),
a tuple of names keeps the values tagged with ``checkpoint_name(x, name)``. The forward
then runs ``f`` under ``_SaveTrace``, which records the kept values in order, and the
recompute runs it under ``_ReplayTrace``, which records each kept op on the tape with its
saved output instead of computing it again. ``checkpoint_sequential`` checkpoints a
list of layers in segments.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pycograd.core.errors import ArgumentTypeError, CheckpointPolicyError, PycogradError
from pycograd.core.primitive import Joint, Primitive, primitive
from pycograd.core.pytree import tree_flatten, tree_unflatten
from pycograd.core.trace import Trace, Tracer, bind, new_trace
from pycograd.core.tracebacks import api_boundary
from pycograd.core.var import ReverseTrace, Var, backward
from pycograd.routing.ambient import Group, ambient_slots, plan, rebound
from pycograd.routing.transparent import routed
from pycograd.transforms.packing import OutputSpec, packed, unpack


class _Held(Tracer):
    """A value inside a checkpointed function run under a policy (``val``: one level
    down; ``op``: the number of the op that made it, None for an input)."""

    __slots__ = ("val", "op")

    def __init__(self, trace: Trace, val: Any, op: int | None = None):
        self._trace = trace
        self.val = val
        self.op = op

    @property
    def shape(self) -> tuple:
        return np.shape(self.val)

    @property
    def dtype(self) -> np.dtype:
        return np.result_type(self.val)

    def __bool__(self) -> bool:
        return bool(self.val)


def _down(trace: Trace, args: Any) -> list:
    return [a.val if a.__class__ is _Held and a._trace is trace else a for a in args]


def _up(trace: Trace, out: Any) -> Any:
    return out.val if out.__class__ is _Held and out._trace is trace else out


class _SaveTrace(Trace):
    """The forward of a checkpointed function under a policy: each op runs one level
    down and is numbered; ``kept[n] = (name, output)`` for each op ``n`` the policy keeps.
    A kept ``checkpoint_name`` keeps the op that made the tagged value (so the replay
    skips that op, not the identity)."""

    __slots__ = ("save", "kept", "names")

    def __init__(self, level: int, save: Callable, kept: dict):
        super().__init__(level)
        self.save, self.kept, self.names = save, kept, []

    def process(self, prim: Primitive, args: tuple, params: dict) -> Any:
        n = len(self.names)
        self.names.append(prim.name)
        out = bind(prim, _down(self, args), params)
        if self.save(prim, params):
            a = args[0] if args else None
            if prim is checkpoint_name_p and a.__class__ is _Held and a._trace is self and \
                    a.op is not None:
                self.kept[a.op] = (self.names[a.op], a.val)
            else:
                self.kept[n] = (prim.name, out)
        return _Held(self, out, n)


class _ReplayTrace(Trace):
    """The recompute under a policy, one level above its tape: each op the forward kept
    is recorded on the tape with its kept output (its inputs, recomputed, are what its VJP
    reads); every other op runs again."""

    __slots__ = ("tape", "kept", "count")

    def __init__(self, level: int, tape: ReverseTrace, kept: dict):
        super().__init__(level)
        self.tape, self.kept, self.count = tape, kept, 0

    def process(self, prim: Primitive, args: tuple, params: dict) -> Any:
        n = self.count
        self.count += 1
        vals = _down(self, args)
        kept = self.kept.get(n)
        if kept is None:
            return _Held(self, bind(prim, vals, params))
        if kept[0] != prim.name:
            raise PycogradError(
                f"checkpoint: op {n} of the recompute is {prim.name}, the forward's was "
                f"{kept[0]}; the checkpointed function must run the same ops each time (no "
                "randomness or data-dependent control flow that changes between runs)")
        lowered, parents = self.tape.lower(vals)
        return _Held(self, self.tape.node(prim, kept[1], lowered, params, parents))


def _recompute(wanted: tuple, g: Any, ans: Any, *args: Any, fun: Callable,
               save: Callable | None = None, store: list | None = None) -> list:
    """Run ``fun`` again on a fresh tape and pull ``g`` back through it, once (the tape is
    released as backward passes). Inputs it does not reach get None, not zeros, so unused
    hidden inputs (ambient weights another block reads) cost nothing. Under a policy, the
    values the forward kept (``store``) are replayed instead of recomputed, when they are
    this very run's: the forward ran this ``fun`` on these plain arrays (a node of an
    inner tape, whose inputs are traced one level down, shares the store of the node
    below it and recomputes instead)."""
    with new_trace(ReverseTrace) as trace:
        full = list(args)
        lifted = {}
        for i in wanted:
            full[i] = lifted[i] = Var(args[i], trace)
        if save is not None and store and store[0] is fun and \
                not any(isinstance(a, Tracer) for a in args):  # the forward's own inputs
            with new_trace(_ReplayTrace, trace, store[1]) as replay:
                out = _up(replay, fun(*[_Held(replay, x) for x in full]))
            if replay.count != store[2]:
                raise PycogradError(
                    f"checkpoint: the recompute ran {replay.count} ops, the forward "
                    f"{store[2]}; the checkpointed function must run the same ops each time "
                    "(no randomness or data-dependent control flow that changes between runs)")
        else:
            out = fun(*full)
        del full
    cts: list = [None] * len(args)
    if not (isinstance(out, Var) and out._trace is trace):
        return cts
    root = out._node
    del out  # the recomputed output leaves with its node, not after the whole pass
    found = backward([root], [g])
    del root
    for i, leaf in lifted.items():
        ct = found.get(id(leaf))
        if ct is not None and np.result_type(ct) != np.result_type(args[i]):
            ct = ct.astype(np.result_type(args[i]))
        cts[i] = ct
    return cts


def _forward(*args: Any, fun: Callable, save: Callable | None = None,
             store: list | None = None) -> Any:
    """Run ``fun`` below the tape. A result traced above every input means ``fun`` read a
    traced value it was not given (the tape would record its ops after all). Under a
    policy, on plain arrays, the values it keeps go to ``store`` (after ``fun`` itself,
    which the recompute checks: a transform that re-binds the primitive with another
    function, as vmap does, leaves nothing it could misuse)."""
    if save is None or store is None or any(isinstance(a, Tracer) for a in args):
        out = fun(*args)
    else:
        kept: dict = {}
        with new_trace(_SaveTrace, save, kept) as trace:
            out = _up(trace, fun(*[_Held(trace, a) for a in args]))
        store[:] = [fun, kept, len(trace.names)]
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


# The primitives whose outputs the "dots" policy keeps: the matrix products.
DOTS = frozenset({"matmul", "einsum"})

checkpoint_name_p = primitive("checkpoint_name", lambda x, name: x,
                              lambda g, ans, x, name: g, family="elementwise")


def checkpoint_name(x: Any, name: str) -> Any:
    """``x`` itself, tagged ``name``: a ``checkpoint(f, policy=(name, ...))`` keeps the
    tagged values of ``f`` instead of recomputing them in backward.

    Examples:
        >>> import numpy as np
        >>> from pycograd import checkpoint, checkpoint_name, grad
        >>> def block(h):
        ...     z = checkpoint_name(np.sin(h), "z")                   # kept, not recomputed
        ...     return np.tanh(z)
        >>> f = checkpoint(block, policy=("z",))
        >>> g = grad(lambda x: np.sum(f(x)), 0)(np.zeros(2))
        >>> g.tolist()
        [1.0, 1.0]
    """
    return checkpoint_name_p.bind(x, name=name)


def _saver(policy: Any) -> Callable[[Primitive, dict], bool] | None:
    """The test ``save(prim, params)`` of a policy, None when nothing is kept."""
    if policy is None or policy == "nothing":
        return None
    if policy == "dots":
        return lambda prim, params: prim.name in DOTS
    if isinstance(policy, (tuple, list, set, frozenset)) and \
            all(isinstance(n, str) for n in policy):
        names = frozenset(policy)
        return lambda prim, params: prim is checkpoint_name_p and params["name"] in names
    if callable(policy) and not isinstance(policy, str):
        return lambda prim, params: bool(policy(prim.name, params))
    raise CheckpointPolicyError(
        f"checkpoint: unknown policy {policy!r}; use None or 'nothing' (keep nothing), "
        "'dots' (keep matrix products), a tuple of checkpoint_name names, or a function "
        "(primitive name, params) -> bool")


def checkpoint(f: Callable, policy: Any = None) -> Callable:
    """``f`` with its intermediate activations rematerialized in backward, not stored.

    ``f`` must be deterministic: it runs again in backward. Traced values it reads from
    ambient weights, closures or partial arguments are handled as extra inputs.

    ``policy`` says what is kept after all (the rest is recomputed): ``None`` or
    ``"nothing"``; ``"dots"``, the outputs of matrix products (``@``, ``einsum``), so
    backward recomputes only the cheap elementwise work; a tuple of names, the values
    tagged with ``checkpoint_name(x, name)``; or a function ``(primitive name, params) ->
    bool``.

    Examples:
        >>> import numpy as np
        >>> from pycograd import checkpoint, grad
        >>> block = checkpoint(lambda h: np.tanh(h * 2.0))    # activations recomputed in backward
        >>> grad(lambda x: np.sum(block(x)), 0)(np.zeros(3)).tolist()
        [2.0, 2.0, 2.0]
        >>> w = np.eye(3)
        >>> layer = checkpoint(lambda h: np.tanh(h @ w), policy="dots")   # h @ w kept
        >>> grad(lambda x: np.sum(layer(x)), 0)(np.zeros(3)).tolist()
        [1.0, 1.0, 1.0]
    """
    save = _saver(policy)

    @api_boundary
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
        params: dict = {"fun": flat_f}
        if save is not None:
            params.update(save=save, store=[])
        return unpack(checkpoint_p.bind(*all_leaves, **params), spec)

    return checkpointed


remat = checkpoint


def _compose(fs: Sequence[Callable]) -> Callable:
    """``fs`` applied in order, as nested closures (which ``checkpoint`` and ``ParamDict``
    look through to find the traced values and ambient weights the layers read)."""
    if len(fs) == 1:
        return fs[0]
    first, rest = fs[0], _compose(fs[1:])

    def composed(x: Any) -> Any:
        return rest(first(x))
    return composed


def segment_bounds(n: int, segments: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of ``segments`` consecutive runs covering ``range(n)``, as even as
    can be, the longer ones first."""
    size, extra = divmod(n, segments)
    bounds, start = [], 0
    for k in range(segments):
        stop = start + size + (k < extra)
        bounds.append((start, stop))
        start = stop
    return bounds


def checkpoint_sequential(fs: Sequence[Callable], segments: int,
                          policy: Any = None) -> Callable:
    """The layers ``fs`` applied in order, ``x -> fs[-1](... fs[0](x))``, in ``segments``
    consecutive segments of which all but the last are checkpointed: backward keeps only
    each segment's input and recomputes one segment at a time, so ``sqrt(len(fs))``
    segments hold about ``2 sqrt(L)`` activations instead of ``L``, for one extra forward.
    Segments are as even as can be, the longer ones first (``segment_bounds``); the last
    is not checkpointed, as in ``torch.utils.checkpoint.checkpoint_sequential``, since
    backward uses its activations at once. ``policy`` is ``checkpoint``'s.
    Layers read their weights as ``checkpoint`` allows (closures, partial arguments,
    ``ParamDict``); it composes with ``grad``, ``vmap``, ``jvp`` and ``weights.grad``.

    Examples:
        >>> import numpy as np
        >>> from pycograd import checkpoint_sequential, grad
        >>> ws = [np.eye(2) * 0.5 for _ in range(4)]
        >>> layers = [lambda h, w=w: np.tanh(h @ w) for w in ws]
        >>> net = checkpoint_sequential(layers, 2)             # two segments of two layers
        >>> g = grad(lambda x: np.sum(net(x)), 0)(np.zeros(2))
        >>> g.tolist()
        [0.0625, 0.0625]
    """
    fs = list(fs)
    if not fs or isinstance(segments, bool) or not isinstance(segments, int) or \
            not 1 <= segments <= len(fs):
        raise CheckpointPolicyError(
            f"checkpoint_sequential: segments={segments!r} for {len(fs)} layers; pass an "
            f"int from 1 to {max(len(fs), 1)}")
    parts = []
    for k, (start, stop) in enumerate(segment_bounds(len(fs), segments)):
        block = _compose(fs[start:stop])
        parts.append(block if k == segments - 1 else checkpoint(block, policy))
    return _compose(parts)  # closures all the way down: ParamDict finds the layers' reads
