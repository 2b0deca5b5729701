"""Sweep cases for checkpoint policies and segments (issue 12): ``checkpoint_name``, the
``"dots"`` and names policies (whose backward replays kept values), and
``checkpoint_sequential``; every mode, second order included."""

import numpy as np
from sweep_cases import A, case

from pycograd import checkpoint, checkpoint_name, checkpoint_sequential

CASES: list = []


def _named(a, b):
    z = checkpoint_name(a @ b, "z")
    return np.tanh(z) * np.sin(checkpoint_name(a, "a"))[:, :2]


case("checkpoint_name", lambda x: checkpoint_name(np.sin(x), "s") * x, [A(2, 3)],
     "checkpoint_name sin multiply", table=CASES)
case("checkpoint-policy-dots",
     lambda x, w: checkpoint(lambda a, b: np.tanh(a @ b) @ b.T, policy="dots")(x, w),
     [A(2, 3), A(3, 2)], "checkpoint tanh matmul", table=CASES)
case("checkpoint-policy-names", lambda x, w: checkpoint(_named, policy=("z",))(x, w),
     [A(2, 3), A(3, 2)], "checkpoint checkpoint_name tanh matmul sin", table=CASES)
case("checkpoint_sequential",
     lambda x, w: checkpoint_sequential(
         [lambda h: np.tanh(h @ w), lambda h: np.sin(h) @ w.T, lambda h: h * h], 2)(x),
     [A(2, 3), A(3, 3)], "checkpoint tanh matmul sin multiply", table=CASES)
