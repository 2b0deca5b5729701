"""The fused nn primitives (``softmax``, ``log_softmax``, ``layer_norm``) and the backward
pass's memory (issue 12): each keeps what PyTorch keeps, and backward allocates no more
than the gradient needs. Gradients in every mode are the sweep's (``sweep_cases_nn``)."""


import numpy as np
import pytest
from memory_peak import peak_mib

import pycograd
from pycograd import Var, eval_shape, grad, layer_norm, log_softmax, softmax, value_and_grad
from pycograd.core.errors import ShapeError
from pycograd.core.primitive import UNSAVED
from pycograd.core.symbolic import Dim
from pycograd.core.var import ANS, ARGS


@pytest.fixture(autouse=True)
def strict_residuals(monkeypatch):
    monkeypatch.setattr("pycograd.core.var.SHAPED_FROM_BYTES", 0)


def _node(out):
    return out._node


def test_softmax_keeps_only_its_output():
    out = softmax(Var(np.arange(6.0).reshape(2, 3)))
    node = _node(out)
    assert node[ANS] is out.value and node[ARGS][0] is UNSAVED


def test_log_softmax_keeps_only_its_output():
    out = log_softmax(Var(np.arange(6.0).reshape(2, 3)), axis=0)
    node = _node(out)
    assert node[ANS] is out.value and node[ARGS][0] is UNSAVED


def test_layer_norm_keeps_its_input_not_its_output():
    x = np.random.default_rng(0).standard_normal((2, 4))
    out = layer_norm(Var(x), Var(np.ones(4)), Var(np.zeros(4)))
    node = _node(out)
    assert node[ANS] is UNSAVED and node[ARGS][0] is x


def test_axes_are_checked_and_named():
    with pytest.raises(ShapeError, match="softmax: axis 2 is out of bounds"):
        softmax(np.ones((2, 3)), axis=2)
    with pytest.raises(ShapeError, match="layer_norm: repeated axis"):
        layer_norm(np.ones((2, 3)), axis=(1, -1))


def test_values_match_the_compositions():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4, 5)) * 30
    e = np.exp(x - x.max(axis=(0, 2), keepdims=True))
    np.testing.assert_allclose(softmax(x, axis=(0, 2)), e / e.sum(axis=(0, 2), keepdims=True),
                               rtol=1e-13)
    np.testing.assert_allclose(log_softmax(x, axis=1),
                               np.log(softmax(x, axis=1)), rtol=1e-12, atol=1e-12)
    w, b = rng.standard_normal(5), rng.standard_normal(5)
    d = x - x.mean(-1, keepdims=True)
    ref = d / np.sqrt((d * d).mean(-1, keepdims=True) + 1e-5) * w + b
    np.testing.assert_allclose(layer_norm(x, w, b), ref, rtol=1e-12, atol=1e-12)


def test_dtypes_follow_numpy():
    x16 = np.ones((2, 3), np.float16)
    assert softmax(x16).dtype == np.float16 and log_softmax(x16).dtype == np.float16
    assert layer_norm(x16, np.ones(3, np.float32)).dtype == np.float32
    assert softmax(np.arange(3)).dtype == np.float64  # integers compute in float64


def test_masked_rows_stay_finite_and_differentiable():
    """A row with some -inf logits (attention masks): the masked probabilities are 0 and
    their gradient is 0, never NaN."""
    mask = np.array([[True, False, True]])

    def f(z):
        return np.sum(softmax(np.where(mask, z, -np.inf)) * np.array([1.0, 2.0, 3.0]))
    g = grad(f, 0)(np.array([[0.5, 0.1, -0.3]]))
    assert np.all(np.isfinite(g)) and g[0, 1] == 0.0


def test_eval_shape_with_a_symbolic_batch():
    n = Dim("n")
    specs = (pycograd.ShapeDtypeStruct((n, 8), np.float32),
             pycograd.ShapeDtypeStruct((8,), np.float64))
    out = eval_shape(lambda x, w: softmax(layer_norm(x, w, w)) + log_softmax(x), *specs)
    assert out.shape == (n, 8) and out.dtype == np.float64


def test_vmap_over_weights_as_well_as_inputs():
    rng = np.random.default_rng(2)
    xs, ws = rng.standard_normal((3, 2, 4)), rng.standard_normal((3, 4))
    got = pycograd.vmap(lambda x, w: layer_norm(x, w))(xs, ws)
    np.testing.assert_allclose(got, np.stack([layer_norm(x, w) for x, w in zip(xs, ws)]),
                               rtol=1e-13)
    got = pycograd.vmap(lambda w: layer_norm(xs[0], w))(ws)  # unbatched input, batched weight
    np.testing.assert_allclose(got, np.stack([layer_norm(xs[0], w) for w in ws]), rtol=1e-13)


# ---- memory -------------------------------------------------------------------------------


def test_attention_block_keeps_what_pytorch_keeps():
    """A pre-LN attention block with 1 MiB activations and 2 MiB scores: the tape keeps
    the block input (layer_norm), its output (read by the projections), q, k, v, the
    probabilities and the attended values: 8 MiB, where the compositions kept 14."""
    rng = np.random.default_rng(0)
    B, L, D = 4, 128, 256
    x = rng.standard_normal((B, L, D))
    wq, wk, wv = (rng.standard_normal((D, D)) / 16 for _ in range(3))
    g = np.ones(D)

    def f(h):
        a = layer_norm(h, g, g)
        q, k, v = a @ wq, a @ wk, a @ wv
        s = softmax(q @ np.swapaxes(k, -1, -2) * 0.0625)
        return np.sum(s @ v)

    held = []

    def tape(h):
        out = f(Var(h))
        nodes, stack, seen = [], [out._node], set()
        while stack:
            n = stack.pop()
            if id(n) in seen:
                continue
            seen.add(id(n))
            nodes.append(n)
            stack.extend(p for _, p in n[3])
        arrays = {id(a): a for n in nodes for a in [*(n[ARGS] or ()), n[ANS]]
                  if isinstance(a, np.ndarray) and a.nbytes > 4096 and a is not x}
        held.append(sum(a.nbytes if a.base is None else 0 for a in arrays.values())
                    + sum(a.base.nbytes for a in {id(a.base): a for a in arrays.values()
                                                  if a.base is not None}.values()))
    tape(x)
    assert held[0] / 2**20 <= 8 + 0.1, held[0] / 2**20


def test_weight_gradient_of_a_batched_matmul_is_one_product():
    """(B, N, K) @ (K, M): the weight's gradient is one (K, M) product over the folded batch,
    never a (B, K, M) stack summed afterwards (that was 8 MiB here)."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((16, 64, 512)), rng.standard_normal((512, 128))
    mib = peak_mib(grad(lambda w: np.sum(x @ w), 0), w)
    assert mib < 4, mib


def test_tanh_backward_allocates_one_array():
    x = np.random.default_rng(0).standard_normal((1024, 512))  # 4 MiB
    ct = np.ones_like(x)
    _, pull = pycograd.vjp(np.tanh, x)
    assert peak_mib(pull, ct) < 4 + 1


def test_fan_out_accumulates_in_place():
    """``sum(h * h)``: the two cotangents of ``h`` add into the first one, as PyTorch's
    buffers do; the backward peak is two arrays of h's size (was three)."""
    h = np.random.default_rng(0).standard_normal((1024, 512))  # 4 MiB
    assert peak_mib(grad(lambda h: np.sum(h * h), 0), h) < 2 * 4 + 1


def test_in_place_accumulation_never_touches_shared_cotangents():
    """One cotangent object handed to several parents (``add`` passes ``g`` through to both
    of its operands) must not be added into: each parent sees its own sum."""
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((64, 64)), rng.standard_normal((64, 64))

    def f(x, y):
        s = np.sin(x) + np.cos(y)        # s's cotangent goes, as one object, to both
        t = s + x * y                    # x and y fan out again
        return np.sum(t * s) + np.sum(np.exp(x) * x) + np.sum(y + y)

    gx, gy = grad(f, (0, 1))(x, y)
    s = np.sin(x) + np.cos(y)
    t = s + x * y
    ex = (t + s) * np.cos(x) + s * y + np.exp(x) * (x + 1)
    ey = -(t + s) * np.sin(y) + s * x + 2
    np.testing.assert_allclose(gx, ex, rtol=1e-12)
    np.testing.assert_allclose(gy, ey, rtol=1e-12)
    v = Var(x.copy())
    g0 = np.ones((64, 64))
    (v + v).backward(g0)  # the user's cotangent is never written to
    np.testing.assert_array_equal(g0, np.ones((64, 64)))
    np.testing.assert_array_equal(v.grad, 2 * g0)


def test_value_and_grad_of_the_block_matches_the_composition():
    """The fused block against the same block written with the compositions."""
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((2, 3, 8)), rng.standard_normal(8), rng.standard_normal(8)

    def fused(x, w, b):
        return np.sum(softmax(layer_norm(x, w, b)) * log_softmax(x, axis=(0, 2)))

    def composed(x, w, b):
        d = x - np.mean(x, -1, keepdims=True)
        y = d / np.sqrt(np.mean(d * d, -1, keepdims=True) + 1e-5) * w + b
        e = np.exp(y - pycograd.stop_gradient(np.max(y, -1, keepdims=True)))
        m = pycograd.stop_gradient(np.max(x, (0, 2), keepdims=True))
        ls = x - m - np.log(np.sum(np.exp(x - m), (0, 2), keepdims=True))
        return np.sum(e / np.sum(e, -1, keepdims=True) * ls)

    v1, g1 = value_and_grad(fused)(x, w, b)
    v2, g2 = value_and_grad(composed)(x, w, b)
    np.testing.assert_allclose(v1, v2, rtol=1e-12)
    for a, e in zip(g1, g2):
        np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-12)
