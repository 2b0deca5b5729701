"""The ``params{ ... }`` block: its assignments become a ``ParamDict`` whose weights are
ambient bare names in the namespace the block runs in.

pipescript runs the block (a namespace-block macro: one assignment per line or
``;``-separated, free names visible, ``_``-prefixed names local) and hands its assignments
to ``build``. ``build`` makes the ``ParamDict`` (``frozen[...]``, ``tied(...)`` /
``tied[...]`` and ``buffer[...]`` entries included), binds the names in the caller's
globals for good (``bind_globals``: they hold the arrays, which training updates in place,
and the traced values inside ``weights.grad``), and keeps pipelines made later in that
namespace reading them late (``capture``).
"""

from __future__ import annotations

import sys
import types
from typing import Any

from pycograd.dsl import capture
from pycograd.dsl.errors import NoUserFrameError, WeightShadowError
from pycograd.params import ParamDict

_MACHINERY = ("pyccolo", "pipescript", "pycograd")
_LIVE: dict[int, list[ParamDict]] = {}
"""``id(namespace)`` -> the ParamDicts built by ``params{}`` blocks that are bound there."""


def caller_namespace(depth: int = 1) -> dict:
    """The globals of the innermost frame that is not pyccolo / pipescript / pycograd
    machinery: the notebook (or script) that wrote the block."""
    frame: types.FrameType | None = sys._getframe(depth)
    while frame is not None:
        name = frame.f_globals.get("__name__") or ""
        if name.partition(".")[0] not in _MACHINERY:
            return frame.f_globals
        frame = frame.f_back
    raise NoUserFrameError(
        "params{...}: every frame on the stack belongs to pycograd, pipescript or pyccolo, so "
        "there is no namespace to bind the block's weights in; write the block in a notebook "
        "cell or in a script run by `python -m pycograd run`")


def _check_shadowing(ns: dict, names: list[str]) -> None:
    for name in names:
        old = ns.get(name)
        if isinstance(old, types.ModuleType) or (callable(old) and not isinstance(old, ParamDict)):
            what = type(old).__name__
            raise WeightShadowError(
                f"params{{...}}: weight {name!r} would shadow the {what} {name!r} already "
                f"defined in this namespace; rename the weight (e.g. {name}_w)")


def _names(weights: ParamDict) -> set[str]:
    """The bare names a ParamDict binds (a nested ``enc.w`` binds the group ``enc``)."""
    return {name.partition(".")[0] for name in weights}


def bind(weights: ParamDict, ns: dict) -> ParamDict:
    """Bind ``weights`` as ambient names in ``ns``, replacing earlier blocks' weights that
    share a name (re-running a cell rebuilds its weights)."""
    names = _names(weights)
    live = _LIVE.setdefault(id(ns), [])
    for old in [pd for pd in live if names & _names(pd)]:
        old_names = _names(old)
        old.unbind_globals(ns)
        capture.unregister(ns, old_names)
        live.remove(old)
    weights.bind_globals(ns)
    capture.register(ns, names)
    live.append(weights)
    return weights


def live(ns: dict) -> list[ParamDict]:
    """The ParamDicts that ``params{}`` blocks have bound in ``ns``."""
    return list(_LIVE.get(id(ns), ()))


def build(namespace: dict[str, Any]) -> ParamDict:
    """What ``params{ ... }`` evaluates to (pipescript's namespace-macro builder)."""
    ns = caller_namespace(2)
    weights = ParamDict(namespace)
    _check_shadowing(ns, sorted(_names(weights)))
    return bind(weights, ns)


def params(entries: dict[str, Any] | None = None, /, **kwargs: Any) -> ParamDict:
    """Call form, ``params(w=..., b=...)``: the same as the block, for one-liners."""
    weights = ParamDict(entries, **kwargs)
    ns = caller_namespace(2)
    _check_shadowing(ns, sorted(_names(weights)))
    return bind(weights, ns)
