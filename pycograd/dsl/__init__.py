"""The ambient-weights DSL: ``params{ ... } as weights:`` blocks and ``|>`` pipelines.

Built on pipescript (``|>``, ``$`` holes, ``fork``, brace blocks, namespace-block macros);
this package adds the ``params`` block (``block``, run once and at the user's lines by
``blockrun``), keeps weights late-bound in pipelines
(``capture``), compiles each pipeline stage once (``stagecache``) and turns plain ``|>``
pipes into plain calls (``lowering``; both installed by ``patches`` where pipescript's
code is the one they were written for), the checks and error
messages (``checks``, ``errors``, ``hint``), the IPython extension (``extension``) and the
script runner (``script``). pipescript is imported only when the DSL is turned on.
"""

from __future__ import annotations

from typing import Any

_REGISTERED = [False]


def register() -> None:
    """Register ``params{...}`` with pipescript and keep weights late-bound (idempotent)."""
    if _REGISTERED[0]:
        return
    from pipescript.tracers.macro_tracer import register_namespace_macro

    from pycograd.dsl import blockrun, capture, patches, stages
    from pycograd.dsl.block import build, params

    blockrun.install()
    patches.install()  # stagecache, fastemit, lowering: checked against their targets' code
    capture.install()
    stages.install()
    register_namespace_macro("params", build, call_form=params)
    _REGISTERED[0] = True


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext pycograd`` (also reachable as ``%load_ext pycograd.dsl``)."""
    from pycograd.dsl.extension import load_ipython_extension as load

    load(shell)


def unload_ipython_extension(shell: Any) -> None:
    from pycograd.dsl.extension import unload_ipython_extension as unload

    unload(shell)
