"""The errors data-parallel training raises: each names the ranks involved and what to do."""

from __future__ import annotations

from pycograd.core.errors import MissingDependencyError, PycogradError

INSTALL = "pip install 'pycograd[torch]'  (or: pip install torch==2.13.0)"


class DistributedError(PycogradError, RuntimeError):
    """A data-parallel run that cannot go on: no process group, a backend failure."""


class TorchMissingError(DistributedError, MissingDependencyError):
    """``pycograd.distributed`` runs on ``torch.distributed``, which is not installed."""


class RankMismatchError(DistributedError, ValueError):
    """The ranks passed different pytrees (structure, shapes or dtypes) to one collective;
    raised on every rank before any data is reduced, with each rank's description."""


class RankLostError(DistributedError):
    """A rank died or stopped answering during a collective; names the lost rank(s)."""

    def __init__(self, message: str, lost: tuple[int, ...]):
        super().__init__(message)
        self.lost = lost
