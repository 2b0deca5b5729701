"""Peak memory of one value-and-gradient step: pycograd, PyTorch eager, JAX and hand numpy.

Each measurement runs in its own process with ``MALLOC_MMAP_THRESHOLD_=131072`` (so freed
arrays leave the process): one warm-up step, then the resident set (``VmRSS``) as the
baseline, the kernel's peak counter reset (``/proc/self/clear_refs``), one step, and the
peak (``VmHWM``) minus the baseline. Gradients are taken with respect to every weight.

- ``mlp``: 32 layers of ``tanh(h @ w + b)``, width 512, batch 1024, float64, loss
  ``sum(h * h)``;
- ``transformer``: 6 pre-LN encoder blocks (4-head attention, ReLU MLP of width 4d),
  d=256, sequence 128, batch 16, float64, loss ``sum(h * h)``.

JAX runs without ``jit`` (op by op, as the others; ``jax.nn.standardize`` is its layer
norm). Variants: ``plain``, and ``segments`` (``pycograd.checkpoint_sequential`` against
``torch.utils.checkpoint.checkpoint`` and ``jax.checkpoint`` on the very same segments:
about sqrt(L) segments of consecutive layers, all but the last recomputed in backward).
Targets: pycograd plain <= 1.0x PyTorch eager; segments <= 1.0x PyTorch's segments.

    python benchmarks/bench_memory.py [--models mlp transformer]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

LAYERS, WIDTH, BATCH = 32, 512, 1024
BLOCKS, D, HEADS, SEQ, TBATCH = 6, 256, 4, 128, 16
SEGMENTS = {"mlp": 6, "transformer": 3}


# ---- measuring ---------------------------------------------------------------------------

def _status(field: str) -> int:
    """A ``/proc/self/status`` field in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def peak_extra(step: Callable[[], Any]) -> tuple[float, float]:
    """(peak RSS above the post-warm-up baseline in MiB, seconds) of one ``step()``."""
    step()
    gc.collect()
    base = _status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak (VmHWM) to the current RSS
    t0 = time.perf_counter()
    out = step()
    elapsed = time.perf_counter() - t0
    peak = _status("VmHWM")
    del out
    return (peak - base) / 2**20, elapsed


# ---- the models, as each library's user writes them --------------------------------------

def mlp_weights(seed: int = 0) -> tuple[list, np.ndarray]:
    rng = np.random.default_rng(seed)
    ws = [(rng.standard_normal((WIDTH, WIDTH)) / math.sqrt(WIDTH),
           0.1 * rng.standard_normal(WIDTH)) for _ in range(LAYERS)]
    return ws, rng.standard_normal((BATCH, WIDTH))


def transformer_weights(seed: int = 0) -> tuple[list, np.ndarray]:
    rng = np.random.default_rng(seed)

    def mat(i: int, o: int) -> np.ndarray:
        return rng.standard_normal((i, o)) / math.sqrt(i)
    blocks = [dict(g1=np.ones(D), b1=np.zeros(D), wq=mat(D, D), wk=mat(D, D), wv=mat(D, D),
                   wo=mat(D, D), g2=np.ones(D), b2=np.zeros(D), w1=mat(D, 4 * D),
                   c1=np.zeros(4 * D), w2=mat(4 * D, D), c2=np.zeros(D))
              for _ in range(BLOCKS)]
    return blocks, rng.standard_normal((TBATCH, SEQ, D))


def segments(n: int, k: int) -> list[tuple[int, int]]:
    from pycograd.transforms.checkpoint import segment_bounds
    return segment_bounds(n, k)


def pycograd_step(model: str, variant: str) -> Callable[[], Any]:
    import pycograd
    from pycograd import layer_norm, relu, softmax

    if model == "mlp":
        ws, x = mlp_weights()

        def layer(w: Any, b: Any) -> Callable:
            return lambda h: np.tanh(h @ w + b)
    else:
        ws, x = transformer_weights()

        def layer(p: Any) -> Callable:
            def block(h: Any) -> Any:
                a = layer_norm(h, p["g1"], p["b1"])
                q, k, v = (np.reshape(a @ p[n], (TBATCH, SEQ, HEADS, D // HEADS)).transpose(
                    0, 2, 1, 3) for n in ("wq", "wk", "wv"))
                s = softmax(q @ k.transpose(0, 1, 3, 2) * (1 / math.sqrt(D // HEADS)))
                o = np.reshape((s @ v).transpose(0, 2, 1, 3), (TBATCH, SEQ, D))
                h = h + o @ p["wo"]
                m = layer_norm(h, p["g2"], p["b2"]) @ p["w1"] + p["c1"]
                return h + relu(m) @ p["w2"] + p["c2"]
            return block

    def loss(ws: list) -> Any:
        fs = [layer(*w) if model == "mlp" else layer(w) for w in ws]
        if variant == "segments":
            h = pycograd.checkpoint_sequential(fs, SEGMENTS[model])(x)
        else:
            h = x
            for f in fs:
                h = f(h)
        return np.sum(h * h)

    return lambda: pycograd.value_and_grad(loss)(ws)


def torch_step(model: str, variant: str) -> Callable[[], Any]:
    import torch
    from torch.nn import functional as F  # noqa: N812
    from torch.utils.checkpoint import checkpoint

    torch.set_num_threads(1)
    if model == "mlp":
        raw, x = mlp_weights()
        ws = [tuple(torch.tensor(a, requires_grad=True) for a in w) for w in raw]

        def layer(w: Any, b: Any) -> Callable:
            return lambda h: torch.tanh(h @ w + b)
        fs = [layer(*w) for w in ws]
        params = [a for w in ws for a in w]
    else:
        raw, x = transformer_weights()
        ws = [{k: torch.tensor(v, requires_grad=True) for k, v in p.items()} for p in raw]

        def layer(p: Any) -> Callable:
            def block(h: Any) -> Any:
                a = F.layer_norm(h, (D,), p["g1"], p["b1"])
                q, k, v = ((a @ p[n]).reshape(TBATCH, SEQ, HEADS, D // HEADS).transpose(1, 2)
                           for n in ("wq", "wk", "wv"))
                s = torch.softmax(q @ k.transpose(-1, -2) * (1 / math.sqrt(D // HEADS)), -1)
                o = (s @ v).transpose(1, 2).reshape(TBATCH, SEQ, D)
                h = h + o @ p["wo"]
                m = F.layer_norm(h, (D,), p["g2"], p["b2"]) @ p["w1"] + p["c1"]
                return h + torch.relu(m) @ p["w2"] + p["c2"]
            return block
        fs = [layer(p) for p in ws]
        params = [a for p in ws for a in p.values()]
    xt = torch.tensor(x)

    def seq(part: list) -> Callable:
        def run(h: Any) -> Any:
            for f in part:
                h = f(h)
            return h
        return run

    def step() -> Any:
        for p in params:
            p.grad = None
        h = xt
        if variant == "segments":
            bounds = segments(len(fs), SEGMENTS[model])
            for j, (a, b) in enumerate(bounds):
                run = seq(fs[a:b])
                h = run(h) if j == len(bounds) - 1 else checkpoint(run, h, use_reentrant=False)
        else:
            h = seq(fs)(h)
        loss = (h * h).sum()
        loss.backward()
        grads = [p.grad for p in params]
        for p in params:  # the caller owns the gradients, as with the other contenders
            p.grad = None
        return loss.item(), grads
    return step


def jax_step(model: str, variant: str) -> Callable[[], Any]:
    """JAX without ``jit`` (op by op, as the other contenders run), float64; segments
    through ``jax.checkpoint`` on the same segments."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    if model == "mlp":
        raw, x = mlp_weights()
        ws = [tuple(jnp.asarray(a) for a in w) for w in raw]

        def layer(h: Any, w: Any) -> Any:
            return jnp.tanh(h @ w[0] + w[1])
    else:
        raw, x = transformer_weights()
        ws = [{k: jnp.asarray(v) for k, v in p.items()} for p in raw]

        def layer(h: Any, p: Any) -> Any:
            a = jax.nn.standardize(h, axis=-1, epsilon=1e-5) * p["g1"] + p["b1"]
            q, k, v = ((a @ p[n]).reshape(TBATCH, SEQ, HEADS, D // HEADS).transpose(0, 2, 1, 3)
                       for n in ("wq", "wk", "wv"))
            s = jax.nn.softmax(q @ k.transpose(0, 1, 3, 2) * (1 / math.sqrt(D // HEADS)), -1)
            o = (s @ v).transpose(0, 2, 1, 3).reshape(TBATCH, SEQ, D)
            h = h + o @ p["wo"]
            m = (jax.nn.standardize(h, axis=-1, epsilon=1e-5) * p["g2"] + p["b2"]) @ p["w1"] \
                + p["c1"]
            return h + jax.nn.relu(m) @ p["w2"] + p["c2"]
    xj = jnp.asarray(x)

    def run(h: Any, part: list) -> Any:
        for w in part:
            h = layer(h, w)
        return h

    def loss(ws: list) -> Any:
        h = xj
        if variant == "segments":
            bounds = segments(len(ws), SEGMENTS[model])
            for j, (a, b) in enumerate(bounds):
                h = run(h, ws[a:b]) if j == len(bounds) - 1 else jax.checkpoint(run)(h, ws[a:b])
        else:
            h = run(h, ws)
        return jnp.sum(h * h)

    value_and_grad = jax.value_and_grad(loss)

    def step() -> Any:
        value, grads = value_and_grad(ws)
        return float(value), jax.block_until_ready(grads)
    return step


def numpy_step(model: str, variant: str) -> Callable[[], Any]:
    """The MLP's forward and backward by hand: each layer keeps its output, which is both
    its tanh's derivative and the next layer's input."""
    if model != "mlp" or variant != "plain":
        raise SystemExit(0)
    ws, x = mlp_weights()

    def step() -> Any:
        outs = [x]
        for w, b in ws:
            outs.append(np.tanh(outs[-1] @ w + b))
        h = outs[-1]
        value = float(np.sum(h * h))
        g = 2 * h
        del h
        grads = []
        for w, _ in reversed(ws):
            out = outs.pop()  # each output is freed once its layer is done
            gz = g * (1 - out * out)
            del out
            grads.append((outs[-1].T @ gz, gz.sum(0)))
            g = gz @ w.T
        return value, grads[::-1]
    return step


STEPS = {"pycograd": pycograd_step, "pytorch": torch_step, "jax": jax_step,
         "numpy": numpy_step}


def child(model: str, who: str, variant: str) -> None:
    mib, seconds = peak_extra(STEPS[who](model, variant))
    print(json.dumps({"mib": mib, "s": seconds}))


def measure(model: str, who: str, variant: str) -> dict | None:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072", OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    here = os.path.dirname(os.path.abspath(__file__))
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(here), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    r = subprocess.run([sys.executable, __file__, "--child", model, who, variant],
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        print(f"  {who} {variant}: failed\n{r.stderr[-2000:]}", file=sys.stderr)
        return None
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else None


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["mlp", "transformer"])
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(*args.child)
        return
    have = {who: subprocess.run([sys.executable, "-c", f"import {who}"],
                                capture_output=True).returncode == 0 for who in ("torch", "jax")}
    for model in args.models:
        title = (f"{LAYERS}-layer tanh MLP, width {WIDTH}, batch {BATCH}" if model == "mlp"
                 else f"{BLOCKS}-block transformer encoder, d={D}, {HEADS} heads, seq {SEQ}, "
                      f"batch {TBATCH}")
        print(f"{title}, float64: peak RSS above baseline of one value+grad step "
              f"(segments: {SEGMENTS[model]})")
        rows: dict = {}
        for variant in ("plain", "segments"):
            for who in ("numpy", "pytorch", "jax", "pycograd"):
                if who == "pytorch" and not have["torch"] or who == "jax" and not have["jax"] \
                        or who == "numpy" and (model != "mlp" or variant != "plain"):
                    continue
                r = measure(model, who, variant)
                if r is not None:
                    rows[(who, variant)] = r
                    print(f"  {variant:9s} {who:9s} {r['mib']:8.1f} MiB  {r['s']:7.3f} s",
                          flush=True)
        for variant in ("plain", "segments"):
            ours, theirs = rows.get(("pycograd", variant)), rows.get(("pytorch", variant))
            if ours and theirs:
                ratio = ours["mib"] / theirs["mib"]
                print(f"  {variant}: pycograd / pytorch = {ratio:.2f}x  (target <= 1.0x: "
                      f"{'met' if ratio <= 1.0 else 'MISSED'})")
            jx = rows.get(("jax", variant))
            if ours and jx:
                print(f"  {variant}: pycograd / jax = {ours['mib'] / jx['mib']:.2f}x")
        plain, seg = rows.get(("pycograd", "plain")), rows.get(("pycograd", "segments"))
        if plain and seg:
            print(f"  pycograd segments vs plain: {plain['mib'] / seg['mib']:.2f}x less memory, "
                  f"{seg['s'] / plain['s']:.2f}x the time")
        print()


if __name__ == "__main__":
    main()
