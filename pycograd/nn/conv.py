"""Convolutions in NCHW layout (PyTorch's), as one contraction over gathered patches.

Strided views are not available on traced values, so the patches are built from one
strided *slice* per kernel tap, stacked on a new axis: the slices' VJPs are plain
scatters, and the whole convolution is then one batched ``matmul`` of the
``(groups, O/groups, C/groups*kh*kw)`` kernel with the ``(N, groups, C/groups*kh*kw, Ho*Wo)``
patches, whose VJP gives both the input and the weight gradients (``np.einsum`` was 5-10x
slower here). ``conv1d`` is ``conv2d`` on a height
of 1, and ``conv_transpose2d`` is ``conv2d`` on a stride-dilated, re-padded input with
the flipped, transposed kernel.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pycograd.core.errors import ArgumentError, ShapeError
from pycograd.ops.shaping import full


def pair(v: Any, name: str = "argument") -> tuple[int, int]:
    """An int or a pair of ints as a pair."""
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ArgumentError(f"{name} must be an int or a pair of ints, got {v!r}")
        return int(v[0]), int(v[1])
    return int(v), int(v)


def pad_axes(x: Any, pads: dict[int, tuple[int, int]], value: float = 0.0) -> Any:
    """Pad (positive) or crop (negative) ``x`` on the given axes with constant ``value``."""
    for ax, (lo, hi) in pads.items():
        n = np.shape(x)[ax]
        if lo < 0 or hi < 0:
            idx = [slice(None)] * np.ndim(x)
            idx[ax] = slice(max(-lo, 0), n - max(-hi, 0))
            x = x[tuple(idx)]
            lo, hi = max(lo, 0), max(hi, 0)
        parts = []
        for k in (lo, hi):
            shape = list(np.shape(x))
            shape[ax] = k
            parts.append(full(shape, value, dtype=x.dtype) if k else None)
        if parts[0] is not None or parts[1] is not None:
            x = np.concatenate([p for p in (parts[0], x, parts[1]) if p is not None], axis=ax)
    return x


def out_size(n: int, k: int, stride: int, pad: int, dilation: int) -> int:
    return (n + 2 * pad - dilation * (k - 1) - 1) // stride + 1


def patches(x: Any, kernel: tuple[int, int], stride: tuple[int, int],
            dilation: tuple[int, int], out_hw: tuple[int, int]) -> Any:
    """``(N, C, kh*kw, Ho, Wo)``: for each kernel tap, the input pixels it meets."""
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, stride, dilation, out_hw
    taps = [x[:, :, i * dh: i * dh + sh * (ho - 1) + 1: sh, j * dw: j * dw + sw * (wo - 1) + 1: sw]
            for i in range(kh) for j in range(kw)]
    return np.stack(taps, axis=2)


def conv_padding(op: str, padding: Any, kernel: tuple[int, int], stride: tuple[int, int],
                 dilation: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """``(lo, hi)`` padding per spatial axis: an int or a pair of ints pads both sides;
    ``"valid"`` is no padding; ``"same"`` (stride 1 only) pads ``dilation * (k - 1)`` in
    all, the odd one on the high side, as PyTorch does."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding != "same":
            raise ArgumentError(f"{op}: padding={padding!r}; use an int, a pair of ints, 'valid' "
                                "or 'same'")
        if stride != (1, 1):
            raise ArgumentError(f"{op}: padding='same' needs stride 1 (got stride {stride}), as "
                                "in PyTorch; pad explicitly for a strided convolution")
        th, tw = dilation[0] * (kernel[0] - 1), dilation[1] * (kernel[1] - 1)
        return (th // 2, th - th // 2), (tw // 2, tw - tw // 2)
    ph, pw = pair(padding, "padding")
    return (ph, ph), (pw, pw)


def batched(op: str, x: Any, spatial: int, weight: Any = None, w_ndim: int = 0) -> tuple:
    """``x`` with a batch axis (added for an unbatched ``(C, *spatial)`` input, as PyTorch
    accepts), and whether one was added; any other rank, or a weight of the wrong rank, is
    a ShapeError naming the op and the shapes."""
    nd = np.ndim(x)
    shapes = f"input of shape {np.shape(x)}" + (
        f" and weight of shape {np.shape(weight)}" if weight is not None else "")
    if weight is not None and np.ndim(weight) != w_ndim:
        raise ShapeError(f"{op}: {shapes}: the weight must have {w_ndim} dims")
    if nd == spatial + 1:
        return x[None], True
    if nd != spatial + 2:
        layout = "(N, C, H, W) or (C, H, W)" if spatial == 2 else "(N, C, L) or (C, L)"
        raise ShapeError(f"{op}: {shapes}: the input must be {layout}")
    return x, False


def check_conv(op: str, x: Any, weight: Any, bias: Any, groups: int) -> None:
    """Channels that agree for ``groups`` and a bias with one entry per output channel,
    else a ShapeError naming the op and the shapes."""
    c, o, cg = np.shape(x)[1], np.shape(weight)[0], np.shape(weight)[1]
    if c != cg * groups or o % groups:
        raise ShapeError(f"{op}: input of shape {np.shape(x)} and weight of shape "
                         f"{np.shape(weight)} do not agree for groups={groups}: the input "
                         f"needs weight.shape[1] * groups = {cg * groups} channels")
    if bias is not None and np.shape(bias) != (o,):
        raise ShapeError(f"{op}: bias of shape {np.shape(bias)} for a weight of shape "
                         f"{np.shape(weight)}; it must be ({o},)")


def conv2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Any:
    """2-D cross-correlation: ``x`` is ``(N, C, H, W)`` (or unbatched ``(C, H, W)``),
    ``weight`` is ``(O, C // groups, kh, kw)``, ``bias`` is ``(O,)``; returns
    ``(N, O, Ho, Wo)`` (``(O, Ho, Wo)``). ``padding`` is an int, a pair, ``"valid"`` or
    ``"same"`` (stride 1), with PyTorch's semantics.

    Examples:
        >>> import numpy as np
        >>> from pycograd import conv2d, grad
        >>> x = np.ones((2, 3, 8, 8))                               # (N, C, H, W)
        >>> w = np.ones((4, 3, 3, 3))                               # (O, C, kh, kw)
        >>> conv2d(x, w, stride=2, padding=1).shape
        (2, 4, 4, 4)
        >>> conv2d(x[0], w, padding="same").shape                   # unbatched (C, H, W)
        (4, 8, 8)
        >>> grad(lambda w: np.sum(conv2d(x, w)), 0)(w).shape
        (4, 3, 3, 3)
    """
    return _conv2d("conv2d", x, weight, bias, stride, padding, dilation, groups)


def _conv2d(op: str, x: Any, weight: Any, bias: Any, stride: Any, padding: Any,
            dilation: Any, groups: int) -> Any:
    x, added = batched(op, x, 2, weight, 4)
    n, c, h, w = np.shape(x)
    o, cg, kh, kw = np.shape(weight)
    (sh, sw), (dh, dw) = pair(stride, "stride"), pair(dilation, "dilation")
    (pt, pb), (pl, pr) = conv_padding(op, padding, (kh, kw), (sh, sw), (dh, dw))
    check_conv(op, x, weight, bias, groups)
    ho = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    wo = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    if ho <= 0 or wo <= 0:
        raise ShapeError(f"{op}: the kernel of weight shape {np.shape(weight)} (dilation "
                         f"{dilation}) does not fit the input of shape {np.shape(x)} padded "
                         f"by {padding}")
    if pt or pb or pl or pr:
        x = pad_axes(x, {2: (pt, pb), 3: (pl, pr)})
    p = np.reshape(patches(x, (kh, kw), (sh, sw), (dh, dw), (ho, wo)),
                   (n, groups, cg * kh * kw, ho * wo))
    y = np.reshape(np.reshape(weight, (groups, o // groups, cg * kh * kw)) @ p, (n, o, ho, wo))
    if bias is not None:
        y = y + np.reshape(bias, (o, 1, 1))
    return y[0] if added else y


def conv1d(x: Any, weight: Any, bias: Any = None, stride: int = 1, padding: Any = 0,
           dilation: int = 1, groups: int = 1) -> Any:
    """1-D cross-correlation: ``x`` is ``(N, C, L)`` (or unbatched ``(C, L)``), ``weight`` is
    ``(O, C // groups, k)``; ``padding`` as for ``conv2d`` (an int, ``"valid"``, ``"same"``).

    Examples:
        >>> import numpy as np
        >>> from pycograd import conv1d
        >>> x = np.arange(5.0).reshape(1, 1, 5)                     # (N, C, L)
        >>> conv1d(x, np.ones((1, 1, 3))).tolist()                  # sums of 3 neighbours
        [[[3.0, 6.0, 9.0]]]
    """
    x, added = batched("conv1d", x, 1, weight, 3)
    check_conv("conv1d", x, weight, bias, groups)
    pad = padding if isinstance(padding, str) else (0, padding)
    y = _conv2d("conv1d", x[:, :, None, :], weight[:, :, None, :], bias, (1, stride), pad,
                (1, dilation), groups)
    return y[0, :, 0, :] if added else y[:, :, 0, :]


def dilate(x: Any, axis: int, s: int) -> Any:
    """Insert ``s - 1`` zeros between neighbours along ``axis``."""
    if s == 1:
        return x
    shape = list(np.shape(x))
    n = shape[axis]
    x = np.expand_dims(x, axis + 1)
    zshape = list(np.shape(x))
    zshape[axis + 1] = s - 1
    x = np.concatenate([x, full(zshape, 0, dtype=x.dtype)], axis=axis + 1)
    shape[axis] = n * s
    x = np.reshape(x, shape)
    idx = [slice(None)] * len(shape)
    idx[axis] = slice(0, (n - 1) * s + 1)
    return x[tuple(idx)]


def conv_transpose2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, groups: int = 1, dilation: Any = 1) -> Any:
    """The adjoint of ``conv2d`` (PyTorch's argument order): ``x`` is ``(N, C, H, W)``,
    ``weight`` is ``(C, O // groups, kh, kw)``; output side ``(H-1)*s - 2p + d*(k-1) + op + 1``.

    Examples:
        >>> import numpy as np
        >>> from pycograd import conv_transpose2d
        >>> x = np.ones((1, 4, 4, 4))
        >>> conv_transpose2d(x, np.ones((4, 2, 3, 3)), stride=2, padding=1, output_padding=1).shape
        (1, 2, 8, 8)
    """
    x, added = batched("conv_transpose2d", x, 2, weight, 4)
    c, og, kh, kw = np.shape(weight)
    (sh, sw), (ph, pw), (oh, ow), (dh, dw) = (pair(stride, "stride"), pair(padding, "padding"),
                                              pair(output_padding, "output_padding"),
                                              pair(dilation, "dilation"))
    if np.shape(x)[1] != c or c % groups:
        raise ShapeError(f"conv_transpose2d: input of shape {np.shape(x)} and weight of shape "
                         f"{np.shape(weight)} do not agree for groups={groups}")
    x = dilate(dilate(x, 2, sh), 3, sw)
    eh, ew = dh * (kh - 1) - ph, dw * (kw - 1) - pw
    x = pad_axes(x, {2: (eh, eh + oh), 3: (ew, ew + ow)})
    w = np.reshape(weight, (groups, c // groups, og, kh, kw))
    w = np.reshape(np.swapaxes(w, 1, 2), (groups * og, c // groups, kh, kw))
    y = _conv2d("conv_transpose2d", x, w[:, :, ::-1, ::-1], bias, 1, 0, (dh, dw), groups)
    return y[0] if added else y
