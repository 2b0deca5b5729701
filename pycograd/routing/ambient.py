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
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from pycograd.core.errors import MissingAttributeError
from pycograd.core.trace import Tracer
from pycograd.routing.source import WOVEN_HELPERS

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


class _Walk:
    """One walk from the roots: the slots a binding writes (each once), and every read the
    choice of them depended on, so that a later call can check them instead of walking.

    ``reads`` holds ``[holder, name, value, kind]`` for each global or closure cell read:
    ``kind`` is ``None`` when the walk went on into ``value`` (it must still be that very
    object), else what ``_kind`` said of it (a weight slot, or nothing to follow), which a
    new value may share (``value`` is then what ``_kept`` keeps of it, a shortcut for the
    next check). ``attrs`` holds ``(obj, attribute, value)`` for the attributes read
    (a function's code and defaults, ``__wrapped__``, an object's class), ``classes`` each
    user class with the functions its dict held."""

    def __init__(self, names: frozenset) -> None:
        self.names = names
        self.slots: list[tuple[Any, str]] = []
        self._seen: set[tuple[int, str]] = set()
        self.reads: list[list] = []
        self._read: set[tuple[int, str]] = set()
        self.attrs: list[tuple] = []
        self.classes: list[tuple[type, tuple]] = []
        self.complete = True

    def add(self, holder: Any, name: str) -> None:
        key = (id(holder), name)
        if key not in self._seen:
            self._seen.add(key)
            self.slots.append((holder, name))

    def read(self, holder: Any, name: str, value: Any, kind: Any) -> None:
        key = (id(holder), name)
        if key not in self._read:
            self._read.add(key)
            self.reads.append([holder, name, _kept(value, kind), kind])

    def attr(self, obj: Any, attribute: str) -> Any:
        value = getattr(obj, attribute, None)
        self.attrs.append((obj, attribute, value))
        return value

    def detach(self, roots: tuple) -> None:
        """Refer to the roots' own attributes by position, so that a cached walk does not
        keep its roots alive."""
        where = {id(r): i for i, r in enumerate(roots)}
        self.attrs = [(where.get(id(obj), obj), attribute, value, id(obj) in where)
                      for obj, attribute, value in self.attrs]

    def still_valid(self, roots: tuple) -> bool:
        """Whether every read would give the same walk now (after ``detach``)."""
        names = self.names
        for read in self.reads:
            holder, name, value, kind = read
            now = holder.get(name, _MISSING) if type(holder) is dict else _cell_value(holder)
            if now is not value:
                if kind is None or _kind(holder, name in names, now) != kind:
                    return False
                read[2] = _kept(now, kind)  # the next check of an unchanged value is quick
        for obj, attribute, value, is_root in self.attrs:
            if getattr(roots[obj] if is_root else obj, attribute, None) is not value:
                return False
        for cls, fns in self.classes:
            if _class_functions(cls) != fns:
                return False
        return True


_BIND, _SKIP = "bind", "skip"
_PLAIN = frozenset({np.ndarray, float, int, complex, bool, str, np.float64, type(None)})


def _kept(value: Any, kind: Any) -> Any:
    """What a walk keeps of a value it read, to know it again by identity: the value when
    the walk followed it (``kind is None``) or when it is plain data, else nothing: a
    traced value must never be held past its transform."""
    return value if kind is None or type(value) in _PLAIN else _MISSING


def _kind(holder: Any, is_name: bool, value: Any) -> str | None:
    """What a walk does with ``value`` read from ``holder`` (globals or a closure cell)
    under a weight name or not: ``_BIND`` its slot, follow it (``None``) or ``_SKIP`` it."""
    if is_name and _rebindable(value):
        return _BIND
    if type(holder) is dict:  # a global named like a weight that is not one is left alone
        if is_name or value is _MISSING or value is holder.get("__builtins__"):
            return _SKIP
    return None if callable(value) and not isinstance(value, Tracer) else _SKIP


def _cell_value(cell: types.CellType) -> Any:
    try:
        return cell.cell_contents
    except ValueError:
        return _MISSING


_PLANS: dict[tuple, tuple[tuple, tuple, _Walk]] = {}
"""The last walk from each tuple of roots, held by weak references to the roots: an entry
goes when a root does, so a cached walk does not keep a user's closure (and what it holds)
alive. ``_MAX_PLANS`` bounds the rest (roots that something in their walk refers back to)."""
_MAX_PLANS = 256


def plan(names: Iterable[str], namespaces: Iterable[dict],
         roots: Iterable[Any]) -> Sequence[tuple[Any, str]]:
    """The slots to bind for ``names``: all of them in ``namespaces``, and the ones the
    functions reachable from ``roots`` read.

    A training loop binds the same objective every step, so the last walk from the same
    roots is reused while every read it depended on still gives the same answer (a global
    or cell rebound to another function, a function's code or defaults replaced, a class
    method swapped: each makes the next call walk again)."""
    names = names if type(names) is frozenset else frozenset(names)
    namespaces, roots = tuple(namespaces), tuple(roots)
    key = (names, tuple(map(id, namespaces)), tuple(map(id, roots)))
    hit = _PLANS.get(key)
    if hit is not None and _same(hit[0], hit[1], roots, namespaces) and hit[2].still_valid(
            roots):
        return hit[2].slots
    walk = _walk(names, namespaces, roots)
    if walk.complete and roots:
        try:
            forget = functools.partial(_forget, key)
            refs = tuple(weakref.ref(r, forget) for r in roots)
        except TypeError:  # a root without weak references is walked every time
            return walk.slots
        walk.detach(roots)
        walk.slots = tuple(walk.slots)  # shared by every hit: nobody may change it
        if len(_PLANS) >= _MAX_PLANS:
            _PLANS.clear()
        _PLANS[key] = (refs, namespaces, walk)
    return walk.slots


def _same(refs: tuple, namespaces: tuple, roots: tuple, now: tuple) -> bool:
    """Whether a cached walk's roots and namespaces are these very objects (ids can be
    reused once an object is gone)."""
    for ref, r in zip(refs, roots):
        if ref() is not r:
            return False
    for ns, n in zip(namespaces, now):
        if ns is not n:
            return False
    return True


def _forget(key: tuple, _ref: Any, plans: dict = _PLANS) -> None:
    plans.pop(key, None)  # ``plans`` bound early: at exit the module's globals may be gone


def _walk(names: frozenset, namespaces: tuple, roots: tuple) -> _Walk:
    out = _Walk(names)
    user_ns: set[int] = set()
    for ns in namespaces:
        user_ns.add(id(ns))
        for n in names:
            out.add(ns, n)
    stack = list(roots)
    root_ids = {id(r) for r in stack}
    seen: set[int] = set()
    while stack:
        if len(seen) >= _MAX_VISITS:
            out.complete = False
            break
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, functools.partial):
            if obj.keywords:  # a dict that can change in place: not worth tracking
                out.complete = False
            stack.append(obj.func)
            stack.extend(a for a in (*obj.args, *obj.keywords.values()) if callable(a))
        elif isinstance(obj, types.MethodType):
            stack.extend((obj.__func__, out.attr(obj.__self__, "__class__")))
        elif isinstance(obj, type):
            if obj.__module__.partition(".")[0] not in _LIBRARIES:
                fns = _class_functions(obj)
                out.classes.append((obj, fns))
                stack.extend(fns)
        elif isinstance(obj, types.FunctionType):
            _scan_function(obj, out, stack, user_ns, id(obj) in root_ids)
        elif callable(obj) and type(obj).__module__.partition(".")[0] not in _LIBRARIES:
            stack.append(out.attr(obj, "__class__"))
        if isinstance(obj, types.FunctionType):  # in the function's dict: a fast read
            wrapped = obj.__dict__.get("__wrapped__", _MISSING)
            out.read(obj.__dict__, "__wrapped__", wrapped, None)
            wrapped = None if wrapped is _MISSING else wrapped
        else:
            wrapped = out.attr(obj, "__wrapped__")
        if wrapped is not None:
            stack.append(wrapped)
    return out


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


def _scan_function(fn: types.FunctionType, out: _Walk, stack: list, user_ns: set[int],
                   is_root: bool) -> None:
    names = out.names
    code = out.attr(fn, "__code__")
    for name, cell in zip(code.co_freevars, fn.__closure__ or ()):
        value = _cell_value(cell)
        kind = _kind(cell, name in names, value)
        out.read(cell, name, value, kind)
        if kind is _BIND:
            out.add(cell, name)
        elif kind is None:
            stack.append(value)
    g = fn.__globals__
    if not (is_root or id(g) in user_ns):
        module = g.get("__name__")
        out.read(g, "__name__", module, None)
        if not module:
            module = out.attr(fn, "__module__")
        if (module or "").partition(".")[0] in _LIBRARIES:
            return
    # a function held as a default argument is called like a global one (a DSL pipeline
    # holds its stages so: ``lambda _0, layer=layer: layer(_0)``)
    kwdefaults = out.attr(fn, "__kwdefaults__") or {}
    if kwdefaults:  # a dict that can change in place: not worth tracking
        out.complete = False
    stack.extend(v for v in (*(out.attr(fn, "__defaults__") or ()), *kwdefaults.values())
                 if callable(v) and not isinstance(v, Tracer))
    user_ns.add(id(g))
    for name in _global_loads(code):
        if name.startswith(WOVEN_HELPERS):
            continue
        value = g.get(name, _MISSING)
        kind = _kind(g, name in names, value)
        out.read(g, name, value, kind)
        if kind is _BIND:
            out.add(g, name)
        elif kind is None:
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


class _Binding:
    """The context manager ``bound`` and ``rebound`` return: writes ``values`` into
    ``slots`` on entry and restores what they held (or their absence) on exit, in reverse
    order, also when the body raises. A class, not a generator: it runs on every
    ``weights.grad``."""

    __slots__ = ("slots", "values", "saved")

    def __init__(self, slots: Sequence[tuple[Any, str]], values: list[Any]):
        self.slots, self.values, self.saved = slots, values, []

    def __enter__(self) -> None:
        saved = self.saved
        try:
            for (holder, name), value in zip(self.slots, self.values):
                if type(holder) is dict and value is not _MISSING:  # the common slot
                    saved.append((holder, name, holder.get(name, _MISSING)))
                    holder[name] = value
                else:
                    saved.append((holder, name, _read(holder, name)))
                    _write(holder, name, value)
        except BaseException:
            self._restore()
            raise
        _ACTIVE.slots.append(self.slots)

    def __exit__(self, *exc: Any) -> None:
        active = _ACTIVE.slots
        if active and active[-1] is self.slots:
            active.pop()
        self._restore()

    def _restore(self) -> None:
        saved, self.saved = self.saved, []
        for holder, name, old in reversed(saved):
            if type(holder) is dict and old is not _MISSING:  # the common slot
                holder[name] = old
            else:
                _write(holder, name, old)


def bound(env: Mapping[str, Any], slots: Sequence[tuple[Any, str]]) -> Any:
    """Context manager: write ``env[name]`` into each slot for the duration; restore the old
    contents (or their absence) afterwards, in reverse order, also when the body raises."""
    return _Binding(slots, [env[name] for _, name in slots])


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
    return _Binding(list(slots), list(values))
