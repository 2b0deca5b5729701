"""Starting and stopping the process group from torchrun's environment, and turning backend
failures into errors that name the lost rank.

``torchrun`` gives each process ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``
and ``MASTER_PORT``; ``init`` reads them, rendezvouses through the ``env://`` store and
starts a gloo group (CPU tensors; ``backend="nccl"`` for GPU tensors). Every collective
waits at most ``timeout`` seconds, so a stuck peer fails the run instead of hanging it.
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import NamedTuple

from pycograd.core.errors import PycogradError
from pycograd.distributed import liveness
from pycograd.distributed.backend import LAUNCH_VARS, torch_distributed
from pycograd.distributed.errors import DistributedError, RankLostError

DEFAULT_TIMEOUT_S = 300.0
"""Seconds a collective waits for its peers (``PYCOGRAD_DIST_TIMEOUT`` overrides it)."""
DEFAULT_GRACE_S = 10.0
"""Seconds a rank that saw a failure waits for the others to answer before naming them."""
_LAUNCH = "torchrun --standalone --nproc_per_node=2 your_script.py"


class Group(NamedTuple):
    """This process's place in the group."""

    rank: int
    world_size: int
    local_rank: int
    backend: str


def _is_loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(socket.gethostbyname(addr)).is_loopback
    except (OSError, ValueError):
        return False


def _prefer_loopback(master_addr: str) -> None:
    """With a loopback master every rank is on this machine: keep gloo's own connections on
    the loopback interface too (gloo otherwise binds to the address the hostname resolves
    to). An explicit ``GLOO_SOCKET_IFNAME`` wins."""
    if "GLOO_SOCKET_IFNAME" in os.environ or not _is_loopback(master_addr):
        return
    names = [name for _, name in socket.if_nameindex() if name.startswith("lo")]
    if names:
        os.environ["GLOO_SOCKET_IFNAME"] = min(names, key=len)


def _group(dist: object) -> Group:
    return Group(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)),
                 str(dist.get_backend()))


def init(backend: str = "gloo", timeout: float | None = None,
         grace: float = DEFAULT_GRACE_S) -> Group:
    """Join the process group described by torchrun's environment; returns ``Group(rank,
    world_size, local_rank, backend)``. Calling it again returns the running group.

    ``timeout`` (seconds, default ``PYCOGRAD_DIST_TIMEOUT`` or 300) bounds every collective;
    ``grace`` bounds how long a rank that saw a failure waits to tell dead peers from slow
    ones. Example, in a script started with ``torchrun --nproc_per_node=2 train.py``::

        from pycograd import distributed
        group = distributed.init()
        print(group.rank, group.world_size)
    """
    dist = torch_distributed()
    if dist.is_initialized():
        return _group(dist)
    missing = [k for k in LAUNCH_VARS if k not in os.environ]
    if missing:
        raise DistributedError(f"pycograd.distributed.init: {', '.join(missing)} not set; "
                               f"launch the script with torchrun, e.g. `{_LAUNCH}`")
    seconds = float(os.environ.get("PYCOGRAD_DIST_TIMEOUT", DEFAULT_TIMEOUT_S)
                    if timeout is None else timeout)
    td = timedelta(seconds=seconds)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    _prefer_loopback(os.environ["MASTER_ADDR"])
    try:
        store, rank, world = next(dist.rendezvous("env://", rank, world, timeout=td))
        dist.init_process_group(backend, store=store, rank=rank, world_size=world, timeout=td)
        agent_store = os.environ.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true"
        liveness.register(store, rank, world, td, grace, store_on_rank0=not agent_store)
        atexit.register(_at_exit)
    except RuntimeError as e:
        raise DistributedError(
            f"pycograd.distributed.init: rank {rank} of {world} could not join the group at "
            f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']} within {seconds:g} s "
            f"({type(e).__name__}: {e})") from e
    return _group(dist)


def shutdown() -> None:
    """Leave the process group (a no-op when there is none). Every rank waits for the
    others first (at most the ``grace`` of ``init``), so none closes its connections while
    a peer still uses them; ``init`` also registers this to run at exit."""
    dist = torch_distributed()
    liveness.leave()
    liveness.forget()
    if dist.is_initialized():
        dist.destroy_process_group()


def _at_exit() -> None:
    dist = sys.modules.get("torch.distributed")
    if dist is not None and liveness.roster() is not None:
        shutdown()


def require_group(what: str) -> object:
    """``torch.distributed`` with a running group, or an error saying how to get one."""
    dist = torch_distributed()
    if not dist.is_initialized():
        raise DistributedError(f"{what}: no process group; call pycograd.distributed.init() "
                               f"in a script launched with `{_LAUNCH}`")
    return dist


@contextmanager
def guarded(what: str) -> Iterator[None]:
    """Run a collective; a backend failure becomes ``RankLostError`` naming the lost
    rank(s), or ``DistributedError`` with the backend's message when every rank answers."""
    try:
        yield
    except PycogradError:  # ours (a mismatch, a bad dtype): the same on every rank
        raise
    except RuntimeError as e:  # gloo raises plain RuntimeError; torch, DistError subclasses
        roster = liveness.roster()
        me = roster.rank if roster is not None else "?"
        lost = liveness.lost_ranks()
        cause = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e) else ''}"
        if lost:
            names = "; ".join(f"rank {r}: {why}" for r, why in sorted(lost.items()))
            raise RankLostError(
                f"{what}: lost {names}. Rank {me} stops here: restart the run, resuming from "
                f"the last weights.save file. Backend: {cause}", tuple(sorted(lost))) from e
        raise DistributedError(f"{what} failed on rank {me}: {cause}") from e


def barrier(what: str = "barrier") -> None:
    """Wait until every rank gets here (bounded by the group's timeout)."""
    dist = require_group(what)
    with guarded(what):
        dist.barrier()
