"""einops on traced values: ``rearrange``, ``reduce``, ``repeat``, ``einsum``, ``pack`` and
``unpack`` differentiate under every transform.

einops picks a backend by the type of the array it is given and knows no pycograd type,
so a traced value (a tape ``Var``, a vmap/jvp/abstract/capture tracer) stopped it with
"Tensor type unknown to einops". einops finds backends as subclasses of its
``AbstractBackend`` whose ``framework_name`` is an imported module; this one is named
``pycograd`` and lowers each step to numpy calls on the traced value, which are our
primitives: reshape, transpose, sum/mean/max/min/prod, expand_dims + broadcast_to (for
``repeat``), stack/concatenate, einsum. Shapes may hold symbolic ``Dim`` sizes
(``eval_shape``). It is defined only when einops is importable: einops stays optional::

    from einops import rearrange
    grad(lambda x: np.sum(rearrange(x, "b (h w) -> b h w", h=2) ** 2))(np.ones((3, 4)))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pycograd.core.dtypes import is_float
from pycograd.core.trace import Tracer

try:
    from einops._backends import AbstractBackend
except ImportError:  # einops not installed: nothing to register
    AbstractBackend = None

_REDUCTIONS = {"min": np.min, "max": np.max, "sum": np.sum, "mean": np.mean, "prod": np.prod,
               "any": np.any, "all": np.all}

if AbstractBackend is not None:

    class PycogradBackend(AbstractBackend):
        """The einops backend of traced values (found by einops once pycograd is imported)."""

        framework_name = "pycograd"

        def is_appropriate_type(self, tensor: Any) -> bool:
            return isinstance(tensor, Tracer)

        def shape(self, x: Any) -> tuple:
            return np.shape(x)

        def reshape(self, x: Any, shape: Any) -> Any:
            return np.reshape(x, tuple(shape))

        def transpose(self, x: Any, axes: Any) -> Any:
            return np.transpose(x, tuple(axes))

        def reduce(self, x: Any, operation: str, axes: tuple) -> Any:
            return _REDUCTIONS[operation](x, axis=tuple(axes))

        def stack_on_zeroth_dimension(self, tensors: list) -> Any:
            return np.stack(tensors)

        def add_axis(self, x: Any, new_position: int) -> Any:
            return np.expand_dims(x, new_position)

        def add_axes(self, x: Any, n_axes: int, pos2len: dict) -> Any:
            """``repeat``'s new axes: size-1 axes broadcast to their lengths (a view whose
            gradient is a sum, rather than ``tile``'s copy)."""
            for pos in sorted(pos2len):
                x = np.expand_dims(x, pos)
            shape = list(np.shape(x))
            for pos, length in pos2len.items():
                shape[pos] = length
            return np.broadcast_to(x, tuple(shape))

        def tile(self, x: Any, repeats: tuple) -> Any:
            return np.tile(x, repeats)

        def concat(self, tensors: list, axis: int) -> Any:
            return np.concatenate(tensors, axis=axis)

        def is_float_type(self, x: Any) -> bool:
            return is_float(np.result_type(x))  # bfloat16 included, as einops' numpy backend

        def einsum(self, pattern: str, *x: Any) -> Any:
            return np.einsum(pattern, *x)

        def arange(self, start: int, stop: int) -> Any:
            return np.arange(start, stop)
