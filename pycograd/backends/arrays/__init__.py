"""Array devices: the registry of array libraries, arrays placed on them, and transfers.

See ``pycograd.device`` for the user-facing names (``device``, ``on_cpu``, ``on_device``).
"""

from pycograd.backends.arrays.placed import DeviceArray, device_of
from pycograd.backends.arrays.registry import Device, resolve
from pycograd.core.errors import DeviceError

__all__ = ["Device", "DeviceArray", "DeviceError", "device_of", "resolve"]
