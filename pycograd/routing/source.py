"""Recompiling one function from its source, for the transparent layer to instrument.

A function is found in its module's AST (by name and first line, lambdas included), and
recompiled alone inside a synthetic scope that binds its free variables, so they stay free and
in the same order, with its decorators dropped. Before the rewritten copy is used, the plain copy
must compile to the very bytecode of the original: stale or ambiguous source is never run.
"""

from __future__ import annotations
import __future__

import ast
import copy
import functools
import linecache
import operator
from collections.abc import Callable
from types import CodeType

_WOVEN: dict[int, CodeType] = {}
"""Code objects ``recompile`` produced (nested ones included), by id."""

_PARSED: dict[str, tuple[list, ast.Module]] = {}


def _module_ast(filename: str, glob: dict) -> ast.Module | None:
    lines = linecache.getlines(filename, glob)
    if not lines:
        return None
    hit = _PARSED.get(filename)
    if hit is None or hit[0] is not lines:
        try:
            tree = ast.parse("".join(lines), filename)
        except SyntaxError:
            return None
        hit = _PARSED[filename] = (lines, tree)
    return hit[1]


def _first_line(node: ast.AST) -> int:
    decorators = getattr(node, "decorator_list", None)
    return decorators[0].lineno if decorators else node.lineno


def _candidates(code: CodeType, tree: ast.Module) -> list:
    out = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Lambda):
            if code.co_name == "<lambda>" and n.lineno == code.co_firstlineno:
                out.append(n)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if n.name == code.co_name and _first_line(n) == code.co_firstlineno:
                out.append(n)
    return out


def _imports(tree: ast.Module) -> list[ast.stmt]:
    """The module-level imports (outside defs and classes): CPython compiles ``mod.f(x)``
    differently when ``mod`` is imported at module level, so the copy needs them to match."""
    out, todo = [], list(tree.body)
    while todo:
        n = todo.pop(0)
        if isinstance(n, (ast.Import, ast.ImportFrom)):
            if not (isinstance(n, ast.ImportFrom) and n.module == "__future__"):
                out.append(n)
        elif not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            todo.extend(c for c in ast.iter_child_nodes(n) if isinstance(c, ast.stmt))
    return out


def _scoped(node: ast.AST, code: CodeType, tree: ast.Module, imports: bool = True
            ) -> ast.Module:
    """``node`` alone in a module (beside the module's imports, never executed, unless
    ``imports`` is false), inside a scope that binds its free variables so they stay free,
    decorators dropped."""
    node = copy.deepcopy(node)
    if isinstance(node, ast.Lambda):
        stmt: ast.stmt = ast.Return(value=node)
    else:
        node.decorator_list = []
        stmt = node
    body: list[ast.stmt] = [ast.Assign(targets=[ast.Name(v, ast.Store())], value=ast.Constant(None))
                            for v in code.co_freevars]
    scope = ast.FunctionDef(name="__pycograd_scope__", args=ast.arguments(
        posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]),
        body=body + [stmt], decorator_list=[], returns=None)
    for n in [scope, *body]:
        ast.copy_location(n, stmt)
    for n in body:
        ast.copy_location(n.targets[0], stmt)
        ast.copy_location(n.value, stmt)
    module = ast.Module(body=[*copy.deepcopy(_imports(tree) if imports else []), scope],
                        type_ignores=[])
    return ast.fix_missing_locations(module)


_FUTURE_FLAGS = functools.reduce(
    operator.or_, (getattr(__future__, n).compiler_flag for n in __future__.all_feature_names))


def _compiled(module: ast.Module, code: CodeType) -> CodeType | None:
    top = compile(module, code.co_filename, "exec", flags=code.co_flags & _FUTURE_FLAGS,
                  dont_inherit=True)
    scope = next(k for k in top.co_consts
                 if isinstance(k, CodeType) and k.co_name == "__pycograd_scope__")
    for k in scope.co_consts:
        if isinstance(k, CodeType) and k.co_name == code.co_name:
            return k
    return None


_NESTED = 0x10  # CO_NESTED: set on the recompiled copy by the synthetic scope


def _same(a: CodeType, b: CodeType) -> bool:
    return (a.co_code == b.co_code and a.co_names == b.co_names
            and a.co_varnames == b.co_varnames and a.co_freevars == b.co_freevars
            and a.co_cellvars == b.co_cellvars and (a.co_flags | _NESTED) == (b.co_flags | _NESTED))


def _register(code: CodeType, prefix: str) -> CodeType:
    """Give woven code (and the code nested in it) the qualified names of the original, and
    record it as woven."""
    consts = tuple(_register(k, prefix) if isinstance(k, CodeType) else k
                   for k in code.co_consts)
    qualname = prefix + code.co_qualname.removeprefix("__pycograd_scope__.<locals>.")
    code = code.replace(co_consts=consts, co_qualname=qualname)
    _WOVEN[id(code)] = code
    return code


def local_names(code: CodeType) -> frozenset:
    """Every local, cell and free variable name of ``code`` and the code nested in it."""
    out: set = set()
    todo = [code]
    while todo:
        c = todo.pop()
        out.update(c.co_varnames, c.co_cellvars, c.co_freevars)
        todo.extend(k for k in c.co_consts if isinstance(k, CodeType))
    return frozenset(out)


def recompile(code: CodeType, glob: dict,
              rewrite: Callable[[ast.Module], ast.Module]) -> CodeType | None:
    """``code`` recompiled from its source after ``rewrite`` of the module AST holding it, or
    ``None`` when the source cannot be found or no longer matches ``code``."""
    tree = _module_ast(code.co_filename, glob)
    if tree is None:
        return None
    # IPython compiles each top-level statement of a cell on its own, so a def does not see
    # the cell's imports: its copy is compiled without them when with them it differs
    for node, imports in ((n, i) for n in _candidates(code, tree) for i in (True, False)):
        module = _scoped(node, code, tree, imports)
        plain = _compiled(module, code)
        if plain is None or not _same(plain, code):
            continue
        woven = _compiled(ast.fix_missing_locations(rewrite(module)), code)
        if woven is None or woven.co_freevars != code.co_freevars:
            return None
        return _register(woven, code.co_qualname[:-len(code.co_name)])
    return None


def function_node(code: CodeType, glob: dict) -> ast.AST | None:
    """The def / lambda of ``code`` in its module's source (for a look at its call sites;
    ``recompile`` checks the match before anything runs), or None."""
    tree = _module_ast(code.co_filename, glob)
    if tree is None:
        return None
    found = _candidates(code, tree)
    return found[0] if len(found) == 1 else None


WOVEN_HELPERS = ("__pycograd_", "_X5ix_")
"""Prefixes of the names that instrumented code calls besides the user's: pycograd's lowered
DSL pipes and pyccolo's event emitters (``pyccolo.extra_builtins``), builtins that read no
weights and need no routing. Analyses of a function's globals skip them."""


def is_woven(code: CodeType) -> bool:
    """Whether ``code`` came out of ``recompile`` (then it is instrumented already)."""
    return _WOVEN.get(id(code)) is code
