"""train() with a stand-in weights object (grad via value_and_grad over a dict, plus the
trainable()/assign() protocol), and the batches / DataLoader helpers."""

import sys

import numpy as np
import pytest

from pycograd import random as R
from pycograd import value_and_grad
from pycograd.optim import SGD, Adam, DataLoader, batches, train


class Weights:
    """A stand-in for ParamDict: ``grad`` differentiates ``objective(params, *data)``."""

    def __init__(self, **arrays):
        self.values = {k: np.asarray(v, dtype=float) for k, v in arrays.items()}

    def trainable(self):
        return dict(self.values)

    def assign(self, name, value):
        self.values[name] = value

    def grad(self, objective, *data):
        return value_and_grad(objective, argnums=0)(self.values, *data)

    def copy(self):
        return Weights(**{k: v.copy() for k, v in self.values.items()})


def lstsq(p, X, y):
    return np.mean((X @ p["w"] + p["b"] - y) ** 2)


RNG = np.random.default_rng(0)
X = RNG.standard_normal((64, 3))
Y = X @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.01 * RNG.standard_normal(64)


def fresh():
    return Weights(w=np.zeros(3), b=np.zeros(()))


def test_loss_falls_and_first_last_are_right():
    weights = fresh()
    initial = lstsq(weights.values, X, Y)
    seen = []
    first, last = train(weights, lstsq, 100, Adam(0.1), X, Y,
                        callbacks=[lambda step, loss: seen.append((step, loss))])
    assert first == pytest.approx(initial)
    assert last < first / 100
    assert [s for s, _ in seen] == list(range(100))
    assert seen[0][1] == first and seen[-1][1] == last
    # last_loss is the loss at the parameters before the final update.
    w99 = fresh()
    train(w99, lstsq, 99, Adam(0.1), X, Y)
    assert lstsq(w99.values, X, Y) == pytest.approx(last)
    np.testing.assert_allclose(weights.values["w"], [1.0, -2.0, 0.5], atol=0.05)


def test_float_lr_means_sgd():
    a, b = fresh(), fresh()
    train(a, lstsq, 5, 0.05, X, Y)
    opt = SGD(0.05)
    for _ in range(5):
        _, g = b.grad(lstsq, X, Y)
        opt.step(b, g)
    for k in a.values:
        np.testing.assert_array_equal(a.values[k], b.values[k])
    c = fresh()
    train(c, lstsq, 5, lambda t: 0.05, X, Y)  # a schedule also means SGD
    np.testing.assert_array_equal(c.values["w"], a.values["w"])


def test_minibatches_are_shuffled_deterministically():
    sizes = []

    def obj(p, Xb, yb):
        sizes.append(len(Xb))
        return lstsq(p, Xb, yb)

    a, b, c = fresh(), fresh(), fresh()
    first, last = train(a, obj, 20, Adam(0.05), X, Y, batch_size=10, key=R.key(1))
    assert sizes == [10] * 20  # 64 rows: the short batch of each epoch is dropped
    assert last < first
    train(b, lstsq, 20, Adam(0.05), X, Y, batch_size=10, key=R.key(1))
    train(c, lstsq, 20, Adam(0.05), X, Y, batch_size=10, key=R.key(2))
    np.testing.assert_array_equal(a.values["w"], b.values["w"])
    assert not np.array_equal(a.values["w"], c.values["w"])


def test_callback_stops_early():
    calls = []

    def stop_at_3(step, loss):
        calls.append(step)
        return step == 3

    weights = fresh()
    _, last = train(weights, lstsq, 50, 0.05, X, Y, callbacks=[stop_at_3])
    assert calls == [0, 1, 2, 3]
    w3 = fresh()
    train(w3, lstsq, 3, 0.05, X, Y)
    assert lstsq(w3.values, X, Y) == pytest.approx(last)


def test_progress_bar(capsys, monkeypatch):
    pytest.importorskip("tqdm")
    train(fresh(), lstsq, 3, 0.05, X, Y, progress=True)
    assert "loss=" in capsys.readouterr().err
    train(fresh(), lstsq, 3, 0.05, X, Y)  # auto: output is captured, not a terminal
    train(fresh(), lstsq, 3, 0.05, X, Y, progress=False)
    out = capsys.readouterr()
    assert "loss=" not in out.err + out.out


def test_progress_bar_shows_epochs_and_validation(capsys):
    pytest.importorskip("tqdm")
    weights = fresh()
    calls = []

    def val():
        calls.append(1)
        return {"val_mse": lstsq(weights.values, X, Y), "val_rmse": 0.5}

    train(weights, lstsq, 8, Adam(0.05), X, Y, batch_size=16, progress=True, val=val)
    err = capsys.readouterr().err
    assert "epoch 2/2" in err and "val_mse=" in err and "val_rmse=0.5" in err, err
    assert len(calls) == 2                   # 4 minibatches an epoch: once per epoch
    train(fresh(), lstsq, 3, 0.05, X, Y, progress=True, val=lambda: 0.25)
    err = capsys.readouterr().err
    assert "epoch 3/3" in err and "val=0.25" in err and "loss=" in err, err


@pytest.mark.parametrize("kwargs, steps, expected", [
    ({}, 40, list(range(1, 40, 2))),                     # full batch: every 20th of the run
    ({"val_every": 5}, 12, [4, 9, 11]),                  # and always after the last step
    ({"batch_size": 16}, 10, [3, 7, 9]),                 # once per epoch of 4 minibatches
])
def test_validation_schedule(kwargs, steps, expected):
    weights, seen, at = fresh(), [], []
    train(weights, lstsq, steps, 0.05, X, Y, progress=False, val=lambda: seen.append(1) or 0.0,
          callbacks=[lambda step, loss: at.append((step, len(seen)))], **kwargs)
    evaluated = [step for (step, n), (_, before) in zip(at, [(-1, 0)] + at) if n > before]
    assert evaluated == expected


def test_validation_after_an_early_stop_and_bad_values():
    seen = []
    train(fresh(), lstsq, 50, 0.05, X, Y, progress=False, val_every=10,
          val=lambda: seen.append(1) or 1.0, callbacks=[lambda step, loss: step == 2])
    assert len(seen) == 1                    # the stopped run's weights are validated once
    with pytest.raises(TypeError, match="number or a dict of numbers, got str"):
        train(fresh(), lstsq, 2, 0.05, X, Y, progress=False, val=lambda: "good")
    with pytest.raises(TypeError, match="function of no arguments"):
        train(fresh(), lstsq, 2, 0.05, X, Y, val=0.5)
    with pytest.raises(ValueError, match="val_every"):
        train(fresh(), lstsq, 2, 0.05, X, Y, val=lambda: 1.0, val_every=0)


def test_notebook_bar_needs_ipywidgets_and_never_warns(monkeypatch):
    """Jupyter without ipywidgets gets tqdm's plain bar, silently (tqdm.auto would warn
    "IProgress not found"); with ipywidgets, the widget bar."""
    import warnings

    tqdm_notebook = pytest.importorskip("tqdm.notebook")
    from tqdm import std

    from pycograd.optim import progress

    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    monkeypatch.setattr(progress.importlib.util, "find_spec",
                        lambda name: None if name == "ipywidgets" else object())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert progress.bar_class() is std.tqdm
    monkeypatch.setattr(progress.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(tqdm_notebook, "IProgress", object)    # ipywidgets' FloatProgress
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert progress.bar_class() is tqdm_notebook.tqdm
    monkeypatch.setattr(progress, "in_notebook", lambda: False)
    assert progress.bar_class() is std.tqdm                   # a terminal: the plain bar


@pytest.mark.slow
def test_first_train_in_jupyter_shows_a_bar_without_warning():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    import importlib.util

    cell = """import numpy as np
from pycograd import ParamDict, train
X, y = np.array([[1.0], [2.0], [3.0]]), np.array([2.0, 4.0, 6.0])
weights = ParamDict(w=np.zeros(1))
weights.bind_globals(globals())
first, last = train(weights, lambda: np.mean((X @ w - y) ** 2), 20, 0.05,
                    val=lambda: {"w": float(w[0])})
print("trained", last < first)"""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = nb.cells[0].outputs
    text = "".join(o.get("text", "") for o in outputs)
    assert "trained True" in text
    assert "IProgress" not in text and "Warning" not in text, text
    if importlib.util.find_spec("ipywidgets") is None:
        err = "".join(o.get("text", "") for o in outputs if o.get("name") == "stderr")
        assert "epoch 20/20" in err and "w=" in err and "loss=" in err, err
    else:
        assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
                   for o in outputs)


def test_progress_without_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    with pytest.raises(ImportError, match="pip install tqdm"):
        train(fresh(), lstsq, 3, 0.05, X, Y, progress=True)
    assert train(fresh(), lstsq, 2, 0.05, X, Y)[1] > 0  # auto mode just goes without


def test_train_argument_errors():
    with pytest.raises(ValueError, match="steps"):
        train(fresh(), lstsq, 0, 0.1, X, Y)
    with pytest.raises(ValueError, match="batch_size needs data"):
        train(fresh(), lambda p: np.sum(p["w"] ** 2), 2, 0.1, batch_size=4)


# ---- batches / DataLoader ------------------------------------------------------------------

def test_batches_shuffle_determinism():
    x = np.arange(10)
    y = x * 10
    run = list(batches(x, y, batch_size=4, key=R.key(3)))
    assert [len(bx) for bx, _ in run] == [4, 4, 2]
    for bx, by in run:
        np.testing.assert_array_equal(by, bx * 10)
    order = np.concatenate([bx for bx, _ in run])
    np.testing.assert_array_equal(np.sort(order), x)
    assert not np.array_equal(order, x)
    again = np.concatenate([bx for bx, _ in batches(x, y, batch_size=4, key=R.key(3))])
    other = np.concatenate([bx for bx, _ in batches(x, y, batch_size=4, key=R.key(4))])
    np.testing.assert_array_equal(order, again)
    assert not np.array_equal(order, other)


def test_batches_no_shuffle_and_drop_last():
    x = np.arange(10).reshape(10, 1)
    run = [b for (b,) in batches(x, batch_size=4, shuffle=False)]
    np.testing.assert_array_equal(np.concatenate(run)[:, 0], np.arange(10))
    dropped = list(batches(x, batch_size=4, shuffle=False, drop_last=True))
    assert [len(b) for (b,) in dropped] == [4, 4]
    with pytest.raises(ValueError, match="differ in length"):
        list(batches(np.arange(3), np.arange(4), batch_size=2))


def test_batches_window():
    tokens = np.arange(100, 111)  # 11 tokens -> 3 windows of 3 (the last token a target only)
    run = list(batches(tokens, batch_size=2, window=3, shuffle=False))
    assert [inp.shape for inp, _ in run] == [(2, 3), (1, 3)]
    inputs = np.concatenate([i for i, _ in run])
    targets = np.concatenate([t for _, t in run])
    np.testing.assert_array_equal(inputs, [[100, 101, 102], [103, 104, 105], [106, 107, 108]])
    np.testing.assert_array_equal(targets, inputs + 1)
    shuffled = np.concatenate([i for i, _ in batches(tokens, batch_size=3, window=3, key=5)])
    np.testing.assert_array_equal(np.sort(shuffled[:, 0]), [100, 103, 106])
    assert len(list(batches(tokens, batch_size=2, window=3, drop_last=True))) == 1
    with pytest.raises(ValueError, match="one 1-D token stream"):
        list(batches(tokens, tokens, batch_size=2, window=3))


def test_dataloader_epochs():
    loader = DataLoader(np.arange(9), batch_size=4, key=R.key(0), drop_last=True)
    assert len(loader) == 2
    e1 = np.concatenate([b for (b,) in loader])
    e2 = np.concatenate([b for (b,) in loader])
    assert e1.shape == e2.shape == (8,) and not np.array_equal(e1, e2)
    replay = DataLoader(np.arange(9), batch_size=4, key=R.key(0), drop_last=True)
    np.testing.assert_array_equal(np.concatenate([b for (b,) in replay]), e1)


def test_with_paramdict_frozen_and_tied(tmp_path):
    params = pytest.importorskip("pycograd.params")
    from pycograd.optim import load_checkpoint, save_checkpoint

    def make():
        return params.ParamDict(w=np.zeros(3), b=np.zeros(()), s=params.frozen[np.ones(())],
                                w2=params.tied["w"])

    weights, opt = make(), Adam(0.1)
    first, last = train(weights, ambient_objective, 150, opt, X, Y, batch_size=16)
    assert last < first / 100
    np.testing.assert_allclose(weights["w"], [1.0, -2.0, 0.5], atol=0.05)
    assert weights["s"] == 1.0 and sorted(opt.state) == ["b", "w"]
    save_checkpoint(tmp_path / "ck.npz", weights, opt)
    again, opt2 = make(), Adam(0.1)
    load_checkpoint(tmp_path / "ck.npz", again, opt2)
    np.testing.assert_array_equal(again["w2"], weights["w"])
    assert opt2.steps == 150


def ambient_objective(X, Y):
    return np.mean((X @ (w + w2) / 2 * s + b - Y) ** 2)  # noqa: F821  (bound by ParamDict)
