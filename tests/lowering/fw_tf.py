"""tensorflow: the per-primitive parity sweep and compile_to / weights.grad / train over
tensorflow (run in its own process by ``tests/test_lowering.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from parity import PER_PRIMITIVE, PER_PRIMITIVE_IDS, check_case, coverage


def _vjp(fn, xs, ws):
    xs = [tf.constant(x) for x in xs]
    with tf.GradientTape() as tape:
        tape.watch(xs)
        outs = fn(*xs)
        outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
        total = tf.add_n([tf.reduce_sum(o * w) for o, w in zip(outs, ws)])
    return tape.gradient(total, xs, unconnected_gradients=tf.UnconnectedGradients.ZERO)


@pytest.mark.parametrize("case", PER_PRIMITIVE, ids=PER_PRIMITIVE_IDS)
def test_parity(case):
    check_case(case, "tf", tf.constant, lambda t: t.numpy(), _vjp)


def test_coverage():
    done, missing = coverage("tf")
    print(f"\ntf lowers {len(done)} primitives; none for: {' '.join(missing)}")
    assert len(done) > 80


def _f(x, w):
    _f.calls += 1
    return np.mean(np.tanh(x @ w) ** 2) + np.sum(np.maximum(x, 0.0))


def test_compile_to_tape_function_and_retrace():
    import pycograd as pg
    from pycograd.backends import compile_to

    _f.calls = 0
    g = compile_to(_f, "tf")
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    tx, tw = tf.constant(x), tf.constant(w)
    with tf.GradientTape() as tape:
        tape.watch([tx, tw])
        v = g(tx, tw)
    gx, gw = tape.gradient(v, [tx, tw])
    v0, (ex, ew) = pg.value_and_grad(_f, argnums=(0, 1))(x, w)
    assert abs(float(v) - v0) <= 1e-12 * abs(v0)
    np.testing.assert_allclose(gx.numpy(), ex, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gw.numpy(), ew, rtol=1e-12, atol=1e-14)
    captured = _f.calls
    fn = tf.function(g)
    for _ in range(3):
        np.testing.assert_allclose(fn(tx, tw).numpy(), v0, rtol=1e-12)
    assert _f.calls == captured and g.captures == 1
    x5 = rng.standard_normal((5, 3))
    np.testing.assert_allclose(fn(tf.constant(x5), tw).numpy(), _f(x5, w), rtol=1e-12)
    assert g.captures == 2


def test_weights_grad_backend_tf():
    from models import check_backend_grads

    def close(a, e):
        np.testing.assert_allclose(a, e, rtol=1.3e-6, atol=1e-5)  # torch's float32 defaults
    check_backend_grads("tf", close)


def test_train_backend_tf():
    from models import check_train

    check_train("tf")
