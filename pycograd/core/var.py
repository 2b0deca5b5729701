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
from typing import Any

import numpy as np

from pycograd.core.primitive import Primitive
from pycograd.core.trace import Trace, Tracer

_seq = count()


class ReverseTrace(Trace):
    """The tape interpreter: computes one level down and records a node."""

    __slots__ = ()

    def process(self, prim: Primitive, args: tuple, params: dict) -> Any:
        vals = []
        parents = []
        for i, a in enumerate(args):
            if a.__class__ is Var and a._trace is self:
                vals.append(a.value)
                parents.append((i, a))
            else:
                vals.append(a)
        ans = prim.bind(*vals, **params)
        if not prim.differentiable or not _inexact(ans):
            return ans
        return Var(ans, self, prim, vals, params, parents)


def _inexact(x: Any) -> bool:
    dt = getattr(x, "dtype", None)
    return dt is not None and dt.kind in "fcV"


EAGER = ReverseTrace(0)


class Var(Tracer):
    """A value on the reverse-mode tape: ``.value``, ``.grad``, ``.backward()``.

    ``Var(np.array(2.0))`` makes a stand-alone leaf on the eager tape, for the one-slide
    view of backprop; the transforms (``grad`` & co.) make their own on a fresh tape.
    """

    __slots__ = ("value", "grad", "_prim", "_args", "_params", "_parents", "_seq")

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

    def backward(self, g: Any = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``.grad`` of every leaf ``Var`` it depends on."""
        if g is None:
            if np.ndim(self.value) != 0:
                from pycograd.core.errors import NonScalarOutputError

                raise NonScalarOutputError(
                    f"backward() needs a scalar, got shape {np.shape(self.value)}; "
                    "pass the output cotangent: v.backward(g) with g.shape == v.shape")
            g = np.ones_like(self.value)
        for node, ct in backward([self], [g], retain=retain_graph, leaves=True).values():
            node.grad = ct if node.grad is None else node.grad + ct

    def __repr__(self) -> str:
        return f"Var({self.value!r})"


def backward(roots: list[Var], cts: list[Any], retain: bool = False,
             leaves: bool = False) -> dict[int, Any]:
    """Propagate output cotangents ``cts`` back through the tape below ``roots``.

    Returns ``{id(leaf): cotangent}`` for every reached leaf (a ``Var`` with no parents),
    or ``{id(leaf): (leaf, cotangent)}`` with ``leaves=True``. Unless ``retain``, each
    node is released as soon as its cotangent has been passed on.
    """
    nodes: list[Var] = []
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        nodes.append(v)
        if v._parents is None:
            raise RuntimeError(
                "backward through a graph that was already freed by an earlier backward; "
                "pass retain_graph=True to the first backward() to keep it")
        for _, p in v._parents:
            if id(p) not in seen:
                stack.append(p)
    nodes.sort(key=_by_seq, reverse=True)

    grads: dict[int, Any] = {}
    for r, g in zip(roots, cts):
        k = id(r)
        grads[k] = g if k not in grads else grads[k] + g
    out: dict[int, Any] = {}
    for v in nodes:
        g = grads.pop(id(v), None)
        parents = v._parents
        if not parents:
            if g is not None:
                out[id(v)] = (v, g) if leaves else g
            continue
        if g is not None:
            prim, args, params, ans = v._prim, v._args, v._params, v.value
            for i, p in parents:
                rule = prim.vjps[i]
                if rule is None:
                    continue
                ct = rule(g, ans, *args, **params)
                if ct is None:
                    continue
                k = id(p)
                old = grads.get(k)
                grads[k] = ct if old is None else old + ct
        if not retain:
            v._args = v._params = v._prim = v._parents = None
    return out


def _by_seq(v: Var) -> int:
    return v._seq


Var.shape = property(lambda self: self.value.shape)
Var.dtype = property(lambda self: self.value.dtype)
Var.__bool__ = lambda self: bool(self.value)
