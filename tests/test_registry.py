"""Every registered primitive has a rule for every transform, or is excluded with a reason.

The slots checked: the VJP (reverse mode; one entry per argument, a ``PerArgument`` or a
``Joint``, or ``differentiable=False``), ``jvp`` (forward mode; not needed with
``differentiable=False``, whose results the JVP interpreter passes through untouched),
``batch`` (vmap) and ``shape`` (eval_shape). A primitive gets them from its family or declares them.
"""

from __future__ import annotations

import importlib
import pkgutil

import numpy as np
import pytest

import pycograd
from pycograd.core.primitive import REGISTRY, RULE_SLOTS, Joint, PerArgument

# Subpackages that wire pycograd to the outside; primitives are declared elsewhere.
_NOT_PRIMITIVE_HOMES = ("pycograd.backends", "pycograd.dsl", "pycograd.examples")

# Primitives that are never bound: each trace handles the call itself through
# ``Trace.process_custom_vjp`` / ``process_custom_jvp`` (the tape records a node of the
# primitive, so only its VJP is used), so they need no jvp, batch or shape rule.
EXCLUDED = {
    "custom_vjp": "never bound; every trace handles custom_vjp calls in process_custom_vjp",
    "custom_jvp": "never bound; every trace handles custom_jvp calls in process_custom_jvp",
}


def _import_all() -> None:
    for info in pkgutil.walk_packages(pycograd.__path__, "pycograd."):
        if not info.name.startswith(_NOT_PRIMITIVE_HOMES):
            importlib.import_module(info.name)


_import_all()
NAMES = sorted(REGISTRY)


def _has_vjp(prim) -> bool:
    if not prim.differentiable:
        return True
    v = prim.vjps
    if isinstance(v, (PerArgument, Joint)):
        return True
    return isinstance(v, tuple) and len(v) > 0 and any(r is not None for r in v)


def test_exclusions_are_registered():
    """An exclusion for a primitive that no longer exists is stale."""
    stale = sorted(set(EXCLUDED) - set(REGISTRY))
    assert not stale, f"excluded primitives that are not registered: {stale}"


@pytest.mark.parametrize("name", NAMES)
def test_every_rule(name: str):
    prim = REGISTRY[name]
    missing = [] if _has_vjp(prim) else ["vjp"]
    if name not in EXCLUDED:
        # The forward interpreter passes a primitive without gradient straight through.
        slots = [s for s in RULE_SLOTS if prim.differentiable or s != "jvp"]
        missing += [slot for slot in slots if not callable(getattr(prim, slot))]
    assert not missing, (
        f"primitive {name!r} (family {prim.family!r}) has no rule for "
        f"{', '.join(missing)}: give it a family that supplies one, declare it "
        f"(primitive(..., {missing[-1]}=...)), or add it to EXCLUDED with a reason")


def test_missing_rule_is_named():
    """The check above really fails, naming the primitive, when a rule is absent."""
    prim = REGISTRY["sin"]
    saved = prim.batch
    prim.batch = None
    try:
        with pytest.raises(AssertionError, match="'sin'.*batch"):
            test_every_rule("sin")
    finally:
        prim.batch = saved
    assert np.allclose(pycograd.vmap(np.sin)(np.zeros(2)), 0.0)
