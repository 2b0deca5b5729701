"""Symbolic dimensions: a dimension named ``"batch"`` stays symbolic through a network.

A ``Dim`` is a polynomial with integer coefficients over named dimensions (``batch``,
``2*batch``, ``batch*seq - 1``), which is closed under what shapes need: sums
(concatenate), differences (offset slices), products (reshape, counts) and exact division
(``-1`` in reshape). Two dims are equal when their polynomials are.

Every named dimension is assumed to be at least 1. An order comparison (``<``, ``max``,
``min``) is answered when that assumption decides it (``batch >= 1``, ``2*batch > batch``)
and raises ``ShapeError`` otherwise (``batch < 5``), as does anything that needs the
concrete value (``int(batch)``, ``range(batch)``, ``batch // 3``): a shape is never
guessed.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

from pycograd.core.errors import ArgumentError, ArgumentTypeError, DivisionByZeroError, ShapeError

Monomial = tuple  # sorted tuple of dimension names (repeated for powers), () for constants


class Dim:
    """A symbolic dimension: a polynomial in named sizes (``Dim("batch")``, ``2*n - 1``,
    ``h*w``), so ``eval_shape`` and ``summary`` can run a model for every batch size at once.

    A string in a ``ShapeDtypeStruct`` shape (``S(("batch", 784))``) makes a ``Dim``; shape
    arithmetic (concatenation, reshape, strided slicing, convolutions) keeps it symbolic, and
    a comparison that depends on the unknown value raises a ``ShapeError`` that says so.

    Examples:
        >>> import numpy as np
        >>> from pycograd import Dim, ShapeDtypeStruct as S, eval_shape
        >>> n = Dim("n")
        >>> eval_shape(lambda x: np.concatenate([x, x[1:]]), S((n, 3))).shape
        (2*n - 1, 3)
        >>> 2 * n - 1 == Dim("n") * 2 - 1
        True
    """
    __slots__ = ("terms",)

    def __init__(self, terms: dict[Monomial, int] | str):
        if isinstance(terms, str):
            if not terms.isidentifier():
                raise ArgumentError(
                    f"a symbolic dimension is named by an identifier, got {terms!r}")
            terms = {(terms,): 1}
        self.terms = {m: c for m, c in terms.items() if c}

    @staticmethod
    def of(x: Any) -> Dim | None:
        """``x`` as a polynomial; ``None`` for what is not a size (floats, arrays)."""
        if isinstance(x, Dim):
            return x
        if isinstance(x, Integral) and not isinstance(x, bool):
            return Dim({(): int(x)})
        return None

    def simplify(self) -> Dim | int:
        """A plain int when no symbol is left."""
        if all(m == () for m in self.terms):
            return self.terms.get((), 0)
        return self

    @property
    def names(self) -> set[str]:
        return {n for m in self.terms for n in m}

    # ---- arithmetic ---------------------------------------------------------------

    def __add__(self, other: Any) -> Any:
        o = Dim.of(other)
        if o is None:
            return NotImplemented
        terms = dict(self.terms)
        for m, c in o.terms.items():
            terms[m] = terms.get(m, 0) + c
        return Dim(terms).simplify()

    __radd__ = __add__

    def __neg__(self) -> Dim:
        return Dim({m: -c for m, c in self.terms.items()})

    def __pos__(self) -> Dim:
        return self

    def __sub__(self, other: Any) -> Any:
        o = Dim.of(other)
        return NotImplemented if o is None else self + (-o)

    def __rsub__(self, other: Any) -> Any:
        o = Dim.of(other)
        return NotImplemented if o is None else o + (-self)

    def __mul__(self, other: Any) -> Any:
        o = Dim.of(other)
        if o is None:
            return NotImplemented
        terms: dict[Monomial, int] = {}
        for m1, c1 in self.terms.items():
            for m2, c2 in o.terms.items():
                m = tuple(sorted(m1 + m2))
                terms[m] = terms.get(m, 0) + c1 * c2
        return Dim(terms).simplify()

    __rmul__ = __mul__

    def __floordiv__(self, other: Any) -> Any:
        """Exact division only (``16*batch // 16``, ``4*batch*seq // batch``)."""
        o = Dim.of(other)
        if o is None:
            return NotImplemented
        if o == self:
            return 1
        if len(o.terms) != 1:
            raise _unknown("divide", self, other)
        (om, oc), = o.terms.items()
        if oc == 0:
            raise DivisionByZeroError(f"dimension {self} divided by 0")
        terms = {}
        for m, c in self.terms.items():
            rest = list(m)
            for name in om:
                if name not in rest:
                    raise _unknown("divide", self, other)
                rest.remove(name)
            if c % oc:
                raise _unknown("divide", self, other)
            terms[tuple(rest)] = c // oc
        return Dim(terms).simplify()

    __truediv__ = __floordiv__  # a ratio of sizes is a size only when exact

    def __rfloordiv__(self, other: Any) -> Any:
        o = Dim.of(other)
        return NotImplemented if o is None else o // self

    __rtruediv__ = __rfloordiv__

    def __mod__(self, other: Any) -> int:
        """0 when the division is exact; otherwise the remainder depends on the value."""
        try:
            self // other
        except ShapeError:
            raise _unknown("take the remainder of", self, other) from None
        return 0

    def __rmod__(self, other: Any) -> Any:
        o = Dim.of(other)
        if o is None:
            return NotImplemented
        raise _unknown("take the remainder of", other, self)

    # ---- comparisons ----------------------------------------------------------------

    def __eq__(self, other: Any) -> bool:
        o = Dim.of(other)
        return NotImplemented if o is None else self.terms == o.terms

    def __ne__(self, other: Any) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.terms.items())))

    def __ge__(self, other: Any) -> bool:
        return _decide(self, ">=", other)

    def __le__(self, other: Any) -> bool:
        return _decide(self, "<=", other)

    def __gt__(self, other: Any) -> bool:
        return _decide(self, ">", other)

    def __lt__(self, other: Any) -> bool:
        return _decide(self, "<", other)

    # ---- no concrete value -----------------------------------------------------------

    def __int__(self) -> int:
        raise self._no_value()

    __index__ = __int__

    def __float__(self) -> float:
        raise self._no_value()

    def _no_value(self) -> ShapeError:
        return ShapeError(f"dimension {self} is symbolic: its size is not known here, so it "
                         "cannot become an int (np.zeros((batch, ...)), range(batch), "
                         "int(batch)); use a concrete size, or write the code with array "
                         "ops (np.zeros_like(x)) that keep it symbolic")

    def __repr__(self) -> str:
        out = ""
        for m, c in sorted(self.terms.items(), key=lambda t: (-len(t[0]), t[0])):
            sym = "*".join(m)
            mag = abs(c)
            part = sym if mag == 1 and sym else f"{mag}*{sym}" if sym else str(mag)
            out += (("-" if c < 0 else "") + part if not out
                    else (" - " if c < 0 else " + ") + part)
        return out or "0"

    __str__ = __repr__


def provably_nonneg(d: Any) -> bool:
    """Whether ``d >= 0`` for every value of its symbols that is at least 1: substitute
    ``s = 1 + t`` (``t >= 0``) and check that no coefficient is negative."""
    o = Dim.of(d)
    if o is None:
        raise ArgumentTypeError(f"{d!r} is not a dimension")
    shifted: dict[Monomial, int] = {}
    for m, c in o.terms.items():
        poly: dict[Monomial, int] = {(): c}
        for name in m:  # multiply by (1 + t_name)
            nxt: dict[Monomial, int] = {}
            for pm, pc in poly.items():
                nxt[pm] = nxt.get(pm, 0) + pc
                k = tuple(sorted(pm + (name,)))
                nxt[k] = nxt.get(k, 0) + pc
            poly = nxt
        for pm, pc in poly.items():
            shifted[pm] = shifted.get(pm, 0) + pc
    return all(c >= 0 for c in shifted.values())


def _decide(a: Dim, op: str, b: Any) -> bool:
    """``a op b``, decided under the assumption that every symbol is at least 1."""
    o = Dim.of(b)
    if o is None:
        return NotImplemented
    diff = a - o if op in (">=", ">") else o - a  # true iff diff >= 0 (or > 0)
    if op in (">", "<"):
        diff = diff - 1
    if provably_nonneg(diff):
        return True
    if provably_nonneg(-diff - 1):
        return False
    raise ShapeError(f"cannot decide {a} {op} {b} for symbolic dimensions without knowing "
                     "their sizes; give a concrete size instead")


def _unknown(what: str, a: Any, b: Any) -> ShapeError:
    return ShapeError(f"cannot {what} symbolic dimensions {a} and {b} without knowing their "
                      "sizes; give a concrete size instead")


def is_symbolic(shape: tuple) -> bool:
    return any(isinstance(d, Dim) for d in shape)
