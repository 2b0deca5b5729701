"""Build and execute ``pycograd_device_placement_demo.ipynb`` (outputs saved for GitHub):
one forward pass split across two devices, its gradients checked against a single-device
run; on a machine with CuPy and a GPU, the same model on the GPU.

Run ``python notebooks/make_device_demo.py`` after changing the cells below; the test suite
executes the saved notebook again and checks what it reports.
"""

from __future__ import annotations

from make_demo import make

CELLS = [
    ("md", """# pycograd: arrays on devices

`device(name)` and `on_device(name, x)` put arrays on another array library; numpy code
(`np.tanh(x)`, `x @ w`) then runs there, values stay there, and `on_cpu[x]` brings them
back. Without a GPU, `array_api_strict` plays the devices: it has two, `device1` and
`device2`, that refuse to mix, and it refuses every silent conversion to numpy. Here a
bag-of-embeddings classifier keeps its table on one device and its classifier on the
other; the gradients match a run on numpy alone."""),
    ("code", """import numpy as np
import pycograd
from pycograd import device, on_cpu, on_device, value_and_grad, nn, DeviceError

D1, D2 = "array_api_strict:device1", "array_api_strict:device2"
rng = np.random.default_rng(0)
params = {"emb": rng.standard_normal((20, 8)), "w": 0.3 * rng.standard_normal((4, 8)),
          "b": np.zeros(4)}
tokens = rng.integers(0, 20, (16, 5))
labels = rng.integers(0, 4, 16)"""),
    ("code", """def loss(params, tokens, labels, split):
    emb = on_device(D1, params["emb"]) if split else params["emb"]
    h = np.mean(emb[tokens], axis=1)              # on device1
    w, b = params["w"], params["b"]
    if split:                                     # the classifier on device2
        h, w, b, labels = (on_device(D2, v) for v in (h, w, b, labels))
    out = nn.cross_entropy(nn.linear(np.tanh(h), w, b), labels)
    return on_cpu[out] if split else out

with device(D1):
    v_split, g_split = value_and_grad(loss, 0)(params, tokens, labels, True)
v_one, g_one = value_and_grad(loss, 0)(params, tokens, labels, False)
print(f"loss split over two devices: {v_split:.12f}")
print(f"loss on numpy alone:         {v_one:.12f}")
err = max(float(np.max(np.abs(g_split[k] - g_one[k]))) for k in params)
print(f"max |grad split - grad one device| = {err:.1e}")"""),
    ("md", """Mixing devices without a transfer is an error that names both devices and the op:"""),
    ("code", """try:
    on_device(D1, np.ones(2)) + on_device(D2, np.ones(2))
except DeviceError as e:
    print(str(e).split(";")[0])"""),
    ("md", """A few SGD steps with everything on device2; the result is checked against numpy."""),
    ("code", """def train(params, steps=20, lr=0.5):
    for _ in range(steps):
        value, g = value_and_grad(loss, 0)(params, tokens, labels, False)
        params = {k: params[k] - lr * g[k] for k in params}
    return params, value

with device(D2):
    p_dev, v_dev = train(on_device(params))
p_np, v_np = train(params)
print("on", p_dev["w"].device.name, "| loss", round(float(on_cpu[v_dev]), 6),
      "| == numpy:", bool(np.allclose(on_cpu[p_dev["w"]], p_np["w"], rtol=1e-10)))"""),
    ("md", """With CuPy and a CUDA GPU (`pip install "pycograd[cupy]"`), the same code runs
on the GPU: write `device("cupy")`. Without one, `device("cupy")` says what is missing."""),
    ("code", """try:
    with device("cupy"):
        p_gpu, v_gpu = train(on_device(params))
    print("cupy: == numpy:", bool(np.allclose(on_cpu[p_gpu["w"]], p_np["w"], rtol=1e-10)))
except DeviceError as e:
    print("no GPU here:", str(e).split(";")[0])"""),
]


if __name__ == "__main__":
    make(CELLS, "pycograd_device_placement_demo.ipynb")
