"""Pooling over NCHW windows. Non-overlapping windows (the common ``kernel == stride``,
no padding case) are a reshape and one reduction; the general case reuses the patch
gather of ``conv``."""

from __future__ import annotations

from typing import Any

import numpy as np

from pycograd.nn.conv import batched, out_size, pad_axes, pair, patches


def _pool(op: str, x: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
          reduce: Any, fill: float) -> Any:
    x, added = batched(op, x, 2)
    y = _pool_batched(x, kernel_size, stride, padding, dilation, reduce, fill)
    return y[0] if added else y


def _pool_batched(x: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
                  reduce: Any, fill: float) -> Any:
    n, c, h, w = np.shape(x)
    kh, kw = pair(kernel_size, "kernel_size")
    sh, sw = pair(kernel_size if stride is None else stride, "stride")
    (ph, pw), (dh, dw) = pair(padding, "padding"), pair(dilation, "dilation")
    ho, wo = out_size(h, kh, sh, ph, dh), out_size(w, kw, sw, pw, dw)
    if (kh, kw) == (sh, sw) and not (ph or pw) and (dh, dw) == (1, 1):
        if (h, w) != (ho * kh, wo * kw):
            x = x[:, :, :ho * kh, :wo * kw]
        return reduce(np.reshape(x, (n, c, ho, kh, wo, kw)), axis=(3, 5))
    if ph or pw:
        x = pad_axes(x, {2: (ph, ph), 3: (pw, pw)}, fill)
    return reduce(patches(x, (kh, kw), (sh, sw), (dh, dw), (ho, wo)), axis=2)


def max_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1) -> Any:
    """Max over each window of an ``(N, C, H, W)`` or unbatched ``(C, H, W)`` input
    (padding never wins); ``stride`` defaults to the kernel.
    Tied maxima share the gradient equally.

    Examples:
        >>> import numpy as np
        >>> from pycograd import grad, max_pool2d
        >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
        >>> max_pool2d(x, 2).tolist()
        [[[[5.0, 7.0], [13.0, 15.0]]]]
        >>> grad(lambda x: np.sum(max_pool2d(x, 2)), 0)(x)[0, 0, :2, :2].tolist()
        [[0.0, 0.0], [0.0, 1.0]]
    """
    return _pool("max_pool2d", x, kernel_size, stride, padding, dilation, np.max, -np.inf)


def avg_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0) -> Any:
    """Mean over each window, zero padding included in the count (PyTorch's default).

    Examples:
        >>> import numpy as np
        >>> from pycograd import avg_pool2d
        >>> avg_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 2).tolist()
        [[[[2.5, 4.5], [10.5, 12.5]]]]
    """
    return _pool("avg_pool2d", x, kernel_size, stride, padding, 1, np.mean, 0.0)


def global_avg_pool(x: Any, keepdims: bool = False) -> Any:
    """Mean over every spatial axis of an ``(N, C, ...)`` input: ``(N, C)``.

    Examples:
        >>> import numpy as np
        >>> from pycograd import global_avg_pool
        >>> global_avg_pool(np.ones((2, 3, 4, 4))).shape
        (2, 3)
    """
    return np.mean(x, axis=tuple(range(2, np.ndim(x))), keepdims=keepdims)
