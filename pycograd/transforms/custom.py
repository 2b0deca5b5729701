"""``custom_vjp`` / ``custom_jvp``: a function with a user-written rule, under every
transform.

Arguments are flattened to leaves and the outputs packed into one array (see
``packing``), so the tape sees one node. The reverse interpreter runs the user's ``fwd``
on the values one level down (so residuals stay traced by any outer transform, and
higher derivatives see through them) and records a node whose VJP is the user's ``bwd``.
Interpreters that do not differentiate in reverse just run the function. The function and
its rules are user code run from here, so each is routed (``math.*``, ``np.array`` of traced
values, scipy), as ``grad`` routes its function.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from pycograd.backends.arrays.placed import same_device
from pycograd.core.errors import ArgumentTypeError, ShapeError
from pycograd.core.primitive import Joint, primitive
from pycograd.core.pytree import tree_flatten, tree_unflatten
from pycograd.core.trace import find_top
from pycograd.core.var import ReverseTrace
from pycograd.routing.transparent import routed
from pycograd.transforms.packing import OutputSpec, leaves_like, pack, packed, unpack


def _custom_bwd(wanted: tuple, g: Any, ans: Any, *args: Any, bwd: Callable, res: Any,
                **_: Any) -> Any:
    return bwd(res, g)


custom_vjp_p = primitive("custom_vjp", lambda *args, fun, **_: fun(*args), Joint(_custom_bwd),
                         calls_user_code=True)


class _CustomRule:
    """What both decorators share: the wrapped function, and the flattening of a call."""

    kind = ""

    def __init__(self, fun: Callable):
        functools.update_wrapper(self, fun)
        self.fun = fun

    def _flatten(self, args: tuple, ready: bool, how: str) -> tuple | None:
        """``(leaves, in_tree, top trace, output spec, packed fun)``, or None when no
        argument is traced (then the plain function runs)."""
        if not ready:
            raise ArgumentTypeError(f"{self.kind} function {self.fun.__name__!r} has no rule yet; "
                                    f"{how} before using it")
        leaves, in_tree = tree_flatten(args)
        top = find_top(leaves, self.kind)
        if top is None:
            return None
        spec = OutputSpec()
        return leaves, in_tree, top, spec, packed(routed(self.fun), in_tree, spec)


class custom_vjp(_CustomRule):  # noqa: N801  (a decorator, named like JAX's)
    """Decorate ``f``, then give it a rule with ``f.defvjp(fwd, bwd)``:
    ``fwd(*args) -> (out, residuals)`` and ``bwd(residuals, g) -> tuple`` with one
    cotangent per positional argument of ``f`` (None for no gradient).

    Examples:
        >>> import numpy as np
        >>> from pycograd import custom_vjp, grad
        >>> @custom_vjp
        ... def clip_gradient(x):
        ...     return x
        >>> _ = clip_gradient.defvjp(lambda x: (x, None),             # fwd: (out, residuals)
        ...                          lambda res, g: (np.clip(g, -1.0, 1.0),))
        >>> grad(lambda x: np.sum(10.0 * clip_gradient(x)), 0)(np.ones(2)).tolist()
        [1.0, 1.0]
    """

    kind = "custom_vjp"

    def __init__(self, fun: Callable):
        super().__init__(fun)
        self.fwd: Callable | None = None
        self.bwd: Callable | None = None

    def defvjp(self, fwd: Callable, bwd: Callable) -> custom_vjp:
        self.fwd, self.bwd = fwd, bwd
        return self

    def __call__(self, *args: Any) -> Any:
        flat = self._flatten(args, self.fwd is not None, "call .defvjp(fwd, bwd)")
        if flat is None:
            return self.fun(*args)
        leaves, in_tree, top, spec, flat_fun = flat

        def flat_fwd(*xs: Any) -> tuple:
            out, res = routed(self.fwd)(*tree_unflatten(in_tree, list(xs)))
            out_leaves, out_tree = tree_flatten(out)
            spec.record(out_tree, out_leaves)
            return pack(out_leaves), res

        def flat_bwd(res: Any, g: Any) -> list:
            cts = routed(self.bwd)(res, unpack(g, spec))
            if not isinstance(cts, (tuple, list)) or len(cts) != len(args):
                raise ArgumentTypeError(
                    f"custom_vjp bwd of {self.fun.__name__!r} must return a tuple with one "
                    f"cotangent per argument ({len(args)}), got {cts!r}")
            flat: list = []
            for k, (ct, arg) in enumerate(zip(cts, args)):
                arg_leaves, arg_tree = tree_flatten(arg)
                pairs = leaves_like(arg_tree, ct, f"argument {k}",
                                    f"custom_vjp bwd of {self.fun.__name__!r}: the cotangent")
                for (c, where), a in zip(pairs, arg_leaves):
                    if c is not None and np.shape(c) != np.shape(a):
                        raise ShapeError(
                            f"custom_vjp bwd of {self.fun.__name__!r} returned a cotangent of "
                            f"shape {np.shape(c)} for {where} of shape {np.shape(a)}")
                    flat.append(c)
            return flat

        flat = top.process_custom_vjp(flat_fun, flat_fwd, flat_bwd, tuple(leaves))
        return unpack(flat, spec)


def reverse_custom_vjp(trace: Any, fun: Callable, fwd: Callable, bwd: Callable,
                       args: tuple) -> Any:
    """How the tape processes a custom_vjp call (installed on ``ReverseTrace``): ``fwd``
    runs one level down, and the node keeps its residuals for ``bwd``."""
    vals, parents = trace.lower(args)
    out, res = fwd(*vals)
    return trace.node(custom_vjp_p, out, vals, {"fun": fun, "bwd": bwd, "res": res}, parents)


class custom_jvp(_CustomRule):  # noqa: N801  (a decorator, named like JAX's)
    """Decorate ``f``, then give it a forward rule with ``@f.defjvp``:
    ``rule(primals, tangents) -> (out, tangent_out)``, linear in the tangents. Reverse mode
    transposes that linear map, so ``grad`` uses the rule too.

    Examples:
        >>> import numpy as np
        >>> from pycograd import custom_jvp, grad
        >>> @custom_jvp
        ... def norm(x):
        ...     return np.sqrt(np.sum(x ** 2))
        >>> @norm.defjvp
        ... def norm_jvp(primals, tangents):
        ...     (x,), (t,) = primals, tangents
        ...     n = norm(x)
        ...     return n, np.sum(x * t) / np.where(n == 0, 1.0, n)
        >>> grad(norm, 0)(np.zeros(2)).tolist()                # 0 at the origin, not nan
        [0.0, 0.0]
    """

    kind = "custom_jvp"

    def __init__(self, fun: Callable):
        super().__init__(fun)
        self.rule: Callable | None = None

    def defjvp(self, rule: Callable) -> Callable:
        self.rule = rule
        return rule

    def __call__(self, *args: Any) -> Any:
        flat = self._flatten(args, self.rule is not None, "decorate one with @f.defjvp")
        if flat is None:
            return self.fun(*args)
        leaves, in_tree, top, spec, flat_fun = flat

        def flat_rule(primals: list, tangents: list) -> tuple:
            out, t_out = routed(self.rule)(tuple(tree_unflatten(in_tree, list(primals))),
                                   tuple(tree_unflatten(in_tree, list(tangents))))
            out_leaves, out_tree = tree_flatten(out)
            spec.record(out_tree, out_leaves)
            pairs = leaves_like(out_tree, t_out, "the output",
                                f"custom_jvp rule of {self.fun.__name__!r}: the tangent")
            return pack(out_leaves), pack([
                np.zeros(np.shape(o), np.result_type(o)) if t is None
                else np.broadcast_to(t, np.shape(o)) for (t, _), o in zip(pairs, out_leaves)])

        return unpack(top.process_custom_jvp(flat_fun, flat_rule, tuple(leaves)), spec)


def _transpose_jvp(wanted: tuple, g: Any, ans: Any, *args: Any, rule: Callable,
                   **_: Any) -> list:
    """The VJP of a custom JVP rule: reverse-differentiate its (linear) tangent map."""
    from pycograd.transforms.grad import vjp

    zeros = [same_device(a, np.zeros(np.shape(a), np.result_type(a))) for a in args]

    def tangent_map(*ts: Any) -> Any:
        full = list(zeros)
        for i, t in zip(wanted, ts):
            full[i] = t
        return rule(list(args), full)[1]

    _, pullback = vjp(tangent_map, *(zeros[i] for i in wanted))
    cts: list = [None] * len(args)
    for i, ct in zip(wanted, pullback(g)):
        cts[i] = ct
    return cts


custom_jvp_p = primitive("custom_jvp", lambda *args, fun, **_: fun(*args),
                         Joint(_transpose_jvp), calls_user_code=True)


def reverse_custom_jvp(trace: Any, fun: Callable, rule: Callable, args: tuple) -> Any:
    """How the tape processes a custom_jvp call (installed on ``ReverseTrace``): the node's
    VJP is the transpose of the user's tangent map."""
    vals, parents = trace.lower(args)
    return trace.node(custom_jvp_p, fun(*vals), vals, {"fun": fun, "rule": rule}, parents)


ReverseTrace.process_custom_vjp = reverse_custom_vjp
ReverseTrace.process_custom_jvp = reverse_custom_jvp
