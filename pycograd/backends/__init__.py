"""Lowering a captured ``Graph`` to other frameworks, and exporting it.

``lowering`` holds the lowering table (each primitive's ``lower[backend]`` slot, with
family defaults) and the interpreter that runs a graph on a framework; ``torch``, ``jax``,
``tf`` and ``onnx`` fill the table (each imported only when its backend is asked for);
``compile`` gives ``compile_to``, ``training`` the ``weights.grad(..., backend=...)`` path
and ``export`` the torch modules and the saved artifacts.
"""

from pycograd.backends.compile import compile_to
from pycograd.backends.errors import (
    DeviceUnavailableError,
    FrameworkMissingError,
    NoLoweringError,
    UnknownBackendError,
)

__all__ = ["DeviceUnavailableError", "FrameworkMissingError", "NoLoweringError",
           "UnknownBackendError", "compile_to"]
