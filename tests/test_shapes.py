"""eval_shape, symbolic dimensions and summary: shapes without data, errors that name the
op and the shapes, data-dependent shapes refused, and the summary table."""

from __future__ import annotations

import io
import time
import tracemalloc

import numpy as np
import pytest

import pycograd
from pycograd import nn
from pycograd.core.errors import ShapeError
from pycograd.core.symbolic import Dim, provably_nonneg
from pycograd.transforms.shapes import DataDependentShapeError, eval_shape, summary
from pycograd.transforms.shapes import ShapeDtypeStruct as S

B, T = Dim("batch"), Dim("time")


def mlp_forward(x, w1, b1, w2, b2):
    h = np.tanh(x @ w1 + b1)
    return h @ w2 + b2


def mlp_batch_loss(params, x, y):
    logits = mlp_forward(x, params["w1"], params["b1"], params["w2"], params["b2"])
    z = logits - np.max(logits, axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(np.sum(y * logp, axis=1))


def mlp_params():
    rng = np.random.default_rng(0)
    return {"w1": rng.standard_normal((2, 16)), "b1": np.zeros(16),
            "w2": rng.standard_normal((16, 3)), "b2": np.zeros(3)}


# ---- eval_shape ---------------------------------------------------------------------

def test_seed_example():
    out = eval_shape(mlp_forward, S((5, 2)), S((2, 16)), S((16,)), S((16, 3)), S((3,)))
    assert out == S((5, 3)) and repr(out) == "f64[5,3]"


def test_huge_matmul_is_sized_without_memory():
    f = lambda a, b: np.tanh(a @ b).sum(axis=0)  # noqa: E731
    eval_shape(f, S((2, 2)), S((2, 2)))  # warm up caches (routing decisions, imports)
    tracemalloc.start()
    t0 = time.perf_counter()
    out = eval_shape(f, S((100000, 100000)), S((100000, 100000), np.float32))
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert out == S((100000,), np.float64)
    assert peak < 1_000_000, peak
    assert elapsed < 0.5, elapsed  # milliseconds in practice; generous for a loaded machine


def test_pytrees_arrays_and_static_values():
    def f(d, scale):
        return {"y": d["a"] @ d["b"] * scale, "pair": (d["c"].astype(np.float32), scale)}

    out = eval_shape(f, {"a": S((2, 3)), "b": np.ones((3, 4)), "c": S((7,), np.int32)}, 2)
    assert out == {"y": S((2, 4)), "pair": (S((7,), np.float32), 2)}
    assert repr(out["pair"][0]) == "f32[7]"


def test_dtypes_follow_numpy():
    out = eval_shape(lambda a, b, c: (a + b, a * 2.5, c > 0, np.sqrt(c), a.astype(np.int8)),
                     S((3,), np.float32), S((3,), np.int64), S((3,), np.int32), )
    numpy = (np.ones(3, np.float32) + np.ones(3, np.int64), np.ones(3, np.float32) * 2.5,
             np.ones(3, np.int32) > 0, np.sqrt(np.ones(3, np.int32)), np.ones(3, np.int8))
    assert [o.dtype for o in out] == [n.dtype for n in numpy]


def test_composes_with_grad_and_vmap():
    loss = lambda w, x: np.sum(np.tanh(x @ w))  # noqa: E731
    assert eval_shape(pycograd.grad(loss), S((4, 3)), S(("batch", 4))) == (S((4, 3)),
                                                                          S(("batch", 4)))
    assert eval_shape(pycograd.vmap(lambda x: x @ x), S((7, 4))) == S((7,))


@pytest.mark.parametrize("f, shapes, message", [
    (lambda a, b: a @ b, [(3, 4), (5, 6)], "matmul: incompatible shapes (3, 4) and (5, 6)"),
    (lambda a, b: a + b, [(3, 4), (5, 6)], "add: incompatible shapes (3, 4) and (5, 6)"),
    (lambda a, b: np.concatenate([a, b], axis=1), [(3, 4), (5, 6)],
     "concatenate: incompatible shapes (3, 4) and (5, 6)"),
    (lambda a: a.reshape(5, 3), [(3, 4)],
     "reshape: cannot reshape array of shape (3, 4) into shape (5, 3)"),
    (lambda a, b: np.einsum("ij,jk->ik", a, b), [(3, 4), (5, 6)],
     "einsum: incompatible shapes (3, 4) and (5, 6)"),
    (lambda a, b: a + b, [("batch", 4), ("time", 4)],
     "add: incompatible shapes (batch, 4) and (time, 4)"),
    (lambda a, b: a @ b, [("batch", 4), ("time", 4)],
     "matmul: incompatible shapes (batch, 4) and (time, 4)"),
    (lambda a, b: np.einsum("bi,bj->ij", a, b), [("batch", 4), ("time", 4)],
     "einsum: incompatible shapes (batch, 4) and (time, 4)"),
])
def test_shape_errors_name_op_and_shapes(f, shapes, message):
    with pytest.raises(ShapeError) as e:
        eval_shape(f, *[S(s) for s in shapes])
    assert str(e.value).startswith(message), str(e.value)
    assert not isinstance(e.value, DataDependentShapeError)


# ---- data-dependent shapes ------------------------------------------------------------

@pytest.mark.parametrize("f", [
    lambda x: x[x > 0],
    lambda x: x[:, x[0] > 0],
    lambda x: np.nonzero(x),
    lambda x: np.unique(x),
    lambda x: np.argwhere(x),
    lambda x: np.flatnonzero(x),
    lambda x: np.where(x > 0),
    lambda x: np.extract(x > 0, x),
], ids=["mask", "mask-axis1", "nonzero", "unique", "argwhere", "flatnonzero", "where1",
        "extract"])
def test_data_dependent_shapes_are_refused(f):
    with pytest.raises(DataDependentShapeError, match="depends on the data") as e:
        eval_shape(f, S((3, 4)))
    assert isinstance(e.value, ShapeError)


def test_concrete_mask_has_a_known_shape():
    mask = np.array([True, False, True])
    f = lambda x: x[mask] * 2  # noqa: E731
    assert eval_shape(f, S((3, 4))) == S(np.shape(f(np.ones((3, 4)))))


@pytest.mark.parametrize("f", [
    lambda x: x if x.sum() > 0 else -x,
    lambda x: float(x[0, 0]),
    lambda x: x.tolist(),
    lambda x: range(int(x.sum())),
], ids=["if", "float", "tolist", "int"])
def test_python_control_flow_on_abstract_values_is_refused(f):
    with pytest.raises(DataDependentShapeError, match="depends on data values"):
        eval_shape(f, S((3, 4)))


def test_value_free_functions_are_sized():
    out = eval_shape(lambda x: (np.argmax(x, axis=-1), np.any(x > 0, axis=0),
                                np.zeros_like(x, dtype=np.int8)), S(("batch", 4)))
    assert out == (S(("batch",), np.intp), S((4,), bool), S(("batch", 4), np.int8))


def test_abstract_integer_indices_are_gathered():
    out = eval_shape(lambda w, ids: (w[ids], nn.embedding(ids, w), w[ids, :2]),
                     S((100, 8)), S(("batch", 7), np.int64))
    assert out == (S(("batch", 7, 8)),) * 2 + (S(("batch", 7, 2)),)
    gather = lambda w, ids: pycograd.vmap(lambda i: w[i])(ids)  # noqa: E731
    assert eval_shape(gather, S((100, 8)), S((6, 7), np.int64)) == S((6, 7, 8))


_INDICES = [
    np.s_[1], np.s_[-1, 2], np.s_[1:], np.s_[::-2, None], np.s_[..., 0], np.s_[None, ..., 1:3],
    np.s_[[0, 2]], np.s_[[0, 2], :, [1, 3]], np.s_[:, [0, 1], [2, 3]], np.s_[1, :, [0, 4]],
    np.s_[[[0], [1]], [1, 2]], np.s_[np.array([True, False, True])],
    np.s_[:, np.array([True, False, True, True])], np.s_[True], np.s_[:, None, [1, 2], 3],
    np.s_[np.ones((3, 4), bool)], np.s_[[0, 1], None, [2, 3]], np.s_[()],
]


@pytest.mark.parametrize("idx", _INDICES, ids=[str(i) for i in range(len(_INDICES))])
def test_indexing_shapes_match_numpy(idx):
    assert eval_shape(lambda x: x[idx], S((3, 4, 5))) == S(np.ones((3, 4, 5))[idx].shape)


def test_index_errors_match_numpy():
    for idx in (np.s_[3], np.s_[0, 0, 0, 0], np.s_[[0, 3]]):
        with pytest.raises(IndexError):
            eval_shape(lambda x, i=idx: x[i], S((3, 4, 5)))


# ---- symbolic dimensions ----------------------------------------------------------------

def test_dim_arithmetic():
    assert repr(2 * B) == "2*batch" and repr(B * T - 1) == "batch*time - 1"
    assert B + B == 2 * B and B - B == 0 and (B * T + 3) - 3 == T * B
    assert (16 * B) // 16 == B and (4 * B * T) // B == 4 * T and (2 * B) % 2 == 0
    assert (6 * B) / 3 == 2 * B and 0 // B == 0
    assert B >= 1 and B > 0 and 2 * B > B and not B < 1 and B * T >= T
    assert provably_nonneg(B - 1) and not provably_nonneg(B - 2)
    for bad in (lambda: B < 5, lambda: B // 2, lambda: B % 3, lambda: 5 % B, lambda: int(B),
                lambda: B / 2, lambda: np.zeros((B, 4)), lambda: range(B)):
        with pytest.raises(ShapeError):
            bad()


def _sym_mlp(x, w1, b1, w2, b2):
    h = np.maximum(x @ w1 + b1, 0)
    z = h @ w2 + b2
    z = np.exp(z - np.max(z, axis=-1, keepdims=True))
    p = z / np.sum(z, axis=-1, keepdims=True)
    return p, np.mean(p), np.mean(p, axis=0), nn.softmax(z, -1).var(axis=0)


def test_symbolic_batch_through_an_mlp():
    out = eval_shape(_sym_mlp, S(("batch", 2)), S((2, 16)), S((16,)), S((16, 3)), S((3,)))
    assert out == (S(("batch", 3)), S(()), S((3,)), S((3,)))
    assert repr(out[0]) == "f64[batch,3]"


def test_symbolic_reshape_transpose_concatenate():
    out = eval_shape(lambda x: (x.reshape(-1, 16), x.reshape(-1, 4),
                                x.reshape(x.shape[0] * 4, 4), x.reshape(x.shape[0], -1),
                                np.transpose(x, (1, 2, 0)), np.concatenate([x, x]),
                                np.stack([x, x], axis=1), x.ravel()), S(("batch", 4, 4)))
    assert out == (S((B, 16)), S((4 * B, 4)), S((4 * B, 4)), S((B, 16)), S((4, 4, B)),
                   S((2 * B, 4, 4)), S((B, 2, 4, 4)), S((16 * B,)))
    assert repr(out[5]) == "f64[2*batch,4,4]"
    with pytest.raises(ShapeError, match="reshape: cannot reshape"):
        eval_shape(lambda x: x.reshape(-1, 3), S(("batch", 4)))


def test_symbolic_reductions_indexing_contractions():
    out = eval_shape(lambda x, y: (x.sum(0), x.mean(), x.sum(axis=(0, 1)), x[:, 0], x[..., 1:],
                                   x[None, :, ::-1], x[1:], x[:-1], x[0],
                                   np.einsum("bti,btj->ij", x, y), x.transpose(0, 2, 1) @ y,
                                   np.swapaxes(x, 0, 1).transpose(0, 2, 1) @ np.swapaxes(y, 0, 1)),
                     S(("batch", "time", 4)), S(("batch", "time", 5)))
    assert out == (S((T, 4)), S(()), S((4,)), S((B, 4)), S((B, T, 3)), S((1, B, T, 4)),
                   S((B - 1, T, 4)), S((B - 1, T, 4)), S((T, 4)), S((4, 5)),
                   S((B, 4, 5)), S((T, 4, 5)))


def test_symbolic_values_are_never_guessed():
    with pytest.raises(ShapeError, match="slice \\[:5\\] on axis 0 of symbolic size batch"):
        eval_shape(lambda x: x[:5], S(("batch", 4)))
    with pytest.raises(ShapeError, match="slice"):
        eval_shape(lambda x: x[::2], S(("batch", 4)))
    with pytest.raises(ShapeError, match="split: cannot split symbolic dimension batch"):
        eval_shape(lambda x: np.split(x, 2), S(("batch", 4)))
    with pytest.raises(ShapeError, match="symbolic"):
        eval_shape(lambda x: np.zeros(x.shape), S(("batch", 4)))
    halves = eval_shape(lambda x: np.split(np.concatenate([x, x]), 2), S(("batch", 4)))
    assert list(halves) == [S(("batch", 4))] * 2


def test_symbolic_nn_ops():
    out = eval_shape(lambda x, w, g, ids, table: (
        nn.layer_norm(nn.relu(nn.linear(x.reshape(-1, 16), w)), g, g),
        nn.scaled_dot_product_attention(x, x, x), nn.cross_entropy(x[:, 0], ids),
        nn.embedding(ids, table)),
        S(("batch", 4, 4)), S((8, 16)), S((8,)), S(("batch",), np.int64), S((10, 3)))
    assert out == (S((B, 8)), S((B, 4, 4)), S(()), S((B, 3)))


# ---- summary ------------------------------------------------------------------------------

def _rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines()]


def test_summary_of_the_seed_mlp():
    buf = io.StringIO()
    s = summary(mlp_batch_loss, mlp_params(), (5, 2), (5, 3), file=buf)
    text = buf.getvalue()
    assert text.strip() == str(s).strip()
    assert [(n, sp.shape, c) for n, sp, c, _ in s.params] == [
        ("w1", (2, 16), 32), ("b1", (16,), 16), ("w2", (16, 3), 48), ("b2", (3,), 3)]
    assert s.total == s.trainable == 99 and s.output == S(())
    assert ["w1", "(2,", "16)", "float64", "32"] in _rows(text)
    assert ["Total", "params:", "99"] in _rows(text) and "Output: f64[]" in text
    # one stage per executed line: the two layers, then the loss lines
    assert [(st.ops, st.output, st.params) for st in s.stages[:2]] == [
        (["matmul", "add", "tanh"], S((5, 16)), ["w1", "b1"]),
        (["matmul", "add"], S((5, 3)), ["w2", "b2"])]
    assert s.stages[0].source.endswith("h = np.tanh(x @ w1 + b1)")
    assert s.stages[-1].output == S(()) and len(s.stages) == 5
    assert ["1", "matmul,", "add,", "tanh", "f64[5,16]", "48"] == _rows(text)[
        next(i for i, r in enumerate(_rows(text)) if r[:1] == ["Stage"]) + 2][:6]


def test_summary_with_paramdict_nested_names_and_symbolic_batch():
    pd = pycograd.ParamDict(enc={"w": np.ones((2, 16)), "b": np.zeros(16)},
                            head={"w": pycograd.frozen[np.ones((16, 3))], "b": np.zeros(3)})

    def loss(p, x, y):
        return mlp_batch_loss({"w1": p["enc.w"], "b1": p["enc.b"], "w2": p["head.w"],
                               "b2": p["head.b"]}, x, y)

    s = summary(loss, pd, ("batch", 2), S(("batch", 3)), verbose=False)
    assert [(n, c, t) for n, _, c, t in s.params] == [
        ("enc.w", 32, True), ("enc.b", 16, True), ("head.w", 48, False), ("head.b", 3, True)]
    assert (s.total, s.trainable) == (99, 51)
    assert s.stages[0].output == S(("batch", 16)) and s.stages[1].params == ["head.w", "head.b"]
    assert "head.w (non-trainable)" in str(s) and "Non-trainable params: 48" in str(s)
    assert "Input: f64[batch,2], f64[batch,3]" in str(s)


def test_summary_stages_are_nn_calls_and_loop_iterations():
    def net(p, x):
        h = nn.relu(nn.linear(x, p["enc"]["w"], p["enc"]["b"]))
        h = nn.layer_norm(h, p["ln"]["g"], p["ln"]["b"])
        for w in p["blocks"]:
            h = np.tanh(h @ w)
        return nn.softmax(nn.linear(h, p["head"]), -1)

    p = {"enc": {"w": np.ones((32, 8)), "b": np.zeros(32)},
         "ln": {"g": np.ones(32), "b": np.zeros(32)},
         "blocks": [np.ones((32, 32)), np.ones((32, 32))], "head": np.ones((10, 32))}
    s = summary(net, p, S(("batch", 8)), verbose=False)
    assert [n for n, *_ in s.params] == ["enc.w", "enc.b", "ln.g", "ln.b", "blocks.0",
                                         "blocks.1", "head"]
    assert [(st.layer, st.output.shape[1:], st.params) for st in s.stages] == [
        ("linear", (32,), ["enc.w", "enc.b"]), ("relu", (32,), []),
        ("layer_norm", (32,), ["ln.g", "ln.b"]), ("", (32,), ["blocks.0"]),
        ("", (32,), ["blocks.1"]), ("linear", (10,), ["head"]), ("softmax", (10,), [])]
    assert s.output == S(("batch", 10)) and s.total == 256 + 32 + 64 + 2048 + 320
    assert "Total params: 2720" in str(s)


def test_summary_of_abstract_params():
    s = summary(lambda p, x: x @ p["w"], {"w": S((50000, 50000))}, (3, 50000), verbose=False)
    assert s.total == 2_500_000_000 and s.output == S((3, 50000))
