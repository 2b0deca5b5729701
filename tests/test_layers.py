"""The package's layers: every import runs downward (or within its layer).

The order is read from the code (DESIGN.md section 3): the core (trace stack, tape, primitive
registry) knows nothing of the rest; primitives sit on it; numpy's API and the routing layer
(pyccolo's transparent layer, which installs numpy_api's routes) share a layer; every transform
routes the user's function through them; weights, nn and optimizers are written with the
transforms; graph capture and jit trace all of it; the DSL and the examples sit on top.
Data-parallel communication (``distributed``) needs only the core and serves the optimizers.

A module-level upward import is an import cycle in waiting and always fails. A function-level
(lazy) upward import is a run-time call into a higher layer; the few that are deliberate are
listed in LAZY_UPWARD with the reason, anything else fails. The core may have none.
"""

from __future__ import annotations

import ast
import pathlib

import pycograd

PKG = pathlib.Path(pycograd.__file__).parent

LAYERS: list[set[str]] = [
    {"core"},
    {"ops", "random", "distributed"},
    {"numpy_api", "routing"},
    {"transforms"},
    {"params", "nn", "optim"},
    {"graph", "privacy", "debug"},
    {"dsl", "examples", "__init__", "__main__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}

LAZY_UPWARD: dict[tuple[str, str], str] = {
    ("pycograd.ops.integrate", "pycograd.transforms.grad"):
        "odeint's adjoint rule differentiates the user's dynamics (vjp) when it runs",
    ("pycograd.ops.integrate", "pycograd.transforms.jvp"):
        "odeint's tangent rule pushes tangents through the user's dynamics (jvp)",
    ("pycograd.numpy_api.functions", "pycograd.transforms.shapes"):
        "a data-dependent shape under eval_shape is reported as eval_shape's error",
    ("pycograd.numpy_api.construction", "pycograd.transforms.shapes"):
        "a data-dependent shape under eval_shape is reported as eval_shape's error",
    ("pycograd.numpy_api.polynomial", "pycograd.transforms.shapes"):
        "a data-dependent shape under eval_shape is reported as eval_shape's error",
    ("pycograd.transforms.shapes", "pycograd.params"):
        "summary names the weights of a ParamDict argument",
    ("pycograd.ops.linalg", "pycograd.numpy_api.functions"):
        "matmul's einsum spec reuses numpy_api's einsum parser (a pure function on strings)",
    ("pycograd.params.paramdict", "pycograd.graph.jit"):
        "ParamDict.train(jit=True) hands the objective to the jit executor",
}


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: pathlib.Path) -> list[tuple[str, int, bool]]:
    """(imported pycograd module, line, at module level) for every import in ``path``."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    top = {id(n) for n in tree.body} | {id(n) for s in tree.body if isinstance(s, ast.If | ast.Try)
                                         for n in ast.walk(s)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = parts[: len(parts) - node.level + 1] if node.level else []
            target = ".".join([*base, node.module] if node.module else base)
            # ``from pycograd import random``: the submodule, when there is one
            names = [f"{target}.{a.name}" if _is_module(f"{target}.{a.name}") else target
                     for a in node.names]
        else:
            continue
        found += [(n, node.lineno, id(node) in top) for n in names if n.split(".")[0] == "pycograd"]
    return found


def _is_module(name: str) -> bool:
    rel = pathlib.Path(*name.split(".")[1:])
    return (PKG / rel).with_suffix(".py").exists() or (PKG / rel / "__init__.py").exists()


def upward_imports() -> list[str]:
    bad: list[str] = []
    for path in sorted(PKG.rglob("*.py")):
        module = _module_name(path)
        for target, line, at_top in _imports(path):
            src, dst = _layer(module), _layer(target)
            if RANK[dst] <= RANK[src]:
                continue
            lazy_ok = (module, ".".join(target.split(".")[:3])) in LAZY_UPWARD
            if not at_top and src != "core" and lazy_ok:
                continue
            where = "module level" if at_top else "in a function"
            bad.append(f"{module}:{line} imports {target} ({where}): {src} is below {dst}")
    return bad


def test_every_package_has_a_layer() -> None:
    names = {p.stem if p.is_file() else p.name for p in PKG.iterdir()
             if (p.suffix == ".py" or (p / "__init__.py").exists())}
    assert names <= set(RANK), f"give these a layer in LAYERS: {sorted(names - set(RANK))}"


def test_imports_run_downward() -> None:
    bad = upward_imports()
    assert not bad, "upward imports:\n" + "\n".join(dict.fromkeys(bad))


def test_allowed_lazy_imports_still_exist() -> None:
    seen = {(_module_name(p), ".".join(t.split(".")[:3]))
            for p in PKG.rglob("*.py") for t, _, _ in _imports(p)}
    assert set(LAZY_UPWARD) <= seen, f"stale entries: {set(LAZY_UPWARD) - seen}"
