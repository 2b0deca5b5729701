"""``np.r_[...]`` / ``np.c_[...]`` over traced values in a DSL script (``python -m pycograd
run``): a helper from a plain module used as a stage is routed by the transparent layer; a
helper defined in DSL code, or an inline stage, needs the DSL's own routing tracer."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("pipescript")

HELPERS = """
import numpy as np
from numpy import c_

def feats(v):
    return np.r_[v, v * v, 1.0]

def cols(v):
    return c_[v, 2 * v]
"""

SCRIPT = """
import json
import numpy as np
from pycograd import grad, vmap
from featmod import feats, cols

def dsl_feats(v):
    return np.r_[v, 3 * v]

out = {}
with params{ w = np.array([0.5, -1.0]) } as weights:
    _, g = weights.grad(|> w |> feats |> np.sum($ ** 2))
    out["module_helper"] = g["w"].tolist()
    _, g = weights.grad(|> w |> cols |> np.sum($ ** 2))
    out["module_helper_c"] = g["w"].tolist()
    try:
        _, g = weights.grad(|> w |> dsl_feats |> np.r_[$, np.ones(2)] |> np.sum($ ** 2))
        out["dsl_code"] = g["w"].tolist()
    except Exception as e:
        out["dsl_code"] = type(e).__name__
(gh,) = grad($ |> feats |> np.sum)(np.array([0.5, -1.0]))
out["pipeline"] = gh.tolist()
out["vmap"] = vmap(feats)(np.array([[1.0, 2.0], [3.0, 4.0]])).tolist()
print("@@" + json.dumps(out))
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("dsl_r")
    (d / "featmod.py").write_text(HELPERS)
    (d / "model.py").write_text(textwrap.dedent(SCRIPT))
    proc = subprocess.run([sys.executable, "-W", "ignore", "-m", "pycograd", "run",
                           str(d / "model.py")], capture_output=True, text=True, timeout=120)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@")]
    assert line, proc.stdout[-2000:] + proc.stderr[-3000:]
    return json.loads(line[0][2:])


def test_module_helpers_with_r_and_c_differentiate_as_stages(results):
    v = [0.5, -1.0]
    assert results["module_helper"] == [2 * t + 4 * t ** 3 for t in v]   # d sum(v² + v⁴)
    assert results["module_helper_c"] == [10 * t for t in v]             # d sum(5 v²)
    assert results["pipeline"] == [1 + 2 * t for t in v]                 # d sum(v + v² + 1)
    assert results["vmap"] == [[1, 2, 1, 4, 1], [3, 4, 9, 16, 1]]


def test_r_in_dsl_code_differentiates(results):
    assert results["dsl_code"] == [20 * t for t in [0.5, -1.0]]          # d sum(10 v²)
