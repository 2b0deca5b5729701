"""Ambient weights under ``vmap``: per-sample gradients of a forward that reads its weights
by bare name, through ``weights.functional`` / ``weights.bind``, checked against a loop of
``weights.grad`` over single examples."""

import numpy as np

from pycograd import grad, nn, value_and_grad, vmap
from pycograd.params import ParamDict, frozen, tied

rng = np.random.default_rng(0)
N, D, H, C = 5, 4, 6, 3
X = rng.standard_normal((N, D))
Y = rng.integers(0, C, N)

# Module-level weights, read by bare name as module globals.
w1 = rng.standard_normal((H, D)) * 0.5
b1 = rng.standard_normal(H) * 0.1
w2 = rng.standard_normal((C, H)) * 0.5
WEIGHTS = ParamDict(w1=w1, b1=b1, w2=w2)
ORIGINAL = {"w1": w1, "b1": b1, "w2": w2}


# A nested ParamDict exposed for good in this module: ``enc`` is a group, ``head`` an array.
GROUPED = ParamDict(enc={"w": rng.standard_normal((H, D)) * 0.5,
                         "b": rng.standard_normal(H) * 0.1},
                    head=rng.standard_normal((C, H)) * 0.5)
GROUPED.bind_globals(globals())


def forward(x):
    return nn.linear(np.tanh(nn.linear(x, w1, b1)), w2)


def loss(x, y):
    """The loss of one example (``x``: ``(D,)``, ``y``: a label) or the mean over a batch."""
    return nn.cross_entropy(forward(x), y)


def grouped_loss(x, y):
    h = nn.relu(nn.linear(x, enc.w, enc.b))  # noqa: F821 (bound by GROUPED.bind_globals)
    return nn.cross_entropy(nn.linear(h, head), y)  # noqa: F821


def per_sample_by_loop(weights, objective, *data):
    """The reference: ``weights.grad`` on each example alone, stacked by name."""
    grads = [weights.grad(objective, *(a[i] for a in data))[1] for i in range(len(data[0]))]
    return {n: np.stack([g[n] for g in grads]) for n in weights.trainable()}


def assert_per_sample_grads_match(weights, objective, *data):
    f = weights.functional(objective)
    got = vmap(grad(f, argnums=0), in_axes=(None,) + (0,) * len(data))(weights.trainable(), *data)
    want = per_sample_by_loop(weights, objective, *data)
    assert set(got) == set(want)
    for name in want:
        assert got[name].shape == (len(data[0]),) + np.shape(weights[name])
        np.testing.assert_allclose(got[name], want[name], rtol=1e-10, atol=1e-12,
                                   err_msg=name)
    return got


def test_per_sample_grads_of_module_global_weights():
    got = assert_per_sample_grads_match(WEIGHTS, loss, X, Y)
    # examples differ, so their gradients do: vmap did not broadcast one of them
    assert not np.allclose(got["w1"][0], got["w1"][1])


def test_globals_hold_the_arrays_again_after_vmap():
    vmap(grad(WEIGHTS.functional(loss), argnums=0), in_axes=(None, 0, 0))(WEIGHTS.trainable(), X, Y)
    for name, array in ORIGINAL.items():
        assert globals()[name] is array


def test_per_sample_grads_average_to_the_batch_gradient():
    per_sample = vmap(grad(WEIGHTS.functional(loss), argnums=0), in_axes=(None, 0, 0))
    per = per_sample(WEIGHTS.trainable(), X, Y)
    _, batch = WEIGHTS.grad(loss, X, Y)
    for name in ORIGINAL:
        np.testing.assert_allclose(per[name].mean(axis=0), batch[name], rtol=1e-10, atol=1e-13)


def test_per_sample_values_and_grads_of_closure_weights():
    """Weights captured by a closure (how the demos write models) rebind the same way."""
    v = rng.standard_normal(D)
    s = np.array(0.3)
    weights = ParamDict(v=v, s=s)

    def objective(x, t):
        return (np.sin(x @ v) * s - t) ** 2

    T = rng.standard_normal(N)
    vals, got = vmap(value_and_grad(weights.functional(objective), argnums=0),
                     in_axes=(None, 0, 0))(weights.trainable(), X, T)
    np.testing.assert_allclose(vals, (np.sin(X @ v) * s - T) ** 2, rtol=1e-12)
    r = np.sin(X @ v) * s - T
    np.testing.assert_allclose(got["v"], (2 * r * s * np.cos(X @ v))[:, None] * X, rtol=1e-10)
    np.testing.assert_allclose(got["s"], 2 * r * np.sin(X @ v), rtol=1e-10)
    assert_per_sample_grads_match(weights, objective, X, T)


def test_per_sample_grads_of_nested_groups():
    """``enc.w`` is read as an attribute of the group bound to the bare name ``enc``."""
    got = assert_per_sample_grads_match(GROUPED, grouped_loss, X, Y)
    assert set(got) == {"enc.w", "enc.b", "head"}
    assert globals()["enc"].w is GROUPED["enc.w"]      # outside: the group of arrays again


def test_tied_weights_get_the_summed_per_sample_gradient():
    """One array under two names: each example's gradient is the sum over both uses."""
    emb = rng.standard_normal((C, D)) * 0.5
    out = emb                     # the output layer reuses the embedding
    weights = ParamDict(emb=emb, out=tied["emb"])

    def objective(i, y):
        return nn.cross_entropy(nn.linear(np.tanh(emb[i]), out), y)

    idx = rng.integers(0, C, N)
    got = assert_per_sample_grads_match(weights, objective, idx, Y)
    assert set(got) == {"emb"}
    out_use = lambda o, e, i, y: nn.cross_entropy(nn.linear(np.tanh(e[i]), o), y)
    only_out = vmap(grad(out_use, argnums=0), in_axes=(None, None, 0, 0))(emb, emb, idx, Y)
    assert not np.allclose(got["emb"], only_out)      # the embedding use contributes too


def test_frozen_weights_are_read_but_not_differentiated():
    scale = np.array([2.0, -1.0, 0.5, 1.5])
    w = rng.standard_normal(D)
    weights = ParamDict(w=w, scale=frozen[scale])

    def objective(x):
        return np.sum(np.tanh(x * scale) * w) ** 2

    got = assert_per_sample_grads_match(weights, objective, X)
    assert set(got) == {"w"}
    u = np.tanh(X * scale)
    np.testing.assert_allclose(got["w"], 2 * (u @ w)[:, None] * u, rtol=1e-10)


def test_ensemble_of_weights_under_vmap():
    """Batch the weights instead of the data: ``K`` weight sets through one ambient forward,
    each with its own loss and gradient, as a loop over ``weights.bind`` gives."""
    K = 3
    stacked = {n: np.stack([a * (1 + 0.1 * k) for k in range(K)]) for n, a in ORIGINAL.items()}
    f = WEIGHTS.functional(loss)
    vals, grads = vmap(value_and_grad(f, argnums=0), in_axes=(0, None, None))(stacked, X, Y)
    for k in range(K):
        member = {n: a[k] for n, a in stacked.items()}
        with WEIGHTS.bind(member, loss):
            np.testing.assert_allclose(vals[k], loss(X, Y), rtol=1e-12)
        ref = grad(f, argnums=0)(member, X, Y)
        for n in ORIGINAL:
            np.testing.assert_allclose(grads[n][k], ref[n], rtol=1e-10, atol=1e-13)


def test_bind_inside_a_vmapped_function():
    """``weights.bind(values, fn)`` used directly in the function vmap traces."""

    def per_example(values, x, y):
        with WEIGHTS.bind(values, loss):
            return loss(x, y)

    got = vmap(grad(per_example, argnums=0), in_axes=(None, 0, 0))(WEIGHTS.trainable(), X, Y)
    want = per_sample_by_loop(WEIGHTS, loss, X, Y)
    for n in ORIGINAL:
        np.testing.assert_allclose(got[n], want[n], rtol=1e-10, atol=1e-12)
    assert globals()["w1"] is w1


def test_weights_grad_itself_under_vmap():
    """The plain form: vmap a function that calls ``weights.grad`` on one example."""
    vals, got = vmap(lambda x, y: WEIGHTS.grad(loss, x, y))(X, Y)
    want = per_sample_by_loop(WEIGHTS, loss, X, Y)
    np.testing.assert_allclose(vals, [loss(x, y) for x, y in zip(X, Y)], rtol=1e-12)
    for n in ORIGINAL:
        np.testing.assert_allclose(got[n], want[n], rtol=1e-10, atol=1e-12)
