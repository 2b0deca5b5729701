"""``checkpoint`` (alias ``remat``): drop a function's activations on the forward pass and
recompute them in backward.

The function runs as one primitive whose forward is evaluated one level below the tape,
so none of its intermediates is recorded; only its inputs are kept. Its VJP re-runs the
function under a fresh ``vjp`` and pulls the cotangent back through it. ``f`` must be
deterministic in its inputs (and in the weights it reads), since it runs twice.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from pycograd.core.primitive import Joint, primitive
from pycograd.core.pytree import tree_flatten
from pycograd.transforms.packing import OutputSpec, packed, unpack


def _recompute(wanted: tuple, g: Any, ans: Any, *args: Any, fun: Callable) -> list:
    from pycograd.transforms.grad import vjp

    def of_wanted(*xs: Any) -> Any:
        full = list(args)
        for i, x in zip(wanted, xs):
            full[i] = x
        return fun(*full)

    _, pullback = vjp(of_wanted, *(args[i] for i in wanted))
    cts = [None] * len(args)
    for i, ct in zip(wanted, pullback(g)):
        cts[i] = ct
    return cts


checkpoint_p = primitive("checkpoint", lambda *args, fun: fun(*args), Joint(_recompute),
                         calls_user_code=True, family="call")


def checkpoint(f: Callable) -> Callable:
    """``f`` with its intermediate activations rematerialized in backward, not stored."""

    @functools.wraps(f)
    def checkpointed(*args: Any) -> Any:
        leaves, in_tree = tree_flatten(args)
        spec = OutputSpec()
        flat_f = packed(lambda *a: f(*a), in_tree, spec)
        return unpack(checkpoint_p.bind(*leaves, fun=flat_f), spec)

    return checkpointed


remat = checkpoint
