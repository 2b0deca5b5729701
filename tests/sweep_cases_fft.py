"""numpy.fft cases for the sweep: every transform with ``n`` / ``s`` (padding and
cutting), ``axis`` / ``axes`` and each ``norm``, on complex and real inputs, odd and even
lengths. Complex inputs and outputs are handled as in ``sweep_cases_complex``."""

from __future__ import annotations

import numpy as np
from sweep_cases import Arg, Case

import pycograd.numpy_api.fft  # noqa: F401  (np.fft.* on tracers)

CASES: list[Case] = []


def case(name: str, fn, args: list, prims: str, **kw: object) -> None:
    CASES.append(Case(name, fn, tuple(args), tuple(prims.split()), **kw))


def Z(*shape: int) -> Arg:
    return Arg(tuple(shape), dtype="complex128")


def R(*shape: int) -> Arg:
    return Arg(tuple(shape))


F = np.fft
for _norm in (None, "ortho", "forward"):
    _k = dict(norm=_norm)
    _id = _norm or "backward"
    case(f"fft-{_id}", lambda z, k=_k: F.fft(z, **k), [Z(2, 5)], "fft")
    case(f"ifft-{_id}", lambda z, k=_k: F.ifft(z, axis=0, **k), [Z(4, 3)], "ifft")
    case(f"rfft-{_id}", lambda x, k=_k: F.rfft(x, **k), [R(2, 6)], "rfft")
    case(f"irfft-{_id}", lambda z, k=_k: F.irfft(z, **k), [Z(2, 4)], "irfft")
    case(f"hfft-{_id}", lambda z, k=_k: F.hfft(z, **k), [Z(4)], "irfft conjugate")
    case(f"ihfft-{_id}", lambda x, k=_k: F.ihfft(x, **k), [R(5)], "rfft conjugate")
    case(f"fftn-{_id}", lambda z, k=_k: F.fftn(z, **k), [Z(2, 3, 2)], "fft")
    case(f"irfftn-{_id}", lambda z, k=_k: F.irfftn(z, **k), [Z(3, 3)], "ifft irfft")

case("fft-pad", lambda z: F.fft(z, n=7), [Z(2, 5)], "fft")
case("fft-cut-axis0", lambda z: F.fft(z, n=2, axis=0), [Z(4, 3)], "fft")
case("fft-real-input", lambda x: F.fft(x), [R(5)], "fft")
case("fft-0d-batch", lambda z: F.fft(z), [Z(1)], "fft")
case("ifft-pad", lambda z: F.ifft(z, n=6, norm="ortho"), [Z(3)], "ifft")
case("rfft-odd", lambda x: F.rfft(x, axis=0), [R(5, 2)], "rfft")
case("rfft-pad-odd", lambda x: F.rfft(x, n=7), [R(4)], "rfft")
case("rfft-cut", lambda x: F.rfft(x, n=3), [R(6)], "rfft")
case("irfft-odd-n", lambda z: F.irfft(z, n=7), [Z(4)], "irfft")
case("irfft-cut", lambda z: F.irfft(z, n=4, axis=0), [Z(5, 2)], "irfft")
case("irfft-real-input", lambda x: F.irfft(x), [R(4)], "irfft")
case("hfft-n", lambda z: F.hfft(z, n=5), [Z(4)], "irfft conjugate")
case("ihfft-n", lambda x: F.ihfft(x, n=6), [R(4)], "rfft conjugate")
case("fft2", F.fft2, [Z(3, 4)], "fft")
case("ifft2-s", lambda z: F.ifft2(z, s=(2, 5)), [Z(3, 4)], "ifft")
case("fftn-axes", lambda z: F.fftn(z, axes=(0, 2)), [Z(2, 3, 2)], "fft")
case("ifftn-s", lambda z: F.ifftn(z, s=(3, 3), axes=(0, 1)), [Z(2, 4)], "ifft")
case("rfft2", F.rfft2, [R(3, 4)], "rfft fft")
case("irfft2", F.irfft2, [Z(3, 3)], "ifft irfft")
case("rfftn-s-axes", lambda x: F.rfftn(x, s=(4, 5), axes=(1, 0)), [R(3, 4)], "rfft fft")
case("irfftn-s", lambda z: F.irfftn(z, s=(2, 5), axes=(0, 1)), [Z(3, 3)], "ifft irfft")
case("fft-roundtrip", lambda z: F.ifft(F.fft(z) * np.exp(z)), [Z(4)], "fft ifft exp multiply")
case("rfft-roundtrip", lambda x: F.irfft(F.rfft(x) ** 2, n=5), [R(5)],
     "rfft irfft power")
case("fftshift", F.fftshift, [Z(3, 4)], "getitem")
case("ifftshift-axes", lambda x: F.ifftshift(x, axes=0), [R(5, 2)], "getitem")
case("fftshift-of-fft", lambda x: F.fftshift(F.fft(x), axes=(-1,)), [R(5)],
     "fft getitem")
