"""Lowerings to TensorFlow. ``tf.experimental.numpy`` mirrors numpy, so, as for jax, the
family defaults are its function of the primitive's own name called with numpy's
parameters (then ``tf.math``); the rules below cover the rest. TensorFlow tensors index
with basic indices only: an advanced (array) index is refused at compile time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow.experimental.numpy as tnp

from pycograd.backends.lowering import register
from pycograd.core.primitive import Primitive
from pycograd.graph.ir import Value
from pycograd.ops.gates import gru_math
from pycograd.ops.indexing import fill

_RENAMED = {
    "stop_gradient": tf.stop_gradient, "erf": tf.math.erf, "erfc": tf.math.erfc,
    "erfinv": tf.math.erfinv, "ndtr": lambda x: 0.5 * tf.math.erfc(-x / np.sqrt(2.0)),
    "gammaln": tf.math.lgamma, "digamma": tf.math.digamma, "expit": tf.math.sigmoid,
    "xlogy": tf.math.xlogy, "xlog1py": tf.math.xlog1py, "i0": tf.math.bessel_i0,
    "i1": tf.math.bessel_i1,
    "round": lambda x, decimals: tf.round(x * 10.0 ** decimals) / 10.0 ** decimals,
    "logit": lambda x: tf.math.log(x) - tf.math.log1p(-x),
}
_NONE = frozenset({"nextafter", "spacing", "correlate", "argpartition", "partition_perm",
                   "scatter_add", "scatter_along", "searchsorted", "heaviside"})


def _elementwise(prim: Primitive) -> Any:
    if prim.name in _NONE:
        return None
    return _RENAMED.get(prim.name) or getattr(tnp, prim.name, None)


def _numpy_named(prim: Primitive) -> Any:
    return None if prim.name in _NONE else getattr(tnp, prim.name, None)


def _arg(fn: Any) -> Any:
    def rule(x: Any, axis: Any, keepdims: bool) -> Any:
        out = fn(x, axis=axis)
        if keepdims:
            out = tf.reshape(out, [1] * len(x.shape)) if axis is None else tnp.expand_dims(
                out, axis)
        return out
    return rule


def _getitem(x: Any, *arrays: Any, idx: Any) -> Any:
    return x[fill(idx, arrays)]


def _softmax(log: bool) -> Any:
    def rule(x: Any, axis: tuple) -> Any:
        if len(axis) == 1:
            return (tf.nn.log_softmax if log else tf.nn.softmax)(x, axis=axis[0])
        if not axis:  # a 0-d input: one element, probability 1
            return tf.zeros_like(x) if log else tf.ones_like(x)
        z = x - tf.reduce_logsumexp(x, axis=list(axis), keepdims=True)
        return z if log else tf.exp(z)
    return rule


def _layer_norm(x: Any, *wb: Any, axis: tuple, eps: float, affine: tuple) -> Any:
    d = x - tf.reduce_mean(x, axis=list(axis), keepdims=True)
    y = d / tf.sqrt(tf.reduce_mean(d * d, axis=list(axis), keepdims=True) + eps)
    for name, p in zip(affine, wb):
        y = y * p if name == "weight" else y + p
    return y


BY_NAME = {
    "softmax": _softmax(False), "log_softmax": _softmax(True), "layer_norm": _layer_norm,
    "getitem": _getitem, "argmax": _arg(tnp.argmax), "argmin": _arg(tnp.argmin),
    "argsort": lambda x, axis, kind, stable: tnp.argsort(x, axis=-1 if axis is None else axis,
                                                         kind="stable"),
    "concatenate": lambda *xs, axis: tnp.concatenate(xs, axis=axis),
    "take_along": lambda x, idx, axis: tnp.take_along_axis(x, idx, axis),
    "einsum": lambda *xs, spec: tnp.einsum(spec, *xs),
    "astype": lambda x, dtype: tf.cast(x, tf.as_dtype(np.dtype(dtype))),
    "reshape": lambda x, shape: tf.reshape(x, shape),
    "transpose": lambda x, axes: tf.transpose(x, axes),
    "broadcast_to": lambda x, shape: tf.broadcast_to(x, shape),
    "solve": lambda a, b: tf.linalg.solve(a, b) if len(b.shape) == len(a.shape) else
    tf.linalg.solve(a, b[..., None])[..., 0],
    "cholesky": lambda a, upper=False: tf.linalg.cholesky(
        tf.linalg.band_part(a, -1, 0) + tf.linalg.matrix_transpose(tf.linalg.band_part(
            a, -1, 0)) - tf.linalg.diag(tf.linalg.diag_part(a))),
    "expm": tf.linalg.expm,
    "logabsdet": lambda a: tf.linalg.slogdet(a)[1],
    "slogdet_sign": lambda a: tf.linalg.slogdet(a)[0],
    "gru_gates": lambda xg, hg, h: gru_math(tf.tanh, xg, hg, h),
}


def _refuse(node: Any) -> str | None:
    idx = node.params.get("idx")
    parts = idx if isinstance(idx, tuple) else (idx,)
    if node.prim.name == "getitem" and (any(isinstance(a, Value) for a in node.args[1:]) or any(
            isinstance(p, np.ndarray) for p in parts)):
        return "an advanced (array) index (TensorFlow indexes with basic indices only)"
    if node.prim.name == "cholesky" and node.params.get("upper"):
        return "cholesky(upper=True)"
    return None


register("tf", BY_NAME, {"elementwise": _elementwise, "reduction": _numpy_named,
                         "linear": _numpy_named, "multilinear": _numpy_named,
                         None: _numpy_named}, _refuse)


def to_framework(x: Any, device: Any = None) -> Any:
    if isinstance(x, (tf.Tensor, tf.Variable)):
        return x
    with tf.init_scope():  # a constant, also while tf.function traces
        return tf.constant(np.asarray(x))


def to_numpy(x: Any) -> np.ndarray:
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)


def signature(x: Any) -> tuple:
    shape = tuple(x.shape)
    if any(d is None for d in shape):
        from pycograd.core.errors import ArgumentError

        raise ArgumentError(
            f"compile_to(..., 'tf'): an input of unknown shape {shape}; trace the "
            "tf.function with concrete shapes (no input_signature with None dims)")
    return (shape, x.dtype.name)


def value_and_grad(fn: Any, n: int, jit: bool, device: Any = None) -> Any:
    """``run(numpy leaves) -> (value, gradients of the first n leaves)`` through
    ``tf.GradientTape``, under ``tf.function`` with ``jit=True``."""
    def step(*leaves: Any) -> Any:
        diff = list(leaves[:n])
        with tf.GradientTape() as tape:
            tape.watch(diff)
            (value,) = fn(*diff, *leaves[n:])
        grads = tape.gradient(value, diff, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return value, grads

    run_step = tf.function(step) if jit else step

    def run(leaves: list) -> tuple:
        value, grads = run_step(*[tf.constant(np.asarray(x)) for x in leaves])
        return value.numpy(), [g.numpy() for g in grads]
    return run
