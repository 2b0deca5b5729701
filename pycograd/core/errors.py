"""Every error pycograd raises on purpose: each names the problem and the fix."""

from __future__ import annotations


class PycogradError(Exception):
    """Base class of pycograd's own errors."""


class ShapeError(PycogradError, ValueError):
    """Operands whose shapes an op cannot combine; names the op and the shapes."""


class NoRuleError(PycogradError, TypeError):
    """A numpy function, or a transform of a primitive, that pycograd has no rule for."""


class NonScalarOutputError(PycogradError, TypeError):
    """``grad`` of a function whose output is not a real scalar."""


class TracerConversionError(PycogradError, TypeError):
    """A traced value reached ``float()``, ``int()``, ``np.asarray`` or an unrouted ``math.*``,
    which would silently drop its gradient."""


class LeakedTracerError(PycogradError, RuntimeError):
    """A traced value escaped the transform that created it and was used in another."""


class ArgnumsError(PycogradError, ValueError):
    """``argnums`` that do not match the function's positional arguments."""


class ArgumentError(PycogradError, ValueError):
    """An argument value pycograd cannot use (an option, a mode, a range); the message names
    the argument and what it accepts."""


class ArgumentTypeError(PycogradError, TypeError):
    """An argument of a type pycograd cannot use; the message says what to pass instead."""


class InAxesError(PycogradError, ValueError):
    """``vmap``'s ``in_axes`` / ``out_axes`` / ``axis_size`` do not fit the arguments or the
    outputs (a wrong length, an axis out of range, mapped sizes that disagree)."""


class ImmutableTracerError(PycogradError, TypeError):
    """``x[i] = v`` or an in-place method on a traced array: build a new array instead
    (``pycograd.scatter_set`` / ``pycograd.scatter_add``, ``np.where``)."""


class IndexingError(PycogradError, IndexError):
    """An index that does not fit a traced array (where numpy raises ``IndexError``)."""


class InputRuntimeError(PycogradError, RuntimeError):
    """A bad input that numpy reports with ``RuntimeError`` (``np.cov``'s weights), or a
    graph used after ``backward`` freed it."""


class DivisionByZeroError(PycogradError, ZeroDivisionError):
    """A division by zero numpy reports as such (weights summing to zero, a symbolic
    dimension divided by 0)."""


class MissingAttributeError(PycogradError, AttributeError):
    """An attribute pycograd does not provide on one of its objects; the message lists the
    ones it has."""
