"""Build and execute the lowering notebooks (outputs saved for GitHub):

- ``pycograd_compile_torch.ipynb``, ``pycograd_compile_jax.ipynb``,
  ``pycograd_compile_tf.ipynb``: one DSL forward trained on numpy, then compiled to the
  framework, whose own autodiff gives the same gradients (max|Δgrad| printed);
- ``pycograd_export.ipynb``: the same model exported as TorchScript, ``torch.export`` and
  ONNX, each reloaded and run.

Run ``python notebooks/make_lowering_demos.py`` after changing the cells below; the test
suite executes the saved notebooks again (each in its own kernel) and checks what they
report.
"""

from __future__ import annotations

from make_demo import make

MODEL = [
    ("code", "%load_ext pycograd"),
    ("code", """import numpy as np
import pycograd as pg
from pycograd import cross_entropy

rng = np.random.default_rng(0)
X = rng.standard_normal((64, 4))
y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int) + (X[:, 2] > 0)"""),
    ("md", "One forward, written once in the DSL, trained on numpy:"),
    ("code", """with params{
W1 = 0.5 * rng.standard_normal((4, 16)); b1 = np.zeros(16)
W2 = 0.5 * rng.standard_normal((16, 3)); b2 = np.zeros(3)
} as weights:
    forward = $ |> $ @ W1 + b1 |> np.tanh |> $ @ W2 + b2
    loss = lambda x, y: cross_entropy(forward(x), y)

first, last = pg.train(weights, loss, 200, pg.Adam(0.05), X, y, progress=False)
print(f"numpy training: loss {first:.3f} -> {last:.3f}")
value, grads = weights.grad(loss, X, y)"""),
]


def compile_cells(backend: str, title: str, body: str) -> list[tuple[str, str]]:
    return [("md", f"""# pycograd: one forward, compiled to {title}

`compile_to(f, "{backend}")` lowers the captured graph of `f` to {title} operations, and
`weights.grad(..., backend="{backend}")` computes the gradients with {title}'s own autodiff.""")
            ] + MODEL + [("md", f"## Compiled to {title}"), ("code", body)]


TORCH = """import torch

v_t, g_t = weights.grad(loss, X, y, backend="torch", jit=True)
print("max|Δgrad| (backend='torch' vs numpy):",
      max(float(np.max(np.abs(g_t[k] - grads[k]))) for k in grads if grads[k] is not None))

f = pg.compile_to(loss, "torch")
params = {k: torch.tensor(weights[k], requires_grad=True) for k in ("W1", "b1", "W2", "b2")}
x = torch.tensor(X, requires_grad=True)
out = f(x, torch.tensor(y))
out.backward()
_, (gx, _) = pg.value_and_grad(loss, argnums=(0, 1))(X, y)
print("max|Δgrad| (torch.autograd of compile_to vs numpy, d/dx):",
      float(np.max(np.abs(x.grad.numpy() - gx))))
print("torch.compile:", float(torch.compile(f)(torch.tensor(X), torch.tensor(y))), float(value))"""

JAX = """import jax
jax.config.update("jax_enable_x64", True)

v_j, g_j = weights.grad(loss, X, y, backend="jax", jit=True)
print("max|Δgrad| (backend='jax' vs numpy):",
      max(float(np.max(np.abs(g_j[k] - grads[k]))) for k in grads if grads[k] is not None))

f = pg.compile_to(loss, "jax")
gx = jax.jit(jax.grad(f))(X, y)
_, (ex, _) = pg.value_and_grad(loss, argnums=(0, 1))(X, y)
print("max|Δgrad| (jax.jit(jax.grad) of compile_to vs numpy, d/dx):",
      float(np.max(np.abs(gx - ex))))"""

TF = """import tensorflow as tf

v_f, g_f = weights.grad(loss, X, y, backend="tf", jit=True)
print("max|Δgrad| (backend='tf' vs numpy):",
      max(float(np.max(np.abs(g_f[k] - grads[k]))) for k in grads if grads[k] is not None))

f = tf.function(pg.compile_to(loss, "tf"))
x = tf.constant(X)
with tf.GradientTape() as tape:
    tape.watch(x)
    out = f(x, tf.constant(y))
gx = tape.gradient(out, x).numpy()
_, (ex, _) = pg.value_and_grad(loss, argnums=(0, 1))(X, y)
print("max|Δgrad| (tf.GradientTape of compile_to vs numpy, d/dx):",
      float(np.max(np.abs(gx - ex))))"""

EXPORT = [("md", """# pycograd: exporting a model

The trained forward becomes a `torch.nn.Module` (`weights.to_torch_module`), saved as
TorchScript (deprecated by PyTorch) and as a `torch.export` program, and written as ONNX
straight from the graph (no torch involved). Each artifact is reloaded and run at a batch
size other than the example's.""")] + MODEL + [
    ("md", "## The torch module and its gradients"),
    ("code", """import torch

module = weights.to_torch_module(forward)
print(sorted(n for n, _ in module.named_parameters()))
logits = module(torch.tensor(X))
torch.nn.functional.cross_entropy(logits, torch.tensor(y)).backward()
print("max|Δgrad| (torch module vs numpy):", max(float(np.max(np.abs(p.grad.numpy() - grads[n])))
                                                for n, p in module.named_parameters()))"""),
    ("md", "## TorchScript, torch.export and ONNX"),
    ("code", """import os, tempfile
import onnxruntime as ort

out = tempfile.mkdtemp()
x9 = rng.standard_normal((9, 4))
expected = forward(x9)
pg.export_torchscript(module, torch.tensor(X[:4]), os.path.join(out, "model.ts"))
pg.export_torch(module, torch.tensor(X[:4]), os.path.join(out, "model.pt2"))
pg.export_onnx(forward, X[:4], os.path.join(out, "model.onnx"))
ts = torch.jit.load(os.path.join(out, "model.ts"))(torch.tensor(x9)).detach().numpy()
ep = torch.export.load(os.path.join(out, "model.pt2")).module()(torch.tensor(x9))
ep = ep.detach().numpy()
session = ort.InferenceSession(os.path.join(out, "model.onnx"),
                               providers=["CPUExecutionProvider"])
ox = session.run(None, {session.get_inputs()[0].name: x9})[0]
for name, got in (("TorchScript", ts), ("torch.export", ep), ("ONNX", ox)):
    print(f"{name}: max|Δ| at batch 9 = {float(np.max(np.abs(got - expected))):.1e}")"""),
]

NOTEBOOKS = {
    "pycograd_compile_torch.ipynb": compile_cells("torch", "PyTorch", TORCH),
    "pycograd_compile_jax.ipynb": compile_cells("jax", "JAX", JAX),
    "pycograd_compile_tf.ipynb": compile_cells("tf", "TensorFlow", TF),
    "pycograd_export.ipynb": EXPORT,
}


if __name__ == "__main__":
    import sys

    for name, cells in NOTEBOOKS.items():
        if len(sys.argv) < 2 or name in sys.argv[1:]:
            make(cells, name)
