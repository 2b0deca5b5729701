"""pycograd: exact gradients of ordinary numpy code.

Importing the package registers every primitive (``ops``), installs the numpy surface on
traced values (``numpy_api``) and the family rules of every interpreter (``transforms``).
"""

# numpy_api and ops register the surface and the primitives; the modules random and
# distributed stay out of __all__ (pycograd.random, pycograd.distributed).
from pycograd import distributed, numpy_api, ops, random  # noqa: F401
from pycograd.backends.compile import compile_to
from pycograd.backends.errors import NoLoweringError
from pycograd.backends.export import export_onnx, export_torch, export_torchscript
from pycograd.core.errors import (
    ArgnumsError,
    ArgumentError,
    ArgumentTypeError,
    CheckpointPolicyError,
    DivisionByZeroError,
    GradientMismatchError,
    ImmutableTracerError,
    InAxesError,
    IndexingError,
    IndexOutOfRangeError,
    InputRuntimeError,
    LeakedTracerError,
    MissingAttributeError,
    MissingDependencyError,
    NonFiniteError,
    NonScalarOutputError,
    NoRuleError,
    PycogradError,
    ResidualError,
    ShapeError,
    TracerConversionError,
)
from pycograd.core.pytree import register_pytree_node, tree_flatten, tree_map, tree_unflatten
from pycograd.core.symbolic import Dim
from pycograd.core.var import Var
from pycograd.debug import debug_nans
from pycograd.device import DeviceError, current_device, device, on_cpu, on_device
from pycograd.dsl.hint import install_if_interactive as _dsl_hint
from pycograd.graph import (
    CaptureError,
    Graph,
    capture,
    cost_report,
    eval_graph,
    grad_graph,
    jit,
    optimize,
    vjp_graph,
)
from pycograd.graph.remat import RematInfeasibleError, RematPlan, eval_scheduled, plan_remat
from pycograd.nn import *  # noqa: F403
from pycograd.nn import __all__ as _nn_all
from pycograd.numpy_api.construction import c_, r_, scatter_add, scatter_set
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
from pycograd.privacy import DPSGD, PrivacyError, dp_train, per_sample_grad_norms
from pycograd.routing.transparent import transparent
from pycograd.transforms.check import GradCheckError, check_grads
from pycograd.transforms.checkpoint import checkpoint, checkpoint_name, checkpoint_sequential, remat
from pycograd.transforms.custom import custom_jvp, custom_vjp
from pycograd.transforms.grad import grad, holomorphic_grad, value_and_grad, vjp
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


def load_ipython_extension(shell: object) -> None:
    """``%load_ext pycograd``: the ambient-weights DSL (imported only when asked for)."""
    from pycograd.dsl import load_ipython_extension as load

    load(shell)


def unload_ipython_extension(shell: object) -> None:
    from pycograd.dsl import unload_ipython_extension as unload

    unload(shell)


_dsl_hint()  # in IPython only: DSL syntax before %load_ext says to load it

__version__ = "0.1.0"

__all__ = [
    # differentiation
    "grad", "value_and_grad", "vjp", "holomorphic_grad", "jvp", "linearize", "jacfwd",
    "jacrev", "jacobian", "hessian", "hvp", "elementwise_grad", "vmap", "checkpoint", "remat",
    "checkpoint_name", "checkpoint_sequential",
    "stop_gradient",
    "custom_vjp", "custom_jvp", "Var", "transparent",
    # checking and privacy
    "check_grads", "GradCheckError", "debug_nans", "per_sample_grad_norms", "DPSGD", "dp_train",
    "PrivacyError",
    # numpy extras without a numpy spelling
    "scatter_add", "scatter_set", "r_", "c_",
    # shapes
    "eval_shape", "ShapeDtypeStruct", "summary", "Dim",
    # graphs
    "capture", "Graph", "eval_graph", "grad_graph", "vjp_graph", "optimize", "cost_report",
    "jit", "CaptureError", "plan_remat", "eval_scheduled", "RematPlan", "RematInfeasibleError",
    # lowering and export
    "compile_to", "export_torch", "export_torchscript", "export_onnx", "NoLoweringError",
    # parameters and training
    "ParamDict", "frozen", "tied", "buffer", "ParamLoadError", "GradientMismatchError",
    "IndexOutOfRangeError",
    "SGD", "Momentum", "Adam", "AdamW", "RMSprop", "Adagrad",
    "cosine_decay", "linear_warmup", "exponential_decay", "step_decay",
    "clip_grad_norm", "clip_grad_value", "clip_leaf_norm", "train", "batches", "DataLoader",
    "save_checkpoint", "load_checkpoint",
    # errors
    "PycogradError", "ShapeError", "DataDependentShapeError", "NoRuleError",
    "NonScalarOutputError", "TracerConversionError", "LeakedTracerError", "ArgnumsError",
    "CheckpointPolicyError", "ResidualError",
    "ArgumentError", "ArgumentTypeError", "InAxesError", "ImmutableTracerError", "IndexingError",
    "InputRuntimeError", "DivisionByZeroError", "MissingAttributeError", "NonFiniteError",
    "MissingDependencyError",
    # devices
    "device", "on_cpu", "on_device", "current_device", "DeviceError",
    # pytrees
    "tree_flatten", "tree_unflatten", "tree_map", "register_pytree_node",
    *_nn_all,
]
