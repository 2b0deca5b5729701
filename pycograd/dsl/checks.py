"""Static checks of each cell while the DSL is loaded, reported at the offending line.

An AST transformer (run before pyccolo's instrumentation, on each IPython cell and on a
file run by ``python -m pycograd run``) looks at the code's
top-level statements (those outside ``def`` and ``class``) and replaces a
statement that is certain to go wrong by one that raises a ``DSLError`` at the same line:

- a name that is neither defined nor assigned anywhere in the cell, read in the body of a
  ``with params{...} as weights:`` block: a weight referenced but not defined (with the
  block's weights and a close match in the message);
- an assignment (``=``, ``for``, ``with ... as``, ``import ... as``, ``def``) to a name that
  currently holds an ambient weight: it would shadow the weight, and ``weights.grad``
  would keep rebinding the name. In-place updates (``w1 -= ...``) are allowed.
"""

from __future__ import annotations

import ast
import builtins
import difflib
from collections.abc import Callable, Iterator
from typing import Any

from pycograd.dsl import block
from pycograd.dsl.errors import UndefinedWeightError, WeightShadowError

_RAISE = "__pycograd_dsl_raise__"


def _raise(kind: str, message: str) -> None:
    """What a replaced statement calls: raise the DSL error it stands for."""
    __tracebackhide__ = True
    raise {"shadow": WeightShadowError, "undefined": UndefinedWeightError}[kind](message)


def _top_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements that run at the cell's top level (into if / for / while / with / try)."""
    for stmt in body:
        yield stmt
        for field in ("body", "orelse", "finalbody"):
            inner = getattr(stmt, field, None)
            if isinstance(inner, list) and not isinstance(
                    stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                yield from _top_level(inner)
        for handler in getattr(stmt, "handlers", ()):
            yield from _top_level(handler.body)


def _bound_names(tree: ast.AST) -> set[str]:
    """Every name the cell binds anywhere (assignments, defs, imports, parameters...)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).partition(".")[0])
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def _star_import(tree: ast.AST) -> bool:
    """``from m import *`` binds names no static check can know."""
    return any(isinstance(n, ast.ImportFrom) and any(a.name == "*" for a in n.names)
               for n in ast.walk(tree))


def _stores(stmt: ast.stmt) -> list[str]:
    """Names a statement (not its nested statements) rebinds."""
    targets: list[ast.AST] = []
    if isinstance(stmt, ast.Assign):
        targets = list(stmt.targets)
    elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
        targets = [stmt.target]
    elif isinstance(stmt, (ast.For, ast.AsyncFor)):
        targets = [stmt.target]
    elif isinstance(stmt, (ast.With, ast.AsyncWith)):
        targets = [i.optional_vars for i in stmt.items if i.optional_vars is not None]
    elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [stmt.name]
    elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return [(a.asname or a.name).partition(".")[0] for a in stmt.names]
    out = []
    for t in targets:
        out += [n.id for n in ast.walk(t) if isinstance(n, ast.Name)]
    return out


def _top_level_loads(stmt: ast.stmt) -> Iterator[ast.Name]:
    """Names a statement's own expressions read (pipelines lowered to lambdas included;
    their parameters and comprehension variables are among the cell's bound names)."""
    todo = [c for c in ast.iter_child_nodes(stmt) if not isinstance(c, ast.stmt)]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            yield node
        todo.extend(ast.iter_child_nodes(node))


def _params_block_names(with_stmt: ast.With) -> list[str] | None:
    """The weight names of ``with params{...} as w:`` (pipescript's block marker), else
    ``None``."""
    from pipescript.tracers.brace_block_tracer import BraceBlockTracer
    from pipescript.tracers.macro_tracer import _block_assigned_names, block_marker_id

    for item in with_stmt.items:
        e = item.context_expr
        if isinstance(e, ast.Subscript) and isinstance(e.value, ast.Name) \
                and e.value.id == "params":
            n = block_marker_id(e)
            src = BraceBlockTracer.block_sources.get(n) if n is not None else None
            if src is None:
                return None
            try:
                from pipescript.tracers.macro_tracer import normalize_block_src

                return _block_assigned_names(ast.parse(normalize_block_src(src)).body)
            except SyntaxError:
                return None
    return None


def _replacement(stmt: ast.stmt, kind: str, message: str) -> ast.stmt:
    call = ast.Expr(ast.Call(ast.Name(_RAISE, ast.Load()),
                             [ast.Constant(kind), ast.Constant(message)], []))
    return ast.copy_location(ast.fix_missing_locations(ast.copy_location(call, stmt)), stmt)


class CellChecker(ast.NodeTransformer):
    """The AST transformer (see the module docstring) of IPython cells, and of a file run by
    ``python -m pycograd run``: ``namespace`` gives the globals the code will run in."""

    def __init__(self, namespace: Callable[[], dict], where: str = "notebook"):
        self.namespace = namespace
        self.where = where

    def _live_weights(self) -> dict[str, str]:
        """Names in the user namespace that hold a ``params{}`` weight -> the block's label."""
        ns = self.namespace()
        out = {}
        for pd in block.live(ns):
            for name in pd.keys():
                if "." not in name and ns.get(name) is pd[name]:
                    out[name] = ", ".join(pd.keys())
        return out

    def visit_Module(self, tree: ast.Module) -> ast.Module:
        try:
            self._check(tree)
        except Exception:  # a checker bug must never break the cell
            pass
        return tree

    def _check(self, tree: ast.Module) -> None:
        live = self._live_weights()
        bound = _bound_names(tree)
        ns = self.namespace()
        replace: dict[int, ast.stmt] = {}
        for stmt in _top_level(tree.body):
            for name in _stores(stmt):
                if name in live and not isinstance(stmt, ast.AugAssign):
                    replace[id(stmt)] = _replacement(stmt, "shadow", (
                        f"line {stmt.lineno}: assigning to {name!r} would shadow the weight "
                        f"{name!r} (a params{{...}} weight; the block has {live[name]}); "
                        f"update it in place with weights.assign({name!r}, value) or "
                        f"{name}[...] = value, pick another name, or first release the "
                        f"block's names with weights.unbind_globals()"))
            if isinstance(stmt, ast.With):
                weights = _params_block_names(stmt)
                if weights is not None and not _star_import(tree):
                    known = bound | set(weights) | set(ns) | set(dir(builtins))
                    for inner in _top_level(stmt.body):
                        self._check_loads(inner, known, weights, replace)
        if replace:
            self._apply(tree, replace)
            ns[_RAISE] = _raise

    def _check_loads(self, stmt: ast.stmt, known: set[str], weights: list[str],
                     replace: dict[int, ast.stmt]) -> None:
        for name in _top_level_loads(stmt):
            if name.id in known or name.id.startswith("_"):
                continue
            close = difflib.get_close_matches(name.id, weights, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            replace[id(stmt)] = _replacement(stmt, "undefined", (
                f"line {name.lineno}: {name.id!r} is not defined: it is not a weight of "
                f"this params{{...}} block ({', '.join(weights)}) nor a name in the "
                f"{self.where}{hint}"))
            return

    @staticmethod
    def _apply(tree: ast.AST, replace: dict[int, ast.stmt]) -> None:
        for node in ast.walk(tree):
            for field in ("body", "orelse", "finalbody"):
                stmts = getattr(node, field, None)
                if isinstance(stmts, list):
                    stmts[:] = [replace.get(id(s), s) for s in stmts]


def install(shell: Any) -> None:
    """Put the checker first among the shell's AST transformers (before pyccolo's)."""
    if not any(isinstance(t, CellChecker) for t in shell.ast_transformers):
        shell.ast_transformers.insert(0, CellChecker(lambda: shell.user_ns))


def uninstall(shell: Any) -> None:
    shell.ast_transformers[:] = [t for t in shell.ast_transformers
                                 if not isinstance(t, CellChecker)]
