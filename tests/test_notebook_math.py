"""``math.*`` on traced values in notebook cells, without ``%load_ext pycograd`` (issue 17,
item 7): the source comes from IPython's cell cache. IPython compiles each top-level statement
of a cell on its own, so a ``def`` next to ``import math`` in one cell compiles as if the
import were elsewhere; the routed copy must match that. Where the source truly is missing
(``exec`` of a string), the error says what to write instead."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("IPython")

CELLS = [
    """
import math
import numpy as np
from pycograd import grad, TracerConversionError

def f(x):
    return math.sin(x) * math.exp(x)
""",
    """
(g,) = grad(f)(0.7)
assert np.isclose(g, (math.cos(0.7) + math.sin(0.7)) * math.exp(0.7)), g
""",
    """
def rotate(t):
    return np.sum(np.array([math.cos(t), t]))

assert np.isclose(grad(rotate)(0.3)[0], 1 - math.sin(0.3))
assert np.isclose(grad(lambda x: math.tanh(x) * 2)(0.3)[0], 2 / math.cosh(0.3) ** 2)
""",
    """
import warnings
exec("def from_string(x):\\n    return math.sin(x)\\n")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        grad(from_string)(0.5)
        raise AssertionError("no error")
    except TracerConversionError as e:
        message = str(e)
assert "np.sin(x), not math.sin(x)" in message, message
assert any("notebook cell" in str(w.message) for w in caught), [str(w.message) for w in caught]
""",
]

CHILD = r"""
import json, sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
out = []
for cell in json.load(sys.stdin):
    r = shell.run_cell(cell)
    e = r.error_before_exec or r.error_in_exec
    out.append(None if r.success else f"{type(e).__name__}: {e}")
print("@@" + json.dumps(out))
"""


def test_math_in_cells_of_an_interactive_shell() -> None:
    proc = subprocess.run([sys.executable, "-c", CHILD], input=json.dumps(CELLS),
                          capture_output=True, text=True, timeout=300)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@")]
    assert line, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert json.loads(line[0][2:]) == [None] * len(CELLS), proc.stdout[-3000:]


def test_math_in_cells_of_a_jupyter_kernel(tmp_path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, with the traceback, if a cell fails
    errors = [o for cell in nb.cells for o in cell.outputs if o.output_type == "error"]
    assert not errors
