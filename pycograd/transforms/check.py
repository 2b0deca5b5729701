"""``check_grads``: a function's derivatives against central finite differences.

Every derivative is checked through one real scalar, the pairing
``L(x) = Re sum(f(x) * W)`` with a fixed random ``W`` per output leaf (``W = 1`` when
``f`` already returns a real scalar, so the reported numbers are ``f``'s own gradient).
First order compares the gradient of ``L``, computed by each mode, with its central
differences element by element. Second order does the same for the directional
derivative ``L'(x) . v`` along a random ``v`` (a Hessian-vector product), computed by
each inner mode and differentiated by each outer mode: rev-over-rev, fwd-over-rev,
rev-over-fwd and fwd-over-fwd. Element by element rather than along one random
direction (JAX's ``check_grads``), so a failure points at the argument and the element
that is wrong, with both values; the cost is one evaluation pair per input element.

Complex inputs follow pycograd's convention (``df/dx - i df/dy``, see
``pycograd.ops.complex``): each element is stepped along the real and the imaginary axis.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pycograd.core.errors import ArgumentError, ArgumentTypeError, PycogradError
from pycograd.core.pytree import TreeDef, tree_flatten, tree_unflatten
from pycograd.numpy_api.transparent import routed
from pycograd.transforms.grad import grad
from pycograd.transforms.jvp import jvp

MODES = ("fwd", "rev")
_MODE_NAMES = {"fwd": "forward-mode", "rev": "reverse-mode"}


class GradCheckError(PycogradError, AssertionError):
    """A derivative that disagrees with finite differences; the message names the
    argument, the worst element, and the analytic and numeric values.

    It is also an ``AssertionError``, so a failed check fails a test the usual way.

    Examples:
        >>> import numpy as np
        >>> from pycograd import GradCheckError, check_grads, custom_vjp
        >>> @custom_vjp
        ... def f(x):
        ...     return np.sin(x)
        >>> _ = f.defvjp(lambda x: (np.sin(x), x), lambda x, g: (2 * g * np.cos(x),))
        >>> try:
        ...     check_grads(lambda x: np.sum(f(x)), (np.ones(2),), order=1, modes=("rev",))
        ... except GradCheckError:
        ...     print("caught")
        caught
    """


def default_step(x: np.ndarray) -> np.ndarray:
    """The central-difference step per element: ``eps_machine ** (1/3) * max(1, |x|)``,
    which balances truncation against rounding for the dtype of ``x``."""
    return np.finfo(x.dtype).eps ** (1 / 3) * np.maximum(1.0, np.abs(x)).astype(np.float64)


def default_rtol(dtypes: Sequence[np.dtype]) -> float:
    """The relative tolerance for the least precise of ``dtypes``: 1e-5 in double
    precision, 2e-3 in single, 5e-2 below (float16, bfloat16)."""
    eps = max((float(np.finfo(d).eps) for d in dtypes), default=float(np.finfo(float).eps))
    return 1e-5 if eps < 1e-15 else 2e-3 if eps < 1e-6 else 5e-2


def numerical_grad(f: Callable, args: Sequence[np.ndarray], eps: float | None = None) -> list:
    """d f(*args) / d args[i] for a real scalar ``f``, one central difference per element.

    The step actually taken (``x +- h`` rounded to the input dtype) is the denominator, so
    inputs on a float32 grid stay exact; ``eps=None`` takes ``default_step``. A complex
    input ``z = x + iy`` is stepped along both axes and gets ``df/dx - i df/dy``.
    """
    grads = []
    for i, x in enumerate(args):
        x = np.asarray(x)
        steps = default_step(x) if eps is None else np.broadcast_to(eps, x.shape)
        g = np.zeros(x.shape, np.result_type(x, np.float64))
        for j in range(x.size):
            h = steps.reshape(-1)[j]
            for unit in (1, 1j) if np.iscomplexobj(x) else (1,):
                hi, lo = x.copy(), x.copy()
                hi.reshape(-1)[j] += h * unit
                lo.reshape(-1)[j] -= h * unit
                step = ((hi.reshape(-1)[j] - lo.reshape(-1)[j]) / unit).real
                up = f(*args[:i], hi, *args[i + 1:])
                down = f(*args[:i], lo, *args[i + 1:])
                g.reshape(-1)[j] += np.conj(unit) * (float(up) - float(down)) / step
        grads.append(g)
    return grads


def check_grads(f: Callable, args: Sequence[Any], order: int = 2,
                modes: Sequence[str] = MODES, eps: float | None = None,
                rtol: float | None = None, atol: float | None = None, seed: int = 0) -> None:
    """Check ``f``'s derivatives at ``args`` against finite differences; raise
    ``GradCheckError`` naming the argument and worst element if one disagrees.

    ``args`` is the tuple of positional arguments (pytrees of arrays; integer leaves are
    held fixed). ``order`` 1 checks gradients, 2 also every pair of ``modes`` nested
    (Hessian-vector products). ``eps`` overrides the per-element step, ``rtol`` / ``atol``
    the tolerances (both default to ``default_rtol`` of the inputs' and outputs' dtypes);
    an element passes when ``|analytic - numeric| <= atol * (1 + max|numeric|) + rtol *
    |numeric|``. Works on anything ``grad`` and ``jvp`` work on, ``custom_vjp`` and
    ``custom_jvp`` rules included (pass ``modes=("rev",)`` for a custom_vjp function).

    Examples:
        >>> import numpy as np
        >>> from pycograd import check_grads
        >>> check_grads(lambda x, y: np.sum(np.sin(x) * y), (np.ones(3), 2.0))
    """
    if order not in (1, 2):
        raise ArgumentError(f"check_grads: order must be 1 or 2, got {order!r}")
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise ArgumentError(f"check_grads: modes must be a non-empty subset of {MODES}, got "
                         f"{tuple(modes)!r}")
    if not isinstance(args, (tuple, list)):
        raise ArgumentTypeError("check_grads(f, args): args must be a tuple with one entry per "
                        f"positional argument of f, got {type(args).__name__}; write (x,)")
    problem = _Problem(routed(f), tuple(args), seed)
    if not problem.xs:
        raise ArgumentError("check_grads: no argument has a floating-point or complex leaf "
                         "to differentiate")
    if rtol is None:
        rtol = default_rtol(problem.dtypes)
    atol = rtol if atol is None else atol
    L = problem.loss
    for mode in modes:
        analytic = _gradient(mode, L, problem.xs)
        numeric = numerical_grad(L, problem.xs, eps)
        problem.compare(analytic, numeric, rtol, atol, f"{_MODE_NAMES[mode]} gradient")
    if order == 2:
        rng = np.random.default_rng(seed + 1)
        v = [_random_like(rng, x) for x in problem.xs]
        for inner in modes:
            L2 = _directional(inner, L, v)
            numeric = numerical_grad(L2, problem.xs, eps)
            for outer in modes:
                analytic = _gradient(outer, L2, problem.xs)
                problem.compare(analytic, numeric, 10 * rtol, 10 * atol,
                                f"{outer}-over-{inner} second derivative (Hessian-vector "
                                "product along a random direction)")


class _Problem:
    """``f`` as a function of its differentiable leaves, their names, and ``L``."""

    def __init__(self, f: Callable, args: tuple, seed: int):
        self.f = f
        leaves, self.treedef = tree_flatten(args)
        names = _leaf_names(self.treedef, _arg_names(f, len(args)))
        self.leaves = [np.asarray(x) if isinstance(x, (float, complex)) else x for x in leaves]
        self.where = [k for k, x in enumerate(self.leaves) if _differentiable(x)]
        self.names = [names[k] for k in self.where]
        self.xs = [np.asarray(self.leaves[k]) for k in self.where]
        out = _outputs(self.call(*self.xs))
        rng = np.random.default_rng(seed)
        real_scalar = len(out) == 1 and np.ndim(out[0]) == 0 and not np.iscomplexobj(out[0])
        self.weights = [None if not _differentiable(o) else np.ones(()) if real_scalar
                        else _random_like(rng, np.asarray(o)) for o in out]
        self.dtypes = [x.dtype for x in self.xs] + [np.asarray(o).dtype for o in out
                                                     if _differentiable(o)]
        self.paired = ("f itself (a real scalar)" if real_scalar
                       else "Re sum(f(x) * W) for a fixed random W")

    def call(self, *xs: Any) -> Any:
        leaves = list(self.leaves)
        for k, x in zip(self.where, xs):
            leaves[k] = x
        return self.f(*tree_unflatten(self.treedef, leaves))

    def loss(self, *xs: Any) -> Any:
        total = 0.0
        for o, w in zip(_outputs(self.call(*xs)), self.weights):
            if w is not None:
                total = total + np.real(np.sum(o * w))
        return total

    def compare(self, analytic: list, numeric: list, rtol: float, atol: float,
                what: str) -> None:
        fails = []
        for name, x, a, n in zip(self.names, self.xs, analytic, numeric):
            a = np.asarray(a, np.result_type(a, np.float64)).reshape(np.shape(n))
            err = np.abs(a - n)
            tol = atol * (1.0 + np.max(np.abs(n), initial=0.0)) + rtol * np.abs(n)
            wrong = ~(err <= tol)
            if wrong.any():
                ratio = np.where(wrong, err / np.maximum(tol, 1e-300), -1.0)
                ratio[np.isnan(err)] = np.inf
                j = np.unravel_index(int(np.argmax(ratio)), np.shape(n))
                fails.append((float(ratio[j]), name, x, j, a[j], n[j], err[j], tol[j],
                              int(wrong.sum())))
        if fails:
            raise GradCheckError(self.report(fails, what))

    def report(self, fails: list, what: str) -> str:
        fails.sort(key=lambda t: -t[0])
        _, name, x, j, a, n, err, tol, count = fails[0]
        idx = "" if x.ndim == 0 else f"[{', '.join(str(int(i)) for i in j)}]"
        lines = [
            f"check_grads: the {what} of {_fname(self.f)} disagrees with finite differences",
            f"  argument:      {name} (shape {x.shape}, {x.dtype})",
            f"  worst element: {name}{idx}",
            f"      analytic   {_num(a)}",
            f"      numeric    {_num(n)}",
            f"      |diff|     {err:.3g} > tolerance {tol:.3g}",
            f"  {count} of {x.size} element(s) of {name} disagree",
        ]
        for _, name2, x2, _, _, _, _, _, count2 in fails[1:]:
            lines.append(f"  also {count2} of {x2.size} element(s) of {name2}")
        others = [nm for nm in self.names if nm not in {f[1] for f in fails}]
        if others:
            lines.append(f"  agree: {', '.join(others)}")
        lines.append(f"  (differentiated: {self.paired})")
        return "\n".join(lines)


def _gradient(mode: str, L: Callable, xs: list) -> list:
    """The gradient of the real scalar ``L`` at ``xs``, by reverse mode or by one
    forward pass per element (real and imaginary unit for a complex element)."""
    if mode == "rev":
        return list(grad(L, argnums=tuple(range(len(xs))))(*xs))
    zeros = [np.zeros_like(x) for x in xs]
    out = []
    for k, x in enumerate(xs):
        g = np.zeros(x.shape, np.result_type(x, np.float64))
        for j in range(x.size):
            for unit in (1, 1j) if np.iscomplexobj(x) else (1,):
                t = np.zeros_like(x)
                t.reshape(-1)[j] = unit
                tangents = zeros[:k] + [t] + zeros[k + 1:]
                dot = np.asarray(jvp(L, tuple(xs), tuple(tangents))[1])
                g.reshape(-1)[j] += np.conj(unit) * np.real(dot)
        out.append(g)
    return out


def _directional(mode: str, L: Callable, v: list) -> Callable:
    """``x -> L'(x) . v``, computed by ``mode``; the pairing ``Re sum(g * v)`` of a
    gradient in pycograd's complex convention is the directional derivative."""
    if mode == "rev":
        g = grad(L, argnums=tuple(range(len(v))))

        def along(*xs: Any) -> Any:
            total = 0.0
            for gi, vi in zip(g(*xs), v):
                total = total + np.real(np.sum(gi * vi))
            return total
        return along
    return lambda *xs: np.real(jvp(L, xs, tuple(v))[1])


def _random_like(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    r = rng.standard_normal(np.shape(x))
    if np.iscomplexobj(x):
        r = r + 1j * rng.standard_normal(np.shape(x))
    return r.astype(x.dtype) if np.result_type(x).kind in "fc" else r


def _differentiable(x: Any) -> bool:
    return np.result_type(x).kind in "fc"


def _outputs(out: Any) -> list:
    return tree_flatten(out)[0]


def _arg_names(f: Callable, n: int) -> list[str]:
    """The names of ``f``'s first ``n`` positional parameters (``arg<i>`` past them)."""
    try:
        params = [p for p in inspect.signature(f).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    return [params[i].name if i < len(params) else f"arg{i}" for i in range(n)]


def _leaf_names(td: TreeDef, arg_names: list[str]) -> list[str]:
    """``w['b1']``-style names of the leaves of the argument tuple ``td``."""
    out: list[str] = []
    for name, child in zip(arg_names, td.children):
        _walk(child, name, out)
    return out


def _walk(td: TreeDef, prefix: str, out: list) -> None:
    if td.kind is None:
        out.append(prefix)
        return
    keys = td.aux[0] if td.kind is dict else None
    for i, child in enumerate(td.children):
        _walk(child, f"{prefix}[{keys[i]!r}]" if keys is not None else f"{prefix}[{i}]", out)


def _fname(f: Callable) -> str:
    name = getattr(f, "__qualname__", None) or type(f).__name__
    return "f" if name == "<lambda>" else f"{name}"


def _num(v: Any) -> str:
    return f"{v:+.10g}" if not np.iscomplexobj(v) else f"{complex(v):.10g}"
