"""DP-SGD (Abadi et al. 2016): clip each example's gradient to norm ``C``, add Gaussian
noise of standard deviation ``sigma * C`` to the sum, and let any optimizer take the
step; (epsilon, delta) is tracked by the ``dp-accounting`` package's RDP accountant.

The per-example norms come from ghost clipping (``pycograd.privacy.ghost``), so a step
costs about a plain step in time and memory rather than ``B`` copies of the gradients.
Each private gradient records one Poisson-subsampled Gaussian event with sampling rate
``q`` (``batch / dataset_size``); ``dp_train`` samples its batches that way (each example
joins each batch independently with probability ``q``), so the accounting is exact for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pycograd import random
from pycograd.core.errors import MissingDependencyError
from pycograd.core.pytree import tree_flatten, tree_unflatten
from pycograd.optim.optimizers import SGD
from pycograd.privacy.ghost import PrivacyError, _functional, ghost_pass

ORDERS = (*range(2, 65), 80, 96, 128, 256, 512)
"""RDP orders at which the accountant evaluates the subsampled Gaussian: integers, where
its RDP is computed exactly (fractional orders need a series that may not converge)."""


def _rdp() -> Any:
    try:
        from dp_accounting import rdp
    except ImportError as e:  # pragma: no cover - the dp extra is part of the test extra
        raise MissingDependencyError("privacy accounting needs the dp-accounting package: "
                          "pip install 'pycograd[dp]'") from e
    return rdp


def gaussian_event(sampling_rate: float, noise_multiplier: float) -> Any:
    """The ``dp_accounting`` event of one DP-SGD step."""
    import dp_accounting

    gauss = dp_accounting.GaussianDpEvent(noise_multiplier)
    return gauss if sampling_rate >= 1.0 else dp_accounting.PoissonSampledDpEvent(
        sampling_rate, gauss)


class DPSGD:
    """Differentially private gradients and steps around any optimizer.

    ``grad(objective, weights, *batch)`` returns ``(mean loss, noisy clipped gradient)``:
    ``(sum_i clip_C(g_i) + N(0, (noise_multiplier * C)^2 I)) / denominator`` with the
    noise drawn from ``key`` folded with the step number (``denominator`` is the batch
    size, or the expected one under Poisson sampling), and records the privacy spent.
    ``step(weights, grads)`` is the wrapped optimizer's step. ``epsilon(delta)`` is the
    spend so far, from ``dp_accounting``'s ``RdpAccountant``.

    The objective returns one loss per example (see ``per_sample_grad_norms``).

    >>> import numpy as np, pycograd as pg
    >>> w = {"W": np.zeros((4, 3))}
    >>> f = lambda w, x, y: pg.cross_entropy(x @ w["W"], y, reduction="none")
    >>> dp = pg.DPSGD(0.1, clip_norm=1.0, noise_multiplier=1.1, dataset_size=1000)
    >>> loss, g = dp.grad(f, w, np.ones((8, 4)), np.zeros(8, int))
    >>> w = dp.step(w, g)
    >>> round(dp.epsilon(1e-5), 3) > 0
    True
    """

    def __init__(self, optimizer_or_lr: Any, clip_norm: float, noise_multiplier: float,
                 dataset_size: int | None = None, key: Any = 0,
                 orders: Sequence[float] = ORDERS):
        if clip_norm <= 0 or noise_multiplier < 0:
            raise PrivacyError(f"DPSGD: clip_norm must be positive and noise_multiplier "
                               f"non-negative, got {clip_norm} and {noise_multiplier}")
        self.optimizer = optimizer_or_lr if callable(getattr(optimizer_or_lr, "step", None)) \
            else SGD(optimizer_or_lr)
        self.clip_norm = float(clip_norm)
        self.noise_multiplier = float(noise_multiplier)
        self.dataset_size = dataset_size
        base = random.fold_in(key, "DPSGD noise")
        self._noise = _NoiseStream((int(base[0]) << 32) | int(base[1]))
        self.orders = tuple(orders)
        self.steps = 0
        self._events: dict[float, int] = {}

    def grad(self, objective: Callable, weights: Any, *batch: Any,
             sampling_rate: float | None = None,
             denominator: float | None = None) -> tuple[float, Any]:
        """``(mean loss, private gradient)`` for one batch; records one event."""
        f, values = _functional(objective, weights)
        n = int(np.shape(batch[0])[0]) if batch and np.ndim(batch[0]) else 0
        if n:
            res = ghost_pass(f, values, batch)
            scale = self.clip_norm / np.maximum(res.norms, self.clip_norm)
            loss = float(np.mean(res.losses))
            total = res.clipped_sum(scale, release=True)
            res = None  # what the pass kept is not needed for the noise
        else:  # an empty Poisson sample: the step is noise alone
            total, loss = _zeros_like(values), float("nan")
        if sampling_rate is None:
            sampling_rate = min(1.0, n / self.dataset_size) if self.dataset_size else 1.0
        denom = float(denominator if denominator is not None else max(n, 1))
        leaves, td = tree_flatten(total)
        std = self.noise_multiplier * self.clip_norm
        sizes = [0 if g is None else int(np.size(g)) for g in leaves]
        z = self._noise.draw(self.steps, sum(sizes)) if std else None
        if z is not None:
            z *= std
        noisy, at = [], 0
        for g, size in zip(leaves, sizes):
            if g is None:
                noisy.append(None)
                continue
            if z is not None:  # one draw for every leaf: the stream reads as leaf by leaf
                g = g + z[at:at + size].reshape(np.shape(g))
                at += size
                g /= denom
            else:
                g = g / denom
            noisy.append(g)
        self._events[sampling_rate] = self._events.get(sampling_rate, 0) + 1
        self.steps += 1
        return loss, tree_unflatten(td, noisy)

    def step(self, weights: Any, grads: Any) -> Any:
        """The wrapped optimizer's step (in place for a ParamDict; returns the weights)."""
        return self.optimizer.step(weights, grads)

    def accountant(self) -> Any:
        """A ``dp_accounting`` ``RdpAccountant`` holding every step taken so far."""
        acc = _rdp().RdpAccountant(list(self.orders))
        for q, count in self._events.items():
            acc.compose(gaussian_event(q, self.noise_multiplier), count)
        return acc

    def epsilon(self, delta: float) -> float:
        """The epsilon spent so far at ``delta`` (inf with no noise)."""
        if not self._events:
            return 0.0
        if self.noise_multiplier == 0:
            return float("inf")
        return float(self.accountant().get_epsilon(delta))


class _NoiseStream:
    """numpy's Philox generator under the 128-bit key ``(DPSGD key, step)``: every step's
    noise is reproducible from the ``DPSGD`` key, each step draws from its own stream, and
    the draws are fast C (``pycograd.random.normal`` cost more than the gradient itself).
    Neither is a cryptographically secure source, as with Opacus outside ``secure_mode``.
    One generator is rekeyed per step: setting its state costs a fifth of building one
    (whose seed sequence reads OS entropy that the key then overrides)."""

    def __init__(self, key: int):
        self.key = key
        self.gen = np.random.Generator(np.random.Philox(key=key << 64))

    def draw(self, step: int, n: int) -> np.ndarray:
        """``n`` standard normals from the stream of ``step``, from its start."""
        k = (self.key << 64) | step
        self.gen.bit_generator.state = {
            "bit_generator": "Philox",
            "state": {"counter": np.zeros(4, np.uint64),
                      "key": np.array([k & _U64, (k >> 64) & _U64], np.uint64)},
            "buffer": np.zeros(4, np.uint64), "buffer_pos": 4, "has_uint32": 0,
            "uinteger": 0}
        return self.gen.standard_normal(n)


_U64 = (1 << 64) - 1


def _zeros_like(values: Any) -> Any:
    leaves, td = tree_flatten(values)
    return tree_unflatten(td, [np.zeros_like(x) if np.result_type(x).kind == "f" else None
                               for x in leaves])


@dataclass(frozen=True)
class DPTrainResult:
    """What ``dp_train`` reports: the mean loss of the first and last batch, the privacy
    spent (``epsilon`` at ``delta``), the number of steps taken and the trained weights."""

    first_loss: float
    last_loss: float
    epsilon: float
    delta: float
    steps: int
    weights: Any = None


def dp_train(weights: Any, objective: Callable, *data: Any, steps: int,
             optimizer_or_lr: Any = 0.1, clip_norm: float = 1.0,
             noise_multiplier: float = 1.1, batch_size: int = 64, delta: float | None = None,
             key: Any = 0, callbacks: Sequence[Callable] = ()) -> DPTrainResult:
    """Train ``weights`` privately for ``steps`` DP-SGD steps over ``data``.

    Each step draws a Poisson sample (each example with probability ``batch_size / N``),
    computes the ghost-clipped, noised gradient (``DPSGD``) and takes the optimizer's step
    (an optimizer, or a float learning rate meaning ``SGD``). ``delta`` defaults to
    ``1 / N**1.1``. ``weights`` is a ParamDict (updated in place; ``objective(*batch)``
    reads it by name) or a pytree (``objective(weights, *batch)``; the result's
    ``weights`` holds the trained one). Each callback is called as ``callback(step, loss)``
    (as in ``train``); returning True stops training. The accountant runs once, at the end
    (it takes a good fraction of a second).

    Examples:
        >>> import numpy as np
        >>> from pycograd import dp_train
        >>> rng = np.random.default_rng(0)
        >>> X = rng.standard_normal((200, 3)); y = X @ np.array([1.0, -2.0, 0.5])
        >>> loss = lambda w, X, y: (X @ w["w"] - y) ** 2          # one loss per example
        >>> res = dp_train({"w": np.zeros(3)}, loss, X, y, steps=20, optimizer_or_lr=0.05,
        ...                batch_size=50, delta=1e-5)
        >>> bool(res.epsilon > 0), res.weights["w"].shape
        (True, (3,))
    """
    if not data:
        raise PrivacyError("dp_train needs the training data arrays")
    n = int(np.shape(data[0])[0])
    if any(np.shape(d)[0] != n for d in data):
        raise PrivacyError(f"dp_train: the data arrays disagree on the number of examples: "
                           f"{[np.shape(d) for d in data]}")
    q = min(1.0, batch_size / n)
    delta = float(n ** -1.1) if delta is None else float(delta)
    dp = DPSGD(optimizer_or_lr, clip_norm, noise_multiplier, dataset_size=n,
               key=random.fold_in(key, "noise"))
    sample_key = random.fold_in(key, "sample")
    first = last = float("nan")
    for step in range(steps):
        mask = random.uniform(random.fold_in(sample_key, step), (n,)) < q
        batch = [d[mask] for d in data]
        loss, grads = dp.grad(objective, weights, *batch, sampling_rate=q,
                              denominator=q * n)
        weights = dp.step(weights, grads)
        if step == 0:
            first = loss
        last = loss if np.isfinite(loss) else last
        if any(cb(step, loss) is True for cb in callbacks):
            break
    return DPTrainResult(first, last, dp.epsilon(delta), delta, dp.steps, weights)
