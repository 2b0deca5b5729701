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


class GradientMismatchError(PycogradError, KeyError, ValueError):
    """Gradients whose keys or structure do not match the parameters they update: names the
    missing and the extra keys."""

    def __str__(self) -> str:
        return Exception.__str__(self)


class IndexOutOfRangeError(PycogradError, IndexError, ValueError):
    """Class labels or embedding ids outside ``[0, n)``, which would otherwise wrap around
    (``-1``) or silently contribute nothing; names the offending value and ``n``."""


class ParamLoadError(PycogradError, ValueError):
    """A weights or checkpoint file that cannot be loaded: unreadable, malformed, or not
    matching what it is loaded into; lists every missing, extra or mismatched entry."""
