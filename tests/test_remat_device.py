"""plan_remat / eval_scheduled on a device (issue 12, item 4): a spilled activation goes
to host memory (numpy), not to a file, and comes back to the device it left, the answer
the very one replaying the graph there gives; a device's spills are priced by its own
host-transfer rate, not the disk's."""

import numpy as np
import pytest
from test_remat import _mlp_graph as mlp_graph

from pycograd import device, on_cpu, on_device
from pycograd.backends.arrays.placed import DeviceArray
from pycograd.core.errors import DeviceError
from pycograd.graph import capture, grad_graph, spill
from pycograd.graph import remat as R
from pycograd.graph.remat import RECOMPUTE, SPILL, eval_scheduled, plan_remat

pytest.importorskip("array_api_strict")

RATES = {"flops": 1e9, "bandwidth": 1e8}
STRICT = "array_api_strict:device1"


def _mlp_graph():
    return mlp_graph(4, 2048, 128)


class _Recording(spill.SpillStore):
    """The store eval_scheduled uses, recording what it holds at each put."""

    held: list = []
    dirs: list = []

    def put(self, key, x):
        super().put(key, x)
        _Recording.held.append((type(x), self._where[key]))
        _Recording.dirs.append(self._dir)

    def get(self, key):
        out = super().get(key)
        _Recording.held.append(("got", out))
        return out


def _run_on(name, monkeypatch):
    g, (x, ws) = _mlp_graph()
    plain = plan_remat(g, 10 ** 12, rates=RATES).plain_peak
    plan = plan_remat(g, int(0.6 * plain), rates=RATES)
    assert plan.counts()[SPILL] > 0
    _Recording.held, _Recording.dirs = [], []
    monkeypatch.setattr(R, "SpillStore", _Recording)
    with device(name):
        xd, wd = on_device(x), [on_device(w) for w in ws]
        ref = g(xd, wd)
        out = eval_scheduled(plan, xd, wd)
    return out, ref, (x, ws), g


def _identical_on(name, out, ref):
    (value, grads), (rvalue, rgrads) = out, ref
    for a, b in zip([value, *grads], [rvalue, *rgrads]):
        assert isinstance(a, DeviceArray) and a.device.name == name
        assert np.array_equal(on_cpu[a], on_cpu[b])


def test_device_spill_goes_to_host_memory_and_back(monkeypatch):
    out, ref, (x, ws), g = _run_on(STRICT, monkeypatch)
    _identical_on(STRICT, out, ref)
    puts = [(t, where) for t, where in _Recording.held if t != "got"]
    gets = [o for t, o in _Recording.held if t == "got"]
    assert puts and gets
    for t, (kind, (dev, host)) in puts:  # held on the host, as numpy
        assert t is DeviceArray and kind == "host" and type(host) is np.ndarray
        assert dev.name == STRICT
    import array_api_strict as xps
    for o in gets:  # back on the very device it left
        assert isinstance(o, DeviceArray) and o.array.device == xps.Device("device1")
    assert _Recording.dirs and all(d is None for d in _Recording.dirs)  # no file at all
    numpy_value, _ = g(x, ws)
    assert np.array_equal(on_cpu[out[0]], numpy_value)


def test_numpy_spill_still_goes_to_a_file(monkeypatch):
    g, args = _mlp_graph()
    plan = plan_remat(g, int(0.6 * plan_remat(g, 10 ** 12, rates=RATES).plain_peak),
                      rates=RATES)
    _Recording.held, _Recording.dirs = [], []
    monkeypatch.setattr(R, "SpillStore", _Recording)
    value, grads = eval_scheduled(plan, *args)
    assert _Recording.dirs and all(d is not None for d in _Recording.dirs)
    assert all(where[0] == "file" for t, where in _Recording.held if t != "got")
    rvalue, rgrads = g(*args)
    assert np.array_equal(value, rvalue) and all(map(np.array_equal, grads, rgrads))


def test_device_spills_are_priced_by_the_host_transfer_rate(monkeypatch):
    """A slow disk and a fast host link: on numpy the plan recomputes, on the device it
    spills (to host memory)."""
    def f(x):
        return np.sum(np.tanh(np.exp(x)))
    g = grad_graph(capture(f, np.linspace(-1, 1, 200_000)))
    probed = []

    def rate(nbytes, rounds=5, device=None):
        probed.append((nbytes, device))
        return 1e6 if device is None else 1e13

    monkeypatch.setattr(R, "_RATES", {"flops": 1e12, "memory": 1e12})
    monkeypatch.setattr(R, "transfer_rate", rate)
    plain = plan_remat(g, 10 ** 12).plain_peak
    on_numpy = plan_remat(g, int(0.8 * plain))
    on_dev = plan_remat(g, int(0.8 * plain), device=STRICT)
    assert on_numpy.counts()[RECOMPUTE] >= 1 and on_numpy.counts()[SPILL] == 0
    assert on_dev.counts()[SPILL] >= 1 and on_dev.counts()[RECOMPUTE] == 0
    assert R.device_rates("numpy", 1_600_000)["bandwidth"] == 1e6
    # measured once per place and size, at the size of the activations to spill
    assert sorted(probed, key=str) == [(2 ** 21, None), (2 ** 21, R.resolve(STRICT))]


def test_device_transfer_rate_is_measured_through_host():
    rate = spill.transfer_rate(2 ** 16, rounds=3, device=R.resolve(STRICT))
    assert rate > 0


def test_cupy_spill_goes_to_host_and_back(monkeypatch):
    """The same on a GPU, where there is one (skipped otherwise)."""
    pytest.importorskip("cupy")
    try:
        R.resolve("cupy")
    except DeviceError as e:
        pytest.skip(f"no usable CUDA GPU: {e}")
    out, ref, _, _ = _run_on("cupy", monkeypatch)
    _identical_on("cupy", out, ref)
    puts = [where for t, where in _Recording.held if t != "got"]
    assert puts and all(kind == "host" and type(host) is np.ndarray
                        for kind, (dev, host) in puts)
    assert all(type(o.array).__module__.startswith("cupy")
               for t, o in _Recording.held if t == "got")
