"""A stand-in ``autograd`` package that runs HIPS autograd's own tests on pycograd.

``autograd.numpy`` IS numpy (and ``autograd.scipy.*`` is scipy): the tests' functions are
plain numpy code, differentiated by pycograd through numpy's protocols and the routing
layer. The differential operators map to pycograd's (``grad(f, argnum)`` ->
``pycograd.grad(f, argnum)``); ``check_grads`` is re-implemented here on pycograd's ``vjp`` /
``jvp`` with autograd's tolerances and finite-difference step. Only the public API the tests
use is provided; autograd's internals (boxes, vspaces, tracing hooks) are not emulated, so the
tests of those are left out by ``benchmarks/hips_parity.py``.

Complex convention (pycograd's, which is autograd's): the cotangent of an input ``z`` is
``dL/dx - i dL/dy`` for ``L = Re(sum(ct * y))``, so the pairing of a cotangent with a tangent
is ``Re(sum(a * b))`` (no conjugate).
"""

from __future__ import annotations

import builtins
import functools
import sys
import types
from itertools import product

import numpy
import numpy.random

import pycograd
from pycograd.core.trace import Tracer

sys.modules[__name__ + ".numpy"] = numpy
sys.modules[__name__ + ".numpy.random"] = numpy.random
numpy = numpy  # noqa: PLW0127  (the attribute ``autograd.numpy``)

try:
    import scipy
    import scipy.integrate
    import scipy.linalg
    import scipy.signal
    import scipy.special
    import scipy.stats

    sys.modules[__name__ + ".scipy"] = scipy
    for _sub in ("integrate", "linalg", "signal", "special", "stats"):
        sys.modules[f"{__name__}.scipy.{_sub}"] = getattr(scipy, _sub)
    for _dist in ("multivariate_normal", "norm", "t", "beta", "gamma", "poisson", "chi2",
                  "dirichlet"):
        sys.modules[f"{__name__}.scipy.stats.{_dist}"] = getattr(scipy.stats, _dist)
except ImportError:  # the scipy tests then fail to import, as they would
    pass


def _np_scalar(x):
    """Python numbers as numpy scalars (pycograd's cotangents and tangents are arrays)."""
    return numpy.asarray(x)[()] if isinstance(x, (int, float, complex)) else x


def _subvals(args, pairs):
    args = builtins.list(args)
    for i, v in pairs:
        args[i] = v
    return builtins.tuple(args)


def unary_to_nary(unary_operator):
    """autograd's decorator: ``op(fun, x, ...)`` -> ``op(fun, argnum, ...)(*args)``."""
    @functools.wraps(unary_operator)
    def nary_operator(fun, argnum=0, *nary_op_args, **nary_op_kwargs):
        fun = pycograd.transparent(fun)  # called from here: route it (np.append of lists)

        def nary_f(*args, **kwargs):
            def unary_f(x):
                pairs = [(argnum, x)] if builtins.isinstance(argnum, int) else zip(argnum, x)
                return fun(*_subvals(args, pairs), **kwargs)

            unary_f.__name__ = getattr(fun, "__name__", "fun")
            x = args[argnum] if builtins.isinstance(argnum, int) else builtins.tuple(
                args[i] for i in argnum)
            return unary_operator(unary_f, x, *nary_op_args, **nary_op_kwargs)

        return nary_f

    return nary_operator


# ---- differential operators ----------------------------------------------------------

def grad(fun, argnum=0):
    """autograd's grad takes any output of size 1 (shape (1,) or (1, 1)); pycograd's, like
    JAX's, asks for shape (): the shim reshapes a size-1 output."""
    @functools.wraps(fun)
    def scalar_fun(*args, **kwargs):
        out = fun(*args, **kwargs)
        return numpy.reshape(out, ()) if numpy.ndim(out) and numpy.size(out) == 1 else out

    return pycograd.grad(scalar_fun, argnum)


def value_and_grad(fun, argnum=0):
    return pycograd.value_and_grad(fun, argnum)


def elementwise_grad(fun, argnum=0):
    return pycograd.elementwise_grad(fun, argnum)


def jacobian(fun, argnum=0):
    return pycograd.jacobian(fun, argnum)


def hessian(fun, argnum=0):
    return pycograd.hessian(fun, argnum)


def holomorphic_grad(fun, argnum=0):
    return pycograd.holomorphic_grad(fun, argnum)


def grad_and_aux(fun, argnum=0):
    return pycograd.grad(fun, argnum, has_aux=True)


checkpoint = pycograd.checkpoint


def _make_vjp(fun, x):
    """autograd.core's unary form: ``(vjp, ans)`` at ``x``."""
    ans, pullback = pycograd.vjp(fun, x)
    return (lambda g: pullback(_np_scalar(g))[0]), ans


def _make_jvp(fun, x):
    return lambda v: pycograd.jvp(fun, (x,), (_np_scalar(v),))


make_vjp = unary_to_nary(_make_vjp)
make_jvp = unary_to_nary(_make_jvp)


@unary_to_nary
def deriv(fun, x):
    return pycograd.jvp(fun, (x,), (_np_scalar(numpy.ones_like(x)[()]),))[1]


@unary_to_nary
def make_hvp(fun, x):
    return lambda v: (pycograd.hvp(fun, (x,), (v,)), None)


# ---- primitives with user VJPs -----------------------------------------------------

def primitive(f):
    """An autograd primitive: a ``custom_vjp`` whose rule ``defvjp`` gives later; with no rule,
    differentiating it raises NotImplementedError, as autograd's does."""
    rule = pycograd.custom_vjp(f)
    makers = {}

    @functools.wraps(f)
    def call(*args, **kwargs):
        if not makers:
            if builtins.any(builtins.isinstance(x, Tracer) for x in _leaves((args, kwargs))):
                raise NotImplementedError(f"VJP of {getattr(f, '__name__', f)} not defined")
            return f(*args, **kwargs)
        return rule(*args)

    call.ag_rule, call.ag_makers = rule, makers
    return call


def defvjp(prim, *makers, argnums=None):
    nums = builtins.range(len(makers)) if argnums is None else argnums
    prim.ag_makers.update(zip(nums, makers))

    def fwd(*args):
        ans = prim.ag_rule.fun(*args)
        return ans, (ans, args)

    def bwd(res, g):
        ans, args = res
        return builtins.tuple(
            prim.ag_makers[i](ans, *args)(g) if i in prim.ag_makers else None
            for i in builtins.range(len(args)))

    prim.ag_rule.defvjp(fwd, bwd)


def const_graph(fun, *args, **kwargs):
    return functools.partial(fun, *args, **kwargs)


def flatten(value):
    leaves, tree = pycograd.tree_flatten(value)
    shapes = [numpy.shape(x) for x in leaves]
    flat = numpy.concatenate([numpy.ravel(x) for x in leaves]) if leaves else numpy.zeros(0)

    def unflatten(vector):
        out, start = [], 0
        for s in shapes:
            n = int(numpy.prod(s))
            out.append(numpy.reshape(vector[start:start + n], s))
            start += n
        return pycograd.tree_unflatten(tree, out)

    return flat, unflatten


# ---- check_grads: autograd's test_util on pycograd ------------------------------------

TOL = 1e-6
RTOL = 1e-6
EPS = 1e-6


def scalar_close(a, b):
    return abs(a - b) < TOL or abs(a - b) / abs(a + b) < RTOL


def _leaves(x):
    return pycograd.tree_flatten(x)[0]


def _randn(x):
    """A random point of ``x``'s space (complex leaves get complex entries)."""
    leaves, tree = pycograd.tree_flatten(x)
    out = []
    for leaf in leaves:
        shape = numpy.shape(leaf)
        r = numpy.asarray(numpy.random.randn(*shape))
        if numpy.iscomplexobj(leaf):
            r = r + 1j * numpy.random.randn(*shape)
        out.append(r if shape else r[()])
    return pycograd.tree_unflatten(tree, out)


def _axpy(a, x, y):
    return pycograd.tree_map(lambda u, v: u + a * v, y, x)


def _inner(a, b):
    return builtins.sum(float(numpy.real(numpy.sum(numpy.asarray(u) * numpy.asarray(v))))
                        for u, v in builtins.zip(_leaves(a), _leaves(b)))


def _numerical_jvp(f, x):
    def jvp(v):
        plus, minus = f(_axpy(EPS / 2, v, x)), f(_axpy(-EPS / 2, v, x))
        return pycograd.tree_map(lambda p, m: (numpy.asarray(p) - numpy.asarray(m)) / EPS,
                                 plus, minus)
    return jvp


def _same_space(a, b):
    sa = [numpy.shape(u) for u in _leaves(a)]
    sb = [numpy.shape(u) for u in _leaves(b)]
    assert sa == sb, f"space mismatch: {sa} vs {sb}"


def check_vjp(f, x):
    vjp, y = make_vjp(f)(x)
    x_v, y_v = _randn(x), _randn(y)
    vjp_y = vjp(y_v)
    _same_space(vjp_y, x)
    exact = _inner(vjp_y, x_v)
    numeric = _inner(y_v, _numerical_jvp(f, x)(x_v))
    assert scalar_close(numeric, exact), (
        f"VJP check of {getattr(f, '__name__', f)} failed: analytic {exact}, numeric {numeric}")


def check_jvp(f, x):
    x_v = _randn(x)
    check_equivalent(make_jvp(f)(x)(x_v)[1], _numerical_jvp(f, x)(x_v))


def check_equivalent(x, y):
    _same_space(x, y)
    v = _randn(x)
    assert scalar_close(_inner(x, v), _inner(y, v)), f"Value mismatch:\nx: {x}\ny: {y}"


@unary_to_nary
def check_grads(f, x, modes=("fwd", "rev"), order=2):
    assert all(m in ("fwd", "rev") for m in modes)
    if "fwd" in modes:
        check_jvp(f, x)
        if order > 1:
            def jvp_f(x, v):
                return make_jvp(f)(x)(v)[1]
            check_grads(jvp_f, (0, 1), modes, order=order - 1)(x, _randn(x))
    if "rev" in modes:
        check_vjp(f, x)
        if order > 1:
            def vjp_f(x, v):
                return make_vjp(f)(x)[0](v)
            check_grads(vjp_f, (0, 1), modes, order=order - 1)(x, _randn(f(x)))


def combo_check(fun, *args, **kwargs):
    def _combo_check(*cargs, **ckwargs):
        kv = [[(k, x) for x in xs] for k, xs in ckwargs.items()]
        for _args in product(*cargs):
            for _kwargs in product(*kv):
                check_grads(fun, *args, **kwargs)(*_args, **builtins.dict(_kwargs))

    return _combo_check


def quick_grad_check(fun, arg, **_):
    check_grads(fun, modes=["rev"], order=1)(arg)


# ---- submodules ------------------------------------------------------------------

def _module(name, **names):
    mod = types.ModuleType(f"{__name__}.{name}")
    mod.__dict__.update(names)
    sys.modules[mod.__name__] = mod
    return mod


isinstance = builtins.isinstance  # noqa: A001  (autograd's container API, plain here)
list = builtins.list  # noqa: A001
tuple = builtins.tuple  # noqa: A001
dict = builtins.dict  # noqa: A001

test_util = _module("test_util", check_grads=check_grads, combo_check=combo_check,
                    scalar_close=scalar_close, check_equivalent=check_equivalent,
                    check_vjp=check_vjp, check_jvp=check_jvp)
core = _module("core", make_vjp=_make_vjp, make_jvp=_make_jvp, primitive=primitive,
               defvjp=defvjp, primitive_vjps={})
extend = _module("extend", primitive=primitive, defvjp=defvjp)
tracer = _module("tracer", primitive=primitive, isbox=lambda x: builtins.isinstance(x, Tracer))
wrap_util = _module("wrap_util", unary_to_nary=unary_to_nary)
misc = _module("misc", const_graph=const_graph, flatten=flatten)
util = _module("util", quick_grad_check=quick_grad_check)
builtins_ = _module("builtins", isinstance=isinstance, list=list, tuple=tuple, dict=dict)
