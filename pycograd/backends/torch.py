"""Lowerings to PyTorch: each primitive's ``impl`` written with torch functions.

Most elementwise primitives have a torch function of the same name (``torch.exp``,
``torch.arctan2``); the family default looks it up, in ``torch`` and then in
``torch.special``, after the renames below. Reductions, structural ops, matmul / einsum and
the casts have one rule each; linear algebra and the sort-like ops a rule where torch has
the same operation. Everything here is differentiable by ``torch.autograd`` because it is
made of torch operations.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pycograd.backends.lowering import register
from pycograd.core.primitive import Primitive
from pycograd.ops.gates import gru_math
from pycograd.ops.indexing import fill

_RENAMED = {
    "absolute": torch.abs, "fabs": torch.abs, "conjugate": torch.conj_physical,
    "radians": torch.deg2rad, "degrees": torch.rad2deg, "power": torch.pow,
    "rint": torch.round, "greater": torch.gt, "greater_equal": torch.ge, "less": torch.lt,
    "less_equal": torch.le, "equal": torch.eq, "not_equal": torch.ne,
    "stop_gradient": torch.Tensor.detach, "gammaln": torch.special.gammaln,
    "sign": lambda x: torch.sgn(x) if x.is_complex() else torch.sign(x),
    "ldexp": lambda x, e: x * torch.exp2(e.to(x.dtype)),
    "cbrt": lambda x: torch.sign(x) * torch.abs(x) ** (1.0 / 3.0),
    "round": lambda x, decimals: torch.round(x, decimals=decimals),
    "imag": lambda x: torch.imag(x) if x.is_complex() else torch.zeros_like(x),
    "real": lambda x: torch.real(x) if x.is_complex() else x,
}


_INEXACT = frozenset({"j0", "j1", "y0", "y1", "digamma", "polygamma"})
"""torch computes these, but differentiates the Bessel functions as constants (a zero
gradient) and digamma / polygamma only to ~1e-9: not lowered, so never silently off."""


def _elementwise(prim: Primitive) -> Any:
    if prim.name in _INEXACT:
        return None
    fn = _RENAMED.get(prim.name)
    if fn is None:
        fn = getattr(torch, prim.name, None) or getattr(torch.special, prim.name, None)
    if fn is None or prim.differentiable:
        return fn

    def constant(*args: Any, **params: Any) -> Any:  # no gradient: torch must not look
        return fn(*(a.detach() if isinstance(a, torch.Tensor) else a for a in args), **params)
    return constant


_COMPLEX_OK = frozenset({
    "add", "subtract", "multiply", "divide", "negative", "positive", "conjugate", "real",
    "imag", "absolute", "exp", "log", "sqrt", "square", "reciprocal", "sin", "cos", "tanh",
    "power", "matmul", "einsum", "sum", "prod", "reshape", "transpose", "broadcast_to",
    "concatenate", "getitem", "astype", "fft", "ifft", "rfft", "irfft", "equal", "not_equal",
    "isfinite", "isnan", "isinf", "stop_gradient", "cumsum", "where"})


def _refuse(node: Any) -> str | None:
    """What torch computes otherwise than numpy, refused at compile time."""
    from pycograd.graph.ir import Value

    values = [a for a in node.args if isinstance(a, Value)] + [node.out]
    if node.prim.name not in _COMPLEX_OK and any(v.dtype.kind == "c" for v in values):
        return "complex operands (torch has no numpy-equal complex kernel for it)"
    idx = node.params.get("idx")
    parts = idx if isinstance(idx, tuple) else (idx,)
    if any(isinstance(p, slice) and p.step is not None and p.step < 0 for p in parts):
        return "a negative-step slice (torch has none; numpy flips)"
    return None


def _axes(x: Any, axis: Any) -> tuple:
    if axis is None:
        return tuple(range(x.ndim))
    return tuple(a % x.ndim for a in ((axis,) if isinstance(axis, int) else axis))


def _reduction(fn: Any) -> Any:
    def rule(x: Any, axis: Any, keepdims: bool) -> Any:
        axes = _axes(x, axis)
        if not axes:
            return fn(x.reshape(1), dim=0) if x.ndim == 0 else x
        return fn(x, dim=axes, keepdim=keepdims)
    return rule


def _prod(x: Any, axis: Any, keepdims: bool) -> Any:
    for ax in sorted(_axes(x, axis), reverse=True):
        x = torch.prod(x, dim=ax, keepdim=keepdims)
    return x


def _index(idx: Any) -> Any:
    """A numpy index with its constant arrays as tensors."""
    def one(p: Any) -> Any:
        return torch.as_tensor(p) if isinstance(p, np.ndarray) else p
    return tuple(one(p) for p in idx) if isinstance(idx, tuple) else one(idx)


def _getitem(x: Any, *arrays: Any, idx: Any) -> Any:
    return x[_index(fill(idx, arrays))]


def _scatter_add(g: Any, *arrays: Any, idx: Any, shape: tuple) -> Any:
    out = torch.zeros(tuple(shape), dtype=g.dtype, device=g.device)
    full = _index(fill(idx, arrays))
    parts = full if isinstance(full, tuple) else (full,)
    if all(isinstance(p, torch.Tensor) and p.dtype != torch.bool for p in parts):
        return out.index_put(parts, g.expand(torch.broadcast_shapes(
            *(p.shape for p in parts), g.shape)), accumulate=True)
    out[full] = g
    return out


def _dtype(dtype: Any) -> Any:
    return getattr(torch, np.dtype(dtype).name)


def _cumsum(fn: Any) -> Any:
    def rule(x: Any, axis: Any) -> Any:
        return fn(x.reshape(-1), dim=0) if axis is None else fn(x, dim=axis)
    return rule


def _arg(fn: Any) -> Any:
    def rule(x: Any, axis: Any, keepdims: bool) -> Any:
        if axis is None:
            out = fn(x.reshape(-1), dim=0)
            return out.reshape((1,) * x.ndim) if keepdims else out
        return fn(x, dim=axis, keepdim=keepdims)
    return rule


def _fft(fn: Any) -> Any:
    def rule(x: Any, n: Any, axis: int, norm: Any) -> Any:
        return fn(x, n=n, dim=axis, norm=norm)
    return rule


def _matmul(a: Any, b: Any) -> Any:
    if a.dtype == torch.bool and b.dtype == torch.bool:  # numpy: or of ands
        return torch.matmul(a.long(), b.long()) > 0
    common = torch.promote_types(a.dtype, b.dtype)
    return torch.matmul(a.to(common), b.to(common))


def _einsum(*xs: Any, spec: str) -> Any:
    common = xs[0].dtype
    for x in xs[1:]:
        common = torch.promote_types(common, x.dtype)
    return torch.einsum(spec, *(x.to(common) for x in xs))


def _cholesky(a: Any, upper: bool = False) -> Any:
    """numpy reads one triangle (the lower, or the upper): so does the gradient."""
    tri = torch.triu if upper else torch.tril
    sym = tri(a) + tri(a, 1 if upper else -1).mT
    return torch.linalg.cholesky(sym, upper=upper)


def _softmax(log: bool) -> Any:
    def rule(x: Any, axis: tuple) -> Any:
        if len(axis) == 1:
            return (torch.log_softmax if log else torch.softmax)(x, axis[0])
        if not axis:  # a 0-d input: one element, probability 1
            return torch.zeros_like(x) if log else torch.ones_like(x)
        z = x - torch.logsumexp(x, dim=axis, keepdim=True)
        return z if log else torch.exp(z)
    return rule


def _layer_norm(x: Any, *wb: Any, axis: tuple, eps: float, affine: tuple) -> Any:
    """``F.layer_norm`` where the axes are the trailing ones and the affine arguments have
    their shape (PyTorch's ``normalized_shape``); the same statistics written out else."""
    trailing = tuple(x.shape[len(x.shape) - len(axis):])
    if axis == tuple(range(-len(axis), 0)) and all(
            isinstance(p, torch.Tensor) and tuple(p.shape) == trailing for p in wb):
        parts = dict(zip(affine, wb))
        return torch.nn.functional.layer_norm(x, trailing, parts.get("weight"),
                                              parts.get("bias"), eps)
    d = x - x.mean(dim=axis, keepdim=True)
    y = d / torch.sqrt((d * d).mean(dim=axis, keepdim=True) + eps)
    for name, p in zip(affine, wb):
        y = y * p if name == "weight" else y + p
    return y


def _logdet(a: Any) -> Any:
    sign, logabs = torch.linalg.slogdet(a)
    return torch.log(sign) + logabs


BY_NAME = {
    "sum": _reduction(torch.sum), "max": _reduction(torch.amax), "min": _reduction(torch.amin),
    "prod": _prod, "all": _reduction(torch.all), "any": _reduction(torch.any),
    "getitem": _getitem, "scatter_add": _scatter_add,
    "reshape": lambda x, shape: torch.reshape(x, tuple(shape)),
    "transpose": lambda x, axes: x.permute(*(range(x.ndim - 1, -1, -1) if axes is None
                                           else axes)),
    "broadcast_to": lambda x, shape: torch.broadcast_to(x, tuple(shape)),
    "concatenate": lambda *xs, axis: torch.cat(xs, dim=axis),
    "cumsum": _cumsum(torch.cumsum), "cumprod": _cumsum(torch.cumprod),
    "take_along": lambda x, idx, axis: torch.take_along_dim(x, idx, dim=axis),
    "matmul": _matmul, "einsum": _einsum,
    "astype": lambda x, dtype: x.to(_dtype(dtype)),
    "argmax": _arg(torch.argmax), "argmin": _arg(torch.argmin),
    "argsort": lambda x, axis, kind, stable: torch.argsort(x, dim=-1 if axis is None else axis,
                                                           stable=True),
    "fft": _fft(torch.fft.fft), "ifft": _fft(torch.fft.ifft), "rfft": _fft(torch.fft.rfft),
    "irfft": _fft(torch.fft.irfft),
    "solve": torch.linalg.solve, "cholesky": _cholesky,
    "logabsdet": lambda a: torch.linalg.slogdet(a)[1],
    "slogdet_sign": lambda a: torch.linalg.slogdet(a)[0], "logdet": _logdet,
    "expm": torch.linalg.matrix_exp,
    "gru_gates": lambda xg, hg, h: gru_math(torch.tanh, xg, hg, h),
    "softmax": _softmax(False), "log_softmax": _softmax(True), "layer_norm": _layer_norm,
}

register("torch", BY_NAME, {"elementwise": _elementwise}, _refuse)


def to_framework(x: Any, device: Any = None) -> Any:
    """A numpy array (or number) as a tensor, sharing memory where it can."""
    if isinstance(x, torch.Tensor):
        return x if device is None else x.to(device)
    a = np.asarray(x)
    t = torch.from_numpy(a if a.flags.c_contiguous and a.flags.writeable else a.copy())
    return t if device is None else t.to(device)


def to_numpy(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def is_tensor(x: Any) -> bool:
    return isinstance(x, torch.Tensor)


def signature(x: Any) -> tuple:
    return (tuple(int(d) for d in x.shape), str(x.dtype), str(x.device))


def value_and_grad(fn: Any, n: int, jit: bool, device: Any = None) -> Any:
    """``run(numpy leaves) -> (value, gradients of the first n leaves)`` through
    ``torch.autograd`` (eager: the lowered graph is the compiled artifact)."""
    def run(leaves: list) -> tuple:
        ts = [to_framework(x, device) for x in leaves]
        diff = [t.detach().requires_grad_(True) for t in ts[:n]]
        (value,) = fn(*diff, *ts[n:])
        grads = torch.autograd.grad(value, diff, allow_unused=True)
        return to_numpy(value), [to_numpy(g) if g is not None else np.zeros(t.shape, np.dtype(
            str(t.dtype).rpartition(".")[2])) for g, t in zip(grads, diff)]
    return run
