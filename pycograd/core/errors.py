"""Every error pycograd raises on purpose: each names the problem and the fix."""

from __future__ import annotations


class PycogradError(Exception):
    """Base class of pycograd's own errors: ``except pycograd.PycogradError`` catches every
    one. Each also derives from the builtin it refines (``ShapeError`` is a ``ValueError``,
    ``NoRuleError`` a ``TypeError``), so existing handlers keep working.

    Examples:
        >>> import numpy as np
        >>> import pycograd as pg
        >>> try:
        ...     pg.grad(lambda x: x * 2)(np.ones(3))
        ... except pg.PycogradError as e:                     # catches every pycograd error
        ...     print(type(e).__name__)
        NonScalarOutputError
    """


class ShapeError(PycogradError, ValueError):
    """Operands whose shapes an op cannot combine; names the op and the shapes.

    Examples:
        >>> import numpy as np
        >>> import pycograd as pg
        >>> try:
        ...     pg.grad(lambda w: np.sum(np.ones((3, 4)) @ w))(np.ones((5, 6)))
        ... except pg.ShapeError as e:
        ...     print("(3, 4) and (5, 6)" in str(e))
        True
    """


class DataDependentShapeError(ShapeError):
    """An output whose shape or dtype (or a branch) depends on the values of the data, which
    an abstract interpreter (``eval_shape``) does not have.

    Examples:
        >>> import numpy as np
        >>> from pycograd import DataDependentShapeError, ShapeDtypeStruct as S, eval_shape
        >>> try:
        ...     eval_shape(lambda x: x[x > 0], S((4,)))
        ... except DataDependentShapeError:
        ...     print("the shape depends on the data")
        the shape depends on the data
    """


class NoRuleError(PycogradError, TypeError):
    """A numpy function, or a transform of a primitive, that pycograd has no rule for.

    Examples:
        >>> import numpy as np
        >>> import pycograd as pg
        >>> try:
        ...     pg.grad(lambda x: np.sum(np.histogram(x)[1]))(np.ones(4))
        ... except pg.NoRuleError as e:
        ...     print("histogram" in str(e))
        True
    """


class NonScalarOutputError(PycogradError, TypeError):
    """``grad`` of a function whose output is not a real scalar.

    Examples:
        >>> import numpy as np
        >>> import pycograd as pg
        >>> try:
        ...     pg.grad(lambda x: x * 2)(np.ones(3))               # use vjp or jacrev instead
        ... except pg.NonScalarOutputError:
        ...     print("not a scalar")
        not a scalar
    """


class TracerConversionError(PycogradError, TypeError):
    """A traced value reached ``float()``, ``int()``, ``np.asarray`` or an unrouted ``math.*``,
    which would silently drop its gradient.

    Examples:
        >>> import numpy as np
        >>> import pycograd as pg
        >>> try:
        ...     pg.grad(lambda x: float(np.sum(x)))(np.ones(3))
        ... except pg.TracerConversionError:
        ...     print("float() would drop the gradient")
        float() would drop the gradient
    """


class LeakedTracerError(PycogradError, RuntimeError):
    """A traced value escaped the transform that created it and was used in another.

    Examples:
        >>> import numpy as np
        >>> import pycograd as pg
        >>> saved = []
        >>> def f(x):
        ...     saved.append(x)                                     # the traced x escapes
        ...     return np.sum(x)
        >>> _ = pg.grad(f)(np.ones(2))
        >>> try:
        ...     pg.grad(lambda y: np.sum(saved[0] * y))(np.ones(2))
        ... except pg.LeakedTracerError:
        ...     print("leaked")
        leaked
    """


class ArgnumsError(PycogradError, ValueError):
    """``argnums`` that do not match the function's positional arguments.

    Examples:
        >>> import numpy as np
        >>> import pycograd as pg
        >>> try:
        ...     pg.grad(lambda x: np.sum(x), argnums=1)(np.ones(2))
        ... except pg.ArgnumsError:
        ...     print("no argument 1")
        no argument 1
    """


class DeviceError(PycogradError):
    """A device that cannot be used here (library or hardware missing, unknown name), an op
    that meets arrays of two devices without a transfer, or a primitive the device's array
    library has no equivalent for.

    Examples:
        >>> from pycograd import DeviceError, device
        >>> try:
        ...     device("tpu")
        ... except DeviceError as e:
        ...     print(str(e).split(";")[0])
        unknown device 'tpu'
    """
