"""Entry markers: ``frozen[...]``, ``tied(...)`` / ``tied[...]`` and ``buffer[...]``.

A marker only labels a value for ``ParamDict``; it does no work itself, so the same markers
serve the plain-Python constructor and the DSL's ``params{ ... }`` block.
"""

from __future__ import annotations

from typing import Any, NamedTuple

KINDS = ("param", "frozen", "buffer")


class Marked(NamedTuple):
    """A value with the kind it should have in a ``ParamDict``. For ``tied`` the value is
    the target entry's name (a dotted string) or the very array object it holds."""

    kind: str
    value: Any


class _Marker:
    """``marker[x]`` and ``marker(x)`` both wrap ``x``."""

    __slots__ = ("kind", "doc")

    def __init__(self, kind: str, doc: str):
        self.kind = kind
        self.doc = doc

    def __getitem__(self, value: Any) -> Marked:
        return Marked(self.kind, value)

    def __call__(self, value: Any) -> Marked:
        return Marked(self.kind, value)

    def __repr__(self) -> str:
        return f"{self.kind}[...]: {self.doc}"


frozen = _Marker("frozen", "a weight held fixed: its gradient is None and it is never stepped")
buffer = _Marker("buffer", "non-trainable state (running means, counters): no gradient, "
                           "never stepped, assignable")
tied = _Marker("tied", "another name for an existing entry (by name or by the same array): "
                       "one array, gradients summed")
