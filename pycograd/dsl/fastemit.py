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
    evt = __pycograd_events__.get(event, event)
    for tracer in _TRACER_STACK:
        if not tracer._event_handlers.get(evt) and not __pycograd_sys_events__(tracer):
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

_SYS: dict[int, bool] = {}
_ORIGINAL: list[Any] = []


def _sys_events(tracer: Any) -> bool:
    """Whether ``tracer`` handles ``sys.settrace`` events (fixed when it is made)."""
    known = _SYS.get(id(tracer))
    if known is None:
        known = _SYS[id(tracer)] = bool(tracer.has_sys_trace_events)
    return known


def install() -> None:
    """Swap in the filtered loop (once); ``uninstall`` puts pyccolo's back."""
    import pyccolo.emit_event as emit
    from pyccolo.trace_events import TraceEvent

    if _ORIGINAL:
        return
    ns = vars(emit)
    ns["__pycograd_events__"] = {e.value: e for e in TraceEvent}
    ns["__pycograd_sys_events__"] = _sys_events
    _ORIGINAL.append(emit._emit_tracer_loop)
    # a file name with "pyccolo" in it: tracebacks hide this frame like pyccolo's own
    exec(compile(_LOOP, "<pyccolo event loop from pycograd.dsl.fastemit>", "exec"), ns)


def uninstall() -> None:
    import pyccolo.emit_event as emit

    if _ORIGINAL:
        emit._emit_tracer_loop = _ORIGINAL.pop()
