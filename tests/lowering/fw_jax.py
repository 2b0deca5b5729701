"""jax: the parity sweep and compile_to / weights.grad / train over jax (run in its own
process by ``tests/test_lowering.py``)."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from parity import PER_PRIMITIVE, PER_PRIMITIVE_IDS, check_case, coverage

jax.config.update("jax_enable_x64", True)


def _vjp(fn, xs, ws):
    def total(*xs):
        outs = fn(*xs)
        outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
        return sum((o * w).sum() for o, w in zip(outs, ws))
    return jax.jit(jax.grad(total, argnums=tuple(range(len(xs)))))(*xs)


@pytest.mark.parametrize("case", PER_PRIMITIVE, ids=PER_PRIMITIVE_IDS)
def test_parity(case):
    check_case(case, "jax", jax.numpy.asarray, np.asarray, _vjp, wrap=jax.jit)


def test_coverage():
    done, missing = coverage("jax")
    print(f"\njax lowers {len(done)} primitives; none for: {' '.join(missing)}")
    assert len(done) > 100
