"""``scipy.integrate.odeint`` as a primitive: scipy integrates, the rules integrate again.

``odeint_p.bind(y0, t, *args, func=f, options=...)`` solves ``dy/dt = f(y, t, *args)`` with
scipy's LSODA at the times ``t``; ``f`` is the user's function (routed) and ``args`` its flat
extra arguments (arrays). Every rule is itself an ``odeint_p`` of an augmented system, so
derivatives of any order exist as long as ``f`` differentiates:

- VJP (the adjoint method, as autograd's): from the last time back to the first, integrate
  ``[y, a, a_t, a_args]`` backwards with ``a' = -a^T df/dy``, ``a_args' = -a^T df/dargs``;
  the cotangent of each output time is ``g_i . f(y_i, t_i)``.
- JVP (forward sensitivities): integrate ``[y, s]`` with ``s' = df/dy s + df/dargs targs``
  from ``s(t0) = ty0 - f(y0, t0) tt0``; the tangent of ``y(t_i)`` adds ``f(y_i, t_i) tt_i``.
- vmap: one solve per example (the step sizes depend on the values), stacked.
- eval_shape: ``(len(t), len(y0))``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pycograd.core.primitive import Joint, primitive
from pycograd.core.symbolic import Dim
from pycograd.core.trace import bind
from pycograd.ops.shaping import full


def _odeint(y0: Any, t: Any, *args: Any, func: Callable, options: tuple) -> np.ndarray:
    from scipy.integrate import odeint

    def f(y: np.ndarray, tt: float) -> np.ndarray:
        return np.asarray(func(y, tt, *args), dtype=np.float64)

    return odeint(f, np.asarray(y0, np.float64), np.asarray(t, np.float64), **dict(options))


def _array(x: Any) -> Any:
    """``f``'s value as an array; a traced value (a higher derivative) stays traced."""
    return x if hasattr(x, "shape") else np.asarray(x, np.float64)


def _zeros(x: Any) -> Any:
    return np.zeros(np.shape(x), np.float64)


def _adjoint(wanted: tuple, g: Any, yt: Any, y0: Any, t: Any, *args: Any, func: Callable,
             options: tuple) -> list:
    from pycograd.transforms.grad import vjp

    n_t, d = np.shape(yt)
    sizes = [int(np.size(a)) for a in args]

    def split_args(flat: Any) -> list:
        out, start = [], 0
        for a, n in zip(args, sizes):
            out.append(np.reshape(flat[start:start + n], np.shape(a)))
            start += n
        return out

    def augmented(state: Any, tt: Any, *fargs: Any) -> Any:
        y, a_y = state[:d], state[d:2 * d]
        dy, pull = vjp(lambda y, tt, *fa: func(y, tt, *fa), y,
                       tt if hasattr(tt, "shape") else np.float64(tt), *fargs)
        cts = pull(-a_y)
        return np.concatenate([dy, cts[0], np.reshape(cts[1], (1,)),
                               *[np.ravel(c) for c in cts[2:]]])

    a_y = g[-1]
    a_t0 = np.zeros(())
    a_args = np.zeros(sum(sizes))
    times = []
    for i in range(n_t - 1, 0, -1):
        here = np.sum(_array(func(yt[i], t[i], *args)) * g[i])
        times.append(here)
        a_t0 = a_t0 - here
        state = np.concatenate([yt[i], a_y, np.reshape(a_t0, (1,)), a_args])
        span = np.stack([t[i], t[i - 1]])
        back = bind(odeint_p, (state, span, *args), {"func": augmented, "options": options})
        end = back[1]
        a_y, a_t0, a_args = end[d:2 * d] + g[i - 1], end[2 * d], end[2 * d + 1:]
    times.append(a_t0)
    cts = [a_y, np.stack(times[::-1]), *split_args(a_args)]
    return [c if np.result_type(c) == np.result_type(x) else c.astype(np.result_type(x))
            for c, x in zip(cts, (y0, t, *args))]


def _sensitivity(primals: list, tangents: list, func: Callable, options: tuple) -> tuple:
    from pycograd.transforms.jvp import jvp

    y0, t, *args = primals
    ty0, tt, *targs = [_zeros(p) if tn is None else tn for p, tn in zip(primals, tangents)]
    d, k = np.shape(y0)[0], len(args)
    params = {"func": func, "options": options}
    yt = bind(odeint_p, (y0, t, *args), params)

    def augmented(state: Any, time: Any, *both: Any) -> Any:
        fargs, fts = both[:k], both[k:]
        y, s = state[:d], state[d:]
        dy, ds = jvp(lambda y, *fa: func(y, time, *fa), (y, *fargs), (s, *fts))
        return np.concatenate([dy, ds])

    s0 = ty0 - _array(func(y0, t[0], *args)) * tt[0]
    both = bind(odeint_p, (np.concatenate([y0, s0]), t, *args, *targs),
                {"func": augmented, "options": options})
    rates = np.stack([_array(func(yt[i], t[i], *args)) for i in range(np.shape(t)[0])])
    return yt, both[:, d:] + rates * np.reshape(tt, (-1, 1))


def _batch(size: Any, vals: list, dims: list, func: Callable, options: tuple) -> tuple:
    if isinstance(size, Dim):  # a symbolic batch exists only under eval_shape: shapes only
        one = [v if dm is None else np.take(v, 0, axis=dm) for v, dm in zip(vals, dims)]
        (t, d), dtype = _shape(one, func, options)
        return full((size, t, d), 0.0, dtype), 0
    outs = []
    for b in range(size):
        one = [v if dm is None else np.take(v, b, axis=dm) for v, dm in zip(vals, dims)]
        outs.append(bind(odeint_p, one, {"func": func, "options": options}))
    return np.stack(outs), 0


def _shape(args: list, func: Callable, options: tuple) -> tuple:
    return (np.shape(args[1])[0], np.shape(args[0])[0]), np.dtype(np.float64)


odeint_p = primitive("odeint", _odeint, Joint(_adjoint), jvp=_sensitivity, batch=_batch,
                     shape=_shape, calls_user_code=True)
