"""The errors of lowering and export: each names the backend, the primitive or the
framework, and what to do instead."""

from __future__ import annotations

from pycograd.core.errors import MissingDependencyError, PycogradError


class NoLoweringError(PycogradError, NotImplementedError):
    """A graph holds a primitive that has no lowering to the backend asked for. Raised when
    the function is compiled (lowered), before any framework computation runs; the message
    names every such primitive and the backend.

    Examples:
        >>> import numpy as np
        >>> import pycograd as pg
        >>> from pycograd.backends.lowering import check_lowerable
        >>> g = pg.capture(lambda a: np.linalg.cholesky(a), np.eye(2))
        >>> try:
        ...     check_lowerable(g, "onnx")
        ... except pg.NoLoweringError as e:
        ...     print(e.primitives, e.backend)
        ['cholesky'] onnx
    """

    def __init__(self, message: str, primitives: list[str] | None = None,
                 backend: str | None = None):
        super().__init__(message)
        self.primitives = list(primitives or [])
        self.backend = backend


class UnknownBackendError(PycogradError, ValueError):
    """A backend name pycograd does not know; the message lists the known ones."""


class FrameworkMissingError(MissingDependencyError):
    """The framework a backend lowers to is not installed; the message gives the
    ``pip install "pycograd[...]"`` command."""


class DeviceUnavailableError(PycogradError, RuntimeError):
    """A device the machine does not have (``backend="mps"`` without Apple's GPU)."""
