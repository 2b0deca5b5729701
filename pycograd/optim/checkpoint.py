"""One ``.npz`` file holding parameters and optimizer state together, so a run resumes
exactly (moments and step count included). No pickle: only plain arrays are written.

Parameters are either a container (``state_dict()`` / ``load_state_dict()`` when it has
them, else the ``trainable()`` / ``assign()`` protocol of ``optimizers``) or a pytree of
arrays (stored by leaf path, ``$['w']``, so by key; loading returns a new tree shaped like
the one given).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from pycograd.core.dtypes import read_npz, to_npz
from pycograd.core.errors import ArgumentError, MissingKeyError
from pycograd.core.pytree import tree_flatten, tree_paths, tree_unflatten
from pycograd.distributed.files import savez
from pycograd.optim.optimizers import Optimizer, is_param_container

_P, _O = "params/", "optim/"


def _param_arrays(params: Any) -> dict[str, np.ndarray]:
    if callable(getattr(params, "state_dict", None)):
        return {k: np.asarray(v) for k, v in params.state_dict().items()}
    if is_param_container(params):
        return {k: np.asarray(v) for k, v in params.trainable().items()}
    return dict(zip(tree_paths(params), map(np.asarray, tree_flatten(params)[0])))


def save_checkpoint(path: str | os.PathLike, params: Any,
                    optimizer: Optimizer | None = None) -> None:
    """Write ``params`` (and ``optimizer``'s state, if given) to ``path``: an ``.npz`` without
    pickle, so a checkpoint cannot run code when it is loaded. Under data parallel only rank
    0 writes. ``params`` is a ``ParamDict``
    or a pytree of arrays; the optimizer's state is its moments and step count.

    Examples:
        >>> import os, tempfile
        >>> import numpy as np
        >>> from pycograd import Adam, load_checkpoint, save_checkpoint
        >>> params, opt = {"w": np.array([1.0, 2.0])}, Adam(0.1)
        >>> params = opt.step(params, {"w": np.array([0.5, 0.5])})
        >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.npz")
        >>> save_checkpoint(path, params, opt)
        >>> opt2 = Adam(0.1)
        >>> restored = load_checkpoint(path, {"w": np.zeros(2)}, opt2)
        >>> bool(np.array_equal(restored["w"], params["w"])), opt2.steps
        (True, 1)
    """
    arrays = {_P + k: v for k, v in _param_arrays(params).items()}
    if optimizer is not None:
        arrays.update({_O + k: v for k, v in optimizer.state_dict().items()})
    savez(path, **to_npz(arrays))


def load_checkpoint(path: str | os.PathLike, params: Any,
                    optimizer: Optimizer | None = None) -> Any:
    """Restore what ``save_checkpoint`` wrote into ``params`` (and ``optimizer``). Names,
    shapes and dtypes must match the parameters given; returns the parameters (the same
    container, or a new pytree).

    Examples:
        >>> import os, tempfile
        >>> import numpy as np
        >>> from pycograd import load_checkpoint, save_checkpoint
        >>> path = os.path.join(tempfile.mkdtemp(), "w.npz")
        >>> save_checkpoint(path, {"w": np.array([1.0, 2.0])})
        >>> load_checkpoint(path, {"w": np.zeros(2)})["w"].tolist()
        [1.0, 2.0]
    """
    files = read_npz(path, "checkpoint")
    saved = {k[len(_P):]: v for k, v in files.items() if k.startswith(_P)}
    opt_state = {k[len(_O):]: v for k, v in files.items() if k.startswith(_O)}
    expected = _param_arrays(params)
    missing, extra = sorted(set(expected) - set(saved)), sorted(set(saved) - set(expected))
    if missing or extra:
        raise MissingKeyError(f"checkpoint {os.fspath(path)!r} does not match the parameters: "
                              f"missing {missing}, unexpected {extra}")
    for k, v in expected.items():
        if saved[k].shape != v.shape or saved[k].dtype != v.dtype:
            raise ArgumentError(f"checkpoint entry {k!r} is {saved[k].dtype}{list(saved[k].shape)},"
                                f" the parameter is {v.dtype}{list(v.shape)}")
    if optimizer is not None:
        if not opt_state:
            raise MissingKeyError(f"checkpoint {os.fspath(path)!r} holds no optimizer state")
        optimizer.load_state_dict(opt_state)
    if callable(getattr(params, "load_state_dict", None)):
        params.load_state_dict(saved)
        return params
    if is_param_container(params):
        for k, v in saved.items():
            params.assign(k, v)
        return params
    treedef = tree_flatten(params)[1]
    return tree_unflatten(treedef, [saved[p] for p in tree_paths(params)])
