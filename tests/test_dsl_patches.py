"""The DSL's patches of pyccolo/pipescript internals (``stagecache``, ``fastemit``,
``lowering``): installed onto the code they were written for, skipped with one warning on
any other, skipped silently under ``PYCOGRAD_NO_PATCHES=1``, and the same results in every
case.

Patches are process-wide, so each mode runs one DSL script in its own child process.
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
rng = np.random.default_rng(0)
labels = rng.integers(0, 3, 60)
X = np.array([[0., 2.5], [-2.5, -1.5], [2.5, -1.5]])[labels] + rng.standard_normal((60, 2))
Y = np.eye(3)[labels]
with params{
w1 = 0.3 * rng.standard_normal((2, 8)); b1 = np.zeros(8)
w2 = 0.3 * rng.standard_normal((8, 3)); b2 = np.zeros(3)
} as weights:
    logits = $ |> $ @ w1 + b1 |> relu |> $ @ w2 + b2
    hway = $ |> fork[$ |> relu, $] *|> $ + $
    obj = |> X |> logits |> hway |> cross_entropy($, Y)
    losses = []
    for _ in range(15):
        value, grads = weights.grad(obj)
        weights.step(grads, 0.5)
        losses.append(float(value))
"""

CHILD = r"""
import json, sys, warnings
mode, script = sys.argv[1], sys.argv[2]
from pycograd.dsl import patches, script as runner, stagecache
if mode == "mismatch":  # what a pyccolo/pipescript release that changed this code looks like
    patches.PATCHES = [p._replace(fingerprints=frozenset({"0" * 16})) for p in patches.PATCHES]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    ns = runner.run_file(script)
import pyccolo.emit_event
print("@@" + json.dumps({
    "losses": ns["losses"], "installed": patches.INSTALLED,
    "warnings": [[w.category.__name__, str(w.message)] for w in caught
                 if issubclass(w.category, patches.PatchSkippedWarning)],
    "cached": stagecache.stats()["cached_stages"],
    "loop": pyccolo.emit_event._emit_tracer_loop.__code__.co_filename}))
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    path = tmp_path_factory.mktemp("dsl") / "model.py"
    path.write_text(textwrap.dedent(SCRIPT))
    out = {}
    for mode in ("patched", "off", "mismatch"):
        env = {k: v for k, v in os.environ.items() if k != patches.ENV}
        if mode == "off":
            env[patches.ENV] = "1"
        proc = subprocess.run([sys.executable, "-c", CHILD, mode, str(path)], env=env,
                              capture_output=True, text=True, timeout=300)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@")]
        assert line, proc.stdout[-2000:] + proc.stderr[-3000:]
        out[mode] = json.loads(line[0][2:])
    return out


def test_patches_match_the_installed_pyccolo_and_pipescript():
    """The pinned pyccolo/pipescript carry the code the patches were written for. When this
    fails after an upgrade, check the patch against the new source (``patches.PATCHES``
    names what it reads), then add the new fingerprint."""
    for patch in patches.PATCHES:
        assert patches.current(patch) in patch.fingerprints, (
            patch.name, patches.current(patch), patches._version("pyccolo"),
            patches._version("pipescript"))


def test_patched_run_installs_all_and_compiles_each_stage_once(runs):
    r = runs["patched"]
    assert r["installed"] == {"stagecache": True, "fastemit": True, "lowering": True}
    assert r["warnings"] == [] and r["cached"] > 0
    assert "pycograd" in r["loop"]


def test_no_patches_env_runs_pipescripts_own_code_silently(runs):
    r = runs["off"]
    assert r["installed"] == {"stagecache": False, "fastemit": False, "lowering": False}
    assert r["warnings"] == [] and r["cached"] == 0
    assert "pycograd" not in r["loop"]


def test_changed_internals_fall_back_with_one_warning(runs):
    r = runs["mismatch"]
    assert r["installed"] == {"stagecache": False, "fastemit": False, "lowering": False}
    assert r["cached"] == 0 and "pycograd" not in r["loop"]
    ((category, message),) = r["warnings"]
    assert category == "PatchSkippedWarning"
    for words in ("stagecache, fastemit, lowering", "pyccolo", "pipescript", patches.ENV):
        assert words in message, (words, message)


def test_every_mode_gives_the_same_training_run(runs):
    ref = runs["patched"]["losses"]
    assert len(ref) == 15 and ref[-1] < ref[0]
    for mode in ("off", "mismatch"):
        assert runs[mode]["losses"] == pytest.approx(ref, rel=1e-12, abs=0), mode


@pytest.mark.parametrize("value, off", [("", False), ("0", False), ("1", True),
                                         ("true", True), ("no", False)])
def test_env_values(monkeypatch, value, off):
    monkeypatch.setenv(patches.ENV, value)
    assert patches.disabled() is off


NOTES = r"""
import ast, json, sys
from pycograd.dsl import patches, register, stagecache
register()
from pipescript.patches.traceback_patch import frame_to_node_mapping as mapping
frame = eval(compile("sys._getframe(0)", "<ipython-input-7-0123abcd>", "eval"))
key = (frame.f_code.co_filename, frame.f_lineno)
ours, theirs, again = ast.Name("ours"), ast.Name("theirs"), ast.Name("again")
seen = []
stagecache.note_node(frame, ours)
seen.append(mapping.get(key))
mapping[key] = theirs  # pipescript's handlers write the mapping itself
seen.append(mapping.get(key))
stagecache.note_node(frame, again)
seen.append(mapping.get(key))
seen.append(mapping[key])
print("@@" + json.dumps([getattr(n, "id", None) for n in seen]
                        + [patches.INSTALLED["stagecache"]]))
"""


def test_the_last_note_at_a_line_is_the_one_read():
    """``note_node`` keeps its notes out of pipescript's (weak, slow) mapping; a read of the
    mapping still finds whichever note, ours or pipescript's, was made last."""
    proc = subprocess.run([sys.executable, "-c", NOTES], capture_output=True, text=True,
                          timeout=120, env={k: v for k, v in os.environ.items()
                                            if k != patches.ENV})
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@")]
    assert line, proc.stdout[-2000:] + proc.stderr[-3000:]
    *seen, installed = json.loads(line[0][2:])
    assert installed
    assert seen == ["ours", "theirs", "again", "again"]
