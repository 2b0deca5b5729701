"""Forward mode: the JVP interpreter, and ``jvp`` / ``linearize`` on it.

A ``JVPTracer`` carries a primal and its tangent (``None`` is a symbolic zero, so ops on
constants cost nothing extra). Each primitive's JVP comes from its family rule (see
``pycograd.ops.families``): elementwise, linear, multilinear, reductions and the rest are
each written once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pycograd.backends.arrays.placed import same_device
from pycograd.core.dtypes import is_float
from pycograd.core.errors import ArgumentError, ArgumentTypeError, NoRuleError, ShapeError
from pycograd.core.primitive import Primitive, family_rules
from pycograd.core.pytree import tree_flatten, tree_unflatten
from pycograd.core.trace import Trace, Tracer, bind, new_trace
from pycograd.core.tracebacks import api_boundary
from pycograd.ops.complex import is_complex
from pycograd.routing.transparent import routed
from pycograd.transforms.packing import leaves_like


class JVPTracer(Tracer):
    __slots__ = ("primal", "tangent")

    def __init__(self, trace: JVPTrace, primal: Any, tangent: Any):
        self._trace = trace
        self.primal = primal
        self.tangent = tangent

    @property
    def shape(self) -> tuple:
        return np.shape(self.primal)

    @property
    def dtype(self) -> np.dtype:
        return np.result_type(self.primal)

    def __bool__(self) -> bool:
        return bool(self.primal)

    def __repr__(self) -> str:
        return f"JVPTracer(primal={self.primal!r}, tangent={self.tangent!r})"


class JVPTrace(Trace):
    __slots__ = ()

    def process(self, prim: Primitive, args: tuple, params: dict) -> Any:
        primals, tangents = [], []
        for a in args:
            if isinstance(a, JVPTracer) and a._trace is self:
                primals.append(a.primal)
                tangents.append(a.tangent)
            else:
                primals.append(a)
                tangents.append(None)
        if not prim.differentiable or all(t is None for t in tangents):
            return bind(prim, primals, params)
        if prim.jvp is None:
            raise NoRuleError(f"{prim.name} has no forward-mode (jvp) rule")
        out, t_out = prim.jvp(primals, tangents, **params)
        if t_out is None or np.result_type(out).kind not in "fcV":
            return out
        return JVPTracer(self, out, t_out)

    def process_custom_jvp(self, fun: Any, rule: Any, args: tuple) -> Any:
        primals, tangents = [], []
        for a in args:
            mine = isinstance(a, JVPTracer) and a._trace is self
            primals.append(a.primal if mine else a)
            tangents.append(a.tangent if mine else None)
        tangents = [_zeros_like(p) if t is None else t for p, t in zip(primals, tangents)]
        out, t_out = rule(primals, tangents)
        return JVPTracer(self, out, t_out)


def _zeros_like(x: Any) -> Any:
    return same_device(x, np.zeros(np.shape(x), dtype=np.result_type(x)))


def _jvp_flat(f: Callable, primals: list, tangents: list) -> tuple:
    with new_trace(JVPTrace) as trace:
        ins = [JVPTracer(trace, p, t) if t is not None else p for p, t in zip(primals, tangents)]
        out = f(*ins)
    out_leaves, out_tree = tree_flatten(out)
    outs, touts = [], []
    for o in out_leaves:
        if isinstance(o, JVPTracer) and o._trace is trace:
            outs.append(o.primal)
            touts.append(_zeros_like(o.primal) if o.tangent is None else o.tangent)
        else:
            outs.append(o)
            touts.append(_zeros_like(o))
    return tree_unflatten(out_tree, outs), tree_unflatten(out_tree, touts)


def _check_tangent(p: Any, t: Any, where: str) -> Any:
    """The tangent ``t`` of primal leaf ``p``, cast to its dtype. Integer and boolean
    primals have no tangent: theirs must be None (or zeros), and is dropped."""
    if t is None:
        return None
    if np.shape(p) != np.shape(t):
        raise ShapeError(f"jvp: tangent of shape {np.shape(t)} for a primal of shape "
                         f"{np.shape(p)} ({where}); each tangent must match its primal's shape")
    dt = np.result_type(p)
    if not is_float(dt):
        if not isinstance(t, Tracer) and np.any(np.asarray(t) != 0):
            raise ArgumentError(f"jvp: the primal {where} has dtype {dt}, which has no tangent "
                                "space; pass None (or zeros) as its tangent")
        return None
    if isinstance(t, Tracer):
        return t if np.result_type(t) == dt else t.astype(dt)
    return np.asarray(t, dtype=dt)


@api_boundary
def jvp(f: Callable, primals: Sequence, tangents: Sequence) -> tuple:
    """``(f(*primals), J_f(primals) @ tangents)`` in one forward pass (JAX's ``jvp``).

    ``tangents`` mirrors ``primals``; ``None`` is a zero tangent (for a leaf or a whole
    subtree). Integer and boolean primals take None (or zeros) as their tangent. Python
    floats are float64 scalars. The tangent of an integer output is zeros of its dtype.

    Examples:
        >>> import numpy as np
        >>> from pycograd import jvp
        >>> out, tangent = jvp(np.sin, (np.array([0.0, 1.0]),), (np.array([1.0, 1.0]),))
        >>> np.allclose(tangent, np.cos([0.0, 1.0]))
        True
    """
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise ArgumentTypeError("jvp(f, primals, tangents): primals and tangents must be tuples "
                                "with one entry per positional argument of f")
    if len(primals) != len(tangents):
        raise ArgumentError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    p_leaves, p_tree = tree_flatten(tuple(primals))
    t_leaves: list = []
    for i, (c_td, t) in enumerate(zip(p_tree.children, tangents)):
        t_leaves.extend(leaves_like(c_td, t, f"argument {i}", "jvp: the tangent"))
    p_leaves = [np.asarray(p) if isinstance(p, (float, int, complex)) else p for p in p_leaves]
    t_leaves = [_check_tangent(p, t, where) for p, (t, where) in zip(p_leaves, t_leaves)]
    g = routed(f)
    return _jvp_flat(lambda *xs: g(*tree_unflatten(p_tree, list(xs))), p_leaves, t_leaves)


@api_boundary
def linearize(f: Callable, *primals: Any) -> tuple:
    """``(f(*primals), f_jvp)`` where ``f_jvp(*tangents)`` is the JVP at ``primals``: the
    linearisation, evaluated once and applied to as many tangents as you like.

    Examples:
        >>> import numpy as np
        >>> from pycograd import linearize
        >>> out, f_jvp = linearize(lambda x: x ** 3, np.array([1.0, 2.0]))
        >>> f_jvp(np.array([1.0, 1.0])).tolist()              # 3 x**2 * t, reusable
        [3.0, 12.0]
    """
    out = routed(f)(*primals)

    def f_jvp(*tangents: Any) -> Any:
        return jvp(f, primals, tangents)[1]

    return out, f_jvp


# ---- family rules -----------------------------------------------------------------

def _add(a: Any, b: Any) -> Any:
    return b if a is None else a + b


def jvp_elementwise(prim: Primitive) -> Callable:
    """Elementwise ops have a diagonal Jacobian once broadcast: the VJP rule of argument
    ``i``, applied to the broadcast tangent with array arguments broadcast to the output
    shape (so its unbroadcast is a no-op), is that argument's JVP. For complex values this
    holds for holomorphic ops (their VJP is the unconjugated ``g * f'(z)``, see
    ``pycograd.ops.complex``); a real argument of a complex result is promoted to complex
    first, so the rule keeps the whole complex tangent rather than its real part. The
    non-holomorphic ops (abs, real, imag, angle) declare their own JVP."""
    def rule(primals: list, tangents: list, **params: Any) -> tuple:
        out = bind(prim, primals, params)
        shape = np.shape(out)
        full = [p if type(p) in (int, float, complex) or np.shape(p) == shape
                else np.broadcast_to(p, shape) for p in primals]
        cplx = np.result_type(out).kind == "c"
        t_out = None
        for i, t in enumerate(tangents):
            if t is None or prim.vjps[i] is None:
                continue
            t = t if np.shape(t) == shape else np.broadcast_to(t, shape)
            args = full
            if cplx and not is_complex(full[i]):
                args = full[:i] + [full[i] + 0j] + full[i + 1:]
            t_out = _add(t_out, prim.vjps[i](t, out, *args, **params))
        if cplx and t_out is not None and not is_complex(t_out):
            t_out = t_out + 0j  # add with a real argument: its tangent is real
        return out, t_out
    return rule


def jvp_linear(prim: Primitive) -> Callable:
    """Jointly linear ops (reshape, sum, concatenate, getitem ...): apply the op to the
    tangents, zeros standing in for constant arguments."""
    def rule(primals: list, tangents: list, **params: Any) -> tuple:
        out = bind(prim, primals, params)
        ts = [_zeros_like(p) if t is None else t for p, t in zip(primals, tangents)]
        return out, bind(prim, ts, params)
    return rule


def jvp_multilinear(prim: Primitive) -> Callable:
    """Ops linear in each argument separately (matmul, einsum): the product rule."""
    def rule(primals: list, tangents: list, **params: Any) -> tuple:
        out = bind(prim, primals, params)
        t_out = None
        for i, t in enumerate(tangents):
            if t is not None:
                t_out = _add(t_out, bind(prim, primals[:i] + [t] + primals[i + 1:], params))
        return out, t_out
    return rule


def jvp_reduction(prim: Primitive) -> Callable:
    """Each input element feeds exactly one output element, so the Jacobian applied to ``t``
    is the per-element partials (the VJP of ones) times ``t``, summed over the axes."""
    from pycograd.numpy_api.functions import sum as np_sum

    def rule(primals: list, tangents: list, axis: Any, keepdims: bool) -> tuple:
        (x,), (t,) = primals, tangents
        out = bind(prim, primals, {"axis": axis, "keepdims": keepdims})
        partials = prim.vjps[0](np.ones_like(out), out, x, axis=axis, keepdims=keepdims)
        return out, np_sum(partials * t, axis=axis, keepdims=keepdims)
    return rule


def jvp_call(prim: Primitive) -> Callable:
    """Primitives that carry a function (checkpoint): the JVP of the function itself."""
    def rule(primals: list, tangents: list, fun: Callable, **params: Any) -> tuple:
        ts = [_zeros_like(p) if t is None else t for p, t in zip(primals, tangents)]
        return _jvp_flat(fun, primals, ts)
    return rule


family_rules("jvp", {
    "elementwise": jvp_elementwise,
    "cast": jvp_linear,
    "linear": jvp_linear,
    "multilinear": jvp_multilinear,
    "reduction": jvp_reduction,
    "call": jvp_call,
})
