"""The demos of ``python -m pycograd.examples``, run in-process in their quick mode (a few
training steps: the loss must fall and the finite-difference check pass). The full runs,
with the digits accuracy targets, belong to the demo command itself."""

import re
import subprocess
import sys

import numpy as np
import pytest

from pycograd.examples import DEMOS, main, runner
from pycograd.examples.datasets import MissingExtra, load_digits_split
from pycograd.examples.gradcheck import FDResult, fd_check

LINE = re.compile(r"^(\S.*?)\s+loss ([\d.e+-]+) -> ([\d.e+-]+)\s+accuracy ([\d.]+)"
                  r"( \(>= [\d.]+\))?\s+gradient check vs finite differences: "
                  r"max abs err ([\d.e+-]+), max rel err ([\d.e+-]+)\s+(OK|FAIL)")
SYNTHETIC = ["logreg", "ln_mlp", "transformer", "gru", "lstm"]
DIGITS = ["mlp", "cnn", "dp_mlp"]


def test_every_demo_is_listed_once():
    assert sorted(DEMOS) == sorted(SYNTHETIC + DIGITS)


def test_every_demo_is_named_in_words():
    assert sorted(runner.TITLES) == sorted(DEMOS)
    assert runner.TITLES["logreg"] == "logistic regression"
    assert runner.TITLES["ln_mlp"] == "MLP with LayerNorm and Dropout"
    assert len(set(runner.TITLES.values())) == len(DEMOS)


def check_quick_result(name: str) -> runner.DemoResult:
    r = runner.run_demo(name, quick=True)
    assert r.name == name and r.ok, r.line()
    assert r.fd.ok and r.fd.max_rel_err < 1e-5 and r.fd.max_abs_err < 1e-6
    assert r.loss_end < r.loss_start
    assert len(r.losses) >= 20 and r.losses[0] == r.loss_start
    assert np.all(np.isfinite(r.losses))
    assert 0.0 <= r.accuracy <= 1.0 and r.target is None
    m = LINE.match(r.line())
    assert m and m.group(1) == runner.TITLES[name] and m.group(8) == "OK"
    return r


@pytest.mark.parametrize("name", SYNTHETIC)
def test_synthetic_demo_trains_and_passes_its_gradient_check(name):
    r = check_quick_result(name)
    assert r.accuracy > 0.4    # a few steps already beat chance on every task


@pytest.mark.parametrize("name", DIGITS)
def test_digits_demo_trains_and_passes_its_gradient_check(name):
    pytest.importorskip("sklearn")
    r = check_quick_result(name)
    assert r.accuracy > 0.5    # chance is 0.1


def test_digits_split_is_fixed_and_scaled():
    pytest.importorskip("sklearn")
    X_train, X_test, y_train, y_test = load_digits_split()
    assert X_train.shape == (1347, 64) and X_test.shape == (450, 64)
    assert X_train.min() == 0.0 and X_train.max() == 1.0
    assert set(np.unique(y_test)) == set(range(10))
    again = load_digits_split(np.float32)
    assert again[0].dtype == np.float32
    np.testing.assert_array_equal(again[3], y_test)


@pytest.fixture
def no_sklearn(monkeypatch):
    """Make ``import sklearn...`` fail, as in an install without the examples extra."""
    for mod in ("sklearn", "sklearn.datasets", "sklearn.model_selection"):
        monkeypatch.setitem(sys.modules, mod, None)


def test_digits_demos_without_sklearn_say_what_to_install(no_sklearn, capsys):
    with pytest.raises(MissingExtra, match=r"pycograd\[examples\]"):
        load_digits_split()
    assert main(DIGITS) == 1
    out = capsys.readouterr().out
    for name in DIGITS:
        assert re.search(rf"^{re.escape(runner.TITLES[name])}\s+ERROR: the digits demos need "
                         r"scikit-learn: "
                         r"pip install 'pycograd\[examples\]'", out, re.M)
    assert "Traceback" not in out


def test_result_fails_below_its_accuracy_target():
    fd = FDResult(1e-10, 1e-8, ok=True)
    assert runner.DemoResult("d", 2.0, 0.1, 0.96, fd, target=0.95).ok
    low = runner.DemoResult("d", 2.0, 0.1, 0.90, fd, target=0.95)
    assert not low.ok and low.line().endswith("FAIL") and "(>= 0.95)" in low.line()
    assert not runner.DemoResult("d", 0.1, 0.2, 0.99, fd).ok      # the loss rose


def test_failing_check_gives_nonzero_exit(monkeypatch, capsys):
    bad = runner.DemoResult("bad", 1.0, 0.5, 0.9, FDResult(1.0, 1.0, ok=False))
    monkeypatch.setattr(runner, "run_demo", lambda name, seed=0, quick=False: bad)
    assert main([]) == 1
    out = capsys.readouterr().out
    assert out.count("FAIL") == len(DEMOS) and f"{len(DEMOS)} failed" in out


def test_demo_that_raises_gives_nonzero_exit(monkeypatch, capsys):
    def boom(name, seed=0, quick=False):
        raise RuntimeError("broken demo")

    monkeypatch.setattr(runner, "run_demo", boom)
    assert main([]) == 1
    assert "ERROR" in capsys.readouterr().out


def test_demos_can_be_picked_by_name(capsys):
    assert main(["logreg", "--quick"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("logistic regression ") and out[-1].startswith("1 demos, all OK")
    with pytest.raises(SystemExit):
        main(["no-such-demo"])


def test_plot_saves_a_png_per_demo(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["logreg", "--quick", "--plot", str(tmp_path / "curves")]) == 0
    png = (tmp_path / "curves" / "logreg.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000


def test_plot_without_matplotlib_says_what_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(SystemExit):
        main(["logreg", "--plot", str(tmp_path)])
    assert "pycograd[examples]" in capsys.readouterr().err


def test_fd_check_catches_a_wrong_gradient():
    f = lambda x: np.sum(x ** 3)
    x = np.array([0.5, -1.0, 2.0])
    assert fd_check(f, [x], [3 * x ** 2]).ok
    wrong = fd_check(f, [x], [3 * x ** 2 * 1.01])
    assert not wrong.ok and wrong.max_rel_err > 1e-3


def test_module_entry_point_exits_zero():
    proc = subprocess.run([sys.executable, "-m", "pycograd.examples", "--quick", "logreg"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert LINE.match(proc.stdout) and "all OK" in proc.stdout
    assert proc.stdout.startswith("logistic regression ")
    assert "gradient check vs finite differences" in proc.stdout


def test_fd_check_perturbs_scalars_and_samples_big_arrays():
    f = lambda w, b: np.sum(w ** 2) + 3 * b ** 2
    w, b = np.arange(200.0) / 100, np.array(0.5)
    r = fd_check(f, [w, b], [2 * w, 6 * b], max_coords=10)
    assert r.ok and r.max_abs_err < 1e-6
    assert not fd_check(f, [w, b], [2 * w, 5 * b]).ok          # a wrong 0-d gradient


def test_fd_check_relative_error_ignores_gradients_below_atol():
    f = lambda x: np.sum(x ** 2)
    x = np.array([1.0, 1e-12])
    r = fd_check(f, [x], [2 * x + np.array([0.0, 1e-10])])
    assert r.ok and r.max_rel_err < 1e-8      # the 1e-10 slip on a ~0 gradient is noise


def test_readme_sample_output_is_the_current_format():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    sample = readme.split("```text\n", 1)[1].split("```", 1)[0].splitlines()
    demo_lines = [line for line in sample if line != "..." and " demos, " not in line]
    assert len(demo_lines) >= 3
    titles = set(runner.TITLES.values())
    for line in demo_lines:
        m = LINE.match(line)
        assert m and m.group(1) in titles and m.group(8) == "OK", line
