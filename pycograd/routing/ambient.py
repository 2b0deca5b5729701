"""Ambient weights: bind weight names in the namespaces a forward function reads.

A forward written by bare name (``x @ w1 + b1``) reads ``w1`` from its module's globals or
from a closure cell. While a binding is active those slots hold the given values (traced
``Var``s inside ``weights.grad``); afterwards their previous contents come back, also on
exceptions. Bindings nest: each saves what it replaced and restores it on exit.

Which slots: every namespace registered with the ParamDict (``bind_globals``, ``with
weights:``) gets all the names. The functions reachable from the objective (its code,
closures, the functions, classes and callables its globals and default arguments name,
partials, bound methods, ``__wrapped__``) are scanned as well, and each weight name a
function loads as a global is bound in that function's globals, and each closure cell
named like a weight is rebound.
Library code (numpy, pycograd, the standard library, ...) cannot name user weights, so only
its closures and ``__wrapped__`` are followed (that is how ``checkpoint(f)`` reaches ``f``).
Globals are process-wide: bindings are not thread-safe (the record of which bindings are in
force is per thread, so one thread's ``checkpoint`` never re-binds another thread's slots).
"""

from __future__ import annotations

import dis
import functools
import numbers
import sys
import threading
import types
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from pycograd.core.errors import MissingAttributeError
from pycograd.core.trace import Tracer

_MISSING = object()
_LOADS = frozenset({"LOAD_GLOBAL", "LOAD_NAME", "LOAD_FROM_DICT_OR_GLOBALS"})
_LIBRARIES = frozenset(sys.stdlib_module_names) | {
    "numpy", "scipy", "pycograd", "pyccolo", "pipescript", "IPython", "ipykernel", "torch",
    "jax", "jaxlib", "tensorflow", "ml_dtypes", "pytest", "_pytest", "pluggy", "tqdm",
    "sklearn", "matplotlib",
}
_MAX_VISITS = 2000


class Group(Mapping):
    """A nested group of weights as seen by bare name: ``layer1.w`` or ``layer1["w"]``."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, Any]):
        object.__setattr__(self, "_items", dict(items))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._items[name]
        except KeyError:
            raise MissingAttributeError(f"weight group has no entry {name!r}; it has "
                                        f"{sorted(self._items)}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise MissingAttributeError("a weight group is read-only; use weights.assign(name, value)")

    def __getitem__(self, name: str) -> Any:
        head, _, rest = name.partition(".")
        item = self._items[head]
        return item[rest] if rest else item

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={_short(v)}" for k, v in self._items.items())
        return f"Group({inner})"


def _short(v: Any) -> str:
    shape = getattr(v, "shape", None)
    return f"<{type(v).__name__} {shape}>" if shape is not None else repr(v)


def _rebindable(v: Any) -> bool:
    """Values a binding may replace in a namespace it found by scanning: weights (arrays,
    numbers, traced values, groups) or nothing, never a function, class or module."""
    return v is _MISSING or isinstance(v, (np.ndarray, np.generic, numbers.Number, Tracer, Group))


_LOADED: dict[int, tuple[types.CodeType, frozenset[str]]] = {}


def _global_loads(code: types.CodeType) -> frozenset[str]:
    """Names that ``code`` (and code nested in it: lambdas, inner defs, comprehensions)
    loads from its globals; cached by identity (hashing a code object is not cheap)."""
    hit = _LOADED.get(id(code))
    if hit is not None and hit[0] is code:
        return hit[1]
    names = {ins.argval for ins in dis.get_instructions(code) if ins.opname in _LOADS}
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _global_loads(c)
    result = frozenset(names)
    if len(_LOADED) > 10_000:  # code objects of re-run notebook cells pile up
        _LOADED.clear()
    _LOADED[id(code)] = (code, result)
    return result


def _is_library(fn: types.FunctionType) -> bool:
    module = fn.__globals__.get("__name__") or getattr(fn, "__module__", None) or ""
    return module.partition(".")[0] in _LIBRARIES


class _Plan:
    """The slots (namespace or cell, name) a binding writes, each once."""

    def __init__(self) -> None:
        self.slots: list[tuple[Any, str]] = []
        self._seen: set[tuple[int, str]] = set()

    def add(self, holder: Any, name: str) -> None:
        key = (id(holder), name)
        if key not in self._seen:
            self._seen.add(key)
            self.slots.append((holder, name))


def _cell_value(cell: types.CellType) -> Any:
    try:
        return cell.cell_contents
    except ValueError:
        return _MISSING


def plan(names: Iterable[str], namespaces: Iterable[dict], roots: Iterable[Any]) -> list:
    """The slots to bind for ``names``: all of them in ``namespaces``, and the ones the
    functions reachable from ``roots`` read."""
    names = frozenset(names)
    out = _Plan()
    user_ns: set[int] = set()
    for ns in namespaces:
        user_ns.add(id(ns))
        for n in names:
            out.add(ns, n)
    stack = list(roots)
    root_ids = {id(r) for r in stack}
    seen: set[int] = set()
    while stack and len(seen) < _MAX_VISITS:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, functools.partial):
            stack.append(obj.func)
            stack.extend(a for a in (*obj.args, *obj.keywords.values()) if callable(a))
        elif isinstance(obj, types.MethodType):
            stack.extend((obj.__func__, type(obj.__self__)))
        elif isinstance(obj, type):
            if obj.__module__.partition(".")[0] not in _LIBRARIES:
                stack.extend(_class_functions(obj))
        elif isinstance(obj, types.FunctionType):
            _scan_function(obj, names, out, stack, user_ns, id(obj) in root_ids)
        elif callable(obj) and type(obj).__module__.partition(".")[0] not in _LIBRARIES:
            stack.append(type(obj))
        wrapped = getattr(obj, "__wrapped__", None)
        if wrapped is not None:
            stack.append(wrapped)
    return out.slots


def _class_functions(cls: type) -> list:
    fns = []
    for v in vars(cls).values():
        if isinstance(v, (staticmethod, classmethod)):
            v = v.__func__
        elif isinstance(v, property):
            v = v.fget
        if isinstance(v, types.FunctionType):
            fns.append(v)
    return fns


def _scan_function(fn: types.FunctionType, names: frozenset, out: _Plan, stack: list,
                   user_ns: set[int], is_root: bool) -> None:
    code = fn.__code__
    for name, cell in zip(code.co_freevars, fn.__closure__ or ()):
        value = _cell_value(cell)
        if name in names and _rebindable(value):
            out.add(cell, name)
        elif callable(value):
            stack.append(value)
    g = fn.__globals__
    if not (is_root or id(g) in user_ns) and _is_library(fn):
        return
    # a function held as a default argument is called like a global one (a DSL pipeline
    # holds its stages so: ``lambda _0, layer=layer: layer(_0)``)
    stack.extend(v for v in (*(fn.__defaults__ or ()), *(fn.__kwdefaults__ or {}).values())
                 if callable(v) and not isinstance(v, Tracer))
    user_ns.add(id(g))
    builtins = g.get("__builtins__")
    for name in _global_loads(code):
        value = g.get(name, _MISSING)
        if name in names:
            if _rebindable(value):
                out.add(g, name)
        elif value is not _MISSING and value is not builtins and callable(value):
            stack.append(value)


def _read(holder: Any, name: str) -> Any:
    if isinstance(holder, dict):
        return holder.get(name, _MISSING)
    return _cell_value(holder)


def _write(holder: Any, name: str, value: Any) -> None:
    if isinstance(holder, dict):
        if value is _MISSING:
            holder.pop(name, None)
        else:
            holder[name] = value
    elif value is _MISSING:
        del holder.cell_contents
    else:
        holder.cell_contents = value


class _Active(threading.local):
    """The slots of the bindings in force in this thread, outermost first."""

    def __init__(self) -> None:
        self.slots: list[list[tuple[Any, str]]] = []


_ACTIVE = _Active()


@contextmanager
def _binding(slots: list[tuple[Any, str]], values: list[Any]) -> Iterator[None]:
    saved = []
    try:
        for (holder, name), value in zip(slots, values):
            saved.append((holder, name, _read(holder, name)))
            _write(holder, name, value)
        active = _ACTIVE.slots
        active.append(slots)
        yield
    finally:
        active = _ACTIVE.slots
        if active and active[-1] is slots:
            active.pop()
        for holder, name, old in reversed(saved):
            _write(holder, name, old)


def bound(env: Mapping[str, Any], slots: list[tuple[Any, str]]) -> Any:
    """Context manager: write ``env[name]`` into each slot for the duration; restore the old
    contents (or their absence) afterwards, in reverse order, also when the body raises."""
    return _binding(slots, [env[name] for _, name in slots])


def ambient_slots() -> tuple[list[tuple[Any, str]], list[Any]]:
    """The slots bound ambiently right now and the values they hold.

    For transforms that run a function again later, outside the binding (``checkpoint``
    recomputing in backward): the traced values among ``values`` are hidden inputs of the
    function; pass them as explicit inputs and re-run it inside ``rebound(slots, new)``."""
    slots, seen = [], set()
    for level in _ACTIVE.slots:
        for slot in level:
            key = (id(slot[0]), slot[1])
            if key not in seen:
                seen.add(key)
                slots.append(slot)
    return slots, [_read(h, n) for h, n in slots]


def rebound(slots: list[tuple[Any, str]], values: list[Any]) -> Any:
    """Context manager binding ``slots`` (from ``ambient_slots``) to ``values``."""
    return _binding(list(slots), list(values))
