"""Build and execute ``pycograd_rnn_demo.ipynb``: GRU and LSTM character-level language
models on the Python standard library's own docstrings (offline), built from ``gru_cell`` /
``lstm_cell`` and ``scan``; loss curves, held-out perplexity, generated text, and
per-sequence gradients by ``vmap(grad(...))`` whose norm histogram sets the clipping bound.

Run ``python notebooks/make_rnn_demo.py`` after changing the cells below; the test suite
executes the saved notebook again and checks what it reports.
"""

from __future__ import annotations

from make_demo import make

LOWERED_MD = """## The same forward, compiled to torch and jax

`compile_to(f, "torch")` (or `"jax"`) captures `f` once as a graph and lowers it to the
framework's own operations. `scan` unrolls into that graph, so the result is a plain torch
(jax) function of tensors, which `torch.autograd` (`jax.grad`) differentiates and
`torch.compile` (`jax.jit`) compiles. Importing torch and jax into one process can crash, so
each framework runs in a fresh Python process: the forward and its arguments go there
pickled (cloudpickle pickles notebook functions by value), are compiled and run there, and
the largest difference from the numpy forward comes back."""

LOWERED_HELPER = """import importlib.util, subprocess, sys, tempfile
from pathlib import Path
import cloudpickle

WORKER = '''
import pickle, sys
import numpy as np
import pycograd as pg
backend, job = sys.argv[1:]
with open(job, "rb") as fh:
    cases = pickle.load(fh)
if backend == "jax":
    import jax
    jax.config.update("jax_enable_x64", True)       # float64 in jax
    to_framework = jax.numpy.asarray
else:
    import torch
    to_framework = torch.as_tensor
for name, (f, args, expected) in cases.items():
    out = pg.compile_to(f, backend)(*pg.tree_map(to_framework, args))
    print(name, float(np.max(np.abs(np.asarray(out) - expected))))
'''

def lowered_parity(cases, backends=("torch", "jax")):
    \"\"\"{(backend, name): max |f compiled to backend - f on numpy|} for cases
    {name: (f, args)}; each backend in its own process, None where it is not installed.\"\"\"
    jobs = {name: (f, args, f(*args)) for name, (f, args) in cases.items()}
    diffs = {}
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp) / "cases.pkl"
        job.write_bytes(cloudpickle.dumps(jobs))
        for backend in backends:
            if importlib.util.find_spec(backend) is None:
                diffs.update({(backend, name): None for name in cases})
                continue
            run = subprocess.run([sys.executable, "-c", WORKER, backend, str(job)],
                                 capture_output=True, text=True)
            if run.returncode:
                raise RuntimeError(f"the {backend} process failed:\\n{run.stderr}")
            for line in run.stdout.splitlines():
                name, diff = line.rsplit(" ", 1)
                diffs[backend, name] = float(diff)
    return diffs

def show_parity(diffs, what):
    for (backend, name), diff in diffs.items():
        if diff is None:
            print(f"{backend} is not installed: {name} not compiled")
            continue
        print(f"max |{backend} - numpy| ({name} {what}) = {diff:.1e}")
        assert diff < 1e-10, (backend, name, diff)"""

CELLS = [
    ("md", """# pycograd: recurrent networks

A GRU and an LSTM, each written as ONE step (`gru_cell`, `lstm_cell`) and run over a
sequence with `scan`, learn to predict the next character of the Python standard
library's docstrings (text that ships with Python: nothing to download). Then `vmap(grad)`
gives one gradient per sequence, and the histogram of their norms picks the bound for
per-sequence clipping."""),
    ("code", """import importlib, inspect, re, time
import numpy as np
import matplotlib.pyplot as plt
from threadpoolctl import threadpool_limits
from pycograd import Adam, cross_entropy, grad, gru_cell, lstm_cell, scan, value_and_grad, vmap

threadpool_limits(1)   # small matrices: BLAS threads cost more than they save here

MODULES = ["collections", "functools", "itertools", "json", "textwrap", "string", "re",
           "heapq", "bisect", "statistics", "random", "fractions", "decimal", "pathlib",
           "argparse", "shutil"]
docs = []
for name in MODULES:
    module = importlib.import_module(name)
    for attr in sorted(dir(module)):
        doc = None if attr.startswith("_") else inspect.getdoc(getattr(module, attr))
        if doc and doc not in docs:
            docs.append(doc)
text = re.sub(r" +", " ", re.sub(r"[^a-z.,()' \\n]", " ", "\\n".join(docs).lower()))
chars = sorted(set(text))
V = len(chars)
ids = np.array([chars.index(c) for c in text])
split = int(0.9 * len(ids))
train_ids, val_ids = ids[:split], ids[split:]           # the last 10% is held out
print(f"{len(text)} characters of docstrings, vocabulary {V}")
print(repr(text[:120]))"""),
    ("md", """## The models: one step each, `scan` for the sequence

`scan(cell, init, xs)` runs the cell over the time axis and stacks the hidden states; an
LSTM's carry is the pair `(h, c)` and the stacked output is `h`. Inputs are one-hot
characters, the read-out a linear layer; the loss is the mean next-character
cross-entropy."""),
    ("code", """T, B, H = 32, 32, 64
onehot = np.eye(V)
rng = np.random.default_rng(0)

def batch(src, n, rng):
    \"\"\"n random windows of T+1 characters: inputs (T, n, V) time first, targets (T, n).\"\"\"
    starts = rng.integers(0, len(src) - T - 1, n)
    seq = np.stack([src[s:s + T + 1] for s in starts])
    return onehot[seq[:, :-1]].transpose(1, 0, 2), seq[:, 1:].T

def init(kind, rng):
    G, s = (3 if kind == "gru" else 4), 1 / np.sqrt(H)
    return {"w_ih": rng.uniform(-s, s, (G * H, V)), "w_hh": rng.uniform(-s, s, (G * H, H)),
            "b_ih": np.zeros(G * H), "b_hh": np.zeros(G * H),
            "w_out": rng.uniform(-s, s, (H, V)), "b_out": np.zeros(V)}

def step_fn(p, kind):
    \"\"\"The model's ONE step: carry -> carry (a GRU's h, an LSTM's (h, c)).\"\"\"
    w = (p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
    if kind == "gru":
        return lambda h, x: gru_cell(x, h, *w)
    return lambda state, x: lstm_cell(x, state, *w)

def initial(kind, shape):
    h = np.zeros(shape + (H,))
    return h if kind == "gru" else (h, h)

def logits(p, xs, kind):
    _, hs = scan(step_fn(p, kind), initial(kind, xs.shape[1:-1]), xs)   # (T, ..., H)
    return hs @ p["w_out"] + p["b_out"]

def loss(p, xs, ys, kind):
    return cross_entropy(logits(p, xs, kind).reshape(-1, V), ys.reshape(-1))

def fit(kind, steps, lr=0.01, seed=0):
    rng = np.random.default_rng(seed)
    p, opt, curve = init(kind, rng), Adam(lr=lr), []
    for _ in range(steps):
        value, (g,) = value_and_grad(loss, argnums=(0,))(p, *batch(train_ids, B, rng), kind)
        p = opt.step(p, g)
        curve.append(float(value))
    return p, curve

val_xs, val_ys = batch(val_ids, 256, np.random.default_rng(1))
models, curves = {}, {}
for kind in ("gru", "lstm"):
    t0 = time.perf_counter()
    models[kind], curves[kind] = fit(kind, 150)
    ppl = np.exp(float(loss(models[kind], val_xs, val_ys, kind)))
    print(f"{kind}: train loss {curves[kind][0]:.3f} -> {np.mean(curves[kind][-10:]):.3f}, "
          f"held-out perplexity {ppl:.2f} (uniform: {V}), {time.perf_counter() - t0:.1f} s")"""),
    ("md", """## Loss curves and generated text

Sampling runs the same cell one character at a time, carrying only the state: each new
character costs the same whatever came before."""),
    ("code", """fig, ax = plt.subplots(figsize=(7, 3.5))
for kind, curve in curves.items():
    ax.plot(np.convolve(curve, np.ones(10) / 10, mode="valid"), label=kind.upper())
ax.axhline(np.log(V), color="gray", ls=":", label="uniform")
ax.set(xlabel="step", ylabel="next-character cross-entropy", title="training loss")
ax.legend()
plt.show()

def sample(p, kind, prompt, n, rng, temperature=0.7):
    cell, state = step_fn(p, kind), initial(kind, ())
    out = prompt
    for c in prompt[:-1]:
        state = cell(state, onehot[chars.index(c)])
    last = prompt[-1]
    for _ in range(n):
        state = cell(state, onehot[chars.index(last)])
        h = state if kind == "gru" else state[0]
        z = (h @ p["w_out"] + p["b_out"]) / temperature
        probs = np.exp(z - z.max()); probs /= probs.sum()
        last = chars[rng.choice(V, p=probs)]
        out += last
    return out

for kind in ("gru", "lstm"):
    print(f"{kind}:", repr(sample(models[kind], kind, "return the ", 120,
                                  np.random.default_rng(2))))"""),
    ("md", """## Per-sequence gradients and the clipping bound

`loss` is written for a batch, and works as well for ONE sequence (no batch axis).
`vmap(grad(loss))` maps it over the sequences of a batch: one full gradient per sequence,
in one call, equal to looping `grad` over them. Their norms differ from sequence to
sequence; the histogram shows where to clip. Its median is used as the bound for
per-sequence clipping (each sequence's gradient scaled down to at most that norm before
averaging, so no single sequence dominates a step), and the trained LSTM continues
training that way."""),
    ("code", """per_sequence = vmap(grad(loss, 0), in_axes=(None, 1, 1, None))
xs, ys = batch(train_ids, 64, np.random.default_rng(3))
p0 = models["lstm"]
g = per_sequence(p0, xs, ys, "lstm")
norms = np.sqrt(sum((v.reshape(len(v), -1) ** 2).sum(1) for v in g.values()))
one = grad(loss, 0)(p0, xs[:, 5], ys[:, 5], "lstm")
print("per-sequence gradients:", g["w_hh"].shape, " same as grad of sequence 5:",
      all(np.allclose(g[k][5], one[k], rtol=1e-10, atol=1e-12) for k in one))
mean_full = grad(loss, 0)(p0, xs, ys, "lstm")
print("max |mean of per-sequence - batch gradient| =",
      f"{max(float(np.abs(g[k].mean(0) - mean_full[k]).max()) for k in g):.1e}")
clip = float(np.median(norms))
fig, ax = plt.subplots(figsize=(7, 3))
ax.hist(norms, bins=20)
ax.axvline(clip, color="red", label=f"clip bound (median) {clip:.2f}")
ax.set(xlabel="gradient norm of one sequence", ylabel="sequences",
       title="per-sequence gradient norms (trained LSTM)")
ax.legend()
plt.show()
print(f"norms from {norms.min():.2f} to {norms.max():.2f}; clip bound {clip:.2f}")

def clipped_mean(g, bound):
    n = np.sqrt(sum((v.reshape(len(v), -1) ** 2).sum(1) for v in g.values()))
    scale = np.minimum(1.0, bound / n)
    return {k: np.tensordot(scale, v, axes=1) / len(scale) for k, v in g.items()}, n

rng = np.random.default_rng(5)
p, opt, clipped_curve = p0, Adam(lr=0.01), []
for _ in range(60):
    xs, ys = batch(train_ids, 16, rng)
    g_clipped, n = clipped_mean(per_sequence(p, xs, ys, "lstm"), clip)
    p = opt.step(p, g_clipped)
    clipped_curve.append(float(loss(p, xs, ys, "lstm")))
print(f"LSTM, 60 more steps with per-sequence clipping: loss {clipped_curve[0]:.3f} -> "
      f"{np.mean(clipped_curve[-5:]):.3f}, held-out perplexity "
      f"{np.exp(float(loss(p, val_xs, val_ys, 'lstm'))):.2f}")"""),
    ("md", LOWERED_MD),
    ("code", LOWERED_HELPER),
    ("code", """show_parity(lowered_parity({kind: (lambda p, xs, kind=kind: logits(p, xs, kind),
                                      (models[kind], val_xs[:, :16]))
                               for kind in ("gru", "lstm")}), "logits, float64")"""),
]


if __name__ == "__main__":
    make(CELLS, "pycograd_rnn_demo.ipynb")
