"""Lower plain ``|>`` pipes (and the DSL's call routing) to plain calls when pyccolo
instruments DSL code.

pipescript runs ``x |> f`` through pyccolo events: pyccolo weaves ``before_binop``,
``before_left_binop_arg``, ``before_right_binop_arg`` and ``after_binop`` events around the
``|`` that ``|>`` became, and at run time pipescript's handlers decide, node by node, that
this is a pipe (not a ``$ |>`` pipeline to make a lambda of), build the apply function,
turn a stage holding a ``$`` hole into a lambda, and map a final ``pipeline_null`` to
``None``. Every one of those decisions depends only on the node and its augmentations, so
for a training step it is the same decision every step; dispatching the events to make it
again was about a third of a small MLP's DSL step (``benchmarks/bench_dsl.py``).

This module makes the decisions once, when pyccolo instruments the code (in pyccolo's
expression rewriter, where the node's augmentations are known), for each ``|>`` (also
``*|>`` / ``**|>``) whose decisions are known then: the pipeline does not start from a
``$`` (that one is a lambda made by pipescript, whose own code is lowered when it is
compiled) and pipescript's handlers are the ones this was written for (``patches`` checks
their source; the handlers on these events are checked at each rewrite). The pipe becomes

    __pycograd_pipe__(x, f, <node id>, star, last)

which applies ``f`` to ``x`` as pipescript's ``PipelineTracer._apply`` does (its
application hooks, and its diagnostic note on an error, included; the node is looked up only
for the note), passes ``pipeline_null`` along and maps it to ``None`` at the end of a
pipeline, as the handlers would; an operand ``x`` that the handlers note as the running node
(for IPython's traceback display) before it runs becomes ``__pycograd_mark__(<node id>) or
x``. A stage with a ``$`` hole becomes
``__pycograd_stage__(<node id>, lambda: <stage>)``, which asks pipescript's stage handler
(with ``stagecache``, compiled once) for the lambda, exactly as the event would. Everything
else in the expression (the operands) is instrumented as before. With pipescript's tracer
off, both fall back to what the woven code does then (a plain ``|``).

The same holds for ``routing.CellRoutingTracer``'s ``before_call`` event, woven into every
call of a bare name in DSL code (``relu(h)``, ``cross_entropy($, Y)``): where it is the only
handler of the call's ``before_call``, the callee ``f`` becomes ``__pycograd_route__(f)``,
which swaps it as the handler would.
"""

from __future__ import annotations

import ast
import builtins
import sys
from typing import Any

from pycograd.dsl.stagecache import note_node, reuse

PIPE = "__pycograd_pipe__"
STAGE = "__pycograd_stage__"
ROUTE = "__pycograd_route__"
MARK = "__pycograd_mark__"

_BINOP_EVENTS = ("before_binop", "after_binop", "before_left_binop_arg",
                 "after_left_binop_arg", "before_right_binop_arg", "after_right_binop_arg")
_EXPECTED = {
    "before_binop": {"transform_pipeline_lhs_placeholders", "transform_pipeline_apply_ops",
                     "transform_pipeline_compose_ops", "exponentiate_functions"},
    "after_binop": {"coalesce_pipeline_null"},
    "before_left_binop_arg": {"maybe_skip_binop_arg"},
    "before_right_binop_arg": {"maybe_skip_binop_arg", "transform_pipeline_rhs_placeholders"},
}
"""pipescript's handlers of the events a pipe is woven with, the ones lowering stands for
(``stagecache``'s wrappers count as the handlers they wrap)."""

_RT: dict[str, Any] = {}
"""What the slow paths read, filled by ``install``: pyccolo's ``before_right_binop_arg``
event and the two tracer classes."""
_ACTIVE: dict[str, Any] = {"pipe": None, "route": None}
"""The tracer instance last found on pyccolo's stack, per kind: pipescript's
``PipelineTracer`` ("pipe") and ``routing.CellRoutingTracer`` ("route")."""

# What the run-time helpers read on every call, as module globals (a global is read faster
# than a dict item); ``install`` binds them to pyccolo's and pipescript's objects.
_STACK: list[Any] = []
"""pyccolo's tracer stack (the list itself, which pyccolo mutates in place)."""
_NODES: dict[int, Any] = {}
"""pyccolo's ``ast_node_by_id``."""
_REMAP: dict[str, dict[int, int]] = {}
"""pyccolo's node id remapping per file (code loaded from its bytecode cache)."""
_NULL: Any = object()
"""pipescript's ``pipeline_null``."""


def _active(kind: str) -> Any:
    """The tracer of ``kind`` that pyccolo would dispatch the lowered event to, or ``None``
    (off, or hard-disabled: then the woven code would have gone on unchanged)."""
    tracer = _ACTIVE[kind]
    if tracer is None or tracer not in _STACK:
        cls = _RT[kind]
        tracer = next((t for t in _STACK if isinstance(t, cls)), None)
        if tracer is None:
            return None
        _ACTIVE[kind] = tracer
    return None if tracer._is_tracing_hard_disabled else tracer


def _node(node_id: int, frame: Any) -> Any:
    """The (bookkept copy of the) AST node ``node_id`` names, as pyccolo finds it for an
    event emitted in ``frame``."""
    if _REMAP:
        node_id = _REMAP.get(frame.f_code.co_filename, {}).get(node_id, node_id)
    return _NODES.get(node_id)


def pipe(value: Any, func: Any, node_id: int, star: int, last: bool) -> Any:
    """``value |> func`` as pipescript's handlers evaluate it (see the module docstring):
    ``star`` 1 / 2 for ``*|>`` / ``**|>``, ``last`` for the pipeline's outermost pipe.

    The application is ``PipelineTracer._apply``'s (its hooks, then the call; on an error,
    its diagnostic note), written out here so that the pipe's node is looked up only for
    the note."""
    __hide_pyccolo_frame__ = True  # noqa: F841
    tracer = _ACTIVE["pipe"]
    if tracer is None or tracer._is_tracing_hard_disabled or tracer not in _STACK:
        tracer = _active("pipe")
        if tracer is None:
            return value | func
    if value is _NULL:
        return None if last else _NULL
    applied = func
    for hook in type(tracer).application_hooks:  # PipelineTracer._resolve_piped
        applied = hook(applied, value)
    try:
        out = applied(value) if not star else applied(*value) if star == 1 \
            else applied(**value)
    except Exception as exc:
        _diagnose(exc, node_id, sys._getframe(1), value, func)
        raise
    return None if last and out is _NULL else out


def _diagnose(exc: Exception, node_id: int, frame: Any, value: Any, func: Any) -> None:
    """``PipelineTracer._apply``'s note on an error of a stage."""
    from pipescript.patches.diagnostics import add_note, diagnose

    hint = diagnose(exc, node=_node(node_id, frame), value=value, func=func)
    if hint:
        add_note(exc, hint)


def mark(node_id: int) -> None:
    """What pipescript's handlers do before a pipe's operand runs: note the operand as the
    node running at this line, for IPython's tracebacks."""
    tracer = _ACTIVE["pipe"]
    if tracer is None or tracer._is_tracing_hard_disabled or tracer not in _STACK:
        if _active("pipe") is None:
            return
    frame = sys._getframe(1)
    node = _NODES.get(node_id) if not _REMAP else _node(node_id, frame)
    if node is not None:
        note_node(frame, node)


def stage(node_id: int, fallback: Any) -> Any:
    """A pipe's right operand holding a ``$`` hole: the function pipescript's stage handler
    makes of it (``fallback`` evaluates the operand as written, as the woven code does when
    the handler declines or fails)."""
    __hide_pyccolo_frame__ = True  # noqa: F841
    tracer = _ACTIVE["pipe"]
    if tracer is None or tracer._is_tracing_hard_disabled or tracer not in _STACK:
        tracer = _active("pipe")
        if tracer is None:
            return fallback()
    frame = sys._getframe(1)
    node = _NODES.get(node_id) if not _REMAP else _node(node_id, frame)
    fn = None if node is None else reuse(node, frame)
    if fn is not None:  # what stagecache's handler does with a stage compiled before
        return fn
    event = _RT["event"]
    handler = _rhs_handler(tracer)
    if handler is None:  # no handler to make a lambda: the operand runs as written
        return fallback()
    try:
        out = handler(tracer, fallback, node, frame, event, None)
    except Exception as exc:
        if tracer.should_propagate_handler_exception(event, exc):
            raise exc from None
        out = None
    return fallback() if out is None else out()


def route(func: Any) -> Any:
    """A call's callee as ``routing.CellRoutingTracer``'s ``before_call`` handler swaps it
    (pyccolo drops an exception of the handler and keeps the callee; so does this)."""
    tracer = _active("route")
    if tracer is None:
        return func
    try:
        out = tracer.swap_callee(func)
    except Exception:
        return func
    return func if out is None else out


def _rhs_handler(tracer: Any) -> Any:
    """The stage handler in ``tracer``'s table (``stagecache``'s wrapper when installed), or
    ``None``."""
    cached = _RT.get("rhs")
    if cached is not None and cached[0] is tracer:
        return cached[1]
    for spec in tracer._event_handlers.get(_RT["event"], ()):
        if _name(spec.handler) == "transform_pipeline_rhs_placeholders":
            _RT["rhs"] = (tracer, spec.handler)
            return spec.handler
    return None


def _name(handler: Any) -> str:
    return getattr(getattr(handler, "__wrapped__", handler), "__name__", "")


# ---- at rewrite time ----------------------------------------------------------------------

def _handlers_known(tracers: list[Any], pipeline_cls: type) -> bool:
    """Whether the handlers of a pipe's events, over ``tracers``, are exactly pipescript's
    that lowering stands for (and none is guarded)."""
    from pyccolo.trace_events import TraceEvent

    for evt_name in _BINOP_EVENTS:
        evt = TraceEvent(evt_name)
        for tracer in tracers:
            specs = tracer._event_handlers.get(evt, ())
            if not specs:
                continue
            if not isinstance(tracer, pipeline_cls):
                return False
            for spec in specs:
                if _name(spec.handler) not in _EXPECTED.get(evt_name, ()) \
                        or spec.guard is not None:
                    return False
    return True


def _make_rewriter(base: type) -> type:
    """pyccolo's ``ExprRewriter`` with ``visit_BinOp`` lowering the pipes it can (the
    module docstring says which)."""
    from pipescript.tracers.pipeline_tracer import (
        PipelineTracer,
        parent_is_fork_macro,
        parent_is_pipeline_bitor_op,
    )
    from pyccolo.trace_events import TraceEvent

    from pycograd.dsl.routing import CellRoutingTracer

    star_by_spec = {PipelineTracer.pipeline_op_spec: 0, PipelineTracer.pipeline_tuple_op_spec: 1,
                    PipelineTracer.pipeline_dict_op_spec: 2}

    class LoweringExprRewriter(base):  # type: ignore[misc, valid-type]
        __doc__ = _make_rewriter.__doc__

        def _pipeline_tracer(self) -> Any:
            known = self.__dict__.get("_pycograd_pipeline")
            if known is None:
                found = next((t for t in self.tracers if isinstance(t, PipelineTracer)), None)
                ok = found is not None and not self.global_guards_enabled \
                    and _handlers_known(self.tracers, PipelineTracer)
                known = self.__dict__["_pycograd_pipeline"] = (found if ok else False,)
            return known[0]

        def _star(self, node: ast.BinOp, copy: ast.AST) -> int | None:
            """``star`` of a pipe lowering stands for, else ``None``."""
            if not isinstance(node.op, ast.BitOr) or not isinstance(copy, ast.BinOp):
                return None
            if not self.handler_predicate_by_event[TraceEvent.before_binop](copy):
                return None
            augs = PipelineTracer.get_augmentations(id(copy))
            if len(augs) != 1:
                return None
            star = star_by_spec.get(next(iter(augs)))
            if star is None or PipelineTracer.search_left_descendant_placeholder(copy) >= 0:
                return None
            return star

        def _routes_only(self, copy: ast.AST) -> bool:
            """Whether the one ``before_call`` handler pyccolo would weave for this call is
            ``routing.CellRoutingTracer``'s (unguarded)."""
            if self.global_guards_enabled:
                return False
            try:
                found = [(t, spec) for t in self.tracers
                         for spec in t._event_handlers.get(TraceEvent.before_call, ())
                         if spec.predicate(copy)]
            except Exception:  # a predicate of a tracer not weaving this file: leave it be
                return False
            return len(found) == 1 and isinstance(found[0][0], CellRoutingTracer) \
                and _name(found[0][1].handler) == "swap_callee" and found[0][1].guard is None

        def visit_Call(self, node: ast.Call) -> Any:
            copy = self.orig_to_copy_mapping.get(id(node))
            if copy is not None and self._routes_only(copy):
                self.__dict__.setdefault("_pycograd_routed", set()).add(id(node))
            return super().visit_Call(node)

        def emit(self, evt: Any, node_or_id: Any, *args: Any, **kwargs: Any) -> Any:
            if evt == TraceEvent.before_call and node_or_id in self.__dict__.get(
                    "_pycograd_routed", ()):
                func = kwargs["ret"]
                return ast.copy_location(ast.Call(ast.copy_location(
                    ast.Name(ROUTE, ast.Load()), func), [func], []), func)
            return super().emit(evt, node_or_id, *args, **kwargs)

        def visit_BinOp(self, node: ast.BinOp) -> Any:
            copy = self.orig_to_copy_mapping.get(id(node))
            tracer = self._pipeline_tracer() if copy is not None else False
            star = self._star(node, copy) if tracer else None
            if star is None:
                return super().visit_BinOp(node)
            _ACTIVE["pipe"] = tracer
            right_copy = self.orig_to_copy_mapping[id(node.right)]
            top = not isinstance(right_copy, ast.BinOp) or \
                not PipelineTracer.get_augmentations(id(right_copy))
            staged = PipelineTracer.placeholder_replacer.search(
                right_copy, allow_top_level=top, check_all_calls=True)
            last = not parent_is_pipeline_bitor_op(copy) and not parent_is_fork_macro(copy)
            left_is_pipe = isinstance(node.left, ast.BinOp) and isinstance(
                node.left.op, ast.BitOr) and bool(PipelineTracer.get_augmentations(
                    id(self.orig_to_copy_mapping[id(node.left)])))
            with self.attrsub_context(None):
                left = self.visit(node.left)
                right = self.visit(node.right)

            def at(new: Any) -> Any:
                return ast.copy_location(new, node)

            if staged:
                thunk = at(ast.Lambda(ast.arguments(posonlyargs=[], args=[], kwonlyargs=[],
                                                    kw_defaults=[], defaults=[]), right))
                right = at(ast.Call(at(ast.Name(STAGE, ast.Load())),
                                    [at(ast.Constant(id(right_copy))), thunk], []))
            def marked(operand: ast.expr, operand_copy: ast.AST) -> ast.expr:
                """``__pycograd_mark__(<id>) or <operand>``: noted, then evaluated."""
                note = at(ast.Call(at(ast.Name(MARK, ast.Load())),
                                   [at(ast.Constant(id(operand_copy)))], []))
                return at(ast.BoolOp(ast.Or(), [note, operand]))

            # the innermost pipe's note of its left operand is the one that can be read
            # (the outer pipes' notes of theirs are overwritten before anything runs); a
            # staged right operand is noted by its handler
            if not left_is_pipe:
                left = marked(left, self.orig_to_copy_mapping[id(node.left)])
            if not staged:
                right = marked(right, right_copy)
            consts = (id(copy), star, last)
            return at(ast.Call(at(ast.Name(PIPE, ast.Load())),
                               [left, right, *(at(ast.Constant(c)) for c in consts)], []))

    return LoweringExprRewriter


_ORIGINAL: list[Any] = []


def install() -> None:
    """Use the lowering rewriter for all of pyccolo's instrumenting (once; only onto the
    pyccolo/pipescript code it stands for, which ``patches`` checks first)."""
    if _ORIGINAL:
        return
    import pyccolo.ast_rewriter as rewriter
    from pipescript.constants import pipeline_null
    from pipescript.tracers.pipeline_tracer import PipelineTracer
    from pyccolo.emit_event import _TRACER_STACK
    from pyccolo.trace_events import TraceEvent
    from pyccolo.tracer import BaseTracer

    from pycograd.dsl.routing import CellRoutingTracer

    global _STACK, _NODES, _REMAP, _NULL
    _STACK, _NODES, _REMAP = _TRACER_STACK, BaseTracer.ast_node_by_id, \
        BaseTracer.node_id_remapping_by_fname
    _NULL = pipeline_null
    _RT.update(event=TraceEvent.before_right_binop_arg, pipe=PipelineTracer,
               route=CellRoutingTracer)
    _ORIGINAL.append(rewriter.ExprRewriter)
    rewriter.ExprRewriter = _make_rewriter(rewriter.ExprRewriter)
    setattr(builtins, PIPE, pipe)
    setattr(builtins, STAGE, stage)
    setattr(builtins, ROUTE, route)
    setattr(builtins, MARK, mark)
