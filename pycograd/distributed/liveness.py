"""Which rank was lost, when a collective fails.

A backend failure says little (gloo: "Connection closed by peer"), so every rank writes its
host and process id to the rendezvous store at ``init``. When a collective fails, the rank
that saw it marks itself alive in the store and waits a bounded ``grace`` for the others to
do the same (they reach the same failure at their next collective); a rank on this host
whose process has exited is known lost at once. Whoever has not answered by then is named.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

_PREFIX = "pycograd/"
_generation = 0  # counts this process's groups: a store that outlives a group (torchrun's
# agent store) never shows one group's keys to the next
_POLL_S = 0.05


@dataclass
class Roster:
    """What the failure diagnosis needs: the store and every rank's host and pid."""

    store: Any
    rank: int
    world_size: int
    grace_s: float
    store_on_rank0: bool
    procs: dict[int, tuple[str, int]]
    prefix: str
    lost: frozenset[int] = frozenset()


_roster: Roster | None = None


def register(store: Any, rank: int, world_size: int, timeout: timedelta, grace_s: float,
             store_on_rank0: bool) -> None:
    """Publish this rank's host and pid, then read everyone's (bounded by ``timeout``)."""
    global _roster, _generation
    _generation += 1
    prefix = f"{_PREFIX}{_generation}/"
    store.set(f"{prefix}proc/{rank}", f"{socket.gethostname()}\n{os.getpid()}")
    keys = [f"{prefix}proc/{r}" for r in range(world_size)]
    store.wait(keys, timeout)
    procs = {}
    for r, k in enumerate(keys):
        host, pid = store.get(k).decode().split("\n")
        procs[r] = (host, int(pid))
    _roster = Roster(store, rank, world_size, grace_s, store_on_rank0, procs, prefix)


def forget() -> None:
    global _roster
    _roster = None


def roster() -> Roster | None:
    return _roster


def _exited(pid: int) -> bool:
    """Whether process ``pid`` (on this host) is gone; a zombie counts as gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _store_lost(r: Roster) -> dict[int, str]:
    """The store does not answer: when rank 0 hosted it, rank 0 is gone."""
    if not r.store_on_rank0 or r.rank == 0:
        return {}
    host, pid = r.procs[0]
    if host == socket.gethostname() and _exited(pid):
        return {0: f"its process (pid {pid} on {host}) has exited"}
    return {0: "the rendezvous store it hosted is unreachable"}


def lost_ranks() -> dict[int, str]:
    """``{rank: why}`` for every rank that is gone or does not answer within the grace
    period; empty when all answer (the failure was something else)."""
    r = _roster
    if r is None:
        return {}
    try:
        r.store.set(f"{r.prefix}alive/{r.rank}", "1")
    except Exception:  # the store's host is gone too
        r.lost = frozenset(_store_lost(r)) or frozenset(range(r.world_size)) - {r.rank}
        return _store_lost(r)
    here = socket.gethostname()
    pending = set(range(r.world_size)) - {r.rank}
    lost: dict[int, str] = {}
    deadline = time.monotonic() + r.grace_s
    while pending:
        for other in sorted(pending):
            host, pid = r.procs[other]
            try:
                answered = r.store.check([f"{r.prefix}alive/{other}"])
            except Exception:  # the store went down while we waited
                lost = _store_lost(r) or lost
                pending.clear()
                break
            if answered:
                pending.discard(other)
            elif host == here and _exited(pid):
                lost[other] = f"its process (pid {pid} on {host}) has exited"
                pending.discard(other)
        if pending and time.monotonic() > deadline:
            for other in pending:
                host, pid = r.procs[other]
                lost[other] = (f"pid {pid} on {host} did not answer within {r.grace_s:g} s "
                               "(dead, stuck or unreachable)")
            break
        time.sleep(_POLL_S)
    r.lost = r.lost | frozenset(lost)
    return lost


def leave() -> bool:
    """At shutdown: wait (at most ``grace``) until every rank gets here, so no rank closes
    its connections while a peer still uses them. Skipped (False) when the group is broken:
    a rank was lost, or the store is gone."""
    r = _roster
    if r is None:
        return True
    if r.lost:
        return False
    keys = [f"{r.prefix}exit/{other}" for other in range(r.world_size)]
    try:
        r.store.set(keys[r.rank], "1")
        r.store.wait(keys, timedelta(seconds=r.grace_s))
    except Exception:
        return False
    return True
