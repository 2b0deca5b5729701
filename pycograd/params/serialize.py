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

from pycograd.core.dtypes import read_npz, to_npz
from pycograd.core.errors import MissingFileError, ParamLoadError
from pycograd.distributed.files import savez
from pycograd.params.markers import KINDS

META_KEY = "pycograd-meta"  # a hyphen: no weight name (a dotted identifier) can collide
FORMAT = "pycograd.ParamDict"
VERSION = 1


def _resolve(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists() and p.suffix != ".npz" and p.with_name(p.name + ".npz").exists():
        return p.with_name(p.name + ".npz")
    return p


def write(path: str | os.PathLike, entries: list[dict], arrays: Mapping[str, np.ndarray]) -> None:
    """``entries``: one ``{"name", "kind", "tied"}`` per name, in order; ``arrays``: the
    stored (canonical) names' values (ml_dtypes ones, bfloat16..., as their bits with a
    dtype record: see ``core.dtypes.to_npz``). Under data parallel only rank 0 writes."""
    meta = json.dumps({"format": FORMAT, "version": VERSION, "entries": entries})
    savez(path, **{META_KEY: np.array(meta)}, **to_npz(dict(arrays)))


def read(path: str | os.PathLike) -> tuple[list[dict], dict[str, np.ndarray]]:
    """The entries and arrays of a file written by ``write``. Whatever is wrong with the
    file (not a zip, truncated, a pickled or malformed record, a description that does not
    match the arrays) raises ``ParamLoadError`` saying what; nothing in it is unpickled."""
    p = _resolve(path)
    if not p.exists():
        raise MissingFileError(f"{p}: no such file")
    arrays = read_npz(p, "ParamDict")
    if META_KEY not in arrays:
        raise ParamLoadError(f"{p}: not a pycograd ParamDict file (no {META_KEY!r} record); "
                             "write it with weights.save(path)")
    meta = _meta(p, arrays.pop(META_KEY))
    for name, a in arrays.items():
        if a.dtype.type is np.void and a.dtype.names is None:
            raise ParamLoadError(f"{p}: {name} holds raw bytes ({a.dtype}) with no dtype "
                                 "recorded (a bfloat16 array saved by an older pycograd?)")
    return _entries(p, meta, arrays), arrays


def _meta(p: Path, raw: np.ndarray) -> dict:
    if raw.dtype.kind != "U" or raw.shape != ():
        raise ParamLoadError(f"{p}: the {META_KEY!r} record is a {raw.dtype} array of shape "
                             f"{raw.shape}, not a JSON string")
    try:
        meta = json.loads(str(raw))
    except ValueError as e:
        raise ParamLoadError(f"{p}: the {META_KEY!r} record is not valid JSON ({e})") from e
    if not isinstance(meta, dict):
        raise ParamLoadError(f"{p}: the {META_KEY!r} record is a JSON "
                             f"{type(meta).__name__}, not an object")
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ParamLoadError(f"{p}: unsupported format {meta.get('format')!r} version "
                             f"{meta.get('version')!r}; expected {FORMAT!r} version {VERSION}")
    return meta


def _entries(p: Path, meta: dict, arrays: Mapping[str, np.ndarray]) -> list[dict]:
    """The entries, checked: each names a string, a known kind and a tie target (a
    string or null); untied names have an array, tied ones do not; no array is left over."""
    entries = meta.get("entries")
    if not isinstance(entries, list):
        raise ParamLoadError(f"{p}: the description has no list of entries")
    problems, names = [], set()
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or set(e) != {"name", "kind", "tied"}:
            problems.append(f"entry {i} is not a {{name, kind, tied}} record: {e!r:.80}")
            continue
        name, kind, tied = e["name"], e["kind"], e["tied"]
        if not isinstance(name, str) or name in names:
            problems.append(f"entry {i}: name {name!r} is not a string or is repeated")
            continue
        names.add(name)
        if kind not in KINDS:
            problems.append(f"{name}: unknown kind {kind!r} (expected one of {KINDS})")
        if tied is not None and not isinstance(tied, str):
            problems.append(f"{name}: tied to {tied!r}, not a weight name")
        elif tied is None and name not in arrays:
            problems.append(f"{name}: no array stored for it")
        elif tied is not None and name in arrays:
            problems.append(f"{name}: tied to {tied!r} but also stores an array")
    extra = sorted(set(arrays) - names)
    if extra:
        problems.append(f"arrays that no entry names: {', '.join(extra)}")
    if problems:
        raise ParamLoadError(f"{p}: malformed ParamDict file:\n  " + "\n  ".join(problems))
    return entries


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
