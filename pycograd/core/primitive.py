"""The primitive table: one declaration per primitive, holding every rule it has.

A primitive is the unit every interpreter understands. Its ``impl`` computes on plain
arrays (and, through numpy's protocols, on lower-level tracers); ``vjps[i]`` maps the
output cotangent to the cotangent of argument ``i``. The other slots (``jvp``, ``batch``,
``shape``, ``lower``) come from the primitive's *family* (elementwise, reduction, linear,
multilinear, cast, call): each interpreter registers one rule per family with
``family_rules``, and a primitive declares only the rules its family does not give it.
Rules are written with numpy calls on possibly-traced values, so every rule is itself
differentiable.

What the tape keeps for a node (its *residuals*) is read off the VJP rules themselves: an
argument or output that no rule loads is not kept, and one the rules read only for its
shape and dtype (passed last to a ``reads_shape_of_last`` helper such as ``_back``,
declared with ``saves=``, or argument 0 of a ``linear`` primitive, whose transpose cannot
depend on the values it maps) is kept as a ``Shaped`` stand-in.
"""

from __future__ import annotations

import dis
import inspect
from collections.abc import Callable
from typing import Any

from pycograd.core.errors import ArgumentError, MissingAttributeError, ResidualError


class Primitive:
    """One operation and all of its rules.

    ``prim.bind(*args, **params)`` applies it (defined next to the stack, in ``core.trace``).
    ``calls_user_code`` marks primitives that carry a user function (checkpoint), whose
    numpy errors must surface as they are. ``differentiable=False`` marks ops whose output
    carries no gradient (comparisons, ``floor``, ``argmax`` ...): the reverse interpreter
    returns their result untraced.
    """

    __slots__ = ("name", "impl", "vjps", "differentiable", "calls_user_code", "family", "jvp",
                 "batch", "shape", "lower", "residuals", "residuals_one")

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
        # None: the tape keeps every argument and the output; else (output mode, argument
        # modes, mode of arguments past those): see ``residual_modes``.
        self.residuals: tuple | None = None
        # residuals[i]: the same when argument i is the node's only parent (only VJP i runs)
        self.residuals_one: tuple | None = None

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


REGISTRY: dict[str, Primitive] = {}
RULE_SLOTS = ("jvp", "batch", "shape")
FAMILY_RULES: dict[str, dict[str, Callable[[Primitive], Callable]]] = {s: {} for s in RULE_SLOTS}


def primitive(name: str, impl: Callable, *vjps: Any, differentiable: bool = True,
              calls_user_code: bool = False, family: str | None = None,
              jvp: Callable | None = None, batch: Callable | None = None,
              shape: Callable | None = None, saves: tuple | None = None) -> Primitive:
    """Declare and register a primitive: its implementation, per-argument VJPs (a
    ``PerArgument`` for variadic primitives, a ``Joint`` for one rule giving all), its
    family, and whichever other rules the family does not supply.

    ``saves`` lists the residuals whose *values* the VJPs read (``"ans"`` and argument
    positions) when the rules' code says more than that: every other one they load is
    read for its shape and dtype only (``add`` declares ``saves=()``). Left out, it is
    derived from the rules (see ``residual_modes``)."""
    if name in REGISTRY:
        raise ArgumentError(f"primitive {name!r} is already registered")
    p = Primitive(name, impl, differentiable, calls_user_code)
    p.vjps = vjps[0] if len(vjps) == 1 and isinstance(vjps[0], (PerArgument, Joint)) else vjps
    p.family, p.jvp, p.batch, p.shape = family, jvp, batch, shape
    p.residuals = residual_modes(p.vjps, family, saves)
    if isinstance(p.vjps, tuple) and len(p.vjps) > 1:
        p.residuals_one = tuple(residual_modes(p.vjps, family, saves, only=i)
                                for i in range(len(p.vjps)))
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


# ---- residuals: what a tape node keeps for its VJP -------------------------------------

NONE, SHAPE, VALUE = 0, 1, 2  # a residual is dropped, kept as shape and dtype, or kept


def reads_shape_of_last(fn: Callable) -> Callable:
    """Mark a rule helper that reads only the shape and dtype of its last argument (as
    ``_back(ct, x)`` does to undo broadcasting), so that a rule ending in
    ``return helper(..., x)`` with no other use of ``x`` keeps only ``x``'s shape."""
    fn.reads_shape_of_last = True  # type: ignore[attr-defined]
    return fn


def _shape_only_tail(rule: Any, instructions: list) -> str | None:
    """The parameter a rule of the form ``return helper(<expr>, p)`` passes last to a
    ``reads_shape_of_last`` helper (the call is the whole body: its callee is the first
    value pushed, and its result is returned at once)."""
    ins = [i for i in instructions if i.opname not in ("RESUME", "PRECALL", "CACHE")]
    if len(ins) < 4 or ins[0].opname != "LOAD_GLOBAL" or ins[-1].opname != "RETURN_VALUE" \
            or ins[-2].opname != "CALL" or ins[-3].opname != "LOAD_FAST":
        return None
    helper = getattr(rule, "__globals__", {}).get(ins[0].argval)
    return ins[-3].argval if getattr(helper, "reads_shape_of_last", False) else None


def _loads(rule: Any, lead: int) -> tuple[int, list[int], int | None] | None:
    """How the code of ``rule(<lead params>, ans, *args)`` reads ``ans``, each named
    argument and the ``*args``: ``VALUE`` (loaded; a parameter a nested function captures
    counts as loaded), ``SHAPE`` (only passed last to a ``reads_shape_of_last`` helper) or
    ``NONE``; None when ``rule`` is not plain Python code, which keeps everything."""
    code = getattr(rule, "__code__", None)
    if code is None or isinstance(rule, type):
        return None
    names = code.co_varnames[:code.co_argcount]
    star = code.co_varnames[code.co_argcount + code.co_kwonlyargcount] \
        if code.co_flags & inspect.CO_VARARGS else None
    instructions = list(dis.get_instructions(code))
    loads: dict[str, int] = dict.fromkeys(code.co_cellvars, 2)
    for ins in instructions:
        if ins.opname.startswith("LOAD_FAST") or ins.opname in ("LOAD_DEREF", "LOAD_CLOSURE"):
            loads[ins.argval] = loads.get(ins.argval, 0) + 1
    tail = _shape_only_tail(rule, instructions)

    def how(name: str) -> int:
        k = loads.get(name, 0)
        return NONE if k == 0 else SHAPE if k == 1 and name == tail else VALUE

    rest = None if star is None else how(star)  # None: no *args
    if len(names) <= lead:  # ans itself is in *args
        return rest or NONE, [], rest
    return how(names[lead]), [how(n) for n in names[lead + 1:]], rest


def residual_modes(vjps: Any, family: str | None, saves: tuple | None,
                   only: int | None = None) -> tuple | None:
    """``(ans mode, ((position, mode), ...) for the named arguments not kept whole, mode of
    the arguments past the named ones, number of named ones)`` for a primitive's tape
    nodes, each mode ``NONE``, ``SHAPE`` or ``VALUE``; None when every residual is kept
    (the fast path). With ``only``, for a node whose only parent is argument ``only``:
    only that argument's VJP runs, so only what it reads is kept (``x * 2.0`` keeps only
    the shape of ``x``).

    A residual no rule loads is not kept. One the rules read only for its shape
    (``_loads``) keeps its shape; one a rule loads otherwise is kept whole, unless
    ``saves`` is given and does not list it, or it is argument 0 of a ``linear``
    primitive: then only its shape and dtype are. Rules that are not Python functions keep
    everything. The sweep checks the outcome: a rule that reads a value the tape did not
    keep raises ``ResidualError``."""
    if isinstance(vjps, (PerArgument, Joint)):
        found = [_loads(vjps.rule, 2)]
    else:
        rules = vjps if only is None else vjps[only:only + 1]
        found = [_loads(r, 1) for r in rules if r is not None]
    if not found or any(f is None for f in found):
        return None
    n = max(len(f[1]) for f in found)
    ans = max(f[0] for f in found)
    args = [max((f[1][i] for f in found if i < len(f[1])), default=NONE) for i in range(n)]
    stars = [f[2] for f in found if f[2] is not None]

    def mode(read: int, key: Any) -> int:
        if read == NONE:
            return NONE
        if saves is not None:
            return VALUE if key in saves else SHAPE
        return SHAPE if family == "linear" and key == 0 else read

    arg_modes = [mode(r, i) for i, r in enumerate(args)]
    ans_mode = mode(ans, "ans")
    rest_mode = mode(max(stars), "rest") if stars else VALUE  # no *args: nothing past
    if ans_mode == VALUE and rest_mode == VALUE and all(m == VALUE for m in arg_modes):
        return None
    # the arguments kept other than whole (positions past these take the rest's mode)
    drop = tuple((i, m) for i, m in enumerate(arg_modes) if m != VALUE)
    return ans_mode, drop, rest_mode, len(arg_modes)


class _Refusing:
    """A stand-in for a residual the tape did not keep: every use of its value (numpy's
    protocols, arithmetic, indexing, conversion) raises ``ResidualError``."""

    __slots__ = ()

    def _message(self) -> str:
        raise NotImplementedError

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise ResidualError(self._message())

    __array__ = __array_ufunc__ = __getitem__ = __iter__ = _refuse
    __len__ = __bool__ = __float__ = __int__ = __complex__ = __index__ = _refuse
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _refuse
    __truediv__ = __rtruediv__ = __pow__ = __rpow__ = __matmul__ = __rmatmul__ = _refuse
    __neg__ = __abs__ = __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _refuse
    __hash__ = None  # type: ignore[assignment]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # numpy's protocol probes: absent, as on any object
            raise MissingAttributeError(name)
        self._refuse()


class Shaped(_Refusing):
    """What the tape keeps of a residual its VJP reads only for its shape and dtype:
    ``.shape``, ``.dtype``, ``.ndim``, ``.size``. Reading anything else raises
    ``ResidualError``, so a rule that needs the value (and a ``saves=`` that forgot it)
    fails loudly instead of computing a gradient from a stand-in."""

    __slots__ = ("shape", "dtype")
    __array_priority__ = 10**6

    def __init__(self, x: Any):
        self.shape = x.shape
        self.dtype = x.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def _message(self) -> str:
        return (f"a VJP read the value of a residual of shape {self.shape} that the tape kept "
                "only as its shape and dtype; list it in the primitive's saves=")


class _Unsaved(_Refusing):
    """What the tape passes for a residual it did not keep at all: any use raises."""

    __slots__ = ()

    def _message(self) -> str:
        return ("a VJP read a residual (an argument or the output) that the tape did not "
                "keep, since no rule of the primitive loads it")


UNSAVED = _Unsaved()
