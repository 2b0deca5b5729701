"""Where arrays live, and what a captured graph becomes in another framework.

``arrays`` holds the array devices (numpy by default; CuPy, torch through array-api-compat,
and array_api_strict for tests): a registry of array namespaces, the placed-array tracer
that runs each primitive on its array's own library, and the differentiable transfers. It
sits low in the layers (random keys, numpy's API and the transforms make values on the
active device), so this package imports nothing on its own.

``lowering`` holds the lowering table (each primitive's ``lower[backend]`` slot, with family
defaults) and the interpreter that runs a graph on a framework; ``torch``, ``jax``, ``tf``
and ``onnx`` fill the table (each imported only when its backend is asked for); ``compile``
gives ``compile_to``, ``training`` the ``weights.grad(..., backend=...)`` path and
``export`` the torch modules and the saved artifacts. Those sit on top of the graph IR and
are loaded on first use of the names below.
"""

from __future__ import annotations

from typing import Any

from pycograd.core.errors import MissingAttributeError

_LAZY = {
    "compile_to": "pycograd.backends.compile",
    "DeviceUnavailableError": "pycograd.backends.errors",
    "FrameworkMissingError": "pycograd.backends.errors",
    "NoLoweringError": "pycograd.backends.errors",
    "UnknownBackendError": "pycograd.backends.errors",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    """The lowering names, imported on first use (the array devices below them must not pull
    the graph IR in while the package is still importing)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise MissingAttributeError(f"module 'pycograd.backends' has no attribute {name!r}; it "
                                f"has {', '.join(__all__)}")
