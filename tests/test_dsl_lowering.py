"""``lowering``: a plain ``|>`` pipe is two plain calls, not four pyccolo events, and gives
what pipescript's own handlers give (``PYCOGRAD_NO_PATCHES=1``), value for value and error
for error, tracebacks included.

Patches are process-wide, so each mode runs the same DSL script in its own child process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("pipescript")

from pycograd.dsl import patches  # noqa: E402

SCRIPT = """
import numpy as np
from pycograd import relu, cross_entropy

out = {}
out["null"] = repr(None ?> str |> len)
out["tuple"] = (1, 2) *|> $ + $ |> str
out["dict"] = {"a": 1} **|> (lambda a: a + 1)
out["nested"] = [len([1, 2] |> list), 3 |> (lambda v: v |> str), [4 |> str, 5 |> str]]
out["partial"] = 5 |> max($, 7)
out["named"] = 3 |> $x * $x + $x
out["compose"] = 2 |> ((lambda v: v + 1) .> (lambda v: v * 10))

def both(x, k):  # k is a local and a global
    return x |> $ * k |> $ + 1

def only_local(x, kk):  # kk is only a local: read from the live stack
    return x |> $ * kk

def count(x):  # a stage run in a function's frame, where ``len`` resolves afresh each run
    return x |> len($) + 1

out["shadowed"] = [count([1, 2])]
len = lambda v: 100  # a global now shadows the builtin
out["shadowed"].append(count([1, 2]))
del len
out["shadowed"].append(count([1, 2]))

def maybe_local(x, flag):  # k is a local only when flag is set, else the global
    if flag:
        k = 5.0
    return x |> $ + k

k = 10.0
out["maybe_local"] = [maybe_local(1.0, True), maybe_local(1.0, False), maybe_local(1.0, True)]
out["locals"] = [both(1.0, 2.0), both(2.0, 3.0), only_local(1.0, 2.0), only_local(1.0, 4.0)]
f = $ |> $ * k |> fork[$ + 1, $] *|> $ * $
out["fork"] = [f(1.0)]
k = 3.0
out["fork"].append(f(1.0))
out["fork_branch"] = [1, -1] |> fork[$ |> sum, $ |> len]
late = |> 2.0 |> $ * k
out["late"] = [late()]

def error(thunk):
    try:
        thunk()
    except Exception as e:
        return [type(e).__name__, str(e), list(getattr(e, "_pyc_notes", []))]

out["not_callable"] = error(lambda: 1 |> 3)
out["stage_error"] = error(lambda: "a" |> int)
out["branch_misuse"] = error(lambda: [1, -1] |> fork[map[$ > 0] |> all, $ |> len])

rng = np.random.default_rng(0)
labels = rng.integers(0, 3, 60)
X = np.array([[0., 2.5], [-2.5, -1.5], [2.5, -1.5]])[labels] + rng.standard_normal((60, 2))
Y = np.eye(3)[labels]
with params{
w1 = 0.3 * rng.standard_normal((2, 8)); b1 = np.zeros(8)
w2 = 0.3 * rng.standard_normal((8, 3)); b2 = np.zeros(3)
} as weights:
    logits = $ |> $ @ w1 + b1 |> relu |> $ @ w2 + b2
    obj = |> X |> logits |> cross_entropy($, Y)
    losses = []
    for _ in range(5):
        value, grads = weights.grad(obj)
        weights.step(grads, 0.5)
        losses.append(float(value))
    out["losses"] = losses
    out["events"] = count_events(lambda: weights.grad(obj))
"""

CHILD = r"""
import builtins, json, sys
import pyccolo.emit_event as emit
from pycograd.dsl import patches, script as runner

def count_events(thunk):
    seen = []
    loop = emit._emit_tracer_loop
    def counting(event, *args):
        seen.append(event)
        return loop(event, *args)
    emit._emit_tracer_loop = counting
    try:
        thunk()
    finally:
        emit._emit_tracer_loop = loop
    return len(seen)

builtins.count_events = count_events
ns = runner.run_file(sys.argv[1])
print("@@" + json.dumps({"out": ns["out"], "installed": patches.INSTALLED}, default=repr))
"""

TRACEBACK = """
import numpy as np

def bad(v):
    return v.nosuch

X = np.ones((3, 2))
with params{ w = np.ones((2, 2)) } as weights:
    f = |> X |> $ @ w |> bad |> np.sum
    weights.grad(f)
"""


def _env(mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != patches.ENV}
    if mode == "off":
        env[patches.ENV] = "1"
    return env


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    path = tmp_path_factory.mktemp("lowering") / "model.py"
    path.write_text(textwrap.dedent(SCRIPT))
    out = {}
    for mode in ("patched", "off"):
        proc = subprocess.run([sys.executable, "-c", CHILD, str(path)], env=_env(mode),
                              capture_output=True, text=True, timeout=300)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@")]
        assert line, proc.stdout[-2000:] + proc.stderr[-3000:]
        out[mode] = json.loads(line[0][2:])
    return out


def test_lowering_is_installed_only_when_patched(runs):
    assert runs["patched"]["installed"]["lowering"] is True
    assert runs["off"]["installed"]["lowering"] is False


def test_lowered_pipes_give_what_pipescripts_handlers_give(runs):
    lowered, own = dict(runs["patched"]["out"]), dict(runs["off"]["out"])
    assert lowered.pop("events") < own.pop("events")
    assert lowered == own
    assert own["null"] == "None" and own["tuple"] == "3" and own["dict"] == 2
    assert own["locals"] == [3.0, 7.0, 2.0, 4.0] and own["fork"] == [110.0, 110.0]
    assert own["late"] == [6.0]
    assert own["shadowed"] == [3, 101, 3]
    assert own["maybe_local"] == [6.0, 11.0, 6.0]
    assert own["not_callable"][0] == "PipelineStageError"
    assert own["branch_misuse"][2], own["branch_misuse"]  # pipescript's note is kept


def test_a_training_step_dispatches_no_events(runs):
    """Unlowered, each of the step's five pipes costs four pyccolo events and the
    ``cross_entropy`` call in its stage one more (routing): 18 in all."""
    assert runs["patched"]["out"]["events"] == 0, runs["patched"]["out"]["events"]
    assert runs["off"]["out"]["events"] >= 15, runs["off"]["out"]["events"]


def test_a_traceback_through_lowered_pipes_is_pipescripts(tmp_path):
    """The same frames at the same lines, less the ``<traced_lambda>`` frame of pyccolo's
    thunk around a pipe's operand (a second frame at the pipeline's line), which a lowered
    pipe does not make."""
    path = tmp_path / "model.py"
    path.write_text(textwrap.dedent(TRACEBACK))
    err = {}
    for mode in ("patched", "off"):
        proc = subprocess.run([sys.executable, "-m", "pycograd", "run", str(path)],
                              env=_env(mode), capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1, proc.stderr[-3000:]
        err[mode] = proc.stderr
    expected = [f'File "{path}", line {n}, in {fn}'
                for n, fn in ((10, "<module>"), (9, "<lambda>"), (5, "bad"))]
    frames = {mode: [ln.strip() for ln in text.splitlines() if ln.startswith("  File ")]
              for mode, text in err.items()}
    assert frames["patched"] == expected, err["patched"]
    assert [f for f in frames["off"] if "<traced_lambda>" not in f] == expected, err["off"]
    assert err["patched"].splitlines()[-1] == err["off"].splitlines()[-1] == \
        "AttributeError: 'Var' object has no attribute 'nosuch'"


IPYTHON_CELLS = ["""
import numpy as np
def bad(v):
    return v.nosuch
X = np.ones((3, 2))
""", """
f = |> X |> $ @ np.ones((2, 2)) |> bad |> np.sum
f()
""", """
def g(x, k):
    return x |> $ * k |> bad
g(1.0, 2.0)
""", """
with params{ w = np.ones((2, 2)) } as weights:
    h = $ |> $ @ w |> fork[$ |> bad, $] *|> $ + $
    weights.grad(|> X |> h |> np.sum)
""", """
q = |> 3 |> $ * kk
q()
""", """
[1, -1] |> fork[map[$ > 0] |> all, $ |> len]
"""]

IPYTHON = r"""
import json, sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
for cell in ["%load_ext pycograd", *json.loads(sys.argv[1])]:
    shell.run_cell(cell)
"""


def test_ipython_shows_the_same_tracebacks(tmp_path):
    """Frames, lines, pipescript's notes and the highlighted node (pipescript's note of the
    node running at each line, which lowering keeps) are the same, byte for byte."""
    shown = {}
    for mode in ("patched", "off"):
        proc = subprocess.run([sys.executable, "-c", IPYTHON, json.dumps(IPYTHON_CELLS)],
                              env=_env(mode), capture_output=True, text=True, timeout=120,
                              cwd=tmp_path)
        shown[mode] = proc.stdout + proc.stderr
    assert shown["patched"] == shown["off"]
    for words in ("'numpy.ndarray' object has no attribute 'nosuch'", "in fork branch #1",
                  "Undefined name 'kk'", "while applying stage `|> all`"):
        assert words in shown["patched"], (words, shown["patched"][-3000:])
