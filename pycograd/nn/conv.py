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

from pycograd.ops.shaping import full


def pair(v: Any, name: str = "argument") -> tuple[int, int]:
    """An int or a pair of ints as a pair."""
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
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


def conv2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Any:
    """2-D cross-correlation: ``x`` is ``(N, C, H, W)``, ``weight`` is
    ``(O, C // groups, kh, kw)``, ``bias`` is ``(O,)``; returns ``(N, O, Ho, Wo)``.

    Examples:
        >>> import numpy as np
        >>> from pycograd import conv2d, grad
        >>> x = np.ones((2, 3, 8, 8))                               # (N, C, H, W)
        >>> w = np.ones((4, 3, 3, 3))                               # (O, C, kh, kw)
        >>> conv2d(x, w, stride=2, padding=1).shape
        (2, 4, 4, 4)
        >>> grad(lambda w: np.sum(conv2d(x, w)), 0)(w).shape
        (4, 3, 3, 3)
    """
    n, c, h, w = np.shape(x)
    o, cg, kh, kw = np.shape(weight)
    (sh, sw), (ph, pw), (dh, dw) = pair(stride, "stride"), pair(padding, "padding"), \
        pair(dilation, "dilation")
    if c != cg * groups or o % groups:
        raise ValueError(f"conv2d: input of shape {np.shape(x)} and weight of shape "
                         f"{np.shape(weight)} do not agree for groups={groups}")
    ho, wo = out_size(h, kh, sh, ph, dh), out_size(w, kw, sw, pw, dw)
    if ho <= 0 or wo <= 0:
        raise ValueError(f"conv2d: kernel {(kh, kw)} (dilation {(dh, dw)}) does not fit the "
                         f"padded input {(h + 2 * ph, w + 2 * pw)}")
    if ph or pw:
        x = pad_axes(x, {2: (ph, ph), 3: (pw, pw)})
    p = np.reshape(patches(x, (kh, kw), (sh, sw), (dh, dw), (ho, wo)),
                   (n, groups, cg * kh * kw, ho * wo))
    y = np.reshape(np.reshape(weight, (groups, o // groups, cg * kh * kw)) @ p, (n, o, ho, wo))
    if bias is not None:
        y = y + np.reshape(bias, (o, 1, 1))
    return y


def conv1d(x: Any, weight: Any, bias: Any = None, stride: int = 1, padding: int = 0,
           dilation: int = 1, groups: int = 1) -> Any:
    """1-D cross-correlation: ``x`` is ``(N, C, L)``, ``weight`` is ``(O, C // groups, k)``.

    Examples:
        >>> import numpy as np
        >>> from pycograd import conv1d
        >>> x = np.arange(5.0).reshape(1, 1, 5)                     # (N, C, L)
        >>> conv1d(x, np.ones((1, 1, 3))).tolist()                  # sums of 3 neighbours
        [[[3.0, 6.0, 9.0]]]
    """
    y = conv2d(x[:, :, None, :], weight[:, :, None, :], bias, (1, stride), (0, padding),
               (1, dilation), groups)
    return y[:, :, 0, :]


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
    c, og, kh, kw = np.shape(weight)
    (sh, sw), (ph, pw), (oh, ow), (dh, dw) = (pair(stride, "stride"), pair(padding, "padding"),
                                              pair(output_padding, "output_padding"),
                                              pair(dilation, "dilation"))
    if np.shape(x)[1] != c or c % groups:
        raise ValueError(f"conv_transpose2d: input of shape {np.shape(x)} and weight of shape "
                         f"{np.shape(weight)} do not agree for groups={groups}")
    x = dilate(dilate(x, 2, sh), 3, sw)
    eh, ew = dh * (kh - 1) - ph, dw * (kw - 1) - pw
    x = pad_axes(x, {2: (eh, eh + oh), 3: (ew, ew + ow)})
    w = np.reshape(weight, (groups, c // groups, og, kh, kw))
    w = np.reshape(np.swapaxes(w, 1, 2), (groups * og, c // groups, kh, kw))
    return conv2d(x, w[:, :, ::-1, ::-1], bias, 1, 0, (dh, dw), groups)
