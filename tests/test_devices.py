"""Devices: the ``device`` block, transfers, placement across two devices, errors, and
training (optimizers, ParamDict, nn ops) on a library that refuses conversion to numpy."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

import pycograd
from pycograd import (
    Adam,
    DeviceError,
    ParamDict,
    PycogradError,
    current_device,
    device,
    grad,
    nn,
    on_cpu,
    on_device,
    value_and_grad,
)
from pycograd.backends.arrays import DeviceArray

xp = pytest.importorskip("array_api_strict")
D1, D2 = "array_api_strict:device1", "array_api_strict:device2"


@pytest.fixture
def no_numpy(monkeypatch):
    """Any conversion of a device array to numpy fails, except through ``on_cpu``."""
    allowed = [0]
    for name in ("asarray", "array", "asanyarray"):
        real = getattr(np, name)

        def check(a, *args, _real=real, **kwargs):
            if isinstance(a, DeviceArray) or type(a).__module__.startswith("array_api_strict"):
                raise AssertionError(f"silent conversion of {a!r} to numpy")
            return _real(a, *args, **kwargs)
        monkeypatch.setattr(np, name, check)
    real_dlpack = np.from_dlpack

    def dlpack(a, *args, **kwargs):
        assert allowed[0], "a device array reached numpy (np.from_dlpack)"
        return real_dlpack(a, *args, **kwargs)
    monkeypatch.setattr(np, "from_dlpack", dlpack)
    return allowed


def cpu(x, allowed=None):
    if allowed is not None:
        allowed[0] = 1
    try:
        return on_cpu[x]
    finally:
        if allowed is not None:
            allowed[0] = 0


# ---- the block and bad input ----------------------------------------------------------

def test_unknown_device_lists_known_ones():
    with pytest.raises(DeviceError, match=r"unknown device 'tpu'; known devices: 'numpy'.*"
                                          r"'array_api_strict', 'cupy', 'torch'"):
        device("tpu")
    assert issubclass(DeviceError, PycogradError)


def test_cupy_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # as if not installed
    from pycograd.backends.arrays import registry
    monkeypatch.setattr(registry, "_CACHE", {})
    with pytest.raises(DeviceError, match=r'pip install "pycograd\[cupy\]".*cupy-cuda12x'):
        device("cupy")


def test_cupy_without_gpu_says_so(monkeypatch):
    class Runtime:
        @staticmethod
        def getDeviceCount():
            raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    class Cuda:
        runtime = Runtime

    class FakeCupy:
        cuda = Cuda
    monkeypatch.setitem(sys.modules, "cupy", FakeCupy)
    from pycograd.backends.arrays import registry
    monkeypatch.setattr(registry, "_CACHE", {})
    with pytest.raises(DeviceError, match="no CUDA GPU"):
        device("cupy")


def test_leaving_the_block_restores_even_after_an_exception():
    assert current_device() is None
    with device("array_api_strict"):
        with pytest.raises(ZeroDivisionError):
            with device(D1):
                assert current_device().name == D1
                raise ZeroDivisionError
        assert current_device().name == "array_api_strict"
    assert current_device() is None


def test_device_state_is_per_thread():
    seen = []
    with device(D1):
        t = threading.Thread(target=lambda: seen.append(current_device()))
        t.start()
        t.join()
        assert current_device().name == D1
    assert seen == [None]


def test_mixing_two_devices_names_both_and_the_op():
    a, b = on_device(D1, np.ones(2)), on_device(D2, np.ones(2))
    with pytest.raises(DeviceError, match=r"multiply: got arrays on two devices, "
                                          r"'array_api_strict:device1' and "
                                          r"'array_api_strict:device2'"):
        a * b
    with pytest.raises(DeviceError, match=r"add: got arrays on two devices, 'numpy'"):
        a + np.ones(2)          # numpy data outside a device block is another device


def test_primitive_without_an_equivalent_names_itself_and_the_device():
    from scipy import special
    x = on_device("array_api_strict", np.array([0.5]))
    with pytest.raises(DeviceError, match=r"erf has no implementation on device "
                                          r"'array_api_strict'"):
        special.erf(x)
    with pytest.raises(DeviceError, match=r"cholesky has no implementation"):
        np.linalg.cholesky(on_device("array_api_strict", np.eye(2)))


def test_transfers_are_differentiable_both_ways(no_numpy):
    no_numpy[0] = 1  # on_cpu inside f is asked for
    def f(x):
        y = on_device(D1, x) * 3.0          # to device1, compute there
        z = on_device(D2, y) ** 2            # to device2
        return np.sum(on_cpu[z])             # back to numpy
    x = np.array([1.0, -2.0])
    g = grad(f, 0)(x)
    assert isinstance(g, np.ndarray)
    np.testing.assert_allclose(g, 18 * x)
    # second order through transfers
    h = grad(lambda x: np.sum(grad(f, 0)(x) * x), 0)(x)
    np.testing.assert_allclose(h, 36 * x)


def test_results_stay_on_the_device(no_numpy):
    x = on_device("array_api_strict", np.array([0.3, 0.7]))
    g = grad(lambda x: np.sum(np.tanh(x) * np.exp(x)), 0)(x)
    assert isinstance(g, DeviceArray) and g.device.name == "array_api_strict"
    e = grad(lambda x: np.sum(np.tanh(x) * np.exp(x)), 0)(np.array([0.3, 0.7]))
    np.testing.assert_allclose(cpu(g, no_numpy), e, rtol=1e-14)


# ---- placement: one model across two devices ------------------------------------------

def _placed_loss(params, tokens, labels, split):
    emb = params["emb"]
    if split:
        emb = on_device(D1, emb)             # the table lives on device1
    h = np.mean(emb[tokens], axis=1)         # (batch, dim)
    if split:
        h = on_device(D2, h)                 # the classifier on device2
        w, b = on_device(D2, params["w"]), on_device(D2, params["b"])
        labels = on_device(D2, labels)
    else:
        w, b = params["w"], params["b"]
    loss = nn.cross_entropy(nn.linear(np.tanh(h), w, b), labels)
    return on_cpu[loss] if split else loss


def test_embedding_on_one_device_classifier_on_the_other(no_numpy):
    no_numpy[0] = 1  # the loss comes back with on_cpu, as asked
    rng = np.random.default_rng(0)
    params = {"emb": rng.standard_normal((10, 4)), "w": rng.standard_normal((3, 4)),
              "b": rng.standard_normal(3)}
    tokens = rng.integers(0, 10, (5, 2))
    labels = rng.integers(0, 3, 5)
    with device(D1):  # a block: the nn ops' own numpy constants may meet either device
        v1, g1 = value_and_grad(_placed_loss, 0)(params, tokens, labels, True)
    v0, g0 = value_and_grad(_placed_loss, 0)(params, tokens, labels, False)
    np.testing.assert_allclose(v1, v0, rtol=1e-13)
    for k in params:
        assert isinstance(g1[k], np.ndarray)
        np.testing.assert_allclose(g1[k], g0[k], rtol=1e-12, atol=1e-14, err_msg=k)


# ---- training there: demos, optimizers, ParamDict, random -----------------------------

def test_logreg_demo_trains_on_device(no_numpy):
    from pycograd.examples import logreg
    X, y = logreg.make_data(np.random.default_rng(0))
    vg = value_and_grad(logreg.loss, argnums=(0, 1))

    def run(w, b, X, y):
        curve = []
        for _ in range(30):
            value, (gw, gb) = vg(w, b, X, y)
            curve.append(value)
            w, b = w - 0.5 * gw, b - 0.5 * gb
        return w, b, curve
    w0, b0, c0 = run(np.zeros(2), np.zeros(()), X, y)
    with device("array_api_strict"):
        w1, b1, c1 = run(*on_device((np.zeros(2), np.zeros(()), X, y)))
    assert isinstance(w1, DeviceArray)
    np.testing.assert_allclose(cpu(w1, no_numpy), w0, rtol=1e-12)
    np.testing.assert_allclose([cpu(c, no_numpy) for c in c1], c0, rtol=1e-12)
    assert c0[-1] < 0.5 * c0[0]


def _mlp(weights, X, y, steps=5):
    """A few Adam steps of a ReLU MLP whose forward reads its ParamDict by bare name."""
    w1, b1, w2, b2 = (weights[k] for k in ("w1", "b1", "w2", "b2"))
    params = ParamDict(w1=w1, b1=b1, w2=w2, b2=b2)
    opt = Adam(1e-2)

    def loss(X, y):
        return nn.cross_entropy(nn.linear(nn.relu(nn.linear(X, w1, b1)), w2, b2), y)
    values = []
    for _ in range(steps):
        value, g = params.grad(loss, X, y)
        opt.step(params, g)
        values.append(value)
    return params, opt, values


def test_mlp_trains_on_device_with_adam_and_paramdict(no_numpy):
    rng = np.random.default_rng(1)
    weights = {"w1": rng.standard_normal((8, 6)) * 0.3, "b1": np.zeros(8),
               "w2": rng.standard_normal((3, 8)) * 0.3, "b2": np.zeros(3)}
    X, y = rng.standard_normal((16, 6)), rng.integers(0, 3, 16)
    p0, o0, v0 = _mlp({k: v.copy() for k, v in weights.items()}, X, y)
    with device("array_api_strict"):
        p1, o1, v1 = _mlp(on_device(weights), on_device(X), on_device(y))
    for k in weights:
        assert isinstance(p1[k], DeviceArray), k
        np.testing.assert_allclose(cpu(p1[k], no_numpy), p0[k], rtol=1e-10, err_msg=k)
    moments = [v for slots in o1.state.values() for v in slots.values()]
    assert moments and all(isinstance(m, DeviceArray) for m in moments), \
        "Adam's moments left the device"
    np.testing.assert_allclose([cpu(v, no_numpy) for v in v1], v0, rtol=1e-10)
    assert v0[-1] < v0[0]


def test_random_draws_land_on_the_device_block(no_numpy):
    from pycograd import random
    k = random.key(0)
    with device("array_api_strict"):
        x = random.normal(k, (3,))
        mask = random.bernoulli(random.fold_in(k, 1), 0.5, (3,))
        y = nn.dropout(x, 0.5, random.fold_in(k, 2))
    assert isinstance(x, DeviceArray) and isinstance(mask, DeviceArray)
    assert isinstance(y, DeviceArray)
    assert isinstance(k, np.ndarray)            # keys stay on the host
    np.testing.assert_array_equal(cpu(x, no_numpy), random.normal(k, (3,)))
    assert isinstance(random.normal(k, (3,)), np.ndarray)   # outside the block: numpy


def test_torch_through_array_api_compat():
    torch = pytest.importorskip("torch")
    pytest.importorskip("array_api_compat")
    rng = np.random.default_rng(0)
    x, w, y = rng.standard_normal((5, 3)), rng.standard_normal((4, 3)), rng.integers(0, 4, 5)

    def f(w, x, y):
        return nn.cross_entropy(nn.linear(np.tanh(x), w), y)
    with device("torch"):
        g = grad(f, 0)(*on_device((w, x, y)))
    assert isinstance(g.array, torch.Tensor) and g.device.name == "torch"
    np.testing.assert_allclose(on_cpu[g], grad(f, 0)(w, x, y), rtol=1e-12, atol=1e-15)


def test_debug_nans_keeps_working_with_device_arrays():
    """The checking interpreter wraps the tape; device arrays pass through it unchanged
    (their values are not inspected: that would convert them to numpy)."""
    x = on_device("array_api_strict", np.array([0.5, 2.0]))
    with pycograd.debug_nans():
        g = grad(lambda x: np.sum(np.log(x) * x), 0)(x)
    np.testing.assert_allclose(on_cpu[g], np.log([0.5, 2.0]) + 1, rtol=1e-14)
