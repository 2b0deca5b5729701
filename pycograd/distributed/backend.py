"""Where ``torch.distributed`` comes from, and what can be asked without importing it.

``import pycograd`` must not import torch (it is an optional extra and slow to import), so
``rank()``, ``world_size()`` and ``is_active()`` look for an already-imported
``torch.distributed`` in ``sys.modules``: if nobody imported it, no process group exists.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from pycograd.distributed.errors import INSTALL, TorchMissingError


def torch_distributed() -> Any:
    """``torch.distributed``, imported on first use; a clear error naming the install
    command when torch is absent."""
    try:
        import torch.distributed as dist
    except ImportError as e:
        raise TorchMissingError(f"pycograd.distributed runs on torch.distributed, which is not "
                                f"installed: {INSTALL}") from e
    if not dist.is_available():
        raise TorchMissingError("this torch build has no torch.distributed support; install "
                                f"a standard build: {INSTALL}")
    return dist


LAUNCH_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def launched() -> bool:
    """Whether this process was started by ``torchrun`` (its environment is set), so one
    script can run alone or data parallel: ``train(..., data_parallel=launched())``."""
    return all(k in os.environ for k in LAUNCH_VARS)


def _loaded() -> Any:
    dist = sys.modules.get("torch.distributed")
    return dist if dist is not None and dist.is_available() and dist.is_initialized() else None


def is_active() -> bool:
    """Whether a process group is initialised in this process (by ``init`` or by anyone)."""
    return _loaded() is not None


def rank() -> int:
    """This process's rank in the default group, 0 when there is no group."""
    dist = _loaded()
    return dist.get_rank() if dist is not None else 0


def world_size() -> int:
    """The number of ranks in the default group, 1 when there is no group."""
    dist = _loaded()
    return dist.get_world_size() if dist is not None else 1


def is_main() -> bool:
    """Whether this is rank 0, the rank that reports progress and writes files."""
    return rank() == 0
