"""Errors of the DSL: each names the weight or the stage and says what to do."""

from __future__ import annotations

from pycograd.core.errors import PycogradError


class DSLError(PycogradError):
    """A misuse of the ``params{}`` / ``|>`` DSL."""


class WeightShadowError(DSLError, NameError):
    """A weight name would hide (or be hidden by) another name in the notebook."""


class DSLNotLoadedError(DSLError, SyntaxError):
    """DSL syntax (``|>``, ``$``, ``params{``) in a cell before ``%load_ext pycograd``."""


class UndefinedWeightError(DSLError, NameError):
    """A name read in a ``params{}`` block's ``with`` body that nothing defines."""


class NoUserFrameError(DSLError, RuntimeError):
    """A ``params{}`` block evaluated with no user code on the stack to bind its weights in."""


class PipelineStageError(DSLError, TypeError):
    """A ``|>`` stage that is not a function."""
