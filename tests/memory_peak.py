"""The peak memory numpy allocates during one call, for the tests that bound a tape's size."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any


def peak_mib(fn: Callable, *args: Any, warm: tuple | None = None) -> float:
    """MiB above the starting point at the peak of ``fn(*args)``, measured by tracemalloc
    after one warm-up call (on ``warm`` when given: a smaller input that still compiles and
    caches whatever the first call would)."""
    fn(*(args if warm is None else warm))
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        fn(*args)
        return (tracemalloc.get_traced_memory()[1] - base) / 2**20
    finally:
        tracemalloc.stop()
