"""Which numpy functions differentiate: read off the tables, so the README cannot drift.

``python -m pycograd.numpy_api.coverage`` prints the README's "What differentiates"
section; a test checks that the README holds exactly this text.
"""

from __future__ import annotations

import numpy as np

from pycograd.core.primitive import REGISTRY
from pycograd.numpy_api.functions import HANDLED
from pycograd.numpy_api.ufuncs import PRIMS

_MODULES = (("np.linalg.", np.linalg), ("np.fft.", np.fft), ("np.", np))


def _qualified(fn: object) -> str:
    for prefix, mod in _MODULES:
        if getattr(mod, getattr(fn, "__name__", ""), None) is fn:
            return prefix + fn.__name__
    mod = getattr(fn, "__module__", "") or ""
    return f"{mod}.{getattr(fn, '__name__', fn)}"


def ufunc_names() -> tuple[list[str], list[str]]:
    """(ufuncs with a gradient, ufuncs whose results carry none)."""
    diff, flat = [], []
    for uf, prim in PRIMS.items():
        if getattr(np, uf.__name__, None) is uf:  # scipy's ufuncs are listed with scipy
            (diff if prim.differentiable else flat).append(_qualified(uf))
    return sorted(diff), sorted(flat)


def function_names() -> tuple[list[str], list[str]]:
    """(functions that differentiate, in-place writers refused with a functional fix)."""
    ok = {_qualified(f) for f, rule in HANDLED.items() if not getattr(rule, "refuses", False)}
    refused = {_qualified(f) for f, rule in HANDLED.items() if getattr(rule, "refuses", False)}
    return sorted(ok), sorted(refused)


def scipy_names() -> list[str]:
    """scipy functions that differentiate once scipy is installed (read off pycograd's own
    tables, so scipy is not imported)."""
    from pycograd.numpy_api import integrate, scipy_special, scipy_stats, signal
    from pycograd.numpy_api.linalg import SCIPY_LINALG_NAMES
    from pycograd.ops.special import SCIPY_UFUNCS

    names = {f"scipy.special.{n}" for n in (*SCIPY_UFUNCS, *scipy_special.NAMES)}
    names |= {f"scipy.stats.{d}.{m}" for d, ms in scipy_stats.TABLE.items() for m in ms}
    names |= {f"scipy.linalg.{n}" for n in SCIPY_LINALG_NAMES}
    names |= {f"scipy.signal.{n}" for n in signal.NAMES}
    names |= {f"scipy.integrate.{n}" for n in integrate.NAMES}
    return sorted(names)


def complex_linalg_names() -> list[str]:
    """numpy.linalg / scipy.linalg functions whose rules take complex inputs."""
    from pycograd.numpy_api.linalg import COMPLEX_OK

    return sorted(COMPLEX_OK)


def markdown() -> str:
    diff, flat = ufunc_names()
    funcs, refused = function_names()
    scipy = scipy_names()
    cplx = complex_linalg_names()
    wrap = lambda names: "\n".join(_lines(", ".join(f"`{n}`" for n in names)))  # noqa: E731
    return "\n".join([
        f"Generated from pycograd's tables. Every one of the {len(REGISTRY)} primitives "
        "behind them is in the finite-difference sweep (the coverage test fails otherwise).",
        "",
        f"**Ufuncs with a gradient ({len(diff)}):**",
        wrap(diff),
        "",
        f"**Ufuncs whose results carry no gradient ({len(flat)}):**",
        wrap(flat),
        "",
        f"**Functions ({len(funcs)}):**",
        wrap(funcs),
        "",
        f"**In-place writers, refused with the functional spelling to use ({len(refused)}):**",
        wrap(refused),
        "",
        f"**scipy, when installed ({len(scipy)}):**",
        wrap(scipy),
        "",
        f"**Linear algebra with complex inputs ({len(cplx)}):**",
        wrap(cplx),
    ])


def _lines(text: str, width: int = 90) -> list[str]:
    out, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return out + ([line] if line else [])


if __name__ == "__main__":
    print(markdown())
