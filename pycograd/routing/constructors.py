"""``np.array([...])`` and friends over traced values, as the transparent layer swaps them in.

``np.array`` asks every element for ``__array__``, which a tracer refuses (it would drop the
gradient), and it does not dispatch ``__array_function__``. The replacements build the same
array with ``np.stack`` of the elements, recursively, so the result is differentiable; plain
numbers become arrays on the way. When nothing inside is traced the original numpy function runs
with the original arguments, so plain data is untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pycograd.core.trace import Tracer

_np_array = np.array
_np_asarray = np.asarray


def holds_tracer(obj: Any) -> bool:
    """Whether ``obj`` is traced or a (nested) list / tuple holding a traced value."""
    if isinstance(obj, Tracer):
        return True
    if type(obj) in (list, tuple):
        for e in obj:
            if holds_tracer(e):
                return True
    return False


def build(obj: Any) -> Any:
    """The array ``np.array(obj)`` would give, differentiable in its traced elements."""
    if isinstance(obj, Tracer):
        return obj
    if type(obj) in (list, tuple) and holds_tracer(obj):
        return np.stack([build(e) for e in obj])
    return _np_asarray(obj)


def _finish(out: Any, dtype: Any, ndmin: int = 0) -> Any:
    if dtype is not None:
        out = out.astype(dtype)
    if ndmin > out.ndim:
        out = out.reshape((1,) * (ndmin - out.ndim) + tuple(out.shape))
    return out


def array(obj: Any, dtype: Any = None, *args: Any, ndmin: int = 0, **kwargs: Any) -> Any:
    if not holds_tracer(obj):
        return _np_array(obj, dtype, *args, ndmin=ndmin, **kwargs)
    return _finish(build(obj), dtype, ndmin)


def _as(orig: Callable) -> Callable:
    def as_array(a: Any, dtype: Any = None, *args: Any, **kwargs: Any) -> Any:
        if not holds_tracer(a):
            return orig(a, dtype, *args, **kwargs)
        return _finish(build(a), dtype)
    as_array.__name__ = as_array.__qualname__ = orig.__name__
    return as_array


def _joining(orig: Callable) -> Callable:
    """``np.stack`` and kin: dispatch only sees a tracer at the top level of the sequence, so
    nested lists of traced values are built into arrays first."""
    def join(arrays: Any, *args: Any, **kwargs: Any) -> Any:
        if type(arrays) in (list, tuple) and holds_tracer(arrays):
            arrays = [build(a) if type(a) in (list, tuple) else a for a in arrays]
        return orig(arrays, *args, **kwargs)
    join.__name__ = join.__qualname__ = orig.__name__
    return join


CONSTRUCTOR_ROUTES: dict[Callable, Callable] = {
    np.array: array,
    **{f: _as(f) for f in (np.asarray, np.asanyarray, np.ascontiguousarray)},
    **{f: _joining(f) for f in (np.stack, np.concatenate, np.vstack, np.hstack)},
}
"""numpy constructor -> what a routed call site runs instead."""

CONSTRUCTOR_NAMES: frozenset[str] = frozenset(f.__name__ for f in CONSTRUCTOR_ROUTES)
