"""The gradient sweep's table: every primitive, exercised the way users call it.

A ``Case`` is plain numpy code (``fn``), specs of its float inputs (``Arg``) and the
primitives it covers. The table knows nothing about how it is checked: ``test_sweep.py``
runs every case through every mode (see ``MODES``): reverse mode (first and second order),
forward mode (jvp, and forward-over-reverse / reverse-over-forward second order), vmap
(several ``in_axes``, per-example gradients) and eval_shape.

Adding cases from another module: create ``tests/sweep_cases_<topic>.py`` with a
module-level ``CASES: list[Case]``; ``test_sweep.py`` imports every such module and runs
its cases in every mode, and the coverage test counts them. Build the list with
``case(name, fn, args, prims, table=CASES, **options)`` (or ``Case(...)`` directly):

- ``name``: unique across all tables (it is the pytest id).
- ``fn``: plain numpy code over positional float arrays; returns an array or a
  list/tuple of arrays.
- ``args``: ``Arg`` specs (``A(2, 3, low=0.5)``): shape, domain, dtype of each input.
- ``prims``: space-separated primitive names the case must really run.
- options (``Case`` fields): ``eps``/``rtol``/``atol``/``hvp_eps`` tune the finite
  differences, ``second_order=False`` skips Hessian checks, ``reference`` is for ops whose
  gradient is defined rather than measured, ``data_dependent=True`` marks outputs whose
  shape depends on values (eval_shape must raise ``DataDependentShapeError``, vmap a clear
  error), and ``skip={mode: reason}`` opts out of a mode, with a reason.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from pycograd import stop_gradient
from pycograd.ops.special import erf
from pycograd.transforms.checkpoint import checkpoint
from pycograd.transforms.custom import custom_jvp, custom_vjp


@dataclass(frozen=True)
class Arg:
    """A float input. Values are uniform in ``[low, high]``; with ``away`` they are
    ``±[away, high]`` instead (kinks and poles at 0); ``zeros`` lists flat positions set
    to exactly 0; ``grid`` rounds values to multiples of it (exact in float32). A complex
    ``dtype`` draws the real and imaginary parts each that way."""

    shape: tuple = ()
    low: float = -2.0
    high: float = 2.0
    away: float = 0.0
    zeros: tuple = ()
    grid: float = 0.0
    dtype: str = "float64"

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        if np.dtype(self.dtype).kind == "c":
            part = Arg(self.shape, self.low, self.high, self.away, self.zeros, self.grid)
            return np.asarray(part.sample(rng) + 1j * part.sample(rng)).astype(self.dtype)
        if self.away:
            x = rng.choice([-1.0, 1.0], self.shape) * rng.uniform(self.away, self.high, self.shape)
        else:
            x = rng.uniform(self.low, self.high, self.shape)
        x = np.asarray(x)
        if self.grid:
            x = np.round(x / self.grid) * self.grid
        x.reshape(-1)[list(self.zeros)] = 0.0
        return x.astype(self.dtype)

    def direction(self, rng: np.random.Generator) -> np.ndarray:
        """A random tangent for this input (on the grid, when there is one)."""
        v = rng.standard_normal(self.shape)
        if np.dtype(self.dtype).kind == "c":
            v = v + 1j * rng.standard_normal(self.shape)
        if self.grid:
            v = np.round(v / self.grid) * self.grid
        return np.asarray(v).astype(self.dtype)


@dataclass(frozen=True)
class Case:
    """One sweep entry. ``eps``/``rtol``/``atol`` tune the first-order finite differences,
    ``hvp_eps`` the second-order ones; ``second_order=False`` skips the Hessian check.

    ``reference`` is for ops whose gradient is defined rather than measured
    (``stop_gradient``): ``reference(*base_args)`` is a plain function that agrees with
    ``fn`` on values but holds the stopped parts at the base point, so its finite
    differences are the expected gradient.

    ``data_dependent``: the output shape depends on the values (boolean masks); eval_shape
    must refuse it with ``DataDependentShapeError`` and vmap with a clear error. ``skip`` maps a
    mode of ``MODES`` to the reason the case cannot run in it (keep these few)."""

    name: str
    fn: Callable
    args: tuple
    prims: tuple
    eps: float = 1e-6
    hvp_eps: float = 1e-5
    rtol: float = 1e-6
    atol: float = 1e-8
    second_order: bool = True
    reference: Callable | None = None
    data_dependent: bool = False
    skip: dict = field(default_factory=dict)

    def rng(self, salt: int = 0) -> np.random.Generator:
        return np.random.default_rng(zlib.crc32(self.name.encode()) + salt)

    def sample(self, salt: int = 0) -> list:
        rng = self.rng(salt)
        return [a.sample(rng) for a in self.args]

    def examples(self, size: int) -> list[list]:
        """``size`` independent samples (the per-example inputs of a vmap check)."""
        return [self.sample(salt=100 + k) for k in range(size)]


# Every mode test_sweep.py runs; ``Case.skip`` keys must be among them.
# "jvp_constants" and "vmap_unmapped" are the variants of jvp and vmap where some arguments
# are constants (closed over, or in_axes=None).
MODES = ("values", "first_order", "second_order", "jvp", "jvp_constants", "jvp_second_order",
         "vmap", "vmap_unmapped", "vmap_grad", "eval_shape", "low_precision", "graph")

CASES: list[Case] = []


def case(name: str, fn: Callable, args: list, prims: str, table: list | None = None,
         **kw: object) -> None:
    """Add a case to ``table`` (this module's ``CASES`` by default); ``prims`` is a
    space-separated list of primitive names."""
    (CASES if table is None else table).append(
        Case(name, fn, tuple(args), tuple(prims.split()), **kw))


def A(*shape: int, **kw: object) -> Arg:
    """``Arg`` with the shape inline: ``A(2, 3, low=0.5)``."""
    return Arg(tuple(shape), **kw)


def sid(*shapes: tuple) -> str:
    """A readable id for a list of shapes: ``2x3+3``, ``0d``."""
    return "+".join("x".join(map(str, s)) if s else "0d" for s in shapes)


SHAPES = [(), (3,), (2, 3)]

# ---- elementwise: unary ----------------------------------------------------------

POS = dict(low=0.3, high=3.0)
UNIT = dict(low=-0.8, high=0.8)
NONZERO = dict(away=0.3)
UNARY = {
    "negative": (np.negative, {}), "positive": (np.positive, {}),
    "absolute": (np.abs, NONZERO), "square": (np.square, {}), "sqrt": (np.sqrt, POS),
    "cbrt": (np.cbrt, NONZERO), "reciprocal": (np.reciprocal, NONZERO),
    "exp": (np.exp, {}), "exp2": (np.exp2, {}), "expm1": (np.expm1, {}),
    "log": (np.log, POS), "log2": (np.log2, POS), "log10": (np.log10, POS),
    "log1p": (np.log1p, dict(low=-0.5, high=2.0)),
    "sin": (np.sin, {}), "cos": (np.cos, {}), "tan": (np.tan, dict(low=-1.2, high=1.2)),
    "arcsin": (np.arcsin, UNIT), "arccos": (np.arccos, UNIT), "arctan": (np.arctan, {}),
    "sinh": (np.sinh, {}), "cosh": (np.cosh, {}), "tanh": (np.tanh, {}),
    "arcsinh": (np.arcsinh, {}), "arccosh": (np.arccosh, dict(low=1.2, high=3.0)),
    "arctanh": (np.arctanh, UNIT),
    "conjugate": (np.conj, {}), "fabs": (np.fabs, NONZERO),
    "deg2rad": (np.deg2rad, {}), "radians": (np.radians, {}),
    "rad2deg": (np.rad2deg, {}), "degrees": (np.degrees, {}),
}
for _name, (_f, _dom) in UNARY.items():
    for _s in SHAPES:
        case(f"{_name}-{sid(_s)}", _f, [Arg(_s, **_dom)], _name)

case("op-neg", lambda x: -x, [A(2, 3)], "negative")
case("op-pos", lambda x: +x, [A(2, 3)], "positive")
case("op-abs", lambda x: abs(x), [A(2, 3, **NONZERO)], "absolute")
case("chain-sin-exp-log", lambda x: np.log(np.exp(np.sin(x)) + 1.0) * np.tanh(x), [A(2, 3)],
     "log exp sin add tanh multiply")

# ---- elementwise: binary, over every broadcasting regime -------------------------

PAIRS = [((), ()), ((2, 3), (2, 3)), ((3, 1), (1, 4)), ((4,), (3, 4)), ((), (2, 3)),
         ((2, 3), ()), ((2, 1, 3), (4, 1)), ((1,), ()), ((1, 1), (3,))]
BINARY = {
    "add": (np.add, {}, {}), "subtract": (np.subtract, {}, {}),
    "multiply": (np.multiply, {}, {}), "divide": (np.divide, {}, NONZERO),
    "power": (np.power, dict(low=0.5, high=2.0), {}),
    "maximum": (np.maximum, {}, {}), "minimum": (np.minimum, {}, {}),
    "fmax": (np.fmax, {}, {}), "fmin": (np.fmin, {}, {}),
    "float_power": (np.float_power, dict(low=0.5, high=2.0), {}),
    "arctan2": (np.arctan2, {}, {}), "hypot": (np.hypot, {}, {}),
    "logaddexp": (np.logaddexp, {}, {}), "logaddexp2": (np.logaddexp2, {}, {}),
    "remainder": (np.mod, {}, NONZERO), "fmod": (np.fmod, {}, NONZERO),
    "copysign": (np.copysign, NONZERO, NONZERO),
}
for _name, (_f, _dx, _dy) in BINARY.items():
    for _sx, _sy in PAIRS:
        case(f"{_name}-{sid(_sx, _sy)}", _f, [Arg(_sx, **_dx), Arg(_sy, **_dy)], _name)

case("op-add", lambda x, y: x + y, [A(3, 1), A(4)], "add")
case("op-radd", lambda x: 2.0 + x, [A(3)], "add")
case("op-sub", lambda x, y: x - y, [A(3, 1), A(4)], "subtract")
case("op-rsub", lambda x: 2.0 - x, [A(3)], "subtract")
case("op-mul", lambda x, y: x * y, [A(2, 3), A(3)], "multiply")
case("op-rmul", lambda x: 3 * x, [A(3)], "multiply")
case("op-div", lambda x, y: x / y, [A(2, 3), A(3, **NONZERO)], "divide")
case("op-rdiv", lambda x: 1.5 / x, [A(3, **NONZERO)], "divide")
case("op-pow", lambda x, y: x ** y, [A(2, 3, **POS), A(3)], "power")
case("op-rpow", lambda x: 2.0 ** x, [A(3)], "power")
case("op-pow-int-negbase", lambda x: x ** 3, [A(2, 3)], "power")
case("op-pow-square-at-zero", lambda x: x ** 2, [A(4, zeros=(1,))], "power")
case("op-pow-half", lambda x: x ** 0.5, [A(3, **POS)], "power")
case("op-pow-zero", lambda x: x ** 0 * x, [A(3)], "power multiply")
case("maximum-relu", lambda x: np.maximum(x, 0.0), [A(2, 3, **NONZERO)], "maximum")
# At a kink the rules split the gradient evenly (|x|' = 0 at 0), which is what central
# differences see; the gradient itself jumps there, so no second-order check.
KINK = dict(second_order=False)
case("maximum-relu-at-zero", lambda x: np.maximum(x, 0.0), [A(4, zeros=(0, 2))], "maximum",
     **KINK)
case("minimum-at-zero", lambda x: np.minimum(0.0, x), [A(4, zeros=(1,))], "minimum", **KINK)
case("absolute-at-zero", np.abs, [A(4, zeros=(0, 3))], "absolute", **KINK)
case("maximum-tie", lambda x: np.maximum(x, x), [A(2, 3)], "maximum")
case("minimum-tie", lambda x: np.minimum(x, x), [A(2, 3)], "minimum")
NANS = np.array([np.nan, 0.5, np.nan])
case("fmax-nan", lambda x: np.fmax(x, NANS) + np.fmax(NANS, 2 * x), [A(3)], "fmax multiply")
case("fmin-nan", lambda x: np.fmin(NANS, x) + np.fmin(2 * x, NANS), [A(3)], "fmin multiply")
case("ufunc-outer-add", lambda x, y: np.add.outer(x, y), [A(3), A(2, 2)], "add reshape")
case("ufunc-outer-mul", lambda x, y: np.multiply.outer(x, y), [A(3), A(4)], "multiply reshape")

# ---- elementwise: no gradient (values right, zero gradient through them) ---------

NO_GRAD_UNARY = {
    "sign": np.sign, "floor": np.floor, "ceil": np.ceil, "rint": np.rint, "trunc": np.trunc,
    "isfinite": np.isfinite, "isinf": np.isinf, "isnan": np.isnan, "signbit": np.signbit,
}
for _name, _f in NO_GRAD_UNARY.items():
    case(f"{_name}-alone", _f, [A(2, 3, away=0.1)], _name)
    case(f"{_name}-times-x", lambda x, f=_f: f(x) * x, [A(2, 3, away=0.1)], f"{_name} multiply")
# Truth values of floats jump at 0, so zeros come from constants or from x - x (exactly 0
# at every perturbed point too).
ZMIX = np.array([[1.0, 0.0, 2.0], [0.0, -3.0, 0.0]])
case("floor_divide", lambda x, y: np.floor_divide(x, y) * x, [A(2, 3), A(3, **NONZERO)],
     "floor_divide multiply")
case("heaviside", lambda x: np.heaviside(x, 0.5) * x, [A(2, 3, **NONZERO)],
     "heaviside multiply")
case("logical_not", lambda x: (np.logical_not(x) + np.logical_not(x - x)) * x,
     [A(2, 3, **NONZERO)], "logical_not subtract multiply")

COMPARE = {
    "greater": np.greater, "greater_equal": np.greater_equal, "less": np.less,
    "less_equal": np.less_equal, "equal": np.equal, "not_equal": np.not_equal,
}
for _name, _f in COMPARE.items():
    case(f"{_name}-times-diff", lambda x, y, f=_f: f(x, y) * (x - y), [A(3, 1), A(4)],
         f"{_name} multiply subtract")
case("equal-self", lambda x: (x == x) * x, [A(2, 3)], "equal multiply")
case("op-gt", lambda x, y: (x > y) * y, [A(3, 1), A(4)], "greater multiply")
case("op-ge", lambda x, y: (x >= y) * x, [A(3), A(3)], "greater_equal multiply")
case("op-lt", lambda x, y: (x < y) * x, [A(3), A(3)], "less multiply")
case("op-le", lambda x, y: (x <= y) * y, [A(3), A(3)], "less_equal multiply")
case("op-ne", lambda x: (x != 0.5) * x, [A(3)], "not_equal multiply")

for _name, _f in {"logical_and": np.logical_and, "logical_or": np.logical_or,
                  "logical_xor": np.logical_xor}.items():
    case(_name, lambda x, f=_f: f(x, ZMIX) * x, [A(2, 3, **NONZERO)], f"{_name} multiply")
    case(f"{_name}-traced-pair", lambda x, y, f=_f: f(x - x, y) * (x * y),
         [A(3, 1, **NONZERO), A(4, **NONZERO)], f"{_name} multiply subtract")
    case(f"{_name}-of-compare", lambda x, y, f=_f: f(x > 0, y > 0) * (x * y),
         [A(3, 1, **NONZERO), A(4, **NONZERO)], "greater multiply")

# masks combined with & | ^ ~: plain under grad, traced booleans under vmap / eval_shape
case("op-or-mask", lambda x: ((x > 0.5) | (x < -1)) * x, [A(2, 3)], "greater multiply")
case("op-and-mask", lambda x, y: ((x > 0) & (y > 0)) * (x * y), [A(3, 1), A(4)],
     "greater multiply")
case("op-xor-invert", lambda x: (~((x > 0) ^ (x > 1))) * x, [A(2, 3)], "greater multiply")
case("round-times-x", lambda x: np.round(x, 1) * x, [A(2, 3)], "round multiply")
case("around-alone", lambda x: np.around(x, 2), [A(2, 3)], "round")
case("method-round", lambda x: x.round() + x, [A(3, away=0.1)], "round add")
# grad(grad(stop_gradient(x) * x)) is 0 by definition, not the derivative of the gradient.
case("stop_gradient", lambda x: stop_gradient(x) * x, [A(2, 3)], "stop_gradient multiply",
     reference=lambda x0: lambda x: x0 * x, second_order=False)
case("stop_gradient-alone", lambda x: stop_gradient(x), [A(3)], "stop_gradient",
     reference=lambda x0: lambda x: x0 + 0 * x)
case("stop_gradient-inner", lambda x: np.sin(x) * stop_gradient(np.cos(x)), [A(3)],
     "stop_gradient sin cos multiply", reference=lambda x0: lambda x: np.sin(x) * np.cos(x0),
     second_order=False)

# ---- dtype ----------------------------------------------------------------------

GRID = dict(grid=1 / 8)
EXACT = dict(eps=2.0 ** -10, hvp_eps=2.0 ** -10)
case("astype-f64-to-f32", lambda x: x.astype(np.float32) * 3, [A(2, 3, **GRID)], "astype multiply",
     **EXACT)
case("astype-f32-to-f64", lambda x: x.astype(np.float64) * 3,
     [A(2, 3, dtype="float32", **GRID)], "astype multiply", **EXACT)
case("sum-dtype-f32", lambda x: np.sum(x, axis=0, dtype=np.float32), [A(2, 3, **GRID)],
     "sum astype", **EXACT)
case("astype-int", lambda x: x.astype(np.int64) * x, [A(2, 3, low=-3, high=3)],
     "astype multiply")
case("astype-str-dtype", lambda x: x.astype("float64") * x, [A(3)], "multiply")
case("astype-roundtrip", lambda x: np.sin(x.astype(np.float32).astype(np.float64)),
     [A(3, **GRID)], "astype sin", **EXACT, rtol=1e-4)  # float32 rounding of the gradient

# ---- selection ------------------------------------------------------------------

MASK = np.array([[True, False, True], [False, False, True]])
case("where-const-mask", lambda x, y: np.where(MASK, x, y), [A(2, 3), A(2, 3)], "where")
case("where-broadcast", lambda x, y: np.where(MASK, x, y), [A(3), A()], "where")
case("where-broadcast-mask", lambda x, y: np.where(MASK[:, :1], x, y), [A(3), A(2, 3)], "where")
case("where-leaky-relu", lambda x: np.where(x > 0, x, 0.1 * x), [A(2, 3, **NONZERO)],
     "where greater multiply")
case("where-scalar-branch", lambda x: np.where(MASK, x, 0.0), [A(2, 3)], "where")
case("where-from-compare", lambda x, y: np.where(x > y, x * y, y), [A(2, 3), A(3)],
     "where greater multiply")
case("method-clip", lambda x: x.clip(-0.5, 0.5), [A(2, 3)], "maximum minimum")
case("clip-consts", lambda x: np.clip(x, -0.5, 0.7), [A(2, 3)], "maximum minimum")
case("clip-method-min", lambda x: x.clip(min=-0.5), [A(2, 3)], "maximum")
case("clip-method-max", lambda x: x.clip(max=0.5), [A(2, 3)], "minimum")
case("clip-arrays", lambda x, lo, hi: np.clip(x, lo, hi),
     [A(2, 3), A(3, low=-2.0, high=-0.2), A(2, 1, low=0.2, high=2.0)], "maximum minimum")

# ---- reductions -----------------------------------------------------------------

AXES = [None, 1, -1, (0, 2), (-1, 0)]
REDUCE = {
    "sum": (np.sum, {}, "sum"), "mean": (np.mean, {}, "sum divide"),
    "prod": (np.prod, dict(away=0.5, high=1.5), "prod"),
    "max": (np.max, {}, "max"), "min": (np.min, {}, "min"),
    "var": (np.var, {}, "sum subtract multiply divide"),
    "std": (np.std, {}, "sum subtract multiply divide sqrt"),
}
for _name, (_f, _dom, _prims) in REDUCE.items():
    for _ax in AXES:
        for _kd in (False, True):
            case(f"{_name}-axis={_ax}-keepdims={_kd}".replace(" ", ""),
                 lambda x, f=_f, ax=_ax, kd=_kd: f(x, axis=ax, keepdims=kd),
                 [A(2, 3, 4, **_dom)], _prims)
    if _name != "std":  # the std of one number is 0, where sqrt has no derivative
        case(f"{_name}-0d", _f, [Arg((), **_dom)], _prims)
    case(f"{_name}-1d", _f, [Arg((5,), **_dom)], _prims)
for _name, _f in {"var": np.var, "std": np.std}.items():
    case(f"{_name}-ddof=1", lambda x, f=_f: f(x, ddof=1), [A(2, 3)], "sum divide")
    case(f"{_name}-ddof=1-axis=0", lambda x, f=_f: f(x, axis=0, ddof=1, keepdims=True),
         [A(3, 2)], "sum divide")
    case(f"{_name}-ddof=2-axis=-1", lambda x, f=_f: f(x, axis=-1, ddof=2), [A(2, 4)],
         "sum divide")

case("method-sum", lambda x: x.sum(axis=0), [A(2, 3)], "sum")
case("method-mean", lambda x: x.mean(axis=-1, keepdims=True), [A(2, 3)], "sum divide")
case("method-var", lambda x: x.var(ddof=1), [A(2, 3)], "sum divide")
case("method-std", lambda x: x.std(axis=1), [A(2, 3)], "sum sqrt")
case("method-max", lambda x: x.max(), [A(2, 3)], "max")
case("method-min", lambda x: x.min(axis=0), [A(2, 3)], "min")
case("method-prod", lambda x: x.prod(axis=1), [A(2, 3, away=0.5, high=1.5)], "prod")
case("amax", lambda x: np.amax(x, axis=1), [A(2, 3)], "max")
case("amin", lambda x: np.amin(x, axis=(0, 1)), [A(2, 3)], "min")
case("add-reduce", lambda x: np.add.reduce(x, axis=0), [A(2, 3)], "sum")
case("multiply-reduce", lambda x: np.multiply.reduce(x, axis=1), [A(2, 3)], "prod")
case("maximum-reduce", lambda x: np.maximum.reduce(x), [A(2, 3)], "max")
case("minimum-reduce", lambda x: np.minimum.reduce(x, axis=None), [A(2, 3)], "min")
case("sum-axis=()", lambda x: np.sum(x, axis=()), [A(2, 3)], "sum")
case("mean-axis=()", lambda x: np.mean(x, axis=()), [A(2, 3)], "sum divide")
case("prod-0d-zero", np.prod, [A(zeros=(0,))], "prod")
case("method-positional", lambda x: x.sum(0) + x.mean(1, keepdims=True) * x.var(0, ddof=1)
     + x.max(-1, keepdims=True), [A(2, 3)], "sum max divide")
case("prod-one-zero", lambda x: np.prod(x, axis=-1), [A(2, 3, 4, zeros=(1,))], "prod")
case("prod-two-zeros-one-row", lambda x: np.prod(x, axis=-1), [A(2, 3, 4, zeros=(1, 2))], "prod")
case("prod-two-zeros-all", lambda x: np.prod(x), [A(2, 3, zeros=(1, 4))], "prod")
case("prod-zero-axes", lambda x: np.prod(x, axis=(0, 2), keepdims=True),
     [A(2, 3, 2, zeros=(0,))], "prod")
case("max-tie", lambda x: np.max(np.stack([x, x]), axis=0), [A(2, 3)], "max concatenate")
case("min-tie", lambda x: np.min(np.stack([x, x, x])), [A(3)], "min concatenate")

# ---- contractions ---------------------------------------------------------------

MATMUL = [((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 3), (3, 4)),
          ((2, 2, 3), (2, 3, 4)), ((2, 1, 2, 3), (3, 3, 2)), ((1, 2, 3), (4, 3, 2)),
          ((2, 2, 3), (3,)), ((3,), (2, 3, 4)), ((2, 3), (2, 3, 4))]
for _sa, _sb in MATMUL:
    case(f"matmul-{sid(_sa, _sb)}", lambda a, b: a @ b, [Arg(_sa), Arg(_sb)], "matmul")
case("np-matmul", lambda a, b: np.matmul(a, b), [A(2, 3), A(3, 2)], "matmul")
case("method-mT", lambda a: a.mT @ a, [A(2, 3, 2)], "matmul transpose")

DOT = [((), (3,)), ((3,), ()), ((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 2)), ((2, 3), (3, 4)),
       ((2, 4), (3, 4, 2))]
for _sa, _sb in DOT:
    case(f"dot-{sid(_sa, _sb)}", lambda a, b: np.dot(a, b), [Arg(_sa), Arg(_sb)],
         "multiply" if not _sa or not _sb else ("einsum" if len(_sb) > 2 else "matmul"))
# A plain ndarray's .dot() does not dispatch numpy's protocols on its argument, so with a
# constant receiver and a traced argument it raises TracerConversionError (np.dot works).
case("method-dot", lambda a, b: a.dot(b), [A(2, 3), A(3)], "matmul",
     skip={m: "ndarray.dot(traced) with a constant ndarray receiver bypasses numpy's "
              "protocols (clear TracerConversionError; np.dot(a, b) works)"
           for m in ("jvp_constants", "vmap_unmapped")})
case("tensordot-axes=1", lambda a, b: np.tensordot(a, b, 1), [A(2, 3), A(3, 4)], "einsum")
case("tensordot-axes=2", lambda a, b: np.tensordot(a, b), [A(2, 3, 4), A(3, 4, 2)], "einsum")
case("tensordot-pairs", lambda a, b: np.tensordot(a, b, axes=([1, 0], [0, -1])),
     [A(2, 3, 4), A(3, 5, 2)], "einsum")
case("tensordot-axes=0", lambda a, b: np.tensordot(a, b, 0), [A(2), A(3)], "einsum")
case("outer", lambda a, b: np.outer(a, b), [A(3), A(4)], "multiply getitem")
case("outer-flattens", lambda a, b: np.outer(a, b), [A(2, 2), A(3)], "multiply reshape")
case("inner-1d", lambda a, b: np.inner(a, b), [A(3), A(3)], "einsum")
case("inner-2d", lambda a, b: np.inner(a, b), [A(2, 3), A(4, 3)], "einsum")
case("inner-scalar", lambda a, b: np.inner(a, b), [A(), A(3)], "multiply")
case("vdot", lambda a, b: np.vdot(a, b), [A(2, 3), A(2, 3)], "conjugate multiply sum reshape")

EINSUM = [
    ("ij,jk->ik", [(2, 3), (3, 4)]), ("ij,jk", [(2, 3), (3, 4)]), ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]), ("ij->", [(2, 3)]), ("ij", [(2, 3)]), ("ji", [(2, 3)]),
    ("i,i", [(3,), (3,)]), ("i,j->ij", [(2,), (3,)]), ("ij->ji", [(2, 3)]),
    ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]), ("...ij,...jk->...ik", [(2, 1, 2, 3), (3, 3, 2)]),
    ("...ij,...jk", [(2, 2, 3), (3, 2)]), ("i...->...", [(3, 2, 2)]),
    ("...i,...i", [(2, 1, 3), (4, 3)]), ("iij->j", [(2, 2, 3)]), ("iji->j", [(2, 3, 2)]),
    ("ij,ij->i", [(2, 3), (1, 3)]), ("ij,jk", [(2, 1), (3, 4)]), ("aB", [(2, 3)]),
    ("bA,Ac", [(2, 3), (3, 4)]), ("ij,jk,kl->il", [(2, 3), (3, 2), (2, 2)]),
    ("i,i,i->", [(3,), (3,), (3,)]), ("ij,ij->ij", [(2, 3), (2, 3)]), ("i->", [(4,)]),
    (" i j , j k -> i k ", [(2, 3), (3, 2)]), ("ij...,jk...->ik...", [(2, 3, 2), (3, 2, 1)]),
    ("...ii->...i", [(2, 3, 3)]), (",", [(), ()]), ("i,->i", [(3,), ()]),
    ("...j,j...", [(2, 3), (3, 2)]), ("Ab...,bA", [(2, 3, 4), (3, 2)]), ("zA", [(2, 3)]),
    ("i...i", [(3, 2, 3)]), ("ij,kj->ik", [(1, 3), (4, 1)]), ("i,i,i", [(3,), (1,), (3,)]),
    ("...", [()]), ("a...,...->a...", [(2, 3), (1,)]),
]
for _spec, _shapes in EINSUM:
    case(f"einsum-{_spec.replace(' ', '_')}-{sid(*_shapes)}",
         lambda *ops, s=_spec: np.einsum(s, *ops), [Arg(s) for s in _shapes], "einsum")

# ---- structure ------------------------------------------------------------------

SHAPE_CASES = [
    ("reshape-minus1", lambda x: np.reshape(x, -1), (2, 3), "reshape"),
    ("reshape-2d", lambda x: np.reshape(x, (3, -1)), (2, 3), "reshape"),
    ("reshape-to-0d", lambda x: np.reshape(x, ()), (1, 1), "reshape"),
    ("reshape-from-0d", lambda x: np.reshape(x, (1, 1)), (), "reshape"),
    ("method-reshape-varargs", lambda x: x.reshape(3, 2), (2, 3), "reshape"),
    ("method-reshape-tuple", lambda x: x.reshape((-1, 1)), (2, 3), "reshape"),
    ("ravel", np.ravel, (2, 3), "reshape"),
    ("method-flatten", lambda x: x.flatten(), (2, 3), "reshape"),
    ("transpose-default", np.transpose, (2, 3, 4), "transpose"),
    ("transpose-axes", lambda x: np.transpose(x, (1, 2, 0)), (2, 3, 4), "transpose"),
    ("transpose-neg-axes", lambda x: np.transpose(x, (-1, 0, -2)), (2, 3, 4), "transpose"),
    ("method-T", lambda x: x.T, (2, 3), "transpose"),
    ("method-transpose-varargs", lambda x: x.transpose(2, 0, 1), (2, 3, 4), "transpose"),
    ("swapaxes", lambda x: np.swapaxes(x, 0, -1), (2, 3, 4), "transpose"),
    ("method-swapaxes", lambda x: x.swapaxes(1, 2), (2, 3, 4), "transpose"),
    ("moveaxis", lambda x: np.moveaxis(x, 0, -1), (2, 3, 4), "transpose"),
    ("moveaxis-multi", lambda x: np.moveaxis(x, [0, -1], [-1, 1]), (2, 3, 4), "transpose"),
    ("expand_dims", lambda x: np.expand_dims(x, 1), (2, 3), "reshape"),
    ("expand_dims-neg", lambda x: np.expand_dims(x, -1), (2, 3), "reshape"),
    ("expand_dims-tuple", lambda x: np.expand_dims(x, (0, 3)), (2, 3), "reshape"),
    ("squeeze-all", np.squeeze, (1, 3, 1), "reshape"),
    ("squeeze-axis", lambda x: np.squeeze(x, axis=-1), (1, 3, 1), "reshape"),
    ("method-squeeze", lambda x: x.squeeze(0), (1, 3, 1), "reshape"),
    ("broadcast_to-prepend", lambda x: np.broadcast_to(x, (2, 3)), (3,), "broadcast_to"),
    ("broadcast_to-stretch", lambda x: np.broadcast_to(x, (3, 2, 4)), (2, 1), "broadcast_to"),
    ("broadcast_to-0d", lambda x: np.broadcast_to(x, (2, 2)), (), "broadcast_to"),
    ("atleast_1d", np.atleast_1d, (), "reshape"),
    ("atleast_2d", np.atleast_2d, (3,), "reshape"),
    ("atleast_3d", np.atleast_3d, (2, 3), "reshape"),
    ("atleast_3d-1d", np.atleast_3d, (3,), "reshape"),
    ("split-sections", lambda x: np.split(x, 2), (4, 3), "getitem"),
    ("split-indices", lambda x: np.split(x, [1, 3], axis=1), (2, 5), "getitem"),
    ("split-unsorted-overflow", lambda x: np.split(x, [4, 2, 8]), (6,), "getitem"),
    ("split-negative-index", lambda x: np.split(x, [-2], axis=-1), (2, 5), "getitem"),
    ("array_split", lambda x: np.array_split(x, 3), (5, 2), "getitem"),
    ("copy", np.copy, (3,), ""),
    ("method-copy", lambda x: x.copy() * 1.0, (3,), "multiply"),
    ("method-reshape-int", lambda x: x.reshape(6), (2, 3), "reshape"),
    ("method-transpose-tuple", lambda x: x.transpose((1, 0)), (2, 3), "transpose"),
    ("method-T-1d", lambda x: x.T, (3,), ""),
    ("method-ravel", lambda x: x.ravel(), (2, 3), "reshape"),
]
for _name, _f, _s, _prims in SHAPE_CASES:
    case(_name, _f, [Arg(_s)], _prims)

case("concatenate-axis0", lambda a, b: np.concatenate([a, b]), [A(2, 3), A(1, 3)], "concatenate")
case("concatenate-axis1", lambda a, b, c: np.concatenate((a, b, c), axis=1),
     [A(2, 1), A(2, 3), A(2, 2)], "concatenate")
case("concatenate-axis-neg", lambda a, b: np.concatenate([a, b], axis=-1), [A(2, 2), A(2, 3)],
     "concatenate")
case("concatenate-axisNone", lambda a, b: np.concatenate([a, b], axis=None), [A(2, 2), A(3)],
     "concatenate reshape")
case("concatenate-same-twice", lambda a: np.concatenate([a, a * 2]), [A(3)],
     "concatenate multiply")
case("stack-axis0", lambda a, b: np.stack([a, b]), [A(2, 3), A(2, 3)], "concatenate reshape")
case("stack-axis-neg", lambda a, b: np.stack([a, b], axis=-1), [A(2, 3), A(2, 3)],
     "concatenate reshape")
case("stack-0d", lambda a, b: np.stack([a, b]), [A(), A()], "concatenate reshape")
case("vstack-1d", lambda a, b: np.vstack([a, b]), [A(3), A(3)], "concatenate reshape")
case("vstack-2d", lambda a, b: np.vstack([a, b]), [A(1, 3), A(2, 3)], "concatenate")
case("hstack-1d", lambda a, b: np.hstack([a, b]), [A(2), A(3)], "concatenate")
case("hstack-2d", lambda a, b: np.hstack([a, b]), [A(2, 1), A(2, 3)], "concatenate")
case("atleast_2d-several", lambda a, b: np.atleast_2d(a, b), [A(), A(3)], "reshape")
case("hstack-0d", lambda a, b: np.hstack([a, b]), [A(), A(2)], "concatenate reshape")

# ---- indexing -------------------------------------------------------------------

REPEAT = np.array([0, 2, 0, 0])
INDEX = [
    ("int", lambda x: x[1], (4, 5)),
    ("neg-int", lambda x: x[-1, -2], (4, 5)),
    ("slice", lambda x: x[1:3], (4, 5)),
    ("neg-step", lambda x: x[::-1, ::-2], (4, 5)),
    ("step-slice", lambda x: x[1, ::2], (4, 5)),
    ("none", lambda x: x[None, :, None], (4, 5)),
    ("ellipsis", lambda x: x[..., 1], (2, 3, 4)),
    ("ellipsis-none", lambda x: x[..., None, 1:], (2, 3, 4)),
    ("mixed-basic", lambda x: x[:, None, 1:, -1], (2, 3, 4)),
    ("empty-slice", lambda x: x[2:2], (4, 5)),
    ("bool-scalar", lambda x: x[True], (2, 3)),
    ("array-and-int", lambda x: x[[0, 0, 2], 1], (3, 4)),
    ("np-int", lambda x: x[np.int64(1), np.intp(-1)], (3, 4)),
    ("0d-ellipsis", lambda x: x[...], ()),
    ("0d-none", lambda x: x[None], ()),
    ("int-array-repeats", lambda x: x[REPEAT], (4, 5)),
    ("int-list-repeats", lambda x: x[[1, 1, 3]], (4,)),
    ("int-array-2d", lambda x: x[np.array([[0, 1], [1, 1]])], (3, 2)),
    ("int-array-0d", lambda x: x[np.array(2)], (4,)),
    ("int-arrays-pairs", lambda x: x[[0, 1, 0], [1, 2, 1]], (4, 5)),
    ("slice-then-array", lambda x: x[:, [2, 0, 2]], (4, 5)),
    ("split-advanced", lambda x: x[[0, 1, 0], :, [1, 2, 1]], (2, 3, 4)),
    ("array-broadcast", lambda x: x[np.array([[0], [1]]), np.array([0, 2, 2])], (3, 4)),
    ("neg-int-array", lambda x: x[np.array([-1, -1, 0])], (4,)),
    ("bool-mask", lambda x: x[MASK], (2, 3)),
    ("bool-mask-row", lambda x: x[np.array([True, False, True, True])], (4, 5)),
    ("bool-from-values", lambda x: x[x > 0], (2, 3)),
    ("bool-mask-then-slice", lambda x: x[np.array([True, False]), 1:], (2, 3)),
]
for _name, _f, _s in INDEX:
    case(f"getitem-{_name}", _f, [Arg(_s, away=0.1)], "getitem scatter_add",
         data_dependent=_name == "bool-from-values")
case("iterate-rows", lambda x: [r * i for i, r in enumerate(x)], [A(3, 2)], "getitem multiply")

# ---- primitives declared outside ops/ (special functions, transforms) -------------


@custom_vjp
def _sin_times(x, y):
    return np.sin(x) * y


_sin_times.defvjp(lambda x, y: (np.sin(x) * y, (x, y)),
                  lambda res, g: (g * res[1] * np.cos(res[0]), g * np.sin(res[0])))


@custom_jvp
def _softplus(x):
    return np.log1p(np.exp(x))


@_softplus.defjvp
def _softplus_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return _softplus(x), t / (1 + np.exp(-x))


case("erf", erf, [A(2, 3)], "erf")
case("checkpoint", lambda x, w: checkpoint(lambda a, b: np.tanh(a @ b))(x, w),
     [A(2, 3), A(3, 2)], "checkpoint tanh matmul")
case("checkpoint-two-outputs", lambda x: checkpoint(lambda a: (np.sin(a), a * a))(x), [A(3)],
     "checkpoint sin multiply")
case("custom_vjp", lambda x, y: _sin_times(x, y), [A(2, 3), A(2, 3)], "custom_vjp")
case("custom_jvp", lambda x: _softplus(x) * x, [A(2, 3)], "custom_jvp multiply")
case("custom_vjp-inside", lambda x: np.exp(_sin_times(x, x[::-1])), [A(3)],
     "custom_vjp exp getitem")

# ---- numpy functions composed of primitives -------------------------------------

SQ = (3, 3)
COMPOSITES = [
    ("flip-all", np.flip, [(2, 3)], "getitem"),
    ("flip-axis", lambda x: np.flip(x, -1), [(2, 3)], "getitem"),
    ("flip-axes", lambda x: np.flip(x, (0, 2)), [(2, 3, 2)], "getitem"),
    ("fliplr", np.fliplr, [(2, 3)], "getitem"),
    ("flipud", np.flipud, [(2, 3)], "getitem"),
    ("roll-flat", lambda x: np.roll(x, 2), [(2, 3)], "getitem reshape"),
    ("roll-axis", lambda x: np.roll(x, -1, axis=1), [(2, 3)], "getitem"),
    ("roll-axes", lambda x: np.roll(x, (1, 5), axis=(0, 1)), [(2, 3)], "getitem"),
    ("diagonal", np.diagonal, [SQ], "getitem"),
    ("diagonal-offset", lambda x: np.diagonal(x, 1), [(3, 4)], "getitem"),
    ("diagonal-neg-offset-axes", lambda x: np.diagonal(x, -1, 2, 0), [(3, 2, 4)],
     "getitem transpose"),
    ("trace", np.trace, [SQ], "getitem sum"),
    ("trace-offset-batched", lambda x: np.trace(x, 1, axis1=1, axis2=2), [(2, 3, 3)],
     "getitem sum"),
    ("diag-of-matrix", np.diag, [(3, 4)], "getitem"),
    ("diag-build", lambda v: np.diag(v, -1), [(3,)], "einsum"),
    ("triu", lambda x: np.triu(x, 1), [(3, 4)], "where"),
    ("tril-batched", np.tril, [(2, 3, 3)], "where"),
    ("triu-1d", np.triu, [(3,)], "where"),
    ("take", lambda x: np.take(x, [2, 0, 2]), [(2, 3)], "getitem reshape"),
    ("take-axis-wrap", lambda x: np.take(x, [4, -1], axis=1, mode="wrap"), [(2, 3)], "getitem"),
    ("take_along_axis", lambda x: np.take_along_axis(x, np.array([[0, 0], [2, 1]]), 1),
     [(2, 3)], "take_along"),
    ("take_along_axis-broadcast", lambda x: np.take_along_axis(x, np.array([[2, -1], [0, 0]]),
                                                               1), [(1, 3)], "take_along"),
    ("take_along_axis-broadcast-array", lambda x: np.take_along_axis(
        x, np.array([[[2, 0]], [[1, 1]]]), 2), [(1, 3, 3)], "take_along broadcast_to"),
    # sort's primitives are its implementation's business (sweep_cases_breadth claims them)
    ("sort", np.sort, [(2, 4)], ""),
    ("sort-axis0", lambda x: np.sort(x, axis=0), [(3, 2)], ""),
    ("sort-flat", lambda x: np.sort(x, axis=None), [(2, 3)], "reshape"),
    ("sort-ties", lambda x: np.sort(np.concatenate([x, x[:, ::2]], axis=-1)), [(2, 3)],
     "concatenate"),
    ("repeat-flat", lambda x: np.repeat(x, 2), [(2, 2)], "getitem reshape"),
    ("repeat-axis", lambda x: np.repeat(x, [1, 0, 2], axis=1), [(2, 3)], "getitem"),
    ("tile", lambda x: np.tile(x, (2, 1, 2)), [(2, 3)], "getitem reshape"),
    ("diff", np.diff, [(2, 4)], "getitem subtract"),
    ("diff-n2-axis0", lambda x: np.diff(x, 2, axis=0), [(4, 2)], "getitem subtract"),
    ("diff-prepend-append", lambda x, y: np.diff(x, prepend=0.5, append=y), [(2, 3), (2, 1)],
     "concatenate getitem subtract"),
    ("cumsum", lambda x: np.cumsum(x, axis=1), [(2, 3)], "cumsum"),
    ("cumsum-flat", np.cumsum, [(2, 3)], "cumsum reshape"),
    ("cumsum-neg-axis", lambda x: np.cumsum(x, axis=-2), [(3, 2, 2)], "cumsum"),
    ("average", lambda x: np.average(x, axis=0), [(3, 2)], "sum divide"),
    ("average-weights", lambda x, w: np.average(x, axis=1, weights=w), [(2, 3), (3,)],
     "sum multiply divide"),
    ("average-weights-full", lambda x, w: np.average(x, weights=w), [(2, 3), (2, 3)],
     "sum multiply divide"),
    ("norm", np.linalg.norm, [(2, 3)], "sqrt sum"),
    ("norm-axis", lambda x: np.linalg.norm(x, axis=1, keepdims=True), [(2, 3)], "sqrt sum"),
    ("norm-ord1", lambda x: np.linalg.norm(x, 1), [(4,)], "absolute sum"),
    ("norm-ord3", lambda x: np.linalg.norm(x, 3), [(4,)], "absolute power sum"),
    ("norm-inf", lambda x: np.linalg.norm(x, np.inf), [(4,)], "absolute max"),
    ("norm-fro", lambda x: np.linalg.norm(x, "fro"), [(2, 3)], "sqrt sum"),
    ("norm-matrix-1", lambda x: np.linalg.norm(x, 1), [(2, 3)], "absolute sum max"),
    ("norm-matrix-inf-axes", lambda x: np.linalg.norm(x, -np.inf, axis=(2, 0)), [(2, 2, 3)],
     "absolute sum min"),
    ("append", np.append, [(2,), (2, 2)], "concatenate reshape"),
    ("append-axis", lambda x, y: np.append(x, y, axis=1), [(2, 1), (2, 2)], "concatenate"),
    ("column_stack", lambda x, y: np.column_stack([x, y]), [(3,), (3, 2)],
     "concatenate reshape"),
    ("dstack", lambda x, y: np.dstack([x, y]), [(2, 3), (2, 3)], "concatenate reshape"),
]
for _name, _f, _shapes, _prims in COMPOSITES:
    case(_name, _f, [Arg(s, away=0.2) for s in _shapes], _prims)
