"""Sweep cases for convolution and correlation: ``np.convolve`` / ``np.correlate`` in every
mode (either operand longer), ``scipy.signal`` n-d convolve / correlate / fftconvolve /
convolve2d (routed by the transparent layer), complex operands. (The FFT path that large
problems take is checked against the direct one in test_signal.py.)"""

from __future__ import annotations

import numpy as np
from sweep_cases import A, Case, case

CASES: list[Case] = []


def add(name: str, fn: object, args: list, prims: str, **kw: object) -> None:
    case(f"signal-{name}", fn, args, prims, table=CASES, **kw)


def Z(*shape: int) -> A:
    return A(*shape, dtype="complex128")


for _mode in ("full", "valid", "same"):
    add(f"np-convolve-{_mode}", lambda a, v, m=_mode: np.convolve(a, v, m), [A(5), A(3)],
        "correlate")
    add(f"np-convolve-{_mode}-swapped", lambda a, v, m=_mode: np.convolve(a, v, m),
        [A(2), A(4)], "correlate")
    add(f"np-correlate-{_mode}", lambda a, v, m=_mode: np.correlate(a, v, m), [A(6), A(2)],
        "correlate")
    add(f"np-correlate-{_mode}-swapped", lambda a, v, m=_mode: np.correlate(a, v, m),
        [A(3), A(5)], "correlate")
add("np-convolve-scalar-kernel", lambda a, v: np.convolve(a, v), [A(4), A()], "correlate")
add("np-convolve-constant-kernel", lambda a: np.convolve(a, np.array([0.25, 0.5, 0.25]),
                                                        "same"), [A(5)], "correlate")
add("np-convolve-complex", lambda a, v: np.convolve(a, v), [Z(4), Z(3)], "correlate")
add("np-correlate-complex", lambda a, v: np.correlate(a, v, "full"), [Z(4), Z(2)],
    "correlate conjugate")
add("np-convolve-mixed", lambda a, v: np.convolve(a, v, "same"), [A(4), Z(3)], "correlate")

try:
    import scipy.signal as ss
except ImportError:  # scipy is optional
    ss = None

if ss is not None:
    for _mode in ("full", "valid", "same"):
        add(f"scipy-convolve-2d-{_mode}", lambda a, v, m=_mode: ss.convolve(a, v, m),
            [A(4, 5), A(2, 3)], "correlate")
        add(f"scipy-correlate-2d-{_mode}", lambda a, v, m=_mode: ss.correlate(a, v, m),
            [A(3, 4), A(2, 2)], "correlate")
    add("scipy-convolve-valid-swapped", lambda a, v: ss.convolve(a, v, "valid"),
        [A(2, 2), A(3, 4)], "correlate")
    add("scipy-convolve-same-bigger-kernel", lambda a, v: ss.convolve(a, v, "same"),
        [A(3), A(5)], "correlate")
    add("scipy-convolve-3d", lambda a, v: ss.convolve(a, v), [A(2, 3, 2), A(2, 2, 2)],
        "correlate")
    add("scipy-correlate-complex", lambda a, v: ss.correlate(a, v, "same"), [Z(4, 3), Z(2, 2)],
        "correlate conjugate")
    add("scipy-fftconvolve", lambda a, v: ss.fftconvolve(a, v, "same"), [A(5), A(3)],
        "correlate")
    add("scipy-fftconvolve-axes", lambda a, v: ss.fftconvolve(a, v, "full", axes=1),
        [A(2, 5), A(1, 3)], "correlate")
    add("scipy-convolve2d", lambda a, v: ss.convolve2d(a, v, "same"), [A(3, 4), A(2, 2)],
        "correlate")
    add("scipy-correlate2d", lambda a, v: ss.correlate2d(a, v, "valid"), [A(3, 4), A(2, 2)],
        "correlate")
