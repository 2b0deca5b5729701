"""scipy as an optional dependency: never imported by pycograd itself, its ufuncs mapped once
the user imports them, its Python-level functions and distribution methods routed by the
transparent layer (however the user names them), scipy's own results for untraced calls, and
clear errors where autograd has no rule either. Gradients themselves are in the sweep
(``sweep_cases_scipy.py``); here a few are checked against autograd's."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import pycograd
from pycograd import NoRuleError, grad
from pycograd.routing.transparent import routed

sp = pytest.importorskip("scipy.special")
st = pytest.importorskip("scipy.stats")
sl = pytest.importorskip("scipy.linalg")

from scipy.special import logsumexp  # noqa: E402
from scipy.stats import norm  # noqa: E402


def _run(code: str, tmp_path) -> str:
    """Run ``code`` as a script in a fresh interpreter (a file: routing needs the source)."""
    script = tmp_path / "script.py"
    script.write_text(code)
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_import_pycograd_does_not_import_scipy(tmp_path):
    out = _run("import sys, numpy as np, pycograd\n"
               "import pycograd.ops.special, pycograd.numpy_api.scipy_special\n"
               "import pycograd.numpy_api.scipy_stats\n"
               "import math\n"
               "g = pycograd.grad(lambda x: math.sin(x) * np.sum(np.exp(x)), argnums=0)(0.5)\n"
               "print('scipy' in sys.modules, round(float(g), 6))", tmp_path)
    assert out.split()[0] == "False"


def test_ufuncs_mapped_when_scipy_is_imported_after_pycograd(tmp_path):
    out = _run("import numpy as np, pycograd\n"
               "import scipy.special as sp\n"
               "print(pycograd.grad(lambda x: sp.gammaln(x), argnums=0)(3.0))", tmp_path)
    assert float(out) == pytest.approx(sp.digamma(3.0), rel=1e-12)


def test_scipy_callee_reached_only_at_run_time(tmp_path):
    """A scipy function that no analysis saw (imported inside the call) is still routed."""
    out = _run("import importlib, math, numpy as np, pycograd, sys\n"
               "def f(x):\n"
               "    fn = getattr(importlib.import_module('scipy.special'), 'logsumexp')\n"
               "    return math.exp(0.0) * fn(x)\n"
               "print(*pycograd.grad(f, argnums=0)(np.array([0.0, 0.0])))", tmp_path)
    assert [float(v) for v in out.split()] == [0.5, 0.5]


def test_erf_ufunc_is_mapped():
    g = grad(lambda x: np.sum(sp.erf(x)), argnums=0)(np.array([0.0, 0.5]))
    np.testing.assert_allclose(g, 2 / np.sqrt(np.pi) * np.exp(-np.array([0.0, 0.25])))


@pytest.mark.parametrize("call, what", [
    (lambda a: sp.gammainc(a, 1.5), "shape a"),
    (lambda a: sp.gammaincc(a, 1.5), "shape a"),
    (lambda v: sp.iv(v, 1.5), "order v"),
    (lambda a: sp.betainc(a, 2.0, 0.3), "shape a"),
    (lambda df: sp.stdtr(df, 0.3), "degrees of freedom"),
    (lambda n: st.t.cdf(0.3, n), "degrees of freedom"),
])
def test_shape_parameters_have_no_rule(call, what):
    with pytest.raises(NoRuleError, match=what):
        grad(call, argnums=0)(2.0)
    with pytest.raises(NoRuleError, match=what):
        pycograd.jvp(call, (2.0,), (1.0,))


def test_gradient_wrt_x_with_traced_shape_elsewhere():
    """gammainc differentiates in x even when a is traced but not asked for."""
    g = grad(lambda a, x: sp.gammainc(a, x), argnums=1)(2.0, 1.5)
    assert g == pytest.approx(np.exp(-1.5) * 1.5 / sp.gamma(2.0), rel=1e-12)


# ---- routing ---------------------------------------------------------------------------

def helper(x):
    return norm.logcdf(x)


def uses_helper(x):
    return np.sum(helper(x))


def local_import(x):
    import scipy.stats as ss

    return np.sum(ss.t.logpdf(x, 3.0))


def from_import(x):
    return logsumexp(x)


def module_path(x):
    return np.sum(st.multivariate_normal.logpdf(x, np.zeros(3), 2 * np.eye(3)))


def linalg(a):
    return np.sum(sl.expm(a))


def plain_ufunc(x):
    return np.sum(sp.gammaln(x))


@pytest.mark.parametrize("f, ref", [
    (uses_helper, lambda x: np.exp(-x * x / 2) / np.sqrt(2 * np.pi) / sp.ndtr(x)),
    (local_import, lambda x: -4 * x / (3 + x * x)),
    (from_import, lambda x: sp.softmax(x)),
    (module_path, lambda x: -x / 2),
], ids=["helper", "local-import", "from-import", "module-path"])
def test_routed_however_named(f, ref):
    x = np.array([0.3, -0.7, 1.1])
    np.testing.assert_allclose(grad(f, argnums=0)(x), ref(x), rtol=1e-10)


def test_scipy_linalg_routed():
    a = np.array([[0.1, 0.2], [-0.3, 0.4]])
    e = 1e-6
    fd = np.array([[(linalg(a + e * d) - linalg(a - e * d)) / (2 * e)
                    for d in np.eye(4).reshape(4, 2, 2)[2 * i:2 * i + 2]] for i in range(2)])
    np.testing.assert_allclose(grad(linalg, argnums=0)(a), fd, rtol=1e-7)


def test_ufunc_only_code_is_not_woven():
    """scipy ufuncs dispatch through numpy's protocol: no routing needed, no weaving."""
    assert routed(plain_ufunc) is plain_ufunc
    assert routed(from_import) is not from_import


def test_untraced_calls_are_scipys_own():
    f = routed(module_path)
    x = np.array([0.3, -0.7, 1.1])
    assert f(x) == module_path(x)
    r = routed(from_import)(x)
    assert type(r) is np.float64 and r == logsumexp(x)


def test_logsumexp_options_match_scipy():
    x = np.array([[0.3, -0.7, 1.1], [2.0, 0.1, -1.0]])
    b = np.array([1.0, -2.0, 0.5])
    for kw in [dict(axis=1, b=b, return_sign=True), dict(axis=0, keepdims=True), {}]:
        got = pycograd.vjp(lambda x, kw=kw: logsumexp(x, **kw), x)[0]
        want = logsumexp(x, **kw)
        got, want = (got, want) if isinstance(want, tuple) else ((got,), (want,))
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert np.shape(g) == np.shape(w)
            np.testing.assert_allclose(g, w, rtol=1e-13)


# ---- against autograd ---------------------------------------------------------------------

def test_stats_gradients_match_autograd():
    ag = pytest.importorskip("autograd")
    import autograd.scipy.stats as ast

    x, df, loc, scale = np.array([0.3, -1.2]), 3.5, 0.2, 1.7
    ours = grad(lambda *a: np.sum(st.t.logpdf(*a)))(x, df, loc, scale)
    theirs = [ag.grad(lambda *a: ag.numpy.sum(ast.t.logpdf(*a)), i)(x, df, loc, scale)
              for i in range(4)]
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o, t, rtol=1e-10)
    a, b = 2.5, 1.5
    ours = grad(lambda x, a, b: np.sum(st.beta.logpdf(x, a, b)))(np.array([0.2, 0.7]), a, b)
    theirs = [ag.grad(lambda *v: ag.numpy.sum(ast.beta.logpdf(*v)), i)(np.array([0.2, 0.7]),
                                                                        a, b) for i in range(3)]
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o, t, rtol=1e-10)


FROZEN = st.norm(0.5, 2.0)


def frozen_global(x):
    return np.sum(FROZEN.logpdf(x))


def frozen_traced(loc, scale):
    return np.sum(st.norm(loc, scale).cdf(np.array([0.1, 0.4])))


def frozen_unsupported(loc):
    return st.norm(loc).ppf(0.3)


def test_frozen_distributions():
    x = np.array([0.3, -0.4])
    np.testing.assert_allclose(grad(frozen_global, argnums=0)(x), -(x - 0.5) / 4, rtol=1e-12)
    z = (np.array([0.1, 0.4]) - 0.2) / 1.5
    dloc, dscale = grad(frozen_traced)(0.2, 1.5)
    np.testing.assert_allclose([dloc, dscale], [-np.sum(st.norm.pdf(z)) / 1.5,
                                                -np.sum(st.norm.pdf(z) * z) / 1.5], rtol=1e-12)
    assert routed(frozen_traced)(0.2, 1.5) == frozen_traced(0.2, 1.5)  # scipy's own, untraced
    with pytest.raises(AttributeError, match="ppf with traced parameters"):
        grad(frozen_unsupported)(0.2)
