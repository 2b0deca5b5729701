"""``scipy.integrate.odeint`` on traced values: the routed call flattens ``args`` (a tuple of
arrays or a pytree of them) and binds ``pycograd.ops.integrate.odeint_p``. Untraced calls keep
scipy's own result (the transparent layer dispatches only when an argument is traced).
Importing this module does not import scipy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pycograd.core.errors import ArgumentError
from pycograd.core.pytree import tree_flatten, tree_unflatten
from pycograd.ops.integrate import odeint_p

_OPTIONS = ("rtol", "atol", "tcrit", "h0", "hmax", "hmin", "ixpr", "mxstep", "mxhnil",
            "mxordn", "mxords", "tfirst")


def odeint(func: Callable, y0: Any, t: Any, args: Any = (), Dfun: Any = None,  # noqa: N803
           col_deriv: int = 0, full_output: int = 0, ml: Any = None, mu: Any = None,
           printmessg: int = 0, **options: Any) -> Any:
    """scipy's ``odeint(func, y0, t, args)``, differentiable in ``y0``, ``t`` and ``args``
    (a tuple of float arrays, or pytrees of them). ``Dfun``, banded Jacobians and
    ``full_output`` are scipy's solver internals: not supported on traced values."""
    from pycograd.numpy_api.transparent import routed

    if Dfun is not None or full_output or ml is not None or mu is not None:
        raise ArgumentError("scipy.integrate.odeint on traced values: Dfun=, ml=/mu= and "
                            "full_output= are not supported; pycograd differentiates func")
    unknown = sorted(set(options) - set(_OPTIONS)) + (["tfirst"] if options.get("tfirst") else [])
    if unknown:
        raise ArgumentError(f"scipy.integrate.odeint on traced values: options {unknown} are "
                            "not supported")
    if not isinstance(args, tuple):
        args = (args,)
    leaves, tree = tree_flatten(args)
    f = routed(func)

    def flat(y: Any, tt: Any, *xs: Any) -> Any:
        return f(y, tt, *tree_unflatten(tree, list(xs)))

    y0 = np.asarray(y0, np.float64) if not hasattr(y0, "shape") else y0
    t = np.asarray(t, np.float64) if not hasattr(t, "shape") else t
    opts = tuple(sorted(options.items()))
    return odeint_p.bind(y0 * np.float64(1.0), t * np.float64(1.0), *leaves, func=flat,
                         options=opts)


NAMES = ("odeint",)
"""The routed ``scipy.integrate`` attributes."""


def routes(dispatch: Callable[[Callable, Callable], Callable]) -> dict[Callable, Callable]:
    """scipy's odeint -> ``dispatch(scipy's, ours)`` (call once scipy.integrate is imported)."""
    import scipy.integrate as si

    return {si.odeint: dispatch(si.odeint, odeint)}
