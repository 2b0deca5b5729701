"""Regression tests for the training toolkit's audit findings (issues 10, 17 and 20):
live weight reads under ``weights.grad``, key-matched gradients, label / id range checks,
integer outputs, scalar cotangents, conv padding modes, hostile files, complex and
bfloat16 training, schedule validation."""

from __future__ import annotations

import numpy as np
import pytest

import pycograd as pg
from pycograd import checkpoint, grad, tree_map, vmap
from pycograd.core.pytree import tree_structure
from pycograd.params import ParamDict, frozen

# -- issue 10.1 / 17.13: every read of a weight is live under weights.grad ----------------

def _pd() -> ParamDict:
    return ParamDict(w=np.array([1.0, 2.0]), enc={"v": np.array([3.0])}, s=frozen[np.ones(2)])


@pytest.mark.parametrize("read", [
    lambda pd: pd["w"],
    lambda pd: pd.w,
    lambda pd: pd.get("w"),
    lambda pd: dict(pd.items())["w"],
    lambda pd: pd.values()[0],
    lambda pd: pd.entry("w").value,
    lambda pd: pd.trainable()["w"],
    lambda pd: pd.state_dict()["w"],
], ids=["subscript", "attribute", "get", "items", "values", "entry", "trainable", "state"])
def test_every_weight_read_is_live_under_grad(read):
    pd = _pd()
    loss, g = pd.grad(lambda: np.sum(read(pd) ** 2))
    assert loss == 5.0
    np.testing.assert_allclose(g["w"], [2.0, 4.0])


def test_group_reads_are_live_under_grad():
    pd = _pd()
    for read in (lambda: pd["enc"]["v"], lambda: pd.enc.v, lambda: pd["enc.v"]):
        _, g = pd.grad(lambda r=read: np.sum(r() ** 3))
        np.testing.assert_allclose(g["enc.v"], [27.0])


def test_live_reads_under_functional_vmap_and_nested_grad():
    pd = ParamDict(w=np.array([1.0, 2.0]))
    X = np.arange(6.0).reshape(3, 2)

    def loss(x):
        return np.sum(pd["w"] * x) ** 2

    per = vmap(grad(pd.functional(loss), 0), in_axes=(None, 0))(pd.trainable(), X)
    expect = np.stack([2 * (x @ pd.w) * x for x in X])
    np.testing.assert_allclose(per["w"], expect)


def test_attribute_access_outside_grad_and_assignment():
    pd = _pd()
    assert pd.w is pd["w"]
    pd.w = np.array([5.0, 6.0])
    np.testing.assert_allclose(pd["w"], [5.0, 6.0])
    with pytest.raises(AttributeError, match="no weight or group 'nope'"):
        _ = pd.nope
    with pytest.raises(AttributeError, match="no weight 'extra'"):
        pd.extra = 1.0


def test_bound_weights_refuse_assign_and_step():
    pd = _pd()

    def objective():
        pd.assign("w", np.zeros(2))
        return np.sum(pd.w)

    with pytest.raises(TypeError, match="bound"):
        pd.grad(objective)
    with pd.bind({"w": np.zeros(2)}):
        with pytest.raises(TypeError, match="bound"):
            pd.step({"w": np.ones(2)}, 0.1)
    np.testing.assert_allclose(pd.w, [1.0, 2.0])


def test_reads_after_grad_see_the_stored_arrays_again():
    pd = _pd()
    stored = pd["w"]
    pd.grad(lambda: np.sum(pd.w))
    assert pd["w"] is stored and pd.entry("w").live == []


def test_checkpointed_subscript_read_raises_not_zeros():
    pd = ParamDict(w=np.array([1.0, 2.0]))
    block = checkpoint(lambda x: np.sin(pd["w"] * x))
    try:
        _, g = pd.grad(lambda: np.sum(block(np.ones(2))))
    except pg.PycogradError:
        return
    np.testing.assert_allclose(g["w"], np.cos([1.0, 2.0]))


# -- issue 10.2: dict leaves pair up by key, never by position ----------------------------

def _opts():
    return [pg.SGD(1.0), pg.Momentum(1.0), pg.Adam(1.0), pg.AdamW(1.0), pg.RMSprop(1.0),
            pg.Adagrad(1.0)]


@pytest.mark.parametrize("opt", _opts(), ids=lambda o: type(o).__name__)
def test_optimizers_match_dict_gradients_by_key(opt):
    params = {"a": np.zeros(2), "b": np.zeros(3)}
    ordered = opt.step(params, {"a": np.full(2, 5.0), "b": np.ones(3)})
    fresh = type(opt)(1.0)
    swapped = fresh.step(params, {"b": np.ones(3), "a": np.full(2, 5.0)})
    for k in params:
        np.testing.assert_allclose(swapped[k], ordered[k])
    assert list(swapped) == ["a", "b"]


def test_sgd_step_uses_each_keys_own_gradient():
    new = pg.SGD(1.0).step({"a": np.zeros(2), "b": np.zeros(2)},
                           {"b": np.ones(2), "a": 5 * np.ones(2)})
    np.testing.assert_allclose(new["a"], -5.0)
    np.testing.assert_allclose(new["b"], -1.0)


def test_key_mismatch_names_missing_and_extra():
    with pytest.raises(pg.GradientMismatchError, match=r"missing .*\['b'\].*\['c'\]"):
        pg.SGD(1.0).step({"a": np.zeros(2), "b": np.zeros(2)},
                         {"c": np.ones(2), "a": np.ones(2)})
    with pytest.raises(pg.GradientMismatchError, match=r"unknown weight\(s\) \['c'\]"):
        ParamDict(a=np.zeros(2)).step({"c": np.ones(2)}, 0.1)
    with pytest.raises(ValueError, match=r"missing keys \['b'\], extra keys \['c'\]"):
        tree_map(lambda x, y: x + y, {"a": 1, "b": 2}, {"a": 1, "c": 2})


def test_tree_map_pairs_dicts_by_key_and_keeps_the_first_order():
    out = tree_map(lambda x, y: x + y, {"a": 1, "b": 2}, {"b": 10, "a": 20})
    assert out == {"a": 21, "b": 12}
    out = tree_map(lambda x, y: x + y, {"b": 1, "a": 2}, {"a": 10, "b": 20})
    assert list(out) == ["b", "a"] and out == {"a": 12, "b": 21}
    assert tree_structure({"a": 1, "b": 2}) == tree_structure({"b": 1, "a": 2})


def test_clip_and_vjp_cotangents_pair_by_key():
    grads = {"b": np.array([3.0]), "a": np.array([4.0])}
    clipped, norm = pg.clip_grad_norm(grads, 1.0)
    assert norm == 5.0 and list(clipped) == ["b", "a"]
    np.testing.assert_allclose(clipped["a"], 0.8)
    _, f = pg.vjp(lambda x: {"u": 2 * x, "v": 3 * x}, 1.0)
    assert f({"v": 1.0, "u": 0.0}) == (3.0,)
    with pytest.raises(ValueError, match="cotangent"):
        f({"u": 1.0, "w": 1.0})


def test_vmap_dict_in_axes_follow_keys():
    f = vmap(lambda d: d["a"] + d["b"], in_axes=({"b": None, "a": 0},))
    out = f({"b": np.array(10.0), "a": np.arange(3.0)})
    np.testing.assert_allclose(out, [10.0, 11.0, 12.0])


# -- issue 10.8: Python-scalar cotangents and tangents -----------------------------------

def test_vjp_and_jvp_accept_python_scalars():
    out, f = pg.vjp(lambda x, y: x + y, 5.0, 4.0)
    assert out == 9.0 and f(1.0) == (1.0, 1.0)
    _, f = pg.vjp(lambda x: x * 2, np.float32(3.0))
    (g,) = f(1)
    assert g == 2.0 and np.result_type(g) == np.float32
    _, f = pg.vjp(lambda x: (x, x * x), 3.0)
    assert f((1.0, None)) == (1.0,)
    assert pg.jvp(lambda x: x * 2, (3.0,), (1.0,)) == (6.0, 2.0)
    assert pg.jvp(lambda x: np.sum(x * 2), (np.ones(2),), (np.ones(2),))[1] == 4.0
    with pytest.raises(TypeError, match="complex cotangent"):
        pg.vjp(lambda x: x * 2, 1.0)[1](1j)


# -- issue 10.3: labels and ids out of range raise ---------------------------------------

@pytest.mark.parametrize("labels", [[0, 3], [0, -1], [7, 1]])
def test_cross_entropy_out_of_range_label_raises(labels):
    with pytest.raises(pg.IndexOutOfRangeError, match=r"label (3|-1|7) is out of range for 3 c"):
        pg.cross_entropy(np.zeros((2, 3)), np.array(labels))
    with pytest.raises(IndexError):
        grad(lambda z: pg.cross_entropy(z, np.array(labels)))(np.zeros((2, 3)))


def test_cross_entropy_label_checks_under_vmap_and_ignore_index():
    logits = np.zeros((4, 3))
    with pytest.raises(pg.IndexOutOfRangeError, match="label 5"):
        vmap(lambda z, y: pg.cross_entropy(z, y))(logits[:, None], np.array([[0], [1], [5], [2]]))
    ok = pg.cross_entropy(logits, np.array([0, -100, 2, 1]), ignore_index=-100)
    np.testing.assert_allclose(ok, np.log(3.0))
    with pytest.raises(pg.IndexOutOfRangeError, match="ignore_index=-100"):
        pg.cross_entropy(logits, np.array([0, -1, 2, 1]), ignore_index=-100)


@pytest.mark.parametrize("ids", [[0, -1], [3, 0], [[1], [9]]])
def test_embedding_out_of_range_id_raises(ids):
    table = np.ones((3, 2))
    with pytest.raises(pg.IndexOutOfRangeError, match="out of range for a table of 3 rows"):
        pg.embedding(np.array(ids), table)
    with pytest.raises(IndexError):
        grad(lambda t: np.sum(pg.embedding(np.array(ids), t)))(table)
    with pytest.raises(pg.IndexOutOfRangeError, match="padding_idx=3"):
        pg.embedding(np.array([0]), table, padding_idx=3)


# -- issue 10.5: grad of an integer / boolean output raises -------------------------------

@pytest.mark.parametrize("f", [lambda x: np.sum(x > 0), lambda x: np.argmax(x),
                               lambda x: np.sum(x.astype(np.int32)), lambda x: 3])
def test_grad_of_integer_or_bool_output_raises(f):
    with pytest.raises(pg.NonScalarOutputError, match="real or complex float"):
        grad(f)(np.array([1.0, -2.0]))
    pd = ParamDict(w=np.array([1.0, -2.0]))
    with pytest.raises(pg.NonScalarOutputError, match="real or complex float"):
        pd.grad(lambda: f(pd.w))


# -- issue 20.4: bfloat16 is a float dtype ------------------------------------------------

bf16 = pytest.importorskip("ml_dtypes").bfloat16


def test_bfloat16_gets_gradients_everywhere():
    x = np.array([1.0, 2.0, 3.0], bf16)
    (g,) = grad(lambda x: np.sum(x * x))(x)
    assert g.dtype == bf16
    np.testing.assert_allclose(g.astype(np.float32), [2.0, 4.0, 6.0])
    _, t = pg.jvp(lambda x: np.sin(x), (x,), (np.ones(3, bf16),))
    assert t.dtype == bf16
    np.testing.assert_allclose(t.astype(np.float32), np.cos([1.0, 2.0, 3.0]), rtol=1e-2)
    per = vmap(grad(lambda v: np.sum(v @ np.ones((3, 2), bf16)), 0))(np.stack([x, x]))
    assert per.dtype == bf16 and per.shape == (2, 3)
    np.testing.assert_allclose(per.astype(np.float32), 2.0)


def test_paramdict_trains_bfloat16_weights():
    pd = ParamDict(w=np.array([1.0, -2.0], bf16))
    loss, g = pd.grad(lambda: np.sum(pd.w * pd.w))
    assert g["w"].dtype == bf16
    np.testing.assert_allclose(g["w"].astype(np.float32), [2.0, -4.0])
    pd.step(g, 0.25)
    np.testing.assert_allclose(pd.w.astype(np.float32), [0.5, -1.0])
    assert pd.w.dtype == bf16
    first, last = pg.train(pd, lambda: np.sum(pd.w * pd.w), 3, pg.Adam(0.1))
    assert last < first and pd.w.dtype == bf16


def _low_precision_cases():
    from test_sweep import CASES, runs

    return [c for c in CASES if runs(c, "low_precision")]


@pytest.mark.parametrize("case", _low_precision_cases(), ids=lambda c: c.name)
def test_bfloat16_sweep_differentiates_where_float16_does(case):
    """Every sweep case that numpy evaluates in bfloat16 and pycograd differentiates in
    float16 gives bfloat16 gradients (not None, as for an integer argument)."""
    with np.errstate(all="ignore"):
        try:
            out, f = pg.vjp(case.fn, *[a.astype(np.float16) for a in case.sample()])
            f(tree_map(np.ones_like, out))
            case.fn(*[a.astype(bf16) for a in case.sample()])
        except (TypeError, ValueError, np.linalg.LinAlgError):
            pytest.skip("no float16 or bfloat16 loop for this op")
        args = [a.astype(bf16) for a in case.sample()]
        out, f = pg.vjp(case.fn, *args)
        grads = f(tree_map(np.ones_like, out))
    for x, g in zip(args, grads):
        assert g is not None and g.dtype == bf16 and g.shape == x.shape


# -- issue 20.3: complex parameters step along conj(grad) ---------------------------------

_C = np.array([2.0 - 1.0j, -0.5 + 0.25j])


def _complex_loss(z):
    return np.sum(np.abs(z - _C) ** 2) + np.sum(np.real(z) * 3.0)


def _all_optimizers(lr):
    return [pg.SGD(lr), pg.SGD(lr, momentum=0.9, nesterov=True, weight_decay=0.1),
            pg.Momentum(lr), pg.Adam(lr), pg.AdamW(lr), pg.RMSprop(lr),
            pg.RMSprop(lr, centered=True, momentum=0.5), pg.Adagrad(lr),
            pg.Adam(lr, clip_norm=0.5)]


@pytest.mark.parametrize("opt", _all_optimizers(0.05), ids=lambda o: repr(o))
def test_every_optimizer_descends_on_complex_parameters(opt):
    z = {"z": np.array([1.0 + 2.0j, 3.0 - 1.0j])}
    start = _complex_loss(z["z"])
    for _ in range(200):
        z = opt.step(z, grad(lambda p: _complex_loss(p["z"]), 0)(z))
    assert z["z"].dtype == np.complex128
    assert _complex_loss(z["z"]) < start - 1.0
    for slots in opt.state.values():
        for name in opt.real_slots:
            assert not np.iscomplexobj(slots[name])


def test_weights_step_and_train_descend_on_complex_weights():
    pd = ParamDict(z=np.array([1.0 + 2.0j, 3.0 - 1.0j]))
    start = _complex_loss(pd.z)
    for _ in range(200):
        _, g = pd.grad(lambda: _complex_loss(pd.z))
        pd.step(g, 0.05)
    assert _complex_loss(pd.z) < min(start, 1e3) - 1.0
    pd = ParamDict(z=np.array([1.0 + 2.0j, 3.0 - 1.0j]))
    first, last = pg.train(pd, lambda: _complex_loss(pd.z), 200, 0.05)
    assert last < first - 1.0


torch = pytest.importorskip("torch")


def _torch_run(make, steps=5):
    z = torch.tensor([1.0 + 2.0j, 3.0 - 1.0j], dtype=torch.complex128, requires_grad=True)
    opt = make([z])
    c = torch.tensor(_C)
    for _ in range(steps):
        opt.zero_grad()
        loss = ((z - c).abs() ** 2).sum() + (z.real * 3.0).sum()
        loss.backward()
        opt.step()
    return z.detach().numpy()


def _ours(opt, steps=5):
    z = np.array([1.0 + 2.0j, 3.0 - 1.0j])
    for _ in range(steps):
        z = opt.step(z, grad(_complex_loss)(z)[0])
    return z


def test_sgd_family_matches_torch_on_complex_parameters():
    pairs = [
        (pg.SGD(0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
        (pg.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
         lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1)),
    ]
    for ours, theirs in pairs:
        np.testing.assert_allclose(_ours(ours), _torch_run(theirs), rtol=1e-12)


def _ref_adam(z, steps, lr=0.1, b1=0.9, b2=0.999, eps=1e-8):
    """optax's scale_by_adam on a complex parameter: m of conj(grad), v of |grad|^2."""
    m = np.zeros_like(z)
    v = np.zeros(z.shape)
    for t in range(1, steps + 1):
        g = np.conj(grad(_complex_loss)(z)[0])
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * np.abs(g) ** 2
        z = z - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    return z


def test_adam_second_moment_is_abs_squared():
    z0 = np.array([1.0 + 2.0j, 3.0 - 1.0j])
    np.testing.assert_allclose(_ours(pg.Adam(0.1), 7), _ref_adam(z0, 7), rtol=1e-12)
    opt = pg.Adam(0.1)
    opt.step(z0, np.array([3.0 + 4.0j, 0.0]))
    np.testing.assert_allclose(opt.state["$"]["v"], [0.001 * 25.0, 0.0])


def test_clipping_complex_gradients():
    g = {"a": np.array([3.0 + 4.0j]), "b": np.array([12.0])}
    clipped, norm = pg.clip_grad_norm(g, 6.5)
    assert norm == 13.0
    np.testing.assert_allclose(clipped["a"], [1.5 + 2.0j])
    ref = torch.tensor([3.0 + 4.0j], requires_grad=True)
    ref.grad = torch.tensor([3.0 + 4.0j])
    rb = torch.tensor([0.0], requires_grad=True)
    rb.grad = torch.tensor([12.0])
    assert float(torch.nn.utils.clip_grad_norm_([ref, rb], 6.5)) == pytest.approx(13.0)
    np.testing.assert_allclose(clipped["a"], ref.grad.numpy(), rtol=1e-6)
    leaf = pg.clip_leaf_norm(g, 1.0)
    np.testing.assert_allclose(leaf["a"], [0.6 + 0.8j])
    np.testing.assert_allclose(pg.clip_grad_value(g, 3.5)["a"], [3.0 + 3.5j])


# -- issue 20.12 / 20.13: schedules validated up front; matrix_rank batches; list shapes --

@pytest.mark.parametrize("make, match", [
    (lambda: pg.exponential_decay(0.1, 0.5, steps=0), "exponential_decay: steps"),
    (lambda: pg.exponential_decay(0.1, 0.5, steps=-3), "exponential_decay: steps"),
    (lambda: pg.step_decay(0.1, 0.5, every=0), "step_decay: every"),
    (lambda: pg.cosine_decay(0.1, 0), "cosine_decay: total_steps"),
    (lambda: pg.linear_warmup(0.1, -1), "linear_warmup: warmup_steps"),
])
def test_schedules_validate_step_counts_up_front(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_schedules_accept_numpy_integers():
    assert pg.step_decay(1.0, 0.5, np.int64(2))(4) == 0.25
    assert pg.linear_warmup(1.0, 0)(0) == 1.0


def test_vmap_matrix_rank_matches_numpy():
    A = np.random.default_rng(0).standard_normal((4, 3, 3))
    A[1, 2] = A[1, 0]
    A[3] = 0.0
    np.testing.assert_array_equal(vmap(np.linalg.matrix_rank)(A), np.linalg.matrix_rank(A))
    H = A + np.swapaxes(A, 1, 2)
    np.testing.assert_array_equal(vmap(lambda a: np.linalg.matrix_rank(a, hermitian=True))(H),
                                  np.linalg.matrix_rank(H, hermitian=True))
    np.testing.assert_array_equal(vmap(lambda a: np.linalg.matrix_rank(a, tol=0.5))(A),
                                  np.linalg.matrix_rank(A, tol=0.5))
    np.testing.assert_array_equal(vmap(np.linalg.matrix_rank)(A[:, 0]),
                                  [np.linalg.matrix_rank(v) for v in A[:, 0]])
    assert pg.eval_shape(np.linalg.matrix_rank, pg.ShapeDtypeStruct((4, 3, 3))).shape == (4,)


def test_summary_takes_shapes_as_lists():
    def f(p, x):
        return x @ p["w"]

    params = {"w": np.ones((3, 2))}
    as_list = pg.summary(f, params, [5, 3], verbose=False)
    as_tuple = pg.summary(f, params, (5, 3), verbose=False)
    assert as_list.table == as_tuple.table
    assert "f64[batch,2]" in pg.summary(f, params, ["batch", 3], verbose=False).table


# -- issue 10.10: hostile / corrupted files always raise ParamLoadError -------------------

def _saved(tmp_path, pd=None):
    path = tmp_path / "w.npz"
    (pd or ParamDict(w=np.ones(2), b=frozen[np.zeros(3)])).save(path)
    return path


def _rewrite(path, meta=None, drop=(), add=None):
    import json

    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k not in drop}
    if meta is not None:
        arrays["pycograd-meta"] = np.array(meta if isinstance(meta, str) else json.dumps(meta))
    arrays.update(add or {})
    np.savez(path, **arrays)


def _npy_in_place(path):
    with open(path, "wb") as f:
        np.save(f, np.ones(3))


_GOOD = {"format": "pycograd.ParamDict", "version": 1,
         "entries": [{"name": "w", "kind": "param", "tied": None},
                     {"name": "b", "kind": "frozen", "tied": None}]}


def _with(**change):
    meta = dict(_GOOD)
    meta.update(change)
    return meta


@pytest.mark.parametrize("corrupt, match", [
    (lambda p: p.write_bytes(p.read_bytes()[:40]), "not a readable"),
    (lambda p: p.write_bytes(b"not a zip at all"), "not a readable"),
    (lambda p: p.write_bytes(b""), "not a readable"),
    (_npy_in_place, "single .npy"),
    (lambda p: np.savez(p, w=np.ones(2)), "no 'pycograd-meta'"),
    (lambda p: _rewrite(p, meta="{not json"), "not valid JSON"),
    (lambda p: _rewrite(p, meta="[1, 2]"), "JSON list"),
    (lambda p: _rewrite(p, add={"pycograd-meta": np.arange(3)}), "not a JSON string"),
    (lambda p: _rewrite(p, meta=_with(version=7)), "unsupported format"),
    (lambda p: _rewrite(p, meta=_with(entries={"w": 1})), "no list of entries"),
    (lambda p: _rewrite(p, meta=_with(entries=[{"name": "w"}])), "not a {name, kind, tied}"),
    (lambda p: _rewrite(p, meta=_with(entries=[{"name": "w", "kind": "evil", "tied": None},
                                               {"name": "b", "kind": "frozen", "tied": None}])),
     "unknown kind 'evil'"),
    (lambda p: _rewrite(p, drop=("w",)), "w: no array stored"),
    (lambda p: _rewrite(p, add={"x": np.ones(1)}), "arrays that no entry names: x"),
    (lambda p: _rewrite(p, meta=_with(entries=[{"name": "w", "kind": "param", "tied": 5},
                                               {"name": "b", "kind": "frozen", "tied": None}])),
     "not a weight name"),
    (lambda p: _rewrite(p, drop=("w",), meta=_with(
        entries=[{"name": "w", "kind": "param", "tied": "nope"},
                 {"name": "b", "kind": "frozen", "tied": None}])), "no weight 'nope'"),
    (lambda p: _rewrite(p, add={"w": np.arange(2)}), "dtype int64"),
    (lambda p: _rewrite(p, drop=("w",), add={"bad name": np.ones(2)}, meta=_with(
        entries=[{"name": "bad name", "kind": "param", "tied": None},
                 {"name": "b", "kind": "frozen", "tied": None}])), "identifier"),
    (lambda p: _rewrite(p, add={"w": np.zeros(2, "V8")}), "raw bytes"),
    (lambda p: _rewrite(p, add={"dtype/w": np.array("os.system")}), "unknown stored dtype"),
])
def test_hostile_files_raise_param_load_error(tmp_path, corrupt, match):
    path = _saved(tmp_path)
    corrupt(path)
    with pytest.raises(pg.ParamLoadError, match=match):
        ParamDict.load(path)


def test_pickled_payload_is_refused_not_run(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, **{"pycograd-meta": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(pg.ParamLoadError, match="not a readable"):
        ParamDict.load(path)


def test_load_into_and_checkpoints_refuse_garbage(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(pg.ParamLoadError):
        ParamDict(w=np.ones(2)).load_into(path)
    with pytest.raises(pg.ParamLoadError):
        pg.load_checkpoint(path, {"w": np.ones(2)})
    with pytest.raises(pg.ParamLoadError):
        pg.Adam().load(path)


# -- issue 20.5: every accepted dtype round-trips through save / load ---------------------

def _every_dtype_weights():
    return ParamDict(
        w=np.array([1.5, -2.25], bf16), h=np.array([0.5], np.float16),
        c=np.array([1 + 2j], np.complex64), f=frozen[np.array([3.0, 4.0], bf16)],
        n=pg.buffer[np.array([7], np.int32)], m=pg.buffer[np.array([True, False])],
        s=pg.buffer[np.array(["a", "bc"])], tie=pg.tied["w"])


def test_save_load_round_trips_every_dtype(tmp_path):
    pd = _every_dtype_weights()
    pd.save(tmp_path / "all")
    back = ParamDict.load(tmp_path / "all")
    assert list(back) == list(pd)
    for name in pd:
        assert back[name].dtype == pd[name].dtype, name
        np.testing.assert_array_equal(np.asarray(back[name]), np.asarray(pd[name]))
        assert back.kind(name) == pd.kind(name)
    target = _every_dtype_weights()
    target.assign("f", np.zeros(2))
    target.load_into(tmp_path / "all.npz")
    np.testing.assert_array_equal(target.f.astype(np.float32), [3.0, 4.0])


def test_checkpoint_round_trips_bfloat16_params_and_state(tmp_path):
    pd = ParamDict(w=np.array([1.0, -2.0], bf16), f=frozen[np.array([3.0], bf16)])
    opt = pg.Adam(0.1)
    pg.train(pd, lambda: np.sum(pd.w * pd.w), 2, opt)
    pg.save_checkpoint(tmp_path / "ck.npz", pd, opt)
    opt.save(tmp_path / "opt.npz")
    fresh = ParamDict(w=np.zeros(2, bf16), f=frozen[np.zeros(1, bf16)])
    fresh_opt = pg.Adam(0.1)
    pg.load_checkpoint(tmp_path / "ck.npz", fresh, fresh_opt)
    np.testing.assert_array_equal(fresh.w, pd.w)
    np.testing.assert_array_equal(fresh.f, pd.f)
    assert fresh_opt.state["w"]["m"].dtype == bf16
    again = pg.Adam(0.1)
    again.load(tmp_path / "opt.npz")
    np.testing.assert_array_equal(again.state["w"]["v"], opt.state["w"]["v"])
    tree = {"b": np.zeros(1, bf16), "a": np.array([1.0, 2.0], bf16)}
    pg.save_checkpoint(tmp_path / "tree.npz", tree)
    back = pg.load_checkpoint(tmp_path / "tree.npz", {"a": np.zeros(2, bf16),
                                                     "b": np.ones(1, bf16)})
    np.testing.assert_array_equal(back["a"], tree["a"])
    assert back["a"].dtype == bf16


# -- issue 10.9: conv padding modes, unbatched inputs, shape errors (against torch) -------

def _torch_compare(ours, theirs, *args):
    """Same value, and the same gradient of ``sum(out * r)`` for every argument."""
    out = ours(*args)
    targs = [torch.tensor(a, requires_grad=True) for a in args]
    tout = theirs(*targs)
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    r = np.random.default_rng(1).standard_normal(np.shape(out))
    gs = grad(lambda *a: np.sum(ours(*a) * r), argnums=tuple(range(len(args))))(*args)
    tgs = torch.autograd.grad((tout * torch.tensor(r)).sum(), targs)
    for g, tg in zip(gs, tgs):
        np.testing.assert_allclose(g, tg.numpy(), rtol=1e-9, atol=1e-11)


_RNG = np.random.default_rng(0)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("kw", [
    {"padding": "same"}, {"padding": "valid"}, {"padding": "same", "dilation": 2},
    {"padding": "same", "groups": 2}, {"padding": "valid", "stride": 2}, {"padding": 1},
], ids=str)
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("kernel", [(3, 3), (2, 4)], ids=["3x3", "2x4"])
def test_conv_padding_modes_and_unbatched_match_torch(kw, batched, kernel):
    F = torch.nn.functional
    x = _RNG.standard_normal((2, 4, 6, 7) if batched else (4, 6, 7))
    w = _RNG.standard_normal((6, 4 // kw.get("groups", 1)) + kernel)
    b = _RNG.standard_normal(6)
    _torch_compare(lambda x, w, b: pg.conv2d(x, w, b, **kw),
                   lambda x, w, b: F.conv2d(x, w, b, **kw), x, w, b)
    _torch_compare(lambda x, w, b: pg.conv1d(x[..., 0, :], w[..., 0, :], b, **kw),
                   lambda x, w, b: F.conv1d(x[..., 0, :], w[..., 0, :], b, **kw), x, w, b)


def test_unbatched_transpose_and_pooling_match_torch():
    F = torch.nn.functional
    x = _RNG.standard_normal((3, 5, 5))
    w = _RNG.standard_normal((3, 2, 3, 3))
    _torch_compare(lambda x, w: pg.conv_transpose2d(x, w, stride=2, padding=1),
                   lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1), x, w)
    _torch_compare(lambda x: pg.max_pool2d(x, 2), lambda x: F.max_pool2d(x, 2), x)
    _torch_compare(lambda x: pg.avg_pool2d(x, 3, 1, 1), lambda x: F.avg_pool2d(x, 3, 1, 1), x)


@pytest.mark.parametrize("call, match", [
    (lambda: pg.conv2d(np.ones((5, 5)), np.ones((1, 1, 3, 3))), r"conv2d: input of shape \(5, 5\)"),
    (lambda: pg.conv2d(np.ones((1, 2, 5, 5)), np.ones((1, 3, 3, 3))), r"conv2d: .*groups=1"),
    (lambda: pg.conv2d(np.ones((1, 2, 5, 5)), np.ones((2, 3, 3))), "weight must have 4 dims"),
    (lambda: pg.conv2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3))), "does not fit"),
    (lambda: pg.conv2d(np.ones((1, 1, 5, 5)), np.ones((2, 1, 3, 3)), np.ones(3)), r"bias .*\(2,\)"),
    (lambda: pg.conv1d(np.ones((1, 2, 3, 5)), np.ones((1, 2, 3))), r"conv1d: .*\(N, C, L\)"),
    (lambda: pg.conv1d(np.ones((2, 5)), np.ones((1, 3, 3))), r"conv1d: input of shape \(1, 2, 5\)"),
    (lambda: pg.conv_transpose2d(np.ones(3), np.ones((1, 1, 3, 3))), "conv_transpose2d"),
    (lambda: pg.max_pool2d(np.ones((2, 2, 2, 4, 4)), 2), "max_pool2d"),
])
def test_bad_conv_shapes_raise_shape_error(call, match):
    with pytest.raises(pg.ShapeError, match=match):
        call()


def test_same_padding_rejects_stride_and_unknown_strings():
    with pytest.raises(ValueError, match="needs stride 1"):
        pg.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), stride=2, padding="same")
    with pytest.raises(ValueError, match="'full'"):
        pg.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), padding="full")


def test_custom_jvp_tangents_pair_by_key():
    @pg.custom_jvp
    def f(x):
        return {"a": x * 2, "b": x * 3}

    @f.defjvp
    def rule(p, t):
        return f(p[0]), {"b": t[0] * 30, "a": t[0] * 20}

    _, t = pg.jvp(f, (1.0,), (1.0,))
    assert t["a"] == 20.0 and t["b"] == 30.0

    @pg.custom_jvp
    def g(x):
        return {"a": x * 2, "b": x * 3}

    @g.defjvp
    def bad(p, t):
        return g(p[0]), {"b": t[0], "c": t[0]}

    with pytest.raises(ValueError, match="tangent"):
        pg.jvp(g, (1.0,), (1.0,))


def test_vmap_count_nonzero_batches():
    X = np.array([[0.0, 1.0, 3.0], [2.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(vmap(np.count_nonzero)(X), np.count_nonzero(X, axis=1))
    out = vmap(lambda x: np.count_nonzero(x, axis=0, keepdims=True))(X[:, :, None])
    np.testing.assert_array_equal(out, [[[2]], [[2]], [[0]]])


def test_optimizer_state_and_pytree_checkpoints_follow_keys(tmp_path):
    opt = pg.Adam(0.1)
    opt.step({"a": np.zeros(2), "b": np.zeros(3)}, {"a": np.ones(2), "b": -np.ones(3)})
    assert set(opt.state) == {"$['a']", "$['b']"}
    new = opt.step({"b": np.zeros(3), "a": np.zeros(2)}, {"b": -np.ones(3), "a": np.ones(2)})
    assert new["a"].shape == (2,) and np.all(new["a"] < 0) and np.all(new["b"] > 0)
    params = {"b": np.arange(3.0), "a": np.array([7.0, 8.0])}
    pg.save_checkpoint(tmp_path / "p.npz", params, opt)
    back = pg.load_checkpoint(tmp_path / "p.npz", {"a": np.zeros(2), "b": np.zeros(3)},
                              pg.Adam(0.1))
    np.testing.assert_array_equal(back["a"], [7.0, 8.0])
    np.testing.assert_array_equal(back["b"], [0.0, 1.0, 2.0])


def test_embedding_range_check_with_a_symbolic_table():
    spec = pg.ShapeDtypeStruct(("rows", 2))
    out = pg.eval_shape(lambda t: pg.embedding(np.array([5, 0]), t), spec)
    assert out.shape == (2, 2)
    with pytest.raises(pg.IndexOutOfRangeError, match="id -1"):
        pg.eval_shape(lambda t: pg.embedding(np.array([-1]), t), spec)


def test_bfloat16_is_float_for_debug_nans_and_einops():
    x = np.array([1.0, -1.0], bf16)
    with pytest.raises(FloatingPointError, match="log"), np.errstate(invalid="ignore"):
        with pg.debug_nans():
            grad(lambda x: np.sum(np.log(x)))(x)
    einops = pytest.importorskip("einops")
    (g,) = grad(lambda x: np.sum(einops.reduce(x, "(a b) -> a", "mean", b=2)))(x)
    assert g.dtype == bf16


def test_dtype_questions_answer_under_every_transform():
    """``np.iscomplexobj`` / ``np.isrealobj`` read the dtype only: they answer under vmap and
    eval_shape too (the optimizers ask them of device weights), never refuse for want of
    values."""
    import pycograd as pg

    assert pg.vmap(lambda x: x * np.iscomplexobj(x))(np.ones((2, 3))).shape == (2, 3)
    out = pg.eval_shape(lambda x: x if np.isrealobj(x) else -x, pg.ShapeDtypeStruct((3,)))
    assert out.shape == (3,)
    assert pg.vmap(lambda z: z * np.iscomplexobj(z))(np.ones((2, 2), complex))[0, 0] == 1
