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


class ArgumentError(PycogradError, ValueError):
    """An argument value pycograd cannot use (an option, a mode, a range); the message names
    the argument and what it accepts.

    Examples:
        >>> import numpy as np
        >>> import pycograd as pg
        >>> try:
        ...     pg.grad(lambda x: np.sum(pg.gelu(x, approximate="fast")), 0)(np.ones(2))
        ... except pg.ArgumentError as e:                      # also a ValueError
        ...     print(isinstance(e, ValueError))
        True
    """


class ArgumentTypeError(PycogradError, TypeError):
    """An argument of a type pycograd cannot use; the message says what to pass instead.

    Examples:
        >>> import numpy as np
        >>> import pycograd as pg
        >>> try:
        ...     pg.grad(lambda x: (np.sum(x), 1, 2), 0, has_aux=True)(np.ones(2))
        ... except pg.ArgumentTypeError as e:                  # also a TypeError
        ...     print("pair" in str(e))
        True
    """


class InAxesError(PycogradError, ValueError):
    """``vmap``'s ``in_axes`` / ``out_axes`` / ``axis_size`` do not fit the arguments or the
    outputs (a wrong length, an axis out of range, mapped sizes that disagree).

    Examples:
        >>> import numpy as np
        >>> import pycograd as pg
        >>> try:
        ...     pg.vmap(lambda a, b: a + b, in_axes=(0, 0, 0))(np.ones(2), np.ones(2))
        ... except pg.InAxesError as e:                        # also a ValueError
        ...     print("3 entries" in str(e))
        True
    """


class ImmutableTracerError(PycogradError, TypeError):
    """``x[i] = v``, ``np.add.at`` or an in-place method on a traced array: build a new array
    instead (``pycograd.scatter_set`` / ``pycograd.scatter_add``, ``np.where``).

    Examples:
        >>> import numpy as np
        >>> import pycograd as pg
        >>> def f(x):
        ...     x[0] = 0.0
        ...     return np.sum(x)
        >>> try:
        ...     pg.grad(f, 0)(np.ones(3))
        ... except pg.ImmutableTracerError as e:               # also a TypeError
        ...     print("scatter_set" in str(e))
        True
    """


class IndexingError(PycogradError, IndexError):
    """An index that does not fit a traced array (where numpy raises ``IndexError``).

    Examples:
        >>> import numpy as np
        >>> import pycograd as pg
        >>> try:
        ...     pg.grad(lambda x: x[5], 0)(np.ones(3))
        ... except pg.IndexingError as e:                      # also an IndexError
        ...     print("out of bounds" in str(e))
        True
        >>> try:
        ...     pg.eval_shape(lambda x: x[5], np.ones(3))
        ... except pg.IndexingError as e:
        ...     print("out of bounds" in str(e))
        True
    """


class InputRuntimeError(PycogradError, RuntimeError):
    """A bad input that numpy reports with ``RuntimeError`` (``np.cov``'s weights), or a
    graph used after ``backward`` freed it.

    Examples:
        >>> import numpy as np
        >>> import pycograd as pg
        >>> try:
        ...     pg.grad(lambda x: np.sum(np.cov(x, fweights=np.ones((2, 2), int))), 0)(
        ...         np.ones((2, 2)))
        ... except pg.InputRuntimeError as e:                  # also a RuntimeError
        ...     print("multidimensional" in str(e))
        True
    """


class DivisionByZeroError(PycogradError, ZeroDivisionError):
    """A division by zero numpy reports as such (weights summing to zero, a symbolic
    dimension divided by 0).

    Examples:
        >>> import pycograd as pg
        >>> issubclass(pg.DivisionByZeroError, ZeroDivisionError)
        True
    """


class MissingAttributeError(PycogradError, AttributeError):
    """An attribute pycograd does not provide on one of its objects; the message lists the
    ones it has.

    Examples:
        >>> import pycograd as pg
        >>> issubclass(pg.MissingAttributeError, AttributeError)
        True
    """


class NonFiniteError(PycogradError, FloatingPointError):
    """A NaN or Inf produced by a primitive while ``debug_nans`` is on; the message names
    the primitive, the pass (forward, or which op's VJP), the user's line and the inputs.

    Examples:
        >>> import numpy as np
        >>> import pycograd as pg
        >>> with pg.debug_nans():
        ...     try:
        ...         pg.grad(lambda x: np.sum(np.log(x)))(np.array([1.0, 0.0]))
        ...     except pg.NonFiniteError as e:                 # also a FloatingPointError
        ...         print(str(e).split(",")[0])
        debug_nans: `log` produced Inf in the forward pass
    """


class MissingDependencyError(PycogradError, ImportError):
    """An optional package a feature needs is not installed; the message gives the
    ``pip install`` command.

    Examples:
        >>> import pycograd as pg
        >>> issubclass(pg.MissingDependencyError, ImportError)
        True
    """


class GradientMismatchError(PycogradError, KeyError, ValueError):
    """Gradients whose keys or structure do not match the parameters they update: names the
    missing and the extra keys (gradients meet parameters by key, never by position).

    Examples:
        >>> import numpy as np
        >>> import pycograd as pg
        >>> try:
        ...     pg.SGD(0.1).step({"a": np.zeros(2)}, {"b": np.ones(2)})
        ... except pg.GradientMismatchError as e:
        ...     print(str(e).partition(": ")[2])
        missing gradients for ['a'], gradients for unknown keys ['b']
    """

    def __str__(self) -> str:
        return Exception.__str__(self)


class IndexOutOfRangeError(PycogradError, IndexError, ValueError):
    """Class labels or embedding ids outside ``[0, n)``, which would otherwise wrap around
    (``-1``) or silently contribute nothing; names the offending value and ``n``.

    Examples:
        >>> import numpy as np
        >>> import pycograd as pg
        >>> try:
        ...     pg.cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
        ... except pg.IndexOutOfRangeError as e:
        ...     print(str(e).split(":")[1].strip())
        label 3 is out of range for 3 classes
    """


class ParamLoadError(PycogradError, ValueError):
    """A weights or checkpoint file that cannot be loaded: unreadable, malformed (raised for
    whatever is wrong with it: nothing in a file is ever unpickled), or not matching what it
    is loaded into; lists every missing, extra or mismatched entry.

    Examples:
        >>> import os, tempfile
        >>> import numpy as np
        >>> from pycograd import ParamDict, ParamLoadError
        >>> path = os.path.join(tempfile.mkdtemp(), "w.npz")
        >>> ParamDict(w=np.zeros(3)).save(path)
        >>> try:
        ...     ParamDict(w=np.zeros(4)).load_into(path)
        ... except ParamLoadError as e:
        ...     print("w" in str(e))
        True
    """


class ResidualError(PycogradError, RuntimeError):
    """A VJP rule read a residual (an argument or output value) that the tape did not keep:
    a bug in the primitive's declaration, never a wrong gradient.

    Examples:
        >>> from pycograd.core.errors import PycogradError, ResidualError
        >>> issubclass(ResidualError, PycogradError)
        True
    """


class CheckpointPolicyError(ArgumentError):
    """A ``checkpoint(f, policy=...)`` that names no known policy, or a
    ``checkpoint_sequential`` asked for segments it cannot make.

    Examples:
        >>> import numpy as np
        >>> import pycograd as pg
        >>> try:
        ...     pg.checkpoint(np.sin, policy="everything")
        ... except pg.ArgumentError as e:                      # also a ValueError
        ...     print(type(e).__name__)
        CheckpointPolicyError
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


class MissingKeyError(PycogradError, KeyError):
    """A name or key that is not there (a weight, an optimizer slot, a checkpoint entry); the
    message lists the ones that are.

    Examples:
        >>> from pycograd.core.errors import MissingKeyError
        >>> issubclass(MissingKeyError, KeyError)
        True
    """


class MissingFileError(PycogradError, FileNotFoundError):
    """A file pycograd was asked to read that does not exist.

    Examples:
        >>> from pycograd.core.errors import MissingFileError
        >>> issubclass(MissingFileError, FileNotFoundError)
        True
    """
