"""Whole Jacobians and Hessians, built from the three interpreters: ``jacrev`` maps the
VJP over the output basis with ``vmap``, ``jacfwd`` maps the JVP over the input basis,
``hessian`` is forward-over-reverse.

Layout (as JAX's): the Jacobian of an output leaf of shape ``o`` with respect to an input
leaf of shape ``i`` has shape ``o + i``. With pytrees, the result is the output's
structure, each output leaf replaced by the arguments' structure (a bare tree for an int
``argnums``, a tuple of trees for a tuple), so ``hessian(f, (0, 1))`` gives
``((H00, H01), (H10, H11))``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pycograd.core.pytree import tree_flatten, tree_unflatten
from pycograd.numpy_api.transparent import routed
from pycograd.transforms.grad import grad, vjp
from pycograd.transforms.jvp import jvp
from pycograd.transforms.vmap import vmap


def _eye_like(x: Any) -> Any:
    """The standard basis of ``x``'s space, stacked on a leading axis."""
    n = int(np.prod(np.shape(x)))
    return np.reshape(np.eye(n, dtype=np.result_type(x)), (n,) + np.shape(x))


def _zeros_like(x: Any) -> Any:
    return np.zeros(np.shape(x), np.result_type(x))


def _nums(argnums: int | Sequence[int]) -> tuple[int, ...]:
    return (argnums,) if isinstance(argnums, int) else tuple(argnums)


def _assemble(out_tree: Any, arg_trees: list, blocks: list, argnums: Any) -> Any:
    """``blocks[k][a][j]``: the Jacobian block of output leaf ``k`` against leaf ``j`` of
    argument ``a``; nested as the output tree of (argnums-structured) argument trees."""
    per_out = []
    for row in blocks:
        per_arg = [tree_unflatten(td, list(leaves)) for td, leaves in zip(arg_trees, row)]
        per_out.append(per_arg[0] if isinstance(argnums, int) else tuple(per_arg))
    return tree_unflatten(out_tree, per_out)


def jacrev(f: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """The Jacobian by reverse mode (one batched VJP per output leaf); ``jacobian`` is an alias.

    Cheaper than ``jacfwd`` when there are fewer outputs than inputs. The Jacobian of an
    output of shape ``o`` with respect to an input of shape ``i`` has shape ``o + i``, as in
    JAX; ``argnums`` and pytrees work as for ``grad``.

    Examples:
        >>> import numpy as np
        >>> from pycograd import jacrev
        >>> f = lambda x: np.stack([x[0] * x[1], x[0] + x[1]])
        >>> jacrev(f)(np.array([2.0, 3.0])).tolist()
        [[3.0, 2.0], [1.0, 1.0]]
    """

    @functools.wraps(f)
    def jac(*args: Any) -> Any:
        nums = _nums(argnums)
        g = routed(f)  # the lambda below is pycograd's code: route the user's function here
        out, pullback = vjp(lambda *xs: g(*_place(args, nums, xs)), *(args[i] for i in nums))
        out_leaves, out_tree = tree_flatten(out)
        arg_leaves = [tree_flatten(args[i]) for i in nums]
        zeros = [_zeros_like(o) for o in out_leaves]
        blocks = []
        for k, o in enumerate(out_leaves):
            def row(e: Any, k: int = k) -> Any:
                return pullback(tree_unflatten(out_tree, zeros[:k] + [e] + zeros[k + 1:]))
            cts = vmap(row)(_eye_like(o))
            blocks.append([[np.reshape(c, np.shape(o) + np.shape(leaf))
                            for c, leaf in zip(tree_flatten(ct)[0], leaves)]
                           for ct, (leaves, _) in zip(cts, arg_leaves)])
        return _assemble(out_tree, [td for _, td in arg_leaves], blocks, argnums)

    return jac


jacobian = jacrev


def jacfwd(f: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """The Jacobian by forward mode (one batched JVP per input leaf).

    Cheaper than ``jacrev`` when there are fewer inputs than outputs; the layout is the same
    (output shape, then input shape).

    Examples:
        >>> import numpy as np
        >>> from pycograd import jacfwd
        >>> jacfwd(lambda x: x ** 2)(np.array([1.0, 2.0])).tolist()
        [[2.0, 0.0], [0.0, 4.0]]
    """

    @functools.wraps(f)
    def jac(*args: Any) -> Any:
        nums = _nums(argnums)
        zero_t = [tree_unflatten(tree_flatten(a)[1], [_zeros_like(x) for x in tree_flatten(a)[0]])
                  for a in args]
        cols: list = []  # cols[a][j]: per output leaf, (out_shape + leaf_shape)
        out_tree = None
        arg_trees = []
        for i in nums:
            leaves, td = tree_flatten(args[i])
            arg_trees.append(td)
            per_leaf = []
            for j, leaf in enumerate(leaves):
                def push(t: Any, i: int = i, j: int = j, td: Any = td) -> Any:
                    ts = list(zero_t)
                    lz = tree_flatten(ts[i])[0]
                    ts[i] = tree_unflatten(td, lz[:j] + [t] + lz[j + 1:])
                    return jvp(f, args, ts)[1]
                out = vmap(push, out_axes=-1)(_eye_like(leaf))
                o_leaves, out_tree = tree_flatten(out)
                per_leaf.append([np.reshape(c, np.shape(c)[:-1] + np.shape(leaf))
                                 for c in o_leaves])
            cols.append(per_leaf)
        if out_tree is None:  # no input leaves: every block is empty
            out_tree = tree_flatten(f(*args))[1]
        blocks = [[[leaf_cols[k] for leaf_cols in per_leaf] for per_leaf in cols]
                  for k in range(out_tree.num_leaves)]
        return _assemble(out_tree, arg_trees, blocks, argnums)

    return jac


def hessian(f: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """The Hessian of a scalar function, forward-over-reverse (``jacfwd(jacrev(f))``).

    With a tuple ``argnums`` the result is nested blocks ``((H00, H01), (H10, H11))``.

    Examples:
        >>> import numpy as np
        >>> from pycograd import hessian
        >>> hessian(lambda x: x[0] ** 2 * x[1])(np.array([1.0, 2.0])).tolist()
        [[4.0, 2.0], [2.0, 0.0]]
    """
    return jacfwd(grad(f, argnums), argnums)


def hvp(f: Callable, primals: Sequence, tangents: Sequence) -> Any:
    """The Hessian-vector product of a scalar ``f`` at ``primals`` along ``tangents``
    (forward-over-reverse, no Hessian formed). Bare for one primal, else a tuple.

    Examples:
        >>> import numpy as np
        >>> from pycograd import hvp
        >>> f = lambda x: np.sum(x ** 3)
        >>> hvp(f, (np.array([1.0, 2.0]),), (np.array([1.0, 0.0]),)).tolist()   # H @ v
        [6.0, 0.0]
    """
    nums = tuple(range(len(primals)))
    out = jvp(grad(f, nums), tuple(primals), tuple(tangents))[1]
    return out[0] if len(primals) == 1 else out


def elementwise_grad(f: Callable, argnum: int = 0) -> Callable:
    """The gradient of ``sum(f(x))``: for elementwise ``f``, the derivative at each element.

    Examples:
        >>> import numpy as np
        >>> from pycograd import elementwise_grad
        >>> np.allclose(elementwise_grad(np.tanh)(np.zeros(3)), 1.0)    # d tanh/dx at each x
        True
    """

    @functools.wraps(f)
    def egrad(*args: Any) -> Any:
        g = routed(f)
        out, pullback = vjp(lambda x: g(*_place(args, (argnum,), (x,))), args[argnum])
        return pullback(np.ones_like(out))[0]

    return egrad


def _place(args: tuple, nums: tuple, xs: tuple) -> list:
    full = list(args)
    for i, x in zip(nums, xs):
        full[i] = x
    return full
