"""Build and execute ``pycograd_vmap_demo.ipynb``, vmap in the DSL (outputs saved for
GitHub): per-example gradients, per-example clipping and a DP-SGD step, batched attention,
``vmap(vmap)`` and ``grad(vmap)``.

Run ``python notebooks/make_vmap_demo.py`` after changing the cells below; the test suite
executes the saved notebook again and checks what it reports.
"""

from __future__ import annotations

from make_demo import make

CELLS = [
    ("md", """# pycograd: vmap in the DSL

`vmap(f)` runs a function written for ONE example over a batch, with no batch axis in
its code; it composes with `grad` both ways round. This tour: per-example gradients,
per-example gradient clipping and one DP-SGD step, batched attention, `vmap(vmap(...))`
and `grad(vmap(...))`."""),
    ("code", "%load_ext pycograd"),
    ("code", """import time
import numpy as np
import matplotlib.pyplot as plt
from pycograd import cross_entropy, softmax, relu, grad, value_and_grad, vmap

rng = np.random.default_rng(0)
centers = np.array([[0.0, 2.5], [-2.5, -1.5], [2.5, -1.5]])
labels = rng.integers(0, 3, 256)
X = centers[labels] + 1.3 * rng.standard_normal((256, 2))   # 3 overlapping blobs
Y = np.eye(3)[labels]"""),
    ("md", """## 1. Per-example gradients

The loss of ONE example, as a pipeline inside a `def`. `grad` differentiates it with
respect to the weights; `vmap` maps that over the examples (the weights are shared:
`in_axes=None`). The mean of the per-example gradients is the full-batch gradient."""),
    ("code", """def example_loss(w, b, x, y): # ONE (2,) point + ONE one-hot label -> scalar
    return x |> $ @ w + b |> cross_entropy($, y)

w = 0.1 * rng.standard_normal((2, 3)); b = np.zeros(3)
per_example_grads = vmap(grad(example_loss, argnums=(0, 1)), in_axes=(None, None, 0, 0))
gw, gb = per_example_grads(w, b, X, Y)
full_w, full_b = grad(lambda w, b: cross_entropy(X @ w + b, Y), argnums=(0, 1))(w, b)
print("per-example gradients:", gw.shape, gb.shape)
print("max |mean - full| =", max(float(np.abs(gw.mean(0) - full_w).max()),
                                 float(np.abs(gb.mean(0) - full_b).max())))

t0 = time.perf_counter(); per_example_grads(w, b, X, Y); t_vmap = time.perf_counter() - t0
t0 = time.perf_counter()
looped = [grad(example_loss, argnums=(0, 1))(w, b, X[i], Y[i]) for i in range(len(X))]
t_loop = time.perf_counter() - t0
print("same as a Python loop:", all(np.allclose(gw[i], g[0]) for i, g in enumerate(looped)),
      f" vmap {1e3 * t_vmap:.1f} ms, loop {1e3 * t_loop:.1f} ms")"""),
    ("md", """## 2. Per-example clipping and one DP-SGD step

Differentially private SGD bounds each example's influence: clip every per-example
gradient to norm `C`, average, add Gaussian noise of scale `sigma * C / batch`, step.
Only per-example gradients make that possible."""),
    ("code", """def dp_sgd_step(w, b, x, y, C=1.0, sigma=1.0, lr=0.5, rng=rng):
    gw, gb = per_example_grads(w, b, x, y)
    norms = np.sqrt((gw ** 2).sum((1, 2)) + (gb ** 2).sum(1))   # one norm per example
    scale = np.minimum(1.0, C / norms)
    cw, cb = gw * scale[:, None, None], gb * scale[:, None]       # clipped gradients
    n = len(x)
    noisy_w = cw.mean(0) + sigma * C / n * rng.standard_normal(w.shape)
    noisy_b = cb.mean(0) + sigma * C / n * rng.standard_normal(b.shape)
    clipped_norms = np.sqrt((cw ** 2).sum((1, 2)) + (cb ** 2).sum(1))
    return w - lr * noisy_w, b - lr * noisy_b, norms, clipped_norms

w = 2.0 * rng.standard_normal((2, 3)); b = np.zeros(3)   # a bad start: large gradients
batch_loss = lambda w, b: float(cross_entropy(X @ w + b, Y))
before = batch_loss(w, b)
w1, b1, norms, clipped = dp_sgd_step(w, b, X, Y)
print(f"clipped {np.mean(norms > 1.0):.0%} of the examples; "
      f"all clipped norms <= C: {bool(np.all(clipped <= 1.0 + 1e-12))}")
print(f"loss after one DP-SGD step: {before:.3f} -> {batch_loss(w1, b1):.3f}")
for _ in range(30):
    w1, b1, *_ = dp_sgd_step(w1, b1, X, Y)
acc = float(np.mean((X @ w1 + b1).argmax(1) == labels))
print(f"after 30 more steps: loss {batch_loss(w1, b1):.3f}  accuracy {acc:.3f}")

plt.figure(figsize=(6, 3))
plt.hist(norms, bins=40, color="tab:blue", alpha=0.7, label="per-example gradient norm")
plt.axvline(1.0, color="tab:red", label="clip norm C")
plt.xlabel("norm"); plt.ylabel("examples"); plt.legend(); plt.tight_layout(); plt.show()"""),
    ("md", """## 3. Batched attention

Attention written for ONE sequence (`q`, `k`, `v` of shape `(T, d)`), batched over
sequences by `vmap`: the same numbers as a loop over the batch."""),
    ("code", """def attention(q, k, v):
    return softmax(q @ k.T / np.sqrt(q.shape[-1])) @ v

T, D = 5, 4
Xs = rng.standard_normal((32, T, D))
Wq, Wk, Wv = (0.5 * rng.standard_normal((D, D)) for _ in range(3))
encode = $ |> attention($x @ Wq, $x @ Wk, $x @ Wv)
batched = vmap(encode)(Xs)
looped = np.stack([encode(x) for x in Xs])
print("batched attention:", batched.shape,
      " max |vmap - loop| =", float(np.abs(batched - looped).max()))"""),
    ("md", """## 4. vmap of vmap

A kernel written for ONE pair of points; `vmap` over the first point and again over the
second gives the whole kernel matrix."""),
    ("code", """def rbf(a, b):
    return a |> np.sum(($ - b) ** 2) |> np.exp(-$)

K = vmap(vmap(rbf, in_axes=(None, 0)), in_axes=(0, None))(X[:6], X[:4])
direct = np.exp(-((X[:6, None, :] - X[None, :4, :]) ** 2).sum(-1))
print("kernel:", K.shape, " max |vmap(vmap) - broadcast| =", float(np.abs(K - direct).max()))"""),
    ("md", """## 5. grad of vmap

`grad` through a `vmap`: the mean of the vmapped per-example losses differentiates to the
full-batch gradient, here of a small MLP."""),
    ("code", """def mlp_loss(p, x, y): # ONE example
    return x |> $ @ p["w1"] + p["b1"] |> relu |> $ @ p["w2"] + p["b2"] |> cross_entropy($, y)

p = {"w1": 0.5 * rng.standard_normal((2, 8)), "b1": np.zeros(8),
     "w2": 0.5 * rng.standard_normal((8, 3)), "b2": np.zeros(3)}
mean_loss = lambda p: np.mean(vmap(mlp_loss, in_axes=(None, 0, 0))(p, X, Y))
(g,) = grad(mean_loss)(p)
(full,) = grad(lambda p: cross_entropy(relu(X @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"], Y))(p)
print("max |grad(vmap) - full| =", max(float(np.abs(g[k] - full[k]).max()) for k in p))"""),
]


if __name__ == "__main__":
    make(CELLS, "pycograd_vmap_demo.ipynb")
