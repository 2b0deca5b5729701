"""``debug_nans``: stop at the first primitive that produces a NaN or an Inf, and say where.

Off, it costs nothing: no check sits on the eager path. Turning it on swaps two
functions for checking versions, and turning it off swaps them back:

* ``apply_impl`` (where every primitive finally computes on concrete arrays, under any
  transform) checks each result; a NaN from non-NaN inputs, or an Inf from finite
  inputs, raises ``FloatingPointError`` naming the primitive, the user's source line
  (the first frame outside pycograd and numpy), and each input's shape, range and
  non-finite positions;
* ``ReverseTrace.process`` (and ``node``, through which ``custom_vjp`` / ``custom_jvp``
  functions enter the tape, their results checked like a primitive's) records, on each
  tape node, the user's line that created it, and wraps the node's VJP so that a
  cotangent which turns non-finite in the backward pass raises naming *which forward op's
  VJP* did it, and that op's line.

Ops inside a VJP rule that run as primitives (higher-order gradients) are reported as
part of that backward step. The switch is process-wide, like ``np.seterr``.
``PYCOGRAD_DEBUG_NANS=1`` in the environment turns it on at import.
"""

from __future__ import annotations

import linecache
import os
import sys
from types import FrameType, TracebackType
from typing import Any

import numpy as np

from pycograd.core import trace as _trace_mod
from pycograd.core import var as _var_mod
from pycograd.core.dtypes import is_float
from pycograd.core.errors import NonFiniteError
from pycograd.core.primitive import UNSAVED, Joint, Primitive, Shaped
from pycograd.core.var import PRIM, ReverseTrace, Var

_PLAIN_IMPL = _trace_mod.apply_impl
_PLAIN_PROCESS = ReverseTrace.process
_PLAIN_NODE = ReverseTrace.node
_ON = [False]
_IN_VJP: list[tuple[str, int, tuple | None]] = []  # (op name, argument, creation site) stack


def _library_dirs() -> tuple[str, ...]:
    from pycograd.core.tracebacks import PACKAGE_DIR

    dirs = [PACKAGE_DIR.rstrip(os.sep), os.path.dirname(np.__file__),
            os.path.dirname(os.__file__) + os.sep + "contextlib.py"]
    for name in ("scipy", "pyccolo"):
        mod = sys.modules.get(name)
        if mod is not None and getattr(mod, "__file__", None):
            dirs.append(os.path.dirname(mod.__file__))
    return tuple(dirs)


_SKIP: tuple[str, ...] = ()


def user_site(frame: FrameType | None = None) -> tuple[str, int, str] | None:
    """``(file, line, function)`` of the innermost frame outside pycograd, numpy and the
    routing layer: the user's line that called the op."""
    f = sys._getframe(1) if frame is None else frame
    while f is not None and f.f_code.co_filename.startswith(_SKIP):
        f = f.f_back
    if f is None:
        return None
    return f.f_code.co_filename, f.f_lineno, f.f_code.co_name


def _site_text(site: tuple | None) -> str:
    if site is None:
        return "(no frame outside pycograd)"
    path, line, func = site
    code = linecache.getline(path, line).strip()
    return f"{path}:{line} in {func}" + (f"\n      {code}" if code else "")


def _concrete(x: Any) -> np.ndarray | None:
    """``x`` as a float/complex numpy array, or None for anything not worth checking."""
    if isinstance(x, (np.ndarray, np.generic)) and is_float(x.dtype):
        return x
    if isinstance(x, (float, complex)):
        return np.asarray(x)
    return None


def _state(x: Any) -> tuple[bool, bool]:
    """``(has NaN, has Inf)`` of ``x``; both False for values that are not float arrays."""
    a = _concrete(x)
    if a is None or np.isfinite(a).all():
        return False, False
    return bool(np.isnan(a).any()), bool(np.isinf(a).any())


def _fresh(out_state: tuple[bool, bool], ins: list[tuple[bool, bool]]) -> str | None:
    """What ``out`` newly holds: "NaN" when no input had one, "Inf" when every input was
    finite; None when its non-finite values came in with the inputs."""
    nan, inf = out_state
    if nan and not any(n for n, _ in ins):
        return "NaN"
    if inf and not any(n or i for n, i in ins):
        return "Inf"
    return None


def summary(x: Any, limit: int = 5) -> str:
    """One line about an array: shape, dtype, range, and where its NaNs/Infs are."""
    if x is UNSAVED or x.__class__ is Shaped:  # the lean tape did not keep this residual
        return "not kept by the tape" + (f" (shape {x.shape} {x.dtype})" if x is not UNSAVED
                                         else "")
    a = _concrete(x)
    if a is None:
        return f"{type(x).__name__} {np.shape(x)}" if hasattr(x, "shape") else repr(x)[:60]
    head = f"shape {a.shape} {a.dtype}"
    bad = ~np.isfinite(a)
    finite = a[~bad]
    if finite.size and a.dtype.kind == "f":
        head += f", finite values in [{finite.min():.4g}, {finite.max():.4g}]"
    if not bad.any():
        return head + ", all finite"
    parts = []
    for label, mask in (("NaN", np.isnan(a)), ("Inf", np.isinf(a))):
        if mask.any():
            where = np.argwhere(mask)[:limit]
            pos = ", ".join(str(tuple(int(i) for i in w)) if a.ndim else "()" for w in where)
            more = " ..." if mask.sum() > limit else ""
            parts.append(f"{label} at {pos}{more} ({int(mask.sum())} of {a.size})")
    return head + "; " + "; ".join(parts)


def _checked_impl(prim: Primitive, args: Any, params: dict) -> Any:
    with np.errstate(all="ignore"):  # what numpy would warn about is raised below instead
        out = _PLAIN_IMPL(prim, args, params)
    outs = out if isinstance(out, tuple) else (out,)
    states = [_state(o) for o in outs]
    if any(n or i for n, i in states):
        ins = [_state(a) for a in args]
        for k, st in enumerate(states):
            what = _fresh(st, ins)
            if what is not None:
                raise NonFiniteError(_forward_report(prim, args, outs, k, what))
    return out


def _forward_report(prim: Any, args: Any, outs: tuple, k: int, what: str) -> str:
    if _IN_VJP:
        name, arg, site = _IN_VJP[-1]
        where = (f"inside the backward pass of `{name}` (its VJP for argument {arg}), "
                 f"whose forward op was created at {_site_text(site)}")
    else:
        where = f"in the forward pass, at {_site_text(user_site())}"
    lines = [f"debug_nans: `{prim.name}` produced {what} {where}"]
    lines += [f"  input {i}: {summary(a)}" for i, a in enumerate(args)]
    label = "output" if len(outs) == 1 else f"output {k}"
    lines.append(f"  {label}: {summary(outs[k])}")
    return "\n".join(lines)


class _Watched:
    """A tape node's primitive with its creation site, whose VJPs check their results."""

    __slots__ = ("prim", "site", "vjps", "label")

    def __init__(self, prim: Primitive, site: tuple | None, label: str | None = None):
        self.prim = prim
        self.site = site
        self.label = label or prim.name
        vjps = prim.vjps
        self.vjps = Joint(self._joint) if vjps.__class__ is Joint else _WatchedVJPs(self)

    @property
    def name(self) -> str:
        return self.prim.name

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.prim, attr)

    def _joint(self, wanted: tuple, g: Any, ans: Any, *args: Any, **params: Any) -> tuple:
        cts = self._run(self.prim.vjps.rule, wanted[0] if len(wanted) == 1 else wanted,
                        wanted, g, ans, *args, **params)
        for i in wanted:
            self._check(i, cts[i], g, ans, args)
        return cts

    def _run(self, rule: Any, arg: Any, *call: Any, **params: Any) -> Any:
        _IN_VJP.append((self.label, arg, self.site))
        try:
            with np.errstate(all="ignore"):
                return rule(*call, **params)
        finally:
            _IN_VJP.pop()

    def _check(self, i: int, ct: Any, g: Any, ans: Any, args: tuple) -> None:
        st = _state(ct)
        if not (st[0] or st[1]):
            return
        what = _fresh(st, [_state(g), _state(ans), *(_state(a) for a in args)])
        if what is None:
            return
        lines = [f"debug_nans: the backward pass of `{self.label}` (its VJP for argument "
                 f"{i}) produced {what}",
                 f"  that `{self.label}` was created at {_site_text(self.site)}",
                 f"  incoming cotangent: {summary(g)}"]
        lines += [f"  forward input {k}: {summary(a)}" for k, a in enumerate(args)]
        lines.append(f"  cotangent for input {i}: {summary(ct)}")
        raise NonFiniteError("\n".join(lines))


class _WatchedVJPs:
    """``vjps[i]`` of a watched node: the primitive's rule, run and checked."""

    __slots__ = ("node",)

    def __init__(self, node: _Watched):
        self.node = node

    def __getitem__(self, i: int) -> Any:
        rule = self.node.prim.vjps[i]
        if rule is None:
            return None
        node = self.node

        def checked(g: Any, ans: Any, *args: Any, **params: Any) -> Any:
            ct = node._run(rule, i, g, ans, *args, **params)
            node._check(i, ct, g, ans, args)
            return ct
        return checked


def _checked_process(self: ReverseTrace, prim: Primitive, args: tuple, params: dict) -> Any:
    out = _PLAIN_PROCESS(self, prim, args, params)
    if out.__class__ is Var and out._node[PRIM] is prim:
        out._node[PRIM] = _Watched(prim, user_site())
    return out


def _checked_node(self: ReverseTrace, prim: Primitive, out: Any, vals: list, params: dict,
                  parents: list) -> Any:
    label = prim.name
    outs = out if isinstance(out, tuple) else (out,)
    ins = [_state(a) for a in vals]
    for k, o in enumerate(outs):
        what = _fresh(_state(o), ins)
        if what is not None:
            raise NonFiniteError(_forward_report(_Named(label), vals, outs, k, what))
    node = _PLAIN_NODE(self, prim, out, vals, params, parents)
    if node.__class__ is Var and node._node[PRIM] is prim:
        node._node[PRIM] = _Watched(prim, user_site(), label)
    return node


class _Named:
    """A stand-in with just the ``name`` a report prints."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


def _switch(on: bool) -> None:
    global _SKIP
    if on and not _SKIP:
        _SKIP = _library_dirs()
    impl = _checked_impl if on else _PLAIN_IMPL
    _trace_mod.apply_impl = impl
    _var_mod.apply_impl = impl
    ReverseTrace.process = _checked_process if on else _PLAIN_PROCESS
    ReverseTrace.node = _checked_node if on else _PLAIN_NODE
    _ON[0] = on


class debug_nans:  # lower case: it is called like a function, debug_nans(True)
    """Raise ``FloatingPointError`` at the first primitive that produces a NaN or Inf,
    naming the op, forward or backward (and whose VJP), the user's line, and the inputs.

    ``debug_nans(True)`` / ``debug_nans(False)`` switch it for the process;
    ``with debug_nans():`` switches it on for a block and restores the previous state;
    ``PYCOGRAD_DEBUG_NANS=1`` turns it on at import. Off, it costs nothing.

    >>> import numpy as np, pycograd
    >>> with pycograd.debug_nans():
    ...     pycograd.grad(lambda x: np.sum(np.log(x)))(np.array([1.0, 0.0]))
    Traceback (most recent call last):
    pycograd.core.errors.NonFiniteError: debug_nans: `log` produced Inf in the forward pass, at ...
    """

    def __init__(self, enable: bool = True):
        self._before = _ON[0]
        _switch(bool(enable))

    def __enter__(self) -> debug_nans:
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        _switch(self._before)

    def __bool__(self) -> bool:
        return _ON[0]

    def __repr__(self) -> str:
        return f"debug_nans({'on' if _ON[0] else 'off'})"


def debugging_nans() -> bool:
    """Whether ``debug_nans`` is on."""
    return _ON[0]


if os.environ.get("PYCOGRAD_DEBUG_NANS", "") not in ("", "0"):
    _switch(True)
