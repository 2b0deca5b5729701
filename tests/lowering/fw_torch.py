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


# ---- export ------------------------------------------------------------------------------

def _module():
    from models import bound, mlp_weights

    import pycograd as pg

    weights = bound(mlp_weights())
    weights = pg.ParamDict(**{k: weights[k] for k in ("W1", "b1", "W2")},
                           b2=pg.frozen[weights["b2"]], scale=pg.buffer[np.ones(3) * 2.0])
    weights.bind_globals(globals())

    def forward(x):
        return (np.tanh(x @ W1 + b1) @ W2 + b2) * scale  # noqa: F821
    return weights, forward


def test_to_torch_module_parameters_buffers_state_dict():
    weights, forward = _module()
    module = weights.to_torch_module(forward)
    assert sorted(n for n, _ in module.named_parameters()) == ["W1", "W2", "b1"]
    assert sorted(n for n, _ in module.named_buffers()) == ["b2", "scale"]
    x = np.random.default_rng(3).standard_normal((5, 6))
    np.testing.assert_allclose(module(torch.from_numpy(x)).detach().numpy(), forward(x),
                               rtol=1e-12)
    state = {k: v.clone() + 1.0 for k, v in module.state_dict().items()}
    module.load_state_dict(state)
    again = weights.to_torch_module(forward)
    again.load_state_dict(module.state_dict())
    for k, v in again.state_dict().items():
        torch.testing.assert_close(v, state[k], rtol=0, atol=0)


def test_torch_adam_follows_pycograd_adam():
    import pycograd as pg
    from pycograd import nn

    weights, forward = _module()
    module = weights.to_torch_module(forward)
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((16, 6)), rng.integers(0, 3, 16)
    opt = torch.optim.Adam(module.parameters(), lr=0.01)
    for _ in range(20):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(module(torch.from_numpy(x)),
                                                 torch.from_numpy(y))
        loss.backward()
        opt.step()
    adam = pg.Adam(0.01)
    for _ in range(20):
        _, grads = weights.grad(lambda: nn.cross_entropy(forward(x), y))
        adam.step(weights, grads)
    for name, p in module.named_parameters():
        np.testing.assert_allclose(p.detach().numpy(), weights[name], rtol=1e-8, atol=1e-10)


def _run_without_pycograd(loader: str, path, x, tmp_path) -> np.ndarray:
    import subprocess
    import sys

    np.save(tmp_path / "x.npy", x)
    code = ("import sys; sys.modules['pycograd'] = None\n"
            "import numpy as np, torch\n"
            f"m = {loader}\n"
            f"x = torch.from_numpy(np.load({str(tmp_path / 'x.npy')!r}))\n"
            f"np.save({str(tmp_path / 'y.npy')!r}, m(x).detach().numpy())\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(tmp_path / "y.npy")


def test_export_torch_and_torchscript_run_without_pycograd(tmp_path):
    import pycograd as pg

    weights, forward = _module()
    module = weights.to_torch_module(forward)
    rng = np.random.default_rng(5)
    example, x = rng.standard_normal((4, 6)), rng.standard_normal((9, 6))
    pg.export_torch(module, torch.from_numpy(example), tmp_path / "m.pt2")
    got = _run_without_pycograd(f"torch.export.load({str(tmp_path / 'm.pt2')!r}).module()",
                                tmp_path / "m.pt2", x, tmp_path)
    np.testing.assert_allclose(got, forward(x), rtol=1e-10, atol=1e-12)
    pg.export_torchscript(module, torch.from_numpy(example), tmp_path / "m.ts")
    got = _run_without_pycograd(f"torch.jit.load({str(tmp_path / 'm.ts')!r})",
                                tmp_path / "m.ts", x, tmp_path)
    np.testing.assert_allclose(got, forward(x), rtol=1e-10, atol=1e-12)
    # the same module as ONNX (built from the graph; run by onnxruntime in fw_onnx.py)
    model = pg.export_onnx(module, example, tmp_path / "m.onnx")
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
