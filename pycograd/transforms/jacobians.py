"""Whole Jacobians and Hessians, built from the three interpreters: ``jacrev`` maps the
VJP over the output basis with ``vmap``, ``jacfwd`` maps the JVP over the input basis,
``hessian`` is forward-over-reverse."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pycograd.core.pytree import tree_flatten
from pycograd.transforms.grad import grad, vjp
from pycograd.transforms.jvp import jvp
from pycograd.transforms.vmap import vmap


def _eye_like(x: Any) -> Any:
    """The standard basis of ``x``'s space, stacked on a leading axis."""
    n = int(np.prod(np.shape(x)))
    return np.reshape(np.eye(n, dtype=np.result_type(x)), (n,) + np.shape(x))


def _nums(argnums: int | Sequence[int]) -> tuple[int, ...]:
    return (argnums,) if isinstance(argnums, int) else tuple(argnums)


def jacrev(f: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """The Jacobian by reverse mode (one batched VJP); shape ``out.shape + arg.shape``."""

    @functools.wraps(f)
    def jac(*args: Any) -> Any:
        nums = _nums(argnums)
        out, pullback = vjp(lambda *xs: f(*_place(args, nums, xs)), *(args[i] for i in nums))
        if len(tree_flatten(out)[0]) != 1:
            raise TypeError("jacrev needs f to return one array")
        rows = vmap(pullback)(_eye_like(out))
        res = tuple(np.reshape(r, np.shape(out) + np.shape(args[i]))
                    for r, i in zip(rows, nums))
        return res[0] if isinstance(argnums, int) else res

    return jac


jacobian = jacrev


def jacfwd(f: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """The Jacobian by forward mode (one batched JVP per argument); shape ``out + arg``."""

    @functools.wraps(f)
    def jac(*args: Any) -> Any:
        res = []
        for i in _nums(argnums):
            def push(t: Any, i: int = i) -> Any:
                tangents = [np.zeros(np.shape(a), np.result_type(a)) if j != i else t
                            for j, a in enumerate(args)]
                return jvp(f, args, tangents)[1]
            cols = vmap(push, out_axes=-1)(_eye_like(args[i]))
            res.append(np.reshape(cols, np.shape(cols)[:-1] + np.shape(args[i])))
        return res[0] if isinstance(argnums, int) else tuple(res)

    return jac


def hessian(f: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """The Hessian of a scalar function, forward-over-reverse."""
    return jacfwd(grad(f, argnums), argnums)


def hvp(f: Callable, primals: Sequence, tangents: Sequence) -> Any:
    """The Hessian-vector product of a scalar ``f`` at ``primals`` along ``tangents``
    (forward-over-reverse, no Hessian formed). Bare for one primal, else a tuple."""
    nums = tuple(range(len(primals)))
    out = jvp(grad(f, nums), tuple(primals), tuple(tangents))[1]
    return out[0] if len(primals) == 1 else out


def elementwise_grad(f: Callable, argnum: int = 0) -> Callable:
    """The gradient of ``sum(f(x))``: for elementwise ``f``, the derivative at each element."""

    @functools.wraps(f)
    def egrad(*args: Any) -> Any:
        out, pullback = vjp(lambda x: f(*_place(args, (argnum,), (x,))), args[argnum])
        return pullback(np.ones_like(out))[0]

    return egrad


def _place(args: tuple, nums: tuple, xs: tuple) -> list:
    full = list(args)
    for i, x in zip(nums, xs):
        full[i] = x
    return full
