"""Build and execute ``pycograd_remat_demo.ipynb``: the remat planner on a value+grad
graph, a budget sweep (measured peak and time against the budget), and the plan drawn on
the graph (keep, recompute and spill in three colours).

Run ``python notebooks/make_remat_demo.py`` after changing the cells below; the test suite
executes the saved notebook again and checks what it reports.
"""

from __future__ import annotations

from make_demo import make

CELLS = [
    ("md", """# pycograd: running a gradient within a memory budget

`plan_remat(graph, budget)` decides, for each activation of a value+grad graph, whether to
**keep** it, **recompute** it when backward needs it again, or **spill** it to a
temporary file (on a device: to host memory) and read it back; `eval_scheduled(plan,
*args)` runs the plan and returns exactly what the graph returns. The peak below is
measured by `tracemalloc` while `eval_scheduled` runs, not the planner's own estimate."""),
    ("code", """import time, tracemalloc
import numpy as np
import matplotlib.pyplot as plt
from IPython.display import SVG, display
from pycograd import capture, grad_graph, plan_remat, eval_scheduled, RematInfeasibleError

rng = np.random.default_rng(0)
ws = [rng.normal(size=(128, 128)) / 11 for _ in range(8)]
x = rng.normal(size=(2048, 128))

def loss(x, ws):
    h = x
    for w in ws:
        h = np.tanh(h @ w + 0.1)
    return np.sum(h * h)

g = grad_graph(capture(loss, x, ws), argnums=1)
reference = g(x, ws)
print(f"value+grad graph: {len(g.nodes)} nodes")"""),
    ("md", "## 1. A budget sweep"),
    ("code", """def measure(plan):
    eval_scheduled(plan, x, ws)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    out = eval_scheduled(plan, x, ws)
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    same = np.array_equal(out[0], reference[0]) and all(
        np.array_equal(a, b) for a, b in zip(out[1], reference[1]))
    return peak, seconds, same

plain = plan_remat(g, 10 ** 12).plain_peak
rows = []
for frac in (1.0, 0.8, 0.6, 0.5, 0.4):
    plan = plan_remat(g, int(frac * plain))
    peak, seconds, same = measure(plan)
    rows.append((plan.budget, peak, seconds))
    print(f"budget {frac:.1f}x: {plan.method:9s} {plan.counts()}  measured "
          f"{peak / 2**20:5.1f} MiB of {plan.budget / 2**20:5.1f}  {seconds:.3f} s  "
          f"identical: {same}")
print("measured <= budget:", all(p <= b for b, p, _ in rows))"""),
    ("code", """b, p, s = (np.array(c) for c in zip(*rows))
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
ax1.plot(b / 2**20, p / 2**20, "o-", label="measured peak")
ax1.plot(b / 2**20, b / 2**20, "k--", label="budget")
ax1.set_xlabel("budget (MiB)"); ax1.set_ylabel("MiB"); ax1.legend()
ax2.plot(b / 2**20, s / s[0], "o-")
ax2.set_xlabel("budget (MiB)"); ax2.set_ylabel("time / plain replay")
fig.tight_layout()
display(fig)
plt.close(fig)"""),
    ("md", """## 2. The plan on the graph

Green: kept; orange: recomputed; blue: spilled. A budget the planner cannot meet raises
`RematInfeasibleError`, naming the smallest one it can."""),
    ("code", """small = rng.normal(size=(512, 32))
sg = grad_graph(capture(loss, small, [w[:32, :32] for w in ws[:3]]), argnums=1)
try:
    plan_remat(sg, 10 ** 5)
except RematInfeasibleError as e:
    print(e)
    plan = plan_remat(sg, e.smallest)
print(plan.counts())
import graphviz  # the drawing needs the Graphviz `dot` program
display(SVG(graphviz.Source(sg.to_dot(highlight=plan.colour)).pipe(format="svg").decode()))"""),
]


if __name__ == "__main__":
    make(CELLS, "pycograd_remat_demo.ipynb")
