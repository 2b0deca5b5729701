"""Entry markers: ``frozen[...]``, ``tied(...)`` / ``tied[...]`` and ``buffer[...]``.

A marker only labels a value for ``ParamDict``; it does no work itself, so the same markers
serve the plain-Python constructor and the DSL's ``params{ ... }`` block.
"""

from __future__ import annotations

from typing import Any, NamedTuple

KINDS = ("param", "frozen", "buffer")


class Marked(NamedTuple):
    """A value with the kind it should have in a ``ParamDict``. For ``tied`` the value is
    the target entry's name (a dotted string) or the very array object it holds."""

    kind: str
    value: Any


class _Marker:
    """``marker[x]`` and ``marker(x)`` both wrap ``x``."""

    __slots__ = ("kind", "doc")

    def __init__(self, kind: str, doc: str):
        self.kind = kind
        self.doc = doc

    def __getitem__(self, value: Any) -> Marked:
        return Marked(self.kind, value)

    def __call__(self, value: Any) -> Marked:
        return Marked(self.kind, value)

    def __repr__(self) -> str:
        return f"{self.kind}[...]: {self.doc}"


class _Frozen(_Marker):
    """``frozen[x]``: a weight held fixed. Its gradient is ``None`` and no optimizer steps
    it, but the forward reads it by bare name like any other weight.

    Examples:
        >>> import numpy as np
        >>> from pycograd import ParamDict, frozen
        >>> weights = ParamDict(w=np.ones(2), scale=frozen[np.array(3.0)])
        >>> weights.bind_globals(globals())
        >>> value, grads = weights.grad(lambda: np.sum(scale * w))
        >>> grads["scale"], grads["w"].tolist()
        (None, [3.0, 3.0])
    """

    __slots__ = ()


class _Buffer(_Marker):
    """``buffer[x]``: non-trainable state (running means, counters, caches). No gradient
    and never stepped, but assignable, and saved with the weights.

    Examples:
        >>> import numpy as np
        >>> from pycograd import ParamDict, buffer
        >>> weights = ParamDict(w=np.ones(2), running_mean=buffer[np.zeros(2)])
        >>> weights["running_mean"] = np.array([0.5, 0.5])        # assign new state
        >>> sorted(weights.trainable())
        ['w']
    """

    __slots__ = ()


class _Tied(_Marker):
    """``tied["name"]`` (or ``tied(array)``): another name for an existing entry. Both
    names hold one array, and its gradient is the sum of both uses (weight tying, as
    between an embedding and a language model's output layer).

    Examples:
        >>> import numpy as np
        >>> from pycograd import ParamDict, tied
        >>> weights = ParamDict(emb=np.ones((3, 2)), out=tied["emb"])
        >>> weights["out"] is weights["emb"]
        True
        >>> weights.bind_globals(globals())
        >>> value, grads = weights.grad(lambda: np.sum(emb) + 2 * np.sum(out))
        >>> grads["emb"].tolist()[0]                             # 1 + 2 from both uses
        [3.0, 3.0]
    """

    __slots__ = ()


frozen = _Frozen("frozen", "a weight held fixed: its gradient is None and it is never stepped")
buffer = _Buffer("buffer", "non-trainable state (running means, counters): no gradient, "
                           "never stepped, assignable")
tied = _Tied("tied", "another name for an existing entry (by name or by the same array): "
                     "one array, gradients summed")
