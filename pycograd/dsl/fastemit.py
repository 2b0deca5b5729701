"""Dispatch each pyccolo event only to the tracers that handle it.

A DSL cell runs with five pyccolo tracers on the stack (pipescript's four and
``routing.CellRoutingTracer``), and every ``|>`` of a running pipeline emits three or four
events. pyccolo's ``_emit_tracer_loop`` hands each event to every tracer in turn; each one
re-checks the file filter (a walk of its class's MRO), converts the event name to a
``TraceEvent`` and finds it has no handler for it. That was most of the per-``|>`` cost
once stages are compiled once (``stagecache``). This module installs the same loop with
one more test up front: a tracer with no handler for the event, and no ``sys.settrace``
events (whose file filter counts calls), is skipped, which is exactly what pyccolo's loop
would have done with it (its ``_emit_event`` returns ``ret`` unchanged). The loop is
compiled in pyccolo's ``emit_event`` module so that it shares that module's state.

pipescript's handler predicates ask ``has_augmentations(node, specs)``, which lists every
augmentation of the node by scanning all ~85 syntax specs; ``has_augmentations`` below
answers the same question by looking only in the specs asked about.
"""

from __future__ import annotations

from typing import Any

_LOOP = '''
def _emit_tracer_loop(event, node_id, frame, kwargs):
    global _allow_reentrant_event_handling
    global _allow_event_handling
    current_thread_id = threading.current_thread().ident
    is_reentrant = not _allow_event_handling
    reentrant_handlers_only = is_reentrant and not _allow_reentrant_event_handling
    _allow_event_handling = False
    for tracer in _TRACER_STACK:
        if event not in __pycograd_handled__(tracer):
            continue
        if current_thread_id != _main_thread_id and not tracer.multiple_threads_allowed:
            continue
        if (
            is_reentrant
            and not tracer.allow_reentrant_events
            and not _allow_reentrant_event_handling
        ):
            continue
        if not _file_passes_filter_impl(
            tracer, event, frame.f_code.co_filename, is_reentrant=is_reentrant
        ):
            continue
        new_ret = tracer._emit_event(
            event,
            node_id,
            frame,
            reentrant_handlers_only=reentrant_handlers_only,
            **kwargs,
        )
        if isinstance(new_ret, tuple) and len(new_ret) > 1 and new_ret[0] is SkipAll:
            kwargs["ret"] = new_ret[1]
            break
        else:
            kwargs["ret"] = new_ret
'''

class _Everything:
    """The events of a tracer with ``sys.settrace`` events: its file filter counts calls,
    so it sees every event, as in pyccolo's loop."""

    def __contains__(self, _: object) -> bool:
        return True


_HANDLED: dict[int, tuple[Any, Any]] = {}
_ORIGINAL: list[Any] = []
"""pyccolo's loop and pipescript's ``has_augmentations``, once replaced."""
_AUGMENTED: list[dict] = []
"""pyccolo's ``BaseTracer.augmented_node_ids_by_spec`` (one dict, mutated in place)."""


def _handled(tracer: Any) -> Any:
    """The events ``tracer`` has handlers for, as ``TraceEvent`` and as name (a tracer's
    handlers are fixed when it is made)."""
    known = _HANDLED.get(id(tracer))
    if known is None or known[0] is not tracer:
        events = _Everything() if tracer.has_sys_trace_events else frozenset(
            name for e, specs in tracer._event_handlers.items() if specs
            for name in (e, getattr(e, "value", e)))
        known = _HANDLED[id(tracer)] = (tracer, events)
    return known[1]


def has_augmentations(node_or_id: Any, expected_augs: Any = None) -> bool:
    """``pipescript.utils.has_augmentations``, without listing the node's augmentations."""
    if isinstance(node_or_id, list):
        return any(has_augmentations(n, expected_augs) for n in node_or_id)
    node_id = node_or_id if isinstance(node_or_id, int) else id(node_or_id)
    table = _AUGMENTED[0]
    if expected_augs is None:
        return any(node_id in ids for ids in table.values())
    if not isinstance(expected_augs, set):
        expected_augs = (expected_augs,)
    return any(node_id in table.get(spec, ()) for spec in expected_augs)


def install() -> None:
    """Swap in the filtered loop and ``has_augmentations`` (once, for the process; only
    onto the pyccolo/pipescript code it copies, which ``patches`` checks first)."""
    import pipescript.tracers.pipeline_tracer as pipeline
    import pyccolo as pyc
    import pyccolo.emit_event as emit

    if _ORIGINAL:
        return
    _AUGMENTED.append(pyc.BaseTracer.augmented_node_ids_by_spec)
    _ORIGINAL.append(pipeline.has_augmentations)
    pipeline.has_augmentations = has_augmentations
    ns = vars(emit)
    ns["__pycograd_handled__"] = _handled
    _ORIGINAL.append(emit._emit_tracer_loop)
    # a file name with "pyccolo" in it: tracebacks hide this frame like pyccolo's own
    exec(compile(_LOOP, "<pyccolo event loop from pycograd.dsl.fastemit>", "exec"), ns)

