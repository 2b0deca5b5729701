"""Matrix functions through their Frechet derivatives: scipy's ``expm`` (one expm of a
2n x 2n block matrix, Mathias 1996) and ``sqrtm`` (a Sylvester equation ``X dX + dX X =
dA``, solved as a Kronecker system of size n^2: fine for small matrices). Both are
holomorphic, so complex inputs take the same rules. scipy is imported when they run.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pycograd.core.primitive import primitive
from pycograd.ops.complex import match
from pycograd.ops.matrix import (
    complex_if_values_say,
    gufunc_batch,
    linalg_dtype,
    mT,
    same_shape,
)
from pycograd.ops.solves import solve_p

# ---- matrix functions through their Frechet derivative (scipy's expm and sqrtm) ------

def _block(a: Any, e: Any) -> Any:
    """``[[a, e], [0, a]]`` for stacks of square matrices."""
    z = np.zeros(np.shape(a), dtype=linalg_dtype(a))
    return np.concatenate([np.concatenate([a, e], axis=-1),
                           np.concatenate([z, a], axis=-1)], axis=-2)


def _expm_frechet(a: Any, e: Any) -> Any:
    """The derivative of expm at ``a`` along ``e`` (Mathias 1996: one expm of a block)."""
    n = np.shape(a)[-1]
    return expm_p.bind(_block(a, e))[..., :n, n:]


def _expm_impl(a: Any) -> Any:
    import scipy.linalg

    return scipy.linalg.expm(a)


expm_p = primitive(
    "expm", _expm_impl, lambda g, ans, a: match(_expm_frechet(mT(a), g), a),
    jvp=lambda primals, tangents: (expm_p.bind(primals[0]),
                                   _expm_frechet(primals[0], tangents[0])),
    batch=gufunc_batch(lambda: expm_p, (2,)), shape=same_shape("expm"))


def _sqrtm_impl(a: Any) -> Any:
    import scipy.linalg

    r = scipy.linalg.sqrtm(a)
    dt = linalg_dtype(a)  # a real matrix with negative eigenvalues has a complex root (as for
    # eig, a dtype that depends on values: eval_shape refuses a real input)
    return r.astype(np.result_type(dt, np.complex64) if np.iscomplexobj(r) else dt,
                    copy=False)


def _sylvester_sum(x: Any, c: Any) -> Any:
    """``Y`` with ``X Y + Y X = C``, via the Kronecker system (I (x) X + X^T (x) I)."""
    n = np.shape(x)[-1]
    lead = np.shape(x)[:-2]
    eye = np.eye(n, dtype=linalg_dtype(x))
    # vec by rows: (X Y)[i,j] = X[i,k] Y[k,j]; (Y X)[i,j] = Y[i,k] X[k,j]
    k1 = np.einsum("...ik,jl->...ijkl", x, eye)
    k2 = np.einsum("ik,...lj->...ijkl", eye, x)
    big = np.reshape(k1 + k2, lead + (n * n, n * n))
    y = solve_p.bind(big, np.reshape(c, lead + (n * n, 1)))
    return np.reshape(y, lead + (n, n))


sqrtm_p = primitive(
    "sqrtm", _sqrtm_impl, lambda g, ans, a: match(_sylvester_sum(mT(ans), g), a),
    jvp=lambda primals, tangents: (lambda x: (x, _sylvester_sum(x, tangents[0])))(
        sqrtm_p.bind(primals[0])),
    batch=gufunc_batch(lambda: sqrtm_p, (2,)),
    shape=complex_if_values_say(same_shape("sqrtm"), "scipy.linalg.sqrtm"))
