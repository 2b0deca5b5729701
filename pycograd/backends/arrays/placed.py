"""Arrays that live on another library, and the interpreter that computes on them there.

A ``DeviceArray`` wraps one array of a non-numpy library (its ``.array``) and its
``Device``. It is a ``Tracer`` one level below every transform (level -1), so it gets
numpy's protocols and the ndarray surface like any traced value: ``np.exp(a)``, ``a @ b``
and every numpy call inside a rule, an optimizer or an nn op bind a primitive, and
``DeviceTrace.process`` runs that primitive's array-API implementation (``impls.IMPLS``)
on the wrapped arrays and wraps the result: values never leave the device. The default
numpy path never meets this class, so it costs numpy nothing.

``device_put`` is the one primitive that moves values between devices; its VJP moves the
cotangent back to where the argument was.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from pycograd.backends.arrays.impls import IMPLS
from pycograd.backends.arrays.registry import NUMPY, Device, resolve
from pycograd.core.errors import DeviceError
from pycograd.core.primitive import primitive
from pycograd.core.trace import Trace, Tracer, bind

_STATE = threading.local()


def active() -> Device | None:
    """The device of the innermost ``device(...)`` block of this thread (None outside)."""
    stack = getattr(_STATE, "stack", None)
    return stack[-1] if stack else None


def push(dev: Device) -> None:
    stack = getattr(_STATE, "stack", None)
    if stack is None:
        stack = _STATE.stack = []
    stack.append(dev)


def pop() -> None:
    _STATE.stack.pop()


class DeviceTrace(Trace):
    """Level -1: runs primitives on the wrapped arrays' own library."""

    __slots__ = ()

    def process(self, prim: Any, args: tuple, params: dict) -> Any:
        if prim is device_put_p:
            return _put(args[0], params["to"])
        dev = None
        for a in args:
            if a.__class__ is DeviceArray:
                if dev is None:
                    dev = a.device
                elif a.device != dev:
                    raise DeviceError(
                        f"{prim.name}: got arrays on two devices, {dev.name!r} and "
                        f"{a.device.name!r}; move one first with "
                        f"pycograd.on_device({dev.name!r}, x)")
        assert dev is not None
        impl = IMPLS.get(prim.name)
        if impl is None:
            raise DeviceError(
                f"{prim.name} has no implementation on device {dev.name!r} (its array "
                "library has no equivalent); compute it on numpy by moving its input with "
                "pycograd.on_cpu[x], then back with pycograd.on_device(...)")
        elementwise = prim.family == "elementwise"
        raw = [_raw(a, dev, prim.name, elementwise) for a in args]
        if isinstance(prim.impl, np.ufunc):
            raw = _loop_cast(prim.impl, raw, dev)
        try:
            out = impl(dev.xp, dev, *raw, **params)
        except (TypeError, IndexError, ValueError) as e:
            raise DeviceError(f"{prim.name} on device {dev.name!r}: the array library refused "
                              f"this use ({type(e).__name__}: {e})") from e
        return _wrap(out, dev)


def _raw(a: Any, dev: Device, op: str, elementwise: bool) -> Any:
    """``a`` as an operand of ``dev``'s library: numpy scalars of an elementwise op become
    Python numbers; numpy arrays (host data) are uploaded only inside a ``device(...)``
    block; outside one, numpy is a device of its own and meeting it raises."""
    if a.__class__ is DeviceArray:
        return a.array
    if isinstance(a, np.generic) or (isinstance(a, np.ndarray) and elementwise
                                     and a.ndim == 0):
        if elementwise:
            return a.item()
        a = np.asarray(a)
    if isinstance(a, np.ndarray):
        if active() is None:
            raise DeviceError(
                f"{op}: got arrays on two devices, 'numpy' (shape {a.shape}) and "
                f"{dev.name!r}; move the numpy one with pycograd.on_device({dev.name!r}, x), "
                f"or compute inside a `with pycograd.device(...)` block, which uploads "
                "numpy data")
        return dev.upload(a)
    return a


_LOOPS: dict[tuple, tuple] = {}


def _loop_cast(uf: np.ufunc, raw: list, dev: Device) -> list:
    """The operands cast to the dtypes of the loop numpy would pick (``bool * float`` and
    ``exp(int)`` compute in float64 on numpy; the standard leaves those to the library)."""
    key = (uf, *[dev.np_dtype(r.dtype) if hasattr(r, "dtype") else
                 (np.dtype(bool) if type(r) is bool else type(r)) for r in raw])
    loop = _LOOPS.get(key)
    if loop is None:
        try:
            loop = uf.resolve_dtypes(key[1:] + (None,) * uf.nout)[:uf.nin]
        except (TypeError, ValueError):
            loop = key[1:]
        _LOOPS[key] = loop
    return [dev.xp.astype(r, dev.xp_dtype(t)) if hasattr(r, "dtype") and k != t else r
            for r, k, t in zip(raw, key[1:], loop)]


def _wrap(out: Any, dev: Device) -> Any:
    if isinstance(out, tuple):
        return tuple(_wrap(o, dev) for o in out)
    if hasattr(out, "shape") and hasattr(out, "dtype"):
        return DeviceArray(out, dev)
    return out


DEVICE_TRACE = DeviceTrace(-1)


class DeviceArray(Tracer):
    """An array of another library (``.array``) on ``.device``, computed on with numpy
    calls.

    Made by ``pycograd.on_device``; ``pycograd.on_cpu[a]`` brings it back to numpy.

    Examples:
        >>> import numpy as np
        >>> from pycograd import on_cpu, on_device
        >>> a = on_device("array_api_strict", np.array([0.0, 1.0]))
        >>> b = np.exp(a) * 2                        # computed by array_api_strict
        >>> type(b.array).__module__.split(".")[0], b.device.name
        ('array_api_strict', 'array_api_strict')
        >>> on_cpu[b].round(3).tolist()
        [2.0, 5.437]
    """

    __slots__ = ("array", "device")

    def __init__(self, array: Any, device: Device):
        self._trace = DEVICE_TRACE
        self.array = array
        self.device = device

    @property
    def shape(self) -> tuple:
        return tuple(self.array.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.device.np_dtype(self.array.dtype)

    def __bool__(self) -> bool:
        return bool(self.array)

    def __float__(self) -> float:
        return float(self.array)

    def __int__(self) -> int:
        return int(self.array)

    def __index__(self) -> int:
        return int(self.array)

    def __repr__(self) -> str:
        return f"DeviceArray({self.device.name}, shape={self.shape}, dtype={self.dtype})"


def _put(x: Any, to: str) -> Any:
    """``x`` (a numpy array or a ``DeviceArray``) moved to device ``to``."""
    dst = resolve(to)
    if x.__class__ is DeviceArray:
        if x.device == dst:
            return x
        x = x.device.download(x.array)
    if dst is NUMPY:
        return np.asarray(x)
    return DeviceArray(dst.upload(x), dst)


def device_of(x: Any) -> Device:
    """Where ``x``'s values live, looking through the transforms' tracers."""
    while isinstance(x, Tracer) and x.__class__ is not DeviceArray:
        inner = None
        for slot in ("value", "primal", "val", "_value"):
            inner = getattr(x, slot, None)
            if inner is not None:
                break
        if inner is None:
            return NUMPY
        x = inner
    return x.device if x.__class__ is DeviceArray else NUMPY


device_put_p = primitive(
    "device_put", _put,
    lambda g, ans, x, to: device_put_p.bind(g, to=device_of(x).name), family="cast")


def put(x: Any, to: str) -> Any:
    """Bind ``device_put``: differentiable under every transform."""
    resolve(to)
    return bind(device_put_p, (x,), {"to": to})


def same_device(like: Any, const: Any) -> Any:
    """The numpy constant ``const`` (built from ``like``'s shape and dtype) placed where
    ``like``'s values live: ``np.zeros_like`` of a device array is on that device."""
    dev = device_of(like)
    return const if dev is NUMPY else DeviceArray(dev.upload(const), dev)


def on_block_device(make: Any) -> Any:
    """Wrap a function that makes numpy data (a random draw) so that, called inside a
    ``device(...)`` block, its result lands on the block's device. Calls it makes to other
    wrapped functions stay on numpy; only the outermost result moves."""
    import functools

    @functools.wraps(make)
    def made(*args: Any, **kwargs: Any) -> Any:
        depth = getattr(_STATE, "making", 0)
        _STATE.making = depth + 1
        try:
            out = make(*args, **kwargs)
        finally:
            _STATE.making = depth
        dev = active()
        if depth or dev is None or dev is NUMPY or not isinstance(out, (np.ndarray, np.generic)):
            return out
        return DeviceArray(dev.upload(out), dev)
    return made
