"""ONNX: the model is built from the graph with the onnx helper API (no torch in this
process), checked in full mode, and run by onnxruntime in a process where pycograd cannot
be imported, at a batch size other than the example's."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest

import pycograd as pg
from pycograd import nn


def test_no_torch_needed():
    assert "torch" not in sys.modules


def _run_elsewhere(path: str, x: np.ndarray, tmp_path) -> np.ndarray:
    np.save(tmp_path / "x.npy", x)
    code = ("import sys; sys.modules['pycograd'] = None\n"
            "import numpy as np, onnxruntime as ort\n"
            f"s = ort.InferenceSession({str(path)!r}, providers=['CPUExecutionProvider'])\n"
            f"x = np.load({str(tmp_path / 'x.npy')!r})\n"
            "out = s.run(None, {s.get_inputs()[0].name: x})[0]\n"
            f"np.save({str(tmp_path / 'y.npy')!r}, out)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return np.load(tmp_path / "y.npy")


def test_export_onnx_mlp(tmp_path):
    rng = np.random.default_rng(0)
    weights = pg.ParamDict(W1=rng.standard_normal((5, 8)), b1=rng.standard_normal(8),
                           W2=rng.standard_normal((8, 3)), b2=pg.frozen[np.ones(3)])
    weights.bind_globals(globals())

    def forward(x):
        h = nn.gelu(x @ W1 + b1, approximate="tanh")  # noqa: F821 (ORT: no f64 Erf)
        z = h @ W2 + b2  # noqa: F821
        return nn.softmax(z - np.mean(z, axis=0), axis=-1) + nn.layer_norm(h)[:, :3] * 0.1

    path = tmp_path / "mlp.onnx"
    model = pg.export_onnx(forward, rng.standard_normal((4, 5)), path)
    assert model.opset_import[0].version >= 17
    onnx.checker.check_model(onnx.load(path), full_check=True)
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param == "batch"
    x = rng.standard_normal((7, 5))
    got = _run_elsewhere(str(path), x, tmp_path)
    np.testing.assert_allclose(got, forward(x), rtol=1e-10, atol=1e-12)


def test_export_onnx_no_lowering_at_export(tmp_path):
    with pytest.raises(pg.NoLoweringError) as e:
        pg.export_onnx(lambda a: np.linalg.cholesky(a), np.eye(3), tmp_path / "x.onnx",
                       dynamic_batch=False)
    assert e.value.primitives == ["cholesky"] and not (tmp_path / "x.onnx").exists()


# ---- the per-primitive parity sweep (values: ONNX has no autodiff) ------------------------

from parity import (  # noqa: E402
    PER_PRIMITIVE,
    PER_PRIMITIVE_IDS,
    _close,
    _outputs,
    capture_or_skip,
)

from pycograd.backends.lowering import unlowerable  # noqa: E402
from pycograd.backends.onnx import to_model  # noqa: E402


@pytest.mark.parametrize("case", PER_PRIMITIVE, ids=PER_PRIMITIVE_IDS)
def test_parity(case):
    import onnxruntime as ort

    args = case.sample()
    graph = capture_or_skip(case.fn, args)
    missing = sorted(unlowerable(graph, "onnx"))
    if missing:
        with pytest.raises(pg.NoLoweringError) as e:
            to_model(graph)
        assert e.value.primitives == missing and e.value.backend == "onnx"
        pytest.skip(f"no lowering to onnx of {missing} (NoLoweringError checked)")
    model = to_model(graph)
    onnx.checker.check_model(model, full_check=True)
    try:
        session = ort.InferenceSession(model.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
    except Exception as e:  # a valid model with an operator onnxruntime lacks for a dtype
        if "NOT_IMPLEMENTED" in str(e):
            pytest.skip(f"onnxruntime has no kernel: {str(e)[:160]}")
        raise
    feeds = {i.name: np.asarray(a) for i, a in zip(session.get_inputs(), args)}
    got = session.run(None, feeds)
    with np.errstate(all="ignore"):
        expected = _outputs(case.fn(*args))
    for i, (g, e) in enumerate(zip(got, expected)):
        _close(g, e, f"{case.name}: onnx value {i}")
