"""Which dtypes carry gradients: numpy's floats and complexes, and the extra float types of
``ml_dtypes`` (``bfloat16``, the float8 family), which numpy reports as kind ``"V"``.

``dtype.kind in "fc"`` misses ``bfloat16``, which then looks like an integer and silently
gets no gradient; every "is this differentiable?" question asks ``is_float`` instead.

``np.save`` writes such arrays as raw bytes (``|V2``), so files pycograd writes store them
as their bit patterns with a record of the dtype (``to_npz`` / ``from_npz``), and
``read_npz`` turns every way a file can be unreadable into one ``ParamLoadError``.
"""

from __future__ import annotations

import os
import sys
import zipfile
import zlib
from typing import Any

import numpy as np

from pycograd.core.errors import ParamLoadError

_EXTRA_FLOAT: dict[np.dtype, bool] = {}


def is_float(dt: Any) -> bool:
    """Whether ``dt`` is a real or complex floating dtype, ``ml_dtypes`` floats included:
    ``is_float(ml_dtypes.bfloat16)`` is True, ``is_float(np.int32)`` is False."""
    dt = np.dtype(dt)
    if dt.kind in "fc":
        return True
    if dt.kind != "V":
        return False
    hit = _EXTRA_FLOAT.get(dt)
    if hit is None:
        hit = _EXTRA_FLOAT[dt] = _ml_float(dt)
    return hit


def _ml_float(dt: np.dtype) -> bool:
    ml = sys.modules.get("ml_dtypes")  # a dtype of kind "V" with a type from ml_dtypes
    if ml is None or not getattr(dt.type, "__module__", "").startswith("ml_dtypes"):
        return False
    try:
        ml.finfo(dt)
    except (ValueError, TypeError):
        return False
    return True


def storable(a: Any) -> tuple[np.ndarray, str | None]:
    """``a`` as an array that ``np.save`` writes faithfully, and the ``ml_dtypes`` dtype name
    to view it back as (None for numpy's own dtypes). ``np.save`` writes a bfloat16 array
    as raw ``|V2`` bytes, so it is stored as its unsigned-integer bit pattern instead."""
    a = np.asarray(a)
    if a.dtype.kind == "V" and a.dtype.names is None and _ml_type(a.dtype.name) is not None:
        return a.view(np.dtype(f"u{a.dtype.itemsize}")), a.dtype.name
    return a, None


def restore(a: np.ndarray, name: str | None) -> np.ndarray:
    """Undo ``storable``: view the stored bits as the ``ml_dtypes`` dtype ``name``. Raises
    ParamLoadError for a name that is not an ml_dtypes dtype or bits of the wrong width."""
    if name is None:
        return a
    t = _ml_type(name) if isinstance(name, str) else None
    if t is None:
        raise ParamLoadError(f"unknown stored dtype {name!r} (not an ml_dtypes dtype; is "
                             "ml_dtypes installed?)")
    dt = np.dtype(t)
    if a.dtype != np.dtype(f"u{dt.itemsize}"):
        raise ParamLoadError(f"an array stored as {name} must hold u{dt.itemsize} bits, got "
                             f"{a.dtype}")
    return a.view(dt)


def _ml_type(name: str) -> type | None:
    try:
        import ml_dtypes
    except ImportError:
        return None
    t = getattr(ml_dtypes, name, None) if name.isidentifier() else None
    if not isinstance(t, type):
        return None
    try:
        dt = np.dtype(t)
    except TypeError:
        return None
    return t if dt.kind == "V" and dt.names is None else None


_DTYPE_KEY = "dtype/"


def to_npz(arrays: dict[str, Any]) -> dict[str, np.ndarray]:
    """``arrays`` ready for ``np.savez``: ml_dtypes arrays as their bits, each with a
    ``"dtype/<key>"`` entry naming its dtype (see ``from_npz``)."""
    out: dict[str, np.ndarray] = {}
    for k, v in arrays.items():
        out[k], name = storable(v)
        if name is not None:
            out[_DTYPE_KEY + k] = np.array(name)
    return out


def from_npz(files: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Undo ``to_npz`` on the arrays read back from the file."""
    out = {k: v for k, v in files.items() if not k.startswith(_DTYPE_KEY)}
    for k, v in files.items():
        if k.startswith(_DTYPE_KEY):
            key = k[len(_DTYPE_KEY):]
            if key not in out or v.dtype.kind != "U" or v.shape != ():
                raise ParamLoadError(f"dtype record {k!r} does not describe a stored array")
            out[key] = restore(out[key], str(v))
    return out


def read_npz(path: str | os.PathLike, what: str) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file written through ``to_npz`` (no pickle); an unreadable
    or malformed file raises ``ParamLoadError`` naming the file and the problem."""
    errors = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error)
    where = os.fspath(path)
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except errors as e:
        raise ParamLoadError(f"{where}: not a readable {what} file "
                             f"({type(e).__name__}: {e})") from e
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ParamLoadError(f"{where}: a single .npy array, not a {what} .npz file")
    with loaded as f:
        try:
            return from_npz({k: f[k] for k in f.files})
        except ParamLoadError as e:
            raise ParamLoadError(f"{where}: {e}") from e
        except errors as e:
            raise ParamLoadError(f"{where}: not a readable {what} file "
                                 f"({type(e).__name__}: {e})") from e
