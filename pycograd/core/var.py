"""``Var``, the reverse-mode tape's value, its node, the interpreter, and backward.

A ``Var`` is what the user holds: ``.value``, ``.grad`` and the node that made it. A
node (a small list: ``PRIM`` ... ``CT`` below) records the primitive, its parameters, which
arguments were ``Var``s of the same tape (their nodes are its parents), and only the
residuals its VJP reads: ``exp`` keeps its output, ``sin`` its input, ``add`` only the
shapes, ``matmul`` both operands (what a primitive's rules read is worked out once, in
``core.primitive.residual_modes``). A node holds its own output only if its VJP reads it,
so an activation lives only as long as the user's ``Var`` or a later node that reads it:
the lean tape. Constants never enter the tape, and backward
calls a VJP only for arguments that are parents, so ``X @ w`` with data ``X`` never
computes a gradient for ``X``. Nodes are numbered as they are created, which is a
topological order: backward sorts the reachable nodes by number and walks them once,
without recursion. The graph has no reference cycles (a leaf's node refers to its ``Var``
weakly), so it is freed by refcounting; ``backward`` also releases each node's residuals as
soon as its VJP has run.
"""

from __future__ import annotations

import sys
import weakref
from itertools import count
from operator import itemgetter
from typing import Any

import numpy as np

from pycograd.core.errors import InputRuntimeError, NonScalarOutputError, ResidualError
from pycograd.core.primitive import NONE, UNSAVED, VALUE, Joint, Primitive, Shaped
from pycograd.core.trace import Trace, Tracer, apply_impl, bind

_seq = count()


class ReverseTrace(Trace):
    """The tape interpreter: computes one level down and records a node."""

    __slots__ = ()

    def process(self, prim: Primitive, args: tuple, params: dict) -> Any:
        # ``lower`` + ``node`` written out in one loop: this is the eager hot path. Lower-level
        # tracers among the values go through ``bind``; plain arrays straight to ``impl``.
        vals = []
        parents = []
        lower = False
        for i, a in enumerate(args):
            if a.__class__ is Var and a._trace is self:
                parents.append((i, a._node))
                a = a.value
            if not lower and a.__class__ is not np.ndarray and isinstance(a, Tracer):
                lower = True
            vals.append(a)
        ans = bind(prim, vals, params) if lower else apply_impl(prim, vals, params)
        if prim.differentiable and ans.dtype.kind in "fcV":
            return Var(ans, self, prim, vals, params, parents)
        return ans

    def lower(self, args: tuple) -> tuple[list, list]:
        """The values of ``args`` one level down, and which of them are this tape's (as
        ``(position, node)`` pairs)."""
        vals, parents = [], []
        for i, a in enumerate(args):
            if a.__class__ is Var and a._trace is self:
                parents.append((i, a._node))
                a = a.value
            vals.append(a)
        return vals, parents

    def node(self, prim: Primitive, out: Any, vals: list, params: dict, parents: list) -> Any:
        """Record ``out`` as made by ``prim`` (unless nothing of this tape went in, or it
        cannot carry a gradient)."""
        if not parents or np.result_type(out).kind not in "fcV":
            return out
        return Var(out, self, prim, vals, params, parents)

    # process_custom_vjp / process_custom_jvp are installed by pycograd.transforms.custom,
    # the layer that defines custom rules (the core imports nothing above it).


EAGER = ReverseTrace(0)


# A tape node is a list (the cheapest object to make on the eager hot path), one per
# recorded primitive application, holding what backward needs and nothing more:
#   [PRIM, ARGS, PARAMS, PARENTS, ANS, SEQ, CT]
# ARGS holds, per argument, its value if a VJP reads it, a ``Shaped`` stand-in if the VJPs
# read only its shape and dtype, ``UNSAVED`` if none reads it; ANS likewise for the output.
# PARENTS is ``[(argument position, parent node)]``, SEQ the creation number (a topological
# order), CT the cotangent accumulated during backward. A leaf's node has PRIM None, no
# parents, and in ANS a weak reference to its ``Var``, which receives the cotangent.
PRIM, ARGS, PARAMS, PARENTS, ANS, SEQ, CT = range(7)


# Arrays read for their shape only are kept whole below this size: a stand-in would cost
# more time than the bytes it frees. The sweep sets it to 0, so that every shape-only
# residual is a stand-in there and a rule that reads its value fails.
SHAPED_FROM_BYTES = 4096


def drop_unread(args: list, drop: tuple, rest: int, named: int) -> None:
    """Replace, in the node's own ``args``, the arguments its VJPs do not read by
    ``UNSAVED`` and those they read for shape and dtype only by ``Shaped`` stand-ins
    (numbers and small arrays stay). ``drop``, ``rest``, ``named``: ``prim.residuals``."""
    n = len(args)
    for i, m in drop if rest is VALUE else _past(drop, rest, named, n):
        if i < n:
            if m is NONE:
                args[i] = UNSAVED
            else:
                a = args[i]
                if a.__class__ is np.ndarray:
                    if a.nbytes >= SHAPED_FROM_BYTES:
                        args[i] = Shaped(a)
                elif isinstance(a, Tracer):
                    args[i] = Shaped(a)


def _past(drop: tuple, rest: int, named: int, n: int) -> list:
    """``drop`` extended to the variadic arguments past the ``named`` ones."""
    return list(drop) + [(i, rest) for i in range(named, n)]


class Var(Tracer):
    """A value on the reverse-mode tape: ``.value``, ``.grad``, ``.backward()``.

    ``Var(np.array(2.0))`` makes a stand-alone leaf on the eager tape, for the one-slide
    view of backprop; the transforms (``grad`` & co.) make their own on a fresh tape.

    Examples:
        >>> import numpy as np
        >>> from pycograd import Var
        >>> x = Var(np.array([1.0, 2.0]))
        >>> y = np.sum(x * x)                                  # numpy on a Var records the tape
        >>> y.backward()
        >>> x.grad.tolist()
        [2.0, 4.0]
    """

    __slots__ = ("value", "grad", "_node", "__weakref__")

    def __init__(self, value: Any, trace: ReverseTrace | None = None, prim: Primitive | None = None,
                 args: list | None = None, params: dict | None = None, parents: list = ()):
        if trace is None:
            trace = EAGER
            if not isinstance(value, (np.ndarray, np.generic, Tracer)):
                value = np.asarray(value, dtype=np.result_type(value, np.float64))
        self._trace = trace
        self.value = value
        self.grad = None
        if prim is None:
            self._node = [None, None, None, (), weakref.ref(self), next(_seq), None]
            return
        modes = prim.residuals  # what the node keeps: see ``core.primitive.residual_modes``
        if len(parents) == 1 and prim.residuals_one is not None:
            modes = prim.residuals_one[parents[0][0]]
        if modes is None:
            self._node = [prim, args, params, parents, value, next(_seq), None]
            return
        m, drop, rest, named = modes
        if rest is not VALUE:
            drop_unread(args, drop, rest, named)
        elif drop:  # ``drop_unread`` inlined for named arguments: the eager hot path
            n = len(args)
            for i, how in drop:
                if i < n:
                    if how is NONE:
                        args[i] = UNSAVED
                    else:
                        a = args[i]
                        if a.__class__ is np.ndarray:
                            if a.nbytes >= SHAPED_FROM_BYTES:
                                args[i] = Shaped(a)
                        elif isinstance(a, Tracer):
                            args[i] = Shaped(a)
        self._node = [prim, args, params, parents,
                      value if m is VALUE else UNSAVED if m is NONE else Shaped(value),
                      next(_seq), None]

    @property
    def shape(self) -> tuple:
        return self.value.shape

    @property
    def dtype(self) -> np.dtype:
        return self.value.dtype

    def __bool__(self) -> bool:
        return bool(self.value)

    def backward(self, g: Any = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``.grad`` of every leaf ``Var`` it depends on."""
        if g is None:
            if np.ndim(self.value) != 0:
                raise NonScalarOutputError(
                    f"backward() needs a scalar, got shape {np.shape(self.value)}; "
                    "pass the output cotangent: v.backward(g) with g.shape == v.shape")
            g = np.ones_like(self.value)
        for leaf, ct in backward([self], [g], retain=retain_graph, leaves=True).values():
            leaf.grad = ct if leaf.grad is None else leaf.grad + ct

    def __repr__(self) -> str:
        return f"Var({self.value!r})"


_by_seq = itemgetter(SEQ)


def _add_into(old: Any, ct: Any) -> bool:
    """Add ``ct`` into the accumulated cotangent ``old`` in place, when ``old`` is a numpy
    array that nothing else can see: it owns its memory and the only references to it are
    the node's slot and the caller's local (PyTorch accumulates its gradient buffers in
    place under the same condition). Then a fan-out (``h * h``, a residual connection)
    costs no third array. Returns whether it did."""
    if old.__class__ is not np.ndarray or ct.__class__ is not np.ndarray or \
            sys.getrefcount(old) != _SOLE or old.base is not None or \
            old.shape != ct.shape or old.dtype != ct.dtype or not old.flags.writeable:
        return False
    np.add(old, ct, out=old)
    return True


def _sole_count() -> int:
    """What ``sys.getrefcount`` says inside ``_add_into`` of an array held only by a list
    slot and the caller's local, as ``backward`` holds it (measured, since interpreters
    count borrowed references differently)."""
    seen = []

    def probe(old: Any, ct: Any) -> bool:
        seen.append(sys.getrefcount(old))
        return False
    slot = [np.zeros(1)]
    old = slot[0]
    probe(old, None)
    return seen[0]


_SOLE = _sole_count()


def _reachable(roots: list[list]) -> list[list]:
    """Every node below ``roots``, latest first (a reverse topological order)."""
    nodes: list[list] = []
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        nodes.append(v)
        parents = v[PARENTS]
        if parents is None:
            raise InputRuntimeError(
                "backward through a graph that was already freed by an earlier backward; "
                "pass retain_graph=True to the first backward() to keep it")
        for _, p in parents:
            if id(p) not in seen:
                stack.append(p)
    nodes.sort(key=_by_seq, reverse=True)
    return nodes


def backward(roots: list, cts: list[Any], retain: bool = False,
             leaves: bool = False) -> dict[int, Any]:
    """Propagate output cotangents ``cts`` back through the tape below ``roots`` (``Var``s,
    or their nodes: a caller that lets go of a root ``Var`` before calling frees its value
    as soon as the root's VJP has run, instead of after the whole pass).

    Returns ``{id(leaf): cotangent}`` for every reached leaf ``Var`` (one made without a
    primitive), or ``{id(leaf): (leaf, cotangent)}`` with ``leaves=True``. Unless
    ``retain``, each node's residuals are released as soon as its VJP has run.
    """
    roots = [r._node if r.__class__ is Var else r for r in roots]
    nodes = _reachable(roots)
    out: dict[int, Any] = {}
    try:
        for r, g in zip(roots, cts):
            r[CT] = g if r[CT] is None else r[CT] + g
        for k, v in enumerate(nodes):
            prim, args, params, parents, ans, _, g = v
            v[CT] = None
            if not parents:
                var = ans() if prim is None and ans is not None else None
                if g is not None and var is not None:
                    out[id(var)] = (var, g) if leaves else g
                continue
            if g is not None:
                vjps = prim.vjps
                try:
                    if vjps.__class__ is Joint:
                        joint = vjps.rule(tuple(i for i, _ in parents), g, ans, *args, **params)
                    for i, p in parents:
                        if vjps.__class__ is Joint:
                            ct = joint[i]
                        else:
                            rule = vjps[i]
                            if rule is None:
                                continue
                            ct = rule(g, ans, *args, **params)
                        if ct is not None:
                            old = p[CT]
                            if old is None:
                                p[CT] = ct
                            elif not _add_into(old, ct):
                                p[CT] = old + ct
                except ResidualError as e:
                    raise ResidualError(f"{prim.name}: {e}") from None
            # the locals would otherwise hold this node's arrays through the next VJP
            g = ct = old = joint = args = ans = None
            if not retain:  # drop the node: its residuals can be freed now
                v[PRIM] = v[ARGS] = v[PARAMS] = v[PARENTS] = v[ANS] = None
                nodes[k] = None
    finally:
        for v in nodes:
            if v is not None:
                v[CT] = None
    return out
