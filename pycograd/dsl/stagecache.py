"""Compile each pipeline stage once, not on every run.

pipescript lowers a ``|>`` stage holding a ``$`` hole (``$ @ w + b``), a ``$ |> ...``
pipeline and a macro such as ``fork[...]`` to a lambda when the expression *runs*: its
handler copies the stage's AST, builds the lambda and instruments and compiles it with
``pyc.eval``, and pyccolo files the copy's bookkeeping (``ast_node_by_id`` and friends)
under a fresh sandbox file name for good. A training loop runs the same stages every step,
so it paid a compile per stage per step (~90% of an MLP step) and grew by ~35 AST nodes
per step.

This module wraps those three handlers: the first run of a stage compiles it as before, and
later runs reuse the compiled function. Besides the stage's own code, pipescript's lambda
depends only on how each free name of the stage resolves in the running frame (a
``name=name`` default, a ``_dynamic_lookup``, a plain global, a late-bound ambient weight),
so the cache key is (stage node, that resolution pattern), and the defaults are read from
the frame again on each run, as pipescript's fresh lambda would have read them. An entry
lives as long as its stage's AST node. ``lowering`` reads a compiled stage straight from
here (``reuse``, then ``note_node`` as the handler does).
"""

from __future__ import annotations

import ast
import builtins
import inspect
import weakref
from collections.abc import Callable
from types import CodeType, FrameType, FunctionType
from typing import Any

from pycograd.dsl import capture

_PASS = "pass"
"""Entry state: pipescript leaves this expression alone (it has no ``$`` hole)."""

_FRAME_BOUND_MACROS = frozenset({"ntimes", "once", "read", "write", "macro", "method",
                                 "memoize", "otherwise"})
"""Macros whose expansion depends on the call site or keeps state: never cached."""


class _Entry:
    """What is known about one stage node: its free names and a compiled template per
    resolution pattern (``None`` where the result cannot be reused)."""

    __slots__ = ("__weakref__", "names", "state", "variants", "ref")

    def __init__(self, names: tuple[str, ...]):
        self.names = names
        self.state = ""
        self.variants: dict[tuple, _Template | None] = {}
        self.ref: Callable[[], Any] = lambda: None
        """A weak reference to the entry's node."""


class _Template:
    """A compiled stage lambda with its defaults taken out (so the cache pins no values)."""

    __slots__ = ("code", "globals", "name", "qualname", "default_names", "kw_names",
                 "closure", "attrs", "plain")

    def __init__(self, fn: FunctionType):
        code = fn.__code__
        n = len(fn.__defaults__ or ())
        self.code, self.globals, self.closure = code, fn.__globals__, fn.__closure__
        self.name, self.qualname = fn.__name__, fn.__qualname__
        self.default_names = code.co_varnames[code.co_argcount - n:code.co_argcount]
        self.kw_names = tuple(fn.__kwdefaults__ or ())
        self.attrs = dict(fn.__dict__)
        self.plain = fn if not n and not self.kw_names else None

    def make(self, frame: FrameType) -> FunctionType:
        """The function pipescript would have made in ``frame``: the same code, with each
        ``name=name`` default read from the frame."""
        if self.plain is not None:
            return self.plain
        loc, glob = frame.f_locals, frame.f_globals
        fn = FunctionType(self.code, self.globals, self.name,
                          tuple(_read(n, loc, glob) for n in self.default_names) or None,
                          self.closure)
        if self.kw_names:
            fn.__kwdefaults__ = {n: _read(n, loc, glob) for n in self.kw_names}
        fn.__qualname__ = self.qualname
        fn.__dict__.update(self.attrs)
        return fn


def _read(name: str, loc: dict, glob: dict) -> Any:
    """``name`` as ``eval`` with (``glob``, ``loc``) reads it, as pipescript's default does."""
    if name in loc:
        return loc[name]
    if name in glob:
        return glob[name]
    return getattr(builtins, name)


def _template(fn: Any, frame: FrameType) -> _Template | None:
    """``fn`` as a reusable template, or ``None`` if it is not a plain lambda whose
    defaults are exactly the frame's values of their names (then it is not reused)."""
    if type(fn) is not FunctionType:
        return None
    t = _Template(fn)
    loc, glob = frame.f_locals, frame.f_globals
    try:
        same = all(v is _read(n, loc, glob)
                   for n, v in zip(t.default_names, fn.__defaults__ or ())) and \
            all(fn.__kwdefaults__[n] is _read(n, loc, glob) for n in t.kw_names)
    except AttributeError:
        return None
    return t if same else None


_BUILTINS = vars(builtins)

_ENTRIES: dict[str, dict[int, _Entry]] = {"rhs": {}, "lhs": {}, "macro": {}}
"""Handler kind -> ``id(node)`` -> entry; removed when the node is collected."""
_RHS = _ENTRIES["rhs"]


def _entry(kind: str, node: ast.AST) -> _Entry:
    table = _ENTRIES[kind]
    key = id(node)
    entry = table.get(key)
    if entry is not None and entry.ref() is node:
        return entry
    from pipescript.analysis.extract_names import ExtractNames

    entry = _Entry(tuple(sorted(ExtractNames.extract_names(node))))

    def drop(_: weakref.ref, key: int = key, entry: _Entry = entry) -> None:
        if table.get(key) is entry:
            del table[key]

    entry.ref = weakref.ref(node, drop)
    table[key] = entry
    return entry


def _pattern(names: tuple[str, ...], frame: FrameType) -> tuple:
    """How each free name resolves in ``frame``: everything pipescript's
    ``create_placeholder_lambda`` (and ``capture``'s weights) decide the lambda by."""
    glob = frame.f_globals
    loc = frame.f_locals
    out = [loc is glob]  # a loop, not a generator: this runs for each stage of each step
    if loc is glob:
        weights = capture.weight_names(glob)
        for n in names:
            out.append(n in glob and n not in weights)
    else:
        built = _BUILTINS  # ``n in`` its dict is ``hasattr(builtins, n)``, without the raise
        for n in names:
            out.append((n in loc) + 2 * (n in glob) + 4 * (n in built))
    return tuple(out)


_CO_OPTIMIZED = inspect.CO_OPTIMIZED


def _may_be_local(code: CodeType, names: tuple[str, ...]) -> bool:
    """Whether a function frame running ``code`` can hold one of ``names`` as a local (its
    ``f_locals`` has its arguments and locals, cell and free variables, nothing else)."""
    variables = {*code.co_varnames, *code.co_cellvars, *code.co_freevars}
    return any(n in variables for n in names)


def _compiled(kind: str, node: ast.AST, frame: FrameType, compile_: Callable[[], Any],
              unwrap: Callable[[Any], Any]) -> tuple[Any, FunctionType | None]:
    """``(handler result, None)`` on a first run (``compile_`` ran pipescript's handler),
    ``(None, function)`` when a compiled stage was reused."""
    entry = _entry(kind, node)
    if entry.state == _PASS:
        return _PASS, None
    pattern = _pattern(entry.names, frame)
    template = entry.variants.get(pattern, False)
    if template:
        return None, template.make(frame)
    out = compile_()
    if out is _PASS:
        entry.state = _PASS
        _LAST.pop(id(node), None)
    elif template is False:
        entry.variants[pattern] = _template(unwrap(out), frame)
    return out, None


def reuse(node: ast.expr, frame: FrameType) -> FunctionType | None:
    """The compiled stage the ``|> <expr with $>`` handler would reuse for ``node`` in
    ``frame``, noted as the node running (``note_node``) as the handler does, else ``None``
    (not installed, or not compiled for this resolution yet: ask the handler). ``lowering``
    calls this for each stage of a lowered pipe."""
    last = _LAST.get(id(node))
    if last is not None and last[0] is node and last[1] is frame.f_code \
            and last[2] is frame.f_globals:
        glob, built = last[2], _BUILTINS
        for name, resolution in zip(last[3], last[4]):
            if 2 * (name in glob) + 4 * (name in built) != resolution:
                break
        else:
            if last[6]:
                note_node(frame, node)
            return last[5]
    if not _INSTALLED[0]:
        return None
    entry = _RHS.get(id(node))
    if entry is None or entry.ref() is not node:
        entry = _entry("rhs", node)
    if entry.state == _PASS:
        return None
    pattern = _pattern(entry.names, frame)
    template = entry.variants.get(pattern)
    if not template:
        return None
    note_node(frame, node)
    if template.plain is None:
        return template.make(frame)
    code = frame.f_code
    if code.co_flags & _CO_OPTIMIZED and not _may_be_local(code, entry.names):  # ``_LAST``
        if len(_LAST) > 10_000:
            _LAST.clear()
        _LAST[id(node)] = (node, code, frame.f_globals, entry.names, pattern[1:],
                           template.plain, _CELL_FILES.get(code.co_filename, True))
    return template.plain


_LAST: dict[int, tuple] = {}
"""``id(node)`` -> the stage ``reuse`` found last for a node run in a function's frame whose
variables include none of the stage's free names, with what decided it: ``(node, code,
globals, names, resolution, function, noted)``. The stage runs in that frame every step, and
there only whether each name is a global or a builtin can change the resolution, so a run
of the same code with the same globals that finds each name where it was gets the same
function (noted as the running node only in an IPython cell, as ``note_node`` would)."""


def note_node(frame: FrameType, node: ast.AST) -> None:
    """What pipescript's handlers do on each run: note ``node`` as the one running at the
    frame's line, for IPython's traceback display. Its readers (pipescript's patch of
    ``executing.find_node_ipython``, and its display-time diagnostics, both in IPython)
    look notes up for the frames of a traceback; the one of a cell's line is the one that
    decides what IPython highlights, so only those are noted, in ``_NOTES`` (a plain dict:
    pipescript's weak mapping costs ~0.6 us a write), which the mapping reads first (see
    ``_NoteMapping``)."""
    filename = frame.f_code.co_filename
    cell = _CELL_FILES.get(filename)
    if cell is None:
        if len(_CELL_FILES) > 10_000:
            _CELL_FILES.clear()
        cell = _CELL_FILES[filename] = _is_cell(filename)
    if cell:
        _NOTES[filename, frame.f_lineno] = node


def _is_cell(filename: str) -> bool:
    try:
        from executing.executing import is_ipython_cell_filename
    except ImportError:  # then pipescript reads no note
        return False
    return is_ipython_cell_filename(filename)


_NOTES: dict[tuple[str, int], ast.AST] = {}
"""``(cell file, line)`` -> the node ``note_node`` noted last there, unless pipescript's
own handlers noted one there since (in its mapping, which then drops this one). It holds
one node per line of the cells run (their nodes stay in pyccolo's bookkeeping anyway)."""
_CELL_FILES: dict[str, bool] = {}
"""File name -> whether it is an IPython cell's (``executing``'s test)."""


class _NoteMapping(weakref.WeakValueDictionary):
    """pipescript's ``frame_to_node_mapping`` (its class is swapped for this one, so every
    reference to it sees this): a read finds ``note_node``'s note first, a write of
    pipescript's replaces it. The last note made at a line is the one read, as when both
    wrote the one mapping."""

    def __setitem__(self, key: Any, value: Any) -> None:
        _NOTES.pop(key, None)
        super().__setitem__(key, value)

    def __getitem__(self, key: Any) -> Any:
        node = _NOTES.get(key)
        return super().__getitem__(key) if node is None else node

    def __contains__(self, key: Any) -> bool:
        return key in _NOTES or super().__contains__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        node = _NOTES.get(key)
        return super().get(key, default) if node is None else node


# ---- the wrapped handlers ---------------------------------------------------------------

def _rhs(original: Callable) -> Callable:
    """``PipelineTracer.transform_pipeline_rhs_placeholders``: a stage ``|> <expr with $>``."""
    from pipescript.tracers.pipeline_tracer import _skip_binop_args_lambda

    def handler(self: Any, ret: Any, node: ast.expr, frame: FrameType, *args: Any,
                **kwargs: Any) -> Any:
        __hide_pyccolo_frame__ = True  # noqa: F841
        if ret is _skip_binop_args_lambda:
            return ret

        def compile_() -> Any:
            out = original(self, ret, node, frame, *args, **kwargs)
            return _PASS if out is ret else out

        out, fn = _compiled("rhs", node, frame, compile_, lambda thunk: thunk())
        if fn is None:
            return ret if out is _PASS else out
        note_node(frame, node)
        return lambda: fn

    handler.__wrapped__ = original  # type: ignore[attr-defined]
    return handler


def _lhs(original: Callable) -> Callable:
    """``PipelineTracer.transform_pipeline_lhs_placeholders``: a pipeline ``$ |> ...``."""

    def handler(self: Any, ret: Any, node: ast.BinOp, frame: FrameType, *args: Any,
                **kwargs: Any) -> Any:
        __hide_pyccolo_frame__ = True  # noqa: F841

        def compile_() -> Any:
            out = original(self, ret, node, frame, *args, **kwargs)
            return _PASS if out is ret else out

        out, fn = _compiled("lhs", node, frame, compile_, lambda thunk: thunk())
        if fn is None:
            return ret if out is _PASS else out
        # what the original does besides compiling: its operands are not evaluated and
        # the apply handler leaves this node to the lambda
        note_node(frame, node)
        self.binop_arg_nodes_to_skip.add(id(node.left))
        self.binop_arg_nodes_to_skip.add(id(node.right))
        self.binop_nodes_to_eval.add(id(node))
        return lambda *_, **__: fn

    handler.__wrapped__ = original  # type: ignore[attr-defined]
    return handler


def _macro(original: Callable) -> Callable:
    """``MacroTracer.handle_macro``: ``fork[...]``, ``map[...]``, ``f[...]`` and the like
    (not the call-site-bound macros nor brace blocks, which are left to pipescript)."""
    from pipescript.tracers.macro_tracer import block_marker_id

    def handler(self: Any, ret: Any, node: ast.Subscript, frame: FrameType, *args: Any,
                **kwargs: Any) -> Any:
        __hide_pyccolo_frame__ = True  # noqa: F841
        func = node.value
        if not isinstance(func, ast.Name) or func.id in _FRAME_BOUND_MACROS \
                or block_marker_id(node) is not None:
            return original(self, ret, node, frame, *args, **kwargs)
        out, fn = _compiled("macro", node, frame,
                            lambda: original(self, ret, node, frame, *args, **kwargs),
                            lambda thunk: thunk())
        return out if fn is None else (lambda: fn)

    handler.__wrapped__ = original  # type: ignore[attr-defined]
    return handler


_WRAPPERS = {
    ("PipelineTracer", "transform_pipeline_rhs_placeholders"): _rhs,
    ("PipelineTracer", "transform_pipeline_lhs_placeholders"): _lhs,
    ("MacroTracer", "handle_macro"): _macro,
}
_INSTALLED: list[bool] = [False]


def install() -> None:
    """Swap the three handlers for their caching wrappers, in the tracer classes' handler
    tables and in tracer instances that already exist (once)."""
    if _INSTALLED[0]:
        return
    from pipescript.patches.traceback_patch import frame_to_node_mapping
    from pipescript.tracers.macro_tracer import MacroTracer
    from pipescript.tracers.pipeline_tracer import PipelineTracer
    from pyccolo.tracer import _InternalBaseTracer

    frame_to_node_mapping.__class__ = _NoteMapping
    for cls in (PipelineTracer, MacroTracer):
        tables = [cls.EVENT_HANDLERS_BY_CLASS[cls]]
        if cls.initialized():
            tables.append(cls.instance()._event_handlers)
        swapped = {}
        for table in tables:
            for specs in table.values():
                for i, spec in enumerate(specs):
                    make = _WRAPPERS.get((cls.__name__, spec.handler.__name__))
                    if make is None:
                        continue
                    if spec.handler not in swapped:
                        swapped[spec.handler] = make(spec.handler)
                    specs[i] = spec._replace(handler=swapped[spec.handler])
                    _InternalBaseTracer.handler_spec_by_id[id(specs[i])] = specs[i]
    _INSTALLED[0] = True


def stats() -> dict[str, int]:
    """Cache size: stage nodes known and compiled variants (for tests and diagnostics)."""
    entries = [e for table in _ENTRIES.values() for e in table.values()]
    return {"cached_stages": len(entries),
            "cached_variants": sum(len(e.variants) for e in entries)}
