"""A clear message for DSL syntax used before ``%load_ext pycograd``.

When pycograd is imported in IPython, a light input transformer watches cells that fail to
parse: if the failure is DSL syntax (``|>``, ``$``, ``params{``) it raises a SyntaxError
that says to run ``%load_ext pycograd`` and points at the line. It steps aside once the DSL
(or pipescript) is loaded.
"""

from __future__ import annotations

import ast
import re
import sys
from typing import Any

_DSL = re.compile(r"\|>|\$|\bparams\s*\{")


def _dsl_active(shell: Any) -> bool:
    loaded = set(getattr(shell.extension_manager, "loaded", ()))
    return not loaded.isdisjoint({"pyccolo", "pipescript", "pycograd", "pycograd.dsl"})


class _Hint:
    """The input transformer (``lines -> lines``; raises only on DSL syntax errors)."""

    has_side_effects = False

    def __init__(self, shell: Any):
        self.shell = shell

    def __call__(self, lines: list[str]) -> list[str]:
        src = "".join(lines)
        if not _DSL.search(src) or _dsl_active(self.shell):
            return lines
        try:
            ast.parse(src)
        except SyntaxError:
            for i, line in enumerate(lines, 1):
                m = _DSL.search(line)
                if m:
                    raise SyntaxError(
                        f"{m.group(0).strip()!r} is pycograd DSL syntax: run "
                        "`%load_ext pycograd` first (in a cell of its own), then rerun this "
                        "cell", ("<cell>", i, m.start() + 1, line, i, m.end() + 1)) from None
        return lines


def install(shell: Any) -> None:
    if not any(isinstance(t, _Hint) for t in shell.input_transformers_post):
        shell.input_transformers_post.append(_Hint(shell))


def uninstall(shell: Any) -> None:
    shell.input_transformers_post[:] = [t for t in shell.input_transformers_post
                                        if not isinstance(t, _Hint)]


def install_if_interactive() -> None:
    """Install the hint in the running IPython shell, if any (cheap otherwise)."""
    if "IPython" not in sys.modules:
        return
    try:
        shell = sys.modules["IPython"].get_ipython()
    except Exception:
        return
    if shell is not None and hasattr(shell, "input_transformers_post"):
        install(shell)
