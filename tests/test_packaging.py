"""What a user gets from ``pip install``: the license, the metadata, ``py.typed``, and a
command line that answers a bare ``python -m pycograd`` with its help."""

import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = None
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text()) if tomllib else None
needs_toml = pytest.mark.skipif(tomllib is None, reason="reading pyproject needs Python 3.11+")


@needs_toml
def test_license_is_the_bsd_3_clause_text_pyproject_names():
    assert PYPROJECT["project"]["license"] == "BSD-3-Clause"
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("BSD 3-Clause License")
    assert "Neither the name of the copyright holder" in text
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]


@needs_toml
def test_changelog_names_the_current_version():
    import pycograd

    text = (ROOT / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog") and "## [Unreleased]" in text
    assert f"## [{pycograd.__version__}]" in text
    assert PYPROJECT["project"]["version"] == pycograd.__version__


@needs_toml
def test_metadata_has_urls_authors_and_classifiers():
    project = PYPROJECT["project"]
    assert project["authors"] and all("name" in a for a in project["authors"])
    assert {"Homepage", "Source", "Issues", "Changelog"} <= set(project["urls"])
    classifiers = project["classifiers"]
    assert "Typing :: Typed" in classifiers
    floor = project["requires-python"].removeprefix(">=")  # numpy 2.4 needs Python 3.11
    assert f"Programming Language :: Python :: {floor}" in classifiers
    minor = int(floor.split(".")[1])
    assert not any(c.startswith("Programming Language :: Python :: 3.")
                   and int(c.rsplit(".", 1)[1]) < minor for c in classifiers)
    assert not any(c.startswith("License ::") for c in classifiers)  # PEP 639: the expression


@needs_toml
def test_py_typed_ships_with_the_package():
    assert (ROOT / "pycograd" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["pycograd"]


@needs_toml
def test_test_extra_runs_the_autograd_comparisons_and_the_docs_build():
    test_extra = " ".join(PYPROJECT["project"]["optional-dependencies"]["test"])
    for package in ("autograd", "mkdocs", "mkdocs-material", "mkdocstrings[python]"):
        assert package in test_extra


@pytest.mark.slow
def test_built_wheel_carries_license_py_typed_and_urls(tmp_path):
    pytest.importorskip("setuptools")
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "pycograd", src / "pycograd",
                    ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                           "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 and "No module named pip" in proc.stderr:
        pytest.skip("pip is not installed in this environment")
    assert proc.returncode == 0, proc.stderr
    (wheel,) = (tmp_path / "dist").glob("pycograd-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "pycograd/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
    meta = Parser().parsestr(zipfile.ZipFile(wheel).read(meta_name).decode())
    assert meta["License-Expression"] == "BSD-3-Clause"
    assert any(u.startswith("Homepage, https://") for u in meta.get_all("Project-URL"))


def test_bare_module_command_prints_help_and_exits_zero():
    proc = subprocess.run([sys.executable, "-m", "pycograd"], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: python -m pycograd")
    assert "run" in proc.stdout and "pycograd.examples" in proc.stdout
    assert proc.stderr == ""


def test_help_flag_still_exits_zero_and_run_still_needs_a_file():
    help_ = subprocess.run([sys.executable, "-m", "pycograd", "--help"], capture_output=True,
                           text=True, timeout=60, cwd=ROOT)
    assert help_.returncode == 0 and "usage:" in help_.stdout
    missing = subprocess.run([sys.executable, "-m", "pycograd", "run"], capture_output=True,
                             text=True, timeout=60, cwd=ROOT)
    assert missing.returncode == 2 and "file" in missing.stderr
