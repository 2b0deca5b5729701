"""torch: the parity sweep and compile_to / weights.grad / train over torch (run in its own
process by ``tests/test_lowering.py``; importing torch, jax and tensorflow together can
crash)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from parity import CASES, IDS, check_case, coverage

from pycograd.backends.torch import to_numpy


def _vjp(fn, xs, ws):
    xs = [x.detach().requires_grad_(True) for x in xs]
    outs = fn(*xs)
    outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
    total = sum((o * w).sum() for o, w in zip(outs, ws))
    if not total.requires_grad:  # no output depends differentiably on the inputs
        return [torch.zeros_like(x) for x in xs]
    grads = torch.autograd.grad(total, xs, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for g, x in zip(grads, xs)]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_parity(case):
    check_case(case, "torch", lambda a: torch.from_numpy(np.array(a)), to_numpy, _vjp)


def test_coverage():
    done, missing = coverage("torch")
    print(f"\ntorch lowers {len(done)} primitives; none for: {' '.join(missing)}")
    assert len(done) > 100


# ---- compile_to, weights.grad, train ----------------------------------------------------

def _f(x, w):
    _f.calls += 1
    return np.mean(np.tanh(x @ w) ** 2) + np.sum(np.maximum(x, 0.0))


def test_compile_to_autograd_compile_and_retrace():
    import pycograd as pg
    from pycograd.backends import compile_to

    _f.calls = 0
    g = compile_to(_f, "torch")
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    value = g(tx, tw)
    value.backward()
    v0, (gx, gw) = pg.value_and_grad(_f, argnums=(0, 1))(x, w)
    captured = _f.calls
    assert isinstance(value, torch.Tensor) and abs(value.item() - v0) <= 1e-12 * abs(v0)
    np.testing.assert_allclose(tx.grad.numpy(), gx, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(tw.grad.numpy(), gw, rtol=1e-12, atol=1e-14)
    # lowered from the graph: the user's function is not called again
    for _ in range(3):
        g(torch.tensor(x), torch.tensor(w))
    assert _f.calls == captured and g.captures == 1
    compiled = torch.compile(g)
    assert abs(compiled(torch.tensor(x), torch.tensor(w)).item() - v0) <= 1e-12 * abs(v0)
    x5 = rng.standard_normal((5, 3))  # a new signature captures again
    np.testing.assert_allclose(compiled(torch.tensor(x5), torch.tensor(w)).item(),
                               _f(x5, w), rtol=1e-12)
    assert g.captures == 2


def test_weights_grad_backend_torch():
    from models import check_backend_grads

    check_backend_grads("torch", lambda a, e: torch.testing.assert_close(
        torch.as_tensor(a), torch.as_tensor(e)))


def test_train_backend_torch():
    from models import check_train

    check_train("torch")
