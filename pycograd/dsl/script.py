"""Run a ``.py`` file written in the DSL: ``python -m pycograd run model.py [args]``.

The file is imported through pyccolo's import hook with pipescript's tracers on (the way
``python -m pipescript`` does), plus the ``params{}`` block and ``math.*`` routing; it runs
as ``__main__``, with ``sys.argv`` set to the file and its arguments.
"""

from __future__ import annotations

import os
import runpy
import sys

from pycograd.dsl import register


def run_file(path: str, argv: list[str] | None = None) -> dict:
    """Execute the DSL file at ``path`` as ``__main__``; returns its globals."""
    import pyccolo as pyc
    from pipescript import PIPESCRIPT_TRACERS

    from pycograd.dsl.routing import CellRoutingTracer

    register()
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"pycograd run: no file {path!r}")
    tracers = [cls.instance() for cls in (*PIPESCRIPT_TRACERS, CellRoutingTracer)]
    for t in tracers:
        t._tracing_enabled_files.add(path)
    directory, module = os.path.split(os.path.splitext(path)[0])
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [path, *(argv or [])]
    sys.path.insert(0, directory)
    try:
        with pyc.multi_context(tracers):
            return runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
