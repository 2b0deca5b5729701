"""Per-example gradient norms without per-example gradients (ghost clipping), and the
clipped sum of the per-example gradients they give.

The objective returns one loss per example, ``l`` of shape ``(B,)``. One forward pass
records the tape; one backward pass from ``ones(B)`` gives, at every node, the cotangent
whose row ``i`` is ``dl_i / d(node's row i)`` (examples do not interact, the premise of
DP-SGD). For a weight used once, by one of the layers below, its per-example gradient is
a small product of that node's input and cotangent, whose norm has a closed form
(Opacus's ghost clipping, Goodfellow 2015, Li et al. 2022):

* ``x @ W`` (linear; ``W`` maybe reached through ``transpose`` / ``reshape``): the
  gradient of example ``i`` is ``X_i^T G_i`` with ``X_i`` its ``(T, d)`` inputs and
  ``G_i`` its ``(T, p)`` cotangents; ``||X_i^T G_i||^2 = <X_i X_i^T, G_i G_i^T>`` costs
  ``T^2`` per example (just ``|x_i|^2 |g_i|^2`` for ``T = 1``), or ``d p`` if
  materialised, whichever is smaller;
* ``W @ P`` (convolution: ``conv2d`` is one matmul of the reshaped kernel with the
  patches): the same with the roles of the factors swapped, per group;
* ``table[ids]`` (embedding): the rows example ``i`` looked up, summed per distinct id;
* ``h + b``, ``h - b``, ``h * gamma`` with a weight broadcast over the batch (a bias, a
  scale), and ``layer_norm``'s own scale and shift (``g * x_hat`` and ``g``, ``x_hat``
  recomputed from the input its node keeps): the per-example gradient is small, so it is
  computed.

Every other weight (an op without a rule above, or a weight used by several nodes, whose
per-example contributions would interfere) falls back to ``vmap(grad)`` over the examples
for those weights only. The backward pass never forms the weights' batch gradients; the
clipped sum is each rule node's own VJP applied to the cotangent scaled row by row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pycograd.core.errors import NonScalarOutputError, PycogradError
from pycograd.core.primitive import Joint
from pycograd.core.pytree import tree_flatten, tree_unflatten
from pycograd.core.trace import new_trace
from pycograd.core.var import (
    ANS,
    ARGS,
    CT,
    PARAMS,
    PARENTS,
    PRIM,
    ReverseTrace,
    Var,
    _reachable,
)
from pycograd.numpy_api.transparent import routed
from pycograd.ops.fused import normalized
from pycograd.transforms.grad import grad
from pycograd.transforms.vmap import vmap

_VIEWS = ("transpose", "reshape")  # norm-preserving: a weight may reach its layer through them


class PrivacyError(PycogradError, ValueError):
    """An objective or weights that per-example clipping cannot work with.

    Examples:
        >>> import numpy as np
        >>> from pycograd import PrivacyError, per_sample_grad_norms
        >>> loss = lambda w, x, y: (x @ w["w"] - y) ** 2
        >>> try:
        ...     per_sample_grad_norms(loss, {"w": np.ones(2)}, np.ones((3, 2)), np.ones(4))
        ... except PrivacyError:
        ...     print("refused")
        refused
    """


@dataclass
class _Use:
    """A weight used once by a layer with a ghost rule: the layer's node, which of its
    arguments the weight is, and the views between the weight and that argument."""

    leaf: Var
    node: list  # the layer's tape node (``pycograd.core.var``: PRIM, ARGS ...)
    pos: int
    rule: Any
    views: list = field(default_factory=list)
    g: Any = None


def per_sample_grad_norms(objective: Callable, weights: Any, *batch: Any) -> np.ndarray:
    """The norm of each example's gradient (over all trainable weights), ``(B,)``, without
    materialising per-example gradients where a ghost rule applies (see this module).

    ``weights`` is a ``ParamDict`` (``objective(*batch)`` reads the weights by name) or a
    pytree of arrays (``objective(weights, *batch)``). The objective returns one loss per
    example (e.g. ``cross_entropy(..., reduction="none")``), and examples must not interact
    (no batch norm, no loss over pairs), the premise of per-example clipping; the first
    axis of every batch array and of every per-example activation is the example axis.

    >>> import numpy as np, pycograd as pg
    >>> w = {"W": np.ones((3, 2)), "b": np.zeros(2)}
    >>> f = lambda w, x: np.sum((x @ w["W"] + w["b"]) ** 2, axis=1)
    >>> pg.per_sample_grad_norms(f, w, np.eye(3)).shape
    (3,)
    """
    return ghost_pass(*_functional(objective, weights), batch).norms


def _functional(objective: Callable, weights: Any) -> tuple[Callable, Any]:
    """``(f, values)`` with ``f(values, *batch)`` the per-example losses."""
    if callable(getattr(weights, "functional", None)) and callable(
            getattr(weights, "trainable", None)):
        return weights.functional(objective), weights.trainable()
    return routed(objective), weights


@dataclass
class GhostResult:
    """The per-example losses and gradient norms of one batch; ``clipped_sum(c)`` gives
    ``sum_i c_i * grad_i`` shaped like the weights, from what the pass kept. ``how`` says,
    per weight leaf, which way its norms were found: ``"ghost <primitive>"``, ``"vmap"``,
    ``"unused"`` (or None for a leaf that is not a float array)."""

    losses: np.ndarray
    norms: np.ndarray
    _uses: list
    _fallback: dict
    _leaves: list
    _treedef: Any

    @property
    def how(self) -> list:
        ghost = {id(u.leaf): f"ghost {u.node[PRIM].name}" for u in self._uses}
        return [None if not isinstance(x, Var) else ghost.get(id(x)) or (
            "vmap" if k in self._fallback else "unused") for k, x in enumerate(self._leaves)]

    def clipped_sum(self, scale: np.ndarray) -> Any:
        out: list = [None] * len(self._leaves)
        where = {id(x): k for k, x in enumerate(self._leaves)}
        scaled: dict[int, Any] = {}  # a layer's weight and bias often share one cotangent
        for u in self._uses:
            gs = scaled.get(id(u.g))
            if gs is None:
                gs = scaled[id(u.g)] = _scale_rows(u.g, scale)
            out[where[id(u.leaf)]] = _view_back(u, gs)
        for k, pe in self._fallback.items():
            out[k] = np.tensordot(scale, pe, axes=1)
        for k, x in enumerate(self._leaves):
            if isinstance(x, Var) and out[k] is None:
                out[k] = np.zeros_like(x.value)
            elif isinstance(x, Var):
                out[k] = np.asarray(out[k], x.value.dtype).reshape(x.value.shape)
        return tree_unflatten(self._treedef, out)


def ghost_pass(f: Callable, values: Any, batch: Sequence[Any]) -> GhostResult:
    """One forward and one backward pass of the per-example losses ``f(values, *batch)``:
    their values, the per-example gradient norms, and what ``clipped_sum`` needs."""
    b = _batch_size(batch)
    leaves, td = tree_flatten(values)
    with new_trace(ReverseTrace) as trace:
        boxed = [_lift(x, trace) for x in leaves]
        losses = f(tree_unflatten(td, boxed), *batch)
    if not (isinstance(losses, Var) and losses._trace is trace):
        losses_value = np.asarray(losses)
        _check_losses(losses_value, b)
        return GhostResult(losses_value, np.zeros(b), [], {}, boxed, td)
    _check_losses(losses.value, b)
    nodes = _reachable([losses._node])
    users: dict[int, list] = {}
    for v in nodes:
        for i, p in v[PARENTS]:
            users.setdefault(id(p), []).append((v, i))
    uses, fallback = [], []
    for k, x in enumerate(boxed):
        if not isinstance(x, Var):
            continue
        use = _classify(x, users, b)
        if use is not None:
            uses.append(use)
        elif id(x._node) in users:
            fallback.append(k)
    users = None  # it holds every node: let backward release them as it goes
    _backward(nodes, losses, uses, {id(boxed[k]._node) for k in fallback})
    uses = [u for u in uses if u.g is not None]  # no cotangent reached it: no gradient
    sq = np.zeros(b)
    for u in uses:
        sq += u.rule(u, b)
    pe = _per_example(f, leaves, td, fallback, batch) if fallback else {}
    for g in pe.values():
        sq += np.sum(np.reshape(g, (b, -1)) ** 2, axis=1)
    return GhostResult(np.asarray(losses.value), np.sqrt(sq), uses, pe, boxed, td)


def _lift(x: Any, trace: ReverseTrace) -> Any:
    dt = np.result_type(x)
    if dt.kind == "c":
        raise PrivacyError("per-example clipping needs real weights, got a complex one")
    return Var(np.asarray(x), trace) if dt.kind == "f" else x


def _batch_size(batch: Sequence[Any]) -> int:
    sizes = {np.shape(x)[0] for x in batch if np.ndim(x) > 0}
    if len(sizes) != 1:
        raise PrivacyError(f"the batch arrays must share their first (example) axis, got "
                           f"shapes {[np.shape(x) for x in batch]}")
    return sizes.pop()


def _check_losses(value: Any, b: int) -> None:
    if np.shape(value) != (b,):
        raise NonScalarOutputError(
            f"per-example clipping needs the objective to return one loss per example, "
            f"shape ({b},), got shape {np.shape(value)}; return the unreduced losses, e.g. "
            "cross_entropy(logits, y, reduction='none')")


def _classify(leaf: Var, users: Mapping[int, list], b: int) -> _Use | None:
    """The ghost use of ``leaf``, or None (unused, or needing the vmap fallback)."""
    views, cur = [], leaf._node
    while True:
        us = users.get(id(cur), [])
        if len(us) != 1:
            return None
        node, pos = us[0]
        if node[PRIM].name in _VIEWS and len(node[PARENTS]) == 1:
            views.append(node)
            cur = node
            continue
        rule = _RULES.get(node[PRIM].name)
        if rule is None or not rule.applies(node, pos, b):
            return None
        return _Use(leaf, node, pos, rule.sq_norms, views)


def _backward(nodes: list, root: Var, uses: list, skip: set[int]) -> None:
    """Backward from ``ones(B)``, keeping the cotangent at each ghost node, computing no
    cotangent for weights (nor their views), and releasing every other node on the way."""
    keep: dict[int, list] = {}  # a node may be the ghost use of several weights
    for u in uses:
        keep.setdefault(id(u.node), []).append(u)
    side = set(skip) | {id(u.leaf._node) for u in uses} | {id(v) for u in uses for v in u.views}
    seed = np.ones_like(root.value)
    root = root._node
    root[CT] = seed
    try:
        for k, v in enumerate(nodes):
            g, v[CT] = v[CT], None
            if id(v) in side:
                continue
            u = keep.get(id(v))
            for use in u or ():
                use.g = g
            if g is not None and v[PARENTS]:
                vjps, args, params, ans = v[PRIM].vjps, v[ARGS], v[PARAMS], v[ANS]
                wanted = tuple(i for i, p in v[PARENTS] if id(p) not in side)
                joint = vjps.rule(wanted, g, ans, *args, **params) \
                    if vjps.__class__ is Joint and wanted else None
                for i, p in v[PARENTS]:
                    if id(p) in side:
                        continue
                    rule = None if joint is not None else vjps[i]
                    if joint is None and rule is None:
                        continue
                    ct = joint[i] if joint is not None else rule(g, ans, *args, **params)
                    if ct is not None:
                        p[CT] = ct if p[CT] is None else p[CT] + ct
                g = ct = joint = args = ans = None
            if u is None:
                v[ARGS] = v[PARAMS] = v[PARENTS] = None
                nodes[k] = None
            else:  # its output is not read again (the rules' VJPs never read ``ans``)
                v[ANS] = None
    finally:
        for v in nodes:
            if v is not None:
                v[CT] = None


def _scale_rows(g: Any, scale: np.ndarray) -> Any:
    return g * np.reshape(scale, (-1,) + (1,) * (np.ndim(g) - 1))


def _view_back(u: _Use, g: Any) -> Any:
    """``sum_i scale_i grad_i`` for ``u``'s weight: the layer's VJP for the weight on the
    row-scaled cotangent, then back through the views."""
    n = u.node
    vjps = n[PRIM].vjps
    ct = vjps.rule((u.pos,), g, None, *n[ARGS], **n[PARAMS])[u.pos] \
        if vjps.__class__ is Joint else vjps[u.pos](g, None, *n[ARGS], **n[PARAMS])
    for v in reversed(u.views):
        ct = v[PRIM].vjps[0](ct, v[ANS], *v[ARGS], **v[PARAMS])
    return ct


def _per_example(f: Callable, leaves: list, td: Any, which: list[int],
                 batch: Sequence[Any]) -> dict[int, np.ndarray]:
    """``vmap(grad)`` per-example gradients of the weights at ``which`` only. The other
    weights go in unmapped too (not closed over), so that a lookup ``table[ids]`` of a
    batched ``ids`` into one of them is seen by vmap."""
    def one(sub: list, rest: list, *example: Any) -> Any:
        full = list(rest)
        for k, x in zip(which, sub):
            full[k] = x
        return f(tree_unflatten(td, full), *(e[None] for e in example))[0]

    per = vmap(grad(one, argnums=0), in_axes=(None, None) + (0,) * len(batch))(
        [leaves[k] for k in which], list(leaves), *batch)
    return dict(zip(which, per))


# ---- the ghost rules -------------------------------------------------------------------

class _Rule:
    """``applies(node, pos, B)`` and ``sq_norms(use, B) -> (B,)`` for one primitive."""

    def __init__(self, applies: Callable, sq_norms: Callable):
        self.applies = applies
        self.sq_norms = sq_norms


def _outer_sq(a: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``||A_i^T C_i||_F^2`` per example for ``A`` ``(B, T, m)`` and ``C`` ``(B, T, n)``:
    the ``T x T`` Gram matrices when ``T^2 <= m n``, else the product itself."""
    t, m, n = a.shape[1], a.shape[2], c.shape[2]
    if t == 1:
        return np.sum(a[:, 0] ** 2, axis=1) * np.sum(c[:, 0] ** 2, axis=1)
    if t * t <= m * n:
        return np.einsum("bts,bts->b", a @ np.swapaxes(a, 1, 2), c @ np.swapaxes(c, 1, 2))
    return np.sum((np.swapaxes(a, 1, 2) @ c) ** 2, axis=(1, 2))


def _linear_applies(node: Var, pos: int, b: int) -> bool:
    a, w = node[ARGS]
    if pos == 1:  # x @ W
        return np.ndim(w) == 2 and np.ndim(a) >= 2 and np.shape(a)[0] == b
    # W @ P, the convolution layout: W (*groups, m, k), P (B, *groups, k, L)
    return (np.ndim(a) >= 2 and np.ndim(w) == np.ndim(a) + 1 and np.shape(w)[0] == b
            and np.shape(w)[1:-2] == np.shape(a)[:-2])


def _linear_sq(u: _Use, b: int) -> np.ndarray:
    a, w = u.node[ARGS]
    g = u.g
    if u.pos == 1:
        d, p = np.shape(w)
        return _outer_sq(np.reshape(a, (b, -1, d)), np.reshape(g, (b, -1, p)))
    m, k = np.shape(a)[-2:]
    groups = int(np.prod(np.shape(a)[:-2], dtype=int))
    length = np.shape(w)[-1]
    gg = np.swapaxes(np.reshape(g, (b * groups, m, length)), 1, 2)   # (B*G, L, m)
    pp = np.swapaxes(np.reshape(w, (b * groups, k, length)), 1, 2)   # (B*G, L, k)
    return np.sum(np.reshape(_outer_sq(gg, pp), (b, groups)), axis=1)


def _broadcast_applies(node: Var, pos: int, b: int) -> bool:
    w, other = node[ARGS][pos], node[ARGS][1 - pos]  # values or shape-only stand-ins
    out = np.broadcast_shapes(np.shape(w), np.shape(other))  # the tape keeps no output
    return (len(out) >= 2 and out[0] == b and np.ndim(w) <= len(out) - 1
            and np.ndim(other) == len(out))


def _broadcast_sq(u: _Use, b: int) -> np.ndarray:
    """Bias / scale: per-example gradients are weight-sized, so form them."""
    node, g = u.node, u.g
    name = node[PRIM].name
    if name == "multiply":
        contrib = g * node[ARGS][1 - u.pos]
    else:
        contrib = -g if name == "subtract" and u.pos == 1 else g
    return _summed_sq(contrib, np.shape(node[ARGS][u.pos]), b)


def _affine_applies(node: Var, pos: int, b: int) -> bool:
    """A ``layer_norm`` scale or bias shared by the examples of the input's first axis."""
    x = node[ARGS][0]
    out = np.broadcast_shapes(*(np.shape(a) for a in node[ARGS]))
    return (pos >= 1 and len(out) >= 2 and out[0] == b and np.ndim(x) == len(out)
            and np.ndim(node[ARGS][pos]) <= len(out) - 1)


def _affine_sq(u: _Use, b: int) -> np.ndarray:
    """``layer_norm``'s scale (``g * x_hat``, the normalized input recomputed from the
    input the tape keeps) or bias (``g``), summed per example like a broadcast operand."""
    node, g = u.node, u.g
    params = node[PARAMS]
    if params["affine"][u.pos - 1] == "weight":
        g = g * normalized(node[ARGS][0], params["axis"], params["eps"])[0]
    return _summed_sq(g, np.shape(node[ARGS][u.pos]), b)


def _summed_sq(contrib: np.ndarray, ws: tuple, b: int) -> np.ndarray:
    """Per-example squared norms of ``contrib`` (``(B, ...)``) summed back over the axes a
    weight of shape ``ws`` was broadcast along."""
    rest = np.shape(contrib)[1:]
    padded = (1,) * (len(rest) - len(ws)) + tuple(ws)
    axes = tuple(1 + i for i, (wd, od) in enumerate(zip(padded, rest)) if wd == 1 and od != 1)
    pe = np.sum(contrib, axis=axes) if axes else contrib
    return np.sum(np.reshape(pe, (b, -1)) ** 2, axis=1)


def _gather_applies(node: Var, pos: int, b: int) -> bool:
    idx = node[PARAMS].get("idx")
    return (pos == 0 and np.ndim(node[ARGS][0]) == 2 and isinstance(idx, np.ndarray)
            and idx.dtype.kind in "iu" and idx.ndim >= 1 and idx.shape[0] == b)


def _gather_sq(u: _Use, b: int) -> np.ndarray:
    """Rows looked up per example, summed per distinct id, then squared."""
    table, idx = u.node[ARGS][0], u.node[PARAMS]["idx"]
    v, dim = np.shape(table)
    ids = np.reshape(idx, (b, -1)) % v
    keys = (np.arange(b)[:, None] * v + ids).ravel()
    uniq, inv = np.unique(keys, return_inverse=True)
    sums = np.zeros((len(uniq), dim))
    np.add.at(sums, inv.ravel(), np.reshape(u.g, (-1, dim)))
    return np.bincount(uniq // v, weights=np.sum(sums ** 2, axis=1), minlength=b)


_RULES = {
    "matmul": _Rule(_linear_applies, _linear_sq),
    "add": _Rule(_broadcast_applies, _broadcast_sq),
    "subtract": _Rule(_broadcast_applies, _broadcast_sq),
    "multiply": _Rule(_broadcast_applies, _broadcast_sq),
    "getitem": _Rule(_gather_applies, _gather_sq),
    "layer_norm": _Rule(_affine_applies, _affine_sq),
}
