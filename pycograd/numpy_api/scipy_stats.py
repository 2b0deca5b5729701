"""``scipy.stats`` distributions on traced values: log-densities, densities and CDFs as numpy
formulas over the special-function primitives.

scipy's distribution methods (``scipy.stats.norm.logpdf(x, loc, scale)``) convert their
arguments with ``np.asarray``, so numpy's protocols never see a traced value. The transparent
layer routes those call sites (keyed by the bound method of scipy's distribution instance) to
the functions here when an argument is traced, and to scipy otherwise. The formulas are
scipy's own (same special functions, same order), so values agree to rounding; outside the
support the log-density is ``-inf``, and invalid parameters give NaN, as in scipy. Results are
float64 whatever the input dtype, as scipy's are. Importing this module does not import scipy.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from pycograd.core.errors import MissingAttributeError
from pycograd.numpy_api.list_args import as_array
from pycograd.ops.special import SCIPY_UFUNCS as SP

_LOG_2PI = math.log(2 * math.pi)
_F64 = np.float64(1.0)


def _sp(name: str) -> Callable:
    return lambda *args: SP[name].bind(*args)


gammaln, xlogy, xlog1py, betaln, ndtr, log_ndtr, stdtr, gammainc, gammaincc, betainc = (
    _sp(n) for n in ("gammaln", "xlogy", "xlog1py", "betaln", "ndtr", "log_ndtr", "stdtr",
                     "gammainc", "gammaincc", "betainc"))


def _standard(x: Any, loc: Any, scale: Any) -> Any:
    return (x * _F64 - loc) / scale


def _all(*conds: Any) -> Any:
    """The conjunction of conditions (``&`` is not defined on every tracer)."""
    out = conds[0]
    for c in conds[1:]:
        out = np.logical_and(out, c)
    return out


def _masked(value: Any, inside: Any, valid: Any, outside: float) -> Any:
    """``value`` in the support, ``outside`` beyond it, NaN for invalid parameters."""
    with np.errstate(all="ignore"):
        return np.where(valid, np.where(inside, value, outside), np.nan)


# ---- normal ---------------------------------------------------------------------------

def norm_logpdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    z = _standard(x, loc, scale)
    return _masked(-z * z / 2.0 - 0.5 * _LOG_2PI - np.log(scale), True, scale > 0, 0.0)


def norm_pdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    return np.exp(norm_logpdf(x, loc, scale))


def norm_cdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    return _masked(ndtr(_standard(x, loc, scale)), True, scale > 0, 0.0)


def norm_logcdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    return _masked(log_ndtr(_standard(x, loc, scale)), True, scale > 0, 0.0)


def norm_sf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    return _masked(ndtr(-_standard(x, loc, scale)), True, scale > 0, 0.0)


def norm_logsf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    return _masked(log_ndtr(-_standard(x, loc, scale)), True, scale > 0, 0.0)


# ---- Student's t ------------------------------------------------------------------------

def t_logpdf(x: Any, df: Any, loc: Any = 0, scale: Any = 1) -> Any:
    z = _standard(x, loc, scale)
    lp = (gammaln((df + 1.0) / 2) - gammaln(df / 2.0) - 0.5 * (np.log(df) + math.log(math.pi))
          - (df + 1.0) / 2 * np.log1p(z * z / df))
    return _masked(lp - np.log(scale), True, _all(df > 0, scale > 0), 0.0)


def t_pdf(x: Any, df: Any, loc: Any = 0, scale: Any = 1) -> Any:
    return np.exp(t_logpdf(x, df, loc, scale))


def t_cdf(x: Any, df: Any, loc: Any = 0, scale: Any = 1) -> Any:
    return _masked(stdtr(df * _F64, _standard(x, loc, scale)), True, _all(df > 0, scale > 0), 0.0)


def t_logcdf(x: Any, df: Any, loc: Any = 0, scale: Any = 1) -> Any:
    return np.log(t_cdf(x, df, loc, scale))


# ---- gamma and chi-squared --------------------------------------------------------------

def gamma_logpdf(x: Any, a: Any, loc: Any = 0, scale: Any = 1) -> Any:
    z = _standard(x, loc, scale)
    lp = xlogy(a - 1.0, z) - z - gammaln(a) - np.log(scale)
    return _masked(lp, z >= 0, _all(a > 0, scale > 0), -np.inf)


def gamma_pdf(x: Any, a: Any, loc: Any = 0, scale: Any = 1) -> Any:
    return np.exp(gamma_logpdf(x, a, loc, scale))


def gamma_cdf(x: Any, a: Any, loc: Any = 0, scale: Any = 1) -> Any:
    z = _standard(x, loc, scale)
    return _masked(gammainc(a * _F64, np.maximum(z, 0.0)), True, _all(a > 0, scale > 0), 0.0)


def chi2_logpdf(x: Any, df: Any, loc: Any = 0, scale: Any = 1) -> Any:
    z = _standard(x, loc, scale)
    lp = xlogy(df / 2.0 - 1, z) - z / 2.0 - gammaln(df / 2.0) - (math.log(2) * df) / 2.0
    return _masked(lp - np.log(scale), z >= 0, _all(df > 0, scale > 0), -np.inf)


def chi2_pdf(x: Any, df: Any, loc: Any = 0, scale: Any = 1) -> Any:
    return np.exp(chi2_logpdf(x, df, loc, scale))


def chi2_cdf(x: Any, df: Any, loc: Any = 0, scale: Any = 1) -> Any:
    z = _standard(x, loc, scale)
    return _masked(gammainc(df / 2.0, np.maximum(z, 0.0) / 2.0), True,
                   _all(df > 0, scale > 0), 0.0)


# ---- beta --------------------------------------------------------------------------------

def beta_logpdf(x: Any, a: Any, b: Any, loc: Any = 0, scale: Any = 1) -> Any:
    z = _standard(x, loc, scale)
    lp = xlog1py(b - 1.0, -z) + xlogy(a - 1.0, z) - betaln(a, b) - np.log(scale)
    return _masked(lp, _all(z >= 0, z <= 1), _all(a > 0, b > 0, scale > 0), -np.inf)


def beta_pdf(x: Any, a: Any, b: Any, loc: Any = 0, scale: Any = 1) -> Any:
    return np.exp(beta_logpdf(x, a, b, loc, scale))


def beta_cdf(x: Any, a: Any, b: Any, loc: Any = 0, scale: Any = 1) -> Any:
    z = np.clip(_standard(x, loc, scale), 0.0, 1.0)
    return _masked(betainc(a * _F64, b * _F64, z), True, _all(a > 0, b > 0, scale > 0), 0.0)


# ---- Poisson (differentiable in the rate) -----------------------------------------------

def poisson_logpmf(k: Any, mu: Any, loc: Any = 0) -> Any:
    k = k * _F64 - loc
    lp = xlogy(k, mu) - gammaln(k + 1) - mu
    return _masked(lp, _all(k >= 0, k == np.floor(k)), mu >= 0, -np.inf)


def poisson_pmf(k: Any, mu: Any, loc: Any = 0) -> Any:
    return np.exp(poisson_logpmf(k, mu, loc))


def poisson_cdf(k: Any, mu: Any, loc: Any = 0) -> Any:
    k = np.floor(k * _F64 - loc)
    return _masked(gammaincc(np.maximum(k, 0.0) + 1, mu), k >= 0, mu >= 0, 0.0)


# ---- Dirichlet and multivariate normal -------------------------------------------------

def dirichlet_logpdf(x: Any, alpha: Any) -> Any:
    """``x`` holds the K components on its first axis (scipy's layout)."""
    lnb = np.sum(gammaln(alpha)) - gammaln(np.sum(alpha))
    a = np.reshape(alpha - 1.0, np.shape(alpha) + (1,) * (np.ndim(x) - 1))
    return np.sum(xlogy(a, x), axis=0) - lnb


def dirichlet_pdf(x: Any, alpha: Any) -> Any:
    return np.exp(dirichlet_logpdf(x, alpha))


def mvn_logpdf(x: Any, mean: Any = None, cov: Any = 1, allow_singular: bool = False) -> Any:
    """Gaussian log-density through a solve and ``slogdet`` (scipy uses an eigen
    decomposition; the values agree to rounding for well-conditioned ``cov``)."""
    x, mean, cov = (as_array(a) if type(a) in (list, tuple) else a for a in (x, mean, cov))
    dim = (np.shape(mean)[-1] if mean is not None and np.ndim(mean) else
           np.shape(cov)[-1] if np.ndim(cov) else 1)
    x = x * _F64
    if np.ndim(x) == 0 or (np.ndim(x) == 1 and dim == 1):
        x = np.reshape(x, (-1, 1))
    dev = x if mean is None else x - mean
    if allow_singular and np.ndim(cov) >= 2:
        return _mvn_logpdf_singular(dev, cov, dim)
    if np.ndim(cov) < 2:
        var = cov * np.ones(dim) if np.ndim(cov) == 0 else cov
        maha = np.sum(dev * dev / var, axis=-1)
        logdet = np.sum(np.log(var))
    else:
        sol = np.linalg.solve(cov, np.reshape(dev, (-1, dim)).T).T
        maha = np.sum(np.reshape(dev, (-1, dim)) * sol, axis=-1)
        maha = np.reshape(maha, np.shape(dev)[:-1])
        logdet = np.linalg.slogdet(cov)[1]
    return np.squeeze(-0.5 * (dim * _LOG_2PI + logdet + maha))


def _mvn_logpdf_singular(dev: Any, cov: Any, dim: int) -> Any:
    """scipy's ``allow_singular=True``: the density on the support of a (possibly singular)
    ``cov``, with its pseudo-inverse and pseudo-determinant. Eigenvalues at most
    ``1e6 * eps * max|s|`` count as zero (scipy's cutoff); a point off the support has
    log-density ``-inf``. The log pseudo-determinant goes through ``eigvalsh``, whose
    gradient stays defined for repeated eigenvalues (the cotangent is equal across each
    group), and the Mahalanobis term through ``pinv`` (exact for rank-preserving changes)."""
    s = np.linalg.eigvalsh(cov)
    cutoff = 1e6 * np.finfo(np.float64).eps * np.max(np.abs(s))
    keep = s > cutoff
    rank = np.sum(keep)
    log_pdet = np.sum(np.where(keep, np.log(np.where(keep, s, 1.0)), 0.0))
    flat = np.reshape(dev, (-1, dim))
    proj = np.linalg.pinv(cov, hermitian=True)
    maha = np.reshape(np.sum((flat @ proj) * flat, axis=-1), np.shape(dev)[:-1])
    off = flat - flat @ (proj @ cov)  # the part of dev outside the support
    residual = np.reshape(np.sqrt(np.sum(off * off, axis=-1)), np.shape(dev)[:-1])
    logpdf = -0.5 * (rank * _LOG_2PI + log_pdet + maha)
    return np.squeeze(np.where(residual < 1e3 * np.sqrt(cutoff + 1e-300), logpdf, -np.inf))


def mvn_pdf(x: Any, mean: Any = None, cov: Any = 1, allow_singular: bool = False) -> Any:
    return np.exp(mvn_logpdf(x, mean, cov, allow_singular))


def mvn_entropy(mean: Any = None, cov: Any = 1) -> Any:
    """``log det(2 pi e cov) / 2``."""
    if np.ndim(cov) < 2:
        dim = np.shape(mean)[-1] if mean is not None and np.ndim(mean) else max(np.size(cov), 1)
        logdet = np.sum(np.log(cov * np.ones(dim)))
    else:
        dim = np.shape(cov)[-1]
        logdet = np.linalg.slogdet(cov)[1]
    return 0.5 * (dim * (1.0 + _LOG_2PI) + logdet)


TABLE: dict[str, dict[str, Callable]] = {
    "norm": {"logpdf": norm_logpdf, "pdf": norm_pdf, "cdf": norm_cdf, "logcdf": norm_logcdf,
             "sf": norm_sf, "logsf": norm_logsf},
    "t": {"logpdf": t_logpdf, "pdf": t_pdf, "cdf": t_cdf, "logcdf": t_logcdf},
    "gamma": {"logpdf": gamma_logpdf, "pdf": gamma_pdf, "cdf": gamma_cdf},
    "chi2": {"logpdf": chi2_logpdf, "pdf": chi2_pdf, "cdf": chi2_cdf},
    "beta": {"logpdf": beta_logpdf, "pdf": beta_pdf, "cdf": beta_cdf},
    "poisson": {"logpmf": poisson_logpmf, "pmf": poisson_pmf, "cdf": poisson_cdf},
    "dirichlet": {"logpdf": dirichlet_logpdf, "pdf": dirichlet_pdf},
    "multivariate_normal": {"logpdf": mvn_logpdf, "pdf": mvn_pdf, "entropy": mvn_entropy},
}
"""Distribution name in ``scipy.stats`` -> method name -> differentiable version."""

NAMES = frozenset(TABLE) | frozenset(m for t in TABLE.values() for m in t)
"""Attribute names whose presence in a function's bytecode may mean a routed stats call."""


class Frozen:
    """What ``scipy.stats.norm(loc, scale)`` gives when a parameter is traced (scipy's frozen
    distribution would convert it with ``np.asarray``): the parameters bound, the methods of
    TABLE differentiable in them and in ``x``."""

    def __init__(self, dist: str, *args: Any, **kwds: Any):
        self.dist, self.args, self.kwds = dist, args, kwds

    def __getattr__(self, method: str) -> Callable:
        ours = TABLE[self.dist].get(method)
        if ours is None:
            raise MissingAttributeError(
                f"scipy.stats.{self.dist}(...).{method} with traced parameters is not supported "
                f"by pycograd (it has: {', '.join(TABLE[self.dist])})")
        return lambda x, *a, **k: ours(x, *self.args, *a, **{**self.kwds, **k})

    def __repr__(self) -> str:
        return f"<pycograd frozen scipy.stats.{self.dist}>"


def _frozen_params(obj: Any) -> tuple | None:
    """``(distribution name, args, kwds)`` of one of scipy's frozen distributions."""
    dist = getattr(obj, "dist", None)
    name = getattr(dist, "name", None)
    if name in TABLE and hasattr(obj, "args"):
        return name, obj.args, obj.kwds
    kind = type(obj).__name__
    if kind == "multivariate_normal_frozen":
        return "multivariate_normal", (obj.mean, obj.cov), {}
    if kind == "dirichlet_frozen":
        return "dirichlet", (obj.alpha,), {}
    return None


def frozen_method(bound: Any, dispatch: Callable[[Callable, Callable], Callable]) -> Any:
    """The route of a method of scipy's frozen distribution (``scipy.stats.norm(0, 2).logpdf``),
    or ``None``."""
    p = _frozen_params(bound.__self__)
    ours = None if p is None else TABLE[p[0]].get(bound.__func__.__name__)
    if ours is None:
        return None
    _, args, kwds = p
    return dispatch(bound, lambda x, *a, **k: ours(x, *args, *a, **{**kwds, **k}))


def frozen_types() -> tuple[type, ...]:
    from scipy.stats import _distn_infrastructure as di
    from scipy.stats import _multivariate as mv

    return (di.rv_continuous_frozen, di.rv_discrete_frozen, mv.multivariate_normal_frozen,
            mv.dirichlet_frozen)


def routes(dispatch: Callable[[Callable, Callable], Callable]) -> dict[Callable, Callable]:
    """scipy's bound method (``scipy.stats.norm.logpdf``) -> ``dispatch(scipy's, ours)``, and
    the distribution itself (freezing it: ``scipy.stats.norm(loc, scale)``) -> ``Frozen``
    (call once scipy.stats is imported)."""
    import scipy.stats as st

    out: dict[Callable, Callable] = {}
    for dist, methods in TABLE.items():
        inst = getattr(st, dist)
        out[inst] = dispatch(inst, functools.partial(Frozen, dist))
        for name, ours in methods.items():
            orig = getattr(inst, name)
            out[orig] = dispatch(orig, ours)
    return out
