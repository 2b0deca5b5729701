"""Optimizers, learning-rate schedules, gradient clipping, checkpoints, minibatches and the
``train`` loop."""

from pycograd.optim.checkpoint import load_checkpoint, save_checkpoint
from pycograd.optim.clip import clip_grad_norm, clip_grad_value, clip_leaf_norm, global_norm
from pycograd.optim.data import DataLoader, batches
from pycograd.optim.optimizers import (
    SGD,
    Adagrad,
    Adam,
    AdamW,
    Momentum,
    Optimizer,
    RMSprop,
    is_param_container,
)
from pycograd.optim.schedules import (
    constant,
    cosine_decay,
    exponential_decay,
    linear_warmup,
    step_decay,
)
from pycograd.optim.train import train

__all__ = [
    "Optimizer", "SGD", "Momentum", "Adam", "AdamW", "RMSprop", "Adagrad", "is_param_container",
    "constant", "cosine_decay", "linear_warmup", "exponential_decay", "step_decay",
    "clip_grad_norm", "clip_grad_value", "clip_leaf_norm", "global_norm",
    "save_checkpoint", "load_checkpoint", "batches", "DataLoader", "train",
]
