"""One training step of a 784-256-256-10 ReLU MLP with softmax cross-entropy.

Batch 128, float64. pycograd's ``value_and_grad`` of the model written in plain numpy
against the same forward and backward written out by hand in numpy (the floor), and
PyTorch eager / HIPS autograd / JAX when installed. Target: pycograd <= 1.15x numpy.

    python benchmarks/bench_mlp.py [--repeats N] [--profile]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np
from harness import compare, optional, profile, report, verdict

import pycograd

SIZES = (784, 256, 256, 10)
BATCH = 128


def make_problem(seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        params += [rng.standard_normal((fan_in, fan_out)) * np.sqrt(2 / fan_in),
                   np.zeros(fan_out)]
    X = rng.standard_normal((BATCH, SIZES[0]))
    Y = np.eye(SIZES[-1])[rng.integers(0, SIZES[-1], BATCH)]
    return tuple(params), X, Y


def loss(params: tuple, X: np.ndarray, Y: np.ndarray) -> Any:
    """The model as a user writes it: plain numpy, differentiated by pycograd."""
    W1, b1, W2, b2, W3, b3 = params
    h = np.maximum(X @ W1 + b1, 0)
    h = np.maximum(h @ W2 + b2, 0)
    z = h @ W3 + b3
    z = z - np.max(z, axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(np.sum(Y * logp, axis=1))


def hand_step(params: tuple, X: np.ndarray, Y: np.ndarray) -> tuple:
    """The same loss and its gradient, backpropagated by hand."""
    W1, b1, W2, b2, W3, b3 = params
    a1 = X @ W1 + b1
    h1 = np.maximum(a1, 0)
    a2 = h1 @ W2 + b2
    h2 = np.maximum(a2, 0)
    z = h2 @ W3 + b3
    z = z - np.max(z, axis=1, keepdims=True)
    e = np.exp(z)
    s = np.sum(e, axis=1, keepdims=True)
    value = -np.mean(np.sum(Y * (z - np.log(s)), axis=1))
    dz = (e / s - Y) / len(X)
    dW3, db3 = h2.T @ dz, dz.sum(0)
    da2 = (dz @ W3.T) * (a2 > 0)
    dW2, db2 = h1.T @ da2, da2.sum(0)
    da1 = (da2 @ W2.T) * (a1 > 0)
    dW1, db1 = X.T @ da1, da1.sum(0)
    return value, (dW1, db1, dW2, db2, dW3, db3)


def torch_step(torch: Any, params: tuple, X: np.ndarray, Y: np.ndarray) -> Callable:
    tp = [torch.tensor(p, requires_grad=True) for p in params]
    tX, tY = torch.tensor(X), torch.tensor(Y)

    def step() -> tuple:
        for p in tp:
            p.grad = None
        W1, b1, W2, b2, W3, b3 = tp
        h = torch.relu(tX @ W1 + b1)
        h = torch.relu(h @ W2 + b2)
        z = h @ W3 + b3
        z = z - torch.max(z, dim=1, keepdim=True).values
        logp = z - torch.log(torch.sum(torch.exp(z), dim=1, keepdim=True))
        value = -torch.mean(torch.sum(tY * logp, dim=1))
        value.backward()
        return value, [p.grad for p in tp]

    return step


def autograd_loss(anp: Any) -> Callable:
    def loss(params: tuple, X: np.ndarray, Y: np.ndarray) -> Any:
        W1, b1, W2, b2, W3, b3 = params
        h = anp.maximum(anp.dot(X, W1) + b1, 0)
        h = anp.maximum(anp.dot(h, W2) + b2, 0)
        z = anp.dot(h, W3) + b3
        z = z - anp.max(z, axis=1, keepdims=True)
        logp = z - anp.log(anp.sum(anp.exp(z), axis=1, keepdims=True))
        return -anp.mean(anp.sum(Y * logp, axis=1))

    return loss


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--profile", action="store_true", help="cProfile the pycograd step")
    args = ap.parse_args(argv)

    params, X, Y = make_problem()
    vg = pycograd.value_and_grad(loss, argnums=0)
    value, grads = vg(params, X, Y)
    hv, hg = hand_step(params, X, Y)
    np.testing.assert_allclose(value, hv, rtol=1e-12)
    for a, b in zip(grads, hg):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)

    contenders: dict[str, Callable] = {
        "numpy (by hand)": lambda: hand_step(params, X, Y),
        "pycograd": lambda: vg(params, X, Y),
    }
    skipped = []
    torch = optional("torch")
    if torch is not None:
        step = torch_step(torch, params, X, Y)
        tv, tg = step()
        np.testing.assert_allclose(tv.item(), hv, rtol=1e-10)
        for a, b in zip(tg, hg):
            np.testing.assert_allclose(a.numpy(), b, rtol=1e-8, atol=1e-12)
        contenders["pytorch eager"] = step
    else:
        skipped.append("pytorch eager")
    autograd = optional("autograd")
    if autograd is not None:
        ag = autograd.value_and_grad(autograd_loss(optional("autograd.numpy")))
        av, agr = ag(params, X, Y)
        np.testing.assert_allclose(av, hv, rtol=1e-12)
        for a, b in zip(agr, hg):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
        contenders["hips autograd"] = lambda: ag(params, X, Y)
    else:
        skipped.append("hips autograd")
    jax = optional("jax")
    if jax is not None:
        jax.config.update("jax_enable_x64", True)
        jnp = optional("jax.numpy")
        jvg = jax.value_and_grad(autograd_loss(jnp))
        jjit = jax.jit(jvg)
        jp, jX, jY = tuple(map(jnp.asarray, params)), jnp.asarray(X), jnp.asarray(Y)
        for fn in (jvg, jjit):
            jv, jg = fn(jp, jX, jY)
            np.testing.assert_allclose(float(jv), hv, rtol=1e-10)
            for a, b in zip(jg, hg):
                np.testing.assert_allclose(np.asarray(a), b, rtol=1e-8, atol=1e-12)
        contenders["jax eager"] = lambda: jax.block_until_ready(jvg(jp, jX, jY))
        contenders["jax jit"] = lambda: jax.block_until_ready(jjit(jp, jX, jY))
    else:
        skipped.append("jax")

    medians = compare(contenders, args.repeats)
    report(f"MLP {'-'.join(map(str, SIZES))} relu + softmax-xent, batch {BATCH}, float64, "
           "one value_and_grad step (median)", medians, "numpy (by hand)", skipped)
    verdict(medians, "pycograd", "numpy (by hand)", 1.15)
    if args.profile:
        profile(lambda: vg(params, X, Y), 200)

if __name__ == "__main__":
    main()
