"""Lowering and export: the framework-free checks here, and each framework's own test file
(``tests/lowering/fw_*.py``) run in a process of its own, since importing torch, jax and
tensorflow into one process can crash. A framework that is not installed skips, naming the
install command."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pycograd as pg
from pycograd.backends import (
    DeviceUnavailableError,
    FrameworkMissingError,
    NoLoweringError,
    UnknownBackendError,
    compile_to,
    lowering,
)
from pycograd.backends.compile import resolve

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FRAMEWORKS = {"torch": "torch", "jax": "jax", "tf": "tensorflow", "onnx": "onnxruntime"}


@pytest.mark.parametrize("name", sorted(FRAMEWORKS))
def test_framework_in_own_process(name):
    """``tests/lowering/fw_<name>.py`` under pytest in a fresh process (one BLAS thread)."""
    module = FRAMEWORKS[name]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed: pip install \"pycograd[{name}]\"")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT) + os.pathsep +
           os.environ.get("PYTHONPATH", ""), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-W",
         "ignore::DeprecationWarning", str(HERE / "lowering" / f"fw_{name}.py")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, f"fw_{name}.py failed:\n{tail}"
    print(tail.strip().splitlines()[-1])


# ---- bad input: no framework needed -----------------------------------------------------

def test_unknown_backend_lists_known_ones():
    with pytest.raises(UnknownBackendError) as e:
        compile_to(lambda x: x, "theano")
    for known in ("'torch'", "'jax'", "'tf'", "'onnx'", "theano"):
        assert known in str(e.value)
    with pytest.raises(UnknownBackendError):
        pg.ParamDict(w=np.ones(2)).grad(lambda: np.sum(w), backend="caffe")  # noqa: F821


def test_missing_framework_gives_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    with pytest.raises(FrameworkMissingError) as e:
        lowering.load("torch")
    assert 'pip install "pycograd[torch]"' in str(e.value)
    assert isinstance(e.value, ImportError) and isinstance(e.value, pg.PycogradError)


def test_mps_without_apple_gpu_says_so():
    if importlib.util.find_spec("torch") is None:
        pytest.skip('torch is not installed: pip install "pycograd[torch]"')
    code = ("import torch, pycograd.backends.compile as c\n"
            "if torch.backends.mps.is_available(): print('HAS MPS')\n"
            "else:\n"
            "    try: c.resolve('mps')\n"
            "    except c.DeviceUnavailableError as e: print('REFUSED', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    if "HAS MPS" in out:
        pytest.skip("this machine has Apple's GPU")
    assert out.startswith("REFUSED") and "Apple" in out and "backend='torch'" in out


def test_resolve_aliases():
    assert resolve("pytorch")[0] == "torch" and resolve("tensorflow")[0] == "tf"
    assert issubclass(DeviceUnavailableError, pg.PycogradError)


def test_no_lowering_error_at_compile_time():
    """cholesky has no ONNX lowering: refused when lowered, naming the primitive and backend."""
    if importlib.util.find_spec("onnx") is None:
        pytest.skip('onnx is not installed: pip install "pycograd[onnx]"')
    g = pg.capture(lambda a: np.linalg.cholesky(a) @ a, np.eye(2))
    with pytest.raises(NoLoweringError) as e:
        lowering.check_lowerable(g, "onnx")
    assert e.value.primitives == ["cholesky"] and e.value.backend == "onnx"
    assert "cholesky" in str(e.value) and "'onnx'" in str(e.value)
