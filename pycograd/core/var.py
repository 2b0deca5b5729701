"""``Var``, the reverse-mode tape node, its interpreter, and backward.

A ``Var`` records the primitive that made it, the argument values one level down, and
which arguments were ``Var``s of the same tape (its parents). Constants never enter the
tape, and backward calls a VJP only for arguments that are parents, so ``X @ w`` with data
``X`` never computes a gradient for ``X``. Nodes are numbered as they are created, which
is a topological order: backward sorts the reachable nodes by number and walks them once,
without recursion. The graph has no reference cycles, so it is freed by refcounting as
soon as the last node is dropped; ``backward`` also releases each node as it passes.
"""

from __future__ import annotations

from itertools import count
from operator import attrgetter
from typing import Any

import numpy as np

from pycograd.core.errors import InputRuntimeError, NonScalarOutputError
from pycograd.core.primitive import Joint, Primitive
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
                parents.append((i, a))
                a = a.value
            if not lower and a.__class__ is not np.ndarray and isinstance(a, Tracer):
                lower = True
            vals.append(a)
        ans = bind(prim, vals, params) if lower else apply_impl(prim, vals, params)
        if prim.differentiable and ans.dtype.kind in "fcV":
            return Var(ans, self, prim, vals, params, parents)
        return ans

    def lower(self, args: tuple) -> tuple[list, list]:
        """The values of ``args`` one level down, and which of them are this tape's."""
        vals, parents = [], []
        for i, a in enumerate(args):
            if a.__class__ is Var and a._trace is self:
                parents.append((i, a))
                a = a.value
            vals.append(a)
        return vals, parents

    def node(self, prim: Primitive, out: Any, vals: list, params: dict, parents: list) -> Any:
        """Record ``out`` as made by ``prim`` (unless nothing of this tape went in, or it
        cannot carry a gradient)."""
        if not parents or np.result_type(out).kind not in "fcV":
            return out
        return Var(out, self, prim, vals, params, parents)

    def process_custom_vjp(self, fun: Any, fwd: Any, bwd: Any, args: tuple) -> Any:
        from pycograd.transforms.custom import reverse_custom_vjp

        return reverse_custom_vjp(self, fun, fwd, bwd, args)

    def process_custom_jvp(self, fun: Any, rule: Any, args: tuple) -> Any:
        from pycograd.transforms.custom import reverse_custom_jvp

        return reverse_custom_jvp(self, fun, rule, args)


EAGER = ReverseTrace(0)


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

    __slots__ = ("value", "grad", "_prim", "_args", "_params", "_parents", "_seq", "_ct")

    def __init__(self, value: Any, trace: ReverseTrace | None = None, prim: Primitive | None = None,
                 args: list | None = None, params: dict | None = None, parents: list = ()):
        if trace is None:
            trace = EAGER
            if not isinstance(value, (np.ndarray, np.generic, Tracer)):
                value = np.asarray(value, dtype=np.result_type(value, np.float64))
        self._trace = trace
        self.value = value
        self.grad = None
        self._prim = prim
        self._args = args
        self._params = params
        self._parents = parents
        self._seq = next(_seq)
        self._ct = None

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
        for node, ct in backward([self], [g], retain=retain_graph, leaves=True).values():
            node.grad = ct if node.grad is None else node.grad + ct

    def __repr__(self) -> str:
        return f"Var({self.value!r})"


_by_seq = attrgetter("_seq")


def _reachable(roots: list[Var]) -> list[Var]:
    """Every node below ``roots``, latest first (a reverse topological order)."""
    nodes: list[Var] = []
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        nodes.append(v)
        parents = v._parents
        if parents is None:
            raise InputRuntimeError(
                "backward through a graph that was already freed by an earlier backward; "
                "pass retain_graph=True to the first backward() to keep it")
        for _, p in parents:
            if id(p) not in seen:
                stack.append(p)
    nodes.sort(key=_by_seq, reverse=True)
    return nodes


def backward(roots: list[Var], cts: list[Any], retain: bool = False,
             leaves: bool = False) -> dict[int, Any]:
    """Propagate output cotangents ``cts`` back through the tape below ``roots``.

    Returns ``{id(leaf): cotangent}`` for every reached leaf (a ``Var`` with no parents),
    or ``{id(leaf): (leaf, cotangent)}`` with ``leaves=True``. Unless ``retain``, each
    node is released as soon as its cotangent has been passed on.
    """
    nodes = _reachable(roots)
    out: dict[int, Any] = {}
    try:
        for r, g in zip(roots, cts):
            r._ct = g if r._ct is None else r._ct + g
        for k, v in enumerate(nodes):
            g = v._ct
            v._ct = None
            parents = v._parents
            if not parents:
                if g is not None:
                    out[id(v)] = (v, g) if leaves else g
                continue
            if g is not None:
                vjps, args, params, ans = v._prim.vjps, v._args, v._params, v.value
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
                        old = p._ct
                        p._ct = ct if old is None else old + ct
                # the locals would otherwise hold this node's arrays through the next VJP
                g = ct = old = joint = args = ans = None
            if not retain:  # drop the node: its value and inputs can be freed now
                v._args = v._params = v._prim = v._parents = None
                nodes[k] = None
    finally:
        for v in nodes:
            if v is not None:
                v._ct = None
    return out
