"""The cost of ``debug_nans``, off and on, on the ``bench_mlp`` step (large arrays) and the
``bench_sin_chain`` step (100 tiny ops: per-op overhead).

Off costs nothing by construction: turning it off swaps the very same function objects back
onto the eager path (asserted below), so "off" is the plain step. On, every primitive's
result is scanned for NaN/Inf and every tape node records the user's frame.

    python benchmarks/bench_debug_nans.py [--repeats N]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np
from bench_mlp import loss, make_problem
from bench_sin_chain import SIZE, chain
from harness import compare, report

import pycograd
from pycograd.core.var import ReverseTrace


def _on(fn: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        with pycograd.debug_nans():
            return fn()
    return run


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=200)
    args = ap.parse_args(argv)

    params, X, Y = make_problem()
    mlp = pycograd.value_and_grad(loss, argnums=0)
    x = np.linspace(0.1, 1.0, SIZE)
    sin_chain = pycograd.value_and_grad(lambda x: np.sum(chain(x)))
    plain_process = ReverseTrace.process
    for step, arg in ((mlp, (params, X, Y)), (sin_chain, (x,))):
        off_value = step(*arg)[0]
        on_value = _on(lambda step=step, arg=arg: step(*arg))()[0]
        np.testing.assert_array_equal(on_value, off_value)
    assert ReverseTrace.process is plain_process  # off again: the hot path is the original

    for title, step, arg in (("MLP 784-256-256-10 step, batch 128", mlp, (params, X, Y)),
                             (f"sin chain, 100 ops on a {SIZE}-vector", sin_chain, (x,))):
        medians = compare({"debug_nans off": lambda step=step, arg=arg: step(*arg),
                           "debug_nans on": _on(lambda step=step, arg=arg: step(*arg))},
                          args.repeats)
        report(f"{title}: value_and_grad with debug_nans off and on (median)", medians,
               "debug_nans off", [])


if __name__ == "__main__":
    main()
