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

Memory stays near a plain gradient step's. Each layer's norm is taken as its cotangent
arrives, and the activation its clipped sum will read is then dropped, as a plain
backward drops it, whenever the tape can recompute it from the weights and the data (the
pass's tape keeps every untraced argument: data, masks, constants); ``clipped_sum``
replays those nodes, each once, freeing each value after its last reader. Otherwise (a
custom rule or a checkpoint on the way, or values traced by an enclosing transform) the
activation stays on the tape until then. The price is time: the layers that feed the
replayed activations run forward a second time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pycograd.core.errors import NonScalarOutputError, PycogradError
from pycograd.core.primitive import UNSAVED, VALUE, Joint, Shaped
from pycograd.core.pytree import tree_flatten, tree_unflatten
from pycograd.core.trace import Tracer, apply_impl, bind, new_trace
from pycograd.core.var import (
    ANS,
    ARGS,
    CT,
    PARAMS,
    PARENTS,
    PRIM,
    SEQ,
    ReverseTrace,
    Var,
    _reachable,
)
from pycograd.numpy_api.transparent import routed
from pycograd.ops.broadcasting import unbroadcast
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
    arguments the weight is, the views between the weight and that argument, and which of
    the layer's arguments ``clipped_sum`` recomputes (``replay``) rather than keeps."""

    leaf: Var
    node: list  # the layer's tape node (``pycograd.core.var``: PRIM, ARGS ...)
    pos: int
    rule: Any
    views: list = field(default_factory=list)
    g: Any = None
    replay: tuple = ()
    unread: tuple = ()  # the layer's traced arguments whose values the weight's VJP
    # does not read: kept only as their shape (``Shaped``) after the backward
    g_sq: dict | None = None  # per-example ``|g_i|^2``, shared by the uses of one cotangent


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


class _GhostTrace(ReverseTrace):
    """The ghost pass's tape: as lean as the eager tape for traced values, but every
    argument that is not traced (data, labels, masks, constants: alive anyway, or small)
    stays on its node, so that ``clipped_sum`` can replay the node."""

    __slots__ = ()

    def process(self, prim: Any, args: tuple, params: dict) -> Any:
        out = ReverseTrace.process(self, prim, args, params)
        if out.__class__ is Var:
            kept = out._node[ARGS]
            for i, a in enumerate(args):
                if a.__class__ is not Var or a._trace is not self:
                    kept[i] = a
        return out


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
    _chain: list = field(default_factory=list)  # the nodes that replays run through
    _released: bool = False

    @property
    def how(self) -> list:
        ghost = {id(u.leaf): f"ghost {u.rule.name}" for u in self._uses}
        return [None if not isinstance(x, Var) else ghost.get(id(x)) or (
            "vmap" if k in self._fallback else "unused") for k, x in enumerate(self._leaves)]

    def clipped_sum(self, scale: np.ndarray, release: bool = False) -> Any:
        """``sum_i scale_i * grad_i``. With ``release`` it frees what the pass kept as it
        goes (each cotangent once scaled, each replayed activation after its last reader),
        which keeps a DP-SGD step near a plain step's memory; the result then cannot be
        summed again."""
        if self._released:
            raise PrivacyError("clipped_sum(release=True) already consumed this ghost pass; "
                               "run ghost_pass again, or pass release=False to sum twice")
        out: list = [None] * len(self._leaves)
        where = {id(x): k for k, x in enumerate(self._leaves)}
        replay = _Replay(self._uses, self._chain)
        groups: dict[int, list] = {}  # a layer's weight and bias often share one cotangent
        for u in sorted(self._uses, key=lambda u: u.node[SEQ]):
            groups.setdefault(id(u.g), []).append(u)
        if release:
            self._released = True
            self._chain = []
        for group in groups.values():
            g, rest = group[0].g, []
            for u in group:  # a bias first: one product with the unscaled cotangent
                ct = u.rule.clip(u, g, scale) if u.rule.clip is not None else None
                if ct is None:
                    rest.append(u)
                else:
                    out[where[id(u.leaf)]] = _through_views(u, ct)
            gs = _scale_rows(g, scale) if rest else None
            g = None
            if release:
                for u in group:
                    u.g = None
            for u in rest:
                out[where[id(u.leaf)]] = _view_back(u, gs, replay)
            if release:
                for u in group:
                    u.node = u.views = None
            gs = None
        for k, pe in self._fallback.items():
            out[k] = np.tensordot(scale, pe, axes=1)
        if release:
            self._fallback = dict.fromkeys(self._fallback)
        for k, x in enumerate(self._leaves):
            if not isinstance(x, Var):
                continue
            v, o = x.value, out[k]
            if o is None:
                out[k] = np.zeros_like(v)
            elif o.__class__ is not np.ndarray or o.dtype != v.dtype or o.shape != v.shape:
                out[k] = np.asarray(o, v.dtype).reshape(v.shape)
        return tree_unflatten(self._treedef, out)


def ghost_pass(f: Callable, values: Any, batch: Sequence[Any]) -> GhostResult:
    """One forward and one backward pass of the per-example losses ``f(values, *batch)``:
    their values, the per-example gradient norms, and what ``clipped_sum`` needs."""
    b = _batch_size(batch)
    leaves, td = tree_flatten(values)
    with new_trace(_GhostTrace) as trace:
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
    owners = _owners(boxed)
    chain = _plan_replay(uses, owners)
    sq = _backward(nodes, losses, uses, chain, {id(boxed[k]._node) for k in fallback}, b)
    reached = [u for u in uses if u.g is not None]  # no cotangent reached it: no gradient
    if len(reached) < len(uses):
        uses, chain = reached, _chain(reached, owners)
    pe = _per_example(f, leaves, td, fallback, batch) if fallback else {}
    for g in pe.values():
        sq += _row_sq(g)
    return GhostResult(np.asarray(losses.value), np.sqrt(sq), uses, pe, boxed, td, chain)


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
        return _Use(leaf, node, pos, rule, views)


def _plan_replay(uses: list, owners: set[int]) -> list:
    """Mark, in each use, the layer's arguments that its clipped sum reads and the tape can
    recompute; return the nodes those replays run through (kept by ``_backward``). A
    weight's own array or a view of it (``W.T``) costs no memory: it stays on the tape."""
    ok: dict[int, bool] = {}
    for u in uses:
        n = u.node
        args = n[ARGS]
        read = _read_by_vjp(n[PRIM], u.pos, len(args))
        u.unread = tuple(i for i, _ in n[PARENTS] if i not in read
                         and args[i].__class__ is np.ndarray and not _free(args[i], owners))
        u.replay = tuple(i for i, p in n[PARENTS] if i in read and _is_value(args[i])
                         and not _free(args[i], owners) and _replayable(p, ok))
    return _chain(uses, owners)


def _read_by_vjp(prim: Any, pos: int, n: int) -> set[int]:
    """The arguments whose values (not just shapes) the VJP for argument ``pos`` reads (the
    tape's own analysis, ``core.primitive.residual_modes``); all when it cannot tell."""
    modes = prim.residuals_one[pos] if prim.residuals_one is not None else None
    if modes is None:
        return set(range(n))
    _, drop, rest, named = modes
    partial = {i for i, _ in drop}
    return {i for i in range(n) if (i not in partial) if i < named or rest is VALUE}


def _chain(uses: list, owners: set[int]) -> list:
    """The nodes that the replays of ``uses`` run through, each as ``(node, taken)``:
    ``taken`` the ``(position, parent)`` pairs whose values the replay recomputes (every
    traced argument but a weight or a view of one, which the node keeps)."""
    chain: dict[int, tuple] = {}
    stack = [p for u in uses for i, p in u.node[PARENTS] if i in u.replay]
    while stack:
        v = stack.pop()
        if v[PRIM] is None or id(v) in chain:
            continue
        args = v[ARGS]
        taken = [(i, p) for i, p in v[PARENTS] if not _free(args[i], owners)]
        chain[id(v)] = (v, taken)
        for _, p in taken:
            stack.append(p)
    return list(chain.values())


def _is_value(a: Any) -> bool:
    return a is not UNSAVED and not isinstance(a, Shaped)


def _owners(leaves: list) -> set[int]:
    """The ids of the weights' arrays (and of the arrays they view)."""
    owners = set()
    for x in leaves:
        if isinstance(x, Var):
            owners.add(id(x.value))
            if x.value.base is not None:
                owners.add(id(x.value.base))
    return owners


def _free(a: Any, owners: set[int]) -> bool:
    """Whether ``a`` is a weight's array or a view of one: keeping it costs no memory."""
    return a.__class__ is np.ndarray and (id(a) in owners or (
        a.base is not None and id(a.base) in owners))


def _replayable(root: list, ok: dict[int, bool]) -> bool:
    """Whether ``root``'s output can be recomputed from the weights and what the nodes above
    it kept: every argument that is not traced is kept whole, and no node runs user code."""
    stack = [root]
    while stack:  # parents first, without recursion (deep nets)
        v = stack[-1]
        if id(v) in ok:
            stack.pop()
            continue
        if v[PRIM] is None:
            ok[id(v)] = v[ANS]() is not None
            stack.pop()
            continue
        todo = [p for _, p in v[PARENTS] if id(p) not in ok]
        if todo:
            stack += todo
            continue
        stack.pop()
        ok[id(v)] = all(ok[id(p)] for _, p in v[PARENTS]) and _kept_whole(v)
    return ok[id(root)]


def _kept_whole(v: list) -> bool:
    if v[PRIM].calls_user_code:
        return False
    args, parents = v[ARGS], v[PARENTS]
    if len(parents) < len(args):
        traced = {i for i, _ in parents}
        for i, a in enumerate(args):
            if i not in traced and (a is UNSAVED or isinstance(a, (Shaped, Tracer))):
                return False
    return True


class _Replay:
    """The recomputed outputs of the replay chain's nodes, each computed once and freed
    after its last reader (a chain node or a use's replayed argument) has taken it. A
    ufunc whose input is a replayed array that nothing else reads (nor views) writes its
    output into that array, as ``y = x @ W; y += b`` would: the replay of a layer then
    costs no more than its forward did."""

    def __init__(self, uses: list, chain: list):
        self.values: dict[int, Any] = {}
        self.left: dict[int, int] = {}
        self.fresh: set[int] = set()  # replayed arrays that own their memory
        self.taken = {id(v): taken for v, taken in chain}
        left = self.left
        for u in uses:
            for i, p in u.node[PARENTS]:
                if i in u.replay:
                    left[id(p)] = left.get(id(p), 0) + 1
        for _, taken in chain:
            for _, p in taken:
                left[id(p)] = left.get(id(p), 0) + 1

    def args(self, node: list, which: Sequence[int]) -> list:
        """``node``'s arguments with those at ``which`` (traced ones) recomputed."""
        return self._args(node, [(i, p) for i, p in node[PARENTS] if i in which])[0]

    def _args(self, node: list, taken: list) -> tuple[list, Any]:
        """The arguments, those at ``taken``'s positions recomputed from its parents, and
        one of them that is free to overwrite (or None)."""
        args, spare = list(node[ARGS]), None
        for i, p in taken:
            args[i], free = self._take(p)
            if free:
                spare = args[i]
        if spare is not None:
            for v in self.values.values():
                if isinstance(v, np.ndarray) and np.may_share_memory(spare, v):
                    return args, None
        return args, spare

    def take(self, node: list) -> Any:
        return self._take(node)[0]

    def _take(self, node: list) -> tuple[Any, bool]:
        """``node``'s output, and whether nothing else will read it."""
        if node[PRIM] is None:
            var = node[ANS]()
            if var is None:  # pragma: no cover - the pass holds its weights
                raise PrivacyError("a weight of the ghost pass was freed before its replay")
            return var.value, False
        stack = [node]
        while stack:  # parents first, without recursion (deep nets)
            v = stack[-1]
            if id(v) in self.values:
                stack.pop()
                continue
            taken = self.taken[id(v)]
            todo = [p for _, p in taken if p[PRIM] is not None and id(p) not in self.values]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            vals, spare = self._args(v, taken)
            self.values[id(v)] = out = self._apply(v, vals, spare)
            if out is spare or _fresh(out, vals):
                self.fresh.add(id(v))
            vals = spare = out = None  # the inputs go as soon as their last reader has run
        value = self.values[id(node)]
        self.left[id(node)] -= 1
        if self.left[id(node)] > 0:
            return value, False
        del self.values[id(node)]
        return value, id(node) in self.fresh

    @staticmethod
    def _apply(v: list, vals: list, spare: Any) -> Any:
        prim, params = v[PRIM], v[PARAMS]
        for a in vals:
            if a.__class__ is not np.ndarray and isinstance(a, Tracer):
                return bind(prim, vals, params)
        uf = prim.impl
        if spare is not None and isinstance(uf, np.ufunc) and uf.signature is None and \
                uf.nout == 1:
            try:  # numpy checks before computing: the output's shape and dtype are spare's
                return uf(*vals, out=spare, casting="no", **params)
            except (TypeError, ValueError):
                pass
        return apply_impl(prim, vals, params)


def _fresh(out: Any, inputs: list) -> bool:
    """Whether ``out`` is an array a replayed node made: it owns its memory, which none of
    the node's inputs shares."""
    if out.__class__ is not np.ndarray or out.base is not None:
        return False
    for a in inputs:
        if isinstance(a, np.ndarray) and np.may_share_memory(out, a):
            return False
    return True


def _backward(nodes: list, root: Var, uses: list, chain: list, skip: set[int],
              b: int) -> np.ndarray:
    """Backward from ``ones(B)``: at each ghost node, its norms (squared, summed into the
    result) and its cotangent, kept; no cotangent for weights (nor their views); every
    other node released on the way, but for what ``clipped_sum`` replays."""
    keep: dict[int, list] = {}  # a node may be the ghost use of several weights
    for u in uses:
        keep.setdefault(id(u.node), []).append(u)
    replayed = {id(v): taken for v, taken in chain}
    side = set(skip) | {id(u.leaf._node) for u in uses} | {id(v) for u in uses for v in u.views}
    sq = np.zeros(b)
    g_sq: dict[int, np.ndarray] = {}
    for u in uses:
        u.g_sq = g_sq
    seed = np.ones_like(root.value)
    root = root._node
    root[CT] = seed
    try:
        for k, v in enumerate(nodes):
            g, v[CT] = v[CT], None
            if id(v) in side:
                continue
            us = keep.get(id(v))
            if us is not None and g is not None:
                for u in us:
                    u.g = g
                    sq += u.rule.sq_norms(u, b)
            if g is not None and v[PARENTS]:
                vjps, args, params, ans = v[PRIM].vjps, v[ARGS], v[PARAMS], v[ANS]
                joint = None
                if vjps.__class__ is Joint:
                    wanted = tuple(i for i, p in v[PARENTS] if id(p) not in side)
                    joint = vjps.rule(wanted, g, ans, *args, **params) if wanted else None
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
            if us is None and id(v) not in replayed:
                v[ARGS] = v[PARAMS] = v[PARENTS] = None
                nodes[k] = None
                continue
            # kept for clipped_sum: the arguments it recomputes go now, as do outputs
            # (the rules' VJPs never read ``ans``; a replay recomputes it), and those no
            # weight's VJP reads keep only their shape
            v[ANS] = None
            if us is None:
                drop, shaped = {i for i, _ in replayed[id(v)]}, set()
            else:
                drop = {i for u in us for i in u.replay}
                shaped = set.intersection(*(set(u.unread) for u in us)) - drop
            if drop or shaped:
                v[ARGS] = args = list(v[ARGS])
                for i in drop:
                    args[i] = UNSAVED
                for i in shaped:
                    args[i] = Shaped(args[i])
                args = None
    finally:
        for v in nodes:
            if v is not None:
                v[CT] = None
        for u in uses:
            u.g_sq = None
    return sq


def _scale_rows(g: Any, scale: np.ndarray) -> Any:
    return np.einsum("i...,i->i...", g, scale)  # ``g * scale[:, None]`` buffers 64 KiB


def _view_back(u: _Use, g: Any, replay: _Replay) -> Any:
    """``sum_i scale_i grad_i`` for ``u``'s weight: the layer's VJP for the weight on the
    row-scaled cotangent (its replayed arguments recomputed), then back through the views."""
    n = u.node
    vjps, args = n[PRIM].vjps, replay.args(n, u.replay) if u.replay else n[ARGS]
    ct = vjps.rule((u.pos,), g, None, *args, **n[PARAMS])[u.pos] \
        if vjps.__class__ is Joint else vjps[u.pos](g, None, *args, **n[PARAMS])
    args = None
    return _through_views(u, ct)


def _through_views(u: _Use, ct: Any) -> Any:
    """The cotangent of the layer's argument ``ct`` back through the views to the weight."""
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
    """``applies(node, pos, B)`` and ``sq_norms(use, B) -> (B,)`` for the primitive ``name``,
    and optionally ``clip(use, g, scale)``: the clipped sum at the layer's argument from the
    unscaled cotangent ``g``, or None to take the layer's VJP of the row-scaled one."""

    def __init__(self, name: str, applies: Callable, sq_norms: Callable,
                 clip: Callable | None = None):
        self.name = name
        self.applies = applies
        self.sq_norms = sq_norms
        self.clip = clip


def _outer_sq(a: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``||A_i^T C_i||_F^2`` per example for ``A`` ``(B, T, m)`` and ``C`` ``(B, T, n)``:
    the ``T x T`` Gram matrices when ``T^2 <= m n``, else the product itself."""
    t, m, n = a.shape[1], a.shape[2], c.shape[2]
    if t == 1:
        return _row_sq(a) * _row_sq(c)
    if t * t <= m * n:
        return np.einsum("bts,bts->b", a @ np.swapaxes(a, 1, 2), c @ np.swapaxes(c, 1, 2))
    return _row_sq(np.swapaxes(a, 1, 2) @ c)


def _g_row_sq(u: _Use) -> np.ndarray:
    """``|g_i|^2`` of the use's cotangent (a layer's weight and bias share it)."""
    sq = u.g_sq.get(id(u.g))
    if sq is None:
        sq = u.g_sq[id(u.g)] = _row_sq(u.g)
    return sq


def _row_sq(x: Any) -> np.ndarray:
    """``sum(x_i ** 2)`` per example, without an ``x``-sized temporary."""
    r = np.reshape(x, (np.shape(x)[0], -1))
    if r.__class__ is np.ndarray and r.dtype.kind == "f":
        return np.vecdot(r, r)  # a gufunc: a third cheaper than the einsum
    return np.einsum("ij,ij->i", r, r)


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
        a = np.reshape(a, (b, -1, d))
        if a.shape[1] == 1:  # ``|x_i|^2 |g_i|^2``
            return _row_sq(a) * _g_row_sq(u)
        return _outer_sq(a, np.reshape(g, (b, -1, p)))
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
    contrib = g * node[ARGS][1 - u.pos] if name == "multiply" else g  # the sign: squared
    return _summed_sq(contrib, np.shape(node[ARGS][u.pos]), u)


def _bias_clip(u: _Use, g: Any, scale: Any) -> Any:
    """A bias of ``h + b`` / ``h - b``: ``sum_i scale_i g_i`` is one matrix-vector product
    (no row-scaled copy of ``g``), then summed back to the bias's shape as its VJP would."""
    name = u.node[PRIM].name
    if g.__class__ is not np.ndarray or scale.__class__ is not np.ndarray or \
            name not in ("add", "subtract") or g.dtype.kind != "f":
        return None
    ct = (scale @ np.reshape(g, (g.shape[0], -1))).reshape(g.shape[1:])
    ct = unbroadcast(ct, np.shape(u.node[ARGS][u.pos]))
    return -ct if name == "subtract" and u.pos == 1 else ct


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
    return _summed_sq(g, np.shape(node[ARGS][u.pos]), u)


def _summed_sq(contrib: np.ndarray, ws: tuple, u: _Use) -> np.ndarray:
    """Per-example squared norms of ``contrib`` (``(B, ...)``) summed back over the axes a
    weight of shape ``ws`` was broadcast along (``u``'s shared ``|g_i|^2`` when
    ``contrib`` is its cotangent, whole)."""
    rest = np.shape(contrib)[1:]
    padded = (1,) * (len(rest) - len(ws)) + tuple(ws)
    axes = tuple(1 + i for i, (wd, od) in enumerate(zip(padded, rest)) if wd == 1 and od != 1)
    if contrib is u.g and not axes:
        return _g_row_sq(u)
    return _row_sq(np.sum(contrib, axis=axes) if axes else contrib)


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
    return np.bincount(uniq // v, weights=_row_sq(sums), minlength=b)


_RULES = {
    "matmul": _Rule("matmul", _linear_applies, _linear_sq),
    "add": _Rule("add", _broadcast_applies, _broadcast_sq, _bias_clip),
    "subtract": _Rule("subtract", _broadcast_applies, _broadcast_sq, _bias_clip),
    "multiply": _Rule("multiply", _broadcast_applies, _broadcast_sq),
    "getitem": _Rule("getitem", _gather_applies, _gather_sq),
    "layer_norm": _Rule("layer_norm", _affine_applies, _affine_sq),
}
