"""Tracebacks that show the user's code, not pycograd's machinery (as JAX filters its own).

An error inside ``grad(loss)(w)`` passes through a dozen pycograd frames (the transform, the
router, ``bind``, the tape) between the user's lines. ``api_boundary`` wraps every public entry
point: when an exception leaves it, the traceback is rebuilt without pycograd's frames (and
pyccolo's, which weaves routed code), keeping only the innermost pycograd frame when the error
was raised there, and a chained exception raised entirely inside pycograd (numpy's message
that pycograd's error already quotes) is no longer printed as its "direct cause".

``PYCOGRAD_TRACEBACK_FILTERING=off`` shows every frame, here and in ``python -m pycograd run``.

Example:
    ```python
    import numpy as np
    from pycograd import ShapeError, grad

    def loss(w):
        return np.sum(np.ones((4, 3)) @ w)

    try:
        grad(loss)(np.ones((2, 5)))
    except ShapeError as e:
        files = []
        tb = e.__traceback__
        while tb is not None:
            files.append(tb.tb_frame.f_code.co_filename)
            tb = tb.tb_next
        assert sum("pycograd" in f for f in files) <= 1
    ```
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any, TypeVar

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
"""The pycograd package's directory (with a trailing separator)."""

_MACHINERY = (os.sep + "pyccolo" + os.sep, os.sep + "pipescript" + os.sep)
_USER_DIRS = (PACKAGE_DIR + "examples" + os.sep,)

F = TypeVar("F", bound=Callable[..., Any])


def filtering_enabled() -> bool:
    """Whether tracebacks are filtered: yes unless ``PYCOGRAD_TRACEBACK_FILTERING=off``."""
    return os.environ.get("PYCOGRAD_TRACEBACK_FILTERING", "").lower() not in ("off", "0", "no")


def is_library_file(filename: str) -> bool:
    """Whether a frame of ``filename`` is pycograd's (or its weaver's), not the user's."""
    if filename.startswith(PACKAGE_DIR):
        return not filename.startswith(_USER_DIRS)
    return any(m in filename for m in _MACHINERY)


def filter_traceback(tb: TracebackType | None) -> TracebackType | None:
    """``tb`` without library frames, but for the innermost one when no user frame follows it
    (the line that raised)."""
    frames = []
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    keep = [not is_library_file(t.tb_frame.f_code.co_filename) for t in frames]
    user_after = False
    for i in range(len(frames) - 1, -1, -1):
        if keep[i]:
            user_after = True
        elif not user_after:
            keep[i] = frames[i].tb_frame.f_code.co_filename.startswith(PACKAGE_DIR)
            user_after = keep[i]
    out = None
    for t, k in zip(reversed(frames), reversed(keep)):
        if k:
            out = TracebackType(out, t.tb_frame, t.tb_lasti, t.tb_lineno)
    return out


def _internal(exc: BaseException | None) -> bool:
    """Whether ``exc`` was raised and handled wholly inside pycograd."""
    if exc is None or exc.__traceback__ is None:
        return False
    tb = exc.__traceback__
    while tb is not None:
        if not is_library_file(tb.tb_frame.f_code.co_filename):
            return False
        tb = tb.tb_next
    return True


def filter_exception(e: BaseException) -> None:
    """Filter ``e``'s traceback in place, and drop a chained exception that is pycograd's own."""
    e.with_traceback(filter_traceback(e.__traceback__))
    chained = e.__cause__ if e.__cause__ is not None else (
        None if e.__suppress_context__ else e.__context__)
    if _internal(chained):
        e.__cause__ = None
        e.__suppress_context__ = True


class _Pending(threading.local):
    """A pycograd error that numpy replaced by its own (see ``note_failed_store``)."""

    store: tuple | None = None


_PENDING = _Pending()


def note_failed_store(frame: FrameType, error: BaseException) -> None:
    """Remember ``error`` for the ``h[i] = v`` that ``frame`` is executing: numpy's
    ``ndarray.__setitem__`` swallows the error a traced ``v`` raises on conversion and
    reports 'setting an array element with a sequence' instead; the boundary of the
    transform puts ``error`` back when that ValueError reaches it from this very store."""
    _PENDING.store = (id(frame), frame.f_code, frame.f_lasti, error)  # not the frame: no leak


def _restored(e: BaseException) -> BaseException | None:
    """The error numpy replaced by ``e``, if ``e`` comes from the store noted last."""
    pending, _PENDING.store = _PENDING.store, None
    if pending is None or type(e) is not ValueError:
        return None
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    frame_id, code, lasti, error = pending
    if tb is None or id(tb.tb_frame) != frame_id or tb.tb_frame.f_code is not code \
            or tb.tb_lasti != lasti:
        return None
    return error.with_traceback(e.__traceback__)


def api_boundary(f: F) -> F:
    """Wrap a public entry point so that exceptions leaving it carry a filtered traceback."""

    @functools.wraps(f)
    def boundary(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except Exception as e:
            restored = _restored(e) if _PENDING.store is not None else None
            if restored is not None:
                if filtering_enabled():
                    filter_exception(restored)
                raise restored from None
            if filtering_enabled():
                filter_exception(e)
            raise

    return boundary  # type: ignore[return-value]
