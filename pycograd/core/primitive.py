"""The primitive tafrom pycograd.core.errors import ShapeError
ble: one declaration per primitive, holding every rule it has.

A primitive is the unit every interpreter understands. Its ``impl`` computes on plain
arrays (and, through numpy's protocols, on lower-level tracers); ``vjps[i]`` maps the
output cotangent to the cotangent of argument ``i``. The other slots (``jvp``, ``batch``,
``shape``, ``lower``) come from the primitive's *family* (elementwise, reduction, linear,
multilinear, cast, call): each interpreter registers one rule per family with
``family_rules``, and a primitive declares only the rules its family does not give it.
Rules are written with numpy calls on possibly-traced values, so every rule is itself
differentiable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pycograd.core.errors import ArgumentError


class Primitive:
    """One operation and all of its rules.

    ``prim.bind(*args, **params)`` applies it (defined next to the stack, in ``core.trace``).
    ``calls_user_code`` marks primitives that carry a user function (checkpoint), whose
    numpy errors must surface as they are. ``differentiable=False`` marks ops whose output
    carries no gradient (comparisons, ``floor``, ``argmax`` ...): the reverse interpreter
    returns their result untraced.
    """

    __slots__ = ("name", "impl", "vjps", "differentiable", "calls_user_code", "family", "jvp",
                 "batch", "shape", "lower")

    def __init__(self, name: str, impl: Callable, differentiable: bool = True,
                 calls_user_code: bool = False):
        self.name = name
        self.calls_user_code = calls_user_code
        self.family: str | None = None
        self.impl = impl
        self.vjps: Any = ()
        self.differentiable = differentiable
        self.jvp: Callable | None = None
        self.batch: Callable | None = None
        self.shape: Callable | None = None
        self.lower: dict[str, Callable] = {}

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


REGISTRY: dict[str, Primitive] = {}
RULE_SLOTS = ("jvp", "batch", "shape")
FAMILY_RULES: dict[str, dict[str, Callable[[Primitive], Callable]]] = {s: {} for s in RULE_SLOTS}


def primitive(name: str, impl: Callable, *vjps: Any, differentiable: bool = True,
              calls_user_code: bool = False, family: str | None = None,
              jvp: Callable | None = None, batch: Callable | None = None,
              shape: Callable | None = None) -> Primitive:
    """Declare and register a primitive: its implementation, per-argument VJPs (a
    ``PerArgument`` for variadic primitives, a ``Joint`` for one rule giving all), its
    family, and whichever other rules the family does not supply."""
    if name in REGISTRY:
        raise ArgumentError(f"primitive {name!r} is already registered")
    p = Primitive(name, impl, differentiable, calls_user_code)
    p.vjps = vjps[0] if len(vjps) == 1 and isinstance(vjps[0], (PerArgument, Joint)) else vjps
    p.family, p.jvp, p.batch, p.shape = family, jvp, batch, shape
    REGISTRY[name] = p
    for slot in RULE_SLOTS:
        _fill(p, slot)
    return p


def family_rules(slot: str, rules: dict[str, Callable[[Primitive], Callable]]) -> None:
    """An interpreter's rule for each family (``rules[family](prim) -> rule``), given to
    every primitive of that family that has no rule of its own, now and later."""
    FAMILY_RULES[slot].update(rules)
    for p in REGISTRY.values():
        _fill(p, slot)


def _fill(p: Primitive, slot: str) -> None:
    make = FAMILY_RULES[slot].get(p.family)
    if make is not None and getattr(p, slot) is None:
        setattr(p, slot, make(p))


class PerArgument:
    """The VJP list of a variadic primitive (einsum, concatenate): one rule
    ``rule(i, g, ans, *args, **params)`` serves every argument position ``i``."""

    __slots__ = ("rule", "_cache")

    def __init__(self, rule: Callable):
        self.rule = rule
        self._cache: dict[int, Callable] = {}

    def __getitem__(self, i: int) -> Callable:
        r = self._cache.get(i)
        if r is None:
            r = self._cache[i] = lambda *a, **k: self.rule(i, *a, **k)
        return r


class Joint:
    """The VJP of a primitive whose argument cotangents come from one computation
    (a recomputed checkpoint, a user's custom rule): ``rule(wanted, g, ans, *args,
    **params)`` returns a tuple with one cotangent (or None) per argument; only the
    argument positions in ``wanted`` are read, so the rule may skip the others."""

    __slots__ = ("rule",)

    def __init__(self, rule: Callable):
        self.rule = rule
