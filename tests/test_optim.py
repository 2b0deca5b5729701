"""Optimizers against updates written out by hand, in both forms (functional on a pytree,
in place on a parameter container), plus schedules, clipping and saved state."""

import numpy as np
import pytest

from pycograd.optim import (
    SGD,
    Adagrad,
    Adam,
    AdamW,
    Momentum,
    RMSprop,
    clip_grad_norm,
    clip_grad_value,
    clip_leaf_norm,
    constant,
    cosine_decay,
    exponential_decay,
    global_norm,
    linear_warmup,
    load_checkpoint,
    save_checkpoint,
    step_decay,
)


class Params:
    """A stand-in for ParamDict: the trainable()/assign() protocol, with frozen names."""

    def __init__(self, frozen=(), **arrays):
        self.values = {k: np.asarray(v, dtype=float) for k, v in arrays.items()}
        self.frozen = set(frozen)

    def trainable(self):
        return {k: v for k, v in self.values.items() if k not in self.frozen}

    def assign(self, name, value):
        assert name not in self.frozen
        self.values[name] = value


# ---- hand-computed numbers (scalar parameter, gradient 1 at every step) -------------------

def run_scalar(opt, steps=3, w=1.0, g=1.0):
    ws = []
    w = np.array(w)
    for _ in range(steps):
        w = opt.step(w, np.array(g))
        ws.append(float(w))
    return ws


def test_sgd_by_hand():
    np.testing.assert_allclose(run_scalar(SGD(0.1)), [0.9, 0.8, 0.7])
    # weight decay 0.5: g + 0.5 w -> w1 = 1 - 0.1 * 1.5 = 0.85, w2 = 0.85 - 0.1 * 1.425 ...
    np.testing.assert_allclose(run_scalar(SGD(0.1, weight_decay=0.5), 2), [0.85, 0.7075])


def test_momentum_and_nesterov_by_hand():
    # buf: 1, 1.9, 2.71; w: 1 - 0.1 * cumsum(buf)
    np.testing.assert_allclose(run_scalar(SGD(0.1, momentum=0.9)), [0.9, 0.71, 0.439])
    np.testing.assert_allclose(run_scalar(Momentum(0.1)), [0.9, 0.71, 0.439])
    # nesterov steps g + 0.9 buf: 1.9, 2.71, 3.439
    np.testing.assert_allclose(run_scalar(SGD(0.1, momentum=0.9, nesterov=True)),
                               [0.81, 0.539, 0.1951])
    with pytest.raises(ValueError, match="nesterov"):
        SGD(0.1, nesterov=True)


def test_adam_by_hand():
    # With a constant gradient, bias-corrected m_hat = g and v_hat = g**2 at every step, so
    # each step is lr * g / (|g| + eps).
    step = 0.1 * 2.0 / (2.0 + 1e-8)
    np.testing.assert_allclose(run_scalar(Adam(0.1), 3, g=2.0), [1 - step, 1 - 2 * step,
                                                                  1 - 3 * step])


def test_adagrad_by_hand():
    # acc = t * g**2, so step t moves lr / sqrt(t) (for g > 0).
    np.testing.assert_allclose(run_scalar(Adagrad(0.1, eps=0.0), 3, g=3.0),
                               [0.9, 0.9 - 0.1 / np.sqrt(2), 0.9 - 0.1 / np.sqrt(2)
                                - 0.1 / np.sqrt(3)])


def test_rmsprop_by_hand():
    # v1 = 0.01 g**2 -> step g / (0.1 |g|) = 10 for g > 0 (eps 0).
    np.testing.assert_allclose(run_scalar(RMSprop(0.01, eps=0.0), 1, g=4.0), [0.9])
    # v2 = 0.99 * 0.01 + 0.01 = 0.0199 (g = 1) -> second step 1 / sqrt(0.0199)
    np.testing.assert_allclose(run_scalar(RMSprop(0.01, eps=0.0), 2),
                               [0.9, 0.9 - 0.01 / np.sqrt(0.0199)])


# ---- reference updates over arrays, with varying gradients ---------------------------------

RNG = np.random.default_rng(0)
W0 = {"a": RNG.standard_normal((3, 2)), "b": RNG.standard_normal(4)}
GRADS = [{k: RNG.standard_normal(v.shape) for k, v in W0.items()} for _ in range(4)]


def ref_sgd(lr, mu=0.0, nesterov=False, wd=0.0):
    def run(w, gs):
        buf = 0.0
        for g in gs:
            g = g + wd * w
            buf = mu * buf + g
            w = w - lr * ((g + mu * buf) if nesterov else buf)
        return w
    return run


def ref_adam(lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, decoupled=False):
    def run(w, gs):
        m = v = 0.0
        for t, g in enumerate(gs, 1):
            if decoupled:
                w = w - lr * wd * w
            else:
                g = g + wd * w
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g ** 2
            w = w - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        return w
    return run


def ref_rmsprop(lr, alpha=0.99, eps=1e-8, mu=0.0, centered=False, wd=0.0):
    def run(w, gs):
        v = ga = buf = 0.0
        for g in gs:
            g = g + wd * w
            v = alpha * v + (1 - alpha) * g ** 2
            ga = alpha * ga + (1 - alpha) * g
            denom = np.sqrt(v - ga ** 2 if centered else v) + eps
            buf = mu * buf + g / denom
            w = w - lr * buf
        return w
    return run


def ref_adagrad(lr, eps=1e-10, init=0.0, wd=0.0):
    def run(w, gs):
        acc = init
        for g in gs:
            g = g + wd * w
            acc = acc + g ** 2
            w = w - lr * g / (np.sqrt(acc) + eps)
        return w
    return run


CASES = {
    "sgd": (lambda: SGD(0.1), ref_sgd(0.1)),
    "sgd-wd": (lambda: SGD(0.1, weight_decay=0.1), ref_sgd(0.1, wd=0.1)),
    "momentum": (lambda: SGD(0.05, momentum=0.9), ref_sgd(0.05, 0.9)),
    "nesterov-wd": (lambda: SGD(0.05, 0.8, True, 0.01), ref_sgd(0.05, 0.8, True, 0.01)),
    "adam": (lambda: Adam(0.01), ref_adam(0.01)),
    "adam-l2": (lambda: Adam(0.01, 0.8, 0.99, 1e-6, 0.1), ref_adam(0.01, 0.8, 0.99, 1e-6, 0.1)),
    "adamw": (lambda: AdamW(0.01, weight_decay=0.1), ref_adam(0.01, wd=0.1, decoupled=True)),
    "rmsprop": (lambda: RMSprop(0.01), ref_rmsprop(0.01)),
    "rmsprop-centered-momentum": (lambda: RMSprop(0.01, 0.9, 1e-6, 0.5, True, 0.01),
                                  ref_rmsprop(0.01, 0.9, 1e-6, 0.5, True, 0.01)),
    "adagrad": (lambda: Adagrad(0.1), ref_adagrad(0.1)),
    "adagrad-init-wd": (lambda: Adagrad(0.1, 1e-8, 0.5, 0.01), ref_adagrad(0.1, 1e-8, 0.5, 0.01)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_functional_form_matches_reference(name):
    make, ref = CASES[name]
    opt = make()
    w = {"a": W0["a"], "b": [W0["b"]]}
    for g in GRADS:
        w_prev = w
        w = opt.step(w, {"a": g["a"], "b": [g["b"]]})
        assert w is not w_prev and isinstance(w["b"], list)
    for k in W0:
        got = w[k] if k == "a" else w[k][0]
        np.testing.assert_allclose(got, ref(W0[k], [g[k] for g in GRADS]), rtol=1e-12)
    assert opt.steps == len(GRADS)


@pytest.mark.parametrize("name", list(CASES))
def test_container_form_matches_reference(name):
    make, ref = CASES[name]
    opt = make()
    p = Params(**W0)
    for g in GRADS:
        assert opt.step(p, g) is p
    for k in W0:
        np.testing.assert_allclose(p.values[k], ref(W0[k], [g[k] for g in GRADS]), rtol=1e-12)
    assert set(opt.state) == set(W0) or not opt.slots


def test_functional_form_leaves_input_untouched():
    w = {"a": W0["a"].copy()}
    Adam(0.1).step(w, {"a": GRADS[0]["a"]})
    np.testing.assert_array_equal(w["a"], W0["a"])


def test_none_gradients_are_skipped():
    opt = Adam(0.1)
    w = {"a": np.ones(2), "b": [np.ones(3), np.ones(1)]}
    new = opt.step(w, {"a": None, "b": [np.ones(3), None]})
    assert new["a"] is w["a"] and new["b"][1] is w["b"][1]
    assert not np.allclose(new["b"][0], 1.0)
    assert set(opt.state) == {"$['b'][0]"}  # state follows the leaf's path, not its position
    new2 = opt.step(w, {"a": np.ones(2), "b": None})
    assert new2["b"][0] is w["b"][0] and not np.allclose(new2["a"], 1.0)
    with pytest.raises(ValueError, match="mirror"):
        opt.step(w, {"a": np.ones(2), "b": np.ones(3)})


def test_container_frozen_and_unknown():
    p = Params(frozen=["f"], a=np.ones(2), f=np.ones(2))
    opt = SGD(0.5)
    opt.step(p, {"a": np.ones(2), "f": None})
    np.testing.assert_allclose(p.values["a"], 0.5)
    np.testing.assert_allclose(p.values["f"], 1.0)
    opt.step(p, {})  # nothing to do
    np.testing.assert_allclose(p.values["a"], 0.5)
    with pytest.raises(KeyError, match="not trainable"):
        opt.step(p, {"f": np.ones(2)})


class TiedParams(Params):
    """The stand-in plus ``canonical``: ``alias`` is a second name for ``a``."""

    def canonical(self, name):
        if name not in self.values and name != "alias":
            raise KeyError(name)
        return "a" if name == "alias" else name


def test_container_tied_alias_shares_the_update():
    p = TiedParams(a=np.ones(2))
    SGD(0.5).step(p, {"a": np.ones(2), "alias": np.ones(2)})  # one summed gradient, once
    np.testing.assert_allclose(p.values["a"], 0.5)
    SGD(0.5).step(p, {"alias": np.full(2, 2.0)})
    np.testing.assert_allclose(p.values["a"], -0.5)
    with pytest.raises(KeyError, match="not trainable: \\['nope'\\]"):
        SGD(0.5).step(p, {"nope": np.ones(2)})


def test_state_is_checked_against_parameters():
    opt = Adam(0.1)
    opt.step([np.ones(2)], [np.ones(2)])
    with pytest.raises(ValueError, match=r"state for '\$\[0\]'"):
        opt.step([np.ones(3)], [np.ones(3)])
    with pytest.raises(ValueError, match="shape"):
        Adam(0.1).step([np.ones(3)], [np.ones(2)])


def test_dtype_is_kept():
    w = Adam(0.1).step({"a": np.ones(3, np.float32)}, {"a": np.ones(3)})
    assert w["a"].dtype == np.float32
    p = Params(a=np.ones(2))
    p.values["a"] = p.values["a"].astype(np.float32)
    AdamW(0.1).step(p, {"a": np.ones(2)})
    assert p.values["a"].dtype == np.float32


# ---- schedules -----------------------------------------------------------------------------

def test_schedules_values():
    c = cosine_decay(1.0, 10, final=0.1)
    np.testing.assert_allclose([c(0), c(5), c(10), c(20)], [1.0, 0.55, 0.1, 0.1])
    assert cosine_decay(2.0, 4)(2) == pytest.approx(1.0)
    w = linear_warmup(1.0, 4)
    np.testing.assert_allclose([w(0), w(1), w(3), w(4), w(100)], [0.25, 0.5, 1.0, 1.0, 1.0])
    wc = linear_warmup(1.0, 2, then=cosine_decay(1.0, 4))
    np.testing.assert_allclose([wc(0), wc(1), wc(2), wc(4), wc(6)], [0.5, 1.0, 1.0, 0.5, 0.0])
    np.testing.assert_allclose(linear_warmup(1.0, 2, then=0.3)(5), 0.3)
    e = exponential_decay(1.0, 0.5, 10)
    np.testing.assert_allclose([e(0), e(5), e(10), e(20)], [1.0, 0.5 ** 0.5, 0.5, 0.25])
    s = step_decay(1.0, 0.1, 3)
    np.testing.assert_allclose([s(0), s(2), s(3), s(7)], [1.0, 1.0, 0.1, 0.01])
    assert constant(0.3)(99) == 0.3
    with pytest.raises(ValueError):
        cosine_decay(1.0, 0)


def test_optimizer_follows_schedule():
    seen = []
    opt = SGD(lambda t: seen.append(t) or 0.1 * (t + 1))
    # w -= lr_t * 1 with lr_t = 0.1, 0.2, 0.3
    np.testing.assert_allclose(run_scalar(opt), [0.9, 0.7, 0.4])
    assert seen == [0, 1, 2]
    assert opt.current_lr() == pytest.approx(0.4)


# ---- clipping ------------------------------------------------------------------------------

def test_clip_grad_norm_global():
    g = {"a": np.array([3.0, 0.0]), "b": [np.array([4.0])], "c": None}
    assert global_norm(g) == pytest.approx(5.0)
    clipped, total = clip_grad_norm(g, 1.0)
    assert total == pytest.approx(5.0) and clipped["c"] is None
    np.testing.assert_allclose(clipped["a"], [0.6, 0.0])
    np.testing.assert_allclose(clipped["b"][0], [0.8])
    same, total = clip_grad_norm(g, 10.0)
    assert same is g and total == pytest.approx(5.0)


def test_per_leaf_clipping():
    g = {"a": np.array([3.0, 4.0]), "b": np.array([0.3, 0.4])}
    c = clip_leaf_norm(g, 1.0)
    np.testing.assert_allclose(c["a"], [0.6, 0.8])
    np.testing.assert_allclose(c["b"], [0.3, 0.4])
    v = clip_grad_value({"a": np.array([-5.0, 0.5, 5.0]), "n": None}, 1.0)
    np.testing.assert_allclose(v["a"], [-1.0, 0.5, 1.0])
    assert v["n"] is None


def test_optimizer_clip_norm():
    w = SGD(1.0, clip_norm=1.0).step([np.zeros(2), np.zeros(1)],
                                     [np.array([3.0, 0.0]), np.array([4.0])])
    np.testing.assert_allclose(w[0], [-0.6, 0.0])
    np.testing.assert_allclose(w[1], [-0.8])


# ---- saved state ---------------------------------------------------------------------------

def test_state_dict_roundtrip_through_npz(tmp_path):
    opt = Adam(0.01)
    p = Params(**W0)
    for g in GRADS[:2]:
        opt.step(p, g)
    path = tmp_path / "opt.npz"
    opt.save(path)
    with np.load(path, allow_pickle=False) as f:
        assert int(f["step"]) == 2 and set(f.files) == {"step", "optimizer", "m/a", "m/b",
                                                         "v/a", "v/b"}
    resumed = Adam(0.01)
    resumed.load(path)
    q = Params(**{k: v.copy() for k, v in p.values.items()})
    for g in GRADS[2:]:
        opt.step(p, g)
        resumed.step(q, g)
    for k in W0:
        np.testing.assert_array_equal(p.values[k], q.values[k])
        np.testing.assert_allclose(p.values[k], ref_adam(0.01)(W0[k], [g[k] for g in GRADS]))
    with pytest.raises(ValueError, match="saved by Adam"):
        SGD(0.1, momentum=0.9).load(path)
    bad = opt.state_dict()
    bad["z/a"] = bad.pop("v/a")
    with pytest.raises(KeyError, match="unexpected entry 'z/a'"):
        Adam().load_state_dict(bad)


def test_checkpoint_pytree_and_container(tmp_path):
    opt = Momentum(0.1)
    w = {"a": np.ones(2), "b": [np.full(3, 2.0)]}
    w = opt.step(w, {"a": np.ones(2), "b": [np.ones(3)]})
    save_checkpoint(tmp_path / "ck.npz", w, opt)
    opt2 = Momentum(0.1)
    w2 = load_checkpoint(tmp_path / "ck.npz", {"a": np.zeros(2), "b": [np.zeros(3)]}, opt2)
    np.testing.assert_array_equal(w2["b"][0], w["b"][0])
    g = {"a": np.ones(2), "b": [np.ones(3)]}
    np.testing.assert_array_equal(opt.step(w, g)["a"], opt2.step(w2, g)["a"])

    p = Params(a=np.ones(2), b=np.ones(3))
    opt = Adagrad(0.1)
    opt.step(p, {"a": np.ones(2), "b": np.ones(3)})
    save_checkpoint(tmp_path / "p.npz", p, opt)
    q, opt_q = Params(a=np.zeros(2), b=np.zeros(3)), Adagrad(0.1)
    assert load_checkpoint(tmp_path / "p.npz", q, opt_q) is q
    np.testing.assert_array_equal(q.values["a"], p.values["a"])
    assert opt_q.steps == 1
    with pytest.raises(KeyError, match="missing \\['c'\\]"):
        load_checkpoint(tmp_path / "p.npz", Params(a=np.zeros(2), b=np.zeros(3), c=np.zeros(1)))
    with pytest.raises(ValueError, match="'b' is float64\\[3\\]"):
        load_checkpoint(tmp_path / "p.npz", Params(a=np.zeros(2), b=np.zeros(4)))
    with pytest.raises(KeyError, match="no optimizer state"):
        save_checkpoint(tmp_path / "bare.npz", p)
        load_checkpoint(tmp_path / "bare.npz", p, Adagrad(0.1))
