"""Every error pycograd raises derives from ``PycogradError`` (keeping numpy's builtin base,
so ``except ValueError`` still works), and every message that names a pycograd function
names one the README documents."""

from __future__ import annotations

import ast
import builtins
import re
import types
from pathlib import Path

import numpy as np
import pytest

import pycograd
from pycograd import grad, vmap
from pycograd.core import errors

PKG = Path(pycograd.__file__).parent
README = (PKG.parent / "README.md").read_text()

BUILTIN_EXCEPTIONS = {n for n, v in vars(builtins).items()
                      if isinstance(v, type) and issubclass(v, BaseException)}
# Builtin raises that are deliberate: the DSL keeps Python's own SyntaxError /
# FileNotFoundError (IPython and the shell present those specially); examples are scripts.
ALLOWED = {"dsl/": {"SyntaxError", "FileNotFoundError"}, "examples/": BUILTIN_EXCEPTIONS}


def _files():
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).as_posix()
        yield rel, ast.parse(path.read_text(), rel)


def _allowed(rel: str) -> set[str]:
    return next((names for prefix, names in ALLOWED.items() if rel.startswith(prefix)), set())


def _raised_name(node: ast.Raise) -> str | None:
    exc = node.exc
    if isinstance(exc, ast.Call):
        exc = exc.func
    return exc.id if isinstance(exc, ast.Name) else None


def test_no_builtin_exception_is_raised():
    """``raise ValueError(...)`` is ``raise ArgumentError(...)`` (or a more specific class);
    a bare ``raise NotImplementedError`` (an abstract method) is the one exception."""
    found = []
    for rel, tree in _files():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Raise) or node.exc is None:
                continue
            name = _raised_name(node)
            if name in BUILTIN_EXCEPTIONS - _allowed(rel) and not (
                    name == "NotImplementedError" and isinstance(node.exc, ast.Name)):
                found.append(f"{rel}:{node.lineno}: raise {name}")
    assert not found, "raise a PycogradError subclass instead:\n" + "\n".join(found)


def test_every_exception_class_derives_from_pycograd_error():
    bad = []
    for rel, tree in _files():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Error"):
                mod = "pycograd." + rel[:-3].replace("/", ".")
                cls = getattr(__import__(mod, fromlist=["_"]), node.name, None)
                if isinstance(cls, type) and not issubclass(cls, errors.PycogradError):
                    bad.append(f"{rel}: {node.name}")
    assert not bad


def _strings(node: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant)
            and isinstance(n.value, str)]


def test_messages_name_only_documented_functions():
    """A fix an error suggests (``write pycograd.scatter_set(...)``) must exist and be in the
    README."""
    named = {}
    for rel, tree in _files():
        for node in ast.walk(tree):
            texts = _strings(node) if isinstance(node, ast.Raise) else []
            if rel == "numpy_api/methods.py" and isinstance(node, ast.Assign):
                texts = _strings(node)  # the conversion messages are a table
            for text in texts:
                for name in re.findall(r"pycograd\.([A-Za-z_]\w*)", text):
                    named.setdefault(name, f"{rel}:{node.lineno}")
    assert named, "the scan found no suggestion at all"
    public = set(pycograd.__all__) | {n for n, v in vars(pycograd).items()
                                      if isinstance(v, types.ModuleType) and n[0] != "_"}
    missing = {n: where for n, where in named.items()
               if n not in public or not re.search(rf"\b{n}\b", README)}
    assert not missing, f"errors name undocumented functions: {missing}"


def test_new_classes_keep_their_builtin_base():
    for cls, base in [(errors.ArgumentError, ValueError), (errors.ArgumentTypeError, TypeError),
                      (errors.InAxesError, ValueError), (errors.ImmutableTracerError, TypeError),
                      (errors.IndexingError, IndexError),
                      (errors.InputRuntimeError, RuntimeError),
                      (errors.DivisionByZeroError, ZeroDivisionError),
                      (errors.MissingAttributeError, AttributeError)]:
        assert issubclass(cls, errors.PycogradError) and issubclass(cls, base)
        assert getattr(pycograd, cls.__name__) is cls  # exported


def test_np_add_at_names_scatter_add():
    def f(x):
        y = np.zeros(3)
        np.add.at(y, [0, 0], x)
        return np.sum(y)

    with pytest.raises(pycograd.ImmutableTracerError, match=r"pycograd\.scatter_add\(x, idx, v\)"):
        grad(f, 0)(np.ones(2))
    with pytest.raises(TypeError, match=r"scatter_add\(x, idx, -v\)"):
        grad(lambda x: np.subtract.at(x, [0], 1.0), 0)(np.ones(2))


def test_item_assignment_names_scatter_set_and_where():
    def f(x):
        x[0] = 1.0
        return np.sum(x)

    with pytest.raises(pycograd.ImmutableTracerError) as info:
        grad(f, 0)(np.ones(2))
    assert isinstance(info.value, TypeError)
    assert "pycograd.scatter_set" in str(info.value) and "np.where" in str(info.value)
    with pytest.raises(pycograd.ImmutableTracerError, match="np.sort"):
        grad(lambda x: x.sort(), 0)(np.ones(2))


def test_in_axes_length_is_an_in_axes_error():
    with pytest.raises(pycograd.InAxesError) as info:
        vmap(lambda a, b: a + b, in_axes=(0, 0, 0))(np.ones(2), np.ones(2))
    assert isinstance(info.value, ValueError)
    with pytest.raises(ValueError, match="out_axes"):
        vmap(lambda a: a, out_axes=5)(np.ones(2))
