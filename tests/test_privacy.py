"""Differential privacy: ghost-clipping norms equal vmap(grad) norms, the noised update has
the distribution the formula gives, and epsilon is dp-accounting's own."""

from __future__ import annotations

import numpy as np
import pytest

import pycograd as pg
from pycograd import nn
from pycograd.core.var import PRIM
from pycograd.privacy.dpsgd import ORDERS
from pycograd.privacy.ghost import ghost_pass

B = 7


def _per_example(f, w, *batch):
    def one(w, *ex):
        return f(w, *[e[None] for e in ex])[0]
    return pg.vmap(pg.grad(one, argnums=0), in_axes=(None,) + (0,) * len(batch))(w, *batch)


def _check(f, w, *batch, how):
    """Ghost norms and clipped sums equal those of vmap(grad); ``how`` maps each weight to
    the way its norms must be found."""
    res = ghost_pass(f, w, batch)
    leaves, td = pg.tree_flatten(w)
    assert dict(zip(_names(td), res.how)) == how
    pe = _per_example(f, w, *batch)
    pe_leaves = pg.tree_flatten(pe)[0]
    ref = np.sqrt(sum(np.sum(g.reshape(B, -1) ** 2, axis=1) for g in pe_leaves))
    np.testing.assert_allclose(res.norms, ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(pg.per_sample_grad_norms(f, w, *batch), ref, rtol=1e-10,
                               atol=1e-10)
    scale = np.random.default_rng(1).uniform(0.1, 1.0, B)
    clipped = pg.tree_flatten(res.clipped_sum(scale))[0]
    for c, g in zip(clipped, pe_leaves):
        np.testing.assert_allclose(c, np.tensordot(scale, g, axes=1), rtol=1e-10, atol=1e-12)
    return res


def _names(td):
    return list(td.aux[0]) if td.kind is dict else list(range(td.num_leaves))


rng = np.random.default_rng(0)


def test_mlp_linear_and_bias_are_ghost():
    w = {"w1": rng.standard_normal((5, 4)), "b1": rng.standard_normal(5),
         "w2": rng.standard_normal((3, 5)), "b2": rng.standard_normal(3)}

    def f(w, x, y):
        h = nn.relu(nn.linear(x, w["w1"], w["b1"]))
        return nn.cross_entropy(nn.linear(h, w["w2"], w["b2"]), y, reduction="none")

    _check(f, w, rng.standard_normal((B, 4)), rng.integers(0, 3, B),
           how={"w1": "ghost matmul", "b1": "ghost add", "w2": "ghost matmul",
                "b2": "ghost add"})



def test_biases_subtracted_broadcast_and_float32_sum_as_vmap():
    """A bias's clipped sum is one product with the unscaled cotangent: its sign when
    subtracted (either side) and its sums over a broadcast time axis and over a kept unit
    axis match vmap(grad)."""
    w = {"V": rng.standard_normal((4, 5)), "a": rng.standard_normal(5),
         "c": rng.standard_normal((1, 5)), "d": rng.standard_normal(5),
         "W": rng.standard_normal((5, 2))}

    def f(w, x):
        t = x @ w["V"]  # (B, T, 5)
        h = np.tanh(w["a"] - (t - w["c"]))
        return np.sum((h + w["d"]) @ w["W"], axis=(1, 2)) ** 2

    res = _check(f, w, rng.standard_normal((B, 3, 4)),
                 how={"V": "ghost matmul", "a": "ghost subtract", "c": "ghost subtract",
                      "d": "ghost add", "W": "ghost matmul"})
    total = res.clipped_sum(np.ones(B), release=True)
    assert total["c"].shape == (1, 5)


def test_weights_and_their_views_stay_on_the_tape():
    """``x @ W.T`` keeps ``W.T`` (a view of a weight costs no memory): the clipped sum does
    not replay it, and the replay of the hidden activation stops at the weights."""
    w = {"w1": rng.standard_normal((5, 4)), "b1": rng.standard_normal(5),
         "w2": rng.standard_normal((3, 5)), "b2": rng.standard_normal(3)}

    def f(w, x, y):
        h = nn.relu(nn.linear(x, w["w1"], w["b1"]))
        return nn.cross_entropy(nn.linear(h, w["w2"], w["b2"]), y, reduction="none")

    res = _check(f, w, rng.standard_normal((B, 4)), rng.integers(0, 3, B),
                 how={"w1": "ghost matmul", "b1": "ghost add", "w2": "ghost matmul",
                      "b2": "ghost add"})
    assert sorted(u.replay for u in res._uses if u.rule.name == "matmul") == [(), (0,)]
    assert "transpose" not in {v[PRIM].name for v, _ in res._chain}
    assert res._chain  # the hidden activation is replayed

@pytest.mark.parametrize("t,d,p", [(3, 8, 8), (6, 4, 3)], ids=["gram", "materialised"])
def test_sequence_linear_layer_norm_embedding(t, d, p):
    w = {"E": rng.standard_normal((11, d)), "W": rng.standard_normal((p, d)),
         "g": rng.standard_normal(d), "b": rng.standard_normal(d),
         "v": rng.standard_normal(p)}

    def f(w, ids):
        h = nn.layer_norm(nn.embedding(ids, w["E"]), w["g"], w["b"])
        h = np.tanh(nn.linear(h, w["W"]))
        return np.sum(h * w["v"], axis=(1, 2)) + np.sum(h ** 2, axis=(1, 2)) * np.sum(w["v"])

    ids = rng.integers(0, 11, (B, t))
    ids[0, :] = 3  # repeated ids within an example accumulate in one row
    # layer_norm's scale and shift are two ghost uses of one node
    _check(f, w, ids, how={"E": "ghost getitem", "g": "ghost layer_norm",
                           "b": "ghost layer_norm", "W": "ghost matmul", "v": "vmap"})


def test_conv_and_unsupported_ops_fall_back():
    w = {"k": rng.standard_normal((4, 2, 3, 3)), "c": rng.standard_normal(4),
         "s": rng.standard_normal(())}

    def f(w, x):
        y = np.tanh(nn.conv2d(x, w["k"], w["c"], padding=1, stride=2))
        return np.sum(y ** 2, axis=(1, 2, 3)) / (1 + w["s"] ** 2)

    _check(f, w, rng.standard_normal((B, 2, 6, 6)),
           how={"k": "ghost matmul", "c": "ghost add", "s": "vmap"})


def test_grouped_conv_and_unused_weight():
    w = {"k": rng.standard_normal((4, 1, 2, 2)), "unused": np.ones(3)}

    def f(w, x):
        return np.sum(nn.conv2d(x, w["k"], groups=2) ** 2, axis=(1, 2, 3))

    res = _check(f, w, rng.standard_normal((B, 2, 4, 4)),
                 how={"k": "ghost matmul", "unused": "unused"})
    assert np.all(res.clipped_sum(np.ones(B))["unused"] == 0)


def test_paramdict_objective_and_errors():
    weights = pg.ParamDict(W=rng.standard_normal((3, 2)), b=np.zeros(2))
    X = rng.standard_normal((B, 3))

    def per_example(x):
        return np.sum((x @ W + b) ** 2, axis=1)  # noqa: F821 - bound by the ParamDict

    norms = pg.per_sample_grad_norms(per_example, weights, X)
    ref = _per_example(lambda w, x: np.sum((x @ w["W"] + w["b"]) ** 2, axis=1),
                       weights.trainable(), X)
    expect = np.sqrt(np.sum(ref["W"].reshape(B, -1) ** 2, 1) + np.sum(ref["b"] ** 2, 1))
    np.testing.assert_allclose(norms, expect, rtol=1e-10)
    with pytest.raises(pg.NonScalarOutputError, match="one loss per example"):
        pg.per_sample_grad_norms(lambda x: np.mean(x @ W), weights, X)  # noqa: F821


def _linear_problem():
    w = {"W": rng.standard_normal((4, 3)), "b": rng.standard_normal(3)}
    X, y = rng.standard_normal((B, 4)) * 3, rng.integers(0, 3, B)

    def f(w, x, y):
        return nn.cross_entropy(x @ w["W"] + w["b"], y, reduction="none")
    return f, w, X, y


def test_noised_update_matches_the_formula():
    """Over many keys, the private gradient's mean is the clipped mean and its standard
    deviation is noise_multiplier * C / B, per coordinate."""
    f, w, X, y = _linear_problem()
    C, sigma = 0.5, 1.3
    pe = _per_example(f, w, X, y)
    norms = np.sqrt(np.sum(pe["W"].reshape(B, -1) ** 2, 1) + np.sum(pe["b"] ** 2, 1))
    assert np.any(norms > C)  # some examples really are clipped
    scale = np.minimum(1.0, C / norms)
    expect = {k: np.tensordot(scale, pe[k], axes=1) / B for k in pe}
    dp = pg.DPSGD(0.1, clip_norm=C, noise_multiplier=sigma, key=42)
    draws = [dp.grad(f, w, X, y)[1] for _ in range(2000)]
    for k in expect:
        s = np.stack([d[k] for d in draws])
        sd = sigma * C / B
        np.testing.assert_allclose(s.mean(0), expect[k], atol=4 * sd / np.sqrt(len(draws)))
        np.testing.assert_allclose(s.std(0), sd, rtol=0.1)
    without_noise = pg.DPSGD(0.1, clip_norm=C, noise_multiplier=0.0).grad(f, w, X, y)[1]
    for k in expect:
        np.testing.assert_allclose(without_noise[k], expect[k], rtol=1e-10)



def test_noise_is_each_steps_own_philox_stream():
    """The generator rekeyed per step draws what a fresh ``Philox`` under the key
    ``(DPSGD key, step)`` draws, leaf by leaf in the weights' order."""
    f, w, X, y = _linear_problem()
    C, sigma = 0.5, 1.3
    clean = pg.DPSGD(0.1, clip_norm=C, noise_multiplier=0.0).grad(f, w, X, y)[1]
    dp = pg.DPSGD(0.1, clip_norm=C, noise_multiplier=sigma, key=7)
    for step in range(3):
        noisy = dp.grad(f, w, X, y)[1]
        gen = np.random.Generator(np.random.Philox(key=(dp._noise.key << 64) | step))
        for k in sorted(w):  # the tree order of a dict's leaves
            expect = (clean[k] * B + sigma * C * gen.standard_normal(w[k].shape)) / B
            np.testing.assert_allclose(noisy[k], expect, rtol=1e-12, atol=1e-15)

def test_epsilon_is_dp_accountings():
    import dp_accounting
    from dp_accounting import rdp

    f, w, X, y = _linear_problem()
    dp = pg.DPSGD(pg.SGD(0.1), clip_norm=1.0, noise_multiplier=1.1, dataset_size=100)
    for _ in range(5):
        _, g = dp.grad(f, w, X, y)
        w = dp.step(w, g)
    acc = rdp.RdpAccountant(list(ORDERS))
    acc.compose(dp_accounting.PoissonSampledDpEvent(
        B / 100, dp_accounting.GaussianDpEvent(1.1)), 5)
    assert dp.epsilon(1e-5) == pytest.approx(acc.get_epsilon(1e-5), rel=1e-12)
    assert 0 < dp.epsilon(1e-5) < np.inf
    assert pg.DPSGD(0.1, 1.0, 0.0).epsilon(1e-5) == 0.0


def test_dp_train_learns_and_reports_epsilon():
    X = rng.standard_normal((300, 2))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    weights = pg.ParamDict(W=np.zeros((2, 2)), b=np.zeros(2))

    def objective(x, y):
        return nn.cross_entropy(x @ W + b, y, reduction="none")  # noqa: F821

    seen = []
    res = pg.dp_train(weights, objective, X, y, steps=60, optimizer_or_lr=0.5,
                      clip_norm=1.0, noise_multiplier=1.0, batch_size=50, delta=1e-5,
                      callbacks=[lambda s, loss: seen.append(loss)])
    acc = np.mean(np.argmax(X @ weights["W"] + weights["b"], 1) == y)
    assert acc > 0.9 and res.last_loss < res.first_loss and len(seen) == 60
    assert res.steps == 60 and res.weights is weights

    import dp_accounting
    from dp_accounting import rdp

    acc = rdp.RdpAccountant(list(ORDERS))
    acc.compose(dp_accounting.PoissonSampledDpEvent(50 / 300, dp_accounting.GaussianDpEvent(1.0)),
                60)
    assert res.epsilon == pytest.approx(acc.get_epsilon(1e-5), rel=1e-12)


def test_ghost_clipping_memory_stays_near_a_plain_step():
    """Peak numpy memory (tracemalloc, deterministic) of a private gradient of an MLP is
    within 1.2x a plain gradient step, where vmap(grad) holds B copies of the gradients:
    the pass keeps no activation a plain backward would have freed (the hidden layer is
    replayed for the clipped sum) and frees each cotangent once it is scaled."""
    import tracemalloc

    r = np.random.default_rng(3)
    w = {"w1": r.standard_normal((64, 32)) * 0.2, "b1": np.zeros(64),
         "w2": r.standard_normal((10, 64)) * 0.2, "b2": np.zeros(10)}
    x, y = r.standard_normal((128, 32)), r.integers(0, 10, 128)

    def f(w, x, y):
        h = nn.relu(nn.linear(x, w["w1"], w["b1"]))
        return nn.cross_entropy(nn.linear(h, w["w2"], w["b2"]), y, reduction="none")

    plain = pg.grad(lambda w, x, y: np.mean(f(w, x, y)), argnums=0)
    dp = pg.DPSGD(0.1, clip_norm=1.0, noise_multiplier=1.0)

    def peak(fn):
        fn()
        tracemalloc.start()
        try:
            fn()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    ratio = peak(lambda: dp.grad(f, w, x, y)) / peak(lambda: plain(w, x, y))
    print(f"ghost peak memory {ratio:.2f}x plain")
    assert ratio <= 1.2, f"ghost clipping peak memory is {ratio:.2f}x a plain step"


def _layer_norm_problem():
    w = {"V": rng.standard_normal((4, 6)), "g": rng.standard_normal(6),
         "b": rng.standard_normal(6), "W": rng.standard_normal((6, 3))}

    def f(w, x):  # layer_norm's scale and shift: two ghost uses of one node
        h = np.tanh(nn.layer_norm(x @ w["V"], w["g"], w["b"]))
        return np.sum((h @ w["W"]) ** 2, axis=1)
    return f, w, (rng.standard_normal((B, 4)),)


@pytest.mark.parametrize("problem", ["linear", "layer_norm"])
def test_release_frees_the_pass_and_sums_once(problem):
    if problem == "linear":
        f, w, X, y = _linear_problem()
        batch = (X, y)
    else:
        f, w, batch = _layer_norm_problem()
    scale = np.random.default_rng(2).uniform(0.1, 1.0, B)
    kept = ghost_pass(f, w, batch).clipped_sum(scale)
    pe = _per_example(f, w, *batch)
    for k in kept:
        np.testing.assert_allclose(kept[k], np.tensordot(scale, pe[k], axes=1), rtol=1e-10)
    res = ghost_pass(f, w, batch)
    how = res.how
    freed = res.clipped_sum(scale, release=True)
    for k in kept:
        np.testing.assert_array_equal(freed[k], kept[k])
    assert res.how == how and all(u.g is None and u.node is None for u in res._uses)
    with pytest.raises(pg.PrivacyError, match="already consumed"):
        res.clipped_sum(scale, release=True)


def test_replay_writes_only_into_its_own_dead_arrays():
    """The hidden activation is recomputed for the clipped sum, in place where an array the
    replay made is read by no one else: not into a weight (``c`` reaches the layer through a
    view), nor into the data, nor into an array that a live view still reads (``r``), nor
    into one smaller than the result (``k``)."""
    w = {"V": rng.standard_normal((4, 6)), "c": rng.standard_normal(6),
         "W": rng.standard_normal((6, 3))}

    def f(w, x):
        t = x @ w["V"]
        r = np.reshape(np.reshape(t, (len(x), 2, 3)), (len(x), 6))  # a view of t
        k = np.sum(t, axis=1, keepdims=True) * 0.5  # free, but too small to hold the sum
        h = np.tanh((t * 2.0 + r + np.reshape(w["c"], (1, 6))) + k + x[:, :1])
        return np.sum((h @ w["W"]) ** 2, axis=1)

    x = rng.standard_normal((B, 4))
    before = {k: v.copy() for k, v in w.items()}, x.copy()
    res = _check(f, w, x, how={"V": "ghost matmul", "c": "vmap", "W": "ghost matmul"})
    assert any(u.replay for u in res._uses)  # the check above did replay the activations
    for k in w:
        np.testing.assert_array_equal(w[k], before[0][k])
    np.testing.assert_array_equal(x, before[1])


def test_activations_behind_a_custom_rule_stay_on_the_tape():
    """A node that runs user code is not replayed: its activation is kept instead."""
    @pg.custom_vjp
    def squash(z):
        return np.tanh(z)

    squash.defvjp(lambda z: (np.tanh(z), np.tanh(z)), lambda t, g: (g * (1 - t ** 2),))
    w = {"V": rng.standard_normal((4, 5)), "W": rng.standard_normal((5, 3))}

    def f(w, x):
        return np.sum(squash(x @ w["V"]) @ w["W"], axis=1) ** 2

    res = _check(f, w, rng.standard_normal((B, 4)), how={"V": "ghost matmul",
                                                         "W": "ghost matmul"})
    (layer,) = [u for u in res._uses if u.leaf is res._leaves[list(w).index("W")]]
    assert layer.node[PRIM].name == "matmul" and 0 not in layer.replay


def test_bad_inputs_are_named():
    f, w, X, y = _linear_problem()
    with pytest.raises(pg.PrivacyError, match="first \\(example\\) axis"):
        pg.per_sample_grad_norms(f, w, X, y[:3])
    with pytest.raises(pg.PrivacyError, match="real weights"):
        pg.per_sample_grad_norms(lambda w, x: np.abs(x @ w["W"]).sum(1),
                                 {"W": np.ones((4, 3), complex)}, X)
    with pytest.raises(pg.PrivacyError, match="clip_norm must be positive"):
        pg.DPSGD(0.1, clip_norm=0.0, noise_multiplier=1.0)
    assert isinstance(pg.PrivacyError("x"), pg.PycogradError)
