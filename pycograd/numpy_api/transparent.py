"""The pyccolo transparent layer (placeholder until routing lands): returns f unchanged."""

from __future__ import annotations

from collections.abc import Callable


def routed(f: Callable) -> Callable:
    return f
