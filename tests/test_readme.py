"""Every ```python and ```ipython block of README.md runs, so the README cannot drift from
the code.

Each ```python block runs as a script file of its own (as a reader would paste it), not
through ``exec`` of a string: pycograd's transparent layer needs the function's source.
Each ```ipython block is a notebook cell: it runs in a fresh Jupyter kernel, after a
``%load_ext pycograd`` cell, as a reader would paste it into a new notebook.
"""

import re
import runpy
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), re.S | re.M)
CELLS = re.findall(r"^```ipython\n(.*?)^```", README.read_text(), re.S | re.M)
LOAD = "%load_ext pycograd"


def test_readme_has_examples():
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_readme_block_runs(i, tmp_path):
    script = tmp_path / f"readme_block_{i}.py"
    script.write_text(BLOCKS[i])
    runpy.run_path(str(script), run_name="__main__")


def test_readme_loads_the_extension_in_a_cell_of_its_own():
    """A cell that loads the extension cannot use the DSL itself: IPython transforms the
    whole cell before its first line runs."""
    assert CELLS and CELLS[0].strip() == LOAD
    for cell in CELLS:
        assert LOAD not in cell or cell.strip() == LOAD, cell


@pytest.mark.parametrize("i", [i for i, cell in enumerate(CELLS) if cell.strip() != LOAD])
def test_readme_ipython_block_runs_in_a_fresh_kernel(i, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(LOAD),
                                         nbformat.v4.new_code_cell(CELLS[i])])
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()         # raises CellExecutionError, with the traceback, if a cell fails
    errors = [o for cell in nb.cells for o in cell.outputs if o.output_type == "error"]
    assert not errors


def test_readme_keeps_the_setup_commands():
    text = README.read_text()
    assert 'pip install -e ".[examples]" && python -m pycograd.examples' in text
    assert 'pip install -e ".[test]" && python -m pytest -q' in text


def test_roadmap_lists_only_what_is_not_exported():
    import pycograd

    roadmap = README.read_text().split("## Roadmap", 1)[1]
    names = set(re.findall(r"`([A-Za-z_]\w*)`", roadmap))
    landed = sorted(n for n in names if n in pycograd.__all__)
    assert not landed, (f"README Roadmap lists {landed}, which pycograd now exports: "
                        "document them in the API section instead")


def test_what_differentiates_is_current():
    """The README's list of differentiable numpy names is the one the tables give."""
    from pycograd.numpy_api.coverage import markdown

    text = README.read_text()
    section = text.split("<!-- coverage:start -->\n", 1)[1].split("\n<!-- coverage:end -->")[0]
    assert section == markdown(), (
        "README's 'What differentiates' list is out of date: regenerate it with "
        "`python -m pycograd.numpy_api.coverage` and paste it between the coverage markers")
