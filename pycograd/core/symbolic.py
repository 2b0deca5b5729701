"""Symbolic dimensions: a dimension named ``"batch"`` stays symbolic through a network.

A ``Dim`` is a polynomial with integer coefficients over named dimensions (``batch``,
``3*batch``, ``batch*seq + 1``), which is closed under what shapes need: sums (concatenate),
products (reshape, counts) and exact division by an integer. Two dims are equal when their
polynomials are; a comparison that depends on the unknown values raises, so a shape is
never silently mis-sized.
"""

from __future__ import annotations

from typing import Any

Monomial = tuple  # sorted tuple of dimension names, () for the constant term


class Dim:
    __slots__ = ("terms",)

    def __init__(self, terms: dict[Monomial, int] | str):
        if isinstance(terms, str):
            terms = {(terms,): 1}
        self.terms = {m: c for m, c in terms.items() if c}

    @staticmethod
    def of(x: Any) -> Dim:
        return x if isinstance(x, Dim) else Dim({(): int(x)})

    def simplify(self) -> Dim | int:
        """A plain int when no symbol is left."""
        if all(m == () for m in self.terms):
            return self.terms.get((), 0)
        return self

    def __add__(self, other: Any) -> Dim | int:
        terms = dict(self.terms)
        for m, c in Dim.of(other).terms.items():
            terms[m] = terms.get(m, 0) + c
        return Dim(terms).simplify()

    __radd__ = __add__

    def __mul__(self, other: Any) -> Dim | int:
        terms: dict[Monomial, int] = {}
        for m1, c1 in self.terms.items():
            for m2, c2 in Dim.of(other).terms.items():
                m = tuple(sorted(m1 + m2))
                terms[m] = terms.get(m, 0) + c1 * c2
        return Dim(terms).simplify()

    __rmul__ = __mul__

    def __floordiv__(self, other: Any) -> Dim | int:
        if isinstance(other, Dim) and (o := other.simplify()) is other:
            if self == other:
                return 1
            # divide each monomial by a single-monomial divisor when it divides exactly
            if len(other.terms) == 1:
                (om, oc), = other.terms.items()
                terms = {}
                for m, c in self.terms.items():
                    rest = list(m)
                    for name in om:
                        if name not in rest or c % oc:
                            raise _unknown("divide", self, other)
                        rest.remove(name)
                    terms[tuple(rest)] = c // oc
                return Dim(terms).simplify()
            raise _unknown("divide", self, other)
        n = int(other if not isinstance(other, Dim) else o)
        if any(c % n for c in self.terms.values()):
            raise _unknown("divide", self, n)
        return Dim({m: c // n for m, c in self.terms.items()}).simplify()

    __truediv__ = __floordiv__

    def __mod__(self, other: Any) -> int:
        try:
            self // other
        except ValueError:
            raise _unknown("take the remainder of", self, other) from None
        return 0

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, (int, Dim)):
            return self.terms == Dim.of(other).terms
        return NotImplemented

    def __ne__(self, other: Any) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.terms.items())))

    def _cmp(self, other: Any) -> bool:
        raise _unknown("compare", self, other)

    __lt__ = __le__ = __gt__ = __ge__ = _cmp

    def __int__(self) -> int:
        raise ValueError(f"dimension {self} is symbolic; its size is not known here")

    __index__ = __int__

    def __repr__(self) -> str:
        parts = []
        for m, c in sorted(self.terms.items(), key=lambda t: (-len(t[0]), t[0])):
            sym = "*".join(m)
            parts.append(sym if c == 1 and sym else f"{c}*{sym}" if sym else str(c))
        return " + ".join(parts)


def _unknown(what: str, a: Any, b: Any) -> ValueError:
    from pycograd.core.errors import ShapeError

    return ShapeError(f"cannot {what} symbolic dimensions {a} and {b} without knowing their "
                      "sizes; give a concrete size instead")


def is_symbolic(shape: tuple) -> bool:
    return any(isinstance(d, Dim) for d in shape)
