"""The dependency seams: pycograd reads numpy through its public API only (so a numpy
release that moves a private module cannot break ``import pycograd``), and what it
rebuilt from numpy's private code (the quantile method table) still matches numpy."""

from __future__ import annotations

import ast
import pathlib

import numpy as np
import pytest

import pycograd
from pycograd.ops.scans import QUANTILE_METHODS, quantile_positions

PACKAGE = pathlib.Path(pycograd.__file__).parent
NUMPY_NAMES = {"np", "numpy", "onp"}


def _private(parts: list[str]) -> bool:
    """A dotted numpy path with a private part (``_core``, ``_NoValue``; not ``__version__``)
    or numpy's old ``core`` package."""
    return any(p.startswith("_") and not p.endswith("__") for p in parts) or (
        len(parts) > 0 and parts[0] == "core")


def private_numpy_uses(source: str) -> list[tuple[int, str]]:
    """Line and text of each import of a private numpy module, and of each attribute read
    through one (``np._NoValue``, ``numpy.lib._function_base_impl``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Attribute):
            chain, n = [], node
            while isinstance(n, ast.Attribute):
                chain.append(n.attr)
                n = n.value
            if not (isinstance(n, ast.Name) and n.id in NUMPY_NAMES):
                continue
            names = ["numpy." + ".".join(reversed(chain))]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "numpy" and _private(parts[1:]):
                found.append((node.lineno, name))
    return found


def test_the_private_import_check_sees_each_form():
    src = ("from numpy.lib._function_base_impl import _QuantileMethods\n"
           "import numpy.core.multiarray\n"
           "from numpy.linalg._linalg import EighResult\n"
           "x = np._NoValue\n"
           "y = np.lib.NumpyVersion(np.__version__)\n"
           "s = 'numpy._core.multiarray'\n")
    assert sorted(line for line, _ in private_numpy_uses(src)) == [1, 1, 2, 3, 3, 4]


@pytest.mark.parametrize("root", ["pycograd", "tests"])
def test_no_private_numpy_imports(root):
    """numpy 1.26 has no ``numpy.lib._function_base_impl`` and numpy 2 no
    ``numpy.linalg.linalg``: private names break on numpy releases, so none is read."""
    base = PACKAGE if root == "pycograd" else pathlib.Path(__file__).parent
    bad = [f"{path.relative_to(base.parent)}:{line}: {name}"
           for path in sorted(base.rglob("*.py"))
           if path.name != pathlib.Path(__file__).name
           for line, name in private_numpy_uses(path.read_text())]
    assert not bad, "private numpy names (use public API):\n" + "\n".join(bad)


@pytest.mark.parametrize("method", QUANTILE_METHODS)
def test_quantile_method_table_matches_numpy(method):
    """Every method at every rank of every count from 1 to 12, ties included: the positions
    pycograd reads give numpy's own quantile of distinct sorted values."""
    q = np.linspace(0, 1, 49)
    for n in range(1, 13):
        s = np.sort(np.random.default_rng(n).standard_normal(n)) * 10 + np.arange(n) * 30
        lo, hi, gamma = quantile_positions(np.array(n), q, method)
        got = s[lo] if gamma is None else s[lo] + (s[hi] - s[lo]) * gamma
        np.testing.assert_allclose(got, np.quantile(s, q, method=method), rtol=1e-13,
                                   atol=1e-12, err_msg=f"{method}, n={n}")


def test_each_method_is_one_numpy_knows():
    with pytest.raises(ValueError, match="not a valid method"):
        np.quantile(np.arange(3.0), 0.5, method="no-such-method")
    for method in QUANTILE_METHODS:
        np.quantile(np.arange(3.0), 0.5, method=method)
