"""The lean tape: each node keeps only the residuals its VJP reads (derived from the rules'
code, or declared with ``saves=`` beside them), releases them once backward has used them,
and a rule that reads a residual the tape did not keep fails loudly (the sweep runs every
reverse mode on this tape, so a wrong declaration fails the sweep)."""

import weakref

import numpy as np
import pytest
from memory_peak import peak_mib

from pycograd import Var, checkpoint, grad, value_and_grad, vjp
from pycograd.core.errors import PycogradError, ResidualError
from pycograd.core.primitive import NONE, SHAPE, UNSAVED, VALUE, Shaped, residual_modes
from pycograd.core.var import ANS, ARGS
from pycograd.ops.elementwise import UFUNC_PRIMS, _back
from pycograd.ops.linalg import matmul_p


@pytest.fixture(autouse=True)
def strict_residuals(monkeypatch):
    """Stand-ins for shape-only residuals of every size (the sweep's setting)."""
    monkeypatch.setattr("pycograd.core.var.SHAPED_FROM_BYTES", 0)


def _node(f, *xs):
    vs = [Var(x) for x in xs]
    out = f(*vs)
    return out, out._node


def test_exp_keeps_its_output_only():
    out, node = _node(np.exp, np.ones(3))
    assert node[ANS] is out.value
    assert node[ARGS][0] is UNSAVED


def test_sin_keeps_its_input_only():
    x = np.ones(3)
    out, node = _node(np.sin, x)
    assert node[ARGS][0] is x
    assert node[ANS] is UNSAVED


def test_add_keeps_only_shapes():
    out, node = _node(np.add, np.ones((2, 3)), np.ones(3))
    assert all(isinstance(a, Shaped) for a in node[ARGS])
    assert [a.shape for a in node[ARGS]] == [(2, 3), (3,)]
    assert node[ANS] is UNSAVED


def test_matmul_keeps_its_operands():
    a, b = np.ones((2, 3)), np.ones((3, 4))
    out, node = _node(np.matmul, a, b)
    assert node[ARGS][0] is a and node[ARGS][1] is b
    assert node[ANS] is UNSAVED


def test_modes_are_read_off_the_rules():
    assert UFUNC_PRIMS[np.tanh].residuals == (VALUE, ((0, NONE),), VALUE, 1)
    assert UFUNC_PRIMS[np.log].residuals == (NONE, (), VALUE, 1)
    assert matmul_p.residuals == (NONE, (), VALUE, 2)
    # saves= turns what the rules load into shapes unless it is listed
    rule = (lambda g, ans, x, y: g * y, lambda g, ans, x, y: g * x)
    assert residual_modes(rule, None, None) == (NONE, (), VALUE, 2)
    assert residual_modes(rule, None, (1,)) == (NONE, ((0, SHAPE),), VALUE, 2)
    # *args past the named arguments: kept whole if read, else dropped
    star = (lambda g, ans, x, *idx: g[idx],)
    assert residual_modes(star, None, None) == (NONE, ((0, NONE),), VALUE, 1)
    # a rule ending in ``_back(<ct>, x)`` reads only x's shape
    back = (lambda g, ans, x, y: _back(g * y, x),)
    assert residual_modes(back, None, None) == (NONE, ((0, SHAPE),), VALUE, 2)
    assert _back.reads_shape_of_last
    # a rule that is not Python code keeps everything
    assert residual_modes((np.multiply,), None, None) is None


def test_a_rule_reading_a_dropped_residual_raises(monkeypatch):
    """The check the sweep relies on: a declaration that keeps less than a rule reads
    raises ResidualError (naming the primitive) in every reverse mode, never a wrong
    gradient."""
    sin = UFUNC_PRIMS[np.sin]
    monkeypatch.setattr(sin, "residuals", (NONE, ((0, SHAPE),), VALUE, 1))
    with pytest.raises(ResidualError, match="sin: .*only as its shape"):
        grad(lambda x: np.sum(np.sin(x)))(np.ones(3))
    monkeypatch.setattr(sin, "residuals", (NONE, ((0, NONE),), VALUE, 1))
    with pytest.raises(ResidualError, match="sin: .*did not keep"):
        vjp(np.sin, np.ones(3))[1](np.ones(3))
    with pytest.raises(PycogradError):
        grad(grad(lambda x: np.sum(np.sin(x))))(0.5)


@pytest.mark.parametrize("use", [
    lambda s: s + 1, lambda s: np.exp(s), lambda s: np.asarray(s), lambda s: s[0],
    lambda s: float(s), lambda s: s.real, lambda s: s == 0])
def test_stand_ins_refuse_values(use):
    for stand_in in (Shaped(np.ones(2)), UNSAVED):
        with pytest.raises(ResidualError):
            use(stand_in)


def test_small_shape_only_residuals_are_kept_whole(monkeypatch):
    monkeypatch.setattr("pycograd.core.var.SHAPED_FROM_BYTES", 4096)
    small, big = np.ones(256), np.ones((4, 256))
    _, node = _node(np.add, small, big)
    assert node[ARGS][0] is small and isinstance(node[ARGS][1], Shaped)


def test_one_parent_keeps_what_its_vjp_reads():
    """``x * c`` runs only x's VJP, which reads ``c`` and x's shape: x is not kept; ``x /
    c`` keeps no output either (with both traced, y's VJP reads it)."""
    x = Var(np.ones(3))
    node = (x * np.full(3, 2.0))._node
    assert isinstance(node[ARGS][0], Shaped) and node[ARGS][1] is not UNSAVED
    node = (x / np.full(3, 2.0))._node
    assert isinstance(node[ARGS][0], Shaped) and node[ANS] is UNSAVED
    assert (x / Var(np.full(3, 2.0)))._node[ANS] is not UNSAVED


def test_shaped_answers_shape_questions():
    s = Shaped(np.ones((2, 3), np.float32))
    assert np.shape(s) == (2, 3) and s.ndim == 2 and s.size == 6
    assert np.result_type(s) == np.float32


def test_residuals_are_released_by_backward():
    x = Var(np.ones(4))
    h = np.exp(x)  # exp keeps its output on the tape
    kept = weakref.ref(h.value)
    y = np.sum(h)
    del h
    assert kept() is not None  # the user dropped it, the tape still needs it
    y.backward()
    assert kept() is None  # released once its VJP ran
    np.testing.assert_allclose(x.grad, np.exp(1.0))


def test_unread_outputs_leave_with_the_user():
    """sin's node does not hold its output: once the user drops it (and nothing reads
    it), it is gone before backward."""
    x = Var(np.ones(4))
    h = np.sin(x)
    gone = weakref.ref(h.value)
    y = np.sum(h * Var(np.full(4, 2.0)))  # the other factor's VJP reads h: kept
    del h
    assert gone() is not None
    z = Var(np.ones(4))
    h2 = np.sin(z)
    gone2 = weakref.ref(h2.value)
    y2 = np.sum(h2 + 1.0)  # add keeps only shapes
    del h2
    assert gone2() is None
    y.backward()
    y2.backward()
    np.testing.assert_allclose(z.grad, np.cos(1.0))



def test_tanh_mlp_keeps_one_activation_per_layer():
    """16 layers of tanh(h @ w + b), 1 MiB activations: the tape holds each tanh output
    (read by tanh's VJP and the next matmul's), not the matmul or add outputs."""
    rng = np.random.default_rng(0)
    ws = [rng.normal(size=(256, 256)) / 16 for _ in range(16)]
    x = rng.normal(size=(512, 256))

    def f(h):
        for w in ws:
            h = np.tanh(h @ w + 0.1)
        return np.sum(h * h)

    mib = peak_mib(value_and_grad(f), x, warm=(x[:2],))
    assert mib < 16 + 6, mib  # 16 activations + a few in flight (was ~48 + few)


def test_checkpoint_node_does_not_keep_its_output():
    x = Var(np.ones(3))
    out = checkpoint(lambda h: np.sin(h) * 2)(x)
    assert out._node[ANS] is UNSAVED
    np.sum(out).backward()
    np.testing.assert_allclose(x.grad, 2 * np.cos(1.0))
