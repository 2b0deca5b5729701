"""``%load_ext pycograd``: pipescript's syntax plus the ``params{}`` block in IPython."""

from __future__ import annotations

from typing import Any

from pycograd.dsl import register


def load_ipython_extension(shell: Any) -> None:
    """Load pipescript (``|>``, ``$``, ``fork``, brace blocks) if it is not loaded yet, then
    register ``params{ ... }`` and the DSL's checks on ``shell``."""
    from pycograd.dsl import checks, hint

    hint.uninstall(shell)
    register()
    if "pipescript" not in shell.extension_manager.loaded:
        shell.extension_manager.load_extension("pipescript")
    import pyccolo as pyc

    from pycograd.dsl.routing import CellRoutingTracer

    pyc.register_ipython_tracer(CellRoutingTracer, shell=shell)
    checks.install(shell)


def unload_ipython_extension(shell: Any) -> None:
    from pycograd.dsl import checks

    checks.uninstall(shell)
