"""One rank of the data-parallel tests (``tests/test_distributed.py`` starts 2 of them on
127.0.0.1): ``python dist_worker.py SCENARIO OUTDIR``. Each scenario writes what the test
checks into OUTDIR; an expected error is written to ``error-RANK.txt`` with exit code 17."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

import pycograd
from pycograd import distributed, nn
from pycograd.optim import Adam, load_checkpoint, save_checkpoint

EXPECTED_ERROR = 17
STEPS, BATCH = 20, 16
UNEVEN_STEPS = 5


def problem(seed: int = 0) -> tuple:
    """A small MLP classification problem, the same on every rank for the same seed."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((64, 8))
    y = rng.integers(0, 4, 64)
    w1, b1 = rng.standard_normal((16, 8)) * 0.5, np.zeros(16)
    w2, b2 = rng.standard_normal((4, 16)) * 0.5, np.zeros(4)
    weights = pycograd.ParamDict(w1=w1, b1=b1, w2=w2, b2=b2)

    def loss(x, t):  # reads the weights by bare name: bound to traced values in grad
        return nn.cross_entropy(nn.linear(nn.relu(nn.linear(x, w1, b1)), w2, b2), t)

    return weights, loss, X, y


def dump(out: Path, name: str, weights: pycograd.ParamDict) -> None:
    np.savez(out / name, **weights.state_dict())  # every rank, bypassing the rank-0 rule


def scenario_train(out: Path, rank: int) -> None:
    # Each rank starts from different weights: train broadcasts rank 0's.
    weights, loss, X, y = problem()
    if rank:
        for k, v in weights.trainable().items():
            weights.assign(k, v + 1.0)
    losses = []
    first, last = pycograd.train(weights, loss, STEPS, Adam(1e-2), X, y, batch_size=BATCH,
                                 data_parallel=True, progress=False,
                                 callbacks=[lambda s, v: losses.append(v)])
    dump(out, f"rank{rank}.npz", weights)
    np.save(out / f"losses{rank}.npy", np.array(losses))
    weights.save(out / f"saved-by-{rank}.npz")
    # Accumulating 2 batches of BATCH rows per step (one exchange per step) is a step on
    # 2 * BATCH rows; 48 rows of 64 keep the two batch sizes' epochs aligned.
    weights, loss, X, y = problem()
    pycograd.train(weights, loss, STEPS, Adam(1e-2), X[:48], y[:48], batch_size=BATCH // 2,
                   accumulate=2, data_parallel=True, progress=False)
    dump(out, f"accumulated{rank}.npz", weights)
    # A stop asked by rank 1's callback after step 4 stops both ranks there, and rides in
    # the next step's exchange: callbacks add no collective.
    import torch.distributed as tdist

    counted = {"n": 0}
    real = tdist.all_reduce

    def counting(*args, **kwargs):
        counted["n"] += 1
        return real(*args, **kwargs)

    tdist.all_reduce = counting
    try:
        calls = []
        for callbacks in ([], [lambda s, v: calls.append(s)],
                          [lambda s, v: calls.append(s) or (rank == 1 and s == 4)]):
            weights, loss, X, y = problem()
            before = counted["n"]
            first, last = pycograd.train(weights, loss, STEPS, Adam(1e-2), X, y,
                                         batch_size=BATCH, data_parallel=True,
                                         progress=False, callbacks=callbacks)
            (out / f"collectives{len(callbacks) and len(calls)}-{rank}.txt").write_text(
                str(counted["n"] - before))
    finally:
        tdist.all_reduce = real
    dump(out, f"stopped{rank}.npz", weights)
    (out / f"stop-calls{rank}.txt").write_text(" ".join(map(str, calls[STEPS:])))
    np.save(out / f"stop-last{rank}.npy", np.array([first, last]))


def scenario_resume(out: Path, rank: int) -> None:
    """Full-batch steps (sharded): 10 steps, checkpoint, then a second run of 10 from it."""
    weights, loss, X, y = problem()
    opt = Adam(1e-2)
    pycograd.train(weights, loss, STEPS // 2, opt, X, y, data_parallel=True, progress=True)
    save_checkpoint(out / "ckpt.npz", weights, opt)
    weights.save(out / "weights.npz")
    distributed.barrier()
    weights2, loss2, _, _ = problem(seed=1)  # other values: the file must restore them
    opt2 = Adam(1e-2)
    load_checkpoint(out / "ckpt.npz", weights2, opt2)
    assert all(np.array_equal(weights2[k], v) for k, v in
               pycograd.ParamDict.load(out / "weights.npz").items())
    pycograd.train(weights2, loss2, STEPS // 2, opt2, X, y, data_parallel=True)
    dump(out, f"rank{rank}.npz", weights2)
    # 63 rows split 31 / 32: each rank's share of the mean is weighted by its rows.
    weights3, loss3, _, _ = problem()
    pycograd.train(weights3, loss3, UNEVEN_STEPS, Adam(1e-2), X[:63], y[:63],
                   data_parallel=True)
    dump(out, f"uneven{rank}.npz", weights3)


def torch_problem(seed: int = 0) -> tuple:
    """``problem``'s MLP as ``(weights, forward)`` for ``to_torch_module``: the forward gives
    logits, the loss is torch's cross-entropy."""
    weights, _, X, y = problem(seed)
    w1, b1, w2, b2 = (weights[k] for k in ("w1", "b1", "w2", "b2"))

    def forward(x):  # reads the weights by bare name: captured as the module's parameters
        return nn.linear(nn.relu(nn.linear(x, w1, b1)), w2, b2)

    return weights, forward, X, y


def torch_train(module, loader, steps: int, trace: list | None = None) -> list[float]:
    """``steps`` steps of torch's Adam on ``module`` (bare or wrapped by DDP) over the
    batches of ``loader``; ``trace`` collects a digest of the parameters after each step."""
    import hashlib

    import torch

    opt = torch.optim.Adam(module.parameters(), lr=1e-2)
    losses: list[float] = []
    batches = iter(())
    while len(losses) < steps:
        batch = next(batches, None)
        if batch is None:
            batches = iter(loader)
            continue
        x, t = (torch.from_numpy(np.ascontiguousarray(a)) for a in batch)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(module(x), t)
        loss.backward()
        opt.step()
        losses.append(float(loss))
        if trace is not None:
            trace.append(hashlib.blake2b(b"".join(
                p.detach().numpy().tobytes() for p in module.parameters())).hexdigest())
    return losses


def scenario_ddp(out: Path, rank: int) -> None:
    """``weights.to_torch_module(forward)`` trained under DistributedDataParallel on the
    group ``distributed.init`` started; rank 0 also trains the same module alone on the
    global batches, the reference."""
    import torch
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    distributed.init(timeout=60)
    _, _, X, y = torch_problem()  # the same data on every rank
    weights, forward, _, _ = torch_problem(seed=rank)  # different weights: DDP takes rank 0's
    module = weights.to_torch_module(forward)
    ddp = DistributedDataParallel(module)
    start = {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}
    loader = pycograd.DataLoader(X, y, batch_size=BATCH, key=pycograd.random.key(0),
                                 data_parallel=True)  # this rank's half of each batch
    trace: list[str] = []
    torch_train(ddp, loader, STEPS, trace)
    np.savez(out / f"ddp{rank}.npz", **{k: v.detach().numpy()
                                       for k, v in module.state_dict().items()})
    np.savez(out / f"ddp-start{rank}.npz", **start)
    (out / f"trace{rank}.txt").write_text("\n".join(trace))
    if rank == 0:
        weights, forward, X, y = torch_problem(seed=0)
        alone = weights.to_torch_module(forward)
        torch_train(alone, pycograd.DataLoader(X, y, batch_size=BATCH,
                                               key=pycograd.random.key(0)), STEPS)
        np.savez(out / "alone.npz", **{k: v.detach().numpy()
                                       for k, v in alone.state_dict().items()})


def scenario_die(out: Path, rank: int) -> None:
    distributed.init(timeout=30, grace=30)
    weights, loss, X, y = problem()

    def die(step, value):
        if rank == int(os.environ.get("DIE_RANK", 1)) and step == 5:
            os._exit(3)

    pycograd.train(weights, loss, STEPS, Adam(1e-2), X, y, batch_size=BATCH,
                   data_parallel=True, callbacks=[die])


def scenario_stuck(out: Path, rank: int) -> None:
    distributed.init(timeout=3, grace=2)
    weights, loss, X, y = problem()

    def stall(step, value):
        if rank == 1 and step == 3:
            time.sleep(3600)

    pycograd.train(weights, loss, STEPS, Adam(1e-2), X, y, batch_size=BATCH,
                   data_parallel=True, callbacks=[stall])


def mismatches(out: Path, rank: int) -> None:
    cases = {"shape": {"a": np.zeros(3 + rank)},
             "structure": {"a": np.zeros(3)} if rank == 0 else {"b": np.zeros(3)},
             "dtype": {"a": np.zeros(3, np.float64 if rank == 0 else np.float32)}}
    messages = []
    for name, tree in cases.items():
        try:
            distributed.all_reduce_mean(tree)
        except distributed.RankMismatchError as e:
            messages.append(f"{name}: {e}")
        else:
            raise AssertionError(f"{name}: no error")
    try:  # check=False still checks a tree it has not seen agreed
        distributed.all_reduce_mean({"c": np.zeros(2 + rank)}, check=False)
    except distributed.RankMismatchError as e:
        messages.append(f"unchecked: {e}")
    try:
        distributed.broadcast([np.zeros(2)] * (1 + rank))
    except distributed.RankMismatchError as e:
        messages.append(f"broadcast: {e}")
    # The group still works after the refused calls.
    mean = distributed.all_reduce_mean({"a": np.full(3, float(rank))})
    assert np.array_equal(mean["a"], np.full(3, 0.5)), mean
    (out / f"messages{rank}.txt").write_text("\n---\n".join(messages))


def scenario_collectives(out: Path, rank: int) -> None:
    import ml_dtypes

    distributed.init(timeout=30)
    r = float(rank)
    shared = np.full(2, 1.0 + r)
    tree = {"f64": np.array([1.0, 2.0]) * (r + 1), "f32": np.float32(3.0 + r),
            "c128": np.array([1 + 2j, -1j]) * (r + 1), "c64": np.complex64(2j * r),
            "f16": np.array([1.5 + r], np.float16),
            "bf16": np.array([2.0 + r], ml_dtypes.bfloat16),
            "none": None, "tied": (shared, shared), "loss": 2.0 * r,
            "strided": np.arange(12.0).reshape(3, 4)[:, ::2] * (r + 1)}
    m = distributed.all_reduce_mean(tree)
    assert np.array_equal(m["f64"], [1.5, 3.0]) and m["f64"].dtype == np.float64
    assert m["f32"] == 3.5 and m["f32"].dtype == np.float32 and m["f32"].shape == ()
    assert np.array_equal(m["c128"], np.array([1 + 2j, -1j]) * 1.5)
    assert m["c128"].dtype == np.complex128
    assert m["c64"] == 1j and m["c64"].dtype == np.complex64
    assert m["f16"][0] == 2.0 and m["f16"].dtype == np.float16
    assert float(m["bf16"][0]) == 2.5 and m["bf16"].dtype == ml_dtypes.bfloat16
    assert m["none"] is None and m["loss"] == 1.0
    assert np.array_equal(m["tied"][0], [1.5, 1.5]) and m["tied"][1] is m["tied"][0]
    assert np.array_equal(m["strided"], np.arange(12.0).reshape(3, 4)[:, ::2] * 1.5)
    assert np.array_equal(tree["f64"], np.array([1.0, 2.0]) * (r + 1))  # input untouched
    weights = pycograd.ParamDict(w=np.full(3, r), b=pycograd.buffer[np.arange(2) + rank])
    assert distributed.broadcast(weights) is weights
    assert np.array_equal(weights["w"], np.zeros(3))
    assert np.array_equal(weights["b"], np.arange(2))
    got = distributed.broadcast({"i": np.array([rank, 7]), "s": np.array(f"rank{rank}"),
                                 "flag": np.array(rank == 1)}, src=1)
    assert got["i"].tolist() == [1, 7] and str(got["s"]) == "rank1" and bool(got["flag"])
    assert distributed.any_rank(rank == 1) and not distributed.any_rank(False)
    global_batches = [b[0].tolist() for b in pycograd.batches(
        np.arange(8), batch_size=4, shuffle=False, data_parallel=True)]
    assert global_batches == ([[0, 1], [4, 5]] if rank == 0 else [[2, 3], [6, 7]])
    loader = pycograd.DataLoader(np.arange(8), batch_size=4, key=pycograd.random.key(3),
                                 data_parallel=True)
    mine = np.concatenate([b[0] for b in loader])
    both = [np.zeros(4, np.int64), np.zeros(4, np.int64)]
    both[rank] = mine
    both = distributed.broadcast(both[0], src=0), distributed.broadcast(both[1], src=1)
    assert sorted(np.concatenate(both).tolist()) == list(range(8))  # each row once
    # small buffers are summed by gathering, large ones by the ring all-reduce: both agree
    from pycograd.distributed import collectives

    rng = np.random.default_rng(rank)
    big = {"w": rng.standard_normal((70, 9)), "v": rng.standard_normal(5).astype(np.float32)}
    gathered = distributed.all_reduce_mean(big)
    limit, collectives.GATHER_BYTES = collectives.GATHER_BYTES, 0
    try:
        ring = distributed.all_reduce_mean(big)
    finally:
        collectives.GATHER_BYTES = limit
    both = [np.random.default_rng(r).standard_normal((70, 9)) for r in (0, 1)]
    for k in big:
        np.testing.assert_allclose(ring[k], gathered[k], rtol=1e-6 if k == "v" else 1e-15)
    assert np.array_equal(gathered["w"], (both[0] + both[1]) / 2)
    mismatches(out, rank)
    (out / f"ok{rank}").write_text("ok")


def scenario_exit(out: Path, rank: int) -> None:
    """Leave without calling shutdown, rank 1 a little later than rank 0: the exit handler
    registered by init must keep rank 0 from closing its connections under rank 1."""
    distributed.init(timeout=30, grace=30)
    distributed.all_reduce_mean([np.ones(3)])
    if rank == 1:
        time.sleep(1.0)
    (out / f"done{rank}").write_text("done")
    sys.exit(0)  # a normal exit: atexit handlers and interpreter teardown run


def main() -> None:
    scenario, out = sys.argv[1], Path(sys.argv[2])
    rank = int(os.environ["RANK"])
    try:
        globals()[f"scenario_{scenario}"](out, rank)
    except distributed.DistributedError as e:
        (out / f"error-{rank}.txt").write_text(f"{type(e).__name__}: {e}")
        sys.exit(EXPECTED_ERROR)
    distributed.shutdown()


if __name__ == "__main__":
    main()
