"""The lowering table, and the interpreter that runs a ``Graph`` on a framework.

There is one table: each primitive's ``prim.lower[backend]`` slot (``core.primitive``).
A backend module (``backends/torch.py``, ``jax.py``, ``tf.py``, ``onnx.py``) fills it with
``register(backend, by_name=..., by_family=...)``: a rule per primitive where one is needed,
and one default per *family* (elementwise, reduction, linear, ...) that is asked for each
primitive of that family that has no rule of its own, as the jvp and batching rules are.
A primitive with neither has no lowering: ``check_lowerable`` names every such primitive
of a graph, with the backend, when the graph is lowered (compile time), before anything
runs.

A rule for torch, jax or tf is ``rule(*args, **params)`` with the node's arguments as the
framework's tensors (literals as Python values) and returns the framework's tensor: the
primitive's ``impl``, written in that framework. ``Lowered`` evaluates a graph with those
rules. The lowering starts from the captured graph: the user's Python is never run again.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pycograd.backends.errors import FrameworkMissingError, NoLoweringError, UnknownBackendError
from pycograd.core.errors import ArgumentError
from pycograd.core.primitive import REGISTRY, Primitive
from pycograd.core.symbolic import Dim
from pycograd.graph.ir import Graph, Value, eval_dim, resolve_dims

FRAMEWORKS = {"torch": ("torch", "torch"), "jax": ("jax", "jax"),
              "tf": ("tensorflow", "tf"), "onnx": ("onnx", "onnx")}
"""backend -> (the module it imports, the pycograd extra that installs it)."""

ALIASES = {"pytorch": "torch", "tensorflow": "tf", "jnp": "jax"}

FAMILY_LOWERINGS: dict[str, dict[str | None, Callable[[Primitive], Callable | None]]] = {}
"""``{backend: {family: make(prim) -> rule or None}}``: the family defaults."""

REFUSALS: dict[str, Callable[[Any], str | None]] = {}
"""``{backend: refuse(node) -> reason or None}``: the applications a backend's rule cannot
compute as numpy does (complex operands where the framework has no complex kernel, a
negative-step slice in torch), refused at compile time like a missing rule."""

STATIC_LITERALS = {"polygamma": (0,), "yn": (0,), "jv": (0,), "iv": (0,), "ive": (0,)}
"""Elementwise arguments that stay Python numbers (an order, not an operand)."""


def register(backend: str, by_name: dict[str, Callable] | None = None,
             by_family: dict[str | None, Callable[[Primitive], Callable | None]] | None = None,
             refuse: Callable[[Any], str | None] | None = None) -> None:
    """Fill the lowering table for ``backend``: ``by_name[primitive name]`` is the rule of
    that primitive, ``by_family[family](prim)`` makes the default rule of a primitive of
    that family (or returns None: no lowering); ``refuse(node)`` names why an application
    cannot be lowered (or returns None)."""
    if refuse is not None:
        REFUSALS[backend] = refuse
    for name, rule in (by_name or {}).items():
        if name not in REGISTRY:
            raise ArgumentError(f"lowering to {backend}: no primitive named {name!r}")
        REGISTRY[name].lower[backend] = rule
    FAMILY_LOWERINGS.setdefault(backend, {}).update(by_family or {})


def rule_for(prim: Primitive, backend: str) -> Callable | None:
    """The primitive's lowering to ``backend``: its own rule, else its family's default
    (then kept in ``prim.lower``), else None."""
    rule = prim.lower.get(backend)
    if rule is None:
        make = FAMILY_LOWERINGS.get(backend, {}).get(prim.family)
        rule = make(prim) if make is not None else None
        if rule is not None:
            prim.lower[backend] = rule
    return rule


def backend_name(backend: str) -> str:
    """The canonical name of ``backend``, or ``UnknownBackendError`` listing the known."""
    name = ALIASES.get(str(backend).lower(), str(backend).lower())
    if name not in FRAMEWORKS:
        known = ", ".join(repr(b) for b in FRAMEWORKS)
        raise UnknownBackendError(f"unknown backend {backend!r}: the known backends are "
                                  f"{known} (and 'mps': torch on Apple's GPU)")
    return name


def load(backend: str) -> Any:
    """Import the backend module (``pycograd.backends.<name>``), which imports its framework
    and registers its lowerings; a missing framework gives the install command."""
    name = backend_name(backend)
    module, extra = FRAMEWORKS[name]
    try:
        importlib.import_module(module)
    except ImportError as e:
        raise FrameworkMissingError(
            f"backend {name!r} needs the {module} package, which is not installed ({e}): "
            f'pip install "pycograd[{extra}]"') from None
    return importlib.import_module(f"pycograd.backends.{name}")


def unlowerable(graph: Graph, backend: str) -> dict[str, str]:
    """``{primitive name: why}`` for the nodes of ``graph`` that ``backend`` cannot lower."""
    load(backend)
    refuse = REFUSALS.get(backend, lambda node: None)
    found: dict[str, str] = {}
    for n in graph.nodes:
        if n.prim.name in found:
            continue
        if rule_for(n.prim, backend) is None:
            found[n.prim.name] = f"no rule (first at %{n.out.id} : {n.out.type})"
        else:
            why = refuse(n)
            if why:
                found[n.prim.name] = f"{why} (at %{n.out.id} : {n.out.type})"
    return found


def check_lowerable(graph: Graph, backend: str) -> None:
    """Raise ``NoLoweringError`` naming every primitive of ``graph`` with no lowering to
    ``backend`` (the backend's rules are loaded first)."""
    found = unlowerable(graph, backend)
    if found:
        missing = sorted(found)
        whys = "; ".join(f"{m}: {found[m]}" for m in missing)
        raise NoLoweringError(
            f"cannot lower {graph.name} to {backend}: no lowering of primitive"
            f"{'s' if len(missing) > 1 else ''} {', '.join(missing)} to {backend!r} "
            f"({whys}); compute it with backend=None (numpy), or add a rule with "
            "pycograd.backends.lowering.register", missing, backend)


def dim_sources(graph: Graph) -> dict[str, tuple[int, int]]:
    """``{symbolic dim name: (input position, axis)}``: where each dim's value is read."""
    found: dict[str, tuple[int, int]] = {}
    for i, v in enumerate(graph.inputs):
        for ax, d in enumerate(v.shape):
            if isinstance(d, Dim) and len(d.terms) == 1:
                (mono, coeff), = d.terms.items()
                if coeff == 1 and len(mono) == 1:
                    found.setdefault(mono[0], (i, ax))
    return found


def _has_dim(x: Any) -> bool:
    if isinstance(x, Dim):
        return True
    if isinstance(x, (tuple, list)):
        return any(_has_dim(y) for y in x)
    if isinstance(x, dict):
        return any(_has_dim(y) for y in x.values())
    return False


def promoted_literals(node: Any) -> list:
    """The node's arguments with each Python-number literal of an elementwise primitive
    made a 0-d numpy array of numpy's promoted dtype (a weak scalar: ``x32 * 2.0`` stays
    float32), so every framework sees operands of the dtypes numpy computes with."""
    if node.prim.family != "elementwise":
        return list(node.args)
    static = STATIC_LITERALS.get(node.prim.name, ())
    where = node.prim.name == "where"  # the condition is boolean, the branches promote
    operands = node.args[1:] if where else node.args
    dtypes = [a.dtype for a in operands if isinstance(a, Value) and a.dtype != bool]
    out = []
    for k, a in enumerate(node.args):
        if isinstance(a, (bool, int, float, complex, np.generic)) and not isinstance(a, Dim) \
                and k not in static:
            if where and k == 0:
                dt = np.dtype(bool)
            else:
                dt = np.result_type(*dtypes, a) if dtypes else np.result_type(a)
            a = np.asarray(a, dtype=dt)
        out.append(a)
    return out


class Lowered:
    """``graph`` over a framework: ``lowered(*input leaves) -> list of outputs``.

    ``convert(numpy array)`` makes a framework constant (the graph's constants and the
    promoted literals, converted once); ``size(x, axis)`` reads a dimension of an input
    (symbolic dims are read off the inputs at each call)."""

    def __init__(self, graph: Graph, backend: str, convert: Callable[[Any], Any],
                 size: Callable[[Any, int], Any] = lambda x, ax: x.shape[ax]):
        check_lowerable(graph, backend)
        self.graph, self.backend, self.size = graph, backend, size
        slot: dict[int, int] = {}
        env: list = []

        def new_slot(vid: int, value: Any = None) -> int:
            slot[vid] = len(env)
            env.append(value)
            return slot[vid]

        self.in_slots = [new_slot(v.id) for v in graph.inputs]
        for c in graph.consts:
            new_slot(c.id, convert(np.asarray(c.const)))
        steps = []
        for node in graph.nodes:
            fetch = []
            for a in promoted_literals(node):
                if isinstance(a, Value):
                    fetch.append((0, slot[a.id]))
                elif isinstance(a, np.ndarray):
                    fetch.append((0, new_slot(-len(env) - 1, convert(a))))
                elif isinstance(a, Dim):
                    fetch.append((2, a))
                else:
                    fetch.append((1, a))
            steps.append((rule_for(node.prim, backend), fetch, node.params,
                          _has_dim(node.params), new_slot(node.out.id)))
        self.env, self.steps = env, steps
        self.out_slots = [slot[o.id] for o in graph.outputs]
        self.dims = dim_sources(graph)

    def __call__(self, *leaves: Any) -> list:
        env = list(self.env)
        for s, x in zip(self.in_slots, leaves):
            env[s] = x
        dims = {n: self.size(leaves[i], ax) for n, (i, ax) in self.dims.items()}
        for rule, fetch, params, has_dim, out in self.steps:
            args = [env[v] if kind == 0 else v if kind == 1 else eval_dim(v, dims)
                    for kind, v in fetch]
            env[out] = rule(*args, **(resolve_dims(params, dims) if has_dim else params))
        return [env[s] for s in self.out_slots]


def numpy_dtype(dtype: Any) -> np.dtype:
    """A framework dtype as numpy's (``torch.float64``, a jax dtype, ``tf.float32``)."""
    as_np = getattr(dtype, "as_numpy_dtype", None)  # tensorflow
    if as_np is not None:
        return np.dtype(as_np)
    if type(dtype).__module__ == "torch":
        return np.dtype(str(dtype).rpartition(".")[2])
    return np.dtype(dtype)


def flat_names(values: Sequence[Value]) -> list[str]:
    return [v.name or f"x{v.id}" for v in values]
