"""How pipescript runs a ``params{ ... }`` block, made exact: once, at the user's lines.

pipescript stashes a brace block's source, puts a marker in its place
(``params[__pyc_block__(N)]``) and, when the statement runs, compiles the block into a
function and calls it (``MacroTracer._handle_namespace_block``). Four things go wrong
there, and this module wraps the two pipescript functions involved to put them right:

- **the body ran twice.** pyccolo's rewriter evaluates a subscript's slice event twice,
  once as an argument of the ``before_subscript_load`` event and once as the subscript
  itself, and pipescript cannot memoize a namespace block (its initializers must run anew
  each time the statement runs), so every initializer ran twice and the random generator
  advanced twice. The two emits of one evaluation are at different bytecode offsets of the
  same frame, so the second reuses the first's value; a re-run (a loop, a re-run cell) is
  at the first's offset again and runs the block anew.
- **a syntax error vanished.** The block is compiled inside pyccolo's event handler, which
  swallows exceptions into a ``None`` value (``W`` was ``None``; ``with`` said ``'NoneType'
  object does not support the context manager protocol``; a ``map{...}`` stage was
  ``None``). It is raised as a ``SyntaxError`` at the user's line and column, for every
  brace block.
- **lines moved.** The one-line marker took the block's line breaks away, so every line
  below a block was reported (tracebacks, checks) that many lines too high. The marker now
  keeps the block's line breaks inside its brackets, where Python ignores them.
- **a misspelt name was a bare NameError.** pipescript's ``Undefined name 'w1x'`` for a
  name read in the block that nothing defines is an ``UndefinedWeightError`` listing the
  block's weights, with a close match.
- **keywords needed an import.** ``frozen[...]``, ``tied[...]`` / ``tied(...)`` and
  ``buffer[...]`` are DSL keywords in a block: visible there without an import (a name the
  user defined wins).

``block_origin`` says which user file and line a block's compiled code (``<sandbox-N>``)
came from, so ``script`` can show tracebacks at the user's lines.
"""

from __future__ import annotations

import linecache
import threading
from types import FrameType
from typing import Any

from pycograd.dsl.errors import UndefinedWeightError
from pycograd.params.markers import buffer, frozen, tied

KEYWORDS = {"frozen": frozen, "tied": tied, "buffer": buffer}
"""Names a ``params{}`` block sees without an import."""

_ORIGIN: dict[str, tuple[str, int]] = {}
"""Sandbox file name of a compiled block -> (user file, line of the block's first line)."""
_STATE = threading.local()
_ORIGINAL: dict[str, Any] = {}


class _Pending:
    """The value of the block evaluation in progress: (node, frame, offset, value)."""

    __slots__ = ("node", "frame", "lasti", "value")

    def __init__(self, node: Any, frame: FrameType, value: Any):
        self.node, self.frame, self.lasti, self.value = node, frame, frame.f_lasti, value


def block_origin(filename: str) -> tuple[str, int] | None:
    """``(user file, line)`` where the block compiled as ``filename`` starts, else None."""
    return _ORIGIN.get(filename)


def _first_line(node: Any, block_id: int) -> int:
    """The user's line of the block's first statement: the marker's line plus the blank
    lines between ``{`` and the first statement (pipescript drops them)."""
    from pipescript.tracers.brace_block_tracer import BraceBlockTracer

    src = BraceBlockTracer.block_sources.get(block_id, "")
    lead = 0
    for line in src.split("\n"):
        if line.strip():
            break
        lead += 1
    return node.lineno + lead


def _user_syntax_error(exc: SyntaxError, node: Any, frame: FrameType, func: str,
                       block_id: int) -> SyntaxError:
    """``exc`` (raised on the block's own source) moved to the user's file and line."""
    filename = frame.f_code.co_filename
    line = _first_line(node, block_id) + (exc.lineno or 1) - 1
    text = linecache.getline(filename, line).rstrip("\n")
    written = (exc.text or "").rstrip("\n")
    col = text.find(written.strip()) if written.strip() else -1
    if col < 0:  # the shown source is not the file's (an IPython cell): show the block's
        text, offset = written, exc.offset
    else:
        offset = col + (exc.offset or 1) - (len(written) - len(written.lstrip()))
    return SyntaxError(f"in a {func}{{...}} block: {exc.msg}", (filename, line, offset, text))


def _undefined_in_block(exc: NameError, block_id: int) -> UndefinedWeightError | None:
    """pipescript's bare ``NameError("Undefined name 'w1x'")`` for a name the block reads
    and nothing defines, as an ``UndefinedWeightError`` naming the block's weights and a
    close match (``None`` for any other NameError: the user's own code raised it)."""
    import ast
    import difflib

    from pipescript.tracers.brace_block_tracer import BraceBlockTracer
    from pipescript.tracers.macro_tracer import _block_assigned_names, normalize_block_src

    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None or tb.tb_frame.f_code.co_name != "_dynamic_lookup":
        return None
    name = str(exc).partition("'")[2].rpartition("'")[0]
    try:
        src = normalize_block_src(BraceBlockTracer.block_sources.get(block_id, ""))
        weights = _block_assigned_names(ast.parse(src).body)
    except SyntaxError:
        weights = []
    close = difflib.get_close_matches(name, weights, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    err = UndefinedWeightError(
        f"{name!r} is not defined: it is not a weight assigned in this params{{...}} block "
        f"({', '.join(weights) or 'none'}) nor a name in the namespace{hint}")
    return err.with_traceback(exc.__traceback__)


def _handle_namespace_block(self: Any, node: Any, frame: FrameType, func: str,
                            block_id: int) -> Any:
    """``MacroTracer._handle_namespace_block``, once per evaluation, with the DSL's
    keywords and a ``SyntaxError`` at the user's line."""
    __hide_pyccolo_frame__ = True  # noqa: F841
    pending: _Pending | None = getattr(_STATE, "pending", None)
    if pending is not None and pending.node is node and pending.frame is frame \
            and pending.lasti != frame.f_lasti:
        _STATE.pending = None
        return pending.value
    _STATE.pending = None
    added = [name for name in KEYWORDS if name not in frame.f_globals]
    for name in added:
        frame.f_globals[name] = KEYWORDS[name]
    try:
        value = _at_user_lines("run", self, node, frame, func, block_id)
    except NameError as exc:
        err = _undefined_in_block(exc, block_id)
        if err is None or self.exc_to_propagate is not exc:
            raise
        self.exc_to_propagate = err
        raise err from None
    finally:
        for name in added:
            if frame.f_globals.get(name) is KEYWORDS[name]:
                del frame.f_globals[name]
    _STATE.pending = _Pending(node, frame, value)
    return value


def _handle_block_macro(self: Any, node: Any, frame: FrameType, func: str,
                        block_id: int) -> Any:
    """``MacroTracer._handle_block_macro`` (``map{...}`` and the other statement blocks),
    with a ``SyntaxError`` at the user's line."""
    __hide_pyccolo_frame__ = True  # noqa: F841
    return _at_user_lines("block", self, node, frame, func, block_id)


def _at_user_lines(which: str, tracer: Any, node: Any, frame: FrameType, func: str,
                   block_id: int) -> Any:
    """Run pipescript's ``which`` block handler noting where the block is in the user's
    file, and raise a syntax error in the block there (pyccolo would swallow it)."""
    __hide_pyccolo_frame__ = True  # noqa: F841
    _STATE.block = (frame.f_code.co_filename, _first_line(node, block_id))
    try:
        return _ORIGINAL[which](tracer, node, frame, func, block_id)
    except SyntaxError as exc:
        if tracer.exc_to_propagate is exc:  # raised by the user's code as it ran
            raise
        err = _user_syntax_error(exc, node, frame, func, block_id)
        tracer.exc_to_propagate = err
        raise err from None
    finally:
        _STATE.block = None


def _register_block_linecache(cls: type, fname: str, block_src: str, param_src: str) -> None:
    """Also note which user file and line the sandbox ``fname`` stands for."""
    _ORIGINAL["linecache"](cls, fname, block_src, param_src)
    block = getattr(_STATE, "block", None)
    if block is not None:
        _ORIGIN[fname] = block


def _emit(cls: type, name: str, inner: str) -> str:
    """``BraceBlockTracer._emit``, keeping the block's line breaks in the marker."""
    from pipescript.tracers.macro_tracer import BLOCK_MARKER_FUNC

    out = _ORIGINAL["emit"](cls, name, inner)
    breaks = inner.count("\n")
    if breaks and out.startswith(f"{name}[{BLOCK_MARKER_FUNC}(") and out.endswith(")]"):
        out = out[:-1] + "\n" * breaks + "]"
    return out


def install() -> None:
    """Wrap pipescript's block runner, its linecache registration and the brace rewrite's
    marker (once)."""
    if _ORIGINAL:
        return
    from pipescript.tracers.brace_block_tracer import BraceBlockTracer
    from pipescript.tracers.macro_tracer import MacroTracer

    _ORIGINAL["run"] = MacroTracer.__dict__["_handle_namespace_block"]
    _ORIGINAL["block"] = MacroTracer.__dict__["_handle_block_macro"]
    _ORIGINAL["linecache"] = MacroTracer.__dict__["_register_block_linecache"].__func__
    _ORIGINAL["emit"] = BraceBlockTracer.__dict__["_emit"].__func__
    MacroTracer._handle_namespace_block = _handle_namespace_block
    MacroTracer._handle_block_macro = _handle_block_macro
    MacroTracer._register_block_linecache = classmethod(_register_block_linecache)
    BraceBlockTracer._emit = classmethod(_emit)
