"""Build and execute ``pycograd_rwkv_demo.ipynb``: an RWKV-4 language model written once,
trained with the parallel WKV form and sampled with the recurrent O(1)-state form, on the
Python standard library's docstrings (offline). Checks recurrent == parallel and shows the
flat per-token sampling cost.

Run ``python notebooks/make_rwkv_demo.py`` after changing the cells below; the test suite
executes the saved notebook again and checks what it reports.
"""

from __future__ import annotations

from make_demo import make
from make_rnn_demo import LOWERED_HELPER, LOWERED_MD

CELLS = [
    ("md", """# pycograd: RWKV, parallel for training, recurrent for sampling

RWKV replaces attention with WKV, a decaying average of the past values, which has two
exact forms:

- **parallel**: every position of a sequence at once (a masked, softmax-like `T x T`
  weighting), for training on whole windows;
- **recurrent**: one token at a time from a state of fixed size `(a, b, p)` per channel,
  for sampling, where each new token costs the same however long the context is.

Both keep a running maximum exponent, so large keys never overflow. The block below is
written ONCE; a flag picks the WKV form. It trains on the standard library's docstrings
(the same text as the RNN notebook)."""),
    ("code", """import importlib, inspect, re, time
import numpy as np
import matplotlib.pyplot as plt
from threadpoolctl import threadpool_limits
from pycograd import (Adam, cross_entropy, embedding, layer_norm, rwkv_channel_mix,
                      rwkv_time_mix, value_and_grad, wkv)

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
print(f"{len(text)} characters of docstrings, vocabulary {V}")"""),
    ("md", """## The model, written once

`rwkv_time_mix(x, w, state, recurrent)` mixes each token with the previous one (the
*token shift*), projects keys, values and receptances for all tokens at once, and runs WKV
in the chosen form; `rwkv_channel_mix` is the feed-forward half. Both return the state
that continues the sequence."""),
    ("code", """C, F, LAYERS = 48, 96, 2

def init(rng):
    def mat(*shape):
        return rng.normal(size=shape) / np.sqrt(shape[0])
    layers = []
    for _ in range(LAYERS):
        att = {"mix_k": rng.uniform(0.3, 1, C), "mix_v": rng.uniform(0.3, 1, C),
               "mix_r": rng.uniform(0.3, 1, C), "decay": np.linspace(-3, 1, C),
               "bonus": np.full(C, 0.5), "key": mat(C, C), "value": mat(C, C),
               "receptance": mat(C, C), "output": mat(C, C) * 0.5}
        ffn = {"mix_k": rng.uniform(0.3, 1, C), "mix_r": rng.uniform(0.3, 1, C),
               "key": mat(C, F), "value": mat(F, C) * 0.5, "receptance": mat(C, C)}
        layers.append({"ln1": (np.ones(C), np.zeros(C)), "att": att,
                       "ln2": (np.ones(C), np.zeros(C)), "ffn": ffn})
    return {"emb": rng.normal(size=(V, C)) * 0.1, "layers": layers,
            "ln_out": (np.ones(C), np.zeros(C)), "head": mat(C, V)}

def block(p, x, state, recurrent):
    att_state, ffn_state = state
    y, att_state = rwkv_time_mix(layer_norm(x, *p["ln1"]), p["att"], att_state, recurrent)
    x = x + y
    y, ffn_state = rwkv_channel_mix(layer_norm(x, *p["ln2"]), p["ffn"], ffn_state)
    return x + y, (att_state, ffn_state)

def rwkv(p, tokens, state=None, recurrent=False):
    \"\"\"Logits (..., T, V) for tokens (..., T), and the state after them.\"\"\"
    state = state or [(None, None)] * LAYERS
    x = embedding(tokens, p["emb"])
    new_state = []
    for layer, s in zip(p["layers"], state):
        x, s = block(layer, x, s, recurrent)
        new_state.append(s)
    return layer_norm(x, *p["ln_out"]) @ p["head"], new_state

p = init(np.random.default_rng(0))
probe = train_ids[:200]
parallel, _ = rwkv(p, probe)
state, steps = None, []
for t in range(len(probe)):                  # one token per call, O(1) state
    logits, state = rwkv(p, probe[t:t + 1], state, recurrent=True)
    steps.append(logits)
print(f"max |recurrent - parallel| = {np.abs(np.concatenate(steps) - parallel).max():.1e}"
      " (200 tokens, untrained)")"""),
    ("md", """## Training with the parallel form

Windows of `T` characters, all positions predicted at once. The parallel WKV is a
composition of numpy operations, so `value_and_grad` differentiates it like anything else
(and `vmap`, `jvp` and second order apply to it as well)."""),
    ("code", """T, B = 32, 16

def batch(src, n, rng):
    starts = rng.integers(0, len(src) - T - 1, n)
    seq = np.stack([src[s:s + T + 1] for s in starts])
    return seq[:, :-1], seq[:, 1:]

def loss(p, xs, ys):
    logits, _ = rwkv(p, xs)
    return cross_entropy(logits.reshape(-1, V), ys.reshape(-1))

rng = np.random.default_rng(1)
opt, curve = Adam(lr=0.01), []
val_xs, val_ys = batch(val_ids, 128, np.random.default_rng(2))
t0 = time.perf_counter()
for _ in range(150):
    value, (g,) = value_and_grad(loss, argnums=(0,))(p, *batch(train_ids, B, rng))
    p = opt.step(p, g)
    curve.append(float(value))
ppl = np.exp(float(loss(p, val_xs, val_ys)))
print(f"train loss {curve[0]:.3f} -> {np.mean(curve[-10:]):.3f}, held-out perplexity "
      f"{ppl:.2f} (uniform: {V}), {time.perf_counter() - t0:.1f} s")

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(np.convolve(curve, np.ones(10) / 10, mode="valid"), label="RWKV (parallel form)")
ax.axhline(np.log(V), color="gray", ls=":", label="uniform")
ax.set(xlabel="step", ylabel="next-character cross-entropy", title="training loss")
ax.legend()
plt.show()"""),
    ("md", """## The trained model: recurrent == parallel, then sampling

The same weights run token by token agree with the parallel form to rounding. For
sampling, a prompt is read in parallel (it hands back the state), then each new character
is one recurrent step."""),
    ("code", """probe = val_ids[:300]
parallel, _ = rwkv(p, probe)
state, steps = None, []
for t in range(len(probe)):
    logits, state = rwkv(p, probe[t:t + 1], state, recurrent=True)
    steps.append(logits)
print(f"max |recurrent - parallel| = {np.abs(np.concatenate(steps) - parallel).max():.1e}"
      " (300 tokens, trained)")

def sample(p, prompt, n, rng, temperature=0.7):
    logits, state = rwkv(p, np.array([chars.index(c) for c in prompt]))   # parallel prompt
    out, times = prompt, []
    for _ in range(n):
        t0 = time.perf_counter()
        z = logits[-1] / temperature
        probs = np.exp(z - z.max()); probs /= probs.sum()
        nxt = rng.choice(V, p=probs)
        logits, state = rwkv(p, np.array([nxt]), state, recurrent=True)
        times.append(time.perf_counter() - t0)
        out += chars[nxt]
    return out, np.array(times)

generated, _ = sample(p, "return the ", 120, np.random.default_rng(3))
print("sample:", repr(generated))"""),
    ("md", """## Per-token cost stays flat

Generating 1,000 characters one recurrent step at a time: the state has a fixed size, so
the time per token does not grow with the context. Re-running the parallel form on the
whole context for every new token (what a model without a recurrent form must do) grows
with the context length. (`benchmarks/bench_sequence.py` measures the same with medians.)"""),
    ("code", """_, times = sample(p, "the ", 1000, np.random.default_rng(4))
window = 50
flat = np.convolve(times, np.ones(window) / window, mode="valid") * 1e3
contexts = [25, 50, 100, 200, 400]
reparse = []
for n in contexts:
    t0 = time.perf_counter()
    rwkv(p, ids[:n])
    reparse.append((time.perf_counter() - t0) * 1e3)
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(np.arange(len(flat)) + window, flat, label="recurrent step (moving mean)")
ax.plot(contexts, reparse, "o-", label="parallel form over the whole context")
ax.set(xlabel="tokens of context", ylabel="ms per new token", yscale="log",
       title="cost of one more token")
ax.legend()
plt.show()
early, late = np.median(times[75:125]), np.median(times[975:1000])
print(f"median ms per token near token 100: {1e3 * early:.2f}, near token 1000: "
      f"{1e3 * late:.2f}")"""),
    ("md", LOWERED_MD.replace("`scan` unrolls into that graph", "Both WKV forms go into that "
                              "graph (the recurrent one unrolled)")),
    ("code", LOWERED_HELPER),
    ("code", """tokens = val_xs[:8]
show_parity(lowered_parity({
    "parallel": (lambda p, tokens: rwkv(p, tokens)[0], (p, tokens)),
    "recurrent": (lambda p, tokens: rwkv(p, tokens, recurrent=True)[0], (p, tokens))}),
    "logits of the trained model, float64")"""),
]


if __name__ == "__main__":
    make(CELLS, "pycograd_rwkv_demo.ipynb")
