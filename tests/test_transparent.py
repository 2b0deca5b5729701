"""The transparent layer: scalar ``math.*``, ``np.array([...])`` and ``np.r_[...]`` /
``np.c_[...]`` on traced values, in the differentiated function and in the user helpers it
calls."""

import importlib
import math
import sys
import threading
import warnings
from math import exp as m_exp
from math import log1p, tanh

import numpy as np
import numpy as onp
import pytest
from numpy import c_ as C
from numpy import r_

from pycograd import TracerConversionError, grad, value_and_grad
from pycograd.numpy_api.transparent import routed, transparent


def fd(f, x, eps=1e-6):
    """Central finite differences of a scalar function of an array."""
    x = np.asarray(x, dtype=float)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        g[i] = (f(x + e) - f(x - e)) / (2 * eps)
    return g


# ---- module-level helpers, several styles -----------------------------------------------

def inner(t):
    return m_exp(t) * math.sin(t)          # `from math import` and `math.` styles


def outer(t):
    return inner(t) + log1p(t * t)         # two levels deep


def gen(x):
    for t in x:
        yield math.cos(t)


def plain_numpy(x):
    return np.sum(np.sin(x) * x)


squash = lambda t: tanh(t) * 2.0          # noqa: E731  (a module-level lambda helper)


def uses_plain_helper(x):
    return plain_numpy(x) * 2.0


# ---- math.* ----------------------------------------------------------------------------

def test_math_in_the_function():
    def f(x):
        return (math.sin(x) * math.exp(x) + math.log(x) + math.sqrt(x) + math.pow(x, 3)
                + math.tanh(x) + math.log(x, 2.0))

    x = 0.7
    expected = (math.cos(x) * math.exp(x) + math.sin(x) * math.exp(x) + 1 / x
                + 0.5 / math.sqrt(x) + 3 * x * x + 1 - math.tanh(x) ** 2 + 1 / (x * math.log(2)))
    v, g = value_and_grad(f, 0)(x)
    assert v == pytest.approx(f(x))
    assert g == pytest.approx(expected)


def test_math_erf_and_fsum():
    f = lambda x: math.erf(x) + math.erfc(2 * x) + math.fsum([x, x * x])
    g = 2 / math.sqrt(math.pi) * (math.exp(-0.3 ** 2) - 2 * math.exp(-0.6 ** 2)) + 1 + 0.6
    assert grad(f, 0)(0.3) == pytest.approx(g)


def test_math_in_helpers_two_levels_deep():
    x = 0.4
    g = grad(lambda x: outer(x) * 3.0, 0)(x)
    assert g == pytest.approx(3 * fd(lambda v: outer(float(v)), x), rel=1e-6)


def test_lambda_helper_and_lambda_function():
    g = grad(lambda x: squash(x) + math.cos(x), 0)(0.3)
    assert g == pytest.approx(2 * (1 - math.tanh(0.3) ** 2) - math.sin(0.3))


def test_closure_and_nested_def():
    def make(scale):
        def f(x):
            def local(t):
                return math.exp(scale * t)
            return local(x) + math.sin(x)
        return f

    g = grad(make(2.0), 0)(0.5)
    assert g == pytest.approx(2 * math.exp(1.0) + math.cos(0.5))


def test_helper_in_another_module(tmp_path, monkeypatch):
    (tmp_path / "tp_user_helpers.py").write_text(
        "import math\n\n\ndef act(t):\n    return math.tanh(t) ** 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module("tp_user_helpers")
    try:
        g = grad(lambda x: mod.act(x) * 2.0, 0)(0.8)
        t = math.tanh(0.8)
        assert g == pytest.approx(4 * t * (1 - t * t))
    finally:
        sys.modules.pop("tp_user_helpers", None)


def test_local_import_and_array_argument():
    def f(x):
        import math as m
        return np.sum(x * m.exp(x[0]))

    x = np.array([0.2, 0.5])
    g = grad(f, 0)(x)
    np.testing.assert_allclose(g, fd(lambda v: np.sum(v * np.exp(v[0])), x), rtol=1e-6)


def test_comprehensions_generators_and_default_arguments():
    def f(x, act=math.tanh):
        v = np.array([math.sin(t) * act(t) for t in x])
        return np.sum(v) + sum(math.exp(t) for t in x) + sum(gen(x))

    x = np.array([0.1, 0.4, -0.3])
    ref = lambda v: np.sum(np.sin(v) * np.tanh(v)) + np.sum(np.exp(v)) + np.sum(np.cos(v))
    np.testing.assert_allclose(grad(f, 0)(x), fd(ref, x), rtol=1e-6)


def test_methods_and_decorated_functions():
    def twice(fn):
        return lambda *a: fn(*a) * 2.0

    @twice
    def decorated(x):
        return math.sin(x)

    class Model:
        def __init__(self, w):
            self.w = w

        def loss(self, x):
            return math.exp(self.w * x)

    assert grad(decorated, 0)(0.3) == pytest.approx(2 * math.cos(0.3))
    m = Model(1.5)
    assert grad(m.loss, 0)(0.2) == pytest.approx(1.5 * math.exp(0.3))
    assert grad(lambda x: m.loss(x), 0)(0.2) == pytest.approx(1.5 * math.exp(0.3))


def test_second_order_through_math():
    d2 = grad(grad(lambda x: math.sin(x) * math.exp(x), 0), 0)(0.6)
    assert d2 == pytest.approx(2 * math.cos(0.6) * math.exp(0.6))
    d2 = grad(grad(lambda x: outer(x), 0), 0)(0.4)
    h = 1e-4
    d1 = lambda v: (outer(v + h) - outer(v - h)) / (2 * h)
    assert d2 == pytest.approx((d1(0.4 + h) - d1(0.4 - h)) / (2 * h), rel=1e-4)


def test_math_on_plain_numbers_still_runs_math():
    seen = []

    def f(x):
        c = math.sin(2.0)
        seen.append(type(c))
        return x * c + math.sin(x)

    assert grad(f, 0)(1.0) == pytest.approx(math.sin(2.0) + math.cos(1.0))
    assert seen == [float]


def test_unrouted_math_raises_a_named_error():
    from pyccolo.emit_event import _TRACER_STACK

    with pytest.raises(TracerConversionError, match=r"math\.gamma"):
        grad(lambda x: math.gamma(x), 0)(1.5)
    assert not _TRACER_STACK                                # the tracing context was left
    assert grad(lambda x: x * math.gamma(1.5), 0)(2.0) == pytest.approx(math.gamma(1.5))


def test_float_of_a_traced_value_still_raises():
    with pytest.raises(TracerConversionError, match="float"):
        grad(lambda x: float(x) * 2.0, 0)(1.0)


def test_code_without_source_warns_and_raises():
    ns = {"math": math}
    exec("def f(x):\n    return math.sin(x)\n", ns)
    with warnings.catch_warnings(record=True) as w, pytest.raises(TracerConversionError):
        warnings.simplefilter("always")
        grad(ns["f"], 0)(0.5)
    assert any("source is not available" in str(m.message) for m in w)


# ---- np.array constructors ----------------------------------------------------------------

def test_np_array_of_traced_scalars():
    def f(x):
        v = np.array([x[0] * x[1], x[2], 3.0])
        return np.sum(v * v * np.array([1.0, 2.0, 3.0]))

    x = np.array([0.5, 1.5, -2.0])
    np.testing.assert_allclose(grad(f, 0)(x), fd(f, x), rtol=1e-6)


def test_nested_lists_tuples_asarray_and_dtype():
    def f(x):
        m = np.array([[x[0], 1.0], (x[1], x[0] * x[1])], dtype=float)
        v = np.asarray([x[1], 2.0])
        s = np.stack([[x[0], x[1]], v])
        return np.sum(m @ v) + np.sum(s * s)

    x = np.array([0.3, -1.2])
    np.testing.assert_allclose(grad(f, 0)(x), fd(f, x), rtol=1e-6)


def test_np_array_on_plain_data_is_unchanged():
    seen = []

    def f(x):
        a = np.array([1, 2, 3])
        b = np.array([[1.0, 2.0]], dtype=np.float32, ndmin=3)
        seen.append((a, b))
        return np.sum(x * np.array([1.0, 2.0])) + math.sin(x[0])

    grad(f, 0)(np.array([0.1, 0.2]))
    a, b = seen[0]
    assert type(a) is np.ndarray and a.dtype == np.array([1, 2, 3]).dtype
    assert b.dtype == np.float32 and b.shape == (1, 1, 2)


# ---- cost and caching ---------------------------------------------------------------------

def test_plain_functions_are_returned_as_is():
    assert routed(plain_numpy) is plain_numpy
    assert routed(plain_numpy) is plain_numpy
    assert routed(uses_plain_helper) is uses_plain_helper
    assert routed(len) is len
    # a numpy function handed to a transform may get a list of traced leaves (grad(np.sum)
    # of a list): its route builds such lists into arrays, and is numpy's function otherwise
    assert routed(np.sum).__wrapped__ is np.sum
    assert routed(np.sum) is routed(np.sum)


def test_routed_copies_are_cached():
    r = routed(outer)
    assert r is not outer
    assert routed(outer) is r
    assert routed(r) is r                                   # nested grads: already routed


def test_rebinding_a_helper_is_noticed():
    ns = {}
    src = "def helper(t):\n    return t * 2.0\n\ndef f(x):\n    return helper(x)\n"
    path = _write_module(src)
    exec(compile(src, path, "exec"), ns)
    assert routed(ns["f"]) is ns["f"]
    ns["helper"] = inner
    assert routed(ns["f"]) is not ns["f"]
    assert grad(ns["f"], 0)(0.3) == pytest.approx(fd(lambda v: inner(float(v)), 0.3), rel=1e-6)

    ns = {"math": math}
    src = ("import math\n\ndef helper(t):\n    return t * 2.0\n\n"
           "def f(x):\n    return helper(x) + math.sin(x)\n")
    exec(compile(src, _write_module(src, "<pycograd-test-module-2>"), "exec"), ns)
    assert grad(ns["f"], 0)(0.3) == pytest.approx(2.0 + math.cos(0.3))
    ns["helper"] = inner                                    # the woven call site is re-woven
    assert grad(ns["f"], 0)(0.3) == pytest.approx(
        fd(lambda v: inner(float(v)), 0.3) + math.cos(0.3), rel=1e-6)


def _write_module(src, path="<pycograd-test-module>"):
    """Register ``src`` as the source of ``path`` (as IPython does for cells)."""
    import linecache

    linecache.cache[path] = (len(src), None, src.splitlines(True), path)
    return path


def test_transparent_decorator():
    @transparent
    def f(x):
        return math.exp(x)

    assert f(0.0) == 1.0
    assert grad(lambda x: f(x) * 1.0, 0)(0.5) == pytest.approx(math.exp(0.5))


def test_threads():
    results = [None] * 6

    def work(i):
        x = 0.1 * (i + 1)
        results[i] = grad(lambda x: outer(x) * math.cos(x), 0)(x)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, g in enumerate(results):
        x = 0.1 * (i + 1)
        assert g == pytest.approx(fd(lambda v: outer(float(v)) * math.cos(float(v)), x),
                                  rel=1e-5)


# ---- np.r_ / np.c_ index expressions --------------------------------------------------------

def stacked_features(x):
    return np.r_[x, 2 * x, 0.0, [x[0], 1.0]]            # np.r_ in a module-level helper


def by_alias(x):
    return onp.c_[x, x * x] * C[[1.0, 2.0], x]            # `import numpy as onp`, `c_ as C`


def by_name(x):
    return r_["0,2", x, x][1] + r_[x[::-1]]               # `from numpy import r_`, directives


def test_np_r_and_c_under_grad():
    x = np.array([0.5, -1.5])
    for f in (stacked_features, by_alias, by_name):
        loss = lambda v, f=f: np.sum(f(v) ** 2)           # noqa: E731
        v, g = value_and_grad(loss, 0)(x)
        assert v == pytest.approx(loss(x))
        np.testing.assert_allclose(g, fd(loss, x), rtol=1e-6)
    g = grad(lambda x: np.sum(outer_uses_r(x)), 0)(x)    # reached through a plain helper
    np.testing.assert_allclose(g, fd(lambda v: np.sum(outer_uses_r(v)), x), rtol=1e-6)


def outer_uses_r(x):
    return stacked_features(x) * 3.0


def test_np_r_with_a_local_numpy_import_and_slices():
    def f(x):
        import numpy as np2
        return np.sum(np2.r_[x, 0:3, -1:1:3j] * np2.r_[1.0:7.0, 2.0, 3.0])

    x = np.array([0.3, 0.7])
    np.testing.assert_allclose(grad(f, 0)(x), [1.0, 2.0])


def test_np_r_and_c_under_vmap_jvp_and_eval_shape():
    import pycograd

    xs = np.array([[0.5, -1.5], [2.0, 3.0], [1.0, 0.0]])
    np.testing.assert_array_equal(pycograd.vmap(by_alias)(xs), np.stack([by_alias(x) for x in xs]))
    np.testing.assert_array_equal(pycograd.vmap(stacked_features, in_axes=1)(xs.T),
                                  np.stack([stacked_features(x) for x in xs]))
    out, t = pycograd.jvp(by_name, (xs[0],), (np.ones(2),))
    np.testing.assert_array_equal(out, by_name(xs[0]))
    np.testing.assert_array_equal(t, [2.0, 2.0])
    for f in (stacked_features, by_alias, by_name):
        for dt in (np.float32, np.float64):
            s = pycograd.eval_shape(f, pycograd.ShapeDtypeStruct((2,), dt))
            e = f(xs[0].astype(dt))
            assert (s.shape, s.dtype) == (e.shape, e.dtype), f.__name__


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_np_r_on_plain_data_keeps_numpy_result():
    seen = []

    def f(x):
        seen.append((np.r_[1:4, 7], np.r_["r", [1, 2], [3, 4]], np.c_[np.array([1, 2]), [3, 4]],
                     len(np.r_)))
        return np.sum(np.r_[x, 1.0])

    assert grad(f, 0)(np.array([1.0, 2.0])).tolist() == [1.0, 1.0]
    a, m, c, n = seen[0]
    assert a.dtype == np.r_[1:4, 7].dtype and a.tolist() == [1, 2, 3, 7]
    assert type(m) is np.matrix and m.tolist() == [[1, 2, 3, 4]]
    assert c.dtype == np.c_[np.array([1, 2]), [3, 4]].dtype and c.tolist() == [[1, 3], [2, 4]]
    assert n == 0


def test_functions_without_r_or_c_are_not_routed():
    def plain(x):
        r_ = 2.0                                          # a local named like it: still plain
        return np.sum(np.exp(x) * r_)

    assert routed(plain) is plain
    assert routed(by_alias) is not by_alias
    assert routed(outer_uses_r) is not outer_uses_r
    assert routed(stacked_features)(np.array([1.0, 2.0])).tolist() == [1, 2, 2, 4, 0, 1, 1]


def test_r_in_code_that_is_not_routed_still_raises():
    ns = {"np": np}
    exec("def f(x):\n    return np.r_[x, 1.0]\n", ns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TracerConversionError):
            grad(lambda x: np.sum(ns["f"](x)), 0)(np.array([1.0]))


def test_unroutable_r_names_the_fix():
    """Code pycograd cannot read (built by eval) cannot be routed: the error names
    pycograd.r_ rather than the generic np.asarray advice."""
    f = eval("lambda x: np.sum(np.r_[x, 2 * x])")  # noqa: S307  (no source on purpose)
    with pytest.warns(UserWarning, match="cannot route"):
        with pytest.raises(TracerConversionError, match=r"pycograd\.r_\[\.\.\.\]"):
            grad(f)(np.ones(2))
