"""mkdocs hook: the API reference pages, generated from ``pycograd.__all__``.

Every public name gets a mkdocstrings entry (``::: pycograd.NAME``), grouped into pages by
the subpackage that defines it, so a name added to ``__all__`` appears in the reference
with no edit here; a new subpackage gets a page of its own, titled after its name. The
pages are generated at build time and never written into ``docs/``.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import textwrap
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]

# (title, page, predicate on the defining module) in nav order; the first match wins.
GROUPS = [
    ("Errors", "errors", None),
    ("Transforms", "transforms", ("pycograd.transforms", "pycograd.core.var", "pycograd.ops")),
    ("Shapes", "shapes", ("pycograd.transforms.shapes", "pycograd.core.symbolic")),
    ("Neural-network ops", "nn", ("pycograd.nn",)),
    ("Parameters", "params", ("pycograd.params",)),
    ("Optimizers and training", "optim", ("pycograd.optim",)),
    ("numpy extras and routing", "numpy", ("pycograd.numpy_api",)),
    ("Pytrees", "pytrees", ("pycograd.core.pytree",)),
]


def _public() -> list[tuple[str, object]]:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    pycograd = importlib.import_module("pycograd")
    return [(name, getattr(pycograd, name)) for name in pycograd.__all__]


def _home(obj: object) -> str:
    module = getattr(obj, "__module__", None)
    return module if isinstance(module, str) else type(obj).__module__


def group_names() -> dict[str, tuple[str, list[str]]]:
    """``{page: (title, [names in __all__ order])}``, in nav order."""
    pages: dict[str, tuple[str, list[str]]] = {page: (title, []) for title, page, _ in GROUPS}
    for name, obj in _public():
        if isinstance(obj, type) and issubclass(obj, BaseException):
            pages["errors"][1].append(name)
            continue
        home = _home(obj)
        # the longest matching prefix decides (shapes lives inside transforms)
        best, best_len = None, -1
        for _, page, prefixes in GROUPS:
            for prefix in prefixes or ():
                if (home == prefix or home.startswith(prefix + ".")) and len(prefix) > best_len:
                    best, best_len = page, len(prefix)
        if best is None:
            parts = home.split(".")
            best = parts[1] if len(parts) > 1 else "misc"
            pages.setdefault(best, (best.replace("_", " ").capitalize(), []))
        pages[best][1].append(name)
    return {page: entry for page, entry in pages.items() if entry[1]}


def instance_markdown(name: str, obj: object) -> list[str]:
    """An entry for a public *instance* (``frozen``, ``r_``): mkdocstrings reads source
    statically and would show only the assignment, so the runtime docstring is rendered
    here, its ``Examples:`` section as a console block."""
    doc = inspect.getdoc(obj) or ""
    prose, _, examples = doc.partition("\nExamples:\n")
    lines = [f"## `{name}`", "", prose.strip(), ""]
    if examples.strip():
        lines += ["**Examples:**", "", "```pycon", textwrap.dedent(examples).strip(), "```", ""]
    return lines


def page_markdown(title: str, names: list[str]) -> str:
    pycograd = importlib.import_module("pycograd")
    lines = [f"# {title}", ""]
    for name in names:
        obj = getattr(pycograd, name)
        if inspect.isclass(obj) or inspect.isroutine(obj):
            lines += [f"::: pycograd.{name}", "    options:", f"      heading: {name}", ""]
        else:
            lines += instance_markdown(name, obj)
    return "\n".join(lines)


def on_config(config):
    """Replace the nav's API reference entry by the overview and one page per group."""
    groups = group_names()
    entries = [{"Overview": "reference/index.md"}]
    entries += [{title: f"reference/{page}.md"} for page, (title, _) in groups.items()]
    nav = config["nav"]
    for i, item in enumerate(nav):
        if isinstance(item, dict) and "API reference" in item:
            nav[i] = {"API reference": entries}
    config["extra"]["reference_groups"] = groups
    return config


def on_files(files, config):
    for page, (title, names) in config["extra"]["reference_groups"].items():
        files.append(File.generated(config, f"reference/{page}.md",
                                    content=page_markdown(title, names)))
    return files
