"""Scalar ``math.*`` and ``np.array([...])`` of traced values in DSL cells and scripts.

pycograd's transparent layer routes these calls in a differentiated function by
recompiling the function from its source. Code in a DSL cell (or a file run by
``python -m pycograd run``) is already compiled by pyccolo from DSL source, which plain
Python cannot recompile, so instead this pyccolo tracer weaves a ``before_call`` event into
the cell's own call sites whose callee is named like a routed function (``math.sin``,
``sin``, ``np.array`` ...), and swaps the callee for the transparent layer's dispatcher,
which calls the original unless an argument is traced. A call of a user helper by name
(``feats(v)``, imported from a plain module) gets the helper's routed copy, as the
transparent layer gives the helpers of the functions it recompiles. Loads of ``np.r_`` /
``np.c_``
(subscripted, not called) are swapped the same way, for the transparent layer's
concatenator (pycograd's ``r_`` / ``c_`` when a piece is traced, numpy's otherwise).
"""

from __future__ import annotations

import ast
import builtins
from types import FunctionType
from typing import Any

import pyccolo as pyc

from pycograd.routing.constructors import CONSTRUCTOR_NAMES
from pycograd.routing.scalar_math import MATH_NAMES
from pycograd.routing.transparent import LOAD_NAMES, ROUTES, load_replacement, routed

_NAMES = MATH_NAMES | CONSTRUCTOR_NAMES


_BUILTINS = frozenset(dir(builtins))


def _may_route(node: ast.AST) -> bool:
    """Call sites named like a routed callee (``math.sin``, ``np.array``), and calls of a
    bare name that may be a user helper (``feats(v)``; builtins are not). A helper reached
    as a module attribute (``mod.helper(x)``) is not: weaving every attribute call (each
    ``weights.step``, ``np.tanh``) cost DSL steps ~15%."""
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    if isinstance(f, ast.Name):
        return f.id in _NAMES or f.id not in _BUILTINS
    return isinstance(f, ast.Attribute) and f.attr in _NAMES


def _may_load(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr in LOAD_NAMES
    return isinstance(node, ast.Name) and node.id in LOAD_NAMES


class CellRoutingTracer(pyc.BaseTracer):
    """Swaps routed callees at the call sites of DSL code (see the module docstring)."""

    global_guards_enabled = False
    multiple_threads_allowed = True
    allow_reentrant_events = True

    @pyc.register_handler(pyc.before_call, when=_may_route, static=True, reentrant=True)
    def swap_callee(self, ret: Any, *_: Any, **__: Any) -> Any:
        if type(ret) is FunctionType:  # a user helper: its routed copy when it needs one
            return routed(ret)
        try:
            return ROUTES.get(ret, ret)
        except TypeError:  # an unhashable callee
            return ret

    @pyc.register_handler((pyc.after_attribute_load, pyc.load_name), when=_may_load,
                          static=True, reentrant=True)
    def swap_load(self, ret: Any, *_: Any, **__: Any) -> Any:
        r = load_replacement(ret)  # not `or`: a concatenator has len 0, so it is falsy
        return ret if r is None else r
