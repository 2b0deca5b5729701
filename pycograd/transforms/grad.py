"""Reverse mode: ``vjp``, ``grad``, ``value_and_grad``.

Each call opens a fresh tape one level above the current top of the stack, lifts the
differentiable leaves of the chosen arguments onto it as ``Var``s, runs the function, and
runs backward from the output. Integer and boolean leaves are passed through untouched and
get ``None`` as their gradient; float leaves the output does not depend on get zeros.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pycograd.core.dtypes import is_float
from pycograd.core.errors import ArgnumsError, ArgumentTypeError, NonScalarOutputError, ShapeError
from pycograd.core.pytree import tree_flatten, tree_unflatten
from pycograd.core.trace import Tracer, new_trace
from pycograd.core.tracebacks import api_boundary
from pycograd.core.var import ReverseTrace, Var, backward
from pycograd.numpy_api.complex import real
from pycograd.routing.transparent import routed
from pycograd.transforms.packing import leaves_like


def _differentiable(x: Any) -> bool:
    if isinstance(x, (float, complex)) and not isinstance(x, bool):
        return True
    dt = getattr(x, "dtype", None)
    return dt is not None and is_float(dt)


def _lift(x: Any, trace: ReverseTrace) -> Any:
    if not _differentiable(x):
        return x
    if isinstance(x, (float, complex)):
        x = np.asarray(x)[()]  # a numpy scalar, so its gradient comes back a scalar too
    return Var(x, trace)


def _lower(x: Any, trace: ReverseTrace) -> Any:
    """The value of ``x`` one level below ``trace`` (``x`` itself if it is not on it)."""
    return x.value if isinstance(x, Var) and x._trace is trace else x


def _cotangent_for(leaf: Any, ct: Any, taken: set[int]) -> Any:
    """Shape the raw cotangent of an input leaf like the leaf: its dtype, zeros where the
    output did not depend on it, an array the caller owns (writable, shared with no other
    gradient or cotangent, ids in ``taken``) for an array leaf, a numpy scalar for a scalar."""
    if not isinstance(leaf, Var):
        return None
    value = leaf.value
    dt = value.dtype
    if ct is None:
        if isinstance(value, np.generic):
            return dt.type(0)
        if isinstance(value, Tracer):  # an array on a device: zeros there
            return np.zeros_like(value)
        return np.zeros(np.shape(value), dt)
    if ct.dtype != dt:
        ct = ct.astype(dt)
    if isinstance(ct, Tracer):
        return ct
    if not isinstance(value, np.ndarray):
        return dt.type(ct)
    if isinstance(ct, np.generic):
        ct = np.array(ct)
    elif isinstance(ct, np.ndarray) and (not ct.flags.writeable or id(ct) in taken):
        ct = ct.copy()
    taken.add(id(ct))
    return ct


def _normalize_argnums(argnums: Any, argnum: Any) -> Any:
    if argnum is not None:
        if argnums is not None:
            raise ArgnumsError("pass argnums= or its alias argnum=, not both")
        return argnum
    return argnums


def _is_int(i: Any) -> bool:
    return isinstance(i, (int, np.integer)) and not isinstance(i, bool)


def _check_argnums(argnums: Any, nargs: int, fname: str) -> tuple[int, ...]:
    nums = range(nargs) if argnums is None else (
        tuple(argnums) if isinstance(argnums, (tuple, list)) else (argnums,))
    out = []
    for i in nums:
        if not _is_int(i) or not -nargs <= i < nargs:
            raise ArgnumsError(
                f"{fname}: argnums={argnums!r} does not fit a call with {nargs} positional "
                f"argument(s); use integers in range({nargs})")
        out.append(int(i) % nargs)
    return tuple(out)


def _run(f: Callable, args: tuple, kwargs: dict, nums: tuple[int, ...]) -> tuple:
    """Run ``f`` on a fresh tape with the leaves of ``args[nums]`` lifted onto it."""
    with new_trace(ReverseTrace) as trace:
        args = list(args)
        lifted = []
        for i in nums:
            leaves, td = tree_flatten(args[i])
            boxed = [_lift(x, trace) for x in leaves]
            lifted.append((boxed, td))
            args[i] = tree_unflatten(td, boxed)
        out = routed(f)(*args, **kwargs)
    return trace, out, lifted


def _grads(lifted: list, found: dict[int, Any], cts: Sequence = ()) -> list:
    taken = {id(c) for c in cts}
    return [tree_unflatten(td, [_cotangent_for(x, found.get(id(x)), taken) for x in boxed])
            for boxed, td in lifted]


def _scalar_output(out: Any, fname: str, complex_ok: bool = False) -> Any:
    """``out`` checked to be a real scalar; a 1-tuple is unwrapped, so that ``grad(grad(f))``
    works although ``grad(f)`` returns a tuple of one gradient per argument."""
    if isinstance(out, (tuple, list)):
        if len(out) != 1:
            raise NonScalarOutputError(
                f"{fname} needs f to return a scalar, but it returned a {type(out).__name__} "
                f"of {len(out)} values; return one scalar (pass has_aux=True to return "
                "(value, aux)), or use vjp for several outputs")
        return _scalar_output(out[0], fname, complex_ok)
    if not (hasattr(out, "shape") or isinstance(out, (int, float, complex))):
        raise NonScalarOutputError(
            f"{fname} needs f to return a scalar array or number, but it returned "
            f"{type(out).__name__}")
    shape = tuple(out.shape) if hasattr(out, "shape") else ()  # np.shape dispatches: slower
    if shape != ():
        raise NonScalarOutputError(
            f"{fname} needs f to return a scalar, but it returned an array of shape {shape}; "
            "reduce it (e.g. np.sum or np.mean), or use vjp / jacrev for non-scalar outputs")
    dt = out.dtype if hasattr(out, "dtype") else np.dtype(type(out))
    if not is_float(dt):
        raise NonScalarOutputError(
            f"{fname} needs f to return a real or complex float, but its output has dtype "
            f"{dt}, which has no gradient (an integer count or a boolean comparison is not "
            "differentiable: np.sum(x > 0) is piecewise constant); return a float loss")
    if dt.kind == "c" and not complex_ok:
        raise NonScalarOutputError(
            f"{fname} needs a real scalar output, got {dt}; take np.real or np.abs of it, "
            "or use holomorphic_grad for the derivative of a holomorphic function")
    return out


def value_and_grad(f: Callable, argnums: int | Sequence[int] | None = None,
                   has_aux: bool = False, *, argnum: int | None = None) -> Callable:
    """``f -> (lambda *args: (f(*args), gradient))``.

    ``argnums=None`` gives a tuple with one gradient per positional argument (the seed's
    ``value, (g,) = value_and_grad(f)(x)``); an int gives the bare gradient; a tuple gives a
    tuple. With ``has_aux``, ``f`` returns ``(value, aux)`` and the result is
    ``((value, aux), gradient)``.

    Examples:
        >>> import numpy as np
        >>> from pycograd import value_and_grad
        >>> f = lambda w, x: np.sum((x @ w) ** 2)
        >>> value, (gw, gx) = value_and_grad(f)(np.ones(2), np.eye(2))   # one per argument
        >>> float(value), gw.tolist()
        (2.0, [2.0, 2.0])
        >>> value_and_grad(f, argnums=0)(np.ones(2), np.eye(2))[1].tolist()   # an int: bare
        [2.0, 2.0]
    """
    argnums = _normalize_argnums(argnums, argnum)

    @api_boundary
    @functools.wraps(f)
    def value_and_grad_f(*args: Any, **kwargs: Any) -> Any:
        nums = _check_argnums(argnums, len(args), "value_and_grad")
        trace, out, lifted = _run(f, args, kwargs, nums)
        aux = None
        if has_aux:
            out, aux = _split_aux(out)
        root = _scalar_output(out, "grad")
        if isinstance(root, Var) and root._trace is trace:
            found = backward([root], [np.ones_like(root.value)])
        else:
            found = {}
        grads = _grads(lifted, found)
        g = grads[0] if _is_int(argnums) else tuple(grads)
        value = _strip(out, trace)
        if has_aux:
            return (value, _strip(aux, trace)), g
        return value, g

    return value_and_grad_f


def grad(f: Callable, argnums: int | Sequence[int] | None = None, has_aux: bool = False, *,
         argnum: int | None = None) -> Callable:
    """The gradient of a real scalar-valued ``f``: ``grad(f)(*args)``.

    ``argnums`` picks what to differentiate: ``None`` (the default) gives a tuple with one
    gradient per positional argument, an int the bare gradient of that argument, a tuple of
    ints a tuple of theirs (``argnum=`` is an alias). Integer and boolean arguments get
    ``None``; pytree arguments get gradients of the same structure. With ``has_aux=True``,
    ``f`` returns ``(value, aux)`` and ``grad`` returns ``(gradient, aux)``. ``f`` is ordinary
    numpy code: pycograd's values ride numpy's own dispatch, so helpers and library code
    differentiate too. A non-scalar output raises ``NonScalarOutputError``.

    Examples:
        >>> import numpy as np
        >>> from pycograd import grad
        >>> def loss(w, b, x):
        ...     return np.sum(np.tanh(x @ w + b))
        >>> gw, gb, gx = grad(loss)(np.zeros(2), 0.0, np.ones(2))     # argnums=None: all
        >>> gw.tolist(), float(gb)
        ([1.0, 1.0], 1.0)
        >>> float(grad(loss, argnums=(0, 1))(np.zeros(2), 0.0, np.ones(2))[1])
        1.0
        >>> float(grad(grad(np.sin, 0), 0)(0.5))             # gradients differentiate again
        -0.479425538604203
    """
    vg = value_and_grad(f, argnums, has_aux, argnum=argnum)

    @api_boundary
    @functools.wraps(f)
    def grad_f(*args: Any, **kwargs: Any) -> Any:
        value, g = vg(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return grad_f


def holomorphic_grad(f: Callable, argnums: int | Sequence[int] | None = None,
                     has_aux: bool = False, *, argnum: int | None = None) -> Callable:
    """The complex derivative ``f'(z)`` of a holomorphic ``f`` with a complex scalar output
    (autograd's ``holomorphic_grad``): the gradient of ``real(f)``, which under pycograd's
    complex convention (``df/dx - i df/dy``, see ``pycograd.ops.complex``) is ``f'(z)``
    by the Cauchy-Riemann equations. ``argnums`` and ``has_aux`` are as for ``grad``.

    Examples:
        >>> from pycograd import holomorphic_grad
        >>> complex(holomorphic_grad(lambda z: z ** 3, 0)(1.0 + 2.0j))     # 3 z**2
        (-9+12j)
    """
    def real_f(*args: Any, **kwargs: Any) -> Any:
        out = routed(f)(*args, **kwargs)  # real_f is pycograd's code: grad cannot route f
        if has_aux:
            out, aux = _split_aux(out)
            return real(_scalar_output(out, "holomorphic_grad", complex_ok=True)), aux
        return real(_scalar_output(out, "holomorphic_grad", complex_ok=True))

    return functools.wraps(f)(grad(real_f, argnums, has_aux, argnum=argnum))


def _split_aux(out: Any) -> tuple:
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise ArgumentTypeError(f"has_aux=True needs f to return a pair (output, aux), but it "
                                f"returned {type(out).__name__}")
    return out[0], out[1]


def _strip(tree: Any, trace: ReverseTrace) -> Any:
    leaves, td = tree_flatten(tree)
    return tree_unflatten(td, [_lower(x, trace) for x in leaves])


@api_boundary
def vjp(f: Callable, *primals: Any, has_aux: bool = False) -> tuple:
    """``(f(*primals), vjp_fn)``: ``vjp_fn(ct)`` returns one cotangent per primal.

    ``vjp_fn`` may be called many times; the tape lives as long as ``vjp_fn`` does.

    Examples:
        >>> import numpy as np
        >>> from pycograd import vjp
        >>> out, f_vjp = vjp(lambda x: x ** 2, np.array([1.0, 2.0, 3.0]))
        >>> (ct,) = f_vjp(np.array([1.0, 0.0, 0.0]))          # a row of the Jacobian
        >>> ct.tolist()
        [2.0, 0.0, 0.0]
    """
    trace, out, lifted = _run(f, primals, {}, tuple(range(len(primals))))
    aux = None
    if has_aux:
        out, aux = _split_aux(out)
    out_leaves, out_td = tree_flatten(out)
    primal_out = tree_unflatten(out_td, [_lower(x, trace) for x in out_leaves])

    def vjp_fn(ct: Any) -> tuple:
        try:
            pairs = leaves_like(out_td, ct, "the output", "vjp_fn: the cotangent")
        except ValueError as e:
            raise ShapeError(f"vjp_fn: cotangent has {len(tree_flatten(ct)[0])} leaves, the "
                             f"output has {len(out_leaves)}: {e}") from None
        roots, cts = [], []
        for o, (c, where) in zip(out_leaves, pairs):
            if c is not None and isinstance(o, Var) and o._trace is trace:
                if np.shape(c) != o.shape:
                    raise ShapeError(f"vjp_fn: cotangent of shape {np.shape(c)} for an output "
                                     f"of shape {o.shape} ({where})")
                roots.append(o)
                cts.append(_as_cotangent(c, o.dtype, where))
        found = backward(roots, cts, retain=True) if roots else {}
        return tuple(_grads(lifted, found, cts))

    if has_aux:
        return primal_out, vjp_fn, _strip(aux, trace)
    return primal_out, vjp_fn


def _as_cotangent(c: Any, dt: np.dtype, where: str) -> Any:
    """A cotangent (an array, a numpy or Python scalar) in the output's dtype ``dt``;
    a complex cotangent for a real output would lose its imaginary part, so it raises."""
    c_dt = np.result_type(c)
    if c_dt.kind == "c" and dt.kind != "c":
        raise ArgumentTypeError(f"vjp_fn: a complex cotangent ({c_dt}) for {where}, which is "
                                f"real ({dt}); pass a real cotangent")
    if isinstance(c, Tracer):
        return c if c_dt == dt else c.astype(dt)
    return np.asarray(c, dtype=dt)


def is_traced(x: Any) -> bool:
    return isinstance(x, Tracer)
