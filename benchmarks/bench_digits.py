"""One training epoch of the digits MLP demo in float32: pycograd against PyTorch eager.

The model, batch size and optimizer are the demo's (``pycograd.examples.mlp``: 64-64-10
ReLU MLP, softmax cross-entropy, Adam, batch 64) on the 1347 training digits, in
float32. pycograd runs ``train`` (``weights.grad`` + ``Adam.step`` per minibatch, what a
user calls); PyTorch runs the same loop with ``torch.optim.Adam``. Before timing, one
epoch over the same batch order is checked to give the same weights in both, and every
value in pycograd's forward and backward is checked to stay float32. Target: pycograd
within 1.5x of PyTorch eager. Needs scikit-learn (the examples extra) for the data.

    python benchmarks/bench_digits.py [--repeats N] [--profile] [--torch-threads N]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np
from harness import compare, optional, report

import pycograd
from pycograd import nn
from pycograd.core.primitive import UNSAVED
from pycograd.core.var import ANS, ARGS, PARENTS, PRIM
from pycograd.examples import mlp
from pycograd.examples.datasets import load_digits_split
from pycograd.optim import Adam, train

DTYPE = np.float32


def pycograd_model(seed: int = 0) -> tuple[Any, Callable, Callable]:
    """``(weights, forward, loss)`` of the demo's MLP in float32."""
    weights, forward = mlp.build(np.random.default_rng(seed), DTYPE)

    def loss(x: np.ndarray, y: np.ndarray) -> Any:
        return nn.cross_entropy(forward(x), y)

    return weights, forward, loss


def tape_nodes(outputs: list) -> list:
    """Every node of the eager tape below ``outputs`` (walking the nodes' parent links)."""
    seen, stack, nodes = set(), [o._node for o in outputs], []
    while stack:
        v = stack.pop()
        if id(v) not in seen:
            seen.add(id(v))
            nodes.append(v)
            stack.extend(p for _, p in v[PARENTS] or ())
    return nodes


def kept_dtypes(node: Any) -> list:
    """The dtypes of what the lean tape kept for ``node``: its residuals (values, or
    shape-and-dtype stand-ins) and its output when kept."""
    if node[PRIM] is None:  # a leaf: its Var is checked with the gradients
        return []
    kept = [*(node[ARGS] or ()), node[ANS]]
    return [d for d in (getattr(r, "dtype", None) for r in kept if r is not UNSAVED)
            if d is not None and d.kind in "fc"]


def check_float32(weights: Any, loss: Callable, X: np.ndarray, y: np.ndarray) -> int:
    """Every value computed from the weights in forward *and* backward stays float32; so
    do the gradients and, after an Adam step, the weights and the optimizer's moments.

    The weights enter ``value_and_grad`` as leaves of pycograd's eager tape, so the
    backward pass, which runs plain numpy on them, is recorded on that tape too; the
    walk then sees each forward and backward value. Returns the number of values seen."""
    leaves = {n: pycograd.Var(v) for n, v in weights.trainable().items()}
    value, grads = pycograd.value_and_grad(weights.functional(loss), argnums=0)(leaves, X, y)
    nodes = tape_nodes([value, *grads.values()])
    wide = sorted({f"{v[PRIM].name}: {d}" for v in nodes
                   for d in kept_dtypes(v) if d != DTYPE})
    assert len(nodes) > 20 and not wide, f"values widened in forward/backward: {wide}"
    value, grads = weights.grad(loss, X, y)
    assert np.asarray(value).dtype == DTYPE
    assert all(g.dtype == DTYPE for g in grads.values()), {k: g.dtype for k, g in grads.items()}
    opt = Adam(mlp.LR)
    opt.step(weights, grads)
    assert all(v.dtype == DTYPE for v in weights.values())
    assert all(v.dtype == DTYPE for v in opt.state_dict().values()
               if np.asarray(v).dtype.kind == "f")
    return len(nodes)


def torch_model(torch: Any, weights: Any) -> tuple[list, Callable]:
    """The same MLP in PyTorch, starting from copies of ``weights``."""
    F = torch.nn.functional
    params = [torch.tensor(np.array(weights[n]), requires_grad=True)
              for n in ("w1", "b1", "w2", "b2")]
    w1, b1, w2, b2 = params

    def loss(x: Any, y: Any) -> Any:
        return F.cross_entropy(F.linear(F.relu(F.linear(x, w1, b1)), w2, b2), y)

    return params, loss


def torch_epoch(torch: Any, params: list, loss: Callable, opt: Any, X: Any, y: Any,
                order: Any) -> None:
    for lo in range(0, len(order) - mlp.BATCH_SIZE + 1, mlp.BATCH_SIZE):
        idx = order[lo:lo + mlp.BATCH_SIZE]
        opt.zero_grad(set_to_none=True)
        loss(X[idx], y[idx]).backward()
        opt.step()


def check_same_epoch(torch: Any, X: np.ndarray, y: np.ndarray) -> None:
    """One epoch over one batch order gives the same weights in pycograd and PyTorch."""
    weights, _, loss = pycograd_model()
    params, tloss = torch_model(torch, weights)
    order = np.random.default_rng(1).permutation(len(X))
    opt = Adam(mlp.LR)
    for lo in range(0, len(order) - mlp.BATCH_SIZE + 1, mlp.BATCH_SIZE):
        idx = order[lo:lo + mlp.BATCH_SIZE]
        _, grads = weights.grad(loss, X[idx], y[idx])
        opt.step(weights, grads)
    torch_epoch(torch, params, tloss, torch.optim.Adam(params, lr=mlp.LR),
                torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(order))
    for name, p in zip(("w1", "b1", "w2", "b2"), params):
        np.testing.assert_allclose(weights[name], p.detach().numpy(), rtol=1e-3, atol=1e-4,
                                   err_msg=name)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=40)
    ap.add_argument("--profile", action="store_true", help="cProfile pycograd's epoch")
    ap.add_argument("--torch-threads", type=int, default=1,
                    help="PyTorch intra-op threads (default 1: numpy runs these small ops on "
                         "one core, and on a busy machine a second torch thread mostly waits)")
    args = ap.parse_args(argv)

    X, _, y, _ = load_digits_split(DTYPE)
    steps = len(X) // mlp.BATCH_SIZE
    weights, _, loss = pycograd_model()
    stages = check_float32(weights.copy(), loss, X[:mlp.BATCH_SIZE], y[:mlp.BATCH_SIZE])
    print(f"float32 check: all {stages} forward/backward values on the tape, the gradients, "
          "the updated weights and Adam's moments are float32")

    opt = Adam(mlp.LR)
    epochs = iter(range(10**9))

    def pycograd_epoch() -> None:
        train(weights, loss, steps, opt, X, y, batch_size=mlp.BATCH_SIZE, progress=False,
              key=pycograd.random.key(next(epochs)))

    contenders: dict[str, Callable] = {"pycograd train": pycograd_epoch}
    skipped = []
    torch = optional("torch")
    if torch is not None:
        torch.set_num_threads(args.torch_threads)
        check_same_epoch(torch, X, y)
        print("same-epoch check: pycograd and PyTorch weights agree after one epoch")
        params, tloss = torch_model(torch, pycograd_model()[0])
        topt = torch.optim.Adam(params, lr=mlp.LR)
        tX, ty = torch.from_numpy(X), torch.from_numpy(y)
        contenders["pytorch eager"] = lambda: torch_epoch(
            torch, params, tloss, topt, tX, ty, torch.randperm(len(X)))
    else:
        skipped.append("pytorch eager")

    medians = compare(contenders, args.repeats, budget_s=5.0)
    floor = "pytorch eager" if torch is not None else "pycograd train"
    report(f"digits MLP 64-{mlp.HIDDEN}-10, Adam, batch {mlp.BATCH_SIZE}, float32: one epoch "
           f"({steps} steps, median)", medians, floor, skipped)
    if torch is not None:
        ratio = medians["pycograd train"] / medians["pytorch eager"]
        print(f"  pycograd / pytorch eager = {ratio:.2f}x  (target <= 1.5x: "
              f"{'met' if ratio <= 1.5 else 'MISSED'}); "
              f"{medians['pycograd train'] / steps * 1e6:.0f} us per pycograd step")
    if args.profile:
        import cProfile
        import pstats

        pr = cProfile.Profile()
        pr.enable()
        for _ in range(20):
            pycograd_epoch()
        pr.disable()
        pstats.Stats(pr).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
