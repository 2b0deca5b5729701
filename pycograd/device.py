"""Where arrays live: ``device(name)`` blocks, and ``on_cpu`` / ``on_device`` transfers.

User code keeps writing numpy (``np.exp(x)``, ``x @ w``). A value placed on a device is a
``DeviceArray``; every numpy call on it runs the primitive on that device's own array
library, so the tape, the transforms, optimizers and nn ops compute there and their
results stay there. Nothing converts to numpy unless ``on_cpu`` asks for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pycograd.backends.arrays.placed import active, pop, push, put
from pycograd.backends.arrays.registry import Device, resolve
from pycograd.core.errors import DeviceError
from pycograd.core.pytree import tree_map

__all__ = ["DeviceError", "current_device", "device", "on_cpu", "on_device"]


@contextmanager
def _block(dev: Device) -> Iterator[Device]:
    push(dev)
    try:
        yield dev
    finally:
        pop()


def device(name: str) -> Any:
    """A ``with`` block computing on device ``name``: numpy data that meets the device's
    arrays inside it is uploaded to the device (outside, that raises ``DeviceError``), and
    ``on_device(x)`` with no name places ``x`` there. The block is per thread; leaving it,
    even by an exception, restores the previous device.

    Names: ``"numpy"`` (``"cpu"``), ``"cupy"`` (``pip install "pycograd[cupy]"``),
    ``"array_api_strict"`` (testing; ``":device1"`` / ``":device2"`` pick its devices),
    ``"torch"`` / ``"torch:cuda"`` / ``"torch:mps"`` (through array-api-compat).

    Examples:
        >>> import numpy as np
        >>> from pycograd import device, grad, on_cpu, on_device
        >>> with device("array_api_strict"):
        ...     x = on_device(np.array([1.0, 2.0]))
        ...     g = grad(lambda x: np.sum(np.exp(x) * np.array([1.0, 0.5])), 0)(x)
        >>> g.device.name, on_cpu[g].round(4).tolist()
        ('array_api_strict', [2.7183, 3.6945])
    """
    return _block(resolve(name))


def current_device() -> Device | None:
    """The device of the innermost ``device(...)`` block of this thread, or None.

    Examples:
        >>> from pycograd import current_device, device
        >>> with device("array_api_strict"):
        ...     print(current_device())
        device('array_api_strict')
        >>> print(current_device())
        None
    """
    return active()


def on_device(name: Any, x: Any = None) -> Any:
    """``x`` (an array, or a pytree of them) moved to device ``name`` (or, written
    ``on_device(x)`` inside a ``device(...)`` block, to that block's device). The move is
    a differentiable primitive: gradients flow back to where ``x`` was.

    Examples:
        >>> import numpy as np
        >>> from pycograd import grad, on_cpu, on_device
        >>> f = lambda x: np.sum(on_device("array_api_strict", x) ** 2)
        >>> on_cpu[grad(f, 0)(np.array([1.0, 3.0]))].tolist()
        [2.0, 6.0]
    """
    if x is None and not isinstance(name, (str, Device)):
        dev = active()
        if dev is None:
            raise DeviceError("on_device(x) without a device name needs an enclosing "
                              "`with pycograd.device(name):` block; or write "
                              "on_device(name, x)")
        name, x = dev, name
    target = resolve(name).name
    return tree_map(lambda leaf: put(leaf, target), x)


class _OnCpu:
    """``on_cpu[x]``: ``x`` (or a pytree) moved to numpy, differentiably.

    Examples:
        >>> import numpy as np
        >>> from pycograd import on_cpu, on_device
        >>> on_cpu[on_device("array_api_strict", np.arange(3.0))].tolist()
        [0.0, 1.0, 2.0]
    """

    def __getitem__(self, x: Any) -> Any:
        return tree_map(lambda leaf: put(leaf, "numpy"), x)

    def __call__(self, x: Any) -> Any:
        return self[x]

    def __repr__(self) -> str:
        return "on_cpu"


on_cpu = _OnCpu()
