"""Sequence models: a GRU and an RWKV training step against PyTorch eager, and RWKV's
per-token sampling time as the context grows.

- GRU: ``value_and_grad`` + SGD update of a GRU (``gru_cell`` + ``scan``, hidden 128,
  sequence 64, batch 32, input 64, next-step MSE read-out), against the same cell written
  in torch ops (PyTorch eager, the target: <= 1.5x) and ``torch.nn.GRU``'s fused kernel
  (reference).
- RWKV: the same for a 2-layer RWKV-4 language model (the notebook's sizes: width 48,
  feed-forward 96, vocabulary 33, sequence 32, batch 16) with the parallel WKV, against a
  hand-written PyTorch eager RWKV computing the same thing (reported).
- Sampling: the recurrent form generating 1,000 tokens; the median time per token near
  token 100 and near token 1,000 (target: <= 1.3x).

    python benchmarks/bench_sequence.py [--repeats N] [--dtype float32|float64]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from statistics import median
from typing import Any

import numpy as np
from harness import compare, environment, optional, verdict

import pycograd as pg

GRU_T, GRU_B, GRU_I, GRU_H = 64, 32, 64, 128
C, F, V, LAYERS, T, B = 48, 96, 33, 2, 32, 16
LR = 1e-3


# ---- GRU -------------------------------------------------------------------------------
def gru_params(rng: np.random.Generator, dtype: Any) -> dict:
    s = 1 / np.sqrt(GRU_H)
    shapes = {"w_ih": (3 * GRU_H, GRU_I), "w_hh": (3 * GRU_H, GRU_H), "b_ih": (3 * GRU_H,),
              "b_hh": (3 * GRU_H,), "w_out": (GRU_H, GRU_I), "b_out": (GRU_I,)}
    return {k: rng.uniform(-s, s, shape).astype(dtype) for k, shape in shapes.items()}


def gru_loss(p: dict, xs: Any, ys: Any) -> Any:
    cell = lambda h, x: pg.gru_cell(x, h, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])  # noqa: E731
    _, hs = pg.scan(cell, np.zeros((xs.shape[1], GRU_H), xs.dtype), xs)
    return np.mean((hs @ p["w_out"] + p["b_out"] - ys) ** 2)


def torch_gru_step(torch: Any, p: dict, xs: Any, ys: Any) -> Any:
    h = torch.zeros(xs.shape[1], GRU_H, dtype=xs.dtype)
    hs = []
    for t in range(xs.shape[0]):
        xr, xz, xn = (xs[t] @ p["w_ih"].T + p["b_ih"]).chunk(3, -1)
        hr, hz, hn = (h @ p["w_hh"].T + p["b_hh"]).chunk(3, -1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        h = n + z * (h - n)
        hs.append(h)
    return torch.mean((torch.stack(hs) @ p["w_out"] + p["b_out"] - ys) ** 2)


# ---- RWKV ------------------------------------------------------------------------------
def rwkv_params(rng: np.random.Generator, dtype: Any) -> dict:
    def mat(*shape: int) -> np.ndarray:
        return (rng.normal(size=shape) / np.sqrt(shape[0])).astype(dtype)

    def vec(lo: float, hi: float) -> np.ndarray:
        return rng.uniform(lo, hi, C).astype(dtype)

    layers = []
    for _ in range(LAYERS):
        att = {"mix_k": vec(0.3, 1), "mix_v": vec(0.3, 1), "mix_r": vec(0.3, 1),
               "decay": vec(-3, 1), "bonus": vec(0, 1), "key": mat(C, C), "value": mat(C, C),
               "receptance": mat(C, C), "output": mat(C, C)}
        ffn = {"mix_k": vec(0.3, 1), "mix_r": vec(0.3, 1), "key": mat(C, F),
               "value": mat(F, C), "receptance": mat(C, C)}
        layers.append({"ln1_w": vec(1, 1), "ln1_b": vec(0, 0), "att": att,
                       "ln2_w": vec(1, 1), "ln2_b": vec(0, 0), "ffn": ffn})
    return {"emb": mat(V, C), "layers": layers, "head": mat(C, V)}


def rwkv(p: dict, tokens: Any, state: Any = None, recurrent: bool = False) -> tuple:
    state = state or [(None, None)] * LAYERS
    x = pg.embedding(tokens, p["emb"])
    out = []
    for layer, (s_att, s_ffn) in zip(p["layers"], state):
        y, s_att = pg.rwkv_time_mix(pg.layer_norm(x, layer["ln1_w"], layer["ln1_b"]),
                                    layer["att"], s_att, recurrent)
        x = x + y
        y, s_ffn = pg.rwkv_channel_mix(pg.layer_norm(x, layer["ln2_w"], layer["ln2_b"]),
                                       layer["ffn"], s_ffn)
        x = x + y
        out.append((s_att, s_ffn))
    return x @ p["head"], out


def rwkv_loss(p: dict, xs: Any, ys: Any) -> Any:
    return pg.cross_entropy(rwkv(p, xs)[0].reshape(-1, V), ys.reshape(-1))


def torch_rwkv_loss(torch: Any, p: dict, xs: Any, ys: Any) -> Any:
    """The same model in torch ops: the parallel WKV as a masked T x T softmax weighting."""
    fn = torch.nn.functional
    pos = torch.arange(T, dtype=p["emb"].dtype)
    dist = (pos[:, None] - 1 - pos[None, :])[:, :, None]
    past, now = dist >= 0, dist == -1

    def shift(x: Any) -> Any:
        return torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)

    x = p["emb"][xs]
    for layer in p["layers"]:
        a, f = layer["att"], layer["ffn"]
        h = fn.layer_norm(x, (C,), layer["ln1_w"], layer["ln1_b"])
        hh = shift(h)
        k = (h * a["mix_k"] + hh * (1 - a["mix_k"])) @ a["key"]
        v = (h * a["mix_v"] + hh * (1 - a["mix_v"])) @ a["value"]
        r = torch.sigmoid((h * a["mix_r"] + hh * (1 - a["mix_r"])) @ a["receptance"])
        ki = k[:, None]
        expo = torch.where(past, ki - dist * torch.exp(a["decay"]),
                           torch.where(now, ki + a["bonus"], -torch.inf))
        wgt = torch.exp(expo - expo.amax(dim=-2, keepdim=True).detach())
        wkv = (wgt * v[:, None]).sum(-2) / wgt.sum(-2)
        x = x + (r * wkv) @ a["output"]
        h = fn.layer_norm(x, (C,), layer["ln2_w"], layer["ln2_b"])
        hh = shift(h)
        k = (h * f["mix_k"] + hh * (1 - f["mix_k"])) @ f["key"]
        r = torch.sigmoid((h * f["mix_r"] + hh * (1 - f["mix_r"])) @ f["receptance"])
        x = x + r * (torch.relu(k) ** 2 @ f["value"])
    return fn.cross_entropy((x @ p["head"]).reshape(-1, V), ys.reshape(-1))


# ---- shared ----------------------------------------------------------------------------
def pycograd_step(loss: Callable, p: dict, *data: Any) -> Callable[[], Any]:
    vg = pg.value_and_grad(loss, argnums=0)

    def step() -> Any:
        value, g = vg(p, *data)
        return pg.tree_map(lambda w, d: w - LR * d, p, g), value
    return step


def torch_step(torch: Any, loss: Callable, p: dict, *data: Any) -> tuple[Callable, Callable]:
    tp = pg.tree_map(lambda w: torch.tensor(w, requires_grad=True), p)
    leaves = pg.tree_flatten(tp)[0]
    tdata = [torch.tensor(d) for d in data]

    def grads() -> tuple:
        value = loss(torch, tp, *tdata)
        return value, torch.autograd.grad(value, leaves)

    def step() -> Any:
        value, g = grads()
        with torch.no_grad():
            return [w - LR * d for w, d in zip(leaves, g)], value
    return step, grads


def check_same(p: dict, loss: Callable, tgrads: Callable, *data: Any) -> None:
    value, g = pg.value_and_grad(loss, argnums=0)(p, *data)
    tvalue, tg = tgrads()
    rtol = 1e-9 if value.dtype == np.float64 else 2e-3
    np.testing.assert_allclose(float(tvalue), float(value), rtol=rtol)
    for a, b in zip(pg.tree_flatten(g)[0], tg):
        np.testing.assert_allclose(b.numpy(), a, rtol=rtol, atol=rtol * 1e-2)


def show(title: str, medians: dict[str, float], against: str) -> None:
    print(title)
    for k, t in medians.items():
        print(f"  {k:<34} {t * 1e3:9.2f} ms   {t / medians[against]:6.2f}x {against}")


def sampling(p: dict, tokens: int = 1000) -> tuple[float, float]:
    """Median seconds per recurrent token near token 100 and near token ``tokens``."""
    rng = np.random.default_rng(1)
    state, times, token = None, [], np.array([0])
    for _ in range(tokens):
        t0 = time.perf_counter()
        logits, state = rwkv(p, token, state, recurrent=True)
        token = np.array([int(np.argmax(logits[-1] + rng.gumbel(size=V)))])
        times.append(time.perf_counter() - t0)
    return median(times[75:125]), median(times[tokens - 50:])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--dtype", default="float64", choices=("float32", "float64"))
    args = ap.parse_args(argv)
    dtype = np.dtype(args.dtype)
    torch = optional("torch")
    threadpoolctl = optional("threadpoolctl")
    if threadpoolctl is not None:
        threadpoolctl.threadpool_limits(1)
    if torch is None:
        sys.exit("bench_sequence compares against PyTorch eager: pip install torch")
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)

    p = gru_params(rng, dtype)
    xs = rng.normal(size=(GRU_T, GRU_B, GRU_I)).astype(dtype)
    ys = np.roll(xs, -1, axis=0)
    tstep, tgrads = torch_step(torch, torch_gru_step, p, xs, ys)
    check_same(p, gru_loss, tgrads, xs, ys)
    fused = torch.nn.GRU(GRU_I, GRU_H).to(getattr(torch, args.dtype))
    read = torch.nn.Linear(GRU_H, GRU_I).to(getattr(torch, args.dtype))
    txs, tys = torch.tensor(xs), torch.tensor(ys)
    fused_params = list(fused.parameters()) + list(read.parameters())

    def fused_step() -> Any:
        value = torch.mean((read(fused(txs)[0]) - tys) ** 2)
        g = torch.autograd.grad(value, fused_params)
        with torch.no_grad():
            return [w - LR * d for w, d in zip(fused_params, g)], value

    print(f"env: {environment()}")
    gru = compare({"pycograd gru_cell + scan": pycograd_step(gru_loss, p, xs, ys),
                   "torch eager (same cell, torch ops)": tstep,
                   "torch nn.GRU (fused kernel)": fused_step}, args.repeats, budget_s=20)
    show(f"GRU training step: hidden {GRU_H}, sequence {GRU_T}, batch {GRU_B}, input "
         f"{GRU_I}, {dtype}", gru, "torch eager (same cell, torch ops)")
    verdict(gru, "pycograd gru_cell + scan", "torch eager (same cell, torch ops)", 1.5)

    p = rwkv_params(rng, dtype)
    xs, ys = rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))
    tstep, tgrads = torch_step(torch, torch_rwkv_loss, p, xs, ys)
    check_same(p, rwkv_loss, tgrads, xs, ys)
    rw = compare({"pycograd RWKV (parallel wkv)": pycograd_step(rwkv_loss, p, xs, ys),
                  "torch eager RWKV (by hand)": tstep}, args.repeats, budget_s=20)
    show(f"RWKV training step: {LAYERS} layers, width {C}, ffn {F}, vocabulary {V}, "
         f"sequence {T}, batch {B}, {dtype}", rw, "torch eager RWKV (by hand)")

    early, late = sampling(p)
    print(f"RWKV recurrent sampling: median {early * 1e3:.3f} ms/token near token 100, "
          f"{late * 1e3:.3f} ms/token near token 1000: {late / early:.2f}x "
          f"(target <= 1.3x: {'met' if late <= 1.3 * early else 'MISSED'})")


if __name__ == "__main__":
    main()
