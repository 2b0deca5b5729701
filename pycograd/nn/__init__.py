"""Functional neural-network ops, written in numpy so every transform differentiates them.

Weights use PyTorch's layouts and conventions (``linear`` weights ``(out, in)``, NCHW
convolutions, GRU gates ``(r, z, n)``, LSTM gates ``(i, f, g, o)``), so results can be
checked against ``torch.nn.functional`` directly.
"""

from pycograd.nn.activations import (
    elu,
    gelu,
    leaky_relu,
    log_softmax,
    logsumexp,
    relu,
    sigmoid,
    silu,
    softmax,
    softplus,
    tanh,
)
from pycograd.nn.attention import multi_head_attention, scaled_dot_product_attention
from pycograd.nn.conv import conv1d, conv2d, conv_transpose2d
from pycograd.nn.dropout import dropout
from pycograd.nn.embedding import embedding
from pycograd.nn.linear import linear
from pycograd.nn.losses import binary_cross_entropy_with_logits, cross_entropy, huber, mse
from pycograd.nn.norms import batch_norm, group_norm, layer_norm, rms_norm
from pycograd.nn.pool import avg_pool2d, global_avg_pool, max_pool2d
from pycograd.nn.rnn import gru_cell, lstm_cell, rnn_cell, scan
from pycograd.nn.rwkv import rwkv_channel_mix, rwkv_time_mix, token_shift, wkv, wkv_step

max_pool = max_pool2d
avg_pool = avg_pool2d

__all__ = [
    "relu", "leaky_relu", "elu", "sigmoid", "tanh", "gelu", "silu", "softplus",
    "softmax", "log_softmax", "logsumexp",
    "cross_entropy", "binary_cross_entropy_with_logits", "mse", "huber",
    "layer_norm", "rms_norm", "batch_norm", "group_norm", "dropout",
    "scaled_dot_product_attention", "multi_head_attention", "embedding", "linear",
    "conv1d", "conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "max_pool",
    "avg_pool", "global_avg_pool", "rnn_cell", "gru_cell", "lstm_cell", "scan",
    "wkv", "wkv_step", "token_shift", "rwkv_time_mix", "rwkv_channel_mix",
]
