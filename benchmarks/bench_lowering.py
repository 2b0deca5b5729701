"""Lowered value+grad against hand-written code in the same framework.

MLP 784-256-256-10 (tanh, softmax cross-entropy), batch 128, float64:

- jax: ``weights.grad(backend="jax", jit=True)`` vs a hand-written
  ``jax.jit(jax.value_and_grad(loss))`` (target <= 1.2x);
- torch: ``weights.grad(backend="torch")`` vs hand-written torch eager (target <= 1.2x),
  and the time of the first ``torch.compile`` of the compiled MLP;
- tf: ``weights.grad(backend="tf", jit=True)`` vs a hand-written ``tf.function``.

Both sides take numpy arrays and return numpy arrays (the conversions are part of
``weights.grad``'s contract, so the hand-written side does them too). Each framework runs
in its own process: ``python benchmarks/bench_lowering.py`` runs them all, or name one
(``torch``, ``jax``, ``tf``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from harness import compare, environment

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup():
    import pycograd as pg
    from pycograd import nn

    rng = np.random.default_rng(0)
    weights = pg.ParamDict(W1=rng.standard_normal((784, 256)) * 0.05, b1=np.zeros(256),
                           W2=rng.standard_normal((256, 256)) * 0.05, b2=np.zeros(256),
                           W3=rng.standard_normal((256, 10)) * 0.05, b3=np.zeros(10))
    ns: dict = {"np": np, "nn": nn}
    weights.bind_globals(ns)
    exec("def loss(x, y):\n"
         "    h = np.tanh(x @ W1 + b1)\n"
         "    h = np.tanh(h @ W2 + b2)\n"
         "    return nn.cross_entropy(h @ W3 + b3, y)\n", ns)
    X = rng.standard_normal((128, 784))
    y = rng.integers(0, 10, 128)
    return weights, ns["loss"], X, y


def bench_jax() -> None:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    weights, loss, X, y = setup()
    ws = {k: weights[k] for k in weights.trainable()}

    def hand_loss(p, x, y):
        h = jnp.tanh(x @ p["W1"] + p["b1"])
        h = jnp.tanh(h @ p["W2"] + p["b2"])
        z = h @ p["W3"] + p["b3"]
        logp = z - jax.nn.logsumexp(z, axis=-1, keepdims=True)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    step = jax.jit(jax.value_and_grad(hand_loss))

    def hand():
        v, g = step(ws, X, y)
        return float(v), {k: np.asarray(a) for k, a in g.items()}

    def ours():
        return weights.grad(loss, X, y, backend="jax", jit=True)

    _check(ours(), hand())
    m = compare({"pycograd backend=jax jit": ours, "hand jax.jit(value_and_grad)": hand}, 60)
    _print("jax", m, "pycograd backend=jax jit", "hand jax.jit(value_and_grad)", 1.2)


def bench_torch() -> None:
    import torch

    import pycograd as pg

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    weights, loss, X, y = setup()
    names = list(weights.trainable())

    def hand():
        p = {k: torch.from_numpy(weights[k]).requires_grad_(True) for k in names}
        x, t = torch.from_numpy(X), torch.from_numpy(y)
        h = torch.tanh(x @ p["W1"] + p["b1"])
        h = torch.tanh(h @ p["W2"] + p["b2"])
        v = torch.nn.functional.cross_entropy(h @ p["W3"] + p["b3"], t)
        grads = torch.autograd.grad(v, [p[k] for k in names])
        return float(v), {k: g.numpy() for k, g in zip(names, grads)}

    def ours():
        return weights.grad(loss, X, y, backend="torch", jit=True)

    _check(ours(), hand())
    m = compare({"pycograd backend=torch": ours, "hand torch eager": hand}, 60)
    _print("torch", m, "pycograd backend=torch", "hand torch eager", 1.2)

    module = weights.to_torch_module(lambda x: np.tanh(np.tanh(x @ W1 + b1) @ W2 + b2)  # noqa: F821
                                     @ W3 + b3)  # noqa: F821
    compiled = torch.compile(module)
    t0 = time.perf_counter()
    compiled(torch.from_numpy(X)).sum().backward()
    print(f"torch: first torch.compile of the compiled MLP (forward+backward): "
          f"{time.perf_counter() - t0:.1f} s")
    f = pg.compile_to(loss, "torch")
    t0 = time.perf_counter()
    torch.compile(f)(torch.from_numpy(X), torch.from_numpy(y))
    print(f"torch: first torch.compile of compile_to(loss): {time.perf_counter() - t0:.1f} s")


def bench_tf() -> None:
    import tensorflow as tf

    weights, loss, X, y = setup()
    names = list(weights.trainable())

    @tf.function
    def step(p, x, t):
        with tf.GradientTape() as tape:
            tape.watch(p)
            h = tf.tanh(x @ p["W1"] + p["b1"])
            h = tf.tanh(h @ p["W2"] + p["b2"])
            z = h @ p["W3"] + p["b3"]
            v = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(t, z))
        return v, tape.gradient(v, p)

    def hand():
        v, g = step({k: tf.constant(weights[k]) for k in names}, tf.constant(X),
                    tf.constant(y))
        return float(v), {k: g[k].numpy() for k in names}

    def ours():
        return weights.grad(loss, X, y, backend="tf", jit=True)

    _check(ours(), hand())
    m = compare({"pycograd backend=tf jit": ours, "hand tf.function": hand}, 60)
    _print("tf", m, "pycograd backend=tf jit", "hand tf.function", None)


def _check(ours, hand) -> None:
    (v0, g0), (v1, g1) = ours, hand
    assert abs(float(v0) - v1) <= 1e-9 * abs(v1), (v0, v1)
    for k in g1:
        np.testing.assert_allclose(g0[k], g1[k], rtol=1e-8, atol=1e-12)


def _print(name, m, ours, hand, target) -> None:
    ratio = m[ours] / m[hand]
    goal = f" (target <= {target}x: {'met' if ratio <= target else 'MISSED'})" if target else ""
    print(f"{name}: {ours} {m[ours] * 1e3:.2f} ms, {hand} {m[hand] * 1e3:.2f} ms, "
          f"ratio {ratio:.2f}x{goal}")


if __name__ == "__main__":
    which = sys.argv[1:] or ["jax", "torch", "tf"]
    if len(which) == 1:
        {"jax": bench_jax, "torch": bench_torch, "tf": bench_tf}[which[0]]()
    else:
        print(environment())
        for name in which:
            subprocess.run([sys.executable, __file__, name], check=False,
                           env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
                                "PYTHONPATH": str(ROOT)})
