"""Keep ambient weights late-bound in pipescript's lambdas.

pipescript turns a pipeline stage such as ``$ @ w1 + b1`` into a lambda. At notebook top
level (where a frame's locals are its globals) it captures every free name the stage reads
as a default argument, ``lambda _0, w1=w1, b1=b1: ...``, so the lambda holds the arrays
that existed when it was made. Ambient weights must instead be read when the lambda runs:
``weights.grad`` binds ``w1`` to a traced value in the namespace for that call only. This
module wraps pipescript's ``create_placeholder_lambda`` so that names registered as ambient
weights of the frame's namespace are left free (read as globals at call time); every other
name keeps pipescript's capture. Registration is done by ``pycograd.dsl.block``.
"""

from __future__ import annotations

import ast
from types import FrameType
from typing import Any

_WEIGHT_NAMES: dict[int, set[str]] = {}
"""``id(namespace)`` -> the ambient weight names bound in it by a ``params{}`` block."""


def register(namespace: dict, names: set[str]) -> None:
    """Leave ``names`` late-bound in pipelines created in ``namespace`` from now on."""
    _WEIGHT_NAMES.setdefault(id(namespace), set()).update(names)


def unregister(namespace: dict, names: set[str]) -> None:
    _WEIGHT_NAMES.get(id(namespace), set()).difference_update(names)


def weight_names(namespace: dict) -> set[str]:
    return _WEIGHT_NAMES.get(id(namespace), set())


def _drop_defaults(lam: ast.Lambda, drop: set[str]) -> None:
    """Remove the ``name=name`` parameters in ``drop`` from ``lam`` (positional or
    keyword-only, as pipescript emits them after a ``*rest`` parameter)."""
    a = lam.args
    n_plain = len(a.args) - len(a.defaults)
    kept = [(p, d) for p, d in zip(a.args[n_plain:], a.defaults) if p.arg not in drop]
    a.args = a.args[:n_plain] + [p for p, _ in kept]
    a.defaults = [d for _, d in kept]
    kw = [(p, d) for p, d in zip(a.kwonlyargs, a.kw_defaults) if p.arg not in drop]
    a.kwonlyargs = [p for p, _ in kw]
    a.kw_defaults = [d for _, d in kw]


_ORIGINAL: Any = None


def install() -> None:
    """Wrap ``SingletonArgCounterMixin.create_placeholder_lambda`` (once)."""
    global _ORIGINAL
    from pipescript.analysis.placeholders import SingletonArgCounterMixin

    if _ORIGINAL is not None:
        return
    _ORIGINAL = SingletonArgCounterMixin.__dict__["create_placeholder_lambda"].__func__

    def create_placeholder_lambda(cls: type, placeholder_names: list[str], orig_ctr: int,
                                  lambda_body: ast.expr, frame: FrameType,
                                  created_starred_arg: bool = False) -> tuple:
        lam, defaults, body = _ORIGINAL(cls, placeholder_names, orig_ctr, lambda_body, frame,
                                        created_starred_arg)
        # Only at top level: in a function a default holds a local of the same name.
        drop = defaults & weight_names(frame.f_globals) if frame.f_locals is frame.f_globals \
            else set()
        if drop:
            _drop_defaults(lam, drop)
            defaults = defaults - drop
        return lam, defaults, body

    SingletonArgCounterMixin.create_placeholder_lambda = classmethod(create_placeholder_lambda)
