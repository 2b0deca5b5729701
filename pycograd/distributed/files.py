"""Writing ``.npz`` files so that data-parallel runs and crashes cannot corrupt them.

Under a process group only rank 0 writes (every rank holds the same weights, and several
writers to one path would race); the file is written under a temporary name and renamed
into place, so a reader, or a run resumed after a crash, never sees half a file.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from pycograd.distributed import backend


def savez(path: Any, **arrays: Any) -> None:
    """``np.savez(path, **arrays)`` on rank 0 only, atomically for a path (``.npz`` is
    appended when missing, as numpy does); a file object is written directly."""
    if not backend.is_main():
        return
    if not isinstance(path, (str, os.PathLike)):
        np.savez(path, **arrays)
        return
    final = os.fspath(path)
    if not final.endswith(".npz"):
        final += ".npz"
    tmp = f"{final}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
