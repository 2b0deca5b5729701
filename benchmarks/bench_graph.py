"""The graph IR: ``jit`` against hand-written numpy, capture speed, and op counts.

1. One value+grad step of the 784-256-256-10 ReLU MLP (float64) at batch 128 and 8:
   hand-written numpy backprop (the floor), pycograd eager, ``pycograd.jit`` and
   ``jax.jit`` when JAX is installed. Targets: jit <= 0.9x numpy at batch 128, <= 1.5x at 8.
2. The 300-tiny-op chain (``bench_sin_chain``): jit <= 1.2x numpy.
3. Capture + ``grad_graph`` + ``optimize`` of a 400-step and an 800-step RNN: < 1 s, and
   800 steps <= 2.2x the 400-step time (best of 3).
4. Op counts: the optimized value+grad graph of the README's MLP against the equations of
   ``jax.make_jaxpr(jax.value_and_grad(...))`` of the same model.

    python benchmarks/bench_graph.py [--repeats N] [--only mlp|chain|capture|ops]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import bench_mlp
import bench_sin_chain
import numpy as np
from harness import compare, optional, report, verdict

import pycograd as pg


def cpu_compare(contenders: dict[str, Any], repeats: int) -> None:
    """Median and best-of-N CPU time per call (``time.process_time``, round-robin): on a
    loaded shared machine wall-clock medians move with the neighbours' load, CPU time much
    less (run with OPENBLAS_NUM_THREADS=1 so that BLAS threads do not count twice).

    Also the minor page faults per call: numpy arrays above glibc's mmap / trim thresholds
    come back from the kernel as fresh zeroed pages on every allocation, which costs a
    large part of a step that allocates megabytes (the hand-written MLP step does; the
    jit program, with scratch buffers and recycled outputs, does not). Run with
    ``GLIBC_TUNABLES=glibc.malloc.trim_threshold=1000000000:glibc.malloc.mmap_threshold=1000000000``
    to see the ratios without that cost."""
    calls = {k: max(1, int(2e-3 / max(_once(f), 1e-7))) for k, f in contenders.items()}
    samples: dict[str, list[float]] = {k: [] for k in contenders}
    faults = dict.fromkeys(contenders, 0)
    for _ in range(repeats):
        for k, f in contenders.items():
            m0 = _minor_faults()
            c0 = time.process_time()
            for _ in range(calls[k]):
                f()
            samples[k].append((time.process_time() - c0) / calls[k])
            faults[k] += _minor_faults() - m0
    base = sorted(samples["numpy (by hand)"])
    for k, v in samples.items():
        v.sort()
        print(f"  cpu {k:<20} median {v[len(v) // 2] * 1e6:9.1f} us "
              f"({v[len(v) // 2] / base[len(base) // 2]:5.2f}x)   best {v[0] * 1e6:9.1f} us "
              f"({v[0] / base[0]:5.2f}x)   {faults[k] / (repeats * calls[k]):6.0f} page "
              "faults/call")


def _minor_faults() -> int:
    try:
        import resource
    except ImportError:  # not on Windows
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _once(f: Any) -> float:
    f()
    t0 = time.process_time()
    f()
    return time.process_time() - t0


def mlp_section(batch: int, repeats: int, target: float) -> None:
    bench_mlp.BATCH = batch
    params, X, Y = bench_mlp.make_problem()
    eager = pg.value_and_grad(bench_mlp.loss, 0)
    jitted = pg.jit(eager)
    hv, hg = bench_mlp.hand_step(params, X, Y)
    v, g = jitted(params, X, Y)
    np.testing.assert_allclose(v, hv, rtol=1e-12)
    for a, b in zip(g, hg):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    contenders = {
        "numpy (by hand)": lambda: bench_mlp.hand_step(params, X, Y),
        "pycograd eager": lambda: eager(params, X, Y),
        "pycograd.jit": lambda: jitted(params, X, Y),
    }
    skipped = []
    jax = _jax()
    if jax is not None:
        jnp = jax.numpy

        def jloss(p: Any, x: Any, y: Any) -> Any:
            W1, b1, W2, b2, W3, b3 = p
            h = jnp.maximum(x @ W1 + b1, 0)
            h = jnp.maximum(h @ W2 + b2, 0)
            z = h @ W3 + b3
            z = z - jnp.max(z, axis=1, keepdims=True)
            logp = z - jnp.log(jnp.sum(jnp.exp(z), axis=1, keepdims=True))
            return -jnp.mean(jnp.sum(y * logp, axis=1))

        jstep = jax.jit(jax.value_and_grad(jloss))
        jp = tuple(jnp.asarray(p) for p in params)
        jx, jy = jnp.asarray(X), jnp.asarray(Y)
        jv, _ = jstep(jp, jx, jy)
        np.testing.assert_allclose(float(jv), hv, rtol=1e-10)
        contenders["jax.jit"] = lambda: jax.block_until_ready(jstep(jp, jx, jy))
    else:
        skipped.append("jax.jit")
    medians = compare(contenders, repeats)
    report(f"MLP 784-256-256-10, batch {batch}, float64: one value+grad step (median)",
           medians, "numpy (by hand)", skipped)
    verdict(medians, "pycograd.jit", "numpy (by hand)", target)
    cpu_compare(contenders, repeats)


def chain_section(repeats: int) -> None:
    x = np.random.default_rng(0).standard_normal(bench_sin_chain.SIZE)
    eager = pg.value_and_grad(bench_sin_chain.chain, argnums=0)
    jitted = pg.jit(eager)
    v, g = jitted(x)
    hv, hg = bench_sin_chain.hand_step(x)
    np.testing.assert_allclose(v, hv, rtol=1e-12)
    np.testing.assert_allclose(g, hg, rtol=1e-10, atol=1e-14)
    contenders = {
        "numpy (by hand)": lambda: bench_sin_chain.hand_step(x),
        "pycograd eager": lambda: eager(x),
        "pycograd.jit": lambda: jitted(x),
    }
    medians = compare(contenders, repeats)
    report(f"sin chain: {3 * bench_sin_chain.STEPS} tiny ops on a {bench_sin_chain.SIZE}-vector, "
           "value+grad (median)", medians, "numpy (by hand)", [])
    verdict(medians, "pycograd.jit", "numpy (by hand)", 1.2)
    cpu_compare(contenders, repeats)


def rnn(steps: int) -> Any:
    def run(w: np.ndarray, u: np.ndarray, xs: np.ndarray) -> Any:
        h = np.zeros(16)
        for t in range(steps):
            h = np.tanh(h @ w + xs[t] @ u)
        return np.sum(h ** 2)
    return run


def capture_section() -> None:
    rng = np.random.default_rng(0)
    w, u = rng.standard_normal((16, 16)) * 0.3, rng.standard_normal((8, 16)) * 0.3
    times: dict[int, float] = {}
    cpus: dict[int, float] = {}
    for steps in (400, 800):
        xs = rng.standard_normal((steps, 8))
        best = cpu = float("inf")
        for _ in range(3):
            t0, c0 = time.perf_counter(), time.process_time()
            g = pg.optimize(pg.grad_graph(pg.capture(rnn(steps), w, u, xs)))
            best = min(best, time.perf_counter() - t0)
            cpu = min(cpu, time.process_time() - c0)
        times[steps] = best
        cpus[steps] = cpu
        print(f"  RNN {steps} steps: capture + grad_graph + optimize {best * 1e3:8.1f} ms "
              f"best of 3 (CPU time {cpu * 1e3:.1f} ms; {len(g.nodes)} nodes)")
    for label, t in (("wall", times), ("cpu", cpus)):
        ratio = t[800] / t[400]
        print(f"  {label}: 400 steps < 1 s: {'met' if t[400] < 1 else 'MISSED'}; 800 / 400 = "
              f"{ratio:.2f}x (target <= 2.2x: {'met' if ratio <= 2.2 else 'MISSED'})")


def op_count_section() -> None:
    rng = np.random.default_rng(42)
    X = rng.standard_normal((60, 2))
    Y = np.repeat(np.arange(3), 20)
    p = {"w1": 0.3 * rng.standard_normal((2, 16)), "b1": np.zeros(16),
         "w2": 0.3 * rng.standard_normal((16, 3)), "b2": np.zeros(3)}

    def objective(p: dict) -> Any:
        return pg.cross_entropy(pg.relu(X @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"], Y)

    graph = pg.capture(objective, p)
    vg = pg.grad_graph(graph)
    opt = pg.optimize(vg)
    print(f"  README MLP value+grad: captured {len(vg.nodes)} ops, optimized {len(opt.nodes)}")
    jax = _jax()
    if jax is None:
        print("  jax: skipped (not installed)")
        return
    jnp = jax.numpy

    def jobjective(p: dict) -> Any:
        z = jnp.maximum(X @ p["w1"] + p["b1"], 0) @ p["w2"] + p["b2"]
        return -jnp.mean(jax.nn.log_softmax(z)[jnp.arange(len(Y)), Y])

    n = len(jax.make_jaxpr(jax.value_and_grad(jobjective))(p).jaxpr.eqns)
    print(f"  jax.make_jaxpr(jax.value_and_grad(...)): {n} equations; pycograd optimized "
          f"{len(opt.nodes)} ({'fewer' if len(opt.nodes) < n else 'NOT fewer'})")


def _jax() -> Any:
    jax = optional("jax")
    if jax is not None:
        jax.config.update("jax_enable_x64", True)
        jax.config.update("jax_platforms", "cpu")
    return jax


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=100)
    ap.add_argument("--only", choices=("mlp", "chain", "capture", "ops"), default=None)
    args = ap.parse_args(argv)
    if args.only in (None, "mlp"):
        mlp_section(128, args.repeats, 0.9)
        mlp_section(8, args.repeats, 1.5)
    if args.only in (None, "chain"):
        chain_section(args.repeats)
    if args.only in (None, "capture"):
        print("capture speed")
        capture_section()
    if args.only in (None, "ops"):
        print("op counts")
        op_count_section()


if __name__ == "__main__":
    main()
