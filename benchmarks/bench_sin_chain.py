"""A long chain of tiny ops: ``y = np.sin(y) * 1.01 + 0.1`` 100 times on a 16-vector.

Here the arrays are small, so the time is per-op overhead: pycograd's tape against the
same forward and backward written out by hand in numpy (the floor), and PyTorch eager /
HIPS autograd / JAX when installed. Target: pycograd <= 6x numpy.

    python benchmarks/bench_sin_chain.py [--repeats N] [--profile]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np
from harness import compare, optional, profile, report, verdict

import pycograd

STEPS = 100
SIZE = 16


def chain(x: Any, sin: Callable = np.sin) -> Any:
    """The function as a user writes it (``sin`` is swapped only for other frameworks)."""
    y = x
    for _ in range(STEPS):
        y = sin(y) * 1.01 + 0.1
    return y.sum()


def hand_step(x: np.ndarray) -> tuple:
    """The same value and gradient, backpropagated by hand."""
    ys = []
    y = x
    for _ in range(STEPS):
        ys.append(y)
        y = np.sin(y) * 1.01 + 0.1
    value = np.sum(y)
    g = np.ones_like(x)
    for y in reversed(ys):
        g = g * 1.01 * np.cos(y)
    return value, g


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=300)
    ap.add_argument("--profile", action="store_true", help="cProfile the pycograd step")
    args = ap.parse_args(argv)

    x = np.random.default_rng(0).standard_normal(SIZE)
    vg = pycograd.value_and_grad(chain, argnums=0)
    value, g = vg(x)
    hv, hg = hand_step(x)
    np.testing.assert_allclose(value, hv, rtol=1e-12)
    np.testing.assert_allclose(g, hg, rtol=1e-10, atol=1e-14)

    contenders: dict[str, Callable] = {
        "numpy (by hand)": lambda: hand_step(x),
        "pycograd": lambda: vg(x),
    }
    skipped = []
    torch = optional("torch")
    if torch is not None:
        def torch_step() -> tuple:
            tx = torch.tensor(x, requires_grad=True)
            value = chain(tx, torch.sin)
            value.backward()
            return value, tx.grad

        tv, tg = torch_step()
        np.testing.assert_allclose(tv.item(), hv, rtol=1e-12)
        np.testing.assert_allclose(tg.numpy(), hg, rtol=1e-10, atol=1e-14)
        contenders["pytorch eager"] = torch_step
    else:
        skipped.append("pytorch eager")
    autograd = optional("autograd")
    if autograd is not None:
        anp = optional("autograd.numpy")
        ag = autograd.value_and_grad(lambda x: chain(x, anp.sin))
        av, agr = ag(x)
        np.testing.assert_allclose(av, hv, rtol=1e-12)
        np.testing.assert_allclose(agr, hg, rtol=1e-10, atol=1e-14)
        contenders["hips autograd"] = lambda: ag(x)
    else:
        skipped.append("hips autograd")
    jax = optional("jax")
    if jax is not None:
        jax.config.update("jax_enable_x64", True)
        jnp = optional("jax.numpy")
        jvg = jax.value_and_grad(lambda x: chain(x, jnp.sin))
        jjit = jax.jit(jvg)
        jx = jnp.asarray(x)
        for fn in (jvg, jjit):
            jv, jg = fn(jx)
            np.testing.assert_allclose(float(jv), hv, rtol=1e-12)
            np.testing.assert_allclose(np.asarray(jg), hg, rtol=1e-10, atol=1e-14)
        contenders["jax eager"] = lambda: jax.block_until_ready(jvg(jx))
        contenders["jax jit"] = lambda: jax.block_until_ready(jjit(jx))
    else:
        skipped.append("jax")

    medians = compare(contenders, args.repeats)
    report(f"sin chain: {STEPS} x (sin, *1.01, +0.1) on a {SIZE}-vector, then sum; "
           "value and gradient (median)", medians, "numpy (by hand)", skipped)
    verdict(medians, "pycograd", "numpy (by hand)", 6)
    if args.profile:
        profile(lambda: vg(x), 500)

if __name__ == "__main__":
    main()
