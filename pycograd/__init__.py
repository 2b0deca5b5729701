"""pycograd: exact gradients of ordinary numpy code."""

from pycograd import numpy_api, ops  # noqa: F401  (registers primitives and the surface)
from pycograd.core.errors import (
    LeakedTracerError,
    NonScalarOutputError,
    NoRuleError,
    PycogradError,
    ShapeError,
    TracerConversionError,
)
from pycograd.core.pytree import register_pytree_node, tree_flatten, tree_map, tree_unflatten
from pycograd.core.var import Var
from pycograd.ops.elementwise import stop_gradient
from pycograd.transforms.grad import grad, value_and_grad, vjp

__version__ = "0.1.0"

__all__ = [
    "Var", "grad", "value_and_grad", "vjp", "stop_gradient",
    "ShapeError", "NoRuleError", "NonScalarOutputError", "TracerConversionError",
    "LeakedTracerError", "PycogradError",
    "tree_flatten", "tree_unflatten", "tree_map", "register_pytree_node",
]
