"""Data parallel over torch.distributed (gloo): real processes on 127.0.0.1 only.

Each multi-process test starts 2 ranks of ``dist_worker.py`` (by hand with torchrun's
environment, or through ``torchrun --standalone``), with every wait bounded: a hung rank
fails the test instead of hanging it. Skipped when torch is not installed."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import pycograd
from pycograd import distributed
from pycograd.distributed import packing, sharding
from pycograd.optim import Adam

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORKER = HERE / "dist_worker.py"
LIMIT_S = 180  # generous for a loaded 2-core machine; a hang shows up as this timeout
EXPECTED_ERROR = 17


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", **extra)


def _finish(procs: list[subprocess.Popen], deadline: float,
            stop_after_first: bool = False) -> list[tuple[int | None, str]]:
    """Wait for every process until ``deadline``; kill what is left (a hang fails the test
    through the None return code, it never blocks it)."""
    results: list[tuple[int | None, str]] = []
    try:
        for i, p in enumerate(procs):
            if stop_after_first and i > 0:
                p.kill()
            try:
                out, _ = p.communicate(timeout=max(0.1, deadline - time.monotonic()))
                results.append((p.returncode, out))
            except subprocess.TimeoutExpired:
                p.kill()
                results.append((None, p.communicate()[0]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return results


def launch(scenario: str, out: Path, nproc: int = 2, stop_after_first: bool = False,
           env: dict[str, str] | None = None) -> list[tuple[int | None, str]]:
    """Start ``nproc`` ranks by hand (MASTER_ADDR=127.0.0.1) and wait for them."""
    port = str(_free_port())
    procs = [subprocess.Popen(
        [sys.executable, str(WORKER), scenario, str(out)],
        env=_env(RANK=str(r), WORLD_SIZE=str(nproc), LOCAL_RANK=str(r),
                 MASTER_ADDR="127.0.0.1", MASTER_PORT=port, **(env or {})),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for r in range(nproc)]
    return _finish(procs, time.monotonic() + LIMIT_S, stop_after_first)


def _ok(results: list) -> None:
    for rank, (rc, out) in enumerate(results):
        assert rc == 0, f"rank {rank} exited with {rc}:\n{out[-3000:]}"


def _load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _reference(steps: int, batch_size: int | None, rows: int = 64) -> dict[str, np.ndarray]:
    """One process's weights after ``steps`` Adam steps; checked to have trained (the
    weights moved and the loss fell), so matching them is not vacuous."""
    from dist_worker import problem

    weights, loss, X, y = problem()
    start = {k: np.array(v) for k, v in weights.state_dict().items()}
    first, last = pycograd.train(weights, loss, steps, Adam(1e-2), X[:rows], y[:rows],
                                 batch_size=batch_size, progress=False)
    assert last < first
    assert all(np.abs(weights[k] - v).max() > 1e-4 for k, v in start.items())
    return {k: np.array(v) for k, v in weights.state_dict().items()}


# -- without a process group ----------------------------------------------------------


def test_import_pycograd_leaves_torch_alone():
    code = ("import sys, pycograd; assert 'torch' not in sys.modules; "
            "assert pycograd.distributed.rank() == 0 and pycograd.distributed.world_size() == 1")
    subprocess.run([sys.executable, "-c", code], env=_env(), check=True, timeout=LIMIT_S)


def test_missing_torch_names_the_install_command():
    code = ("import sys; sys.modules['torch'] = None\n"
            "from pycograd import distributed\n"
            "try:\n    distributed.init()\nexcept distributed.TorchMissingError as e:\n"
            "    assert isinstance(e, ImportError) and 'pycograd[torch]' in str(e), e\n"
            "else:\n    raise SystemExit('no error')")
    subprocess.run([sys.executable, "-c", code], env=_env(), check=True, timeout=LIMIT_S)


def test_init_outside_torchrun_says_how_to_launch(monkeypatch):
    pytest.importorskip("torch")
    for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(distributed.DistributedError, match="torchrun"):
        distributed.init()
    w = pycograd.ParamDict(w=np.ones(2))
    with pytest.raises(distributed.DistributedError, match="torchrun"):
        pycograd.train(w, lambda: np.sum(w["w"] ** 2), 1, 0.1, data_parallel=True)
    with pytest.raises(distributed.DistributedError, match="init"):
        distributed.all_reduce_mean([np.ones(2)])


def test_shards_cover_each_batch_once():
    for n, world in [(16, 2), (7, 2), (10, 3), (3, 3)]:
        cuts = [sharding.bounds(n, r, world) for r in range(world)]
        assert cuts[0][0] == 0 and cuts[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(cuts, cuts[1:]))
    X = np.arange(10).reshape(5, 2)
    assert np.array_equal(distributed.shard((X,), rank=1, world_size=2)[0], X[2:])
    with pytest.raises(distributed.DistributedError, match="cannot be split"):
        sharding.bounds(1, 0, 2)
    batches = list(pycograd.batches(np.arange(8), batch_size=4, shuffle=False))
    assert [b[0].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_packing_round_trip_and_dtype_errors():
    shared = np.ones(3)
    leaves = [np.arange(6.0).reshape(2, 3)[:, ::2], np.complex64(1 - 2j), shared, shared,
              np.array([1.5], np.float16), np.array(2.0, np.float32)]
    arrays = [np.asarray(x) for x in leaves]
    layout = packing.sum_layout(arrays, packing.sharing(leaves), "test")
    assert len(layout.sizes) == 2  # float64 (with nothing else), float32 (with c64, f16)
    out = packing.unpack(packing.pack(layout, arrays))
    for a, b in zip(arrays, out):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    assert out[2] is out[3]
    raw = [np.array(["ab", "c"]), np.arange(3), np.array(True), np.float64(2.5)]
    layout = packing.bytes_layout(raw, packing.sharing(raw), "test")
    back = packing.unpack(packing.pack(layout, raw))
    assert all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(raw, back))
    with pytest.raises(distributed.DistributedError, match="int64"):
        packing.sum_layout([np.arange(3)], (0,), "all_reduce_mean")


def test_accumulate_averages_consecutive_batches():
    # k batches of b rows per step = one batch of k*b rows (the batches tile each epoch)
    from dist_worker import problem

    finals = {}
    for batch_size, k in [(32, 1), (16, 2), (8, 4)]:
        weights, loss, X, y = problem()
        first, last = pycograd.train(weights, loss, 12, Adam(1e-2), X, y,
                                     batch_size=batch_size, accumulate=k, progress=False)
        assert last < first
        finals[k] = weights.state_dict()
    for k in (2, 4):
        for name, v in finals[1].items():
            np.testing.assert_allclose(finals[k][name], v, rtol=0, atol=1e-12, err_msg=name)
    weights, loss, X, y = problem()
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(pycograd.ArgumentError, match="accumulate must be a positive int"):
            pycograd.train(weights, loss, 1, 0.1, X, y, accumulate=bad)


# -- real processes ------------------------------------------------------------------

needs_torch = pytest.mark.skipif(
    __import__("importlib").util.find_spec("torch") is None, reason="torch is not installed")


@needs_torch
@pytest.mark.slow
def test_collectives_sharding_and_mismatched_trees(tmp_path):
    # dtypes, shared and None leaves, broadcast of any dtype, batches / DataLoader shards;
    # then trees that differ across ranks: every rank raises before any data moves, and
    # the group still works afterwards.
    _ok(launch("collectives", tmp_path))
    assert (tmp_path / "ok0").exists() and (tmp_path / "ok1").exists()
    for rank in (0, 1):
        text = (tmp_path / f"messages{rank}.txt").read_text()
        assert "rank 0: all_reduce_mean of {'a': float64[3]}" in text
        assert "rank 1: all_reduce_mean of {'a': float64[4]}" in text
        assert "rank 1: all_reduce_mean of {'b': float64[3]}" in text
        assert "rank 1: all_reduce_mean of {'a': float32[3]}" in text
        assert "rank 1: all_reduce_mean of {'c': float64[3]}" in text
        assert "rank 1: broadcast from rank 0 of list(float64[2], float64[2])" in text


@needs_torch
@pytest.mark.slow
def test_two_ranks_on_half_batches_match_one_process(tmp_path):
    # Launched by torchrun --standalone (its agent hosts the store); the ranks start from
    # different weights, so rank 0's must have been broadcast.
    from dist_worker import BATCH, STEPS

    _ok(_torchrun(WORKER, "train", str(tmp_path)))
    ref = _reference(STEPS, BATCH)
    r0, r1 = _load(tmp_path / "rank0.npz"), _load(tmp_path / "rank1.npz")
    for k, v in ref.items():
        assert np.array_equal(r0[k], r1[k]), f"{k}: the ranks' weights differ"
        np.testing.assert_allclose(r0[k], v, rtol=0, atol=1e-10, err_msg=k)
        assert np.abs(r0[k] - v).max() <= 1e-10
    l0, l1 = np.load(tmp_path / "losses0.npy"), np.load(tmp_path / "losses1.npy")
    assert len(l0) == STEPS and np.array_equal(l0, l1)
    # weights.save under data parallel: rank 0 wrote, rank 1 did not.
    assert not (tmp_path / "saved-by-1.npz").exists()
    saved = pycograd.ParamDict.load(tmp_path / "saved-by-0.npz")
    assert all(np.array_equal(saved[k], r0[k]) for k in ref)
    # accumulate=2 over half batches: the same steps as one process on whole batches
    ref = _reference(STEPS, BATCH, rows=48)
    a0, a1 = _load(tmp_path / "accumulated0.npz"), _load(tmp_path / "accumulated1.npz")
    for k, v in ref.items():
        assert np.array_equal(a0[k], a1[k]), f"{k}: the ranks' weights differ"
        np.testing.assert_allclose(a0[k], v, rtol=0, atol=1e-10, err_msg=f"accumulated {k}")
    # rank 1 asked to stop after step 4: both ranks stopped there, as 5 steps of 1 process
    for rank in (0, 1):
        assert (tmp_path / f"stop-calls{rank}.txt").read_text() == "0 1 2 3 4"
        plain = int((tmp_path / f"collectives0-{rank}.txt").read_text())
        assert int((tmp_path / f"collectives{STEPS}-{rank}.txt").read_text()) == plain
    assert plain <= STEPS + 8  # one per step, plus the start's broadcasts and checks
    ref, l0 = _reference(5, BATCH), np.load(tmp_path / "stop-last0.npy")
    s0, s1 = _load(tmp_path / "stopped0.npz"), _load(tmp_path / "stopped1.npz")
    assert np.array_equal(l0, np.load(tmp_path / "stop-last1.npy"))
    for k, v in ref.items():
        assert np.array_equal(s0[k], s1[k]), f"{k}: the ranks' weights differ"
        np.testing.assert_allclose(s0[k], v, rtol=0, atol=1e-10, err_msg=f"stopped {k}")


@needs_torch
@pytest.mark.slow
def test_a_run_resumes_from_the_saved_file(tmp_path):
    from dist_worker import STEPS, UNEVEN_STEPS

    results = launch("resume", tmp_path)
    _ok(results)
    # progress=True: the bar is drawn by rank 0 only.
    assert "10/10" in results[0][1] and "step/s" in results[0][1]
    assert "10/10" not in results[1][1] and "step/s" not in results[1][1]
    for name, ref in [("rank", _reference(STEPS, None)),
                      ("uneven", _reference(UNEVEN_STEPS, None, rows=63))]:
        r0, r1 = _load(tmp_path / f"{name}0.npz"), _load(tmp_path / f"{name}1.npz")
        for k, v in ref.items():
            assert np.array_equal(r0[k], r1[k])
            np.testing.assert_allclose(r0[k], v, rtol=0, atol=1e-10, err_msg=f"{name} {k}")


@needs_torch
@pytest.mark.slow
@pytest.mark.parametrize("dead", [1, 0])
def test_a_dead_rank_is_named_and_nobody_hangs(tmp_path, dead):
    # Rank 0 also hosts the rendezvous store here: its death takes the store down too.
    results = launch("die", tmp_path, env={"DIE_RANK": str(dead)})
    live = 1 - dead
    assert results[dead][0] == 3
    assert results[live][0] == EXPECTED_ERROR, results[live][1][-3000:]
    msg = (tmp_path / f"error-{live}.txt").read_text()
    assert msg.startswith("RankLostError") and f"lost rank {dead}: its process" in msg, msg


@needs_torch
@pytest.mark.slow
def test_a_stuck_rank_times_out_and_is_named(tmp_path):
    # rank 1 sleeps inside a callback; rank 0's collective times out (3 s), waits its 2 s
    # grace, and names rank 1. The test then kills rank 1.
    (rc0, out0), _ = launch("stuck", tmp_path, stop_after_first=True)
    assert rc0 == EXPECTED_ERROR, out0[-3000:]
    msg = (tmp_path / "error-0.txt").read_text()
    assert "lost rank 1" in msg and "did not answer within 2 s" in msg, msg


@needs_torch
@pytest.mark.slow
def test_leaving_without_shutdown_exits_cleanly(tmp_path):
    # Regression: a process that exited with its group still up could abort in teardown
    # ("terminate called without an active exception", exit code -6), about one run in
    # three; init now registers a shutdown that waits for every rank, then destroys.
    results = launch("exit", tmp_path)
    _ok(results)
    assert (tmp_path / "done0").exists() and (tmp_path / "done1").exists()


def _torchrun(script: Path, *args: str, **env: str) -> list[tuple[int | None, str]]:
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun is not next to this Python")
    proc = subprocess.Popen(
        [str(torchrun), "--standalone", "--nproc_per_node=2", "--local-addr", "127.0.0.1",
         str(script), *args],
        env=_env(**env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return _finish([proc], time.monotonic() + LIMIT_S)


@needs_torch
@pytest.mark.slow
@pytest.mark.parametrize("marker, printed", [("data_parallel=distributed.launched()", "loss"),
                                             ("DistributedDataParallel(module)", "ddp loss")])
def test_the_readme_scripts_run_under_torchrun(tmp_path, marker, printed):
    blocks = re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(),
                        re.S | re.M)
    script = tmp_path / "train.py"
    script.write_text(next(b for b in blocks if marker in b))
    [(rc, out)] = _torchrun(script, TMPDIR=str(tmp_path))
    assert rc == 0, out[-3000:]
    assert out.count("process(es)") == 1 and "on 2 process(es)" in out, out[-3000:]
    assert f"{printed} " in out, out[-3000:]
    if "train_mlp" in script.read_text():
        assert (tmp_path / "train_mlp.npz").exists()


@needs_torch
@pytest.mark.slow
def test_to_torch_module_trains_under_distributed_data_parallel(tmp_path):
    # The other route: the lowered module under torch's own DDP, on the group that
    # distributed.init() started, each rank on its half of every batch (DataLoader(...,
    # data_parallel=True)). The ranks start from different weights: DDP takes rank 0's.
    from dist_worker import STEPS, problem

    _ok(launch("ddp", tmp_path))
    start0, start1 = _load(tmp_path / "ddp-start0.npz"), _load(tmp_path / "ddp-start1.npz")
    assert all(np.array_equal(start0[k], start1[k]) for k in start0)
    initial = problem(seed=0)[0]
    assert all(np.array_equal(start0[k], initial[k]) for k in start0)
    t0 = (tmp_path / "trace0.txt").read_text().split()
    t1 = (tmp_path / "trace1.txt").read_text().split()
    assert len(t0) == STEPS and t0 == t1  # identical parameters after every step
    r0, r1 = _load(tmp_path / "ddp0.npz"), _load(tmp_path / "ddp1.npz")
    alone = _load(tmp_path / "alone.npz")
    assert sorted(r0) == ["b1", "b2", "w1", "w2"]
    for k, v in alone.items():
        assert np.array_equal(r0[k], r1[k]), k
        assert np.abs(r0[k] - start0[k]).max() > 1e-3, f"{k} did not train"
        np.testing.assert_allclose(r0[k], v, rtol=0, atol=1e-10, err_msg=k)
