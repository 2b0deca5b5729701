"""Scalar ``math.*`` and ``np.array([...])`` of traced values in DSL cells and scripts.

pycograd's transparent layer routes these calls in a differentiated function by
recompiling the function from its source. Code in a DSL cell (or a file run by
``python -m pycograd run``) is already compiled by pyccolo from DSL source, which plain
Python cannot recompile, so instead this pyccolo tracer weaves a ``before_call`` event into
the cell's own call sites whose callee is named like a routed function (``math.sin``,
``sin``, ``np.array`` ...), and swaps the callee for the transparent layer's dispatcher,
which calls the original unless an argument is traced.
"""

from __future__ import annotations

import ast
from typing import Any

import pyccolo as pyc

from pycograd.numpy_api.constructors import CONSTRUCTOR_NAMES
from pycograd.numpy_api.scalar_math import MATH_NAMES
from pycograd.numpy_api.transparent import ROUTES

_NAMES = MATH_NAMES | CONSTRUCTOR_NAMES


def _may_route(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
    return name in _NAMES


class CellRoutingTracer(pyc.BaseTracer):
    """Swaps routed callees at the call sites of DSL code (see the module docstring)."""

    global_guards_enabled = False
    multiple_threads_allowed = True
    allow_reentrant_events = True

    @pyc.register_handler(pyc.before_call, when=_may_route, static=True, reentrant=True)
    def swap_callee(self, ret: Any, *_: Any, **__: Any) -> Any:
        try:
            return ROUTES.get(ret, ret)
        except TypeError:  # an unhashable callee
            return ret
