"""Sweep cases for ``pycograd.nn``: every functional NN op, run through every sweep mode
(first/second order, jvp, vmap, eval_shape, low precision) like the primitives under it.

Integer inputs (labels, token ids) and keys are fixed constants inside each case, so the
sweep's float arguments are exactly the differentiable ones.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sweep_cases import Arg, Case

import pycograd.nn as nn
from pycograd import random as pr
from pycograd.ops.gates import gru_gates_p
from pycograd.transforms.checkpoint import checkpoint

CASES: list[Case] = []
LABELS = np.array([0, 2, 1])
IDS = np.array([[1, 0, 3], [3, 3, 2]])
KEY = pr.key(0)
SMALL = dict(low=-1.0, high=1.0)
AWAY = dict(away=0.2, high=1.5)  # kinks at 0 (relu, huber...) stay out of reach


def case(name: str, fn: Callable, shapes: list, prims: str, kinks: bool = False,
         **kw: object) -> None:
    args = tuple(Arg(tuple(s), **(AWAY if kinks else SMALL)) for s in shapes)
    CASES.append(Case(f"nn-{name}", fn, args, tuple(prims.split()), **kw))


# ---- activations -------------------------------------------------------------------
case("relu", nn.relu, [(2, 3)], "where", kinks=True)
case("leaky_relu", lambda x: nn.leaky_relu(x, 0.1), [(2, 3)], "where", kinks=True)
case("elu", nn.elu, [(2, 3)], "expm1", kinks=True)
case("sigmoid", nn.sigmoid, [(2, 3)], "exp")
case("tanh", nn.tanh, [(3,)], "tanh")
case("gelu", nn.gelu, [(2, 3)], "erf")
case("gelu-tanh", lambda x: nn.gelu(x, approximate="tanh"), [(2, 3)], "tanh")
case("silu", nn.silu, [(2, 3)], "exp")
case("softplus", nn.softplus, [(2, 3)], "exp")
case("softmax", nn.softmax, [(2, 4)], "softmax")
case("softmax-axes", lambda x: nn.softmax(x, axis=(0, 2)), [(2, 3, 2)], "softmax")
case("softmax-all-0d", lambda x: nn.softmax(x, axis=None) * nn.softmax(x[0, 0], axis=None),
     [(2, 3)], "softmax")
case("softmax-masked", lambda x: nn.softmax(np.where(np.eye(3, dtype=bool), -np.inf, x)),
     [(3, 3)], "softmax")
case("log_softmax-axis0", lambda x: nn.log_softmax(x, axis=0), [(3, 2)], "log_softmax")
case("log_softmax-axes", lambda x: nn.log_softmax(x, axis=(-1, 0)), [(2, 2, 3)], "log_softmax")
case("logsumexp", lambda x: nn.logsumexp(x, axis=-1), [(2, 4)], "exp")

# complex logits and features: the fused primitives are holomorphic, as their compositions
CZ = dict(low=-0.5, high=0.5, dtype="complex128")
CASES.append(Case("nn-softmax-complex", nn.softmax, (Arg((2, 3), **CZ),), ("softmax",)))
CASES.append(Case("nn-log_softmax-complex", lambda z: nn.log_softmax(z, axis=0),
                  (Arg((3, 2), **CZ),), ("log_softmax",)))
CASES.append(Case("nn-layer_norm-complex", lambda z, w: nn.layer_norm(z, w, w),
                  (Arg((2, 3), **CZ), Arg((3,), **CZ)), ("layer_norm",)))

# ---- losses ------------------------------------------------------------------------
case("cross_entropy-labels", lambda z: nn.cross_entropy(z, LABELS), [(3, 4)], "log_softmax")
case("cross_entropy-soft", lambda z, t: nn.cross_entropy(z, nn.softmax(t)), [(3, 4), (3, 4)],
     "log_softmax softmax")
case("cross_entropy-smoothing-sum",
     lambda z: nn.cross_entropy(z, LABELS, reduction="sum", label_smoothing=0.1), [(3, 4)],
     "log_softmax")
case("bce_with_logits", lambda z, t: nn.binary_cross_entropy_with_logits(z, nn.sigmoid(t)),
     [(2, 3), (2, 3)], "exp")
case("mse", nn.mse, [(2, 3), (2, 3)], "multiply")
case("huber", lambda p, t: nn.huber(p, t, delta=0.5), [(2, 3), (2, 3)], "where",
     second_order=False)

# ---- normalization ---------------------------------------------------------------------
case("layer_norm", lambda x, w, b: nn.layer_norm(x, w, b), [(2, 4), (4,), (4,)], "layer_norm")
case("layer_norm-plain", lambda x: nn.layer_norm(x), [(3, 4)], "layer_norm")
case("layer_norm-weight-axes", lambda x, w: nn.layer_norm(x, w, axis=(0, 2)),
     [(2, 3, 4), (2, 1, 4)], "layer_norm")
case("layer_norm-bias-broadcasts-up", lambda x, b: nn.layer_norm(x, bias=b, eps=0.1),
     [(3, 4), (2, 1, 4)], "layer_norm")
case("rms_norm", lambda x, w: nn.rms_norm(x, w), [(2, 4), (4,)], "sqrt")
case("batch_norm-train", lambda x, w, b: nn.batch_norm(x, None, None, w, b, training=True)[0],
     [(4, 3), (3,), (3,)], "sqrt")
case("group_norm", lambda x: nn.group_norm(x, 2), [(2, 4, 3)], "sqrt")

# ---- layers ----------------------------------------------------------------------------
case("linear", lambda x, w, b: nn.linear(x, w, b), [(2, 3), (4, 3), (4,)], "matmul")
case("embedding", lambda t: nn.embedding(IDS, t), [(4, 3)], "getitem")
case("dropout", lambda x: nn.dropout(x, 0.5, KEY), [(2, 6)], "multiply")
case("attention-causal", lambda q, k, v: nn.scaled_dot_product_attention(q, k, v, is_causal=True),
     [(3, 2), (3, 2), (3, 2)], "softmax")
case("multi_head_attention",
     lambda x, wq, wk, wv, wo: nn.multi_head_attention(x, x, x, 2, wq, wk, wv, wo),
     [(3, 4), (4, 4), (4, 4), (4, 4), (4, 4)], "softmax")
case("conv1d", lambda x, w: nn.conv1d(x, w, padding=1), [(1, 2, 5), (3, 2, 3)], "matmul")
case("conv2d-stride-groups", lambda x, w: nn.conv2d(x, w, stride=2, padding=1, groups=2),
     [(1, 2, 5, 5), (4, 1, 3, 3)], "matmul")
case("conv_transpose2d", lambda x, w: nn.conv_transpose2d(x, w, stride=2),
     [(1, 2, 3, 3), (2, 1, 2, 2)], "matmul")
case("conv2d-same-unbatched", lambda x, w: nn.conv2d(x, w, padding="same", dilation=(1, 2)),
     [(2, 4, 5), (3, 2, 2, 3)], "matmul")
case("conv1d-same-unbatched", lambda x, w: nn.conv1d(x, w, padding="same"),
     [(2, 6), (3, 2, 4)], "matmul")
case("max_pool2d", lambda x: nn.max_pool2d(x, 2), [(1, 1, 4, 4)], "max")
case("avg_pool2d", lambda x: nn.avg_pool2d(x, 2), [(1, 2, 4, 4)], "sum")
case("global_avg_pool", nn.global_avg_pool, [(2, 3, 2, 2)], "sum")

# ---- recurrent cells -------------------------------------------------------------------
case("rnn_cell", lambda x, h, wi, wh: nn.rnn_cell(x, h, wi, wh), [(2, 3), (2, 4), (4, 3), (4, 4)],
     "tanh")
case("gru_cell", lambda x, h, wi, wh: nn.gru_cell(x, h, wi, wh),
     [(2, 3), (2, 4), (12, 3), (12, 4)], "gru_gates")
case("gru_cell-bias-one_input",  # x without a batch axis broadcasts against the batched h
     lambda x, h, wi, wh, bi, bh: nn.gru_cell(x, h, wi, wh, bi, bh),
     [(3,), (2, 4), (12, 3), (12, 4), (12,), (12,)], "gru_gates")
case("gru_cell-one_state", lambda x, h, wi, wh: nn.gru_cell(x, h, wi, wh),
     [(2, 3), (4,), (12, 3), (12, 4)], "gru_gates")
case("gru_gates-broadcast", lambda xg, hg, h: gru_gates_p.bind(xg, hg, h),
     [(2, 1, 6), (3, 6), (3, 2)], "gru_gates")
case("lstm_cell", lambda x, h, c, wi, wh: nn.lstm_cell(x, (h, c), wi, wh),
     [(2, 3), (2, 4), (2, 4), (16, 3), (16, 4)], "tanh")
case("scan-rnn", lambda xs, h, wi, wh: nn.scan(lambda h, x: nn.rnn_cell(x, h, wi, wh), h, xs),
     [(4, 2, 3), (2, 4), (4, 3), (4, 4)], "tanh")
case("scan-gru-batch_first",  # a symbolic batch, concrete time
     lambda h, xs, wi, wh: nn.scan(lambda h, x: nn.gru_cell(x, h, wi, wh), h, xs, axis=1),
     [(2, 4), (2, 3, 3), (12, 3), (12, 4)], "gru_gates")


def _flat(out: tuple) -> tuple:
    """``(carry tuple, ys)`` as one flat tuple of arrays."""
    return (*out[0], out[1])


case("scan-lstm-checkpoint-batch_first",  # batch first: a symbolic batch, concrete time
     lambda h, c, xs, wi, wh: _flat(nn.scan(
         checkpoint(lambda s, x: nn.lstm_cell(x, s, wi, wh)), (h, c), xs, axis=1)),
     [(2, 4), (2, 4), (2, 3, 3), (16, 3), (16, 4)], "tanh checkpoint")
case("scan-has_output-carry",
     lambda xs, h: nn.scan(lambda s, x: (s * np.tanh(x) + x, np.sin(s)), h, xs, axis=1,
                           has_output=True),
     [(2, 4, 3), (2, 3)], "tanh sin")



# ---- RWKV --------------------------------------------------------------------------------
RWKV_VEC = ("mix_k", "mix_v", "mix_r", "decay", "bonus")
RWKV_MAT = ("key", "value", "receptance", "output")
case("wkv", nn.wkv, [(3,), (3,), (2, 4, 3), (2, 4, 3)], "exp max")
case("wkv-large-keys", lambda w, u, k, v: nn.wkv(w, u, 300.0 * k, v),
     [(2,), (2,), (5, 2), (5, 2)], "exp", eps=1e-8, rtol=1e-5, atol=1e-7, hvp_eps=1e-8)
case("wkv_step",
     lambda w, u, k, v, a, b, p: _flat(nn.wkv_step(w, u, k, v, (a, np.exp(b), p))[::-1]),
     [(3,), (3,), (2, 3), (2, 3), (2, 3), (2, 3), (2, 3)], "exp maximum", kinks=True)
case("wkv_step-scan",
     lambda w, u, k, v: nn.scan(lambda s, kv: nn.wkv_step(w, u, kv[0], kv[1], s)[::-1],
                                None, (k, v), axis=-2, has_output=True)[1],
     [(2,), (2,), (2, 3, 2), (2, 3, 2)], "exp maximum")
case("rwkv_time_mix",
     lambda x, *p: nn.rwkv_time_mix(x, dict(zip(RWKV_VEC + RWKV_MAT, p)))[0],
     [(2, 4, 3)] + [(3,)] * 5 + [(3, 3)] * 4, "exp")
case("rwkv_time_mix-recurrent",
     lambda x, *p: nn.rwkv_time_mix(x, dict(zip(RWKV_VEC + RWKV_MAT, p)), recurrent=True)[0],
     [(2, 3, 2)] + [(2,)] * 5 + [(2, 2)] * 4, "exp maximum")
case("rwkv_channel_mix",
     lambda x, mk, mr, wk, wv, wr: nn.rwkv_channel_mix(
         x, dict(mix_k=mk, mix_r=mr, key=wk, value=wv, receptance=wr))[0],
     [(2, 3, 2), (2,), (2,), (2, 5), (5, 2), (2, 2)], "maximum exp", kinks=True)
case("rwkv_time_mix-final_state",
     lambda x, *p: nn.rwkv_time_mix(x, dict(zip(RWKV_VEC + RWKV_MAT, p)))[1][1],
     [(2, 4, 2)] + [(2,)] * 5 + [(2, 2)] * 4, "exp max")
