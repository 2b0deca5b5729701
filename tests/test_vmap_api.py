"""vmap's API: the seed README's per-sample gradients, in_axes / out_axes / axis_size,
nesting, pytrees, errors, the loop fallback, and indexing with batched indices."""

from __future__ import annotations

import numpy as np
import pytest

import pycograd
import pycograd.nn as nn
from pycograd import NoRuleError, ShapeError, cross_entropy, grad, jvp, value_and_grad, vmap
from pycograd.core.primitive import REGISTRY, primitive
from pycograd.core.trace import bind

RNG = np.random.default_rng(0)


def loop(f, *args, in_axes=0):
    """The reference: f applied to each example by a Python loop, stacked."""
    axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
    n = next(np.shape(a)[ax] for a, ax in zip(args, axes) if ax is not None)
    outs = [f(*[a if ax is None else np.take(a, i, axis=ax) for a, ax in zip(args, axes)])
            for i in range(n)]
    return np.stack(outs)


# ---- the seed README example ----------------------------------------------------------

def per_example_loss(w, b, x, y):  # ONE (2,) point + ONE label -> scalar
    return cross_entropy(x @ w + b, y)


@pytest.mark.parametrize("labels", ["one-hot", "integer"])
def test_readme_per_sample_gradients(labels):
    n = 7
    X = RNG.normal(size=(n, 2))
    lab = RNG.integers(0, 3, n)
    Y = np.eye(3)[lab] if labels == "one-hot" else lab
    w = np.zeros((2, 3))
    b = np.zeros(3)
    gw, gb, _, _ = vmap(grad(per_example_loss), in_axes=(None, None, 0, 0))(w, b, X, Y)
    assert gw.shape == (n, 2, 3)
    assert gb.shape == (n, 3)
    full_w, full_b = grad(lambda w, b: cross_entropy(X @ w + b, Y))(w, b)
    np.testing.assert_allclose(gw.mean(0), full_w, atol=1e-15)
    np.testing.assert_allclose(gb.mean(0), full_b, atol=1e-15)


def test_readme_unpack_shapes_of_the_other_two():
    """grad with argnums=None returns one gradient per argument: x's per-example gradient
    (N, 2), and None for integer labels (so the 4-way unpack works with either label kind)."""
    X = RNG.normal(size=(5, 2))
    w, b = RNG.normal(size=(2, 3)), RNG.normal(size=3)
    out = vmap(grad(per_example_loss), in_axes=(None, None, 0, 0))(w, b, X, RNG.integers(0, 3, 5))
    assert len(out) == 4 and out[2].shape == (5, 2) and out[3] is None
    out = vmap(grad(per_example_loss), in_axes=(None, None, 0, 0))(w, b, X, np.eye(3)[[0] * 5])
    assert out[3].shape == (5, 3)


def test_per_sample_gradients_match_a_loop():
    X, Y = RNG.normal(size=(6, 2)), RNG.integers(0, 3, 6)
    w, b = RNG.normal(size=(2, 3)), RNG.normal(size=3)
    gw, gb, _, _ = vmap(grad(per_example_loss), in_axes=(None, None, 0, 0))(w, b, X, Y)
    for i in range(6):
        ew, eb, _, _ = grad(per_example_loss)(w, b, X[i], Y[i])
        np.testing.assert_allclose(gw[i], ew, rtol=1e-13)
        np.testing.assert_allclose(gb[i], eb, rtol=1e-13)


# ---- in_axes --------------------------------------------------------------------------

def f2(a, b):
    return np.sin(a) @ b


@pytest.mark.parametrize("in_axes, a_shape, b_shape", [
    (0, (4, 3, 2), (4, 2, 5)),
    ((0, None), (4, 3, 2), (2, 5)),
    ((None, 0), (3, 2), (4, 2, 5)),
    ((1, 0), (3, 4, 2), (4, 2, 5)),
    ((-1, -1), (3, 2, 4), (2, 5, 4)),
    ([0, 2], (4, 3, 2), (2, 5, 4)),
])
def test_in_axes(in_axes, a_shape, b_shape):
    a, b = RNG.normal(size=a_shape), RNG.normal(size=b_shape)
    axes = tuple(in_axes) if isinstance(in_axes, (tuple, list)) else (in_axes, in_axes)
    got = vmap(f2, in_axes=in_axes)(a, b)
    assert got.shape == (4, 3, 5)
    np.testing.assert_allclose(got, loop(f2, a, b, in_axes=axes), rtol=1e-13)


def test_in_axes_pytrees():
    params = {"w": RNG.normal(size=(3, 2)), "b": RNG.normal(size=(5, 2))}
    xs = (RNG.normal(size=(5, 3)), (RNG.normal(size=(3, 5)), 2.0))

    def f(p, x):
        x0, (x1, scale) = x
        return np.tanh(x0 @ p["w"] + p["b"]) * scale + np.sum(x1)

    got = vmap(f, in_axes=({"w": None, "b": 0}, (0, (1, None))))(params, xs)
    want = np.stack([f({"w": params["w"], "b": params["b"][i]},
                       (xs[0][i], (xs[1][0][:, i], 2.0))) for i in range(5)])
    np.testing.assert_allclose(got, want, rtol=1e-13)


def test_in_axes_prefix_tree_broadcasts_over_a_subtree():
    tree = {"a": RNG.normal(size=(4, 2)), "b": RNG.normal(size=(4,))}
    got = vmap(lambda t, c: t["a"] * t["b"][..., None] + c, in_axes=(0, None))(tree, 1.0)
    np.testing.assert_allclose(got, tree["a"] * tree["b"][:, None] + 1.0)


def test_axis_size_with_no_mapped_argument():
    x = RNG.normal(size=3)
    out = vmap(lambda x: np.sin(x), in_axes=None, axis_size=4)(x)
    np.testing.assert_allclose(out, np.broadcast_to(np.sin(x), (4, 3)))
    out = vmap(lambda: np.ones(2), axis_size=3)()
    assert out.shape == (3, 2)


def test_unbatched_argument_behaves_like_an_array():
    """An in_axes=None argument is the same in every example: conversions and Python
    control flow on it are allowed."""
    seen = []

    def f(x, n, w):
        seen.append((w.shape, len(w)))
        arr = np.asarray(w)
        return x * int(n) + (arr.sum() if bool(w[0] > -10) else 0.0)

    x, w = RNG.normal(size=(4, 3)), RNG.normal(size=3)
    got = vmap(f, in_axes=(0, None, None))(x, np.array(3), w)
    np.testing.assert_allclose(got, x * 3 + w.sum())
    assert seen == [((3,), 3)]


def test_returning_an_unbatched_argument():
    w = RNG.normal(size=3)
    a, b = vmap(lambda x, w: (x, w), in_axes=(0, None))(RNG.normal(size=(2, 3)), w)
    np.testing.assert_array_equal(b, np.broadcast_to(w, (2, 3)))
    _, b = vmap(lambda x, w: (x, w), in_axes=(0, None), out_axes=(0, None))(a, w)
    np.testing.assert_array_equal(b, w)


# ---- out_axes and pytree outputs -------------------------------------------------------

def test_out_axes_variants():
    x = RNG.normal(size=(4, 2, 3))

    def f(x):
        return {"same": np.sin(x), "sum": np.sum(x), "const": np.arange(3.0)}

    out = vmap(f, out_axes={"same": 1, "sum": 0, "const": None})(x)
    np.testing.assert_allclose(out["same"], np.moveaxis(np.sin(x), 0, 1))
    np.testing.assert_allclose(out["sum"], x.sum(axis=(1, 2)))
    np.testing.assert_array_equal(out["const"], np.arange(3.0))
    last = vmap(np.sin, out_axes=-1)(x)
    np.testing.assert_allclose(last, np.moveaxis(np.sin(x), 0, -1))
    both = vmap(lambda x: (x, 2 * x), out_axes=(2, 0))(x)
    np.testing.assert_allclose(both[0], np.moveaxis(x, 0, 2))
    np.testing.assert_allclose(both[1], 2 * x)


def test_pytree_outputs_unbatched_leaf_is_broadcast():
    x = RNG.normal(size=(5, 2))
    out = vmap(lambda x: (x.sum(), [np.ones(2), {"y": x * 2}]))(x)
    np.testing.assert_allclose(out[0], x.sum(1))
    np.testing.assert_array_equal(out[1][0], np.ones((5, 2)))
    np.testing.assert_allclose(out[1][1]["y"], 2 * x)


# ---- nesting and composition ------------------------------------------------------------

def test_nested_vmap_outer_product():
    a, b = RNG.normal(size=(3, 2)), RNG.normal(size=(4, 2))
    got = vmap(vmap(lambda u, v: np.dot(u, v), in_axes=(None, 0)), in_axes=(0, None))(a, b)
    np.testing.assert_allclose(got, a @ b.T, rtol=1e-13)


def test_nested_vmap_both_mapped_over_different_axes():
    x = RNG.normal(size=(3, 4, 5))
    got = vmap(vmap(lambda r: np.sum(r ** 2), in_axes=1), in_axes=0)(x)
    np.testing.assert_allclose(got, np.sum(x ** 2, axis=1), rtol=1e-13)


def test_grad_of_vmap_and_vmap_of_value_and_grad():
    w = RNG.normal(size=(3,))
    X = RNG.normal(size=(6, 3))
    g = grad(lambda w: np.sum(vmap(lambda x: np.tanh(x @ w))(X)))(w)[0]
    np.testing.assert_allclose(g, grad(lambda w: np.sum(np.tanh(X @ w)))(w)[0], rtol=1e-13)
    vals, (gw, gx) = vmap(value_and_grad(lambda w, x: np.tanh(x @ w)), in_axes=(None, 0))(w, X)
    np.testing.assert_allclose(vals, np.tanh(X @ w))
    np.testing.assert_allclose(gw, (1 - np.tanh(X @ w) ** 2)[:, None] * X, rtol=1e-13)
    assert gx.shape == X.shape


# ---- errors ---------------------------------------------------------------------------

def test_error_wrong_in_axes_length():
    with pytest.raises(ValueError, match="in_axes has 3 entries but f was called with 2"):
        vmap(f2, in_axes=(0, 0, 0))(np.ones((2, 3)), np.ones((2, 3)))


def test_error_inconsistent_sizes():
    with pytest.raises(ShapeError, match="inconsistent sizes.*3 and 4"):
        vmap(f2)(np.ones((3, 2)), np.ones((4, 2)))
    with pytest.raises(ShapeError, match="inconsistent sizes"):
        vmap(np.sin, axis_size=5)(np.ones((3, 2)))


@pytest.mark.parametrize("ax", [2, -3])
def test_error_in_axes_out_of_range(ax):
    with pytest.raises(ShapeError, match=f"in_axes={ax}.*shape \\(2, 3\\)"):
        vmap(np.sin, in_axes=ax)(np.ones((2, 3)))


def test_error_scalar_cannot_be_mapped():
    with pytest.raises(ShapeError, match="in_axes=0"):
        vmap(np.sin)(1.5)


def test_error_out_axes_none_for_batched_output():
    with pytest.raises(ValueError, match="out_axes=None for output leaf 0.*depends on the mapped"):
        vmap(np.sin, out_axes=None)(np.ones((2, 3)))


def test_error_no_mapped_argument_without_axis_size():
    with pytest.raises(ValueError, match="axis_size"):
        vmap(np.sin, in_axes=None)(np.ones(3))


def test_error_in_axes_structure_mismatch():
    with pytest.raises(ValueError, match="keys"):
        vmap(lambda d: d["a"], in_axes=({"b": 0},))({"a": np.ones(2)})


# ---- the loop fallback ------------------------------------------------------------------

@pytest.fixture
def ruleless():
    """A primitive registered without a batching rule (and removed afterwards)."""
    p = primitive("_test_cumulative_max", lambda x: np.maximum.accumulate(x, axis=-1),
                  differentiable=False)
    yield p
    del REGISTRY[p.name]


def test_missing_batch_rule_names_the_primitive_and_the_fallback(ruleless):
    x = RNG.normal(size=(3, 4))
    with pytest.raises(NoRuleError, match="_test_cumulative_max has no batching rule.*"
                                          "loop_fallback=True"):
        vmap(lambda r: bind(ruleless, [r], {}))(x)


def test_loop_fallback_runs_per_example(ruleless):
    x = RNG.normal(size=(3, 4))
    got = vmap(lambda r: bind(ruleless, [r * 2], {}) + 1, loop_fallback=True)(x)
    np.testing.assert_allclose(got, np.maximum.accumulate(x * 2, axis=-1) + 1)
    got = vmap(lambda r: bind(ruleless, [r], {}), in_axes=1, loop_fallback=True)(x)
    np.testing.assert_allclose(got, np.maximum.accumulate(x.T, axis=-1))


# ---- indexing with batched indices --------------------------------------------------------

TABLE = RNG.normal(size=(10, 4))
TABLES = RNG.normal(size=(5, 10, 4))
IDS = np.array([3, 1, 4, 1, 5])
IDS2 = RNG.integers(0, 4, (5, 3))

INDEXING = {
    # name: (f(table, ids), in_axes, table, ids)
    "embedding": (lambda t, i: t[i], (None, 0), TABLE, IDS),
    "embedding-seq": (lambda t, i: t[i], (None, 0), TABLE, IDS2),
    "batched-table-and-ids": (lambda t, i: t[i], (0, 0), TABLES, IDS),
    "batched-table-seq": (lambda t, i: t[i], (0, 0), TABLES, IDS2),
    "batched-table-static-ids": (lambda t, i: t[i], (0, None), TABLES, IDS2[0]),
    "columns": (lambda t, i: t[:, i], (0, 0), TABLES, IDS2),
    "columns-scalar": (lambda t, i: t[:, i], (0, 0), TABLES, IDS2[:, 0]),
    "int-then-array": (lambda t, i: t[2, i], (None, 0), TABLE, IDS2),
    "array-slice": (lambda t, i: t[i, 1:3], (None, 0), TABLE, IDS2),
    "newaxis-array-slice": (lambda t, i: t[None, i, ::2], (None, 0), TABLE, IDS2),
    "ellipsis": (lambda t, i: t[..., i], (0, 0), TABLES, IDS2),
    "two-arrays": (lambda t, i: t[i, i[::-1]], (0, 0), TABLES, IDS2),
    "array-static-array": (lambda t, i: t[i, np.array([0, 3, 1])], (None, 0), TABLE, IDS2),
    "split-by-slice": (lambda t, i: t[i, :, i], (None, 0), RNG.normal(size=(6, 2, 6)), IDS2),
    "negative": (lambda t, i: t[-1 - i], (None, 0), TABLE, IDS2),
    "nn.embedding": (lambda t, i: nn.embedding(i, t), (None, 0), TABLE, IDS2),
}


@pytest.mark.parametrize("name", list(INDEXING))
def test_batched_indexing(name):
    f, in_axes, t, ids = INDEXING[name]
    got = vmap(f, in_axes=in_axes)(t, ids)
    np.testing.assert_array_equal(got, loop(f, t, ids, in_axes=in_axes))


@pytest.mark.parametrize("name", list(INDEXING))
def test_batched_indexing_gradients(name):
    """vmap(grad) (the VJP scatters with batched indices) and grad(vmap) against loops."""
    f, in_axes, t, ids = INDEXING[name]
    w = RNG.normal(size=np.shape(f(t[0] if in_axes[0] == 0 else t, ids[0])))

    def loss(t, i):
        return np.sum(np.sin(f(t, i)) * w)

    got = vmap(grad(loss, 0), in_axes=in_axes)(t, ids)
    want = loop(lambda t, i: grad(loss, 0)(t, i), t, ids, in_axes=in_axes)
    np.testing.assert_allclose(got, want, rtol=1e-13)
    total = grad(lambda t: np.sum(vmap(loss, in_axes=in_axes)(t, ids)))(t)[0]
    want_total = want.sum(0) if in_axes[0] is None else want
    np.testing.assert_allclose(total, want_total, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ["embedding-seq", "columns", "split-by-slice"])
def test_batched_indexing_jvp(name):
    f, in_axes, t, ids = INDEXING[name]
    v = RNG.normal(size=t.shape)
    got = vmap(lambda t, i: jvp(lambda t: f(t, i), (t,), (v if in_axes[0] is None else v[0],))[1],
               in_axes=in_axes)(t, ids)
    want = vmap(f, in_axes=in_axes)(v if in_axes[0] is None else np.broadcast_to(v[0], t.shape),
                                    ids)
    np.testing.assert_allclose(got, want, rtol=1e-13)


def test_nested_vmap_indexing():
    """Indices batched by the outer vmap, table batched by the inner one."""
    got = vmap(lambda i: vmap(lambda t: t[i])(TABLES), in_axes=0)(IDS2[:, 0])
    want = np.stack([TABLES[:, i] for i in IDS2[:, 0]])
    np.testing.assert_array_equal(got, want)


def test_batched_boolean_mask_is_refused_clearly():
    with pytest.raises(NoRuleError, match="boolean mask"):
        vmap(lambda t, m: t[m], in_axes=(None, 0))(TABLE[0], TABLE[:3] > 0)


def test_closed_over_plain_table_says_what_to_do():
    with pytest.raises(Exception, match="in_axes=None"):
        vmap(lambda i: TABLE[i])(IDS)


def test_masks_combine_with_bitwise_operators():
    """``&``, ``|``, ``^``, ``~`` of traced masks are the logical ufuncs; on traced
    integers they are the integer bitwise ufuncs (no gradient)."""
    x = np.array([[0.5, -2.0, 0.1], [1.0, -0.2, -3.0]])
    plain = np.array([True, False, True])
    got = vmap(lambda x: np.sum(x * (((x > 0) | (x < -1)) & ~(x > 0.9) ^ plain)))(x)
    want = [np.sum(r * (((r > 0) | (r < -1)) & ~(r > 0.9) ^ plain)) for r in x]
    np.testing.assert_allclose(got, want)
    np.testing.assert_array_equal(vmap(lambda i: (i | 1) ^ ~i)(np.arange(3)),
                                  [(i | 1) ^ ~i for i in range(3)])


def test_take_along_axis_of_a_plain_table_at_batched_positions():
    """numpy dispatches take_along_axis on its indices, so a closed-over table read at
    batched (or abstract) positions works; its gradient wrt a traced table too."""
    table = np.arange(10.0) * 2
    ids = np.array([[1, 2], [3, 4]])
    got = vmap(lambda i: np.take_along_axis(table, i, 0))(ids)
    np.testing.assert_array_equal(got, table[ids])
    out = pycograd.eval_shape(lambda i: np.take_along_axis(table, i, 0),
                              pycograd.ShapeDtypeStruct((3,), np.int64))
    assert (out.shape, out.dtype) == ((3,), np.float64)
    g = vmap(grad(lambda t, i: np.sum(np.take_along_axis(t, i, 0) ** 2)),
             in_axes=(None, 0))(table, ids)
    want = np.zeros((2, 10))
    for r, row in enumerate(ids):
        np.add.at(want[r], row, 2 * table[row])
    np.testing.assert_allclose(g[0] if isinstance(g, tuple) else g, want)
