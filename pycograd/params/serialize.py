"""Saving and loading weights without pickle: one ``.npz`` holding an array per stored entry
and a JSON description of the names, kinds and ties (a unicode array, so
``allow_pickle=False`` reads it)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pycograd.core.errors import PycogradError
from pycograd.distributed.files import savez

META_KEY = "pycograd-meta"  # a hyphen: no weight name (a dotted identifier) can collide
FORMAT = "pycograd.ParamDict"
VERSION = 1


class ParamLoadError(PycogradError, ValueError):
    """Saved weights that do not fit the ParamDict they are loaded into: lists every missing,
    extra or mismatched entry.

    Examples:
        >>> import os, tempfile
        >>> import numpy as np
        >>> from pycograd import ParamDict, ParamLoadError
        >>> path = os.path.join(tempfile.mkdtemp(), "w.npz")
        >>> ParamDict(w=np.zeros(3)).save(path)
        >>> try:
        ...     ParamDict(w=np.zeros(4)).load_into(path)
        ... except ParamLoadError as e:
        ...     print("w" in str(e))
        True
    """


def _resolve(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists() and p.suffix != ".npz" and p.with_name(p.name + ".npz").exists():
        return p.with_name(p.name + ".npz")
    return p


def write(path: str | os.PathLike, entries: list[dict], arrays: Mapping[str, np.ndarray]) -> None:
    """``entries``: one ``{"name", "kind", "tied"}`` per name, in order; ``arrays``: the
    stored (canonical) names' values. Under data parallel only rank 0 writes."""
    meta = json.dumps({"format": FORMAT, "version": VERSION, "entries": entries})
    savez(path, **{META_KEY: np.array(meta)}, **arrays)


def read(path: str | os.PathLike) -> tuple[list[dict], dict[str, np.ndarray]]:
    """The entries and arrays of a file written by ``write``."""
    p = _resolve(path)
    with np.load(p, allow_pickle=False) as z:
        if META_KEY not in z.files:
            raise ParamLoadError(f"{p}: not a pycograd ParamDict file (no {META_KEY!r} record); "
                                 "write it with weights.save(path)")
        meta = json.loads(str(z[META_KEY]))
        arrays = {k: z[k] for k in z.files if k != META_KEY}
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ParamLoadError(f"{p}: unsupported format {meta.get('format')!r} version "
                             f"{meta.get('version')!r}; expected {FORMAT!r} version {VERSION}")
    return meta["entries"], arrays


def check_state(expected: Mapping[str, np.ndarray], aliases: Mapping[str, str],
                state: Mapping[str, Any], source: str) -> None:
    """Raise one ``ParamLoadError`` naming every problem of ``state`` against ``expected``
    (stored name -> current array); ``aliases`` (tied name -> stored name) may appear in
    ``state`` but must then hold the same values as their stored name."""
    problems = []
    missing = [n for n in expected if n not in state]
    extra = [n for n in state if n not in expected and n not in aliases]
    if missing:
        problems.append(f"missing: {', '.join(missing)}")
    if extra:
        problems.append(f"extra (not in these weights): {', '.join(extra)}")
    for name, current in expected.items():
        if name not in state:
            continue
        new = np.asarray(state[name])
        if new.shape != np.shape(current):
            problems.append(f"{name}: shape {new.shape} in {source}, {np.shape(current)} here")
        elif new.dtype != current.dtype:
            problems.append(f"{name}: dtype {new.dtype} in {source}, {current.dtype} here")
    for alias, target in aliases.items():
        if alias in state and target in state and state[alias] is not state[target] and not (
                np.shape(state[alias]) == np.shape(state[target])
                and np.array_equal(state[alias], state[target])):
            problems.append(f"{alias}: tied to {target} here, but {source} holds different "
                            "values for the two")
    if problems:
        raise ParamLoadError(f"cannot load {source}:\n  " + "\n  ".join(problems))
