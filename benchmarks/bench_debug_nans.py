"""The cost of ``debug_nans``: the MLP step of ``bench_mlp`` with it off and on.

Off costs nothing by construction: turning it off swaps the very same function objects back
onto the eager path (asserted below), so there is nothing to time but noise; the two "off"
rows, one timed before it was ever switched on, measure that noise. On, every primitive's
result is scanned for NaN/Inf and every tape node records its user frame.

    python benchmarks/bench_debug_nans.py [--repeats N]
"""

from __future__ import annotations

import argparse

import numpy as np
from bench_mlp import loss, make_problem
from harness import compare, report, verdict

import pycograd
from pycograd.core.var import ReverseTrace


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=200)
    args = ap.parse_args(argv)

    params, X, Y = make_problem()
    vg = pycograd.value_and_grad(loss, argnums=0)
    plain_process = ReverseTrace.process
    value, grads = vg(params, X, Y)
    before = compare({"off, before any switch": lambda: vg(params, X, Y)}, args.repeats)
    with pycograd.debug_nans():
        on_value, on_grads = vg(params, X, Y)
    assert ReverseTrace.process is plain_process  # off again: the hot path is untouched
    np.testing.assert_allclose(on_value, value, rtol=0)

    def on() -> object:
        with pycograd.debug_nans():
            return vg(params, X, Y)

    medians = before | compare({"off, after on and off": lambda: vg(params, X, Y),
                                "debug_nans on": on}, args.repeats)
    report("MLP 784-256-256-10 step, batch 128: debug_nans off and on (median)", medians,
           "off, after on and off", [])
    verdict(medians, "debug_nans on", "off, after on and off", 2.0)


if __name__ == "__main__":
    main()
