"""Sweep cases for integer bit arithmetic on traced integers (``&``, ``|``, ``^``, ``~``,
``<<``, ``>>``): the random keys' cipher under vmap and eval_shape. The integers come from
a traced mask of the float input (``(x > 0).astype(...)``) and scale it, so the primitives
run on traced values while the case differentiates in ``x`` (piecewise constant factors,
inputs away from the kink at 0).
"""

from __future__ import annotations

import numpy as np
from sweep_cases import A, Case

CASES: list[Case] = []

AW = dict(away=0.2)
# grad leaves integers untraced (no integer enters the tape), so the first-order mode,
# which checks that the claimed primitives run, cannot see them; vmap and eval_shape do
INTS = dict(skip={"first_order": "integers stay untraced under grad (no gradient to carry): "
                                 "the bit primitives run under vmap and eval_shape"})


def _bits(x, dtype):
    m = (x > 0).astype(dtype)
    a = np.bitwise_or(np.left_shift(m, dtype(2)), np.bitwise_and(m, dtype(1)))  # 5 or 0
    b = np.right_shift(np.bitwise_xor(a, dtype(3)), dtype(1))  # 3 or 1
    return a, b


CASES += [
    Case("bits-int64", lambda x: x * sum(_bits(x, np.int64)) - x * np.invert(_bits(
        x, np.int64)[1]), (A(2, 3, **AW),),
         ("bitwise_or", "left_shift", "bitwise_and", "right_shift", "bitwise_xor", "invert",
          "multiply"), **INTS),
    Case("bits-uint32-operators", lambda x, y: y * ((((x > 0).astype(np.uint32) << np.uint32(3))
                                                     ^ np.uint32(1)) >> np.uint32(1)),
         (A(3, **AW), A(2, 3)), ("left_shift", "bitwise_xor", "right_shift", "multiply"),
         **INTS),
]
