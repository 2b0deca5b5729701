"""pycograd.random: the cipher against its published test vectors, golden draws (a change
of platform or implementation shows up here), independence of split streams, and the
statistics of every distribution."""

import ml_dtypes
import numpy as np
import pytest

from pycograd import random as R

N = 100_000


@pytest.mark.parametrize("k, ctr, expected", [
    ((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
])
def test_threefry_known_answers(k, ctr, expected):
    # Random123's known-answer vectors for threefry2x32_20.
    y0, y1 = R.threefry2x32(np.array(k, np.uint32), np.array([ctr[0]], np.uint32),
                            np.array([ctr[1]], np.uint32))
    assert (int(y0[0]), int(y1[0])) == expected


def test_golden_values():
    k = R.key(42)
    np.testing.assert_array_equal(R.split(k, 3), [[1832780943, 270669613],
                                                  [64467757, 2916123636],
                                                  [2465931498, 255383827]])
    np.testing.assert_array_equal(R.fold_in(k, 7), [2547012911, 1371500959])
    np.testing.assert_array_equal(R.fold_in(k, "layer1"), [3923419921, 4289617860])
    np.testing.assert_allclose(R.normal(k, 4), [-0.9424729039672534, -0.02199412383777635,
                                                -0.4738494212919499, -0.17252240421924114],
                               rtol=1e-13)
    np.testing.assert_array_equal(R.uniform(k, 3, np.float32),
                                  np.array([0.42672753, 0.015010059, 0.06302017], np.float32))
    np.testing.assert_array_equal(R.randint(k, 5, 0, 100), [41, 8, 35, 25, 66])
    np.testing.assert_array_equal(R.permutation(k, 8), [1, 0, 2, 7, 5, 6, 4, 3])
    np.testing.assert_array_equal(R.categorical(k, np.zeros(10), shape=(6,)), [3, 9, 5, 8, 7, 3])


def test_key_and_int_seed():
    assert R.key(5).dtype == np.uint32 and R.key(5).shape == (2,)
    np.testing.assert_array_equal(R.key(2**40 + 3), [2**8, 3])
    np.testing.assert_array_equal(R.key(-1), [0xFFFFFFFF, 0xFFFFFFFF])
    np.testing.assert_array_equal(R.normal(7, 5), R.normal(R.key(7), 5))
    with pytest.raises(TypeError, match="expected a key"):
        R.normal(np.array([1, 2, 3]), 2)


def test_determinism_and_independence():
    k = R.key(0)
    np.testing.assert_array_equal(R.normal(k, (3, 4)), R.normal(R.key(0), (3, 4)))
    k1, k2 = R.split(k)
    a, b = R.normal(k1, 1000), R.normal(k2, 1000)
    assert not np.array_equal(a, b)
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.15
    keys = R.split(k, 50)
    assert len({tuple(x) for x in keys}) == 50
    folded = {tuple(R.fold_in(k, i)) for i in range(50)}
    assert len(folded) == 50
    assert not np.array_equal(R.fold_in(k, "a"), R.fold_in(k, "b"))
    # A prefix of a larger draw is not required, but a draw must not depend on call history.
    R.uniform(k1, 10)
    np.testing.assert_array_equal(R.normal(k1, 1000), a)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16, ml_dtypes.bfloat16])
def test_uniform_range_and_moments(dtype):
    u = R.uniform(R.key(1), N, dtype, -2.0, 3.0)
    assert u.dtype == np.dtype(dtype) and u.shape == (N,)
    f = u.astype(np.float64)
    assert f.min() >= -2.0 and f.max() < 3.0
    assert abs(f.mean() - 0.5) < 0.03
    assert abs(f.std() - 5 / np.sqrt(12)) < 0.03


def test_uniform_broadcast_bounds():
    u = R.uniform(R.key(2), (1000, 2), minval=np.array([0.0, 10.0]), maxval=np.array([1.0, 20.0]))
    assert u[:, 0].max() < 1.0 and u[:, 1].min() >= 10.0 and u[:, 1].max() < 20.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_normal_moments(dtype):
    z = R.normal(R.key(3), (N // 4, 4), dtype)
    assert z.dtype == dtype and z.shape == (N // 4, 4)
    assert np.all(np.isfinite(z))
    assert abs(z.mean()) < 0.01
    assert abs(z.std() - 1) < 0.01
    assert abs(np.mean(np.abs(z) < 1) - 0.6827) < 0.01


def test_bernoulli_rate():
    b = R.bernoulli(R.key(4), 0.3, N)
    assert b.dtype == bool and abs(b.mean() - 0.3) < 0.01
    p = np.array([0.1, 0.9])
    rates = R.bernoulli(R.key(5), p, (N // 2, 2)).mean(0)
    np.testing.assert_allclose(rates, p, atol=0.01)
    assert R.bernoulli(R.key(6), p).shape == (2,)


def test_randint_range_and_uniformity():
    r = R.randint(R.key(7), N, -3, 7)
    assert r.dtype == np.int64 and r.min() == -3 and r.max() == 6
    counts = np.bincount(r + 3, minlength=10)
    np.testing.assert_allclose(counts / N, 0.1, atol=0.01)
    with pytest.raises(ValueError, match="minval < maxval"):
        R.randint(R.key(0), 3, 5, 5)


def test_permutation():
    p = R.permutation(R.key(8), 1000)
    np.testing.assert_array_equal(np.sort(p), np.arange(1000))
    assert not np.array_equal(p, np.arange(1000))
    x = np.arange(12).reshape(4, 3)
    px = R.permutation(R.key(8), x)
    np.testing.assert_array_equal(np.sort(px[:, 0]), x[:, 0])
    np.testing.assert_array_equal(px[:, 1] - px[:, 0], 1)
    pc = R.permutation(R.key(8), x, axis=1)
    np.testing.assert_array_equal(np.sort(pc, axis=1), x)


def test_gumbel_moments():
    g = R.gumbel(R.key(9), N)
    assert np.all(np.isfinite(g))
    assert abs(g.mean() - np.euler_gamma) < 0.02
    assert abs(g.var() - np.pi ** 2 / 6) < 0.05


def test_categorical_frequencies_match_softmax():
    logits = np.array([1.0, 0.0, -1.0, 2.0])
    p = np.exp(logits) / np.exp(logits).sum()
    c = R.categorical(R.key(10), logits, shape=(N,))
    np.testing.assert_allclose(np.bincount(c, minlength=4) / N, p, atol=0.01)


def test_categorical_batched_axis():
    logits = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])).T  # classes on axis 0
    c = R.categorical(R.key(11), logits, axis=0)
    assert c.shape == (2,)
    many = R.categorical(R.key(11), logits, axis=0, shape=(20_000, 2))
    assert many.shape == (20_000, 2)
    np.testing.assert_allclose((many[:, 0] == 0).mean(), 0.7, atol=0.02)
    np.testing.assert_allclose((many[:, 1] == 2).mean(), 0.8, atol=0.02)
    with pytest.raises(ValueError, match="batch shape"):
        R.categorical(R.key(0), logits, axis=0, shape=(5, 3))


def test_float_dtype_required():
    with pytest.raises(TypeError, match="floating dtype"):
        R.uniform(R.key(0), 3, np.int32)
