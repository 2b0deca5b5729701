"""Lowerings to JAX. ``jax.numpy`` mirrors numpy, so the family defaults are the
``jax.numpy`` (then ``jax.scipy.special``) function of the primitive's own name, called
with numpy's parameters; the rules below cover the primitives whose ``impl`` is not a
numpy function of their name. Float64 needs ``jax_enable_x64``: it is switched on when a
float64 signature is lowered (``enable_x64``), since without it jax would compute float64
inputs in float32.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np

from pycograd.backends.lowering import register
from pycograd.core.primitive import Primitive
from pycograd.ops.gates import gru_math
from pycograd.ops.indexing import fill

_RENAMED = {
    "stop_gradient": jax.lax.stop_gradient,
    "round": lambda x, decimals: jnp.round(x, decimals),
    "polygamma": lambda n, x: jsp.polygamma(int(n), x),
    "rgamma": lambda x: 1.0 / jsp.gamma(x),
    "beta": lambda a, b: jnp.exp(jsp.betaln(a, b)) * jnp.sign(jsp.gamma(a) * jsp.gamma(b)
                                                             / jsp.gamma(a + b)),
}


_NONE = frozenset({"nextafter", "spacing", "correlate", "argpartition", "partition_perm"})
"""Not lowered: jax has no gradient rule for nextafter / spacing (pycograd gives them one)
and no numpy-equal signature or arrangement for the others."""


def _elementwise(prim: Primitive) -> Any:
    if prim.name in _NONE:
        return None
    fn = _RENAMED.get(prim.name)
    if fn is None:
        fn = getattr(jnp, prim.name, None) or getattr(jsp, prim.name, None)
    return fn


def _numpy_named(prim: Primitive) -> Any:
    """``jnp.<name>(x, **params)`` for the reductions and structural ops."""
    return None if prim.name in _NONE else getattr(jnp, prim.name, None)


def _getitem(x: Any, *arrays: Any, idx: Any) -> Any:
    return x[fill(idx, arrays)]


def _scatter_add(g: Any, *arrays: Any, idx: Any, shape: tuple) -> Any:
    return jnp.zeros(tuple(shape), g.dtype).at[fill(idx, arrays)].add(g)


def _pack(*parts: Any) -> Any:
    """Several results in one array, as ``ops.matrix.pack`` lays them out."""
    batch = parts[0].shape[:-2] if parts[0].ndim >= 2 else parts[0].shape[:-1]
    return jnp.concatenate([p.reshape(*batch, -1) for p in parts], axis=-1)


def _layer_norm(x: Any, *wb: Any, axis: tuple, eps: float, affine: tuple) -> Any:
    d = x - jnp.mean(x, axis=axis, keepdims=True)
    y = d / jnp.sqrt(jnp.mean(d * d, axis=axis, keepdims=True) + eps)
    for name, p in zip(affine, wb):
        y = y * p if name == "weight" else y + p
    return y


BY_NAME = {
    "softmax": lambda x, axis: jax.nn.softmax(x, axis=axis),
    "log_softmax": lambda x, axis: jax.nn.log_softmax(x, axis=axis),
    "layer_norm": _layer_norm,
    "getitem": _getitem, "scatter_add": _scatter_add,
    "concatenate": lambda *xs, axis: jnp.concatenate(xs, axis=axis),
    "take_along": lambda x, idx, axis: jnp.take_along_axis(x, idx, axis),
    "einsum": lambda *xs, spec: jnp.einsum(spec, *xs),
    "astype": lambda x, dtype: x.astype(dtype),
    "fft": jnp.fft.fft, "ifft": jnp.fft.ifft, "rfft": jnp.fft.rfft, "irfft": jnp.fft.irfft,
    "solve": jnp.linalg.solve, "cholesky": lambda a, upper=False: jnp.linalg.cholesky(
        a, upper=upper),
    "logabsdet": lambda a: jnp.linalg.slogdet(a)[1],
    "slogdet_sign": lambda a: jnp.linalg.slogdet(a)[0],
    "logdet": lambda a: jnp.log(jnp.linalg.slogdet(a)[0]) + jnp.linalg.slogdet(a)[1],
    "pinv": lambda a, rcond, hermitian: jnp.linalg.pinv(a, rtol=rcond, hermitian=hermitian),
    "expm": jax.scipy.linalg.expm,
    "argsort": lambda x, axis, kind, stable: jnp.argsort(x, axis=axis, stable=True),
    "searchsorted": lambda a, v, side: jnp.searchsorted(a, v, side=side),
    "gru_gates": lambda xg, hg, h: gru_math(jnp.tanh, xg, hg, h),
}

register("jax", BY_NAME, {"elementwise": _elementwise, "reduction": _numpy_named,
                          "linear": _numpy_named, "multilinear": _numpy_named,
                          None: _numpy_named})


def enable_x64() -> None:
    """Let jax compute in float64 (jax's default is float32 only)."""
    if not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)


def to_framework(x: Any, device: Any = None) -> Any:
    """A constant as a concrete jax array, also while ``jax.jit`` traces (the constants of
    a graph lowered under a trace must not become that trace's tracers)."""
    if isinstance(x, jax.core.Tracer):
        return x
    with jax.ensure_compile_time_eval():
        return jnp.asarray(x)


def to_numpy(x: Any) -> np.ndarray:
    return np.asarray(x)


def is_tensor(x: Any) -> bool:
    return isinstance(x, jax.Array) or isinstance(x, jax.core.Tracer)


def signature(x: Any) -> tuple:
    return (tuple(x.shape), str(x.dtype))


def value_and_grad(fn: Any, n: int, jit: bool, device: Any = None) -> Any:
    """``run(numpy leaves) -> (value, gradients of the first n leaves)`` through
    ``jax.value_and_grad``, under ``jax.jit`` with ``jit=True``."""
    vg = jax.value_and_grad(lambda diff, rest: fn(*diff, *rest)[0])
    step = jax.jit(vg) if jit else vg

    def run(leaves: list) -> tuple:
        value, grads = step(list(leaves[:n]), list(leaves[n:]))
        return np.asarray(value), [np.asarray(g) for g in grads]
    return run
