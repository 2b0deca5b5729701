"""eval_shape against real runs, over every case of the sweep tables (issue 20 items 6, 8).

- ``test_eval_shape_is_what_a_run_gives``: for float64, float32, float16 and complex
  inputs, ``eval_shape(f)`` gives the (shape, dtype) of each output that running ``f`` on
  arrays (traced, as pycograd computes it) gives. Where numpy refuses the dtype (no float16
  loop in ``numpy.linalg``, a real-only function given complex input) there is nothing to
  compare; where pycograd refuses it, eval_shape must refuse it the same way, and a dtype
  that depends on the values is refused (``DataDependentShapeError``).
- ``test_symbolic_batch``: every case under ``vmap`` over a symbolic batch (``batch``)
  gives ``(batch, *shape)`` per output: the batching rules and shape rules of every
  primitive keep a batch whose size is unknown.
- ``test_symbolic_batch_of_nn_ops``: every ``pycograd.nn`` case takes a symbolic leading
  (batch) dimension directly, as a model's layers do in ``summary``; the expected shape of
  each output dimension comes from two runs with batch sizes ``n`` and ``n + 1``.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import sweep_cases_nn
from sweep_cases import Case
from test_sweep import CASES, runs

import pycograd
from pycograd.core.symbolic import Dim

S = pycograd.ShapeDtypeStruct
BATCH = Dim("batch")


def _outputs(out: object) -> list:
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _params(cases: list[Case]) -> dict:
    return dict(argvalues=cases, ids=[c.name for c in cases])


def _cast(a: np.ndarray, dtype: type) -> np.ndarray:
    """``a`` in ``dtype``; complex inputs stay complex (of that precision)."""
    if np.iscomplexobj(a) and np.dtype(dtype).kind != "c":
        return a.astype(np.result_type(dtype, np.complex64))
    return a.astype(dtype)


def _run(fn, args: list) -> list | Exception:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            return _outputs(fn(*args))
        except Exception as e:  # noqa: BLE001 - the refusal is what is compared
            return e


DTYPES = [np.float64, np.float32, np.float16, np.complex128]
SHAPED = [c for c in CASES if not c.data_dependent and (
    runs(c, "eval_shape") or "eig/sqrtm" in c.skip["eval_shape"])]
"""With the cases whose dtype depends on the values (a real matrix's eig): the test_sweep
eval_shape mode skips them, here eval_shape must refuse them or be right."""


@pytest.mark.parametrize("case", **_params(SHAPED))
@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32", "float16", "complex"])
def test_eval_shape_is_what_a_run_gives(case: Case, dtype):
    args = [_cast(a, dtype) for a in case.sample()]
    expected = _run(case.fn, args)
    if isinstance(expected, Exception):
        return  # numpy refuses these dtypes: nothing to compare
    specs = [S(a.shape, a.dtype) for a in args]
    traced = _run(lambda *xs: pycograd.vjp(case.fn, *xs)[0], args)  # pycograd's own run
    try:
        got = _outputs(pycograd.eval_shape(case.fn, *specs))
    except pycograd.DataDependentShapeError:
        return  # a dtype that depends on the values (a real matrix's eig, real_if_close)
    except pycograd.PycogradError as refusal:
        assert isinstance(traced, type(refusal)), \
            f"{case.name}: eval_shape refuses {dtype.__name__} inputs ({refusal!r}) but a " \
            f"run gives {traced!r}"
        return
    assert not isinstance(traced, Exception), f"{case.name}: a run raises {traced!r}"
    expected = traced  # what pycograd computes (scipy drops the imaginary part of some
    # complex inputs with a warning where pycograd keeps it; the values sweep owns that)
    assert len(got) == len(expected), f"{case.name}: {len(got)} outputs, not {len(expected)}"
    for i, (g, e) in enumerate(zip(got, expected)):
        assert (g.shape, g.dtype) == (np.shape(e), np.result_type(e)), \
            f"{case.name} ({dtype.__name__}): eval_shape output {i} is {g!r}, a run gives " \
            f"{np.shape(e)} {np.result_type(e)}"


BATCHED = [c for c in SHAPED if runs(c, "vmap") and runs(c, "eval_shape")]


@pytest.mark.parametrize("case", **_params(BATCHED))
def test_symbolic_batch(case: Case):
    args = case.sample()
    expected = _run(case.fn, args)
    got = _outputs(pycograd.eval_shape(pycograd.vmap(case.fn),
                                       *[S((BATCH,) + a.shape, a.dtype) for a in args]))
    assert [(g.shape, g.dtype) for g in got] == \
        [((BATCH,) + np.shape(e), np.result_type(e)) for e in expected], case.name


def _batch_args(case: Case) -> list[int]:
    """The arguments that share the first argument's leading (batch) dimension."""
    n = case.args[0].shape[0]
    return [i for i, a in enumerate(case.args) if a.shape and a.shape[0] == n]


NN = [c for c in sweep_cases_nn.CASES if runs(c, "eval_shape") and c.args
      and c.args[0].shape]


@pytest.mark.parametrize("case", **_params(NN))
def test_symbolic_batch_of_nn_ops(case: Case):
    batched, n = _batch_args(case), case.args[0].shape[0]
    grown = dataclasses.replace(case, args=tuple(
        dataclasses.replace(a, shape=(n + 1,) + a.shape[1:]) if i in batched else a
        for i, a in enumerate(case.args)))
    small, large = _run(case.fn, case.sample()), _run(grown.fn, grown.sample())
    assert not isinstance(small, Exception)
    if isinstance(large, Exception):
        pytest.skip("the first dimension is not a batch (another size must match it)")
    specs = [S((BATCH,) + a.shape[1:] if i in batched else a.shape, a.dtype)
             for i, a in enumerate(case.args)]
    got = _outputs(pycograd.eval_shape(case.fn, *specs))
    for g, e0, e1 in zip(got, small, large):
        want = tuple(d0 if d0 == d1 else (d1 - d0) * BATCH + (d0 - (d1 - d0) * n)
                     for d0, d1 in zip(np.shape(e0), np.shape(e1)))
        assert (g.shape, g.dtype) == (want, np.result_type(e0)), case.name
