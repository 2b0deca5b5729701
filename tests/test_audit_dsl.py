"""The DSL's correctness audit (issue 20 items 1, 2, 10, 11; issue 17 items 1, 3, 10): a
``params{}`` block runs once, its syntax errors and tracebacks point at the user's lines,
its keywords need no import, ``checkpoint`` sees weights read through nested pipelines,
``python -m pycograd run`` runs any file by path, and ``summary`` sees bare-name weights.

Each behaviour is checked in IPython (one child process holding a fresh shell) and under
``python -m pycograd run``, since the two compile DSL code by different routes.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pycograd
from pycograd.transforms.shapes import summary

pytest.importorskip("IPython")
pytest.importorskip("pipescript")


def _run(tmp_path, source: str, name: str = "model.py", *args: str,
         cwd: str | None = None) -> subprocess.CompletedProcess:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source).lstrip("\n"))
    return subprocess.run([sys.executable, "-m", "pycograd", "run", str(path), *args],
                          capture_output=True, text=True, timeout=120, cwd=cwd or tmp_path)


COUNT = """
import numpy as np
from pycograd import ParamDict
calls = []
def init(*shape):
    calls.append(shape)
    return np.random.default_rng(len(calls)).standard_normal(shape)
rng = np.random.default_rng(0)
with params{
w = init(2, 3); b = init(3)
r = rng.standard_normal(4)
} as weights:
    pass
W = params{ v = init(5) }
for _ in range(2):
    with params{ u = init(1) } as again:
        pass
plain = ParamDict(r=np.random.default_rng(0).standard_normal(4))
"""

CHILD = r"""
import json, sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
out = []
for src in json.load(sys.stdin):
    r = shell.run_cell(src)
    e = r.error_before_exec or r.error_in_exec
    tb, cell_line = getattr(e, "__traceback__", None), None
    while tb is not None:
        if "ipython-input" in tb.tb_frame.f_code.co_filename:
            cell_line = tb.tb_lineno
        tb = tb.tb_next
    out.append({"ok": r.success, "cell_line": cell_line, "error": type(e).__name__ if e else None,
                "message": str(e) if e else None, "lineno": getattr(e, "lineno", None),
                "text": getattr(e, "text", None)})
print("@@" + json.dumps(out))
"""


def _ipython(cells: list[str]) -> list[dict]:
    proc = subprocess.run([sys.executable, "-c", CHILD], input=json.dumps(cells),
                          capture_output=True, text=True, timeout=300)
    marker = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@")]
    assert marker, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(marker[0][2:])


@pytest.fixture(scope="module")
def cells() -> list[dict]:
    return _ipython([
        "%load_ext pycograd",
        COUNT + "assert calls == [(2, 3), (3,), (5,), (1,), (1,)], calls\n"
                "assert np.array_equal(weights['r'], plain['r'])",
        "W = params{ w = np.ones(2); b = }",
        "x = 1\nwith params{\nw = np.ones(2)\nb = = 2\n} as weights:\n    pass",
        "with params{\nw1 = np.ones(2); b1 = frozen[np.ones(2)]; w2 = tied['w1']\n"
        "c = buffer[np.zeros(2)]; t = tied('w1')\n} as marked:\n    pass\n"
        "assert [marked.kind(n) for n in ['w1', 'b1', 'w2', 'c', 't']] == "
        "['param', 'frozen', 'tied', 'buffer', 'tied']",
        "with params{\nw9 = np.ones(2)\n} as weights:\n    y = 1\n    1 / 0",
        "with params{\nw1 = np.ones(2)\nb1 = w1x * 2\n} as weights:\n    pass",
    ])


def test_a_block_runs_each_initializer_once_in_ipython(cells):
    assert cells[1]["ok"], cells[1]


def test_a_block_runs_each_initializer_once_in_a_script(tmp_path):
    proc = _run(tmp_path, COUNT + """
        assert calls == [(2, 3), (3,), (5,), (1,), (1,)], calls
        assert np.array_equal(weights["r"], plain["r"])
        print("ok")
    """.replace("\n        ", "\n"))
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_a_syntax_error_in_a_block_is_a_syntax_error_at_the_users_line(cells):
    assign, with_form = cells[2], cells[3]
    assert assign["error"] == "SyntaxError" and assign["lineno"] == 1, assign
    assert with_form["error"] == "SyntaxError" and with_form["lineno"] == 4, with_form
    assert "params{...}" in with_form["message"]


@pytest.mark.parametrize("source, line, text", [
    ("import numpy as np\n\nW = params{ w = np.ones(2); b = }\nprint(W)\n", 3, "b = }"),
    ("import numpy as np\nwith params{\n    w = np.ones(2)\n\n    b = = 3\n} as weights:\n"
     "    pass\n", 5, "b = = 3"),
])
def test_a_syntax_error_in_a_block_of_a_script(tmp_path, source, line, text):
    proc = _run(tmp_path, source)
    assert proc.returncode == 1
    assert f'model.py", line {line}' in proc.stderr and text in proc.stderr, proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1].startswith("SyntaxError: in a params{...}")


def test_a_syntax_error_in_any_brace_block_is_a_syntax_error(tmp_path):
    """The class: every statement block pipescript compiles in its handler (``map{...}``
    was a ``None`` stage, reported as "pipeline stage is not a function")."""
    proc = _run(tmp_path, """
        f = lambda v: v |> map{
          y = $ * 2
          z = = y
        }
        print(f([1, 2]))
    """)
    assert 'model.py", line 3' in proc.stderr and "z = = y" in proc.stderr, proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1] == \
        "SyntaxError: in a map{...} block: invalid syntax"


def test_block_keywords_need_no_import(cells, tmp_path):
    assert cells[4]["ok"], cells[4]
    proc = _run(tmp_path, """
        import numpy as np
        with params{
        w1 = np.ones(2); b1 = frozen[np.ones(2)]; w2 = tied["w1"]; t = tied("w1")
        c = buffer[np.zeros(2)]
        } as w:
            pass
        print([w.kind(n) for n in ["w1", "b1", "w2", "t", "c"]])
    """)
    assert proc.stdout.strip() == "['param', 'frozen', 'tied', 'tied', 'buffer']", proc.stderr


def test_lines_below_a_block_keep_their_numbers_in_ipython(cells):
    assert cells[5]["error"] == "ZeroDivisionError" and cells[5]["cell_line"] == 5, cells[5]


@pytest.mark.parametrize("name", ["random.py", "copy.py", "types.py", "model.v2.py"])
def test_run_takes_the_file_by_path_whatever_its_name(tmp_path, name):
    """Run from another directory: ``python -m`` puts the working directory first on
    ``sys.path`` before pycograd is imported, so there a ``copy.py`` hides the standard
    ``copy`` from numpy, as it would under ``python copy.py``."""
    (tmp_path / "sibling.py").write_text("VALUE = 7\n")
    proc = _run(tmp_path, """
        import sys, random, tempfile
        from sibling import VALUE
        print("user file", __name__, sys.argv[1:], VALUE, callable(random.random))
    """, name, "x", cwd=str(tmp_path.parent))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "user file __main__ ['x'] 7 True"


TRACEBACK = """
import numpy as np
from pycograd import cross_entropy
X = np.ones((4, 2))
Y = np.eye(3)[[0, 1, 2, 0]]

with params{
w1 = np.ones((2, 3))
b1 = np.zeros(3)
} as weights:
    x = 1
    {body}
"""


@pytest.mark.parametrize("body, line, error", [
    ("1 / 0", 11, "ZeroDivisionError: division by zero"),
    ("f = |> X |> $ @ w1 + b1 + w3 |> cross_entropy($, Y)", 11,
     "pycograd.dsl.errors.UndefinedWeightError: line 11: 'w3' is not defined"),
])
def test_run_tracebacks_point_at_the_users_line(tmp_path, body, line, error):
    proc = _run(tmp_path, TRACEBACK.replace("{body}", body))
    assert proc.returncode == 1
    err = proc.stderr
    assert err.rstrip().splitlines()[-1].startswith(error), err
    frames = [ln for ln in err.splitlines() if ln.startswith("  File ")]
    assert frames == [f'  File "{tmp_path / "model.py"}", line {line}, in <module>'], err
    assert "sandbox" not in err and "pipescript" not in err and "pyccolo" not in err


def test_a_misspelt_name_in_a_block_is_an_undefined_weight_error(cells, tmp_path):
    cell = cells[6]
    assert cell["error"] == "UndefinedWeightError" and cell["cell_line"] == 1, cell
    assert "'w1x'" in cell["message"] and "did you mean 'w1'" in cell["message"]
    proc = _run(tmp_path, """
        import numpy as np

        with params{
        w1 = np.ones(2)
        b1 = w1x * 2
        } as weights:
            pass
    """)
    last = proc.stderr.rstrip().splitlines()[-1]
    assert last.startswith("pycograd.dsl.errors.UndefinedWeightError: 'w1x' is not defined")
    assert 'model.py", line 5, in params{...}' in proc.stderr and "sandbox" not in proc.stderr


def test_an_error_inside_a_block_is_shown_at_its_line(tmp_path):
    proc = _run(tmp_path, """
        import numpy as np

        def bad():
            return 1 / 0

        with params{
        w1 = np.ones((2, 3))
        b1 = bad()
        } as weights:
            pass
    """)
    lines = [ln.strip() for ln in proc.stderr.splitlines()]
    assert f'File "{tmp_path / "model.py"}", line 8, in params{{...}}' in lines, proc.stderr
    assert "b1 = bad()" in lines and "sandbox" not in proc.stderr


def test_checkpoint_sees_weights_read_by_nested_pipelines_and_defs(tmp_path):
    proc = _run(tmp_path, """
        import numpy as np
        from pycograd import checkpoint, relu
        X = np.random.default_rng(0).standard_normal((5, 2))
        with params{
        w1 = 0.3 * np.ones((2, 4)); b1 = np.zeros(4)
        w2 = 0.2 * np.ones((4, 3))
        } as weights:
            layer = $ |> $ @ w1 + b1 |> relu
            head = $ |> $ @ w2
            def helper(v):
                return np.tanh(v @ w2)
            for net in ($ |> layer |> head, $ |> layer |> helper, $ |> checkpoint(layer) |> head):
                pv, pg = weights.grad(|> X |> net |> np.sum)
                cv, cg = weights.grad(|> X |> checkpoint(net) |> np.sum)
                assert abs(float(pv - cv)) < 1e-12
                assert all(np.allclose(pg[k], cg[k], atol=1e-12) for k in weights)
                assert all(np.abs(pg[k]).max() > 0 for k in weights)
        print("ok")
    """)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]


def test_summary_counts_weights_read_by_bare_name(tmp_path, monkeypatch):
    (tmp_path / "bare_model.py").write_text(textwrap.dedent("""
        import numpy as np

        def net(p, x):
            h = np.tanh(x @ v1 + c1)  # a comment that takes the source well past 40 chars
            return h @ v2
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import bare_model

    pd = pycograd.ParamDict(v1=np.ones((2, 16)), c1=np.zeros(16),
                            v2=pycograd.frozen[np.ones((16, 4))])
    pd.bind_globals(vars(bare_model))
    buf = io.StringIO()
    s = summary(bare_model.net, pd, ("batch", 2), file=buf)
    assert [st.params for st in s.stages] == [["v1", "c1"], ["v2"]]
    assert s.total == 112 and s.trainable == 48
    assert "well past 40 chars" in buf.getvalue()


def test_summary_of_a_dsl_pipeline_names_its_weights_and_lines(tmp_path):
    proc = _run(tmp_path, """
        import numpy as np
        from pycograd import summary, relu
        with params{
        w1 = np.ones((2, 16)); b1 = np.zeros(16)
        w2 = frozen[np.ones((16, 4))]; b2 = np.zeros(4)
        } as weights:
            logits = $ |> $ @ w1 + b1 |> relu |> $ @ w2 + b2
        s = summary(lambda p, x: logits(x), weights, ("batch", 2), verbose=False)
        print([st.params for st in s.stages], s.total)
        print(s.stages[0].source)
    """)
    assert proc.returncode == 0, proc.stderr[-3000:]
    params, source = proc.stdout.strip().splitlines()
    assert params == "[['w1', 'b1'], [], ['w2', 'b2']] 116"
    assert source == "model.py:7: logits = $ |> $ @ w1 + b1 |> relu |> $ @ w2 + b2"
