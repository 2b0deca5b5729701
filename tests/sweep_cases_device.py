"""Sweep cases for the device transfer primitive: ``on_cpu`` / ``on_device`` to numpy are
identities on numpy data, and must differentiate as such under every transform."""

from __future__ import annotations

import numpy as np
from sweep_cases import Arg as A
from sweep_cases import Case

from pycograd import on_cpu, on_device

CASES: list[Case] = [
    Case("device_put_cpu", lambda x, y: on_cpu[x] * np.sin(y), (A(3), A(3)), ("device_put",)),
    Case("device_put_complex", lambda z: on_cpu[z] * z, (A(3, dtype="complex128"),),
         ("device_put",)),
    Case("device_put_numpy", lambda x: on_device("numpy", x) ** 2, (A(2, 2),),
         ("device_put",)),
]
