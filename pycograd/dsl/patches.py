"""Install the DSL's three speed patches of pyccolo and pipescript internals only onto the
code they were written for.

``fastemit`` replaces pyccolo's event loop (and pipescript's ``has_augmentations``),
``stagecache`` wraps three of pipescript's handlers, and ``lowering`` makes pyccolo's
expression rewriter turn plain ``|>`` pipes (and the DSL's call routing) into plain calls
that do what pipescript's handlers (and ``routing.CellRoutingTracer``'s) would. All read
private code, which any release may change. So each patch names the functions whose
behaviour it copies or relies on, with a fingerprint (SHA-256 of their source) per tested
release; on any other source the patch is skipped, the DSL runs on pyccolo's and
pipescript's own code (correct, slower: a ``|>`` stage is compiled on every run, each pipe
dispatches four events), and one warning says so. Setting ``PYCOGRAD_NO_PATCHES=1`` skips
them silently; CI runs the DSL tests that way too, so the unpatched path is known to give
the same results::

    PYCOGRAD_NO_PATCHES=1 python -m pytest tests/test_dsl.py
"""

from __future__ import annotations

import hashlib
import inspect
import os
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

ENV = "PYCOGRAD_NO_PATCHES"


class PatchSkippedWarning(UserWarning):
    """pyccolo's or pipescript's internals differ from those a DSL patch was written for."""


class Patch(NamedTuple):
    """A patch: what it reads of pyccolo/pipescript, their fingerprints in the tested
    releases, and how to install it."""

    name: str
    targets: Callable[[], list[Any]]
    fingerprints: frozenset[str]
    install: Callable[[], None]


def fingerprint(functions: list[Any]) -> str:
    """SHA-256 of the functions' source, in order (first 16 hex digits)."""
    h = hashlib.sha256()
    for f in functions:
        h.update(inspect.getsource(f).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def current(patch: Patch) -> str | None:
    """The fingerprint of what ``patch`` reads, as installed (None: some of it is gone)."""
    try:
        return fingerprint(patch.targets())
    except (ImportError, AttributeError, OSError, TypeError):
        return None


def disabled() -> bool:
    """Whether ``PYCOGRAD_NO_PATCHES`` asks for pyccolo's and pipescript's own code."""
    return os.environ.get(ENV, "").strip().lower() not in ("", "0", "false", "no")


def _fastemit_targets() -> list[Any]:
    from pipescript.utils import has_augmentations
    from pyccolo.emit_event import _emit_tracer_loop
    from pyccolo.tracer import BaseTracer

    return [_emit_tracer_loop, BaseTracer._emit_event, BaseTracer.get_augmentations,
            has_augmentations]


def _stagecache_targets() -> list[Any]:
    from pipescript.analysis.placeholders import SingletonArgCounterMixin
    from pipescript.patches import diagnostics, traceback_patch
    from pipescript.tracers.macro_tracer import MacroTracer
    from pipescript.tracers.pipeline_tracer import PipelineTracer

    from pycograd.dsl import capture

    lam = capture._ORIGINAL or SingletonArgCounterMixin.create_placeholder_lambda
    # and what reads and writes the node notes (``stagecache._NoteMapping``)
    return [PipelineTracer.transform_pipeline_rhs_placeholders,
            PipelineTracer.transform_pipeline_lhs_placeholders, MacroTracer.handle_macro, lam,
            traceback_patch.find_node_ipython, traceback_patch.patch_find_node_ipython,
            diagnostics.annotate_pipescript_exception,
            PipelineTracer.handle_chain_placeholder_rewrites,
            PipelineTracer.transform_pipeline_apply_ops,
            PipelineTracer.transform_pipeline_compose_ops]


def _lowering_targets() -> list[Any]:
    import pipescript.tracers.pipeline_tracer as pipeline
    from pipescript.tracers.pipeline_tracer import PipelineTracer
    from pyccolo.ast_rewriter import AstRewriter
    from pyccolo.emit_event import _emit_event
    from pyccolo.expr_rewriter import ExprRewriter
    from pyccolo.tracer import BaseTracer

    from pycograd.dsl import lowering

    rewriter = lowering._ORIGINAL[0] if lowering._ORIGINAL else ExprRewriter
    return [AstRewriter.visit, rewriter.visit_BinOp, rewriter.visit_Call, rewriter.emit,
            _emit_event, BaseTracer._emit_event,
            BaseTracer._handle_normal_emit_return, PipelineTracer._apply,
            PipelineTracer._resolve_piped,
            PipelineTracer.search_left_descendant_placeholder,
            PipelineTracer.transform_pipeline_lhs_placeholders,
            PipelineTracer.transform_pipeline_apply_ops,
            PipelineTracer.transform_pipeline_compose_ops,
            PipelineTracer.transform_pipeline_rhs_placeholders,
            PipelineTracer.maybe_skip_binop_arg, PipelineTracer.coalesce_pipeline_null,
            pipeline.node_is_pipeline_bitor_op, pipeline.parent_is_pipeline_bitor_op,
            pipeline.parent_is_fork_macro]


def _install_lowering() -> None:
    from pycograd.dsl import lowering

    lowering.install()


def _install_fastemit() -> None:
    from pycograd.dsl import fastemit

    fastemit.install()


def _install_stagecache() -> None:
    from pycograd.dsl import stagecache

    stagecache.install()


PATCHES = [
    # pipescript 0.0.27 with pyccolo 0.0.94 - 0.0.96 (the same source in each; 0.0.96 is the floor)
    Patch("stagecache", _stagecache_targets, frozenset({"87cd7c78e0bd596e"}),
          _install_stagecache),
    Patch("fastemit", _fastemit_targets, frozenset({"3b7461fc560cf74d"}), _install_fastemit),
    # lowering: pipescript 0.0.27 with pyccolo 0.0.96
    Patch("lowering", _lowering_targets, frozenset({"3b2acbfc5bc22154"}), _install_lowering),
]

INSTALLED: dict[str, bool] = {}
"""Patch name -> whether it was installed (filled by ``install``)."""


def install(patches: list[Patch] | None = None) -> dict[str, bool]:
    """Install each patch whose targets have a known fingerprint (once per process); warn
    once, naming the others and the versions found, that they run unpatched."""
    if INSTALLED:
        return INSTALLED
    off = disabled()
    skipped = []
    for patch in PATCHES if patches is None else patches:
        ok = not off and current(patch) in patch.fingerprints
        if ok:
            patch.install()
        elif not off:
            skipped.append(patch.name)
        INSTALLED[patch.name] = ok
    if skipped:
        warnings.warn(
            f"pycograd's DSL speed-ups ({', '.join(skipped)}) were written for other "
            f"internals than those of pyccolo {_version('pyccolo')} / pipescript "
            f"{_version('pipescript')}; the DSL runs without them (correct, slower). Install "
            f"the versions pycograd pins, or set {ENV}=1 to silence this.",
            PatchSkippedWarning, stacklevel=3)
    return INSTALLED


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "(not installed)"
