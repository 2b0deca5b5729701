"""Sweep cases for scipy.special and scipy.stats (real inputs), same ``Case`` table as
``sweep_cases.py``.

The functions are called as users call them (``scipy.special.gammaln(x)``,
``scipy.stats.norm.logpdf(x, loc, scale)``): ufuncs reach pycograd through numpy's protocols,
Python-level functions and distribution methods through the transparent layer's routing.
Inputs are drawn inside each function's domain, away from poles. Without scipy the table is
empty (scipy is optional).
"""

from __future__ import annotations

import numpy as np
from sweep_cases import A, Case, case

CASES: list[Case] = []

try:
    import scipy.linalg  # noqa: F401  (the routes of mvn's solve)
    import scipy.special as sp
    import scipy.stats as st
except ImportError:  # scipy is optional: its cases are simply absent
    sp = st = None


def add(name: str, fn: object, args: list, prims: str, **kw: object) -> None:
    case(f"scipy-{name}", fn, args, prims, table=CASES, **kw)


POS = dict(low=0.5, high=3.0)
UNIT = dict(low=0.1, high=0.9)


def spd(a: np.ndarray) -> np.ndarray:
    return a @ np.swapaxes(a, -1, -2) + np.eye(np.shape(a)[-1])


if sp is not None:
    # ---- scipy.special ufuncs ----------------------------------------------------------
    for name, dom in [("gammaln", POS), ("gamma", POS), ("digamma", POS), ("rgamma", POS),
                      ("erfc", {}), ("erfinv", dict(low=-0.9, high=0.9)),
                      ("erfcinv", dict(low=0.1, high=1.9)), ("ndtr", {}), ("log_ndtr", {}),
                      ("expit", {}), ("logit", UNIT), ("i0", {}), ("i1", {}), ("j0", {}),
                      ("j1", {}), ("y0", POS), ("y1", POS)]:
        add(name, getattr(sp, name), [A(2, 3, **dom)], name)
    add("erf-ufunc", lambda x: sp.erf(x), [A(3)], "erf")
    add("psi", lambda x: sp.psi(x), [A(3, **POS)], "digamma")
    add("gammaln-float32", lambda x: sp.gammaln(x), [A(3, **POS, dtype="float32")], "gammaln",
        eps=1e-2, hvp_eps=1e-2, rtol=1e-2, atol=1e-3)
    for name in ("beta", "betaln"):
        add(name, getattr(sp, name), [A(3, **POS), A(2, 1, **POS)], f"{name} digamma")
    add("xlogy", sp.xlogy, [A(2, 3), A(3, **POS)], "xlogy")
    add("xlog1py", sp.xlog1py, [A(3), A(2, 3, low=-0.5, high=2.0)], "xlog1py")
    add("polygamma", lambda x: sp.polygamma(1, x), [A(2, 3, **POS)], "polygamma")
    add("polygamma-orders", lambda x: sp.polygamma(np.array([0, 1, 2]), x), [A(2, 3, **POS)],
        "polygamma")
    add("iv", lambda x: sp.iv(1.5, x), [A(2, 3, **POS)], "iv")
    add("ive", lambda x: sp.ive(2.0, x), [A(2, 3, away=0.2)], "ive")
    add("jn", lambda x: sp.jn(2, x), [A(2, 3)], "jv")
    add("jv", lambda x: sp.jv(0.5, x), [A(3, **POS)], "jv")
    add("yn", lambda x: sp.yn(2, x), [A(2, 3, **POS)], "yn")
    add("gammainc", lambda x: sp.gammainc(1.5, x), [A(2, 3, low=0.2, high=3.0)], "gammainc")
    add("gammaincc", lambda x: sp.gammaincc(np.array([0.5, 2.5, 4.0]), x),
        [A(2, 3, low=0.2, high=3.0)], "gammaincc")
    add("stdtr", lambda x: sp.stdtr(3.0, x), [A(2, 3)], "stdtr")
    add("betainc", lambda x: sp.betainc(1.5, 2.5, x), [A(2, 3, **UNIT)], "betainc")
    add("multigammaln", lambda a: sp.multigammaln(a, 3), [A(2, 3, low=2.0, high=4.0)],
        "gammaln")

    # ---- scipy.special functions that call np.asarray (routed) --------------------------
    add("logsumexp", lambda x: sp.logsumexp(x), [A(2, 3)], "exp log")
    add("logsumexp-axis", lambda x: sp.logsumexp(x, axis=1, keepdims=True), [A(2, 3)], "exp")
    add("logsumexp-b", lambda x, b: sp.logsumexp(x, axis=0, b=b), [A(2, 3), A(2, 3, **POS)],
        "exp log")
    add("logsumexp-sign", lambda x: sp.logsumexp(x, axis=-1, b=np.array([1.0, 2.0, 0.5]),
                                                 return_sign=True), [A(2, 3)], "exp log")
    add("softmax", lambda x: sp.softmax(x, axis=1), [A(2, 3)], "exp")
    add("softmax-all", lambda x: sp.softmax(x), [A(2, 3)], "exp")
    add("log_softmax", lambda x: sp.log_softmax(x, axis=0), [A(2, 3)], "exp log")

    # ---- scipy.stats ----------------------------------------------------------------------
    for m, prim in [("logpdf", "log"), ("pdf", "exp"), ("cdf", "ndtr"), ("logcdf", "log_ndtr"),
                    ("sf", "ndtr"), ("logsf", "log_ndtr")]:
        add(f"norm-{m}", lambda x, loc, scale, m=m: getattr(st.norm, m)(x, loc, scale),
            [A(2, 3), A(3), A(3, **POS)], prim)
    add("norm-logpdf-default", lambda x: st.norm.logpdf(x), [A(3)], "multiply")
    add("t-logpdf", lambda x, df, loc, scale: st.t.logpdf(x, df, loc, scale),
        [A(2, 3), A(3, low=1.0, high=5.0), A(3), A(3, **POS)], "gammaln log1p")
    add("t-pdf", lambda x, df: st.t.pdf(x, df), [A(3), A(3, low=1.0, high=5.0)], "gammaln")
    add("t-cdf", lambda x, loc: st.t.cdf(x, 4.0, loc), [A(2, 3), A(3)], "stdtr")
    add("t-logcdf", lambda x: st.t.logcdf(x, 2.5, scale=2.0), [A(3)], "stdtr log")
    add("gamma-logpdf", lambda x, a, scale: st.gamma.logpdf(x, a, scale=scale),
        [A(2, 3, **POS), A(3, **POS), A(3, **POS)], "xlogy gammaln")
    add("gamma-pdf", lambda x, a: st.gamma.pdf(x, a), [A(3, **POS), A(3, **POS)], "xlogy")
    add("gamma-cdf", lambda x: st.gamma.cdf(x, 2.5, scale=1.5), [A(2, 3, **POS)], "gammainc")
    add("chi2-logpdf", lambda x, df: st.chi2.logpdf(x, df), [A(3, **POS), A(3, low=1.0,
                                                                            high=5.0)],
        "xlogy gammaln")
    add("chi2-pdf", lambda x: st.chi2.pdf(x, 3.0), [A(3, **POS)], "xlogy")
    add("chi2-cdf", lambda x: st.chi2.cdf(x, 3.0), [A(2, 3, **POS)], "gammainc")
    add("beta-logpdf", lambda x, a, b: st.beta.logpdf(x, a, b),
        [A(2, 3, **UNIT), A(3, **POS), A(3, **POS)], "xlogy xlog1py betaln")
    add("beta-pdf", lambda x, a: st.beta.pdf(x, a, 2.0), [A(3, **UNIT), A(3, **POS)], "betaln")
    add("beta-cdf", lambda x: st.beta.cdf(x, 1.5, 2.5), [A(2, 3, **UNIT)], "betainc")
    k = np.array([[0.0, 1.0, 4.0], [2.0, 3.0, 7.0]])
    add("poisson-logpmf", lambda mu: st.poisson.logpmf(k, mu), [A(3, **POS)], "xlogy gammaln")
    add("poisson-pmf", lambda mu: st.poisson.pmf(k, mu), [A(2, 3, **POS)], "xlogy")
    add("poisson-cdf", lambda mu: st.poisson.cdf(k + 0.5, mu), [A(2, 3, **POS)], "gammaincc")
    add("dirichlet-logpdf", lambda x, alpha: st.dirichlet.logpdf(sp.softmax(x), alpha),
        [A(3), A(3, **POS)], "xlogy gammaln")
    add("dirichlet-pdf-columns", lambda x, alpha: st.dirichlet.pdf(sp.softmax(x, axis=0), alpha),
        [A(3, 2), A(3, **POS)], "xlogy gammaln")
    add("mvn-logpdf", lambda x, mean, a: st.multivariate_normal.logpdf(x, mean, spd(a)),
        [A(4, 3), A(3), A(3, 3, low=-0.5, high=0.5)], "solve")
    add("mvn-pdf", lambda x, mean: st.multivariate_normal.pdf(x, mean, 2.0),
        [A(3), A(3)], "exp")

    # ---- frozen distributions: traced parameters (pycograd's Frozen) and constant ones
    add("norm-frozen", lambda x, loc, scale: st.norm(loc, scale).logpdf(x),
        [A(2, 3), A(3), A(3, **POS)], "log")
    add("gamma-frozen-const", lambda x: st.gamma(2.5, scale=1.5).cdf(x), [A(3, **POS)],
        "gammainc")
    add("mvn-frozen-const", lambda x: st.multivariate_normal(np.zeros(3), 2.0 * np.eye(3))
        .logpdf(x), [A(2, 3)], "solve")
    add("mvn-entropy", lambda a: st.multivariate_normal.entropy(None, spd(a)),
        [A(3, 3, low=-0.5, high=0.5)], "logabsdet")
    add("mvn-entropy-diagonal", lambda v: st.multivariate_normal.entropy(np.zeros(3), v),
        [A(3, **POS)], "log")

    # ---- complex arguments (the scipy.special ufuncs that take them) ------------------------
    Z = dict(dtype="complex128", low=0.3, high=1.5)
    for name in ("erf", "erfc", "ndtr", "log_ndtr"):
        add(f"complex-{name}", getattr(sp, name), [A(2, 3, **Z)], name)
    for name in ("gamma", "rgamma"):  # first order only: their second needs complex trigamma
        add(f"complex-{name}", getattr(sp, name), [A(2, 3, **Z)], name, second_order=False)
    add("complex-xlogy", sp.xlogy, [A(2, 3, **Z), A(3, **Z)], "xlogy")
    add("complex-xlog1py", sp.xlog1py, [A(3, **Z), A(2, 3, **Z)], "xlog1py")
    add("complex-iv", lambda z: sp.iv(1.5, z), [A(2, 3, **Z)], "iv")
    add("complex-ive", lambda z: sp.ive(2.0, z), [A(2, 3, dtype="complex128", away=0.3)],
        "ive")
    add("complex-jv", lambda z: sp.jv(0.5, z), [A(2, 3, **Z)], "jv")
