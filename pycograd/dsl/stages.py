"""pipescript's application hook: each ``|>`` stage is checked and routed before it runs.

pipescript applies a stage inside its tracer, not at a call site of the user's code, so
pycograd's transparent layer (which swaps ``math.*`` / ``np.array`` at woven call sites)
cannot see it; the hook hands a stage that receives a traced value to ``routed``, so a
helper from a module using ``math.sin`` differentiates as a stage too (helpers written in
DSL code are compiled by pyccolo and routed by ``routing.CellRoutingTracer`` instead). A
stage that is not callable gets a clear error instead of ``'int' object is not callable``.
"""

from __future__ import annotations

from typing import Any

from pycograd.core.trace import Tracer
from pycograd.dsl.errors import PipelineStageError
from pycograd.routing.transparent import routed


def check_stage(func: Any, value: Any) -> Any:
    """pipescript calls this with each stage before applying it to the piped value."""
    if callable(func):
        return routed(func) if isinstance(value, Tracer) else func
    shape = getattr(value, "shape", None)
    piped = f"{type(value).__name__}{'' if shape is None else ' of shape ' + str(shape)}"
    raise PipelineStageError(
        f"pipeline stage is not a function: got {type(func).__name__} {func!r:.60} to apply "
        f"to the piped {piped}. Each stage after |> must be callable: a name (relu), a "
        f"$-expression ($ @ w + b) or a call with a $ hole (cross_entropy($, Y))")


def install() -> None:
    from pipescript.tracers.pipeline_tracer import PipelineTracer

    if check_stage not in PipelineTracer.application_hooks:
        PipelineTracer.application_hooks.append(check_stage)
