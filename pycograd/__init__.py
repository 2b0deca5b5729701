"""pycograd: exact gradients of ordinary numpy code.

Importing the package registers every primitive (``ops``), installs the numpy surface on
traced values (``numpy_api``) and the family rules of every interpreter (``transforms``).
"""

# numpy_api and ops register the surface and the primitives; random stays out of __all__.
from pycograd import numpy_api, ops, random  # noqa: F401
from pycograd.core.errors import (
    ArgnumsError,
    LeakedTracerError,
    NonScalarOutputError,
    NoRuleError,
    PycogradError,
    ShapeError,
    TracerConversionError,
)
from pycograd.core.pytree import register_pytree_node, tree_flatten, tree_map, tree_unflatten
from pycograd.core.symbolic import Dim
from pycograd.core.var import Var
from pycograd.nn import *  # noqa: F403
from pycograd.nn import __all__ as _nn_all
from pycograd.numpy_api.transparent import transparent
from pycograd.ops.elementwise import stop_gradient
from pycograd.optim import (
    SGD,
    Adagrad,
    Adam,
    AdamW,
    DataLoader,
    Momentum,
    RMSprop,
    batches,
    clip_grad_norm,
    clip_grad_value,
    clip_leaf_norm,
    cosine_decay,
    exponential_decay,
    linear_warmup,
    load_checkpoint,
    save_checkpoint,
    step_decay,
    train,
)
from pycograd.params import ParamDict, ParamLoadError, buffer, frozen, tied
from pycograd.transforms.checkpoint import checkpoint, remat
from pycograd.transforms.custom import custom_jvp, custom_vjp
from pycograd.transforms.grad import grad, value_and_grad, vjp
from pycograd.transforms.jacobians import (
    elementwise_grad,
    hessian,
    hvp,
    jacfwd,
    jacobian,
    jacrev,
)
from pycograd.transforms.jvp import jvp, linearize
from pycograd.transforms.shapes import (
    DataDependentShapeError,
    ShapeDtypeStruct,
    eval_shape,
    summary,
)
from pycograd.transforms.vmap import vmap

__version__ = "0.1.0"

__all__ = [
    # differentiation
    "grad", "value_and_grad", "vjp", "jvp", "linearize", "jacfwd", "jacrev", "jacobian",
    "hessian", "hvp", "elementwise_grad", "vmap", "checkpoint", "remat", "stop_gradient",
    "custom_vjp", "custom_jvp", "Var", "transparent",
    # shapes
    "eval_shape", "ShapeDtypeStruct", "summary", "Dim",
    # parameters and training
    "ParamDict", "frozen", "tied", "buffer", "ParamLoadError",
    "SGD", "Momentum", "Adam", "AdamW", "RMSprop", "Adagrad",
    "cosine_decay", "linear_warmup", "exponential_decay", "step_decay",
    "clip_grad_norm", "clip_grad_value", "clip_leaf_norm", "train", "batches", "DataLoader",
    "save_checkpoint", "load_checkpoint",
    # errors
    "PycogradError", "ShapeError", "DataDependentShapeError", "NoRuleError",
    "NonScalarOutputError", "TracerConversionError", "LeakedTracerError", "ArgnumsError",
    # pytrees
    "tree_flatten", "tree_unflatten", "tree_map", "register_pytree_node",
    *_nn_all,
]
