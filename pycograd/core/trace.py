"""The interpreter stack (autodidax-style) and ``bind``, the one entry into it.

Each transform (reverse tape, jvp, vmap, abstract shapes, graph capture) is a ``Trace``
at a level of the stack; a traced value is a ``Tracer`` that points at its trace. ``bind``
hands a primitive application to the highest-level trace among its arguments; that trace
unwraps its own tracers and binds again one level down, until plain arrays reach ``impl``.
Level 0 belongs to the stand-alone eager tape (``Var(x)`` outside any transform).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from pycograd.core.errors import IndexingError, LeakedTracerError, ShapeError
from pycograd.core.primitive import Primitive


class Trace:
    """One interpreter level. Subclasses implement ``process``."""

    __slots__ = ("level", "alive")

    def __init__(self, level: int):
        self.level = level
        self.alive = True

    def process(self, prim: Primitive, args: tuple, params: dict) -> Any:
        raise NotImplementedError

    def process_custom_vjp(self, fun: Any, fwd: Any, bwd: Any, args: tuple) -> Any:
        """A function with a user VJP rule; interpreters that do not differentiate in
        reverse just run it."""
        return fun(*args)

    def process_custom_jvp(self, fun: Any, rule: Any, args: tuple) -> Any:
        """A function with a user JVP rule; interpreters that do not differentiate just
        run it."""
        return fun(*args)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} level={self.level}>"


class Tracer:
    """Base of every traced value. The numpy protocols and the ndarray surface are attached
    by ``pycograd.numpy_api`` so that this class stays about the stack only."""

    __slots__ = ("_trace",)
    __array_priority__ = 1000
    _trace: Trace


#: Every way Python or numpy reads a concrete value out of an array, and how an error names it.
VALUE_READS = {
    "__bool__": "bool() (Python control flow such as `if x > 0:`)",
    "__float__": "float()",
    "__int__": "int()",
    "__index__": "using as an index or a size",
    "__complex__": "complex()",
    "__array__": "np.asarray()",
    "item": ".item()",
    "tolist": ".tolist()",
}


def refuse_value_reads(refusal: Callable[[str], Callable]) -> Callable[[type], type]:
    """Class decorator for a tracer that has no data (capture, eval_shape): each entry of
    ``VALUE_READS`` becomes ``refusal(what)``, so the two transforms cannot drift apart on
    which reads they refuse; only their messages differ."""
    def install(cls: type) -> type:
        for name, what in VALUE_READS.items():
            setattr(cls, name, refusal(what))
        return cls
    return install


class _ThreadStack(threading.local):
    """The stack of one thread (as JAX's trace state): a transform in one thread never numbers
    its level after, nor pops, another thread's traces. A traced value carried into another
    thread meets a different trace at its level there, a ``LeakedTracerError``."""

    def __init__(self) -> None:
        self.traces: list[Trace] = []


_STACK = _ThreadStack()


@contextmanager
def new_trace(cls: type, *args: Any) -> Iterator[Any]:
    """Push a fresh trace of ``cls`` one level above the calling thread's top; pop it on
    exit."""
    stack = _STACK.traces
    trace = cls(len(stack) + 1, *args)
    stack.append(trace)
    try:
        yield trace
    finally:
        stack.pop()
        trace.alive = False


def live_traces() -> tuple[Trace, ...]:
    """The traces in force, outermost first: for code that must make a value at a level no
    argument carries (a constant of symbolic shape, which only ``eval_shape`` can hold).
    Per thread, like the stack itself."""
    return tuple(_STACK.traces)


def find_top(args: Any, what: str = "an op") -> Trace | None:
    """The highest-level trace among ``args``' tracers (None if none is traced)."""
    top = None
    for a in args:
        if isinstance(a, Tracer):
            t = a._trace
            if top is None or t.level > top.level:
                top = t
            elif t is not top and t.level == top.level:
                raise LeakedTracerError(
                    f"{what}: got values from two different transforms at level "
                    f"{t.level} ({t!r} and {top!r}); a traced value escaped the function it "
                    "was created in (e.g. stored in a global or closure). Return it instead.")
    return top


def bind(prim: Primitive, args: Any, params: dict) -> Any:
    """Apply ``prim``: to the top trace among ``args`` if any is traced, else to ``impl``."""
    top = find_top(args, prim.name)
    if top is not None:
        if not top.alive and top.level:
            raise LeakedTracerError(
                f"{prim.name}: got a traced value from a transform that has already returned "
                f"({top!r}); a traced value escaped the function it was created in (e.g. "
                "appended to a global list). Return it from the function instead.")
        return top.process(prim, args, params)
    return apply_impl(prim, args, params)


def apply_impl(prim: Primitive, args: Any, params: dict) -> Any:
    """Run ``prim`` on untraced values, turning numpy's shape complaints into ShapeError."""
    try:
        return prim.impl(*args, **params)
    except IndexError as e:  # numpy's own bounds check, on the values one level down
        if isinstance(e, IndexingError) or prim.calls_user_code:
            raise
        raise IndexingError(f"{prim.name}: {e}") from e
    except ValueError as e:
        if isinstance(e, (ShapeError, np.linalg.LinAlgError)) or prim.calls_user_code:
            raise
        raise shape_error(prim, args, params, e) from e


def shape_error(prim: Primitive, args: tuple, params: dict, cause: Exception) -> ShapeError:
    desc = " and ".join(str(np.shape(a)) for a in args)
    extra = {k: v for k, v in params.items() if k in ("axis", "axes", "shape", "spec")}
    where = f" with {extra}" if extra else ""
    return ShapeError(f"{prim.name}: incompatible shapes {desc}{where} ({cause})")


Primitive.bind = lambda self, *args, **params: bind(self, args, params)
