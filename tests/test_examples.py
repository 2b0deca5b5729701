"""The demo entry point ``python -m pycograd.examples``, run in-process."""

import re
import subprocess
import sys

import numpy as np
import pytest

from pycograd.examples import DEMOS, main, runner
from pycograd.examples.gradcheck import FDResult, fd_check

LINE = re.compile(r"^(\S+)\s+loss ([\d.e+-]+) -> ([\d.e+-]+)\s+acc ([\d.]+)\s+"
                  r"fd-check max abs err ([\d.e+-]+) max rel err ([\d.e+-]+)\s+(OK|FAIL)")


def test_every_demo_trains_and_passes_its_gradient_check(capsys):
    assert main([]) == 0
    lines = [LINE.match(s) for s in capsys.readouterr().out.splitlines()]
    assert len(lines) == len(DEMOS) and all(lines)
    for m in lines:
        start, end, acc, rel = (float(m.group(i)) for i in (2, 3, 4, 6))
        assert end < start
        assert acc > 0.8
        assert rel < 1e-5
        assert m.group(7) == "OK"


def test_logistic_demo_result():
    r = runner.run_demo("logreg")
    assert r.name == "logreg" and r.ok
    assert np.isclose(r.loss_start, np.log(2)) and r.loss_end < 0.3
    assert r.fd.max_abs_err < 1e-7


def test_failing_check_gives_nonzero_exit(monkeypatch, capsys):
    bad = runner.DemoResult("bad", 1.0, 0.5, 0.9, FDResult(1.0, 1.0, ok=False))
    monkeypatch.setattr(runner, "run_demo", lambda name, seed=0: bad)
    assert main([]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_demo_that_raises_gives_nonzero_exit(monkeypatch, capsys):
    def boom(name, seed=0):
        raise RuntimeError("broken demo")

    monkeypatch.setattr(runner, "run_demo", boom)
    assert main([]) == 1
    assert "ERROR" in capsys.readouterr().out


def test_demos_can_be_picked_by_name(capsys):
    assert main(["logreg"]) == 0
    assert capsys.readouterr().out.startswith("logreg ")
    with pytest.raises(SystemExit):
        main(["no-such-demo"])


def test_fd_check_catches_a_wrong_gradient():
    f = lambda x: np.sum(x ** 3)
    x = np.array([0.5, -1.0, 2.0])
    assert fd_check(f, [x], [3 * x ** 2]).ok
    wrong = fd_check(f, [x], [3 * x ** 2 * 1.01])
    assert not wrong.ok and wrong.max_rel_err > 1e-3


def test_module_entry_point_exits_zero():
    proc = subprocess.run([sys.executable, "-m", "pycograd.examples"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "OK" in proc.stdout


def test_fd_check_perturbs_scalars_and_samples_big_arrays():
    f = lambda w, b: np.sum(w ** 2) + 3 * b ** 2
    w, b = np.arange(200.0) / 100, np.array(0.5)
    r = fd_check(f, [w, b], [2 * w, 6 * b], max_coords=10)
    assert r.ok and r.max_abs_err < 1e-6
    assert not fd_check(f, [w, b], [2 * w, 5 * b]).ok          # a wrong 0-d gradient
