"""Complex cases for the sweep: complex128/complex64 inputs through every op that takes
them, real/imag/conj/angle/abs, and real inputs meeting complex ones (their gradient is
the real part). Finite differences step along the real and the imaginary axis and form
autograd's ``df/dx - i df/dy`` (see ``fd.numerical_grad``); complex outputs enter the
loss through the real part of ``sum(out * w)`` with complex ``w``."""

from __future__ import annotations

import numpy as np
from sweep_cases import Arg, Case, sid

import pycograd.numpy_api.complex  # noqa: F401  (np.real / np.imag / np.angle on tracers)
from pycograd.ops.gates import gru_gates_p

CASES: list[Case] = []


def case(name: str, fn, args: list, prims: str, **kw: object) -> None:
    CASES.append(Case(name, fn, tuple(args), tuple(prims.split()), **kw))


def Z(*shape: int, **kw: object) -> Arg:
    """A complex128 input (real and imaginary parts drawn alike)."""
    return Arg(tuple(shape), dtype="complex128", **kw)


def R(*shape: int, **kw: object) -> Arg:
    return Arg(tuple(shape), **kw)


RIGHT = dict(low=0.3, high=2.0)  # right half-plane: away from the cuts of sqrt and log
SMALL = dict(low=-0.6, high=0.6)  # near 0: away from the cuts of the inverse trig functions
NONZERO = dict(away=0.3)

# ---- holomorphic unary ufuncs: the same rules as for reals -----------------------
HOLOMORPHIC = {
    "negative": (np.negative, {}), "positive": (np.positive, {}), "conjugate": (np.conj, {}),
    "square": (np.square, {}), "sqrt": (np.sqrt, RIGHT), "reciprocal": (np.reciprocal, NONZERO),
    "exp": (np.exp, {}), "exp2": (np.exp2, {}), "expm1": (np.expm1, {}),
    "log": (np.log, RIGHT), "log2": (np.log2, RIGHT), "log10": (np.log10, RIGHT),
    "log1p": (np.log1p, dict(low=-0.5, high=2.0)),
    "sin": (np.sin, {}), "cos": (np.cos, {}), "tan": (np.tan, SMALL),
    "arcsin": (np.arcsin, SMALL), "arccos": (np.arccos, SMALL), "arctan": (np.arctan, SMALL),
    "sinh": (np.sinh, {}), "cosh": (np.cosh, {}), "tanh": (np.tanh, SMALL),
    "arcsinh": (np.arcsinh, SMALL), "arccosh": (np.arccosh, dict(low=1.2, high=3.0)),
    "arctanh": (np.arctanh, SMALL),
}
for _name, (_f, _dom) in HOLOMORPHIC.items():
    for _s in [(), (2, 3)]:
        case(f"complex-{_name}-{sid(_s)}", _f, [Arg(_s, dtype="complex128", **_dom)], _name)

# ---- the non-holomorphic ones: real-valued (or conjugated) functions of z --------
for _s in [(), (3,), (2, 3)]:
    case(f"complex-real-{sid(_s)}", np.real, [Z(*_s)], "real")
    case(f"complex-imag-{sid(_s)}", np.imag, [Z(*_s)], "imag")
    case(f"complex-angle-{sid(_s)}", np.angle, [Z(*_s, **NONZERO)], "angle")
    case(f"complex-abs-{sid(_s)}", np.abs, [Z(*_s, **NONZERO)], "absolute")
case("complex-attr-real-imag", lambda z: z.real * z.imag, [Z(2, 3)], "real imag multiply")
case("complex-method-conj", lambda z: z.conj() * z, [Z(3)], "conjugate multiply")
case("complex-angle-deg", lambda z: np.angle(z, deg=True), [Z(3, **NONZERO)],
     "angle multiply")
case("complex-abs-squared", lambda z: np.abs(z) ** 2 + np.real(z * np.conj(z)), [Z(2, 3)],
     "absolute power real conjugate multiply add")
case("complex-abs-at-zero", np.abs, [Z(4, zeros=(1,))], "absolute", second_order=False)
case("complex-angle-of-real", lambda x: np.angle(x) * x, [R(3, **NONZERO)],
     "angle multiply")
case("complex-real-of-real", lambda x: np.real(x) + np.imag(x), [R(3)], "add")
case("complex-polar", lambda r, t: r * np.exp(1j * t), [R(3, low=0.5), R(3)],
     "multiply exp")
case("complex-from-parts", lambda x, y: np.abs(x + 1j * y), [R(2, 3, **NONZERO), R(2, 3)],
     "add multiply absolute")

# ---- binary ufuncs: complex with complex, and with real, over broadcasting --------
PAIRS = [((), ()), ((2, 3), (2, 3)), ((3, 1), (1, 4)), ((), (2, 3)), ((2, 3), ())]
BINARY = {
    "add": (np.add, {}, {}), "subtract": (np.subtract, {}, {}),
    "multiply": (np.multiply, {}, {}), "divide": (np.divide, {}, NONZERO),
    "power": (np.power, RIGHT, SMALL), "float_power": (np.float_power, RIGHT, SMALL),
}
for _name, (_f, _dx, _dy) in BINARY.items():
    for _sx, _sy in PAIRS:
        case(f"complex-{_name}-zz-{sid(_sx, _sy)}", _f,
             [Arg(_sx, dtype="complex128", **_dx), Arg(_sy, dtype="complex128", **_dy)], _name)
    case(f"complex-{_name}-rz", _f, [R(3, 1, **_dx), Z(4, **_dy)], _name)
    case(f"complex-{_name}-zr", _f, [Z(3, 1, **_dx), R(4, **_dy)], _name)
case("complex-op-mul-scalar", lambda z: (2 + 1j) * z - 1j, [Z(3)], "multiply subtract")
case("complex-op-pow-int", lambda z: z ** 3, [Z(3)], "power")

# ---- reductions, scans, contractions, structure, selection -------------------------
case("complex-sum", lambda z: np.sum(z, axis=0), [Z(2, 3)], "sum")
case("complex-mean", np.mean, [Z(2, 3)], "sum divide")
case("complex-prod", lambda z: np.prod(z, axis=1), [Z(2, 3, **NONZERO)], "prod")
case("complex-cumsum", lambda z: np.cumsum(z, axis=1), [Z(2, 3)], "cumsum")
case("complex-cumprod", lambda z: np.cumprod(z), [Z(4, **NONZERO)], "cumprod")
case("complex-matmul-zz", np.matmul, [Z(2, 3), Z(3, 4)], "matmul")
case("complex-matmul-rz", np.matmul, [R(2, 3), Z(3, 4)], "matmul")
case("complex-matmul-zr-vec", np.matmul, [Z(2, 3), R(3)], "multiply")
case("complex-einsum-rz", lambda a, b: np.einsum("ij,jk,k->i", a, b, b[0]),
     [R(2, 3), Z(3, 3)], "einsum")
case("complex-vdot", np.vdot, [Z(4), Z(4)], "conjugate multiply sum")
case("complex-where-mixed", lambda x, z: np.where(np.array([True, False, True]), x, z),
     [R(3), Z(3)], "where")
case("complex-concatenate-mixed", lambda x, z: np.concatenate([x, z]), [R(2), Z(3)],
     "concatenate")
case("complex-stack-reshape", lambda z, w: np.stack([z, w]).reshape(3, 2).T,
     [Z(3), Z(3)], "concatenate reshape transpose")
case("complex-getitem", lambda z: z[1:, ::-1][0] * z[0, 1], [Z(2, 3)], "getitem multiply")
case("complex-broadcast_to", lambda z: np.broadcast_to(z, (2, 3)), [Z(3)], "broadcast_to")
case("complex-astype-up", lambda x: x.astype(np.complex128) * 1j, [R(3)], "astype multiply")
GRID = dict(grid=1 / 8)  # values and steps exact in complex64
EXACT = dict(eps=2.0 ** -10, hvp_eps=2.0 ** -10)
case("complex-astype-down", lambda z: z.astype(np.complex64) * 3, [Z(3, **GRID)],
     "astype multiply", **EXACT)
case("complex64-astype-up", lambda z: z.astype(np.complex128) * 3,
     [Arg((3,), dtype="complex64", **GRID)], "astype multiply", **EXACT)
case("complex64-chain", lambda z: np.exp(z) * np.conj(z), [Arg((3,), dtype="complex64")],
     "exp conjugate multiply", eps=1e-2, hvp_eps=1e-2, rtol=2e-2, atol=1e-3)
case("complex-loss-real", lambda z, w: np.sum(np.abs(z @ w - 1.0) ** 2), [Z(2, 3), Z(3)],
     "matmul subtract absolute power sum")

# ---- ordering: numpy compares complex lexicographically (real part, then imaginary) --
ORDERED = {"maximum": np.maximum, "minimum": np.minimum, "fmax": np.fmax, "fmin": np.fmin}
for _name, _f in ORDERED.items():
    for _sx, _sy in [((2, 3), (2, 3)), ((3, 1), (1, 4))]:
        case(f"complex-{_name}-zz-{sid(_sx, _sy)}", _f, [Z(*_sx), Z(*_sy)], _name)
    case(f"complex-{_name}-rz", _f, [R(3, 1), Z(4)], _name)
    case(f"complex-{_name}-zr", _f, [Z(3, 1), R(4)], _name)
    # equal real parts: the imaginary parts decide; equal values: the gradient is split
    case(f"complex-{_name}-real-tie", lambda z, _f=_f: _f(z, np.real(z) + 0.25j), [Z(2, 3)],
         f"{_name} real add")
    case(f"complex-{_name}-tie", lambda z, _f=_f: _f(z, z * 1.0), [Z(3)], f"{_name} multiply")
CNANS = np.array([complex(np.nan, 1), 0.5 - 0.5j, complex(1, np.nan)])
case("complex-fmax-nan", lambda z: np.fmax(z, CNANS) + np.fmax(CNANS, 2 * z), [Z(3)],
     "fmax multiply add")
case("complex-fmin-nan", lambda z: np.fmin(CNANS, z) + np.fmin(2 * z, CNANS), [Z(3)],
     "fmin multiply add")
case("complex-clip", lambda z: np.clip(z, -0.5 - 1j, 0.5 + 0.5j), [Z(2, 3)],
     "maximum minimum")
case("complex-clip-real-bounds", lambda z, lo: np.clip(z, lo, 1.0), [Z(2, 3), R(3, high=0.0)],
     "maximum minimum")
case("complex-max-reduce", lambda z: np.max(z, axis=1) + np.min(z), [Z(2, 3)], "max min")

# ---- numpy 2's sign(z) = z / |z|: smooth away from 0 (the real sign has no gradient) --
for _s in [(), (2, 3)]:
    case(f"complex-sign-{sid(_s)}", np.sign, [Z(*_s, **NONZERO)], "hypot real imag divide where")
case("complex64-sign", np.sign, [Arg((3,), dtype="complex64", **NONZERO)],
     "hypot real imag divide where", eps=1e-2, hvp_eps=1e-2, rtol=2e-2, atol=1e-3)

# ---- nan_to_num (parts replaced separately) and real_if_close ----------------------
CBAD = np.array([complex(np.nan, 0), complex(0, np.inf), 0j, complex(-np.inf, np.nan),
                 complex(np.nan, -np.inf)])
case("complex-nan_to_num", lambda z: np.nan_to_num(z + CBAD, nan=1.5, posinf=3.0, neginf=-2.0),
     [Z(5)], "add real imag where isnan multiply")
case("complex-nan_to_num-finite", lambda z: np.nan_to_num(z) * z, [Z(2, 3)],
     "real imag where multiply")
case("complex-real_if_close", lambda z: np.real_if_close(z - 1j * np.imag(z)) * 2.0, [Z(2, 3)],
     "imag real multiply subtract", data_dependent=True)
case("complex-real_if_close-not", lambda z: np.real_if_close(z) * 2.0, [Z(2, 3)],
     "imag multiply", data_dependent=True)

# ---- selection and scatter on complex values (numpy orders complex lexicographically) -----
case("complex-sort", lambda z: np.sort(z, axis=-1) * np.arange(1, 4), [Z(2, 3)],
     "take_along multiply")
case("complex-take_along_axis", lambda z: np.take_along_axis(
    z, np.array([[2, 0], [1, 1]]), axis=1), [Z(2, 3)], "take_along")
case("complex-scatter_add", lambda z, w: pycograd.scatter_add(z, np.array([0, 2, 0]), w),
     [Z(4), Z(3)], "scatter_add")
case("complex-round", lambda z: np.round(z, 1) + z, [Z(3)], "round add")

# ---- the GRU's fused gates (holomorphic in each operand; a real state gets a real cotangent)
SMALL = dict(low=-0.5, high=0.5)  # away from tanh's poles at +-i pi/2
case("complex-gru_gates", lambda xg, hg, h: gru_gates_p.bind(xg, hg, h),
     [Z(2, 6, **SMALL), Z(2, 6, **SMALL), Z(2, 2, **SMALL)], "gru_gates")
case("complex-gru_gates-real_state", lambda xg, hg, h: gru_gates_p.bind(xg, hg, h),
     [Z(6, **SMALL), Z(2, 6, **SMALL), R(2, 2, **SMALL)], "gru_gates")
