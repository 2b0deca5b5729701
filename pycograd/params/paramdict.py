"""``ParamDict``: named, nested parameters with frozen / tied / buffer entries, gradients of
an ambient objective, in-place SGD, and non-pickle save / load.

Entries are stored flat under dotted names (``"enc.w"``); each name maps to a ``Param``
(the array and its kind), and tied names map to the *same* ``Param``, so one array lives
under both names and its gradient is the sum of both uses. The first non-tied name of an
entry is its canonical name: the one ``trainable()``, ``state_dict()`` and ``save`` use.
Arrays passed in are kept, not copied, and updated in place by ``step`` / ``assign`` /
``load_into``, so every reference to them (a module-level ``w1``, a name bound by
``bind_globals``) sees the trained values.
"""

from __future__ import annotations

import functools
import keyword
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from pycograd.backends.arrays.placed import DeviceArray
from pycograd.core.dtypes import is_float
from pycograd.core.errors import (
    ArgumentError,
    ArgumentTypeError,
    GradientMismatchError,
    MissingAttributeError,
    MissingKeyError,
    NonScalarOutputError,
    ParamLoadError,
)
from pycograd.core.pytree import register_pytree_node
from pycograd.core.trace import Tracer
from pycograd.core.tracebacks import api_boundary
from pycograd.params import serialize
from pycograd.params.markers import Marked
from pycograd.routing.ambient import Group, bound, plan
from pycograd.routing.transparent import routed
from pycograd.transforms.grad import value_and_grad


class Param:
    """One stored value and its kind (``"param"``, ``"frozen"`` or ``"buffer"``).

    ``value`` is the live value: while ``weights.bind`` (so ``weights.grad``) is active it
    is the bound (traced) value, so that every read path (``weights["w"]``, ``weights.w``,
    ``items()``, a group, ``entry("w").value``) sees what the bare name ``w`` sees and none
    can read the stored array and silently lose the gradient. ``stored`` is the array."""

    __slots__ = ("stored", "kind", "live")

    def __init__(self, value: Any, kind: str):
        self.stored = value
        self.kind = kind
        self.live: list[Any] = []

    @property
    def value(self) -> Any:
        return self.live[-1] if self.live else self.stored

    @property
    def trainable(self) -> bool:
        return self.kind == "param"

    def __repr__(self) -> str:
        return (f"Param({self.kind}, shape={np.shape(self.value)}, "
                f"dtype={getattr(self.value, 'dtype', None)})")


def _check_name(name: str) -> None:
    parts = name.split(".") if isinstance(name, str) else [name]
    for part in parts:
        if not isinstance(part, str) or not part.isidentifier() or keyword.iskeyword(part):
            raise ArgumentError(f"weight name {name!r}: each dotted part must be a Python "
                                "identifier (weights are referenced by bare name)")


def _flatten_spec(spec: Mapping, prefix: str, out: dict) -> None:
    """Nested mappings (dicts, ParamDicts) and dotted keys -> ``{dotted name: value}``."""
    if isinstance(spec, ParamDict):
        for name, p in spec._entries.items():
            canon = spec._canon[id(p)]
            value = (Marked("tied", prefix + canon) if canon != name
                     else p.value if p.kind == "param" else Marked(p.kind, p.value))
            _put(out, prefix + name, value)
        return
    for key, value in spec.items():
        _check_name(key)
        if isinstance(value, Mapping):
            _flatten_spec(value, prefix + key + ".", out)
        else:
            _put(out, prefix + key, value)


def _put(out: dict, name: str, value: Any) -> None:
    if name in out:
        raise ArgumentError(f"weight {name!r} is given twice")
    out[name] = value


def _as_value(name: str, value: Any, kind: str) -> Any:
    """The array an entry stores: the caller's own array when possible (so updates reach
    it), a float array for trainable numbers and lists."""
    if isinstance(value, Tracer):
        return value
    if isinstance(value, np.ndarray):
        if not value.flags.writeable:
            value = value.copy()
    else:
        value = np.array(value)
        if kind == "param" and value.dtype.kind in "biu":
            value = value.astype(np.float64)
    if kind == "param" and not is_float(value.dtype):
        raise ArgumentTypeError(
            f"trainable weight {name!r} has dtype {value.dtype}; gradients need a "
            "float dtype: pass a float array, or mark it frozen[...] / buffer[...]")
    return value


def _build(spec: dict) -> tuple[dict[str, Param], set[str]]:
    """Create the ``Param``s of a flat spec, resolving ``tied`` by name or by identity;
    also returns the names that are not ties (the canonical ones)."""
    params: dict[str, Param] = {}
    by_id: dict[int, str] = {}
    ties: dict[str, Any] = {}
    for name, raw in spec.items():
        if isinstance(raw, Marked) and raw.kind == "tied":
            ties[name] = raw.value
            continue
        kind, value = (raw.kind, raw.value) if isinstance(raw, Marked) else ("param", raw)
        if isinstance(value, Marked):
            raise ArgumentTypeError(
                f"weight {name!r}: markers do not nest ({kind}[{value.kind}[...]])")
        if id(value) in by_id:
            raise ArgumentError(f"weights {by_id[id(value)]!r} and {name!r} are the same array; "
                                f"write {name}=tied[{by_id[id(value)]!r}] to share it, or pass a "
                                "copy")
        value = _as_value(name, value, kind)
        by_id[id(value)] = name
        params[name] = Param(value, kind)
    for name in ties:
        params[name] = _resolve_tie(name, ties, params, by_id)
    return {name: params[name] for name in spec}, set(spec) - set(ties)


def _resolve_tie(name: str, ties: dict, params: dict, by_id: dict) -> Param:
    chain = [name]
    target = ties[name]
    while True:
        if not isinstance(target, str):
            if id(target) not in by_id:
                raise ArgumentError(f"{name}=tied(array): no other weight holds this array; name "
                                    "the weight instead: tied['w1']")
            target = by_id[id(target)]
        if target in params:
            return params[target]
        if target not in ties:
            raise MissingKeyError(f"{name}=tied[{target!r}]: there is no weight {target!r}")
        if target in chain:
            raise ArgumentError(f"tied weights form a cycle: {' -> '.join(chain + [target])}")
        chain.append(target)
        target = ties[target]


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"enc.w": a, "b": c}`` -> ``{"enc": Group(w=a), "b": c}``."""
    top: dict[str, Any] = {}
    for name, value in flat.items():
        head, _, rest = name.partition(".")
        if rest:
            top.setdefault(head, {})[rest] = value
        else:
            top[head] = value
    return {k: Group(_nest(v)) if isinstance(v, dict) else v for k, v in top.items()}


class ParamDict:
    """Named parameters: ``ParamDict(w1=..., b1=..., enc={"w": ...}, w_out=tied["enc.w"])``.

    ``weights["w1"]`` is the current array, ``for name in weights`` walks the (dotted)
    names, ``weights.grad(objective, *data)`` differentiates a forward that reads the weights
    by bare name, and ``weights.step(grads, lr)`` updates the arrays in place.

    Examples:
        >>> import numpy as np
        >>> from pycograd import ParamDict, frozen
        >>> X, y = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([1.0, 2.0])
        >>> weights = ParamDict(w=np.zeros(2), b=np.zeros(()), s=frozen[np.array(1.0)])
        >>> weights.bind_globals(globals())                  # w, b, s become bare names here
        >>> def objective():
        ...     return np.mean((s * (X @ w) + b - y) ** 2)
        >>> value, grads = weights.grad(objective)           # gradients; changes nothing
        >>> grads["s"] is None, np.round(grads["w"], 3).tolist()
        (True, [-7.0, -10.0])
        >>> weights.step(grads, 0.01)                        # in-place SGD
        >>> bool(objective() < value), list(weights)
        (True, ['w', 'b', 's'])
        >>> _, g = weights.grad(lambda: np.sum(weights.w ** 2))   # weights.w, weights["w"]:
        >>> bool(np.allclose(g["w"], 2 * weights.w))               # live under grad
        True
    """

    def __init__(self, entries: Mapping[str, Any] | None = None, /, **kwargs: Any):
        spec: dict[str, Any] = {}
        for part in (entries or {}), kwargs:
            _flatten_spec(part, "", spec)
        for name in spec:
            head = name.rpartition(".")[0]
            while head:
                if head in spec:
                    raise ArgumentError(f"{head!r} is both a weight and a group ({name!r})")
                head = head.rpartition(".")[0]
        self._init(*_build(spec))

    def _init(self, entries: dict[str, Param], primary: set[str] | frozenset = frozenset()) -> None:
        """``primary``: canonical names; an entry without one is known by its first name."""
        self._entries = entries
        self._canon: dict[int, str] = {}
        self._aliases: dict[int, list[str]] = {}
        for name, p in entries.items():
            if name in primary:
                self._canon[id(p)] = name
            self._aliases.setdefault(id(p), []).append(name)
        for name, p in entries.items():
            self._canon.setdefault(id(p), name)
        # what every weights.grad reads, worked out once (entries, kinds and ties are fixed):
        # (name, entry, canonical name, trainable) per name, and (name, entry) per array
        self._layout = tuple((n, p, self._canon[id(p)], p.kind == "param")
                             for n, p in entries.items())
        self._trainable = tuple((n, p) for n, p, canon, trains in self._layout
                                if trains and n == canon)
        self._dotted = any("." in n for n in entries)
        self._untied = all(n == canon for n, _, canon, _ in self._layout)
        self._names = frozenset(n.partition(".")[0] for n in entries)  # the env's names
        self._order = list(entries) if self._untied and not self._dotted else None
        self._params = [p for _, p, _, _ in self._layout]
        self._simple = self._order is not None and len(self._trainable) == len(self._layout)
        """Every entry its own trainable array under a plain name: ``grad``'s gradients are
        the transform's, name for name."""
        self._namespaces: list[dict] = []
        self._active: list[tuple[dict, Any]] = []

    @classmethod
    def _from_entries(cls, entries: dict[str, Param],
                      primary: set[str] | frozenset = frozenset()) -> ParamDict:
        pd = cls.__new__(cls)
        pd._init(entries, primary)
        return pd

    # -- access by name -------------------------------------------------------------

    def entry(self, name: str) -> Param:
        """The ``Param`` stored under ``name`` (``.value``, ``.kind``)."""
        try:
            return self._entries[name]
        except KeyError:
            raise MissingKeyError(
                f"no weight {name!r}; the weights are {list(self._entries)}") from None

    def __getitem__(self, name: str) -> Any:
        if name in self._entries:
            return self._entries[name].value
        prefix = name + "."
        group = {k[len(prefix):]: p for k, p in self._entries.items() if k.startswith(prefix)}
        if group:
            primary = {n for n, p in group.items() if self._canon[id(p)] == prefix + n}
            return ParamDict._from_entries(group, primary)
        return self.entry(name).value

    def __getattr__(self, name: str) -> Any:
        """``weights.w1`` / ``weights.enc.w`` read like ``weights["w1"]`` (live under
        ``weights.grad``); a weight named like a method (``step``, ``items``...) is read by
        subscript only."""
        if name.startswith("_"):
            raise MissingAttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise MissingAttributeError(f"ParamDict has no weight or group {name!r}; the weights "
                                        f"are {list(self._entries)}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        elif name in self._entries:
            self.assign(name, value)
        else:
            raise MissingAttributeError(f"ParamDict has no weight {name!r} to assign; weights are "
                                        "fixed at construction: build a new ParamDict to add one")

    def get(self, name: str, default: Any = None) -> Any:
        return self._entries[name].value if name in self._entries else default

    def __setitem__(self, name: str, value: Any) -> None:
        self.assign(name, value)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def keys(self) -> list[str]:
        return list(self._entries)

    def values(self) -> list[Any]:
        return [p.value for p in self._entries.values()]

    def items(self) -> list[tuple[str, Any]]:
        return [(n, p.value) for n, p in self._entries.items()]

    def kind(self, name: str) -> str:
        """``"param"``, ``"frozen"``, ``"buffer"``, or ``"tied"`` for a second name."""
        p = self.entry(name)
        return "tied" if self._canon[id(p)] != name else p.kind

    def canonical(self, name: str) -> str:
        """The name an entry is stored and stepped under (itself unless it is tied)."""
        return self._canon[id(self.entry(name))]

    def _unique(self) -> Iterator[tuple[str, Param]]:
        for name, p in self._entries.items():
            if self._canon[id(p)] == name:
                yield name, p

    # -- the optimizer protocol -----------------------------------------------------

    def trainable(self) -> dict[str, Any]:
        """``{canonical name: array}`` of the trainable entries, each array once."""
        return {n: p.value for n, p in self._unique() if p.kind == "param"}

    def assign(self, name: str, value: Any) -> None:
        """Write ``value`` into the entry's array in place (so ties and every reference
        stay consistent). Shapes must match; dtypes cast within their kind."""
        p = self.entry(name)
        if (isinstance(value, DeviceArray) or isinstance(p.stored, DeviceArray)) and not p.live:
            # arrays on a device are immutable: the entry (shared by its ties) is rebound
            if tuple(value.shape) != tuple(p.stored.shape):
                raise ArgumentError(f"assign({name!r}, ...): shape {value.shape} does not match "
                                    f"the weight's shape {p.stored.shape}")
            p.stored = value if value.dtype == p.stored.dtype else value.astype(p.stored.dtype)
            return
        if isinstance(value, Tracer) or p.live:
            raise ArgumentTypeError(
                f"assign({name!r}, ...): needs concrete arrays and unbound weights, "
                "got a traced value or a weight bound by weights.bind / "
                "weights.grad; assign outside the transform")
        value = np.asarray(value)
        if value.shape != p.stored.shape:
            raise ArgumentError(f"assign({name!r}, ...): shape {value.shape} does not match the "
                                f"weight's shape {p.stored.shape}")
        np.copyto(p.stored, value, casting="same_kind")

    def state_dict(self) -> dict[str, Any]:
        """``{canonical name: array}`` of every stored entry (trainable, frozen, buffer)."""
        return {n: p.value for n, p in self._unique()}

    def copy(self) -> ParamDict:
        """A ParamDict with the same names, kinds and ties over copies of the arrays."""
        new = {id(p): Param(np.array(p.value), p.kind) for _, p in self._unique()}
        return ParamDict._from_entries({n: new[id(p)] for n, p in self._entries.items()},
                                       {n for n, _ in self._unique()})

    # -- ambient names ----------------------------------------------------------------

    def _env(self, values: Mapping[str, Any] | None) -> dict[str, Any]:
        given = values if values is not None else {}
        if not given.keys() <= self._entries.keys():
            unknown = [n for n in given if n not in self._entries]
            raise MissingKeyError(f"bind: no weight(s) {unknown}; the weights are {list(self)}")
        flat = {name: given[name] if name in given else given.get(canon, p.value)
                for name, p, canon, _ in self._layout}
        return _nest(flat) if self._dotted else flat

    def bind(self, values: Mapping[str, Any] | None = None,
             *functions: Callable) -> AbstractContextManager[dict[str, Any]]:
        """Bind the weight names to ``values`` (name -> any value, traced or not; names left
        out keep their current arrays, a tied name follows its canonical name) in the
        registered namespaces and in those the ``functions`` read, for the ``with`` body,
        which gets the bound ``{name: value}``."""
        return _Bound(self, values, functions)

    def _live_values(self, values: Mapping[str, Any] | None) -> list[tuple[Param, Any]]:
        """The entries ``values`` binds and their bound values (each entry once; a tied
        name binds its array)."""
        if not values:
            return []
        if self._untied:
            entries = self._entries
            return [(entries[name], v) for name, v in values.items()]
        out: dict[int, tuple[Param, Any]] = {}
        for name, v in values.items():
            p = self._entries[name]
            if id(p) not in out or name == self._canon[id(p)]:
                out[id(p)] = (p, v)
        return list(out.values())

    def functional(self, objective: Callable) -> Callable:
        """``objective`` (a forward reading the weights by bare name) as a function of
        explicit values: ``f(values, *data) = objective(*data)`` with the names bound to
        ``values``; what ``grad``, ``vmap`` or graph capture take, e.g.
        ``vmap(grad(weights.functional(loss)), in_axes=(None, 0, 0))(weights.trainable(),
        X, Y)``. ``objective`` runs routed (``math.*`` and ``np.array`` of traced values
        work in it), as ``grad`` would run it."""
        return functools.partial(_call_with_values, self, objective)

    def bind_globals(self, namespace: dict | None = None) -> None:
        """Expose the weights as names in ``namespace`` (default: the caller's globals) for
        good: there they are the current arrays, and inside ``grad`` the traced values."""
        ns = sys._getframe(1).f_globals if namespace is None else namespace
        ns.update(self._env(None))
        if not any(ns is n for n in self._namespaces):
            self._namespaces.append(ns)

    def unbind_globals(self, namespace: dict | None = None) -> None:
        """Undo ``bind_globals``: remove the names and forget the namespace."""
        ns = sys._getframe(1).f_globals if namespace is None else namespace
        self._namespaces = [n for n in self._namespaces if n is not ns]
        for name in self._env(None):
            ns.pop(name, None)

    def __enter__(self) -> ParamDict:
        ns = sys._getframe(1).f_globals
        env = self._env(None)
        cm = bound(env, plan(env, [ns], ()))
        cm.__enter__()
        self._active.append((ns, cm))
        return self

    def __exit__(self, *exc: Any) -> None:
        _, cm = self._active.pop()
        cm.__exit__(*exc)

    # -- gradients and SGD ----------------------------------------------------------

    @api_boundary
    def grad(self, objective: Callable, *data: Any, jit: bool = False,
             backend: str | None = None) -> tuple[Any, dict[str, Any]]:
        """``(objective(*data), {name: gradient})`` with the weights bound to traced values
        while ``objective`` runs. Frozen entries and buffers get ``None``; a tied name gets
        the same (summed) gradient as its canonical name. Changes no weight.

        ``jit=True`` captures the objective's value and gradient once per data signature
        and runs the optimized, compiled program (``pycograd.jit``) on later calls.
        ``backend="torch" | "jax" | "tf"`` lowers the captured objective to that framework,
        whose autodiff computes the gradients (under ``jax.jit`` / ``tf.function`` with
        ``jit=True``); they come back as numpy arrays all the same."""
        if backend is not None:
            from pycograd.backends.training import weights_value_and_grad as lowered

            value, g = lowered(self, objective, *data, backend=backend, jit=jit)
        elif jit:
            from pycograd.graph.jit import weights_value_and_grad

            value, g = weights_value_and_grad(self, objective, *data)
        else:
            stored = {n: p.stored for n, p in self._trainable}
            value, g = _value_and_grad_of_weights(stored, self, objective, *data)
            if self._simple:
                return value, g
        return value, {n: g.get(canon) if trains else None
                       for n, _, canon, trains in self._layout}

    def to_torch_module(self, forward: Callable) -> Any:
        """A ``torch.nn.Module`` running ``forward`` (which reads these weights by name),
        lowered from its captured graph: trainable weights become ``nn.Parameter``s named
        after them, frozen entries and buffers registered buffers (needs torch:
        ``pip install "pycograd[torch]"``). See ``pycograd.backends.export``."""
        from pycograd.backends.export import to_torch_module

        return to_torch_module(self, forward)

    def _grad_for(self, grads: Mapping[str, Any], p: Param) -> Any:
        for name in self._aliases[id(p)]:
            g = grads.get(name)
            if g is not None:
                return g
        return None

    def step(self, grads: Mapping[str, Any], lr: float) -> None:
        """In-place SGD, ``w -= lr * g`` (``lr * conj(g)`` for a complex weight, the descent
        direction under pycograd's complex convention), over the trainable entries (each tied
        array once). ``None`` gradients, frozen entries and buffers are left alone."""
        if not self._entries.keys() >= grads.keys():
            unknown = [n for n in grads if n not in self._entries]
            raise GradientMismatchError(f"step: gradients for unknown weight(s) {unknown}; the "
                                        f"weights are {list(self._entries)}")
        for name, p in self._trainable:
            g = grads.get(name) if self._untied else self._grad_for(grads, p)
            if g is None:
                continue
            if isinstance(g, Tracer) or p.live:
                raise ArgumentTypeError(
                    f"step: {name!r} needs concrete arrays and unbound weights, "
                    "got a traced value or a weight bound by weights.bind / "
                    "weights.grad; step outside the transform")
            stored = p.stored
            if type(g) is not np.ndarray:
                g = np.asarray(g)
            if type(stored) is np.ndarray and stored.dtype.kind != "c":
                stored -= lr * g  # in place, same_kind casting, as below
                continue
            g = np.conj(g) if np.iscomplexobj(stored) else g  # descent: conj
            np.subtract(stored, lr * g, out=stored, casting="same_kind")

    # -- save / load ----------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write names, kinds, ties and arrays to an ``.npz`` readable without pickle. Under
        data parallel (``pycograd.distributed``) only rank 0 writes; the file appears whole
        (written aside, then renamed)."""
        meta = [{"name": n, "kind": p.kind,
                 "tied": self._canon[id(p)] if self._canon[id(p)] != n else None}
                for n, p in self._entries.items()]
        state = self.state_dict()
        traced = [n for n, v in state.items() if isinstance(v, Tracer)]
        if traced:
            raise ArgumentTypeError(
                f"save: {traced} hold traced values; save outside the transform")
        serialize.write(path, meta, state)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ParamDict:
        """A new ParamDict from a file written by ``save``."""
        meta, arrays = serialize.read(path)
        spec = {}
        for e in meta:
            if e["tied"] is not None:
                spec[e["name"]] = Marked("tied", e["tied"])
            elif e["kind"] == "param":
                spec[e["name"]] = arrays[e["name"]]
            else:
                spec[e["name"]] = Marked(e["kind"], arrays[e["name"]])
        try:
            return cls(spec)
        except (ValueError, TypeError, KeyError) as e:
            raise ParamLoadError(f"{os.fspath(path)}: the saved weights do not make a "
                                 f"ParamDict: {e}") from e

    def load_state(self, state: Mapping[str, Any], source: str = "the state") -> None:
        """Copy ``state`` (stored name -> array, as ``state_dict`` gives) into the arrays in
        place; one clear error lists every missing, extra, or shape- or dtype-mismatched
        name, and nothing is changed then."""
        aliases = {n: self._canon[id(p)] for n, p in self._entries.items()
                   if self._canon[id(p)] != n}
        serialize.check_state(self.state_dict(), aliases, state, source)
        for name, _ in self._unique():
            self.assign(name, state[name])

    load_state_dict = load_state

    def load_into(self, path: str | os.PathLike) -> None:
        """Load a file written by ``save`` into these weights, in place (see ``load_state``)."""
        meta, arrays = serialize.read(path)
        state = dict(arrays)
        for e in meta:
            if e["tied"] is not None and e["tied"] in arrays:
                state[e["name"]] = arrays[e["tied"]]
        self.load_state(state, source=os.fspath(path))

    # -- display --------------------------------------------------------------------

    def __repr__(self) -> str:
        if not self._entries:
            return "ParamDict()"
        rows = [("name", "kind", "shape", "dtype", "count")]
        totals = {"param": 0, "frozen": 0, "buffer": 0}
        for name, p in self._entries.items():
            canon = self._canon[id(p)]
            shape, dtype = np.shape(p.value), getattr(p.value, "dtype", "?")
            if canon != name:
                rows.append((name, f"tied to {canon}", str(shape), str(dtype), "-"))
                continue
            size = int(np.prod(shape, dtype=np.int64))
            totals[p.kind] += size
            rows.append((name, p.kind, str(shape), str(dtype), f"{size:,}"))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = ["  ".join(c.rjust(w) if i == 4 else c.ljust(w)
                           for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in rows]
        total = sum(totals.values())
        lines.append(f"total: {total:,} values ({totals['param']:,} trainable, "
                     f"{totals['frozen']:,} frozen, {totals['buffer']:,} buffer)")
        return "ParamDict\n" + "\n".join("  " + line for line in lines)


def _call_with_values(weights: ParamDict, objective: Callable, values: Mapping[str, Any],
                      *data: Any, **kwargs: Any) -> Any:
    """``objective(*data)`` with the weight names bound to ``values``. Module level, taking
    ``objective`` as an argument rather than closing over it, so that routing sees only the
    objective it is handed."""
    with weights.bind(values, objective):
        return routed(objective)(*data, **kwargs)


class _Bound:
    """What ``ParamDict.bind`` returns: on entry the names are bound in the namespaces and
    slots ``plan`` finds, and each bound entry's value is pushed on its ``live`` stack
    (``weights.w1`` reads it); on exit both are undone, innermost first."""

    __slots__ = ("weights", "values", "functions", "binding", "live")

    def __init__(self, weights: ParamDict, values: Mapping[str, Any] | None,
                 functions: tuple):
        self.weights, self.values, self.functions = weights, values, functions

    def __enter__(self) -> dict[str, Any]:
        env = self.weights._env(self.values)
        self.binding, self.live = _enter(self.weights, self.values, self.functions, env)
        return env

    def __exit__(self, *exc: Any) -> None:
        _exit(self.binding, self.live)


def _enter(weights: ParamDict, values: Mapping[str, Any] | None, functions: tuple,
           env: Mapping[str, Any] | None = None) -> tuple[Any, list]:
    """Bind the weight names to ``values`` (``env``: the whole env, when the caller has it)
    and push the live values; returns what ``_exit`` undoes. ``weights.grad`` binds every
    step through here without building an env when ``values`` names every weight in
    order."""
    namespaces = weights._namespaces
    if weights._active:
        namespaces = namespaces + [ns for ns, _ in weights._active]
    slots = plan(weights._names, namespaces, functions)
    if values is not None and list(values) == weights._order:  # every name, in order
        binding = bound(values, slots)
        live = list(zip(weights._params, values.values()))
    else:
        binding = bound(weights._env(values) if env is None else env, slots)
        live = weights._live_values(values)
    binding.__enter__()
    for p, v in live:
        p.live.append(v)
    return binding, live


def _exit(binding: Any, live: list) -> None:
    """Undo ``_enter``: pop the live values, then restore the slots (innermost first)."""
    for p, _ in reversed(live):
        p.live.pop()
    binding.__exit__(None, None, None)


def _scalar_objective(values: dict, weights: ParamDict, objective: Callable, *data: Any) -> Any:
    """What ``weights.grad`` differentiates: the objective, checked to return a scalar."""
    binding, live = _enter(weights, values, (objective,))  # ``bind``, for every step
    try:
        out = routed(objective)(*data)
    finally:
        _exit(binding, live)
    shape = getattr(out, "shape", None)
    if isinstance(out, (tuple, list)) or (np.shape(out) if shape is None else shape) != ():
        what = (f"a {type(out).__name__}" if isinstance(out, (tuple, list))
                else f"an array of shape {np.shape(out)}")
        label = getattr(objective, "__qualname__", None) or repr(objective)
        raise NonScalarOutputError(
            f"weights.grad: the objective {label} returned {what}; it must return a scalar "
            "loss (reduce it with np.mean or np.sum)")
    return out


_value_and_grad_of_weights = value_and_grad(_scalar_objective, 0)
"""``weights.grad``'s transform, made once (it is the same for every call)."""


class _Layout:
    """A ParamDict's structure as a pytree ``aux``: names, kinds, ties, and the values of
    the non-trainable entries, which ride along as static data. Equality (what tree_map
    compares) looks at the structure only."""

    __slots__ = ("key", "entries")

    def __init__(self, pd: ParamDict):
        self.entries = pd._entries
        self.key = tuple((n, pd.kind(n), pd.canonical(n)) for n in pd._entries)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Layout) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"ParamDict{[n for n, *_ in self.key]}"


def _flatten(pd: ParamDict) -> tuple[tuple, _Layout]:
    return tuple(pd.trainable().values()), _Layout(pd)


def _unflatten(layout: _Layout, children: list) -> ParamDict:
    it = iter(children)
    new: dict[int, Param] = {}
    entries = {}
    for name, _kind, canon in layout.key:
        old = layout.entries[canon]
        if id(old) not in new:
            new[id(old)] = Param(next(it) if old.kind == "param" else old.value, old.kind)
        entries[name] = new[id(old)]
    return ParamDict._from_entries(entries, {canon for _, _, canon in layout.key})


register_pytree_node(ParamDict, _flatten, _unflatten)
register_pytree_node(Group, lambda g: (tuple(g.values()), tuple(g.keys())),
                     lambda keys, cs: Group(dict(zip(keys, cs))))
