"""Shapes, dtypes and keys from the correctness audit (issue 20 items 6-9, issue 17 item 9).

The sweeps over every case are in ``test_eval_shape_sweep.py``; these are the audit's own
examples, each failing before its fix.
"""

from __future__ import annotations

import numpy as np
import pytest
import sweep_cases_nn
from sweep_cases_linalg import scipy_fn

import pycograd
from pycograd import nn
from pycograd import random as R
from pycograd.core.symbolic import Dim
from pycograd.ops.special import erf

S = pycograd.ShapeDtypeStruct
N = Dim("N")
ROT = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 2.0]])


# ---- item 6: a dtype that depends on the values is refused, not guessed ----------------

@pytest.mark.parametrize("f", [np.linalg.eigvals, lambda a: np.linalg.eig(a).eigenvalues,
                               lambda a: np.linalg.eig(a).eigenvectors])
def test_eig_of_a_real_matrix_is_refused_by_eval_shape(f):
    assert np.iscomplexobj(f(ROT))  # numpy: complex here, real for a symmetric matrix
    with pytest.raises(pycograd.DataDependentShapeError, match="astype\\(complex\\)"):
        pycograd.eval_shape(f, S((3, 3)))
    got = pycograd.eval_shape(f, S((2, 3, 3), np.complex128))
    assert got.dtype == np.complex128 and got.dtype == f(ROT.astype(complex)).dtype


def test_sqrtm_of_a_real_matrix_is_refused_by_eval_shape():
    sqrtm = scipy_fn("sqrtm")
    with pytest.raises(pycograd.DataDependentShapeError):
        pycograd.eval_shape(sqrtm, S((3, 3)))
    assert pycograd.eval_shape(sqrtm, S((3, 3), np.complex64)).dtype == np.complex64


# ---- item 7: half precision stays half precision -----------------------------------

@pytest.mark.parametrize("f", [erf, nn.gelu, lambda x: nn.gelu(x, approximate="tanh")])
def test_exact_gelu_and_erf_keep_float16(f):
    x = np.linspace(-2, 2, 7).astype(np.float16)
    assert f(x).dtype == np.float16
    out, pullback = pycograd.vjp(f, x)
    assert out.dtype == np.float16 and pullback(np.ones_like(out))[0].dtype == np.float16
    assert pycograd.eval_shape(f, S((7,), np.float16)).dtype == np.float16
    np.testing.assert_allclose(f(x).astype(np.float64), f(x.astype(np.float64)), atol=2e-3)


@pytest.mark.parametrize("case", sweep_cases_nn.CASES, ids=[c.name for c in sweep_cases_nn.CASES])
def test_nn_ops_keep_float16(case):
    """The class: an nn op given float16 inputs returns float16 (the tables' expected
    dtypes come from the nn functions themselves, so the sweep cannot see an upcast)."""
    if not all(np.dtype(a.dtype).kind == "f" for a in case.args):
        pytest.skip("integer or complex inputs")
    with np.errstate(all="ignore"):
        out = case.fn(*[a.astype(np.float16) for a in case.sample()])
    for o in out if isinstance(out, (tuple, list)) else [out]:
        dt = np.result_type(o)
        assert dt.kind != "f" or dt == np.float16, f"{case.name}: {dt}"


# ---- item 8 / issue 17 item 9: a symbolic batch through nn ops and shape-only primitives

SYMBOLIC = {
    "conv2d-padding": (lambda x, w: nn.conv2d(x, w, padding=1),
                       [S((N, 3, 8, 8)), S((4, 3, 3, 3))], [(N, 4, 8, 8)]),
    "conv_transpose2d": (lambda x, w: nn.conv_transpose2d(x, w, stride=2),
                         [S((N, 3, 5, 5)), S((3, 4, 3, 3))], [(N, 4, 11, 11)]),
    "max_pool2d-padding": (lambda x: nn.max_pool2d(x, 2, padding=1), [S((N, 3, 8, 8))],
                           [(N, 3, 5, 5)]),
    "batch_norm": (lambda x, g, b: nn.batch_norm(x, None, None, g, b, training=True)[0],
                   [S((N, 4, 5)), S((4,)), S((4,))], [(N, 4, 5)]),
    "dropout": (lambda x: nn.dropout(x, 0.5, R.key(0)), [S((N, 6))], [(N, 6)]),
    "inv": (np.linalg.inv, [S((N, 3, 3))], [(N, 3, 3)]),
    "pad": (lambda x: np.pad(x, ((0, 0), (1, 2))), [S((N, 3))], [(N, 6)]),
    "take_along_axis": (lambda x: np.take_along_axis(x, np.array([[2, 0]]), axis=1),
                        [S((N, 3))], [(N, 2)]),
    "quantile-axis1": (lambda x: np.quantile(x, 0.3, axis=1), [S((N, 5))], [(N,)]),
    "causal-attention": (lambda q, k, v: nn.scaled_dot_product_attention(q, k, v,
                                                                         is_causal=True),
                         [S((2, N, 4)), S((2, N, 4)), S((2, N, 4))], [(2, N, 4)]),
}


@pytest.mark.parametrize("name", list(SYMBOLIC))
def test_symbolic_batch_through_shape_only_ops(name):
    f, specs, shapes = SYMBOLIC[name]
    got = pycograd.eval_shape(f, *specs)
    assert [g.shape for g in (got if isinstance(got, tuple) else (got,))] == shapes


def test_summary_of_a_cnn_with_a_symbolic_batch():
    def net(p, x):
        h = nn.relu(nn.conv2d(x, p["w"], padding=1))
        h = nn.max_pool2d(h, 2, padding=1)
        return nn.dropout(h.reshape(h.shape[0], -1), 0.1, R.key(0)) @ p["head"]

    s = pycograd.summary(net, {"w": np.ones((4, 3, 3, 3)), "head": np.ones((100, 2))},
                         ("batch", 3, 8, 8), verbose=False)
    assert s.output == S(("batch", 2)) and s.total == 108 + 200


# ---- item 9: keys are values under every transform ---------------------------------

def test_per_example_dropout_keys_under_vmap():
    X = np.arange(24.0).reshape(4, 6)
    keys = R.split(R.key(0), 4)
    got = pycograd.vmap(lambda x, k: nn.dropout(x, 0.5, k))(X, keys)
    np.testing.assert_array_equal(got, [nn.dropout(X[i], 0.5, keys[i]) for i in range(4)])
    gx, gk = pycograd.vmap(pycograd.grad(lambda x, k: np.sum(nn.dropout(x, 0.5, k) ** 2)))(
        X, keys)
    assert gk is None  # integer keys carry no gradient
    np.testing.assert_allclose(gx, [pycograd.grad(
        lambda x, k=k: np.sum(nn.dropout(x, 0.5, k) ** 2))(x)[0] for x, k in zip(X, keys)])


@pytest.mark.parametrize("draw", [
    lambda k: R.normal(k, (3,)), lambda k: R.uniform(k, (5,), np.float32),
    lambda k: R.split(k, 3), lambda k: R.fold_in(k, "layer1"),
    lambda k: R.bits(k, (3,), np.uint64), lambda k: R.randint(k, (4,), 0, 10),
    lambda k: R.permutation(k, 5), lambda k: R.gumbel(k, (3,)),
    lambda k: R.categorical(k, np.log([0.2, 0.3, 0.5])), lambda k: R.bernoulli(k, 0.3, (4,)),
])
def test_every_draw_takes_a_traced_key(draw):
    keys = R.split(R.key(7), 3)
    want = np.stack([draw(k) for k in keys])
    got = pycograd.vmap(draw)(keys)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    spec = pycograd.eval_shape(draw, S((2,), np.uint32))
    assert (spec.shape, spec.dtype) == (want.shape[1:], want.dtype)


def test_eval_shape_of_a_model_taking_its_key():
    def model(x, k):
        return nn.dropout(np.tanh(x), 0.5, k)

    for batch in (4, "batch"):
        out = pycograd.eval_shape(model, S((batch, 6)), S((2,), np.uint32))
        assert out == S((batch, 6))
