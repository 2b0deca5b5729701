"""The documentation: every public name has a docstring with an example that runs, every
code block of the docs site runs, and the site builds with ``mkdocs build --strict``."""

import doctest
import importlib.util
import inspect
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

import pycograd

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
FENCE = re.compile(r"^```(python|ipython)\n(.*?)^```", re.S | re.M)
BLOCKS = [(page, kind, code) for page in PAGES
          for kind, code in FENCE.findall(page.read_text())]
LOAD = "%load_ext pycograd"


def has_example(doc: str) -> bool:
    return ">>>" in doc or "```" in doc


@pytest.mark.parametrize("name", pycograd.__all__)
def test_public_name_has_a_docstring_with_an_example(name):
    doc = inspect.getdoc(getattr(pycograd, name)) or ""
    assert doc.strip(), f"pycograd.{name} has no docstring"
    assert has_example(doc), (f"pycograd.{name}'s docstring has no example: add an "
                              "'Examples:' section with >>> lines")


@pytest.mark.parametrize("name", pycograd.__all__)
def test_public_docstring_examples_run(name):
    obj = getattr(pycograd, name)
    finder = doctest.DocTestFinder(recurse=False)
    tests = [t for t in finder.find(obj, f"pycograd.{name}", globs={}) if t.examples]
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    assert runner.failures == 0, f"a doctest of pycograd.{name} failed (output above)"


def test_docs_have_runnable_examples():
    assert sum(kind == "python" for _, kind, _ in BLOCKS) >= 10
    names = {p.relative_to(DOCS).as_posix() for p in PAGES}
    assert {"index.md", "getting-started.md", "guides/transforms.md", "guides/dsl.md",
            "guides/training.md", "guides/shapes.md",
            "guides/complex-and-linalg.md"} <= names


@pytest.mark.parametrize("i", [i for i, b in enumerate(BLOCKS) if b[1] == "python"])
def test_docs_python_block_runs(i, tmp_path):
    page, _, code = BLOCKS[i]
    script = tmp_path / f"{page.stem}_{i}.py"
    script.write_text(code)
    runpy.run_path(str(script), run_name="__main__")


@pytest.mark.parametrize("i", [i for i, b in enumerate(BLOCKS)
                               if b[1] == "ipython" and b[2].strip() != LOAD])
def test_docs_ipython_block_runs_in_a_fresh_kernel(i, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(LOAD),
                                         nbformat.v4.new_code_cell(BLOCKS[i][2])])
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()


def _hooks():
    pytest.importorskip("mkdocs")
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reference_lists_every_public_name_once():
    groups = _hooks().group_names()
    listed = [name for _, names in groups.values() for name in names]
    assert sorted(listed) == sorted(pycograd.__all__)
    assert "grad" in groups["transforms"][1] and "summary" in groups["shapes"][1]
    assert "ShapeError" in groups["errors"][1] and "relu" in groups["nn"][1]


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    pytest.importorskip("mkdocstrings_handlers.python")
    pytest.importorskip("material")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]),
        NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d",
                           str(tmp_path / "site")], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    api = (tmp_path / "site" / "reference" / "transforms" / "index.html").read_text()
    assert "value_and_grad" in api and "Examples" in api
