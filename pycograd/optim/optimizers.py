"""First-order optimizers: SGD (momentum, Nesterov), Adam, AdamW, RMSprop, Adagrad.

One ``step(params, grads)`` serves two kinds of parameters:

* **A plain pytree** of arrays (dict / list / tuple / namedtuple), functionally:
  ``w = Adam(lr=1e-3).step(w, g)`` returns a new pytree of the same structure and leaves
  ``w`` untouched. ``g`` mirrors ``w``; a ``None`` in ``g`` (a leaf or a whole subtree)
  skips those leaves. Optimizer state is keyed by each leaf's path (``$['w']``, see
  ``tree_paths``), so later calls must pass trees of the same structure.
* **A parameter container** (ParamDict), in place. The protocol: ``params.trainable()``
  returns a dict ``name -> ndarray`` of the entries an optimizer may change, and
  ``params.assign(name, new_value)`` stores a new value for one of them. ``grads`` is a
  dict ``name -> array or None``; ``None`` (frozen entries) and absent names are skipped,
  a non-``None`` gradient for a name that is not trainable is an error unless the container
  has ``canonical(name)`` mapping it (a tied alias) to a trainable name, whose update it
  then shares. State is keyed by name. ``step`` returns ``params`` itself.

``lr`` is a float or a schedule ``step -> lr`` (see ``schedules``); the step passed is the
0-based count of updates made so far. ``weight_decay`` is L2 added to the gradient, except
in AdamW where it is decoupled (the weights shrink by ``lr * weight_decay`` each step).
``clip_norm`` clips the gradients' global norm before the update.

Complex parameters follow pycograd's convention (README: a descent step is
``z - lr * conj(grad)``): every optimizer steps along ``conj(grad)``, and the second moments
of Adam, AdamW, RMSprop and Adagrad accumulate ``|g|**2`` (real), as optax does. (PyTorch
instead views a complex parameter as a pair of reals, with one second moment per real and
imaginary part.)

State is a flat dict of arrays (``state_dict()`` / ``load_state_dict()``), so it saves with
``np.savez`` and loads with ``allow_pickle=False``; ``save_checkpoint`` stores it alongside
the parameters in one file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from pycograd.backends.arrays.placed import DeviceArray
from pycograd.core.dtypes import read_npz, to_npz
from pycograd.core.errors import ArgumentError, GradientMismatchError, MissingKeyError
from pycograd.core.pytree import DictKeys, _node, tree_flatten, tree_paths, tree_unflatten
from pycograd.distributed.files import savez
from pycograd.optim.clip import clip_grad_norm

LR = float | Callable[[int], float]


def is_param_container(params: Any) -> bool:
    """Whether ``params`` follows the in-place protocol (``trainable()`` and ``assign``)."""
    return callable(getattr(params, "trainable", None)) and callable(
        getattr(params, "assign", None))


def _flatten_like(treedef: Any, tree: Any, out: list, path: str = "") -> list:
    """Append the leaves of ``tree`` laid out like ``treedef`` to ``out``; a ``None`` where
    ``treedef`` has a leaf or a subtree gives ``None`` for each of its leaves."""
    if tree is None:
        out.extend([None] * treedef.num_leaves)
    elif treedef.kind is None:
        out.append(tree)
    else:
        rules = _node(tree)
        children, aux = rules[0](tree) if rules is not None else (None, None)
        if (children is None or type(tree) is not treedef.kind
                or len(children) != len(treedef.children)):
            raise GradientMismatchError(
                f"gradients do not mirror the parameters{path and ' at ' + path}: expected a "
                f"{treedef.kind.__name__} with {len(treedef.children)} entries, got "
                f"{type(tree).__name__}{_key_note(treedef.aux[0], aux)}")
        if isinstance(aux, DictKeys) and aux != treedef.aux[0]:
            raise GradientMismatchError(
                f"gradients do not mirror the parameters{path and ' at ' + path}"
                f"{_key_note(treedef.aux[0], aux)}")
        names = aux if isinstance(aux, DictKeys) else range(len(children))
        for k, c_td, c in zip(names, treedef.children, children):
            _flatten_like(c_td, c, out, f"{path}[{k!r}]")
    return out


def _key_note(keys: Any, given: Any) -> str:
    if not isinstance(keys, DictKeys) or not isinstance(given, DictKeys):
        return ""
    missing, extra = keys.missing_extra(given)
    return f": missing gradients for {missing}, gradients for unknown keys {extra}"


def _by_trainable_name(params: Any, current: dict, grads: Any) -> dict[str, Any]:
    """The non-None gradients keyed by the trainable names. A name outside ``current`` is
    accepted when ``params.canonical(name)`` (a tied alias) maps it into ``current``."""
    canonical = getattr(params, "canonical", None)
    picked: dict[str, Any] = {}
    unknown = []
    for name, g in grads.items():
        if g is None:
            continue
        target = name
        if name not in current and canonical is not None:
            try:
                target = canonical(name)
            except KeyError:
                pass
        if target not in current:
            unknown.append(name)
        elif target == name or target not in picked:
            picked[target] = g
    if unknown:
        raise GradientMismatchError(
            f"gradients for entries that are not trainable: {unknown} (the trainable "
            f"names are {list(current)}; a name left out is skipped)")
    return picked


def abs2(g: np.ndarray) -> np.ndarray:
    """``|g|**2`` elementwise, real also for complex ``g`` (where ``g * g`` is not)."""
    if np.iscomplexobj(g):
        return np.real(g) ** 2 + np.imag(g) ** 2
    return g * g


def descent_direction(g: Any, w: np.ndarray) -> np.ndarray:
    """The gradient as the direction a descent step subtracts: ``conj(g)`` for a complex
    parameter (pycograd's gradient is ``df/dx - i df/dy``), ``g`` itself otherwise."""
    g = np.asarray(g, dtype=w.dtype)
    return np.conj(g) if np.iscomplexobj(w) else g


class Optimizer:
    """Base class: holds ``lr``, the step count and per-parameter slots (moment arrays).
    Subclasses name their ``slots`` and write ``update`` for one array; slots listed in
    ``real_slots`` hold ``|g|**2`` sums, which are real also for complex parameters."""

    slots: tuple[str, ...] = ()
    real_slots: tuple[str, ...] = ()
    coupled_weight_decay = True

    def __init__(self, lr: LR, weight_decay: float = 0.0, clip_norm: float | None = None):
        self.lr = lr
        self.weight_decay = weight_decay
        self.clip_norm = clip_norm
        self.steps = 0
        self.state: dict[str, dict[str, np.ndarray]] = {}

    def current_lr(self) -> float:
        """The learning rate the next update will use."""
        return float(self.lr(self.steps)) if callable(self.lr) else float(self.lr)

    def init_slot(self, slot: str, w: np.ndarray) -> np.ndarray:
        dtype = self.slot_dtype(slot, w)  # *_like keeps a device weight's slot on its device
        return np.zeros_like(w) if dtype is w.dtype else np.zeros(w.shape, dtype)

    def slot_dtype(self, slot: str, w: np.ndarray) -> np.dtype:
        """The parameter's dtype, or its real counterpart for a ``real_slots`` slot."""
        if slot in self.real_slots and getattr(w.dtype, "kind", "") == "c":
            return np.finfo(w.dtype).dtype
        return w.dtype

    def update(self, w: np.ndarray, g: np.ndarray, s: dict[str, np.ndarray], lr: float,
               t: int) -> np.ndarray:
        """The new value of ``w`` given its gradient ``g``; updates its slots ``s`` in place.
        ``t`` is the 1-based number of this update."""
        raise NotImplementedError

    def step(self, params: Any, grads: Any) -> Any:
        """Apply one update; see the module docstring for the two forms of ``params``."""
        if is_param_container(params):
            current = params.trainable()
            picked = _by_trainable_name(params, current, grads)
            names = [n for n in current if n in picked]
            new = self._apply([(n, current[n], picked[n]) for n in names])
            for n, v in zip(names, new):
                params.assign(n, v)
            return params
        leaves, treedef = tree_flatten(params)
        g_leaves = _flatten_like(treedef, grads, [])
        items = list(zip(tree_paths(params), leaves, g_leaves))
        live = [it for it in items if it[2] is not None]
        new = dict(zip((k for k, _, _ in live), self._apply(live)))
        return tree_unflatten(treedef, [new.get(k, w) for k, w, _ in items])

    def _apply(self, items: list[tuple[str, Any, Any]]) -> list[np.ndarray]:
        if self.clip_norm is not None:
            clipped, _ = clip_grad_norm([g for _, _, g in items], self.clip_norm)
            items = [(k, w, g) for (k, w, _), g in zip(items, clipped)]
        lr = self.current_lr()
        self.steps += 1
        out = []
        for k, w, g in items:
            on_device = isinstance(w, DeviceArray)  # computed there; never converted
            if on_device:
                g = g if g.dtype == w.dtype else g.astype(w.dtype)
            else:
                w = np.asarray(w)
                g = descent_direction(g, w)
            if g.shape != w.shape:
                raise ArgumentError(f"gradient for {k!r} has shape {g.shape}, parameter {w.shape}")
            s = self.state.get(k)
            if s is None:
                s = self.state[k] = {name: self.init_slot(name, w) for name in self.slots}
            elif any(v.shape != w.shape for v in s.values()):
                raise ArgumentError(f"optimizer state for {k!r} does not match a parameter of "
                                    f"shape {w.shape}: was it created for other parameters?")
            if self.weight_decay and self.coupled_weight_decay:
                g = g + self.weight_decay * w
            new = self.update(w, g, s, lr, self.steps)
            out.append(new if on_device else np.asarray(new, dtype=w.dtype))
        return out

    def state_dict(self) -> dict[str, np.ndarray]:
        """A flat dict of arrays: ``step``, ``optimizer`` (the class name) and one
        ``"slot/key"`` entry per moment array."""
        out = {"step": np.asarray(self.steps, np.int64),
               "optimizer": np.asarray(type(self).__name__)}
        for k, slots in self.state.items():
            for name, v in slots.items():
                out[f"{name}/{k}"] = v
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        kind = str(np.asarray(state.get("optimizer", type(self).__name__)))
        if kind != type(self).__name__:
            raise ArgumentError(f"state was saved by {kind}, cannot load it into "
                                f"{type(self).__name__}")
        if "step" not in state:
            raise MissingKeyError("optimizer state has no 'step' entry")
        slots: dict[str, dict[str, np.ndarray]] = {}
        for name, v in state.items():
            if name in ("step", "optimizer"):
                continue
            slot, _, k = name.partition("/")
            if slot not in self.slots or not k:
                raise MissingKeyError(f"unexpected entry {name!r} in {type(self).__name__} state "
                                      f"(slots are {self.slots})")
            slots.setdefault(k, {})[slot] = np.array(v)
        for k, s in slots.items():
            if set(s) != set(self.slots):
                raise MissingKeyError(f"state for {k!r} has slots {sorted(s)}, expected "
                                      f"{sorted(self.slots)}")
        self.steps = int(np.asarray(state["step"]))
        self.state = slots

    def save(self, path: str | os.PathLike) -> None:
        """Write the state to an ``.npz`` file (no pickle; under data parallel, from rank 0
        only)."""
        savez(path, **to_npz(self.state_dict()))

    def load(self, path: str | os.PathLike) -> None:
        """Restore the state written by ``save``."""
        self.load_state_dict(read_npz(path, "optimizer state"))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.lr!r}, step={self.steps})"


class SGD(Optimizer):
    """``w -= lr * g``; with momentum, ``buf = momentum * buf + g`` and the step uses ``buf``
    (or ``g + momentum * buf`` with Nesterov), as in PyTorch with no dampening.

    Examples:
        >>> import numpy as np
        >>> from pycograd import SGD, grad
        >>> params, opt = {"w": np.array([3.0, -4.0])}, SGD(lr=0.1)
        >>> for _ in range(200):
        ...     (g,) = grad(lambda p: np.sum(p["w"] ** 2))(params)
        ...     params = opt.step(params, g)             # a dict in, a new dict out
        >>> bool(np.all(np.abs(params["w"]) < 1.0))
        True
    """

    def __init__(self, lr: LR, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, clip_norm: float | None = None):
        super().__init__(lr, weight_decay, clip_norm)
        if nesterov and momentum <= 0:
            raise ArgumentError("SGD: nesterov=True needs momentum > 0")
        self.momentum, self.nesterov = momentum, nesterov
        self.slots = ("buf",) if momentum else ()

    def update(self, w, g, s, lr, t):
        if self.momentum:
            s["buf"] = self.momentum * s["buf"] + g
            g = g + self.momentum * s["buf"] if self.nesterov else s["buf"]
        return w - lr * g


class Momentum(SGD):
    """SGD with momentum 0.9 by default.

    Examples:
        >>> import numpy as np
        >>> from pycograd import Momentum, grad
        >>> params, opt = {"w": np.array([3.0, -4.0])}, Momentum(lr=0.05)
        >>> for _ in range(200):
        ...     (g,) = grad(lambda p: np.sum(p["w"] ** 2))(params)
        ...     params = opt.step(params, g)             # a dict in, a new dict out
        >>> bool(np.all(np.abs(params["w"]) < 1.0))
        True
    """

    def __init__(self, lr: LR, momentum: float = 0.9, nesterov: bool = False,
                 weight_decay: float = 0.0, clip_norm: float | None = None):
        super().__init__(lr, momentum, nesterov, weight_decay, clip_norm)


class Adam(Optimizer):
    """Adam with bias correction; ``weight_decay`` is L2 added to the gradient.

    Examples:
        >>> import numpy as np
        >>> from pycograd import Adam, grad
        >>> params, opt = {"w": np.array([3.0, -4.0])}, Adam(lr=0.1)
        >>> for _ in range(200):
        ...     (g,) = grad(lambda p: np.sum(p["w"] ** 2))(params)
        ...     params = opt.step(params, g)             # a dict in, a new dict out
        >>> bool(np.all(np.abs(params["w"]) < 1.0))
        True
    """

    slots = ("m", "v")
    real_slots = ("v",)

    def __init__(self, lr: LR = 1e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 0.0, clip_norm: float | None = None):
        super().__init__(lr, weight_decay, clip_norm)
        self.b1, self.b2, self.eps = b1, b2, eps

    def update(self, w, g, s, lr, t):
        s["m"] = self.b1 * s["m"] + (1 - self.b1) * g
        s["v"] = self.b2 * s["v"] + (1 - self.b2) * abs2(g)
        m_hat = s["m"] / (1 - self.b1 ** t)
        v_hat = s["v"] / (1 - self.b2 ** t)
        return w - lr * m_hat / (np.sqrt(v_hat) + self.eps)


class AdamW(Adam):
    """Adam with decoupled weight decay: ``w *= 1 - lr * weight_decay`` before the Adam
    step, so decay does not pass through the adaptive scaling (Loshchilov & Hutter).

    Examples:
        >>> import numpy as np
        >>> from pycograd import AdamW, grad
        >>> params, opt = {"w": np.array([3.0, -4.0])}, AdamW(lr=0.1, weight_decay=0.01)
        >>> for _ in range(200):
        ...     (g,) = grad(lambda p: np.sum(p["w"] ** 2))(params)
        ...     params = opt.step(params, g)             # a dict in, a new dict out
        >>> bool(np.all(np.abs(params["w"]) < 1.0))
        True
    """

    coupled_weight_decay = False

    def __init__(self, lr: LR = 1e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 1e-2, clip_norm: float | None = None):
        super().__init__(lr, b1, b2, eps, weight_decay, clip_norm)

    def update(self, w, g, s, lr, t):
        return super().update(w * (1 - lr * self.weight_decay), g, s, lr, t)


class RMSprop(Optimizer):
    """RMSprop as in PyTorch: ``v = alpha * v + (1 - alpha) * g**2``, step
    ``g / (sqrt(v) + eps)``; ``centered`` subtracts the squared running mean of ``g`` from
    ``v``; ``momentum`` accumulates the scaled steps.

    Examples:
        >>> import numpy as np
        >>> from pycograd import RMSprop, grad
        >>> params, opt = {"w": np.array([3.0, -4.0])}, RMSprop(lr=0.05)
        >>> for _ in range(200):
        ...     (g,) = grad(lambda p: np.sum(p["w"] ** 2))(params)
        ...     params = opt.step(params, g)             # a dict in, a new dict out
        >>> bool(np.all(np.abs(params["w"]) < 1.0))
        True
    """

    def __init__(self, lr: LR = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 momentum: float = 0.0, centered: bool = False, weight_decay: float = 0.0,
                 clip_norm: float | None = None):
        super().__init__(lr, weight_decay, clip_norm)
        self.alpha, self.eps, self.momentum, self.centered = alpha, eps, momentum, centered
        self.real_slots = ("v",)
        self.slots = ("v",) + (("g_avg",) if centered else ()) + (("buf",) if momentum else ())

    def update(self, w, g, s, lr, t):
        s["v"] = self.alpha * s["v"] + (1 - self.alpha) * abs2(g)
        var = s["v"]
        if self.centered:
            s["g_avg"] = self.alpha * s["g_avg"] + (1 - self.alpha) * g
            var = var - abs2(s["g_avg"])
        step = g / (np.sqrt(var) + self.eps)
        if self.momentum:
            s["buf"] = self.momentum * s["buf"] + step
            step = s["buf"]
        return w - lr * step


class Adagrad(Optimizer):
    """Adagrad: ``acc += g**2``, step ``g / (sqrt(acc) + eps)``.

    Examples:
        >>> import numpy as np
        >>> from pycograd import Adagrad, grad
        >>> params, opt = {"w": np.array([3.0, -4.0])}, Adagrad(lr=0.5)
        >>> for _ in range(200):
        ...     (g,) = grad(lambda p: np.sum(p["w"] ** 2))(params)
        ...     params = opt.step(params, g)             # a dict in, a new dict out
        >>> bool(np.all(np.abs(params["w"]) < 1.0))
        True
    """

    slots = ("acc",)
    real_slots = ("acc",)

    def __init__(self, lr: LR = 1e-2, eps: float = 1e-10, initial_accumulator_value: float = 0.0,
                 weight_decay: float = 0.0, clip_norm: float | None = None):
        super().__init__(lr, weight_decay, clip_norm)
        self.eps, self.initial = eps, initial_accumulator_value

    def init_slot(self, slot, w):
        dtype = self.slot_dtype(slot, w)
        return (np.full_like(w, self.initial) if dtype is w.dtype
                else np.full(w.shape, self.initial, dtype))

    def update(self, w, g, s, lr, t):
        s["acc"] = s["acc"] + abs2(g)
        return w - lr * g / (np.sqrt(s["acc"]) + self.eps)
