"""The GPU check for array devices: MLP and CNN training on a device match numpy within
1e-10 (float64), Adam's moments stay on the device, and the time per step is compared with
numpy at a size where a GPU should win.

    python benchmarks/gpu_check.py                 # device("cupy"): needs CuPy and a GPU
    python benchmarks/gpu_check.py --device array_api_strict --small   # the script itself, on CPU

Exits 0 when every check passes, 1 when one fails, 2 when the device is unavailable.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from pycograd import Adam, DeviceError, device, nn, on_cpu, on_device, value_and_grad
from pycograd.backends.arrays import DeviceArray

TOL = 1e-10


def _mlp_loss(p, X, y):
    h = nn.relu(nn.linear(X, p["w1"], p["b1"]))
    return nn.cross_entropy(nn.linear(h, p["w2"], p["b2"]), y)


def _cnn_loss(p, X, y):
    h = nn.max_pool2d(nn.relu(nn.conv2d(X, p["k"], p["kb"], padding=1)), 2)
    h = np.reshape(h, (h.shape[0], -1))
    return nn.cross_entropy(nn.linear(h, p["w"], p["b"]), y)


def mlp_problem(rng: np.random.Generator, n: int, d: int, hidden: int, classes: int = 10):
    params = {"w1": rng.standard_normal((hidden, d)) * np.sqrt(2 / d), "b1": np.zeros(hidden),
              "w2": rng.standard_normal((classes, hidden)) * np.sqrt(1 / hidden),
              "b2": np.zeros(classes)}
    return _mlp_loss, params, rng.standard_normal((n, d)), rng.integers(0, classes, n)


def cnn_problem(rng: np.random.Generator, n: int, side: int, channels: int = 4,
                classes: int = 10):
    flat = channels * (side // 2) ** 2
    params = {"k": rng.standard_normal((channels, 1, 3, 3)) / 3, "kb": np.zeros(channels),
              "w": rng.standard_normal((classes, flat)) / np.sqrt(flat),
              "b": np.zeros(classes)}
    return _cnn_loss, params, rng.standard_normal((n, 1, side, side)), \
        rng.integers(0, classes, n)


def train(loss, params, X, y, steps: int):
    """``steps`` Adam steps; the final parameters, the optimizer and the loss curve."""
    opt = Adam(1e-3)
    curve = []
    for _ in range(steps):
        value, g = value_and_grad(loss, 0)(params, X, y)
        params = opt.step(params, g)
        curve.append(value)
    return params, opt, curve


def compare(name: str, dev: str, problem, steps: int) -> bool:
    loss, params, X, y = problem
    p_cpu, _, c_cpu = train(loss, params, X, y, steps)
    with device(dev):
        p_dev, opt, c_dev = train(loss, on_device(params), on_device(X), on_device(y), steps)
    err = max(float(np.max(np.abs(on_cpu[p_dev[k]] - p_cpu[k]) / (1 + np.abs(p_cpu[k]))))
              for k in params)
    moments = [m for slots in opt.state.values() for m in slots.values()]
    on_dev = all(isinstance(m, DeviceArray) and m.device.name == dev for m in moments)
    ok = err <= TOL and on_dev and bool(moments)
    print(f"{name:4s} on {dev}: {steps} Adam steps, loss {float(c_cpu[0]):.4f} -> "
          f"{float(c_cpu[-1]):.4f}; max rel |params - numpy| = {err:.1e} (<= {TOL:g}: "
          f"{err <= TOL}); Adam moments on the device: {on_dev}")
    return ok


def time_per_step(dev: str, problem, steps: int) -> tuple[float, float]:
    """Seconds per training step on numpy and on ``dev`` (after one warm-up step)."""
    loss, params, X, y = problem
    sync = _sync(dev)

    def timed(run):
        run(1)
        t0 = time.perf_counter()
        run(steps)
        return (time.perf_counter() - t0) / steps
    t_cpu = timed(lambda k: train(loss, params, X, y, k))
    with device(dev):
        placed = (on_device(params), on_device(X), on_device(y))
        t_dev = timed(lambda k: sync(train(loss, *placed, k)[0]))
    return t_cpu, t_dev


def _sync(dev: str):
    if dev.startswith("cupy"):
        import cupy

        return lambda _: cupy.cuda.Device().synchronize()
    return lambda _: None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cupy")
    ap.add_argument("--small", action="store_true", help="tiny sizes (a CPU smoke run)")
    args = ap.parse_args(argv)
    try:
        device(args.device)
    except DeviceError as e:
        print(f"cannot run on {args.device!r}: {e}")
        return 2
    rng = np.random.default_rng(0)
    small = args.small
    ok = compare("MLP", args.device, mlp_problem(rng, 32 if small else 512, 16 if small else 256,
                                                 8 if small else 512), 5 if small else 20)
    ok &= compare("CNN", args.device, cnn_problem(rng, 4 if small else 64, 8 if small else 28),
                  3 if small else 10)
    big = mlp_problem(rng, 64 if small else 8192, 32 if small else 1024, 32 if small else 4096)
    t_cpu, t_dev = time_per_step(args.device, big, 2 if small else 10)
    print(f"time per MLP step (batch {big[2].shape[0]}, {big[2].shape[1]} -> "
          f"{big[1]['w1'].shape[0]} -> 10): numpy {t_cpu * 1e3:.1f} ms, {args.device} "
          f"{t_dev * 1e3:.1f} ms ({t_cpu / t_dev:.1f}x)")
    print("all checks passed" if ok else "A CHECK FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
