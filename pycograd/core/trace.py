"""The interpreter stack (autodidax-style) and ``bind``, the one entry into it.

Each transform (reverse tape, jvp, vmap, abstract shapes, graph capture) is a ``Trace``
at a level of the stack; a traced value is a ``Tracer`` that points at its trace. ``bind``
hands a primitive application to the highest-level trace among its arguments; that trace
unwraps its own tracers and binds again one level down, until plain arrays reach ``impl``.
Level 0 belongs to the stand-alone eager tape (``Var(x)`` outside any transform).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pycograd.core.errors import LeakedTracerError, ShapeError
from pycograd.core.primitive import Primitive


class Trace:
    """One interpreter level. Subclasses implement ``process``."""

    __slots__ = ("level",)

    def __init__(self, level: int):
        self.level = level

    def process(self, prim: Primitive, args: tuple, params: dict) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} level={self.level}>"


class Tracer:
    """Base of every traced value. The numpy protocols and the ndarray surface are attached
    by ``pycograd.numpy_api`` so that this class stays about the stack only."""

    __slots__ = ("_trace",)
    __array_priority__ = 1000
    _trace: Trace


_STACK: list[Trace] = []


@contextmanager
def new_trace(cls: type, *args: Any) -> Iterator[Any]:
    """Push a fresh trace of ``cls`` one level above the current top; pop it on exit."""
    trace = cls(len(_STACK) + 1, *args)
    _STACK.append(trace)
    try:
        yield trace
    finally:
        _STACK.pop()


def bind(prim: Primitive, args: tuple, params: dict) -> Any:
    """Apply ``prim``: to the top trace among ``args`` if any is traced, else to ``impl``."""
    top = None
    for a in args:
        if isinstance(a, Tracer):
            t = a._trace
            if top is None or t.level > top.level:
                top = t
            elif t is not top and t.level == top.level:
                raise LeakedTracerError(
                    f"{prim.name}: got values from two different transforms at level "
                    f"{t.level} ({t!r} and {top!r}); a traced value escaped the function it "
                    "was created in (e.g. stored in a global or closure). Return it instead."
                )
    if top is not None:
        return top.process(prim, args, params)
    try:
        return prim.impl(*args, **params)
    except ValueError as e:
        if isinstance(e, ShapeError):
            raise
        raise shape_error(prim, args, params, e) from e


def _shape_of(a: Any) -> tuple | None:
    s = getattr(a, "shape", None)
    return tuple(s) if s is not None else None


def shape_error(prim: Primitive, args: tuple, params: dict, cause: Exception) -> ShapeError:
    shapes = [s for s in map(_shape_of, args) if s is not None]
    desc = " and ".join(str(s) for s in shapes) if shapes else "(scalars)"
    extra = {k: v for k, v in params.items() if k in ("axis", "axes", "shape", "spec")}
    where = f" with {extra}" if extra else ""
    return ShapeError(f"{prim.name}: incompatible shapes {desc}{where} ({cause})")
