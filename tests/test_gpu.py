"""The GPU check (``benchmarks/gpu_check.py``): on CuPy with a GPU (marked ``gpu``, skipped
without one), and its logic on CPU through array_api_strict at tiny sizes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from pycograd import DeviceError, device

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "gpu_check.py"


def _script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = mod
    spec.loader.exec_module(mod)
    return mod


def _gpu() -> bool:
    try:
        device("cupy")
    except DeviceError:
        return False
    return True


def test_the_check_runs_on_cpu_through_array_api_strict(capsys):
    pytest.importorskip("array_api_strict")
    assert _script().main(["--device", "array_api_strict", "--small"]) == 0
    out = capsys.readouterr().out
    assert out.count("Adam moments on the device: True") == 2
    assert "all checks passed" in out


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu(), reason="needs CuPy and a CUDA GPU")
def test_mlp_and_cnn_train_on_cupy_like_numpy(capsys):
    assert _script().main(["--device", "cupy"]) == 0
    assert "all checks passed" in capsys.readouterr().out
