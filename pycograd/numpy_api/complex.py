"""``np.real`` / ``np.imag`` / ``np.angle`` (and the tests ``np.isreal`` / ``np.iscomplex``)
and ``x.real`` / ``x.imag`` on traced values.

On a real array numpy's ``real`` is the array itself and ``imag`` is zeros, so those
cases bind nothing (the zeros carry no gradient); complex arrays bind the primitives of
``pycograd.ops.complex``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pycograd.core.trace import Tracer
from pycograd.numpy_api.functions import implements
from pycograd.ops.complex import angle_p, imag_p, is_complex, real_p


@implements(np.real)
def real(val: Any) -> Any:
    return real_p.bind(val) if is_complex(val) else val


@implements(np.imag)
def imag(val: Any) -> Any:
    if is_complex(val):
        return imag_p.bind(val)
    return np.zeros(np.shape(val), val.dtype)


@implements(np.angle)
def angle(z: Any, deg: bool = False) -> Any:
    a = angle_p.bind(z)
    return a * (180 / np.pi) if deg else a


@implements(np.isreal)
def isreal(x: Any) -> Any:
    return imag(x) == 0


@implements(np.iscomplex)
def iscomplex(x: Any) -> Any:
    return imag(x) != 0


for _name, _f in (("real", real), ("imag", imag)):
    if not hasattr(Tracer, _name):
        setattr(Tracer, _name, property(_f))
