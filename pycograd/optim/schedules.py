"""Learning-rate schedules: callables ``step -> lr``, where ``step`` is the 0-based index of
the update about to be made. Any such callable works wherever an optimizer takes ``lr``;
these are the common shapes, composable through ``linear_warmup(..., then=...)``."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

from pycograd.core.errors import ArgumentError

Schedule = Callable[[int], float]


def constant(lr: float) -> Schedule:
    return lambda step: lr


def cosine_decay(lr: float, total_steps: int, final: float = 0.0) -> Schedule:
    """Half a cosine from ``lr`` at step 0 to ``final`` at ``total_steps``, flat after.

    Examples:
        >>> from pycograd import Adam, cosine_decay
        >>> schedule = cosine_decay(0.1, 100)
        >>> schedule(0), round(schedule(50), 6), schedule(100), schedule(150)
        (0.1, 0.05, 0.0, 0.0)
        >>> opt = Adam(lr=schedule)                       # any optimizer takes a schedule
    """
    _check_positive("cosine_decay", "total_steps", total_steps)

    def schedule(step: int) -> float:
        t = min(step, total_steps) / total_steps
        return final + (lr - final) * 0.5 * (1.0 + math.cos(math.pi * t))

    return schedule


def linear_warmup(lr: float, warmup_steps: int, then: Schedule | float | None = None) -> Schedule:
    """Ramp linearly to ``lr`` over ``warmup_steps`` (step ``i`` gets ``lr * (i + 1) /
    warmup_steps``, so no step is wasted at 0), then follow ``then``: a constant (default
    ``lr``) or a schedule, which is called with steps counted from the end of the warmup.

    Examples:
        >>> from pycograd import cosine_decay, linear_warmup
        >>> schedule = linear_warmup(0.1, 10, then=cosine_decay(0.1, 90))
        >>> round(schedule(0), 6), round(schedule(9), 6), round(schedule(10), 6)
        (0.01, 0.1, 0.1)
    """
    _check_positive("linear_warmup", "warmup_steps", warmup_steps, zero_ok=True)
    after = constant(lr if then is None else then) if not callable(then) else then

    def schedule(step: int) -> float:
        if step < warmup_steps:
            return lr * (step + 1) / warmup_steps
        return after(step - warmup_steps)

    return schedule


def exponential_decay(lr: float, rate: float, steps: int, staircase: bool = False) -> Schedule:
    """``lr * rate ** (step / steps)``: multiplied by ``rate`` every ``steps`` steps
    (smoothly, or in jumps with ``staircase=True``).

    Examples:
        >>> from pycograd import exponential_decay
        >>> schedule = exponential_decay(0.1, 0.5, 10)
        >>> round(schedule(10), 6), round(schedule(5), 4)
        (0.05, 0.0707)
        >>> round(exponential_decay(0.1, 0.5, 10, staircase=True)(5), 6)
        0.1
    """
    _check_positive("exponential_decay", "steps", steps)

    def schedule(step: int) -> float:
        return lr * rate ** ((step // steps) if staircase else step / steps)

    return schedule


def step_decay(lr: float, drop: float, every: int) -> Schedule:
    """``lr`` multiplied by ``drop`` once every ``every`` steps.

    Examples:
        >>> from pycograd import step_decay
        >>> schedule = step_decay(0.1, 0.1, 30)
        >>> [round(schedule(s), 6) for s in (0, 29, 30, 60)]
        [0.1, 0.1, 0.01, 0.001]
    """
    _check_positive("step_decay", "every", every)
    return exponential_decay(lr, drop, every, staircase=True)


def _check_positive(fn: str, name: str, value: int, zero_ok: bool = False) -> None:
    """Step counts (most of them divide the step number), checked when the schedule is
    made rather than as a ZeroDivisionError or a wrong rate at its first step."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and (
        value >= 0 if zero_ok else value > 0)
    if not ok:
        what = "a non-negative" if zero_ok else "a positive"
        raise ArgumentError(f"{fn}: {name} must be {what} number of steps, got {value!r}")
