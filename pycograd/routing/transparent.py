"""The pyccolo transparent layer: what numpy's protocols cannot reach.

``__array_ufunc__`` / ``__array_function__`` make ``np.sin(v)`` differentiate anywhere, but two
things in user code bypass them: scalar ``math.*`` (C code that calls ``float(v)``) and
``np.array([...traced...])`` (which asks each element for ``__array__``). ``routed(f)`` returns a
copy of ``f`` whose call sites pyccolo weaves with a ``before_call`` event; its handler swaps the
callee: ``math.sin`` for a dispatcher to ``np.sin`` (``scalar_math``), ``np.array`` for a builder
that stacks traced elements (``constructors``), and a user helper for its own routed copy,
instrumented on demand, so helpers at any depth are routed too.

A numpy function given a list display (``np.mean([a, b])``, ``np.linalg.norm((x, y))``)
reads it with ``np.asarray`` before any protocol can dispatch: such call sites (found in the
source, ``list_args.display_site``) are routed to ``list_args.route``, which builds the lists of
traced values into arrays first.

``np.r_[...]`` / ``np.c_[...]`` are subscripts, not calls (numpy's ``AxisConcatenator`` calls
``np.array`` on each piece): the loads of ``np.r_`` / ``np.c_`` (under any alias of numpy, or
imported by name) are woven with pyccolo's ``after_attribute_load`` / ``load_name`` events, whose
handler swaps in ``construction.RoutedConcatenator`` (pycograd's ``r_`` / ``c_`` when a piece is
traced, numpy's own otherwise). Only loads that may be of them are woven (``LOADS``).

scipy (optional, never imported by pycograd): ``scipy.special.logsumexp``, the distribution
methods (``scipy.stats.norm.logpdf``, keyed by the bound method of scipy's instance) and
``scipy.linalg`` / ``scipy.signal`` functions call ``np.asarray`` before numpy's protocols
can dispatch. When an analysis meets a scipy module, function or distribution, the routes of
every scipy submodule the user has imported (``scipy_special``, ``scipy_stats``,
``linalg.scipy_routes``, ``signal``) join ROUTES,
each a dispatcher that runs pycograd's version only when an argument is traced. scipy's ufuncs
need no routing (``__array_ufunc__``, ``pycograd.ops.special``).

Cost model. Whether a function needs routing is decided once per code object, by reading its
bytecode (global and attribute names, nested code objects, local imports) against its globals,
transitively through user helpers; closures and defaults are looked at per call. The verdict
records the value of every global (and user-module attribute) it read, and holds only while
each is still bound to the same object: a notebook loop that rebinds ``F = np.sin`` then
``F = lambda x: np.array([...])`` gets a fresh verdict (and fresh weaving) for the functions
that call ``F``. A function that needs nothing is returned as is (``routed(f) is f``): a dict
lookup and one identity check per global it reads, on the hot path. In a
routed function only call sites whose callee may need swapping are woven (a static pyccolo
predicate leaves ``np.sum(...)``, ``len(...)`` ... alone), so pyccolo's per-event cost is paid
only where it buys something.

Why not ``pyccolo.instrumented``: it recompiles ``inspect.getsource(f)`` at module level, which
turns a closure's free variables into globals, re-applies decorators, and cannot tell apart two
lambdas on one line. ``source.recompile`` finds the def / lambda in the module's AST, keeps its
free variables free and checks the plain copy against the original bytecode (stale source is
never run); pyccolo's own ``AstRewriter`` does the weaving, and the woven code runs inside
pyccolo's tracing context, where pyccolo dispatches the events to our handler. Code without
source (a ``<string>`` exec) stays unrouted, with a warning when it needs routing.

Limits: a generator (or coroutine) consumed after the routed call has returned runs outside the
tracing context, so unrouted (pyccolo's woven code falls back to the original statements).
Helpers reached only through attributes of objects built at run time (``self.helper(x)``) are
routed when the caller is routed, but cannot make an otherwise plain caller routed.

Threads: pyccolo's tracing state is process-wide, so the outermost routed call holds a lock;
routed calls nested in it (helpers, ``grad(grad(f))``) run without re-entering it.
"""

from __future__ import annotations

import ast
import builtins
import dis
import functools
import importlib
import math
import os
import sys
import sysconfig
import threading
import warnings
import weakref
from collections.abc import Callable
from types import CodeType, FunctionType, MethodType, ModuleType
from typing import Any

import numpy as np

from pycograd.core.trace import Tracer
from pycograd.core.tracebacks import PACKAGE_DIR
from pycograd.numpy_api import list_args
from pycograd.numpy_api.construction import INDEX_ROUTES
from pycograd.routing.constructors import CONSTRUCTOR_NAMES, CONSTRUCTOR_ROUTES, holds_tracer
from pycograd.routing.scalar_math import MATH_NAMES, MATH_ROUTES
from pycograd.routing.source import (
    WOVEN_HELPERS,
    function_node,
    is_woven,
    local_names,
    recompile,
)

ROUTES: dict[Callable, Callable] = {**MATH_ROUTES, **CONSTRUCTOR_ROUTES}
"""Callee -> its routed replacement."""

_ROUTE_TYPES = frozenset(type(k) for k in ROUTES)
LOADS: dict[Any, Any] = dict(INDEX_ROUTES)
"""Values whose loads are swapped (not calls: ``np.r_`` is subscripted) -> the replacement."""
_LOAD_TYPES = frozenset(type(k) for k in LOADS)
LOAD_NAMES = frozenset(("r_", "c_"))
"""Attribute (and local) names that may load a value of LOADS."""
_NP_NAMES = CONSTRUCTOR_NAMES | LOAD_NAMES
_MISSING = object()
_UNKNOWN = object()


# ---- scipy: optional, routed once the user has imported it -----------------------------

def _dispatch(orig: Callable, ours: Callable) -> Callable:
    """Call ``ours`` when an argument is traced (or a tuple holding one), ``orig`` otherwise,
    so untraced calls keep scipy's exact behavior."""
    def call(*args: Any, **kwargs: Any) -> Any:
        for a in (*args, *kwargs.values()):
            if holds_tracer(a):
                return ours(*args, **kwargs)
        return orig(*args, **kwargs)

    call.__name__ = call.__qualname__ = getattr(orig, "__name__", "call")
    call.__doc__, call.__wrapped__ = orig.__doc__, orig
    return call


def _scipy_routes(submodule: str) -> tuple[dict, frozenset]:
    """The routes of one scipy submodule (its callees -> dispatchers) and the attribute names
    that reach them."""
    if submodule == "scipy.linalg":
        from pycograd.numpy_api.linalg import scipy_routes

        routes = {k: _dispatch(k, v) for k, v in scipy_routes().items()}
        return routes, frozenset(k.__name__ for k in routes)
    mod = importlib.import_module(_SCIPY_TABLES[submodule])
    routes = mod.routes(_dispatch)
    return routes, frozenset(mod.NAMES)


_SCIPY_TABLES: dict[str, str] = {"scipy.special": "pycograd.numpy_api.scipy_special",
                                 "scipy.stats": "pycograd.numpy_api.scipy_stats",
                                 "scipy.linalg": "pycograd.numpy_api.linalg",
                                 "scipy.signal": "pycograd.numpy_api.signal",
                                 "scipy.integrate": "pycograd.numpy_api.integrate"}
"""scipy submodule -> the pycograd module with its routes, added to ROUTES once the user has
imported that submodule (pycograd never imports scipy itself)."""
_SCIPY_LOADED: set[str] = set()
_SCIPY_NAMES: set[str] = set()
"""Attribute names that may reach a routed scipy callee (``logsumexp``, ``norm``, ``logpdf``)."""
_SCIPY_TYPES: set[type] = set()
"""Types of the scipy objects whose methods are routed (the distributions)."""


def _load_scipy() -> None:
    """Merge the routes of every scipy submodule imported so far into ROUTES."""
    global _ROUTE_TYPES
    todo = [m for m in _SCIPY_TABLES if m not in _SCIPY_LOADED and m in sys.modules]
    if not todo:
        return
    with _LOCK:
        for m in todo:
            _SCIPY_LOADED.add(m)
            routes, names = _scipy_routes(m)
            ROUTES.update(routes)
            _SCIPY_NAMES.update(names)
            _SCIPY_TYPES.update(type(k.__self__) for k in routes if type(k) is MethodType)
            if m == "scipy.stats":
                from pycograd.numpy_api.scipy_stats import frozen_types

                _SCIPY_TYPES.update(frozen_types())
        _ROUTE_TYPES = frozenset(type(k) for k in ROUTES)


def _from_scipy(v: Any) -> bool:
    """Whether ``v`` (a module, function or object) is scipy's, without importing scipy."""
    if "scipy" not in sys.modules:
        return False
    if isinstance(v, ModuleType):
        name = v.__name__
    elif isinstance(v, (FunctionType, MethodType)):
        name = getattr(v, "__module__", None) or ""
    else:
        name = type(v).__module__
    return name == "scipy" or name.startswith("scipy.")


def _scipy_needs(v: Any, attrs: frozenset) -> bool:
    """Whether reaching scipy's ``v`` through ``attrs`` can call a routed scipy callee."""
    _load_scipy()
    if _routed_callee(v) is not None:
        return True
    if isinstance(v, ModuleType) or type(v) in _SCIPY_TYPES:
        return not attrs.isdisjoint(_SCIPY_NAMES)
    return False


def load_replacement(v: Any) -> Any:
    """The replacement for a value in LOADS, or ``None``."""
    return LOADS.get(v) if type(v) in _LOAD_TYPES else None


def _routed_callee(fn: Any) -> Any:
    """The replacement for a callee in ROUTES, or ``None`` (unhashable callees included)."""
    if type(fn) in _ROUTE_TYPES:
        try:
            return ROUTES.get(fn)
        except TypeError:
            return None
    return None


# ---- which code is the user's -----------------------------------------------------

_PKG_DIR = PACKAGE_DIR
_USER_DIRS = (os.path.join(_PKG_DIR, "examples") + os.sep,)
_LIB_DIRS = tuple({sysconfig.get_paths()[k] + os.sep
                   for k in ("stdlib", "platstdlib", "purelib", "platlib")} | {_PKG_DIR})
_USER_FILE: dict[str, bool] = {}
_USER_MODULE: dict[str, bool] = {}


def _is_user(code: CodeType) -> bool:
    """User code (routable): not the standard library, site-packages, or pycograd itself."""
    return _is_user_file(code.co_filename)


def _is_user_module(name: str) -> bool:
    r = _USER_MODULE.get(name)
    if r is None:
        f = getattr(sys.modules.get(name), "__file__", None)
        r = _USER_MODULE[name] = f is not None and _is_user_file(f)
    return r


def _is_user_file(fn: str) -> bool:
    r = _USER_FILE.get(fn)
    if r is None:
        r = _USER_FILE[fn] = fn.startswith(_USER_DIRS) or not (
            fn.startswith(_LIB_DIRS) or fn.startswith("<frozen"))
    return r


# ---- deciding: does a function need routing? ------------------------------------------

class _Plan:
    """What is known about one code object: whether its globals make it need routing, what
    that verdict depends on, and (lazily) its woven code."""

    __slots__ = ("code", "globals", "needs", "deps", "attrs", "plain", "library", "icode",
                 "routed", "callees")

    def __init__(self, code: CodeType, glob: dict, needs: bool, deps: tuple, attrs: frozenset):
        self.code, self.globals, self.needs, self.deps, self.attrs = code, glob, needs, deps, attrs
        self.plain = not needs
        self.library = not _is_user(code)
        self.icode: Any = _UNKNOWN
        self.routed: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.callees: dict[int, tuple[FunctionType, Any]] = {}

    def valid(self) -> bool:
        for ns, name, value in self.deps:
            now = ns.get(name, _MISSING)
            if now is not value:
                if value is not _DATA:
                    return False
                if type(now) not in _INERT and not isinstance(now, Tracer):  # _is_data, inline
                    return False
        return True


_PLANS: dict[int, _Plan] = {}
"""Plans by ``id(code)`` (hashing a code object hashes its contents: too slow for the hot path);
an entry counts only while ``plan.code is code``."""
_LOCK = threading.RLock()


def _scan(code: CodeType) -> tuple[set, set, set]:
    """Global names, attribute names and locally imported modules of ``code`` and the code
    nested in it."""
    names, attrs, imports = set(), set(), set()
    todo = [code]
    while todo:
        c = todo.pop()
        for ins in dis.get_instructions(c):
            op = ins.opname
            if op in ("LOAD_GLOBAL", "LOAD_NAME"):
                names.add(ins.argval)
            elif op in ("LOAD_ATTR", "LOAD_METHOD", "IMPORT_FROM"):
                attrs.add(ins.argval)
            elif op == "IMPORT_NAME":
                imports.add(ins.argval.partition(".")[0])
        todo.extend(k for k in c.co_consts if isinstance(k, CodeType))
    return names, attrs, imports


def _value_needs(v: Any, attrs: frozenset, deps: list | None, walk: _Walk | None) -> bool:
    """Whether calling through ``v`` (a global, cell or default of the function) can reach a
    routed callee. Appends to ``deps`` what the answer depends on."""
    if type(v) is functools.partial:  # partial(scipy.stats.norm.pdf, ...) in a closure
        return _value_needs(v.func, attrs | _CALLING, deps, walk)
    if _from_scipy(v):
        return _scipy_needs(v, attrs)
    if isinstance(v, ModuleType):
        if v is math:
            return not attrs.isdisjoint(MATH_NAMES)
        if v is np:
            return not attrs.isdisjoint(_NP_NAMES)
        f = getattr(v, "__file__", None)
        if f is None or not _is_user_file(f):
            return False
        found = False
        for a in attrs:
            w = v.__dict__.get(a, _MISSING)
            if deps is not None:
                deps.append((v.__dict__, a, w))
            if callable(w) and not isinstance(w, ModuleType):
                found = _value_needs(w, attrs, deps, walk) or found
        return found
    if _routed_callee(v) is not None or load_replacement(v) is not None:
        return True
    if type(v) is MethodType:
        v = v.__func__
    if type(v) is FunctionType and _is_user(v.__code__):
        plan = _plan_for(v, walk)
        if plan is None:
            return False
        if deps is not None:
            deps.extend(plan.deps)
        return plan.needs or _extras_need(v, plan)
    cls = v if isinstance(v, type) else type(v)
    if not _is_user_module(cls.__module__):
        return False
    for a in attrs | _CALLING:
        m = _class_attr(cls, a)
        if type(m) is FunctionType and _value_needs(m, attrs, deps, walk):
            return True
    if deps is None and cls is not v:  # looked at per call: the instance's own attributes too
        own = getattr(v, "__dict__", None)
        if own:
            for a in attrs:
                w = own.get(a)
                if w is not None and type(w) not in _INERT and _value_needs(w, attrs, None, walk):
                    return True
    return False


_CALLING = frozenset({"__call__", "__init__"})


def _class_attr(cls: type, name: str) -> Any:
    """A method of a user class (for objects and classes reached from a function), with
    static and class methods unwrapped."""
    for k in cls.__mro__:
        m = k.__dict__.get(name, _MISSING)
        if m is not _MISSING:
            return getattr(m, "__func__", m)
    return None


def _analyze(code: CodeType, glob: dict, walk: _Walk) -> _Plan:
    """The plan of ``code``, from its globals and local imports."""
    if is_woven(code):
        plan = _Plan(code, glob, True, (), frozenset())
        plan.icode = code
        return plan
    if not _is_user(code):
        return _Plan(code, glob, False, (), frozenset())
    names, attrs, imports = _scan(code)
    attrs = frozenset(attrs)
    deps: list = []
    walk.visiting.add(code)
    needs = False
    for name in names:
        if name.startswith(WOVEN_HELPERS):
            continue
        v = glob.get(name, _MISSING)
        if _is_data(v):  # a weight rebound every step (an array, a traced value): no re-plan
            deps.append((glob, name, _DATA))
            continue
        deps.append((glob, name, v))  # any other rebinding (F = np.sin, then a lambda) re-plans
        if v is _MISSING:
            continue
        needs = _value_needs(v, attrs, deps, walk) or needs
    for mod in imports:
        needs = _value_needs(sys.modules.get(mod), attrs, None, walk) or needs
    if not needs and _builds_sequences(code):
        needs = _list_display_sites(code, glob)
    walk.visiting.discard(code)
    unique = {(id(ns), name): (ns, name, v) for ns, name, v in deps}
    return _Plan(code, glob, needs, tuple(unique.values()), attrs)


_BUILDS = frozenset({"BUILD_LIST", "BUILD_TUPLE"})


def _builds_sequences(code: CodeType) -> bool:
    """Cheap pre-check: whether ``code`` (or code nested in it) builds a list or tuple from
    computed values (a display such as ``[a, b]``)."""
    todo = [code]
    while todo:
        c = todo.pop()
        for ins in dis.get_instructions(c):
            if ins.opname in _BUILDS and ins.arg:
                return True
        todo.extend(k for k in c.co_consts if isinstance(k, CodeType))
    return False


def _list_display_sites(code: CodeType, glob: dict) -> bool:
    """Whether ``code``'s source passes a list / tuple display to a numpy function where it
    reads an array (``np.mean([a, b])``)."""
    node = function_node(code, glob)
    if node is None:
        return False
    _SCOPE.globals, _SCOPE.locals = glob, local_names(code)
    try:
        return any(isinstance(n, ast.Call) and list_args.display_site(n, _static_value(n.func))
                   for n in ast.walk(node))
    finally:
        _SCOPE.globals = None


class _Walk:
    """State of one transitive analysis: the code objects on the path (recursion), and whether
    a cycle was cut short (then only the root's verdict is final)."""

    __slots__ = ("visiting", "cut")

    def __init__(self) -> None:
        self.visiting: set = set()
        self.cut = False


def _plan_for(f: FunctionType, walk: _Walk | None = None) -> _Plan | None:
    """The valid plan of ``f`` (computed now if missing or stale); ``None`` on a cycle."""
    code = f.__code__
    plan = _PLANS.get(id(code))
    if (plan is not None and plan.code is code and plan.globals is f.__globals__
            and (not plan.deps or plan.valid())):
        return plan
    if walk is not None and code in walk.visiting:
        walk.cut = True
        return None
    with _LOCK:
        root = walk is None
        walk = _Walk() if root else walk
        plan = _analyze(code, f.__globals__, walk)
        if root or not walk.cut:
            _PLANS[id(code)] = plan
    return plan


_INERT = frozenset({int, float, complex, bool, str, bytes, type(None), np.ndarray, np.float64})
_DATA = object()
"""A dependency on a global that holds data (``_is_data``): any data value keeps the plan."""


def _is_data(v: Any) -> bool:
    """Whether ``v`` is a value no call can go through: an array, a number, a traced value."""
    return type(v) in _INERT or isinstance(v, Tracer)


def _extras_need(f: FunctionType, plan: _Plan) -> bool:
    """Whether a closure cell or a default argument of ``f`` makes it need routing."""
    cells = f.__closure__
    if cells:
        for c in cells:
            try:
                v = c.cell_contents
            except ValueError:
                continue
            if type(v) not in _INERT and _value_needs(v, plan.attrs, None, None):
                return True
    defaults = f.__defaults__
    if defaults:
        for v in defaults:
            if type(v) not in _INERT and _value_needs(v, plan.attrs, None, None):
                return True
    return False


# ---- weaving: pyccolo rewrites the call sites ----------------------------------------

class _Scope(threading.local):
    """The function being woven: its globals and local names, for the static predicate."""

    globals: dict | None = None
    locals: frozenset = frozenset()


_SCOPE = _Scope()


def _static_value(expr: ast.expr) -> Any:
    """What ``expr`` (a callee) evaluates to, when that is knowable before running it."""
    if isinstance(expr, ast.Name):
        if expr.id in _SCOPE.locals:
            return _UNKNOWN
        v = _SCOPE.globals.get(expr.id, _MISSING)
        return builtins.__dict__.get(expr.id, _UNKNOWN) if v is _MISSING else v
    if isinstance(expr, ast.Attribute):
        base = _static_value(expr.value)
        if isinstance(base, ModuleType):
            return getattr(base, expr.attr, _UNKNOWN)
    return _UNKNOWN


def _may_route(v: Any) -> bool:
    if v is _UNKNOWN or _routed_callee(v) is not None:
        return True
    if type(v) is MethodType:
        v = v.__func__
    if type(v) is FunctionType:  # a global helper: rebinding it re-plans (and re-weaves) us
        return _needs(v) is not None
    return not isinstance(v, (type, np.ufunc, ModuleType, type(len), type(np.sum)))


def _weave_call(node: ast.AST) -> bool:
    """Static pyccolo predicate: weave a ``before_call`` event into this call site?"""
    if _SCOPE.globals is None or not isinstance(node, ast.Call):
        return False
    v = _static_value(node.func)
    return _may_route(v) or list_args.display_site(node, v)


def _weave_load(node: ast.AST) -> bool:
    """Static pyccolo predicate: weave a load event into this name / attribute load? Where
    it may load ``np.r_`` / ``np.c_`` (a local or unknown value only by those names)."""
    if _SCOPE.globals is None:
        return False
    if isinstance(node, ast.Name):
        v = _static_value(node)
        return load_replacement(v) is not None or (v is _UNKNOWN and node.id in LOAD_NAMES)
    if isinstance(node, ast.Attribute) and node.attr in LOAD_NAMES:
        v = _static_value(node)
        return v is _UNKNOWN or load_replacement(v) is not None
    return False


@functools.cache
def tracer() -> Any:
    """The pyccolo tracer that swaps callees at woven call sites (pyccolo is imported on first
    use: a third of ``import pycograd`` otherwise, for code that may never need it)."""
    import pyccolo as pyc

    class RoutingTracer(pyc.BaseTracer):
        should_patch_meta_path = False
        global_guards_enabled = False
        requires_ast_bookkeeping = False
        instrument_all_files = True
        multiple_threads_allowed = True
        has_sys_trace_events = False  # only woven events: never install a sys.settrace hook

        @pyc.register_handler(pyc.before_call, when=_weave_call, static=True)
        def swap_callee(self, ret: Any, *_: Any, **__: Any) -> Any:
            return _replacement(ret)

        @pyc.register_handler((pyc.after_attribute_load, pyc.load_name), when=_weave_load,
                              static=True)
        def swap_load(self, ret: Any, *_: Any, **__: Any) -> Any:
            r = load_replacement(ret)  # not `or`: a concatenator has len 0, so it is falsy
            return ret if r is None else r

    return RoutingTracer.instance()


def _replacement(fn: Any) -> Any:
    """What a woven call site calls instead of ``fn`` (``fn`` itself when nothing applies)."""
    t = type(fn)
    if t is FunctionType:
        return _instance(fn) or _routed_callee(fn) or _scipy_callee(fn)
    if t is MethodType:
        func = fn.__func__
        if type(func) is FunctionType:
            inst = _instance(func)
            if inst is not None:
                return MethodType(inst, fn.__self__)
            if type(fn.__self__) in _SCIPY_TYPES:
                return _routed_callee(fn) or _frozen_method(fn)
        return fn
    r = _routed_callee(fn)
    if r is not None:
        return r
    if list_args.is_numpy_callable(fn):
        return list_args.route(fn)
    if t is functools.partial:  # partial(scipy.stats.multivariate_normal.pdf, ...)
        inner = _replacement(fn.func)
        return fn if inner is fn.func else functools.partial(inner, *fn.args, **fn.keywords)
    call = _call_method(t)
    if call is not None:
        inst = _instance(call)
        if inst is not None:
            return MethodType(inst, fn)
    return fn


def _scipy_callee(fn: Any) -> Any:
    """A scipy function reached at run time only (passed in as an argument), whose submodule
    no analysis has loaded yet: its route, or ``fn``."""
    if not _from_scipy(fn):
        return fn
    _load_scipy()
    return _routed_callee(fn) or fn


def _frozen_method(fn: MethodType) -> Any:
    """A method of scipy's frozen distribution (``scipy.stats.norm(0, 2).logpdf``): its route,
    or ``fn``."""
    from pycograd.numpy_api.scipy_stats import frozen_method

    return frozen_method(fn, _dispatch) or fn


def _call_method(t: type) -> FunctionType | None:
    """The Python ``__call__`` of a class (a callable model object), if it has one."""
    for k in t.__mro__:
        c = k.__dict__.get("__call__")
        if c is not None:
            return c if type(c) is FunctionType else None
    return None


def _needs(f: FunctionType) -> _Plan | None:
    plan = _plan_for(f)
    if plan is None or plan.library or not (plan.needs or ((f.__closure__ or f.__defaults__)
                                           and _extras_need(f, plan))):
        return None
    return plan


def _instance(f: FunctionType) -> FunctionType | None:
    """``f`` with woven code (no tracing context of its own), or ``None`` if it needs none."""
    plan = _needs(f)
    if plan is None:
        return None
    pair = plan.routed.get(f)
    if pair is None:
        pair = _bind(f, plan)
        if pair is None:
            return None
    return pair[0]


def compiled_by_pyccolo(code: CodeType) -> bool:
    """Code compiled by pyccolo from DSL source (a notebook cell, ``pycograd run``): it
    cannot be recompiled from its source, and the DSL's own tracer routes its call sites."""
    from pyccolo.extra_builtins import PYCCOLO_BUILTIN_PREFIX

    return any(n.startswith(PYCCOLO_BUILTIN_PREFIX) for n in code.co_names)


def _bind(f: FunctionType, plan: _Plan) -> tuple | None:
    if plan.icode is None:  # known: no source to weave
        return None
    with _LOCK:
        if plan.icode is _UNKNOWN:
            plan.icode = _weave(plan.code, f.__globals__)
            if plan.icode is None and not compiled_by_pyccolo(plan.code):
                warnings.warn(
                    f"pycograd cannot route math.* / np.array / np.r_ in {f.__qualname__}: its "
                    "source is not available (code made by exec / eval of a string); traced "
                    "values reaching them will raise. Define it in a file or a notebook cell, "
                    "or write np.sin / np.stack / pycograd.r_ instead of math.sin / np.array "
                    "/ np.r_",
                    stacklevel=4)
        if plan.icode is None:
            return None
        inst = FunctionType(plan.icode, f.__globals__, f.__name__, f.__defaults__,
                            f.__closure__)
        inst.__kwdefaults__ = f.__kwdefaults__
        pair = (inst, _entry(inst, f))
        plan.routed[f] = pair
        return pair


_OWNER: list = [None]


def _entry(inst: FunctionType, f: FunctionType) -> Callable:
    """The routed function handed to callers: runs ``inst`` inside the tracing context."""
    get_ident = threading.get_ident

    def routed_call(*args: Any, **kwargs: Any) -> Any:
        if _OWNER[0] == get_ident():
            return inst(*args, **kwargs)
        with _LOCK:
            _OWNER[0] = get_ident()
            done = tracer().tracing_non_context()  # pyccolo's tracing_enabled(), sans generators
            try:
                return inst(*args, **kwargs)
            finally:
                done()
                _OWNER[0] = None

    for a in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(routed_call, a, getattr(f, a))
    return routed_call


def _weave(code: CodeType, glob: dict) -> CodeType | None:
    """``code`` with pyccolo's ``before_call`` events woven into the call sites that
    ``_weave_call`` picks, or ``None`` when its source is not available."""

    def rewrite(module: ast.Module) -> ast.Module:
        _SCOPE.globals, _SCOPE.locals = glob, local_names(code)
        try:
            t = tracer()
            with t.tracing_disabled():
                rewriter = t.make_ast_rewriter(path=code.co_filename, tracers=[t])
                rewriter.gc_bookkeeping = False  # leave other woven code's bookkeeping alone
                return rewriter.visit(module)
        finally:
            _SCOPE.globals = None

    return recompile(code, glob, rewrite)


# ---- entry points --------------------------------------------------------------------

def routed(f: Callable) -> Callable:
    """``f`` with scalar ``math.*`` and ``np.array``-style constructors routed to
    differentiable numpy in it and in the user helpers it calls; ``f`` itself when it
    needs none (the common case, a cached check per code object)."""
    if type(f) is not FunctionType:
        return _routed_other(f)
    code = f.__code__
    plan = _PLANS.get(id(code))
    if plan is not None and plan.code is code and plan.globals is f.__globals__:
        if plan.library:  # its route is known already (``_remember_callee``)
            hit = plan.callees.get(id(f))
            if hit is not None and hit[0] is f:
                return hit[1]
        elif (plan.plain and f.__closure__ is None and f.__defaults__ is None
              and plan.valid()):
            return f
    plan = _needs(f)
    if plan is None:
        return _remember_callee(f, _library_callee(f))
    pair = plan.routed.get(f) or _bind(f, plan)
    return f if pair is None else pair[1]


def _remember_callee(f: FunctionType, route: Any) -> Any:
    """Keep the route of library function ``f`` on its code's plan: it depends only on
    which function ``f`` is (ROUTES is keyed by identity and only scipy's entries are added
    later), so ``relu`` or ``cross_entropy`` called in a DSL stage every step look it up
    once. scipy's functions, whose routes arrive when their submodule is imported, and
    closures, made anew by the call, are not kept; a few per code at most."""
    plan = _PLANS.get(id(f.__code__))
    if (plan is not None and plan.library and plan.code is f.__code__
            and f.__closure__ is None and not _from_scipy(f)):
        if len(plan.callees) >= 8:
            plan.callees.clear()
        plan.callees[id(f)] = (f, route)
    return route


def _library_callee(f: Any) -> Any:
    """A library callable handed straight to a transform (``grad(math.sin)``,
    ``jacrev(scipy.linalg.expm)``, ``grad(np.mean)([a, b])``): its route, or ``f``."""
    r = _routed_callee(f)
    if r is not None:
        return r
    if list_args.is_numpy_callable(f):  # a list of traced leaves: np.mean([a, b])
        return list_args.route(f)
    if _from_scipy(f):
        _load_scipy()
        r = _routed_callee(f)
        if r is None and type(f) is MethodType and type(f.__self__) in _SCIPY_TYPES:
            r = _frozen_method(f)
        return f if r is None else r
    return f


def _routed_other(f: Any) -> Any:
    r = _library_callee(f)
    if r is not f:
        return r
    if type(f) is MethodType:
        r = routed(f.__func__)
        return f if r is f.__func__ else MethodType(r, f.__self__)
    if type(f) is functools.partial:
        r = routed(f.func)
        return f if r is f.func else functools.partial(r, *f.args, **f.keywords)
    call = _call_method(type(f))
    if call is not None:
        r = routed(call)
        return f if r is call else MethodType(r, f)
    return f


def transparent(f: Callable) -> Callable:
    """Decorator form of ``routed``, for functions called with traced arguments from code that
    pycograd does not route (library code, callbacks): ``@transparent def f(x): ...``.

    Examples:
        ```python
        import math
        from pycograd import transparent

        @transparent
        def activation(x):              # math.* on a traced value, called from code
            return math.tanh(x) * 2     # that pycograd does not route itself

        # e.g. a library's callback: scipy.optimize calls it with pycograd's traced values
        ```
    """

    @functools.wraps(f)
    def call(*args: Any, **kwargs: Any) -> Any:
        return routed(f)(*args, **kwargs)

    return call
