"""Run a ``.py`` file written in the DSL: ``python -m pycograd run model.py [args]``.

The file is loaded by its path (any name: ``random.py``, ``model.v2.py``), as ``python
model.py`` would run it: as ``__main__``, its directory on ``sys.path`` (see
``_search_path``), ``sys.argv`` set to the file and its arguments. It is compiled through
pyccolo's loader with pipescript's tracers on (the way ``python -m pipescript`` does), plus
the ``params{}`` block, ``math.*`` routing and the DSL's static checks (``checks``: a
misspelt weight is an ``UndefinedWeightError`` at its line). ``user_traceback`` shows an
error the way plain Python would have: the user's frames at the user's lines, without the
DSL's machinery.
"""

from __future__ import annotations

import ast
import builtins
import linecache
import os
import sys
import sysconfig
import traceback
import types
from typing import Any

from pycograd.dsl import register

_MACHINERY = tuple(os.sep + name + os.sep for name in ("pyccolo", "pipescript"))
_DSL_DIR = os.path.dirname(os.path.abspath(__file__))
_MAIN = os.path.join(os.path.dirname(_DSL_DIR), "__main__.py")
_SCRIPTS: set[str] = set()
"""The files ``run_file`` has run: the user's DSL code."""


def _loader_class() -> type:
    from pyccolo.import_hooks import TraceLoader

    from pycograd.dsl import checks

    class ScriptLoader(TraceLoader):
        """pyccolo's loader, with the DSL's checks between parsing and instrumenting, and
        no bytecode cache (as plain Python keeps none for ``__main__``)."""

        namespace: dict = {}

        def get_code(self, fullname: str) -> types.CodeType:
            path = self.get_filename(fullname)
            return self.source_to_code(self.get_data(path), path)

        def source_to_code(self, data: Any, path: Any, *, _optimize: int = -1) -> Any:
            if isinstance(data, (str, ast.AST)) or not self.get_tracers_for_path(str(path)):
                return super().source_to_code(data, path, _optimize=_optimize)
            source = self._get_augmented_source(bytes(data), str(path))
            tree = ast.parse(source, filename=str(path))
            tree = checks.CellChecker(lambda: self.namespace, where="file").visit(tree)
            return super().source_to_code(tree, path, _optimize=_optimize)

    return ScriptLoader


def _search_path(directory: str) -> list[str]:
    """``sys.path`` for the file: its directory right after the standard library's, so that
    its sibling modules import, and a file named like a standard module (``random.py``)
    hides that module neither from the libraries nor from itself. The working directory,
    which ``python -m`` puts first, is left out, as ``python model.py`` leaves it out."""
    paths = sysconfig.get_paths()
    std = tuple(os.path.realpath(paths[k]) for k in ("stdlib", "platstdlib"))
    rest = [p for p in sys.path if p not in ("", os.getcwd(), directory)]

    def in_std(p: str) -> bool:
        real = os.path.realpath(p)
        return real.startswith(std) and "-packages" not in real

    at = max((i + 1 for i, p in enumerate(rest) if in_std(p)), default=0)
    return rest[:at] + [directory] + rest[at:]


def run_file(path: str, argv: list[str] | None = None) -> dict:
    """Execute the DSL file at ``path`` as ``__main__``; returns its globals.

    Example: ``run_file("model.py", ["--epochs", "3"])`` is ``python -m pycograd run
    model.py --epochs 3``."""
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"pycograd run: no file {path!r}")
    saved = sys.argv, list(sys.path), sys.modules.get("__main__")
    sys.path[:] = _search_path(os.path.dirname(path))
    try:
        return _run(path, argv)
    finally:
        sys.argv, sys.path[:] = saved[0], saved[1]
        if saved[2] is not None:
            sys.modules["__main__"] = saved[2]


def _run(path: str, argv: list[str] | None) -> dict:
    import pyccolo as pyc
    from pipescript import PIPESCRIPT_TRACERS

    from pycograd.dsl.routing import CellRoutingTracer

    register()
    tracers = [cls.instance() for cls in (*PIPESCRIPT_TRACERS, CellRoutingTracer)]
    for t in tracers:
        t._tracing_enabled_files.add(path)
    _SCRIPTS.add(path)
    module = types.ModuleType("__main__")
    module.__file__ = path
    module.__builtins__ = builtins
    loader = _loader_class()(tracers, "__main__", path)
    loader.namespace = module.__dict__
    module.__loader__ = loader
    module.__spec__ = None
    sys.argv = [path, *(argv or [])]
    sys.modules["__main__"] = module
    with pyc.multi_context(tracers):
        loader.exec_module(module)
    return module.__dict__


def _user_frame(frame: traceback.FrameSummary, last_user: str | None
                ) -> traceback.FrameSummary | None:
    """``frame`` as the user wrote it: ``None`` for the DSL's machinery, a compiled
    ``params{}`` block (``<sandbox-N>``) at its line in the user's file."""
    from pycograd.dsl.blockrun import block_origin

    name = frame.filename
    if name.startswith("<sandbox"):
        origin = block_origin(name)
        if origin is not None:
            name, lineno = origin[0], origin[1] + (frame.lineno or 1) - 1
        elif last_user is not None and not linecache.getline(name, frame.lineno or 1):
            # a pipeline stage compiled from the user's code keeps its lines
            name, lineno = last_user, frame.lineno
        else:
            return None
        line = linecache.getline(name, lineno or 1).strip()
        return traceback.FrameSummary(name, lineno, frame.name, line=line)
    if name.startswith(("<frozen ", "<pyccolo")) or any(m in name for m in _MACHINERY) \
            or os.path.dirname(os.path.abspath(name)) == _DSL_DIR \
            or os.path.abspath(name) == _MAIN:
        return None
    if name in _SCRIPTS:  # its columns are those of the rewritten DSL source: drop them
        return traceback.FrameSummary(name, frame.lineno, frame.name, line=frame.line)
    return frame


def user_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` (and of its causes) with the DSL's frames taken out and
    compiled blocks shown at the user's lines; everything when the environment sets
    ``PYCOGRAD_TRACEBACK_FILTERING=off``.

    Example: ``python -m pycograd run model.py`` prints this for an uncaught error."""
    if os.environ.get("PYCOGRAD_TRACEBACK_FILTERING", "").lower() == "off":
        return "".join(traceback.format_exception(exc))
    tb = traceback.TracebackException.from_exception(exc)
    seen: set[int] = set()
    todo = [tb]
    while todo:
        t = todo.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        kept: list[traceback.FrameSummary] = []
        last_user: str | None = None
        for frame in t.stack:
            mapped = _user_frame(frame, last_user)
            if mapped is not None:
                kept.append(mapped)
                if mapped.filename in _SCRIPTS:
                    last_user = mapped.filename
        t.stack = traceback.StackSummary.from_list(kept)
        todo += [c for c in (t.__cause__, t.__context__) if c is not None]
    return "".join(tb.format())
