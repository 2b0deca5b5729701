"""The ambient-weights DSL through IPython: ``%load_ext``, ``params{}`` blocks, ``|>``
pipelines that differentiate, the DSL's errors, and ``python -m pycograd run``.

pipescript's tracers, macros and builtins are process-wide, so the cells run in one child
process holding a fresh ``InteractiveShell``; each test reads what a scenario (a list of
cells and a probe expression evaluated after them) reported.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("IPython")
pytest.importorskip("pipescript")

import pycograd  # noqa: E402
from pycograd.dsl import patches  # noqa: E402
from pycograd.dsl.capture import _drop_defaults  # noqa: E402

DATA = """
import numpy as np
from pycograd import (relu, sigmoid, softmax, cross_entropy, train, Adam, cosine_decay,
                      grad, vmap, value_and_grad, frozen, tied, buffer, ParamDict)
rng = np.random.default_rng(42)
centers = np.array([[0.0, 2.5], [-2.5, -1.5], [2.5, -1.5]])
labels = rng.integers(0, 3, 150)
X = centers[labels] + rng.standard_normal((150, 2))
Y = np.eye(3)[labels]
"""

SEED_MLP = """
with params{
w1 = 0.3 * rng.standard_normal((2, 16)); b1 = np.zeros(16)
w2 = 0.3 * rng.standard_normal((16, 3)); b2 = np.zeros(3)
} as weights:
    logits = $ |> $ @ w1 + b1 |> relu |> $ @ w2 + b2 # the model, written once
    forward = $ |> logits |> softmax
    obj = |> X |> logits |> cross_entropy($, Y) # mean softmax cross-entropy
    for _ in range(10):
        value, grads = weights.grad(obj) # bind weights -> Vars, backprop
        weights.step(grads, 0.5) # in-place SGD
"""

SCENARIOS = [
    ("before_load", ["x = 1 |> $ + 1"], None),
    ("load", ["<load>", "y = 1 |> $ + 1"], "{'y': y}"),
    ("mlp_sgd", [DATA, SEED_MLP + "acc10 = float((forward(X).argmax(1) == labels).mean())",
                 """
first = float(value)
for _ in range(40):
    value, grads = weights.grad(obj)
    weights.step(grads, 0.5)
"""], "{'acc10': acc10, 'first': first, 'last': float(value), "
          "'acc': float((forward(X).argmax(1) == labels).mean()), "
          "'ambient_after': type(w1).__name__ == 'ndarray' and w1 is weights['w1'], "
          "'names': sorted(weights)}"),
    ("mlp_adam", [DATA, """
with params{
w1 = 0.3 * rng.standard_normal((2, 16)); b1 = np.zeros(16)
w2 = 0.3 * rng.standard_normal((16, 3)); b2 = np.zeros(3)
} as weights:
    logits = $ |> $ @ w1 + b1 |> relu |> $ @ w2 + b2
    obj = |> X |> logits |> cross_entropy($, Y)
    first, last = train(weights, obj, 200, Adam(lr=cosine_decay(0.05, 200)), progress=False)
"""], "{'first': first, 'last': last, 'acc': float((logits(X).argmax(1) == labels).mean())}"),
    ("highway", [DATA, """
with params{
_s = 0.3
wi = _s * rng.standard_normal((2, 8)); bi = np.zeros(8)
wh = _s * rng.standard_normal((8, 8)); bh = np.zeros(8)
wt = _s * rng.standard_normal((8, 8)); bt = np.full(8, -1.0)
wo = _s * rng.standard_normal((8, 3)); bo = np.zeros(3)
} as hw:
    highway = $ |> fork[$ @ wh + bh |> relu, $ @ wt + bt |> sigmoid, $] *|> $h * $t + $x * (1 - $t)
    net = $ |> $ @ wi + bi |> highway |> highway |> $ @ wo + bo
    hobj = |> X |> net |> cross_entropy($, Y)
    v0, g0 = hw.grad(hobj)

def twin(p):
    def hwy(x):
        h = relu(x @ p["wh"] + p["bh"]); t = sigmoid(x @ p["wt"] + p["bt"])
        return h * t + x * (1 - t)
    return cross_entropy(hwy(hwy(X @ p["wi"] + p["bi"])) @ p["wo"] + p["bo"], Y)

tv, (tg,) = value_and_grad(twin)(dict(hw.trainable()))
err = max(float(np.abs(g0[k] - tg[k]).max()) for k in hw)
first, last = train(hw, hobj, 40, Adam(lr=0.1), progress=False)
"""], "{'names': sorted(hw), 'value_err': abs(float(v0) - float(tv)), 'grad_err': err, "
          "'first': first, 'last': last, "
          "'acc': float((net(X).argmax(1) == labels).mean())}"),
    ("attention", [DATA, """
def attention(q, k, v):
    return softmax(q @ k.T / np.sqrt(q.shape[-1])) @ v

with params{
Wq = 0.3 * rng.standard_normal((2, 4)); Wk = 0.3 * rng.standard_normal((2, 4))
Wv = 0.3 * rng.standard_normal((2, 4)); Wa = 0.3 * rng.standard_normal((4, 3))
} as att:
    anet = $ |> attention($x @ Wq, $x @ Wk, $x @ Wv) |> $ @ Wa
    aobj = |> X[:20] |> anet |> cross_entropy($, Y[:20])
    a0, ag = att.grad(aobj)

def twin(p):
    x = X[:20]
    return cross_entropy(attention(x @ p["Wq"], x @ p["Wk"], x @ p["Wv"]) @ p["Wa"], Y[:20])

tv, (tg,) = value_and_grad(twin)(dict(att.trainable()))
"""], "{'value_err': abs(float(a0) - float(tv)), "
          "'grad_err': max(float(np.abs(ag[k] - tg[k]).max()) for k in att)}"),
    ("per_example", [DATA, """
def per_example_loss(w, b, x, y): # ONE (2,) point + ONE label -> scalar
    return x |> $ @ w + b |> cross_entropy($, y)

w = rng.standard_normal((2, 3)); b = np.zeros(3)
gw, gb, _, _ = vmap(grad(per_example_loss), in_axes=(None, None, 0, 0))(w, b, X, Y)
fw, fb = grad(lambda w, b: cross_entropy(X @ w + b, Y), argnums=(0, 1))(w, b)
"""], "{'gw': list(gw.shape), 'gb': list(gb.shape), 'err': max("
          "float(np.abs(gw.mean(0) - fw).max()), float(np.abs(gb.mean(0) - fb).max()))}"),
    ("checkpoint_vmap", [DATA, """
from pycograd import checkpoint
with params{
w1 = 0.3 * rng.standard_normal((2, 16)); b1 = np.zeros(16)
w2 = 0.3 * rng.standard_normal((16, 3)); b2 = np.zeros(3)
} as weights:
    logits = $ |> $ @ w1 + b1 |> relu |> $ @ w2 + b2
    plain = |> X |> logits |> cross_entropy($, Y)
    remat = |> X |> checkpoint(logits) |> cross_entropy($, Y)
    pv, pg = weights.grad(plain)
    cv, cg = weights.grad(remat)
    batched = vmap(logits)(X[:, None, :])
"""], "{'value_err': abs(float(pv) - float(cv)), "
          "'grad_err': max(float(np.abs(pg[k] - cg[k]).max()) for k in weights), "
          "'vmap_err': float(np.abs(batched[:, 0, :] - logits(X)).max())}"),
    ("markers", [DATA, """
with params{
w1 = rng.standard_normal((2, 3)); b1 = frozen[np.ones(3)]; w2 = tied['w1']
c = buffer[np.zeros(2)]
} as weights:
    f = |> X |> $ @ w1 + b1 |> $ @ w2.T |> np.sum
    v, g = weights.grad(f)
    weights.step(g, 0.1)
"""], "{'kinds': [weights.kind(n) for n in ['w1', 'b1', 'w2', 'c']], "
          "'none': [g['b1'] is None, g['c'] is None], 'tied_same': w2 is w1, "
          "'tied_grad': bool(np.allclose(g['w1'], g['w2'])), 'b1': b1.tolist()}"),
    ("late_binding", [DATA, """
with params{ w = np.ones((2, 3)) } as weights:
    out = $ |> $ @ w |> np.sum
before = float(out(X))
weights.assign("w", np.zeros((2, 3)))
after = float(out(X))
with params{ w = np.full((2, 3), 2.0) } as weights2:
    pass
rebound = float(out(X))
def local_w(w, x): # a parameter named like a weight stays the parameter
    return x |> $ @ w |> np.sum
local = float(local_w(np.zeros((2, 3)), X))
"""], "{'before': before, 'after': after, 'rebound': rebound, 'local': local, "
          "'expected': float(2 * X.sum() * 3), 'old_unbound': weights._namespaces == []}"),
    ("math_stage", ["""
import math
from pycograd import grad
def g(v):
    return math.sin(v) * math.exp(v)
with params{ w = 0.5 } as weights:
    obj = |> w |> g |> $ * 2.0
    v, gr = weights.grad(obj)
h = $ |> g |> $ * 2.0
(gh,) = grad(h)(0.5)
"""], "{'gw': float(gr['w']), 'gh': float(gh), "
       "'expected': 2 * math.exp(0.5) * (math.cos(0.5) + math.sin(0.5))}"),
    ("stage_cache", ["""
import numpy as np
k = 2.0
scale = |> 3.0 |> $ * k
a = [scale()]
k = 5.0
a.append(scale())
def h(x, k): # k is a local and a global: pipescript passes it as a default argument
    return x |> $ * k |> $ + 1
def h2(x, kk): # kk is only a local: pipescript reads it from the live stack
    return x |> $ * kk
fk = $ |> fork[$ * k, $] *|> $ + $
c = [h(1.0, 1.0), h(1.0, 2.0), h(1.0, 3.0)]
d = [h2(1.0, 2.0), h2(1.0, 4.0)]
e = [fk(1.0)]
k = 1.0
e.append(fk(1.0))
def g(x, m): # a whole `$ |>` pipeline made on each call
    f = $ |> $ * m |> $ + 1
    return f(x)
gs = [g(1.0, 2.0), g(1.0, 3.0), g(2.0, 3.0)]
"""], "{'a': a, 'c': c, 'd': d, 'e': e, 'g': gs}"),
    ("flat_memory", [DATA, """
import gc, sys
import pyccolo as pyc
from pycograd.dsl import stagecache
with params{
w1 = 0.3 * rng.standard_normal((2, 8)); b1 = np.zeros(8)
w2 = 0.3 * rng.standard_normal((8, 3)); b2 = np.zeros(3)
} as weights:
    logits = $ |> $ @ w1 + b1 |> relu |> $ @ w2 + b2
    hway = $ |> fork[$ |> relu, $] *|> $ + $
    obj = |> X[:30] |> logits |> hway |> cross_entropy($, Y[:30])
def step():
    value, grads = weights.grad(obj)
    weights.step(grads, 0.1)
    return value

def census():
    B = pyc.BaseTracer
    return {"nodes": len(B.ast_node_by_id), "parents": len(B.containing_ast_by_id),
            "stmts": len(B.containing_stmt_by_id), "files": len(B.ast_bookkeeper_by_fname),
            "augmented": sum(len(v) for v in B.augmented_node_ids_by_spec.values()),
            "extra": sum(len(v) for v in B.additional_ast_bookkeeping.values()),
            **stagecache.stats()}
for _ in range(100):
    step()
gc.collect()
at100 = census(), len(gc.get_objects()), sys.getallocatedblocks()
for _ in range(900):
    last = step()
gc.collect()
at1000 = census(), len(gc.get_objects()), sys.getallocatedblocks()
"""], "{'at100': at100, 'at1000': at1000, 'last': float(last)}"),
    ("step_time", [DATA, """
import time
from pycograd import value_and_grad
with params{
w1 = 0.3 * rng.standard_normal((2, 16)); b1 = np.zeros(16)
w2 = 0.3 * rng.standard_normal((16, 3)); b2 = np.zeros(3)
} as weights:
    logits = $ |> $ @ w1 + b1 |> relu |> $ @ w2 + b2
    obj = |> X |> logits |> cross_entropy($, Y)
p = {k: np.array(v) for k, v in weights.items()}
def plain_loss(p):
    return cross_entropy(relu(X @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"], Y)
plain_vg = value_and_grad(plain_loss)
def dsl_step():
    value, grads = weights.grad(obj)
    weights.step(grads, 0.1)
    return float(value)
def plain_step():
    value, (grads,) = plain_vg(p)
    for k in p:
        p[k] -= 0.1 * grads[k]
    return float(value)
losses = [(dsl_step(), plain_step()) for _ in range(20)]
times = {"dsl": [], "plain": []}
for _ in range(200):
    for name, f in (("dsl", dsl_step), ("plain", plain_step)):
        t0 = time.perf_counter()
        f()
        times[name].append(time.perf_counter() - t0)
ms = {name: 1e3 * sorted(t)[len(t) // 2] for name, t in times.items()}
"""], "{'ms': ms, 'losses': losses}"),
    ("errors", [DATA, """
with params{
w1 = rng.standard_normal((2, 3)); b1 = np.zeros(3)
} as weights:
    f = |> X |> $ @ w1 + b1 + w3 |> cross_entropy($, Y)
""", """
print("first line runs")
w1 = np.ones((2, 3))
""", """
with params{
relu = rng.standard_normal((2, 3))
} as bad:
    pass
""", """
with params{
w1 = rng.standard_normal((2, 3)); b1 = np.zeros(3)
} as weights:
    f = |> X |> $ @ w1 + b1 |> 3 |> np.sum
    weights.grad(f)
""", """
with params{
w1 = rng.standard_normal((2, 3)); b1 = np.zeros(3)
} as weights:
    f = |> X |> $ @ w1 + b1
    weights.grad(f)
""", "w1 -= 0.0"], None),
]

CHILD = r"""
import json, sys, time
from IPython.core.interactiveshell import InteractiveShell
import pycograd
from pycograd.dsl import hint

shell = InteractiveShell.instance()
hint.install_if_interactive()  # what importing pycograd in IPython does
load = ("%load_ext pycograd" if hasattr(pycograd, "load_ipython_extension")
        else "%load_ext pycograd.dsl")
report = {}
for name, cells, probe in json.load(sys.stdin):
    t0 = time.perf_counter()
    results = []
    for src in cells:
        r = shell.run_cell(load if src == "<load>" else src)
        e = r.error_before_exec or r.error_in_exec
        results.append({"ok": r.success, "error": type(e).__name__ if e else None,
                        "message": str(e) if e else None,
                        "lineno": getattr(e, "lineno", None)})
    value = None
    if probe is not None and all(c["ok"] for c in results):
        value = eval(probe, shell.user_ns)
    report[name] = {"cells": results, "probe": value, "seconds": time.perf_counter() - t0}
    if name != "before_load":
        shell.reset(new_session=False)
print("@@REPORT@@" + json.dumps(report))
"""


@pytest.fixture(scope="module")
def report() -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD], input=json.dumps(SCENARIOS),
                          capture_output=True, text=True, timeout=300)
    marker = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@REPORT@@")]
    assert marker, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(marker[0][len("@@REPORT@@"):])


def _ok(scenario: dict) -> dict:
    bad = [c for c in scenario["cells"] if not c["ok"]]
    assert not bad, bad
    return scenario["probe"]


def test_dsl_syntax_before_load_ext_says_to_load_it(report):
    (cell,) = report["before_load"]["cells"]
    assert cell["error"] == "SyntaxError" and cell["lineno"] == 1
    assert "%load_ext pycograd" in cell["message"] and "'|>'" in cell["message"]


def test_load_ext_turns_on_pipes(report):
    assert _ok(report["load"]) == {"y": 2}


@pytest.mark.skipif(not hasattr(pycograd, "load_ipython_extension"),
                    reason="pycograd/__init__.py does not define load_ipython_extension yet")
def test_top_level_module_is_the_extension():
    from pycograd.dsl import load_ipython_extension

    assert pycograd.load_ipython_extension.__module__ == "pycograd"
    assert callable(load_ipython_extension)


def test_seed_mlp_cell_trains_and_weights_stay_ambient(report):
    p = _ok(report["mlp_sgd"])
    assert p["names"] == ["b1", "b2", "w1", "w2"]
    assert p["acc10"] > 0.9 and p["acc"] > 0.95
    assert p["last"] < p["first"] < 1.1
    assert p["ambient_after"]


def test_train_with_adam_and_cosine_decay_in_place_of_the_loop(report):
    p = _ok(report["mlp_adam"])
    assert p["last"] < 0.1 * p["first"] and p["acc"] > 0.95


def test_highway_with_fork_and_splat_pipe_matches_its_plain_twin(report):
    p = _ok(report["highway"])
    assert p["names"] == ["bh", "bi", "bo", "bt", "wh", "wi", "wo", "wt"]
    assert p["value_err"] < 1e-12 and p["grad_err"] < 1e-10
    assert p["last"] < 0.2 * p["first"] and p["acc"] > 0.95


def test_named_placeholder_reuse_in_a_stage_matches_its_plain_twin(report):
    p = _ok(report["attention"])
    assert p["value_err"] < 1e-12 and p["grad_err"] < 1e-10


def test_per_example_pipeline_in_a_def_under_vmap_of_grad(report):
    p = _ok(report["per_example"])
    assert p["gw"] == [150, 2, 3] and p["gb"] == [150, 3]
    assert p["err"] < 1e-12


def test_the_same_forward_serves_checkpoint_and_vmap_unchanged(report):
    p = _ok(report["checkpoint_vmap"])
    assert p["value_err"] < 1e-12 and p["grad_err"] < 1e-12 and p["vmap_err"] < 1e-12


def test_frozen_tied_and_buffer_entries_in_a_block(report):
    p = _ok(report["markers"])
    assert p["kinds"] == ["param", "frozen", "tied", "buffer"]
    assert p["none"] == [True, True] and p["tied_same"] and p["tied_grad"]
    assert p["b1"] == [1.0, 1.0, 1.0]


def test_pipelines_read_weights_when_they_run(report):
    p = _ok(report["late_binding"])
    assert p["after"] == 0.0 and p["before"] != 0.0
    assert p["rebound"] == pytest.approx(p["expected"])
    assert p["old_unbound"] and p["local"] == 0.0


def test_math_in_a_helper_used_as_a_stage_differentiates(report):
    p = _ok(report["math_stage"])
    assert p["gw"] == pytest.approx(p["expected"]) and p["gh"] == pytest.approx(p["expected"])


def test_a_stage_compiled_once_still_reads_its_names_when_it_runs(report):
    p = _ok(report["stage_cache"])
    assert p["a"] == [6.0, 15.0]
    assert p["c"] == [2.0, 3.0, 4.0] and p["d"] == [2.0, 4.0]
    assert p["e"] == [6.0, 2.0] and p["g"] == [3.0, 4.0, 7.0]


@pytest.mark.skipif(patches.disabled(), reason="flat memory is the stage cache's doing, a "
                    "patch that PYCOGRAD_NO_PATCHES turns off")
def test_a_training_loop_holds_flat_memory(report):
    """1,000 steps: pyccolo's AST bookkeeping and the stage cache at step 1,000 are what
    they were at step 100, and so (within noise) are the live objects and allocated blocks
    (without the stage cache: +71 AST nodes, +5 sandbox files, +175 objects a step)."""
    p = _ok(report["flat_memory"])
    (census100, objects100, blocks100) = p["at100"]
    (census1000, objects1000, blocks1000) = p["at1000"]
    assert census1000 == census100
    assert objects1000 - objects100 < 100, (objects100, objects1000)
    assert blocks1000 - blocks100 < 1000, (blocks100, blocks1000)
    assert p["last"] < 1.0


def test_dsl_step_time_next_to_plain_python(report, capsys):
    """Reported, not asserted: medians over 200 interleaved steps of the same MLP."""
    p = _ok(report["step_time"])
    for dsl, plain in p["losses"]:
        assert dsl == pytest.approx(plain, rel=1e-12)
    ms = p["ms"]
    with capsys.disabled():
        print(f"\nDSL step {ms['dsl']:.2f} ms, plain Python step {ms['plain']:.2f} ms "
              f"(x{ms['dsl'] / ms['plain']:.2f})")


@pytest.mark.parametrize("index, error, words", [
    (1, "UndefinedWeightError", ["line 4", "'w3'", "w1, b1"]),
    (2, "WeightShadowError", ["line 2", "'w1'", "weights.assign"]),
    (3, "WeightShadowError", ["'relu'", "function"]),
    (4, "PipelineStageError", ["not a function", "int 3", "shape (150, 3)"]),
    (5, "NonScalarOutputError", ["shape (150, 3)", "scalar"]),
])
def test_errors_name_the_problem(report, index, error, words):
    cell = report["errors"]["cells"][index]
    assert cell["error"] == error, cell
    for w in words:
        assert w in cell["message"], (w, cell["message"])


def test_in_place_update_of_a_weight_is_not_shadowing(report):
    assert report["errors"]["cells"][6]["ok"]


def test_run_a_dsl_script(tmp_path):
    script = tmp_path / "model.py"
    script.write_text(textwrap.dedent("""
        import sys
        import numpy as np
        from pycograd import relu, cross_entropy
        rng = np.random.default_rng(0)
        labels = rng.integers(0, 3, 90)
        X = np.array([[0., 2.5], [-2.5, -1.5], [2.5, -1.5]])[labels] + rng.standard_normal((90, 2))
        Y = np.eye(3)[labels]
        with params{
        w1 = 0.3 * rng.standard_normal((2, 16)); b1 = np.zeros(16)
        w2 = 0.3 * rng.standard_normal((16, 3)); b2 = np.zeros(3)
        } as weights:
            logits = $ |> $ @ w1 + b1 |> relu |> $ @ w2 + b2
            obj = |> X |> logits |> cross_entropy($, Y)
            for _ in range(40):
                value, grads = weights.grad(obj)
                weights.step(grads, 0.5)
        if __name__ == "__main__":
            print("acc", (logits(X).argmax(1) == labels).mean(), "args", sys.argv[1:])
    """))
    proc = subprocess.run([sys.executable, "-m", "pycograd", "run", str(script), "a", "--b"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    acc, args = proc.stdout.split("acc ")[1].split(" args ")
    assert float(acc) > 0.95 and args.strip() == "['a', '--b']"


def test_dsl_code_routes_module_helpers_without_warnings(tmp_path):
    """DSL code calling a plain module's helper that uses math.sin differentiates (the
    DSL's tracer hands the helper's routed copy to the call), and DSL-compiled functions
    raise no "cannot route" warning: their call sites are the DSL tracer's to route."""
    (tmp_path / "helpers.py").write_text(textwrap.dedent("""
        import math
        import numpy as np

        def wave(x):
            return math.sin(x) * 2

        def feats(v):
            return np.stack([v, np.array([math.cos(v[0]), 1.0])])
    """))
    script = tmp_path / "model.py"
    script.write_text(textwrap.dedent("""
        import math
        import numpy as np
        from pycograd import grad
        from helpers import wave, feats
        (g,) = grad(lambda x: wave(x) + 1.0)(0.3)
        assert math.isclose(g, 2 * math.cos(0.3)), g
        with params{ w = np.array([0.5, -1.0]) } as weights:
            _, gw = weights.grad(|> w |> feats |> np.sum($ ** 2))
        assert np.allclose(gw["w"], [2 * 0.5 - 2 * math.cos(0.5) * math.sin(0.5), -2.0])
        print("ok")
    """))
    proc = subprocess.run([sys.executable, "-W", "error::UserWarning", "-m", "pycograd",
                           "run", str(script)], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "ok"


def test_run_reports_a_missing_file():
    proc = subprocess.run([sys.executable, "-m", "pycograd", "run", "/no/such/model.py"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "no such file" in proc.stderr


def test_capture_leaves_weights_out_of_default_arguments():
    lam = ast.parse("lambda _0, *_1, w1=w1, np=np: None", mode="eval").body
    _drop_defaults(lam, {"w1"})
    assert ast.unparse(lam) == "lambda _0, *_1, np=np: None"
    lam = ast.parse("lambda _0, w1=w1, b=b: None", mode="eval").body
    _drop_defaults(lam, {"w1", "b"})
    assert ast.unparse(lam) == "lambda _0: None"


def _run_notebook(name: str) -> str:
    """Execute the saved ``notebooks/<name>`` again; the text it prints."""
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "notebooks"))
    try:
        import make_demo
    finally:
        sys.path.pop(0)
    nb = nbformat.read(make_demo.HERE / name, as_version=4)
    for cell in nb.cells:
        if cell.source.startswith("%load_ext"):
            cell.source = make_demo.load_line()
    return "".join(out.get("text", "") for cell in make_demo.execute(nb).cells
                   for out in cell.get("outputs", []))


@pytest.mark.slow
def test_demo_notebook_runs_and_reaches_its_results():
    import re

    text = _run_notebook("pycograd_demo.ipynb")
    accs = [float(a) for a in re.findall(r"accuracy (\d\.\d+)", text)]
    assert len(accs) == 5 and min(accs) > 0.85 and sorted(accs)[1] > 0.95, text
    for first, last in re.findall(r"loss (\d+\.\d+) -> (\d+\.\d+)", text):
        assert float(last) < 0.3 * float(first), text
    assert "grad of proj: None  proj unchanged: True" in text
    assert "w1 is weights['w1']: True" in text
    assert float(re.search(r"max \|mean - full\| = (\S+)", text).group(1)) < 1e-10


@pytest.mark.slow
def test_vmap_notebook_runs_and_reaches_its_results():
    import re

    text = _run_notebook("pycograd_vmap_demo.ipynb")

    def number(label: str) -> float:
        return float(re.search(re.escape(label) + r" (\S+)", text).group(1))

    assert "per-example gradients: (256, 2, 3) (256, 3)" in text, text
    assert number("max |mean - full| =") < 1e-12
    assert "same as a Python loop: True" in text
    assert "all clipped norms <= C: True" in text
    before, after = re.search(r"one DP-SGD step: (\S+) -> (\S+)", text).groups()
    assert float(after) < float(before)
    assert float(re.search(r"accuracy (\S+)", text).group(1)) > 0.85
    assert number("max |vmap - loop| =") < 1e-12
    assert number("max |vmap(vmap) - broadcast| =") < 1e-12
    assert number("max |grad(vmap) - full| =") < 1e-12
