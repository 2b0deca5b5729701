"""ParamDict and ambient weights, in plain Python (no DSL).

The forwards below read their weights by bare name (``w1``, ``b1``, ...). These names are
not defined in this module: ``weights.grad`` binds them while it runs, which is the point.
"""
# ruff: noqa: F821

import math
import re
import warnings

import numpy as np
import pytest

from pycograd import NonScalarOutputError, Var, grad, tree_map, value_and_grad
from pycograd.params import Group, ParamDict, ParamLoadError, buffer, frozen, tied
from pycograd.routing.ambient import ambient_slots, rebound

RNG = np.random.default_rng(0)
X = RNG.standard_normal((40, 2))
LABELS = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
Y = np.eye(2)[LABELS]


def relu(z):
    return np.maximum(z, 0.0)


def hidden(x):
    return relu(x @ w1 + b1)


def logits(x):
    return hidden(x) @ w2 + b2


def loss(x, y):
    z = logits(x)
    z = z - np.max(z, axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(np.sum(y * logp, axis=1))


def explicit_loss(params, x, y):
    h = np.maximum(x @ params["w1"] + params["b1"], 0.0)
    z = h @ params["w2"] + params["b2"]
    z = z - np.max(z, axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(np.sum(y * logp, axis=1))


def make_mlp(seed=1, b2=None, **extra):
    rng = np.random.default_rng(seed)
    return ParamDict(w1=0.5 * rng.standard_normal((2, 16)), b1=np.zeros(16),
                     w2=0.5 * rng.standard_normal((16, 2)),
                     b2=np.zeros(2) if b2 is None else b2, **extra)


def snapshot(weights):
    return {n: np.array(v) for n, v in weights.items()}


def test_bare_name_mlp_trains_and_matches_explicit_grad():
    weights = make_mlp()
    value, grads = weights.grad(loss, X, Y)
    ev, eg = value_and_grad(explicit_loss, 0)(dict(weights.items()), X, Y)
    np.testing.assert_allclose(value, ev)
    assert set(grads) == {"w1", "b1", "w2", "b2"}
    for name in grads:
        np.testing.assert_allclose(grads[name], eg[name], rtol=1e-12, atol=1e-12)
    losses = []
    for _ in range(30):
        value, grads = weights.grad(loss, X, Y)
        weights.step(grads, 0.5)
        losses.append(float(value))
    assert losses[-1] < 0.7 * losses[0]
    assert "w1" not in globals()  # the names were bound only while grad ran


def test_objective_forms_thunk_lambda_and_closure_cells():
    weights = make_mlp()
    expected = weights.grad(loss, X, Y)[1]["w1"]
    thunk = lambda: loss(X, Y)
    np.testing.assert_allclose(weights.grad(thunk)[1]["w1"], expected)

    def scoped():
        w = np.ones((2, 2))
        f = lambda x: np.sum((x @ w) ** 2)  # w is a closure cell, not a global
        ws = ParamDict(w=w)
        v, g = ws.grad(f, X)
        assert f.__closure__[0].cell_contents is w  # restored
        return g["w"], 2 * X.T @ (X @ w)

    got, want = scoped()
    np.testing.assert_allclose(got, want)


class Model:
    def __call__(self, x, y):
        return self.penalty() + loss(x, y)

    def penalty(self):
        return 0.1 * np.sum(w2 * w2)


def test_callable_instances_and_methods_are_scanned():
    weights = make_mlp()
    g = weights.grad(Model(), X, Y)[1]
    g0 = weights.grad(loss, X, Y)[1]
    np.testing.assert_allclose(g["w2"], g0["w2"] + 0.2 * weights["w2"])


def test_grad_changes_nothing():
    weights = make_mlp(m=buffer[np.arange(3.0)])
    before = snapshot(weights)
    arrays = {n: v for n, v in weights.items()}
    weights.grad(loss, X, Y)
    for name, v in weights.items():
        assert v is arrays[name]
        np.testing.assert_array_equal(v, before[name])


def test_frozen_gets_none_and_is_never_stepped():
    weights = make_mlp(b2=frozen[np.array([0.3, -0.3])])
    assert weights.kind("b2") == "frozen"
    assert "b2" not in weights.trainable()
    value, grads = weights.grad(loss, X, Y)
    assert grads["b2"] is None and grads["w1"] is not None
    w1 = np.array(weights["w1"])
    weights.step({**grads, "b2": np.ones(2)}, 0.5)  # a gradient for it is ignored too
    np.testing.assert_array_equal(weights["b2"], [0.3, -0.3])
    assert not np.array_equal(weights["w1"], w1)


def test_tied_sums_gradients_and_steps_once():
    w = np.array([[1.0, 2.0], [3.0, -1.0]])
    weights = ParamDict(enc=w, dec=tied["enc"])
    x = np.array([[0.5, -1.0], [2.0, 1.0]])
    obj = lambda: np.sum(np.tanh(x @ enc)) + np.sum((dec.T @ x) ** 2)
    value, grads = weights.grad(obj)
    want = grad(lambda a: np.sum(np.tanh(x @ a)) + np.sum((a.T @ x) ** 2))(w)[0]
    np.testing.assert_allclose(grads["enc"], want)
    assert grads["dec"] is grads["enc"]
    assert list(weights.trainable()) == ["enc"]
    assert weights["dec"] is weights["enc"] is w
    before = w.copy()
    weights.step(grads, 0.1)
    np.testing.assert_allclose(w, before - 0.1 * want)  # once, not twice


def test_tied_by_identity_and_construction_errors():
    w = np.ones(3)
    weights = ParamDict(a=w, b=tied(w))
    assert weights.canonical("b") == "a" and weights.kind("b") == "tied"
    early = ParamDict(dec=tied["enc"], enc=w)  # a tie may come before its target
    assert early.canonical("dec") == "enc" and list(early.trainable()) == ["enc"]
    assert list(early) == ["dec", "enc"] and early.copy().canonical("dec") == "enc"
    again = ParamDict(weights, c=frozen[np.zeros(1)])  # same arrays, kinds and ties
    assert again["b"] is again["a"] is w and again.kind("c") == "frozen"
    with pytest.raises(ValueError, match=r"same array.*b=tied\['a'\]"):
        ParamDict(a=w, b=w)
    with pytest.raises(KeyError, match="no weight 'nope'"):
        ParamDict(a=w, b=tied["nope"])
    with pytest.raises(ValueError, match="cycle"):
        ParamDict(a=tied["b"], b=tied["a"])
    with pytest.raises(ValueError, match="no other weight holds this array"):
        ParamDict(a=w, b=tied(np.ones(3)))
    with pytest.raises(ValueError, match="identifier"):
        ParamDict({"not-a-name": w})
    with pytest.raises(TypeError, match="float dtype.*buffer"):
        ParamDict(n=np.arange(3))
    assert ParamDict(n=buffer[np.arange(3)])["n"].dtype.kind == "i"
    assert ParamDict(s=2)["s"].dtype == np.float64  # numbers become float arrays


def test_buffer_is_not_trained_but_assignable():
    weights = make_mlp(running=buffer[np.zeros(2)])
    _, grads = weights.grad(loss, X, Y)
    assert grads["running"] is None
    assert "running" not in weights.trainable()
    weights.step(grads, 0.5)
    np.testing.assert_array_equal(weights["running"], 0.0)
    arr = weights["running"]
    weights["running"] = np.array([1.0, 2.0])
    assert weights["running"] is arr  # in place
    np.testing.assert_array_equal(arr, [1.0, 2.0])


def test_optimizer_protocol_assign_in_place_keeps_ties():
    weights = ParamDict(a=np.zeros(2), b=tied["a"], f=frozen[np.ones(2)])
    assert list(weights.trainable()) == ["a"]
    a = weights["a"]
    weights.assign("b", np.array([1.0, 2.0]))
    assert weights["a"] is a and weights["b"] is a
    np.testing.assert_array_equal(a, [1.0, 2.0])
    with pytest.raises(ValueError, match=r"shape \(3,\) does not match.*\(2,\)"):
        weights.assign("a", np.zeros(3))
    with pytest.raises(KeyError, match="step: gradients for unknown"):
        weights.step({"zz": np.zeros(2)}, 0.1)


def test_names_restored_after_exception_and_with_blocks():
    weights = make_mlp()

    def boom(x):
        logits(x)
        raise RuntimeError("inside")

    g = globals()
    with pytest.raises(RuntimeError, match="inside"):
        weights.grad(boom, X)
    assert "w1" not in g and "b2" not in g

    with weights:
        assert g["w1"] is weights["w1"]
        np.testing.assert_allclose(logits(X), np.maximum(X @ w1 + b1, 0) @ w2 + b2)
        value, grads = weights.grad(loss, X, Y)  # rebinds to traced values, then back
        assert g["w1"] is weights["w1"]
        with pytest.raises(RuntimeError):
            weights.grad(boom, X)
        assert g["w1"] is weights["w1"]
    assert "w1" not in g


def test_bind_globals_names_stay_current():
    ns = {}
    weights = make_mlp()
    weights.bind_globals(ns)
    f = eval("lambda x: x @ w1 + b1", ns)
    assert ns["w1"] is weights["w1"]
    _, grads = weights.grad(lambda: np.sum(f(X)))
    np.testing.assert_allclose(grads["w1"], X.T @ np.ones((40, 16)))
    assert ns["w1"] is weights["w1"]
    weights.step(grads, 0.01)
    np.testing.assert_array_equal(ns["w1"], weights["w1"])  # in-place: the name is current
    weights.unbind_globals(ns)
    assert "w1" not in ns


def test_scanned_namespace_does_not_shadow_functions():
    ns = {"np": np, "scale": lambda v: 2 * v}
    f = eval("lambda: np.sum(scale(w))", ns)
    weights = ParamDict(w=np.ones(3), scale=np.ones(1))
    _, g = weights.grad(f)
    np.testing.assert_allclose(g["w"], 2.0)
    assert callable(ns["scale"]) and "w" not in ns


def test_bind_arbitrary_and_traced_values():
    weights = make_mlp()
    ones = {"w1": np.ones((2, 16)), "b1": np.zeros(16)}
    with weights.bind(ones, logits) as env:
        out = logits(X)
        assert env["w2"] is weights["w2"]  # names left out keep their arrays
    np.testing.assert_allclose(out, relu(X @ np.ones((2, 16))) @ weights["w2"] + weights["b2"])
    assert "w1" not in globals()

    seen = []

    def spy(x):
        seen.append(type(w1))
        return loss(x, Y)

    f = weights.functional(spy)
    g = grad(f, 0)(weights.trainable(), X)
    assert seen == [Var]
    np.testing.assert_allclose(g["w1"], weights.grad(loss, X, Y)[1]["w1"])
    with pytest.raises(KeyError, match="no weight"):
        with weights.bind({"w9": 1.0}):
            pass


def test_nested_bindings_restore_in_order():
    weights = ParamDict(a=np.array(1.0))
    read = lambda: a
    with weights.bind({"a": 2.0}, read):
        with weights.bind({"a": 3.0}, read):
            assert read() == 3.0
            v, g = weights.grad(lambda: a * a)
            assert read() == 3.0
        assert read() == 2.0
    assert "a" not in globals()
    np.testing.assert_allclose(g["a"], 2.0)
    # weights.grad inside a transform: the outer grad differentiates through the inner one
    inner = ParamDict(a=np.full((), 1.5))

    def outer(s):
        return inner.grad(lambda: s * a ** 3)[1]["a"]

    np.testing.assert_allclose(grad(outer, 0)(2.0), 3 * 1.5 ** 2)


def scalar_model():
    return math.exp(a) * a + np.sum(np.array([a, 2 * a]))


def test_objective_is_routed_math_and_constructors():
    weights = ParamDict(a=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, g = weights.grad(scalar_model)
        g2 = grad(weights.functional(scalar_model), 0)(weights.trainable())
    np.testing.assert_allclose(g["a"], math.exp(0.5) * 1.5 + 3)
    np.testing.assert_allclose(g2["a"], g["a"])


def test_non_scalar_objective_and_undefined_name():
    weights = make_mlp()
    with pytest.raises(NonScalarOutputError, match=r"weights.grad.*logits.*\(40, 2\)"):
        weights.grad(logits, X)
    with pytest.raises(NameError, match="w_undefined"):
        weights.grad(lambda: np.sum(w1) + w_undefined)
    assert "w1" not in globals()


def test_nested_groups():
    rng = np.random.default_rng(3)
    weights = ParamDict(enc={"w": rng.standard_normal((2, 3)), "b": np.zeros(3)},
                        head=rng.standard_normal(3))
    assert list(weights) == ["enc.w", "enc.b", "head"]
    assert weights["enc"]["w"] is weights["enc.w"]
    obj = lambda: np.sum(np.tanh(X @ enc.w + enc["b"]) @ head)
    value, grads = weights.grad(obj)
    want = grad(lambda w, b, h: np.sum(np.tanh(X @ w + b) @ h))(
        weights["enc.w"], weights["enc.b"], weights["head"])
    for name, g in zip(["enc.w", "enc.b", "head"], want):
        np.testing.assert_allclose(grads[name], g)
    with weights:
        assert isinstance(enc, Group) and enc.w is weights["enc.w"]
    with pytest.raises(ValueError, match="both a weight and a group"):
        ParamDict({"a": np.ones(1), "a.b": np.ones(1)})


def test_pytree_node():
    weights = make_mlp(f=frozen[np.ones(2)], t=tied["w1"])
    doubled = tree_map(lambda v: 2 * v, weights)
    assert isinstance(doubled, ParamDict)
    np.testing.assert_allclose(doubled["w1"], 2 * weights["w1"])
    assert doubled["t"] is doubled["w1"]
    np.testing.assert_array_equal(doubled["f"], 1.0)  # static: not a leaf
    g = grad(lambda p: explicit_loss(p, X, Y))(weights)[0]
    np.testing.assert_allclose(g["w1"], weights.grad(loss, X, Y)[1]["w1"])


def test_save_load_round_trip(tmp_path):
    weights = make_mlp(f=frozen[np.ones(2, dtype=np.float32)], m=buffer[np.arange(4)],
                       t=tied["w2"], sub={"v": np.full(2, 7.0)})
    path = tmp_path / "w.npz"
    weights.save(path)
    with np.load(path, allow_pickle=False) as z:  # no pickle needed to read it
        assert "w1" in z.files
    loaded = ParamDict.load(path)
    assert list(loaded) == list(weights)
    for name in weights:
        assert loaded.kind(name) == weights.kind(name)
        np.testing.assert_array_equal(loaded[name], weights[name])
        assert loaded[name].dtype == weights[name].dtype
    assert loaded["t"] is loaded["w2"]
    fresh = make_mlp(seed=9, f=frozen[np.zeros(2, dtype=np.float32)], m=buffer[np.zeros(4, int)],
                     t=tied["w2"], sub={"v": np.zeros(2)})
    w1 = fresh["w1"]
    fresh.load_into(tmp_path / "w")  # the .npz suffix is optional
    assert fresh["w1"] is w1
    for name in weights:
        np.testing.assert_array_equal(fresh[name], weights[name])


def test_load_errors(tmp_path):
    path = tmp_path / "w.npz"
    make_mlp().save(path)

    def fails(target, *patterns):
        before = snapshot(target)
        with pytest.raises(ParamLoadError) as info:
            target.load_into(path)
        for p in patterns:
            assert re.search(p, str(info.value)), str(info.value)
        for name, v in target.items():  # nothing was changed
            np.testing.assert_array_equal(v, before[name])

    fails(make_mlp(extra=np.zeros(1)), r"missing: extra")
    fails(ParamDict(w1=np.zeros((2, 16)), b1=np.zeros(16), w2=np.zeros((16, 2))),
          r"extra \(not in these weights\): b2")
    fails(ParamDict(w1=np.zeros((3, 16)), b1=np.zeros(16), w2=np.zeros((16, 2)),
                    b2=np.zeros(2)), r"w1: shape \(2, 16\) in .*, \(3, 16\) here")
    fails(ParamDict(w1=np.zeros((2, 16), np.float32), b1=np.zeros(16), w2=np.zeros((16, 2)),
                    b2=np.zeros(2)), r"w1: dtype float64 in .*, float32 here")
    np.savez(tmp_path / "plain.npz", w1=np.zeros(2))
    with pytest.raises(ParamLoadError, match="not a pycograd ParamDict file"):
        ParamDict.load(tmp_path / "plain.npz")
    weights = make_mlp()
    with pytest.raises(ParamLoadError, match=r"missing: b2"):
        weights.load_state({k: v for k, v in weights.state_dict().items() if k != "b2"})


def test_repr_table():
    weights = make_mlp(f=frozen[np.ones(3)], m=buffer[np.zeros(2)], t=tied["w1"])
    text = repr(weights)
    lines = text.splitlines()
    assert lines[0] == "ParamDict"
    assert re.search(r"w1\s+param\s+\(2, 16\)\s+float64\s+32", text)
    assert re.search(r"f\s+frozen\s+\(3,\)\s+float64\s+3", text)
    assert re.search(r"m\s+buffer\s+\(2,\)", text)
    assert re.search(r"t\s+tied to w1\s+\(2, 16\)\s+float64\s+-", text)
    assert lines[-1].strip() == "total: 87 values (82 trainable, 3 frozen, 2 buffer)"
    assert repr(ParamDict()) == "ParamDict()"


def test_ambient_slots_let_a_later_rerun_rebind_hidden_inputs():
    weights = ParamDict(a=np.array(1.0))
    read = lambda: a
    with weights.bind({"a": 2.0}, read):
        slots, values = ambient_slots()
        assert values == [2.0]
    assert "a" not in globals()
    with rebound(slots, [5.0]):
        assert read() == 5.0
    assert "a" not in globals()
    assert weights.entry("a").value is weights["a"] and weights.entry("a").kind == "param"


def test_checkpoint_of_an_ambient_block_via_hidden_inputs():
    checkpoint = pytest.importorskip("pycograd.transforms.checkpoint").checkpoint

    def ambient_checkpoint(f):
        """checkpoint(f) where f reads ambient weights: they become explicit inputs."""

        def wrapped(*args):
            slots, values = ambient_slots()
            hidden = [i for i, v in enumerate(values) if isinstance(v, Var)]

            def g(*xs):
                vals = list(values)
                for i, v in zip(hidden, xs[len(args):]):
                    vals[i] = v
                with rebound(slots, vals):
                    return f(*xs[:len(args)])

            return checkpoint(g)(*args, *(values[i] for i in hidden))

        return wrapped

    weights = make_mlp()
    plain = weights.grad(lambda: np.sum(hidden(np.sin(X + np.sum(w2))) @ w2))
    remat = weights.grad(lambda: np.sum(ambient_checkpoint(hidden)(np.sin(X + np.sum(w2))) @ w2))
    np.testing.assert_allclose(remat[0], plain[0])
    for name in ("w1", "b1", "w2"):
        np.testing.assert_allclose(remat[1][name], plain[1][name])
