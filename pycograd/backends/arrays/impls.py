"""Each primitive's implementation on an array-API namespace ``xp``.

Most elementwise primitives share their name with the Array API standard, or differ only
in spelling (``arcsin`` / ``asin``): those are declared as one renaming table, not one
function per op. The rest (reductions, shapes, indexing, the few ufuncs the standard
composes from others) get a short rule ``impl(xp, dev, *args, **params)``. A primitive
missing here has no equivalent on array-API devices: running it there raises
``DeviceError`` naming it (most of scipy, fft, linalg decompositions).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from pycograd.core.errors import DeviceError
from pycograd.ops.gates import gru_math
from pycograd.ops.indexing import fill, is_basic_index

# numpy's ufunc name -> the standard's name, where they differ.
RENAMED = {
    "absolute": "abs", "fabs": "abs", "conjugate": "conj", "power": "pow",
    "arcsin": "asin", "arccos": "acos", "arctan": "atan", "arcsinh": "asinh",
    "arccosh": "acosh", "arctanh": "atanh", "arctan2": "atan2", "invert": "bitwise_invert",
    "left_shift": "bitwise_left_shift", "right_shift": "bitwise_right_shift",
}
# ufuncs whose name the standard shares.
SAME = (
    "negative positive square sqrt reciprocal exp expm1 log log2 log10 log1p sin cos tan "
    "sinh cosh tanh add subtract multiply divide maximum minimum hypot logaddexp remainder "
    "copysign sign floor ceil trunc greater greater_equal less less_equal equal not_equal "
    "isfinite isinf isnan signbit "
    "floor_divide nextafter bitwise_and bitwise_or bitwise_xor real imag"
).split()

Impl = Callable[..., Any]


def _renamed(xp_name: str) -> Impl:
    return lambda xp, dev, *args: getattr(xp, xp_name)(*args)


def _scaled(factor: float) -> Impl:
    return lambda xp, dev, x: x * factor


def _float_power(xp: Any, dev: Any, x: Any, y: Any) -> Any:
    f64 = xp.float64
    x = xp.astype(x, f64) if hasattr(x, "dtype") else float(x)
    y = xp.astype(y, f64) if hasattr(y, "dtype") else float(y)
    return xp.pow(x, y)


def _logical(name: str) -> Impl:
    """numpy's logical ufuncs take any dtype (nonzero is true); the standard's take bool."""
    def run(xp: Any, dev: Any, *args: Any) -> Any:
        return getattr(xp, name)(*[a if a.dtype == xp.bool else a != 0 for a in args])
    return run


def _is_mask(i: Any) -> bool:
    return hasattr(i, "dtype") and str(i.dtype).endswith("bool")


def _full_index(idx: Any, ndim: int) -> tuple:
    """``idx`` as a tuple naming every axis: the standard asks for a trailing ``...`` where
    numpy lets trailing axes be implied."""
    idx = idx if isinstance(idx, tuple) else (idx,)
    if any(i is Ellipsis for i in idx):
        return idx
    used = sum(i.ndim if _is_mask(i) else 0 if i is None else 1 for i in idx)
    return idx + (Ellipsis,) if used < ndim else idx


def _index_operand(xp: Any, dev: Any, i: Any, n: int) -> Any:
    """One entry of an index: numpy index constants uploaded, negative positions wrapped
    (numpy counts them from the end; the standard leaves them unspecified)."""
    if isinstance(i, (list, np.ndarray)):
        i = np.asarray(i)
        if i.dtype.kind in "iu":
            i = np.where(i < 0, i + n, i)
        return dev.upload(i)
    if hasattr(i, "dtype") and not _is_mask(i):
        return xp.where(i < 0, i + n, i)
    return i


def _advanced(idx: tuple, shape: tuple) -> tuple | None:
    """For an index whose integer arrays (and the integers beside them) sit on consecutive
    axes ``k .. k+j`` with full slices elsewhere: ``(k, j, flat)``, ``flat`` the positions in
    those axes flattened (row-major), so one ``take`` along a merged axis does numpy's
    advanced indexing. None for basic indices and other forms."""
    if not any(hasattr(i, "dtype") and not _is_mask(i) for i in idx):
        return None
    if any(i is None or _is_mask(i) for i in idx):
        return None
    at = [k for k, i in enumerate(idx) if not isinstance(i, slice) and i is not Ellipsis]
    if at != list(range(at[0], at[-1] + 1)):
        return None
    if any(isinstance(i, slice) and i != slice(None) for i in idx):
        return None
    ell = [k for k, i in enumerate(idx) if i is Ellipsis]
    if ell and ell[0] < at[0]:
        offset = len(shape) - (len(idx) - 1)
        k = at[0] - 1 + offset
    else:
        k = at[0]
    return k, len(at), [idx[a] for a in at]


def _flat_positions(xp: Any, parts: list, dims: tuple) -> Any:
    flat = 0
    for p, d in zip(parts, dims):
        flat = flat * d + p
    return flat


def _merged(xp: Any, x: Any, k: int, j: int) -> Any:
    shape = tuple(x.shape)
    return xp.reshape(x, shape[:k] + (math.prod(shape[k:k + j]),) + shape[k + j:])


def _getitem(xp: Any, dev: Any, x: Any, *arrays: Any, idx: Any) -> Any:
    idx = _prepared(xp, dev, fill(idx, arrays), tuple(x.shape))
    adv = _advanced(idx, tuple(x.shape))
    if adv is None:
        return x[idx]
    k, j, parts = adv
    flat = _flat_positions(xp, parts, tuple(x.shape[k:k + j]))
    if not hasattr(flat, "dtype"):
        return x[idx]
    taken = xp.take(_merged(xp, x, k, j), xp.reshape(flat, (-1,)), axis=k)
    return xp.reshape(taken, tuple(x.shape[:k]) + tuple(flat.shape) + tuple(x.shape[k + j:]))


def _prepared(xp: Any, dev: Any, idx: Any, shape: tuple) -> tuple:
    """``idx`` naming every axis, its numpy constants on the device, negatives wrapped,
    integers beside integer arrays made 0-d arrays (numpy broadcasts them together)."""
    idx = _full_index(idx, len(shape))
    out, axis = [], 0
    for i in idx:
        if i is None:
            out.append(i)
            continue
        if i is Ellipsis:
            axis += len(shape) - sum(0 if e is None else e.ndim if _is_mask(e) else 1
                                     for e in idx if e is not Ellipsis)
            out.append(i)
            continue
        n = shape[axis] if axis < len(shape) else 0
        out.append(_index_operand(xp, dev, i, n))
        axis += i.ndim if _is_mask(i) else 1
    if any(hasattr(i, "dtype") and not _is_mask(i) for i in out):
        sizes = _sizes(out, shape)
        out = [dev.upload(np.asarray(i % n if i < 0 else i)) if type(i) is int else i
               for i, n in zip(out, sizes)]
    return tuple(out)


def _sizes(idx: list, shape: tuple) -> list:
    sizes, axis = [], 0
    for i in idx:
        if i is None:
            sizes.append(0)
        elif i is Ellipsis:
            skip = len(shape) - sum(0 if e is None else 1 for e in idx if e is not Ellipsis)
            sizes.append(0)
            axis += skip
        else:
            sizes.append(shape[axis] if axis < len(shape) else 0)
            axis += 1
    return sizes


def _scatter_add(xp: Any, dev: Any, g: Any, *arrays: Any, idx: Any, shape: tuple) -> Any:
    """The gradient of indexing: ``g`` added into zeros of ``shape`` at ``idx``. Basic
    indices write a view; integer arrays add through a one-hot matrix product (exact:
    duplicates add), as the standard has no scatter-add."""
    shape = tuple(shape)
    idx = _prepared(xp, dev, fill(idx, arrays), shape)
    adv = _advanced(idx, shape)
    out = xp.zeros(shape, dtype=g.dtype, device=dev.where)
    if adv is None:
        if not is_basic_index(idx) or any(_is_mask(i) for i in idx):
            raise DeviceError(f"scatter_add (the gradient of this indexing) has no array-API "
                              f"form on device {dev.name!r}; index with slices or one "
                              "integer array")
        target = tuple(i for i in idx if i is not None)
        out[target] = xp.reshape(g, tuple(out[target].shape))
        return out
    k, j, parts = adv
    flat = _flat_positions(xp, parts, shape[k:k + j])
    n = math.prod(shape[k:k + j])
    flat = xp.reshape(flat, (-1,))
    m = flat.shape[0]
    pre, post = shape[:k], shape[k + j:]
    g3 = xp.reshape(g, (math.prod(pre), m, math.prod(post)))
    onehot = xp.astype(xp.reshape(xp.arange(n, device=dev.where), (n, 1))
                       == xp.reshape(flat, (1, m)), g.dtype)
    return xp.reshape(xp.matmul(onehot, g3), shape)


def _einsum(xp: Any, dev: Any, *ops: Any, spec: str) -> Any:
    """einsum as broadcasting products and sums over the labels (the standard has no
    einsum); each operand is laid out on the axes of all labels in order."""
    lhs, _, out = spec.replace(" ", "").partition("->")
    if "->" not in spec:  # numpy's implicit output: the labels seen once, sorted
        out = "".join(sorted(c for c in set(lhs) - {","} if lhs.count(c) == 1))
    ins = lhs.split(",")
    if "." in spec or any(len(set(s)) != len(s) for s in ins):
        raise DeviceError(f"einsum {spec!r} (ellipsis or a repeated label) has no array-API "
                          f"form on device {dev.name!r}")
    labels = list(dict.fromkeys("".join(ins) + out))
    common = dev.xp_dtype(np.result_type(*[dev.np_dtype(o.dtype) for o in ops]))
    ops = [xp.astype(o, common) for o in ops]
    total = None
    for s, o in zip(ins, ops):
        order = sorted(range(len(s)), key=lambda a: labels.index(s[a]))
        o = xp.permute_dims(o, tuple(order))
        present = [s[a] for a in order]
        o = xp.reshape(o, tuple(o.shape[present.index(c)] if c in present else 1
                                for c in labels))
        total = o if total is None else total * o
    summed = tuple(a for a, c in enumerate(labels) if c not in out)
    if summed:
        total = xp.sum(total, axis=summed)
    kept = [c for c in labels if c in out]
    return xp.permute_dims(total, tuple(kept.index(c) for c in out))


def _scatter_along(xp: Any, dev: Any, g: Any, idx: Any, axis: int, n: int) -> Any:
    """``g`` added into ``n`` slots along ``axis`` at ``idx``: a one-hot sum over a new
    last axis, which the standard can express without scatter."""
    axis = axis % g.ndim
    idx = xp.where(idx < 0, idx + n, idx)
    slots = xp.arange(n, device=dev.where)
    shape = [1] * (g.ndim + 1)
    shape[axis] = n
    hit = xp.expand_dims(idx, axis=axis) == xp.reshape(slots, tuple(shape))
    return xp.sum(xp.where(hit, xp.expand_dims(g, axis=axis), 0.0), axis=axis + 1)


def _x_times(xp: Any, x: Any, fy: Any) -> Any:
    """``x * f(y)``, 0 where ``x`` is 0 (scipy's xlogy convention, even where f is inf)."""
    if not hasattr(x, "dtype"):
        return x * fy if x != 0 else xp.zeros_like(fy)
    return xp.where(x == 0, 0.0, x * fy)


def _reduction(name: str) -> Impl:
    def run(xp: Any, dev: Any, x: Any, axis: Any, keepdims: bool) -> Any:
        if name in ("sum", "prod") and x.dtype == xp.bool:  # numpy counts booleans
            x = xp.astype(x, xp.int64)
        return getattr(xp, name)(x, axis=axis, keepdims=keepdims)
    return run


def _transpose(xp: Any, dev: Any, x: Any, axes: Any) -> Any:
    return xp.permute_dims(x, tuple(range(x.ndim))[::-1] if axes is None else tuple(axes))


def _where(xp: Any, dev: Any, c: Any, x: Any, y: Any) -> Any:
    if not hasattr(c, "dtype"):
        c = xp.asarray(bool(c), device=dev.where)
    elif c.dtype != xp.bool:
        c = c != 0
    if type(x) is float and hasattr(y, "dtype") and not xp.isdtype(y.dtype, "real floating"):
        y = xp.astype(y, xp.float64)
    if type(y) is float and hasattr(x, "dtype") and not xp.isdtype(x.dtype, "real floating"):
        x = xp.astype(x, xp.float64)
    return xp.where(c, x, y)


def _argext(name: str) -> Impl:
    def run(xp: Any, dev: Any, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        return getattr(xp, name)(x, axis=axis, keepdims=keepdims)
    return run


def _softmax(log: bool) -> Impl:
    def run(xp: Any, dev: Any, x: Any, axis: tuple) -> Any:
        m = xp.max(x, axis=axis, keepdims=True)
        z = x - xp.where(xp.isfinite(m), m, xp.zeros_like(m))
        if log:
            return z - xp.log(xp.sum(xp.exp(z), axis=axis, keepdims=True))
        e = xp.exp(z)
        return e / xp.sum(e, axis=axis, keepdims=True)
    return run


def _layer_norm(xp: Any, dev: Any, x: Any, *wb: Any, axis: tuple, eps: float,
                affine: tuple) -> Any:
    d = x - xp.mean(x, axis=axis, keepdims=True)
    y = d / xp.sqrt(xp.mean(d * d, axis=axis, keepdims=True) + eps)
    for name, p in zip(affine, wb):
        y = y * p if name == "weight" else y + p
    return y


IMPLS: dict[str, Impl] = {
    **{n: _renamed(n) for n in SAME},
    **{n: _renamed(s) for n, s in RENAMED.items()},
    "deg2rad": _scaled(math.pi / 180), "radians": _scaled(math.pi / 180),
    "rad2deg": _scaled(180 / math.pi), "degrees": _scaled(180 / math.pi),
    "exp2": lambda xp, dev, x: xp.pow(2.0, x),
    "cbrt": lambda xp, dev, x: xp.sign(x) * xp.pow(xp.abs(x), 1.0 / 3.0),
    "float_power": _float_power,
    "fmod": lambda xp, dev, x, y: x - xp.trunc(x / y) * y,
    "fmax": lambda xp, dev, x, y: xp.where(xp.isnan(y) | (x >= y), x, y),
    "fmin": lambda xp, dev, x, y: xp.where(xp.isnan(y) | (x <= y), x, y),
    "logaddexp2": lambda xp, dev, x, y: xp.logaddexp(x * math.log(2), y * math.log(2))
    / math.log(2),
    "rint": lambda xp, dev, x: xp.round(x),
    "round": lambda xp, dev, x, decimals: (xp.round(x) if not decimals else
                                           xp.round(x * 10.0 ** decimals) / 10.0 ** decimals),
    "stop_gradient": lambda xp, dev, x: x,
    "where": _where,
    "astype": lambda xp, dev, x, dtype: xp.astype(x, dev.xp_dtype(dtype)),
    "sum": _reduction("sum"), "max": _reduction("max"), "min": _reduction("min"),
    "prod": _reduction("prod"), "all": _reduction("all"), "any": _reduction("any"),
    "cumsum": lambda xp, dev, x, axis: xp.cumulative_sum(x, axis=axis),
    "reshape": lambda xp, dev, x, shape: xp.reshape(x, tuple(shape)),
    "transpose": _transpose,
    "broadcast_to": lambda xp, dev, x, shape: xp.broadcast_to(x, tuple(shape)),
    "concatenate": lambda xp, dev, *xs, axis: xp.concat(list(xs), axis=axis),
    "matmul": lambda xp, dev, a, b: xp.matmul(a, b),
    "einsum": _einsum,
    "getitem": _getitem,
    "scatter_add": _scatter_add,
    "take_along": lambda xp, dev, x, idx, axis: xp.take_along_axis(
        x, xp.where(idx < 0, idx + x.shape[axis], idx), axis=axis),
    "scatter_along": _scatter_along,
    "logical_and": _logical("logical_and"), "logical_or": _logical("logical_or"),
    "logical_xor": _logical("logical_xor"), "logical_not": _logical("logical_not"),
    "argsort": lambda xp, dev, x, axis, kind, stable: xp.argsort(x, axis=-1 if axis is None
                                                                else axis, stable=True),
    "cumprod": lambda xp, dev, x, axis: xp.cumulative_prod(x, axis=axis),
    "searchsorted": lambda xp, dev, a, v, side: xp.searchsorted(a, v, side=side),
    "heaviside": lambda xp, dev, x, h: xp.where(x < 0, xp.zeros_like(x),
                                                xp.where(x > 0, xp.ones_like(x), h)),
    "ldexp": lambda xp, dev, x, n: x * xp.pow(2.0, xp.astype(n, xp.float64)
                                               if hasattr(n, "dtype") else float(n)),
    "angle": lambda xp, dev, z: (xp.atan2(xp.imag(z), xp.real(z))
                                 if xp.isdtype(z.dtype, "complex floating")
                                 else xp.where(z < 0, xp.full_like(z, math.pi),
                                               xp.zeros_like(z))),
    # the scipy functions the standard composes exactly (to rounding)
    "expit": lambda xp, dev, x: 1.0 / (1.0 + xp.exp(-x)),
    "logit": lambda xp, dev, x: xp.log(x) - xp.log1p(-x),
    "xlogy": lambda xp, dev, x, y: _x_times(xp, x, xp.log(y)),
    "xlog1py": lambda xp, dev, x, y: _x_times(xp, x, xp.log1p(y)),
    "argmax": _argext("argmax"), "argmin": _argext("argmin"),
    "gru_gates": lambda xp, dev, xg, hg, h: gru_math(xp.tanh, xg, hg, h),
    # the fused nn primitives (``ops.fused``)
    "softmax": _softmax(False), "log_softmax": _softmax(True), "layer_norm": _layer_norm,
}
