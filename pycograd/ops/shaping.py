"""Helpers for writing shape rules (``eval_shape``): shapes and dtypes of abstract operands.

A shape rule is ``rule(args, **params) -> (shape, dtype)``. Abstract operands have
``.shape`` and ``.dtype`` (``ShapeDtypeStruct``); concrete ones are arrays or Python
scalars. Dimensions may be symbolic (``Dim``), so rules compare dims with ``==`` only.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from pycograd.core.errors import ShapeError
from pycograd.core.primitive import Primitive
from pycograd.core.symbolic import Dim


def shape_of(x: Any) -> tuple:
    if isinstance(x, Dim):
        return ()
    s = getattr(x, "shape", None)
    return tuple(s) if s is not None else np.shape(x)


def stand_in(x: Any) -> Any:
    """A 0-d array of ``x``'s dtype; Python scalars (and symbolic dims, which act as
    ints) stay scalars, since numpy promotes them weakly."""
    if isinstance(x, (bool, int, float, complex)):
        return x
    if isinstance(x, Dim):
        return 1
    dt = getattr(x, "dtype", None)
    return np.ones((), dtype=dt if dt is not None else np.result_type(x))


def dtype_of(*xs: Any) -> np.dtype:
    """The dtype numpy's promotion gives for combining ``xs``."""
    return np.result_type(*[stand_in(x) for x in xs])


def out_dtype(prim: Primitive, args: list, params: dict) -> np.dtype:
    """The dtype ``prim`` produces, found by running it on 0-d stand-ins."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return np.result_type(prim.impl(*[stand_in(a) for a in args], **params))


def broadcast_shapes(op: str, *shapes: tuple) -> tuple:
    """numpy broadcasting that also accepts symbolic dims (which match themselves or 1)."""
    nd = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(nd):
        d: Any = 1
        for s in shapes:
            j = len(s) - nd + i
            if j < 0 or (isinstance(s[j], int) and s[j] == 1):
                continue
            if isinstance(d, int) and d == 1:
                d = s[j]
            elif d != s[j]:
                raise ShapeError(f"{op}: incompatible shapes "
                                 f"{' and '.join(str(tuple(s)) for s in shapes)}")
        out.append(d)
    return tuple(out)
