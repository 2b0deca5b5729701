"""Which array libraries pycograd can compute on, and how arrays move between them.

A ``Device`` is one place arrays live: a library's namespace (array-API style: ``xp.exp``,
``xp.sum``...) plus, for libraries with several, which device of it. Names are
``"numpy"`` (alias ``"cpu"``), ``"cupy"`` / ``"cupy:1"``, ``"array_api_strict"`` /
``"array_api_strict:device1"``, ``"torch"`` / ``"torch:cuda"`` / ``"torch:mps"``. Moving
an array is explicit here (``upload`` / ``download``); nothing else converts.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from pycograd.core.errors import DeviceError

_DTYPE_NAMES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                "uint64", "float16", "float32", "float64", "complex64", "complex128")


class Device:
    """One array library (and one of its devices): its namespace ``xp``, the library's own
    device object ``where``, and numpy dtypes for its dtypes (so rules written against numpy
    dtypes read its arrays' dtypes unchanged)."""

    __slots__ = ("name", "xp", "where", "_to_np", "_from_np", "_download")

    def __init__(self, name: str, xp: Any, where: Any, download: Callable[[Any], np.ndarray]):
        self.name = name
        self.xp = xp
        self.where = where
        self._download = download
        self._to_np: dict[Any, np.dtype] = {}
        self._from_np: dict[np.dtype, Any] = {}
        for n in _DTYPE_NAMES:
            d = getattr(xp, n, None)
            if d is not None:
                self._to_np[d] = np.dtype(n)
                self._from_np[np.dtype(n)] = d

    def np_dtype(self, dt: Any) -> np.dtype:
        """The numpy dtype of this library's dtype ``dt``."""
        return self._to_np[dt]

    def xp_dtype(self, dt: Any) -> Any:
        """This library's dtype for numpy's ``dt`` (a dtype, a type, or a name)."""
        d = np.dtype(dt)
        got = self._from_np.get(d)
        if got is None:
            raise DeviceError(f"dtype {d} does not exist on device {self.name!r}")
        return got

    def upload(self, x: Any) -> Any:
        """``x`` (numpy data) as an array of this device."""
        x = np.asarray(x)
        return self.xp.asarray(x, dtype=self.xp_dtype(x.dtype), device=self.where)

    def download(self, x: Any) -> np.ndarray:
        """This device's array ``x`` as a numpy array: the one explicit way back."""
        return self._download(x)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Device) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"device({self.name!r})"


def _import(module: str, why: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise DeviceError(f"{why}: the {module!r} package is not installed ({e})") from e


def _strict(sub: str | None) -> Device:
    xp = _import("array_api_strict", "device('array_api_strict') needs array-api-strict; "
                 "install it with `pip install array-api-strict`")
    where = xp.Device(sub) if sub else xp.Device()
    name = "array_api_strict" + (f":{sub}" if sub else "")
    return Device(name, xp, where, lambda a: np.from_dlpack(a).copy())


_CUPY_FIX = 'install it with `pip install "pycograd[cupy]"` (the cupy-cuda12x wheel)'


def _cupy(sub: str | None) -> Device:
    cp = _import("cupy", f"device('cupy') needs CuPy; {_CUPY_FIX}")
    try:
        n = cp.cuda.runtime.getDeviceCount()
    except Exception as e:  # CUDA driver missing: cupy raises its own runtime error types
        raise DeviceError(f"device('cupy'): CuPy is installed but no CUDA GPU or driver is "
                          f"usable ({type(e).__name__}: {e}); run on a machine with an "
                          "NVIDIA GPU, or use device('numpy')") from e
    index = int(sub or 0)
    if not 0 <= index < n:
        raise DeviceError(f"device('cupy:{index}'): this machine has {n} CUDA GPU(s)")
    compat = _import("array_api_compat.cupy", "device('cupy') needs array-api-compat; "
                     "install it with `pip install array-api-compat`")
    return Device("cupy" + (f":{sub}" if sub else ""), compat, cp.cuda.Device(index),
                  lambda a: cp.asnumpy(a))


def _torch(sub: str | None) -> Device:
    torch = _import("torch", "device('torch') needs PyTorch; install it with `pip install torch`")
    compat = _import("array_api_compat.torch", "device('torch') needs array-api-compat; "
                     "install it with `pip install array-api-compat`")
    where = torch.device(sub or "cpu")
    if where.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device('torch:cuda'): PyTorch sees no CUDA GPU")
    if where.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError("device('torch:mps'): PyTorch sees no Apple MPS device")
    return Device("torch" + (f":{sub}" if sub else ""), compat, where,
                  lambda a: a.detach().cpu().numpy())


def _numpy(sub: str | None) -> Device:
    if sub:
        raise DeviceError(f"device('numpy:{sub}'): numpy has one device; write device('numpy')")
    return NUMPY


NUMPY = Device("numpy", np, "cpu", lambda a: a)
BACKENDS: dict[str, Callable[[str | None], Device]] = {
    "numpy": _numpy, "cpu": _numpy, "array_api_strict": _strict, "cupy": _cupy,
    "torch": _torch}
_CACHE: dict[str, Device] = {}


def resolve(name: str | Device) -> Device:
    """The ``Device`` called ``name`` (``"library"`` or ``"library:which"``)."""
    if isinstance(name, Device):
        return name
    got = _CACHE.get(name)
    if got is not None:
        return got
    if not isinstance(name, str):
        raise DeviceError(f"a device name is a string such as 'cupy', got {name!r}")
    lib, _, sub = name.partition(":")
    make = BACKENDS.get(lib)
    if make is None:
        raise DeviceError(f"unknown device {name!r}; known devices: "
                          + ", ".join(repr(k) for k in BACKENDS)
                          + " (with ':which' for one of several, e.g. 'torch:cuda')")
    dev = _CACHE[name] = make(sub or None)
    return dev
