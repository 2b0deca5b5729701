"""Build and execute ``pycograd_demo.ipynb``, the DSL tour (outputs saved for GitHub).

Run ``python notebooks/make_demo.py`` after changing the cells below; the test suite
executes the saved notebook again and checks what it reports.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).parent

CELLS = [
    ("md", """# pycograd: the ambient-weights DSL

`%load_ext pycograd` turns on `|>` pipelines (from [pipescript](https://pypi.org/project/pipescript/))
and the `params{ ... } as weights:` block: the block's assignments become a `ParamDict` and
each weight becomes a bare name in the notebook. A model is written once, as a pipeline over
those names, and `weights.grad(objective)` differentiates it."""),
    ("code", "%load_ext pycograd"),
    ("code", """import numpy as np
from pycograd import (relu, sigmoid, softmax, cross_entropy, layer_norm, gelu, train, Adam,
                      cosine_decay, frozen, grad, vmap)

rng = np.random.default_rng(42)
centers = np.array([[0.0, 2.5], [-2.5, -1.5], [2.5, -1.5]])
labels = rng.integers(0, 3, 300)
X = centers[labels] + rng.standard_normal((300, 2))   # 3 Gaussian blobs
Y = np.eye(3)[labels]                                 # one-hot labels
accuracy = $ |> np.mean($.argmax(1) == labels) |> float"""),
    ("md", """## 1. A linear classifier

A linear layer is just `$ @ W + c`: `$` is the value flowing through the pipe. A pipeline
that starts with `|>` is a thunk: `obj()` runs it on `X`."""),
    ("code", """with params{ W = np.zeros((2, 3)); c = np.zeros(3) } as lin:
    linear = $ |> $ @ W + c
    lin_obj = |> X |> linear |> cross_entropy($, Y)
    for _ in range(50):
        loss, grads = lin.grad(lin_obj)
        lin.step(grads, 0.5)
acc = X |> linear |> accuracy
print(f"loss {float(loss):.3f}  accuracy {acc:.3f}")"""),
    ("md", """## 2. An MLP, trained by SGD

The README's cell, as written. After the block the weights stay bare names holding the
trained arrays."""),
    ("code", """with params{
w1 = 0.3 * rng.standard_normal((2, 16)); b1 = np.zeros(16)
w2 = 0.3 * rng.standard_normal((16, 3)); b2 = np.zeros(3)
} as weights:
    logits = $ |> $ @ w1 + b1 |> relu |> $ @ w2 + b2 # the model, written once
    forward = $ |> logits |> softmax
    obj = |> X |> logits |> cross_entropy($, Y) # mean softmax cross-entropy
    for _ in range(10):
        value, grads = weights.grad(obj) # bind weights -> Vars, backprop
        weights.step(grads, 0.5) # in-place SGD
print(weights)
acc = X |> forward |> accuracy
print(f"loss {float(value):.3f}  accuracy {acc:.3f}")
print("w1 is weights['w1']:", w1 is weights["w1"])"""),
    ("md", """## 3. A frozen weight

`frozen[...]` holds a weight fixed: its gradient is `None` and `step` leaves it alone.
Here a random feature map stays frozen and only the read-out trains."""),
    ("code", """with params{
proj = frozen[rng.standard_normal((2, 32))]
head = np.zeros((32, 3)); bias = np.zeros(3)
} as rf:
    features = $ |> $ @ proj |> np.cos
    rf_obj = |> X |> features |> $ @ head + bias |> cross_entropy($, Y)
    before = proj.copy()
    for _ in range(100):
        loss, g = rf.grad(rf_obj)
        rf.step(g, 0.5)
print(f"loss {float(loss):.3f}")
print(f"grad of proj: {g['proj']}  proj unchanged: {np.array_equal(before, proj)}")"""),
    ("md", """## 4. A highway network: `fork[...]` and the splat pipe `*|>`

`fork[f, g, h]` sends the value to three branches and returns a tuple; `*|>` splats it
into the next stage, whose named placeholders `$h`, `$t`, `$x` take the three parts.
`train` runs Adam with a cosine-decayed learning rate."""),
    ("code", """with params{
_s = 0.3
wi = _s * rng.standard_normal((2, 8)); bi = np.zeros(8)
wh = _s * rng.standard_normal((8, 8)); bh = np.zeros(8)
wt = _s * rng.standard_normal((8, 8)); bt = np.full(8, -1.0)   # gates start mostly closed
wo = _s * rng.standard_normal((8, 3)); bo = np.zeros(3)
} as hw:
    highway = $ |> fork[$ @ wh + bh |> relu, $ @ wt + bt |> sigmoid, $] *|> $h * $t + $x * (1 - $t)
    net = $ |> $ @ wi + bi |> highway |> highway |> $ @ wo + bo
    hw_obj = |> X |> net |> cross_entropy($, Y)
    first, last = train(hw, hw_obj, 60, Adam(lr=cosine_decay(0.05, 60)), progress=False)
acc = X |> net |> accuracy
print(f"loss {first:.3f} -> {last:.3f}  accuracy {acc:.3f}")"""),
    ("md", """## Pictures: a loss curve and a decision boundary

`train` takes callbacks `(step, loss)`; here one records the loss curve of another MLP, and
the trained model is evaluated on a grid to draw its decision regions."""),
    ("code", """import matplotlib.pyplot as plt

losses = []
with params{
v1 = 0.3 * rng.standard_normal((2, 16)); c1 = np.zeros(16)
v2 = 0.3 * rng.standard_normal((16, 3)); c2 = np.zeros(3)
} as curve:
    net2 = $ |> $ @ v1 + c1 |> relu |> $ @ v2 + c2
    obj2 = |> X |> net2 |> cross_entropy($, Y)
    train(curve, obj2, 150, Adam(lr=0.05), progress=False,
          callbacks=[lambda step, loss: losses.append(float(loss))])
gx, gy = np.meshgrid(np.linspace(-6, 6, 200), np.linspace(-6, 6, 200))
zone = net2(np.stack([gx.ravel(), gy.ravel()], axis=1)).argmax(1).reshape(gx.shape)
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
left.plot(losses)
left.set(xlabel="step", ylabel="loss", title="training loss (Adam)")
right.contourf(gx, gy, zone, levels=[-0.5, 0.5, 1.5, 2.5], alpha=0.3)
right.scatter(X[:, 0], X[:, 1], c=labels, s=8)
right.set(title="decision regions of the trained MLP")
plt.show()
print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f}")"""),
    ("md", """## 5. Self-attention over a sequence

Each example is a sequence of 6 tokens; the class is decided by the tokens jointly.
`$x` names the piped value so one stage can use it three times; the per-sequence
model runs over the batch with `vmap`."""),
    ("code", """T, D = 6, 4
A = rng.standard_normal((D, 3))
Xs = rng.standard_normal((200, T, D))
ys = (Xs.mean(1) @ A).argmax(1)
Ys = np.eye(3)[ys]

def attention(q, k, v):
    return softmax(q @ k.T / np.sqrt(q.shape[-1])) @ v

with params{
Wq = 0.5 * rng.standard_normal((D, 8)); Wk = 0.5 * rng.standard_normal((D, 8))
Wv = 0.5 * rng.standard_normal((D, 8)); Wc = 0.5 * rng.standard_normal((8, 3))
} as att:
    encode = $ |> attention($x @ Wq, $x @ Wk, $x @ Wv) |> np.mean($, axis=0) |> $ @ Wc
    seq_logits = $ |> vmap(encode)($)
    att_obj = |> Xs |> seq_logits |> cross_entropy($, Ys)
    first, last = train(att, att_obj, 100, Adam(lr=0.03), progress=False)
acc = float(np.mean(seq_logits(Xs).argmax(1) == ys))
print(f"loss {first:.3f} -> {last:.3f}  accuracy {acc:.3f}")"""),
    ("md", """## 6. A Transformer encoder block

Pre-norm attention and MLP sub-layers with residual connections, then mean pooling and a
classifier, on the same sequences."""),
    ("code", """with params{
_d, _h = D, 16
g1 = np.ones(_d); n1 = np.zeros(_d); g2 = np.ones(_d); n2 = np.zeros(_d)
Eq = 0.5 * rng.standard_normal((_d, _d)); Ek = 0.5 * rng.standard_normal((_d, _d))
Ev = 0.5 * rng.standard_normal((_d, _d)); Eo = 0.5 * rng.standard_normal((_d, _d))
F1 = 0.5 * rng.standard_normal((_d, _h)); c1 = np.zeros(_h)
F2 = 0.5 * rng.standard_normal((_h, _d)); c2 = np.zeros(_d)
Wcls = 0.5 * rng.standard_normal((_d, 3))
} as enc:
    self_attn = $ |> layer_norm($, g1, n1) |> attention($x @ Eq, $x @ Ek, $x @ Ev) @ Eo
    mlp = $ |> layer_norm($, g2, n2) |> $ @ F1 + c1 |> gelu |> $ @ F2 + c2
    block = $ |> $x + self_attn($x) |> $x + mlp($x)
    classify = $ |> block |> np.mean($, axis=0) |> $ @ Wcls
    enc_obj = |> Xs |> vmap(classify)($) |> cross_entropy($, Ys)
    first, last = train(enc, enc_obj, 100, Adam(lr=cosine_decay(0.03, 100)), progress=False)
print(enc)
acc = float(np.mean(vmap(classify)(Xs).argmax(1) == ys))
print(f"loss {first:.3f} -> {last:.3f}  accuracy {acc:.3f}")"""),
    ("md", """## 7. Per-example gradients

A per-example loss written as a pipeline inside a `def`, differentiated and batched:
one gradient per example, whose mean is the full-batch gradient."""),
    ("code", """def per_example_loss(w, b, x, y): # ONE (2,) point + ONE label -> scalar
    return x |> $ @ w + b |> cross_entropy($, y)

w = np.zeros((2, 3)); b = np.zeros(3)
gw, gb, _, _ = vmap(grad(per_example_loss), in_axes=(None, None, 0, 0))(w, b, X, Y)
full_w, full_b = grad(lambda w, b: cross_entropy(X @ w + b, Y), argnums=(0, 1))(w, b)
print(gw.shape, gb.shape, "max |mean - full| =", float(np.abs(gw.mean(0) - full_w).max()))"""),
]


def build(load: str = "%load_ext pycograd",
          cells: list[tuple[str, str]] | None = None) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    for kind, src in CELLS if cells is None else cells:
        src = load if src == "%load_ext pycograd" else src
        nb.cells.append(nbformat.v4.new_markdown_cell(src) if kind == "md"
                        else nbformat.v4.new_code_cell(src))
    return nb


def execute(nb: nbformat.NotebookNode, timeout: int = 300) -> nbformat.NotebookNode:
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(HERE)}}).execute()
    return nb


def load_line() -> str:
    """``%load_ext pycograd``, or its twin ``pycograd.dsl`` while the package lacks the hook."""
    import pycograd

    return ("%load_ext pycograd" if hasattr(pycograd, "load_ipython_extension")
            else "%load_ext pycograd.dsl")


def make(cells: list[tuple[str, str]], name: str) -> None:
    """Execute ``cells`` and save them, with their outputs, as ``notebooks/<name>``."""
    nb = execute(build(load_line(), cells))
    for cell in nb.cells:  # the saved notebook shows the documented line
        if cell.source.startswith("%load_ext"):
            cell.source = "%load_ext pycograd"
    nbformat.write(nb, HERE / name)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            print(out.get("text", ""), end="")


if __name__ == "__main__":
    make(CELLS, "pycograd_demo.ipynb")
