"""Build and execute ``pycograd_graph_viz_demo.ipynb``, the graph IR (outputs saved for
GitHub): capture a DSL MLP and an attention block, print and draw them, count ops before
and after ``optimize``, draw the gradient graph, and run the compiled ``jit`` step.

Run ``python notebooks/make_graph_demo.py`` after changing the cells below; the test suite
executes the saved notebook again and checks what it reports.
"""

from __future__ import annotations

from make_demo import make

CELLS = [
    ("md", """# pycograd: graphs

`capture(f, *example_args)` records a function as a `Graph`: a flat list of primitive
applications, each value typed. The same IR is differentiated (`grad_graph`, built from the
tape's own VJP rules), rewritten (`optimize`), costed (`cost_report`) and compiled to a
straight-line numpy program (`jit`)."""),
    ("code", "%load_ext pycograd"),
    ("code", """import numpy as np
from IPython.display import SVG, display
from pycograd import (capture, cost_report, cross_entropy, grad_graph, jit, optimize, relu,
                      softmax)

rng = np.random.default_rng(0)
X = rng.standard_normal((32, 2))
Y = np.eye(3)[rng.integers(0, 3, 32)]"""),
    ("md", """## 1. An MLP written in the DSL

The weights are bare names from a `params{}` block; `capture` finds them and makes them
**named inputs** of the graph (not constants), so the graph follows training."""),
    ("code", """with params{
w1 = 0.3 * rng.standard_normal((2, 16)); b1 = np.zeros(16)
w2 = 0.3 * rng.standard_normal((16, 3)); b2 = np.zeros(3)
} as weights:
    logits = $ |> $ @ w1 + b1 |> relu |> $ @ w2 + b2
    objective = $ |> logits |> cross_entropy($, Y)

g = capture(logits, X)
print(g)
print("named weight inputs:", g.weight_names)
print("graph == eager:", np.allclose(g(X), logits(X)))"""),
    ("code", "display(SVG(g._repr_svg_()))"),
    ("md", """## 2. The gradient graph, before and after `optimize`

`grad_graph` records the backward pass the tape would run; `optimize` folds constants,
simplifies (`x*1`, transposes of transposes, ...), merges common subexpressions (also
across forward and backward) and removes dead code, to a fixed point."""),
    ("code", """loss_graph = capture(objective, X)
vg = grad_graph(loss_graph, weights=True)
opt = optimize(vg)
print("ops: forward", len(loss_graph.nodes), "| value+grad", len(vg.nodes),
      "| optimized", len(opt.nodes))
print("op counts after optimize:", opt.op_counts())
value, _, wgrads = opt(X)
v0, g0 = weights.grad(objective, X)
print("max |grad_graph - tape| =", max(float(np.max(np.abs(wgrads[k] - g0[k]))) for k in wgrads))
display(SVG(opt._repr_svg_()))"""),
    ("code", "print(cost_report(opt))"),
    ("md", """## 3. An attention block

Scaled dot-product attention with a symbolic sequence length: `ShapeDtypeStruct` dims given
as names stay symbolic through the graph, and the graph runs on any length."""),
    ("code", """from pycograd import ShapeDtypeStruct as S

def attention(x, wq, wk, wv):
    q, k, v = x @ wq, x @ wk, x @ wv
    scores = q @ k.T / np.sqrt(q.shape[-1])
    return softmax(scores, axis=-1) @ v

D = 8
Wq, Wk, Wv = (0.3 * rng.standard_normal((D, D)) for _ in range(3))
att = capture(attention, S(("seq", D)), Wq, Wk, Wv)
print(att)
x5 = rng.standard_normal((5, D))
print("any length:", att(x5, Wq, Wk, Wv).shape, att(x5[:3], Wq, Wk, Wv).shape,
      "| == eager:", np.allclose(att(x5, Wq, Wk, Wv), attention(x5, Wq, Wk, Wv)))
display(SVG(att._repr_svg_()))"""),
    ("md", """## 4. `jit`: the compiled step

`weights.grad(objective, X, jit=True)` captures once per input signature, differentiates,
optimizes, and runs a generated numpy program (no interpreter per op, buffers reused)."""),
    ("code", """v1, g1 = weights.grad(objective, X, jit=True)
print("max |jit - eager| =", max(float(np.max(np.abs(g1[k] - g0[k]))) for k in g0))
step = jit(lambda x: logits(x))
step(X)
print(step.cache[next(iter(step.cache))].source)"""),
]


if __name__ == "__main__":
    make(CELLS, "pycograd_graph_viz_demo.ipynb")
