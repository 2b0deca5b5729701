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


def _f(x, w):
    _f.calls += 1
    return np.mean(np.tanh(x @ w) ** 2) + np.sum(np.maximum(x, 0.0))


def test_compile_to_grad_jit_and_retrace():
    import pycograd as pg
    from pycograd.backends import compile_to

    _f.calls = 0
    g = compile_to(_f, "jax")
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    v, (gx, gw) = jax.value_and_grad(g, argnums=(0, 1))(jax.numpy.asarray(x),
                                                         jax.numpy.asarray(w))
    v0, (ex, ew) = pg.value_and_grad(_f, argnums=(0, 1))(x, w)
    assert abs(float(v) - v0) <= 1e-12 * abs(v0)
    np.testing.assert_allclose(gx, ex, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gw, ew, rtol=1e-12, atol=1e-14)
    captured = _f.calls
    step = jax.jit(jax.grad(g, argnums=1))
    for _ in range(3):
        np.testing.assert_allclose(step(x, w), ew, rtol=1e-12, atol=1e-14)
    assert _f.calls == captured and g.captures == 1, "lowered from the graph, not re-run"
    x5 = rng.standard_normal((5, 3))
    np.testing.assert_allclose(jax.jit(g)(x5, w), _f(x5, w), rtol=1e-12)
    assert g.captures == 2


def test_weights_grad_backend_jax():
    from models import check_backend_grads

    def close(a, e):
        np.testing.assert_allclose(a, e, rtol=1.3e-6, atol=1e-5)  # torch's float32 defaults
    check_backend_grads("jax", close)


def test_train_backend_jax():
    from models import check_train

    check_train("jax")
