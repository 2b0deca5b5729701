"""Where ``eval_scheduled`` puts a spilled activation while it is not needed.

A numpy array goes to one file in a temporary directory, written with ``pwrite``-style
positioned writes from the array's own buffer and read back with ``readinto`` into a fresh
array: no copy in user space, and no page faults on a memory map (``np.memmap`` faults
every page twice, and its ``mode="w+"`` truncates the file, which makes ext4 flush it to
disk on close: that path measured 15 ms per 8 MiB against 2 ms for this one). The file is
created without truncation and unlinked before it is closed, so nothing is ever forced to
disk; the directory is removed afterwards. An array of another library on a device
(``DeviceArray``) goes to host memory instead, downloaded to numpy, and is uploaded back
to the same device when it is loaded. Anything else (a Python or numpy scalar) is small
and stays as it is.

``transfer_rate`` measures the store's own round trip, so the planner's cost model prices
a spill by the very I/O path that runs it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from statistics import median
from typing import Any

import numpy as np

from pycograd.backends.arrays.placed import DeviceArray
from pycograd.core.errors import PycogradError


class SpillFileError(PycogradError, OSError):
    """The spill file gave back less than was written to it (the temporary directory was
    changed or its disk failed while ``eval_scheduled`` ran).

    Examples:
        >>> from pycograd.graph.spill import SpillFileError
        >>> isinstance(SpillFileError("short read"), OSError)
        True
    """


class SpillStore:
    """Spilled values by key; a context manager that removes its file and directory.

    Examples:
        >>> import numpy as np
        >>> from pycograd.graph.spill import SpillStore
        >>> with SpillStore() as store:
        ...     store.put(7, np.arange(4.0))
        ...     store.get(7).tolist()
        [0.0, 1.0, 2.0, 3.0]
    """

    def __init__(self) -> None:
        self._dir: str | None = None
        self._file: Any = None
        self._end = 0
        self._where: dict[int, tuple[str, Any]] = {}

    def _open(self) -> Any:
        if self._file is None:
            self._dir = tempfile.mkdtemp(prefix="pycograd-spill-")
            path = os.path.join(self._dir, "spill")
            self._file = open(path, "x+b", buffering=0)  # noqa: SIM115 (closed by close())
        return self._file

    def put(self, key: int, x: Any) -> None:
        """Spill ``x`` under ``key``: numpy arrays to the file, device arrays to host."""
        if isinstance(x, DeviceArray):
            self._where[key] = ("host", (x.device, x.device.download(x.array)))
        elif isinstance(x, np.ndarray) and x.nbytes and not x.dtype.hasobject:
            f = self._open()
            view = memoryview(np.ascontiguousarray(x)).cast("B")
            kind, was = self._where.get(key, ("", None))
            same = kind == "file" and np.prod(was[1]) * was[2].itemsize == len(view)
            offset = was[0] if same else self._end  # a key spilled again: its own place
            f.seek(offset)
            done = 0
            while done < len(view):
                done += f.write(view[done:])
            self._where[key] = ("file", (offset, x.shape, x.dtype))
            self._end = max(self._end, offset + len(view))
        else:
            self._where[key] = ("same", x)

    def get(self, key: int) -> Any:
        """A fresh copy of what ``put(key, ...)`` spilled, where it was (numpy or device)."""
        kind, what = self._where[key]
        if kind == "host":
            device, host = what
            return DeviceArray(device.upload(host), device)
        if kind == "same":
            return what
        offset, shape, dtype = what
        out = np.empty(shape, dtype)
        view = memoryview(out).cast("B")
        self._file.seek(offset)
        done = 0
        while done < len(view):
            got = self._file.readinto(view[done:])
            if not got:
                raise SpillFileError(
                    f"eval_scheduled: the spill file {self._dir}/spill ended {len(view) - done} "
                    f"bytes before the end of spilled value {key}; was the temporary "
                    "directory cleaned while it ran? Set TMPDIR to a directory left alone")
            done += got
        return out

    def close(self) -> None:
        """Drop every spilled value; unlink the file, then close it and remove the
        directory (unlinked first, so closing flushes nothing to disk)."""
        self._where.clear()
        if self._dir is not None:
            try:
                os.unlink(os.path.join(self._dir, "spill"))
            except OSError:
                pass
            self._file.close()
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = self._file = None

    def __enter__(self) -> SpillStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def transfer_rate(nbytes: int = 8 * 2 ** 20, rounds: int = 5,
                  device: Any = None) -> float:
    """Bytes per second of one spill transfer (a write or a read back) through
    ``SpillStore``: the median over ``rounds`` round trips of an array of ``nbytes`` (on
    ``device``, a ``Device``, when given: then the transfer is to host memory and back).

    Each round spills the same key again, so after the first the file's pages are reused:
    the median prices the copy a spill adds, not the first touch of fresh memory, which
    every plan pays alike for the memory it uses (and which, on a VM that hands freed
    memory back to its host, varied tenfold between runs)."""
    x = np.ones(max(nbytes // 8, 1))
    if device is not None:
        x = DeviceArray(device.upload(x), device)
    times = []
    with SpillStore() as store:
        for _ in range(rounds):
            t0 = time.perf_counter()
            store.put(0, x)
            back = store.get(0)
            if isinstance(back, DeviceArray):
                device.download(back.array[:1])  # waits for an asynchronous device
            times.append(time.perf_counter() - t0)
            del back
    return 2 * x.size * 8 / max(median(times), 1e-9)


__all__ = ["SpillFileError", "SpillStore", "transfer_rate"]
