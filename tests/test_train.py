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
