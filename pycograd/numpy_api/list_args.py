"""numpy functions given Python lists of traced values: ``np.mean([a, b])``.

numpy reads a list argument as one array (``np.asarray``), which asks each element for
``__array__``; a tracer refuses (the gradient would be lost). And numpy's dispatch looks only
at the top-level arguments, so with no tracer there ``__array_function__`` never runs. Here a
list (or tuple) holding traced values, bound to a parameter that numpy reads as an array, is
built into a differentiable array first (``constructors.build``: ``np.stack`` of the
elements), exactly what ``np.asarray`` would have made of it; then numpy's protocols take over.

Which parameters: every parameter of the function, except those numpy reads as shapes, axes
or options (``SKIPPED``) and those that take a *sequence* of arrays (``np.concatenate``'s
``arrays``, ``*operands``...), whose elements numpy's dispatch already sees.

Two ways in: ``Tracer.__array_function__`` calls ``with_lists_built`` when another argument
is traced (``np.append([a, b], c)``); the transparent layer swaps ``route(np.mean)`` in at call
sites that pass a list or tuple display (``np.mean([a, b])``, see ``display_site``).
"""

from __future__ import annotations

import ast
import functools
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from pycograd.numpy_api.constructors import CONSTRUCTOR_ROUTES, build, holds_tracer

SKIPPED = frozenset({
    # shapes, axes, options: never data
    "shape", "newshape", "axis", "axes", "source", "destination", "reps", "size", "dtype",
    "order", "out", "indices_or_sections", "pad_width", "subscripts", "ord", "keepdims",
    "casting", "where", "like", "device", "copy", "kind", "side", "sorter", "mode", "obj",
    "signature", "subok", "ndmin", "ndmax", "optimize", "ddof", "correction",
    # sequences of arrays: numpy's dispatch sees their elements already
    "arrays", "tup", "arys", "xi", "condlist", "choicelist", "choices", "operands", "keys",
    "seq",
})

_ArrayFunction = type(np.mean)


def is_numpy_callable(fn: Any) -> bool:
    """A numpy function or ufunc that may read a list argument as an array (numpy's own
    constructors and joiners have routes of their own)."""
    if isinstance(fn, np.ufunc):
        return True
    if type(fn) is _ArrayFunction:
        try:
            return fn not in CONSTRUCTOR_ROUTES
        except TypeError:
            return False
    return False


@functools.cache
def _array_params(fn: Any) -> tuple[tuple[str, ...], frozenset[str]] | None:
    """``(positional names, keyword names)`` of the parameters ``fn`` reads as arrays, or
    None when numpy gives no signature."""
    if isinstance(fn, np.ufunc):
        return tuple(f"in{i}" for i in range(fn.nin)), frozenset()
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    positional, keywords = [], set()
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            break  # ``*operands``: a sequence numpy's dispatch already looks into
        wanted = p.name not in SKIPPED
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            positional.append(p.name if wanted else "")
        if wanted and p.kind != p.POSITIONAL_ONLY:
            keywords.add(p.name)
    return tuple(positional), frozenset(keywords)


def _is_list(a: Any) -> bool:
    return type(a) in (list, tuple)


def as_array(a: Any) -> Any:
    """What numpy's ``np.asarray`` makes of a list, differentiable in its traced elements (a
    ragged list is left to numpy's own error)."""
    if holds_tracer(a):
        return build(a)
    try:
        return np.asarray(a)
    except ValueError:
        return a


def with_lists_built(fn: Any, args: tuple, kwargs: dict,
                     dispatched: bool = False) -> tuple[tuple, dict] | None:
    """``(args, kwargs)`` with each list / tuple that ``fn`` reads as an array made one, or
    None when nothing changes. Before dispatch (``dispatched=False``) only when some list
    holds a traced value; in ``__array_function__`` (``dispatched=True``) always, since
    pycograd's rules take arrays (``np.append([1.0, 2.0], x)``)."""
    spec = _array_params(fn)
    if spec is None:
        return None
    positional, keywords = spec
    todo = [i for i, a in enumerate(args[:len(positional)]) if positional[i] and _is_list(a)]
    keys = [k for k, a in kwargs.items() if k in keywords and _is_list(a)]
    if not (todo or keys) or not (dispatched or any(holds_tracer(args[i]) for i in todo)
                                  or any(holds_tracer(kwargs[k]) for k in keys)):
        return None
    new_args = list(args)
    for i in todo:
        new_args[i] = as_array(args[i])
    new_kwargs = dict(kwargs)
    for k in keys:
        new_kwargs[k] = as_array(kwargs[k])
    return tuple(new_args), new_kwargs


@functools.cache
def route(fn: Any) -> Callable:
    """What a routed call site runs instead of numpy's ``fn``: ``fn`` with its lists of traced
    values built into arrays."""
    def call(*args: Any, **kwargs: Any) -> Any:
        built = with_lists_built(fn, args, kwargs)
        return fn(*args, **kwargs) if built is None else fn(*built[0], **built[1])

    call.__name__ = call.__qualname__ = getattr(fn, "__name__", "call")
    call.__wrapped__ = fn
    return call


def _display(node: ast.expr) -> bool:
    """A list / tuple display with a computed element (``[a, b]``, not ``[1, 2]``)."""
    if isinstance(node, (ast.List, ast.Tuple)):
        return any(not isinstance(e, ast.Constant) for e in node.elts)
    return False


def display_site(call: ast.Call, fn: Any) -> bool:
    """Whether this call of numpy's ``fn`` passes a list / tuple display where ``fn`` reads an
    array: then its elements may be traced, and the call site is routed."""
    if not is_numpy_callable(fn):
        return False
    spec = _array_params(fn)
    if spec is None:
        return False
    positional, keywords = spec
    for i, a in enumerate(call.args):
        if isinstance(a, ast.Starred):
            return False
        if i < len(positional) and positional[i] and _display(a):
            return True
    return any(k.arg in keywords and _display(k.value) for k in call.keywords)
