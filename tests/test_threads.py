"""Trace state is per thread (as JAX's): one thread's transforms never see, pop or number
another thread's traces. Interleavings are forced with ``threading.Event`` so each test is
deterministic; the stress test runs grad, hessian and vmap(grad) side by side."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import numpy as np
import pytest

import pycograd
from pycograd import grad, hessian, vmap

WAIT = 10.0


def run_threads(*bodies: Callable[[], object]) -> list:
    """Run each body in its own thread; return results (re-raising the first error)."""
    results: list = [None] * len(bodies)
    errors: list = [None] * len(bodies)

    def wrap(i: int, body: Callable[[], object]) -> None:
        try:
            results[i] = body()
        except BaseException as e:  # noqa: BLE001 - handed back to the test thread
            errors[i] = e

    threads = [threading.Thread(target=wrap, args=(i, b)) for i, b in enumerate(bodies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
        assert not t.is_alive(), "a thread hung"
    for e in errors:
        if e is not None:
            raise e
    return results


def cube_third(y):
    return y ** 3 / 3.0


def b_nested(x):
    """d/dx [d/dy (x y^2) at y = x] = d/dx 2x^2 = 4x: 8.0 at x = 2. The inner function mixes
    the outer tracer (x) with the inner one (y), so the two levels must be told apart."""
    return grad(lambda y: x * y ** 2, 0)(x)


def test_nested_grad_while_other_thread_finishes_nested_grad():
    """A is inside grad(grad(f)) when B enters its outer grad; A then finishes (popping
    twice) while B is still inside: B's nested gradient must be 8.0 (was 0.0)."""
    a_in, b_in, a_done = threading.Event(), threading.Event(), threading.Event()

    def a_inner(y):
        a_in.set()
        assert b_in.wait(WAIT)
        return cube_third(y)

    def b_outer(x):
        assert a_in.wait(WAIT)
        b_in.set()
        assert a_done.wait(WAIT)
        return b_nested(x)

    def body_a():
        try:
            return grad(grad(a_inner, 0), 0)(4.0)  # second derivative 2y: 8.0 at 4
        finally:
            a_done.set()

    ra, rb = run_threads(body_a, lambda: grad(b_outer, 0)(2.0))
    assert float(ra) == pytest.approx(8.0)
    assert float(rb) == pytest.approx(8.0)


@pytest.mark.parametrize("nested", [False, True])
def test_grads_interleaved_out_of_order(nested):
    """Two grads whose pushes and pops interleave out of LIFO order across threads: A's
    grad opens, B's opens, A's closes while B's is open. No spurious LeakedTracerError
    when B then differentiates again inside (its inner level must not collide with its
    outer one), and both gradients are right."""
    a_in, b_in, a_done = threading.Event(), threading.Event(), threading.Event()

    def a_fun(x):
        y = x * x
        a_in.set()
        assert b_in.wait(WAIT)
        return y * x  # d/dx x^3 = 3x^2: 12.0 at 2

    def b_fun(x):
        assert a_in.wait(WAIT)
        y = np.sin(x)
        b_in.set()
        assert a_done.wait(WAIT)
        return b_nested(x) + y if nested else y * 2.0

    def body_a():
        try:
            return grad(a_fun, 0)(2.0)
        finally:
            a_done.set()

    ra, rb = run_threads(body_a, lambda: grad(b_fun, 0)(2.0))
    assert float(ra) == pytest.approx(12.0)
    want = 8.0 + np.cos(2.0) if nested else 2.0 * np.cos(2.0)
    assert float(rb) == pytest.approx(want)


def test_tracer_leaked_to_another_thread_raises():
    """A traced value handed to another thread's transform is an escaped tracer."""
    leaked: list = []
    inside, used = threading.Event(), threading.Event()

    def keep(x):
        leaked.append(x)
        inside.set()
        assert used.wait(WAIT)
        return x * 2.0

    def other():
        assert inside.wait(WAIT)
        try:
            return grad(lambda y: y * leaked[0], 0)(1.0)
        finally:
            used.set()

    with pytest.raises(pycograd.LeakedTracerError):
        run_threads(lambda: grad(keep, 0)(3.0), other)


def test_stress_grad_hessian_vmap_grad():
    """4 threads, each looping over grad, hessian, vmap(grad), grad(grad) and a routed
    grad, all results exact."""
    start = threading.Barrier(4)

    def f(x):
        return np.sum(np.sin(x) * x ** 2)

    def df(x):
        return np.cos(x) * x ** 2 + 2 * x * np.sin(x)

    def d2f(x):
        return np.diag(-np.sin(x) * x ** 2 + 4 * x * np.cos(x) + 2 * np.sin(x))

    def body(seed: int) -> bool:
        rng = np.random.default_rng(seed)
        start.wait(WAIT)
        for _ in range(30):
            x = rng.normal(size=3)
            np.testing.assert_allclose(grad(f, 0)(x), df(x), rtol=1e-10)
            np.testing.assert_allclose(hessian(f)(x), d2f(x), rtol=1e-9, atol=1e-12)
            xs = rng.normal(size=(4, 3))
            np.testing.assert_allclose(vmap(grad(f, 0))(xs), df(xs), rtol=1e-10)
            np.testing.assert_allclose(grad(grad(lambda s: s ** 3 / 3.0, 0), 0)(x[0]), 2 * x[0])
            # routed code (math.sin) runs under the routing lock: serialized, still exact
            np.testing.assert_allclose(grad(lambda s: math.sin(s) * s, 0)(x[0]),
                                       math.cos(x[0]) * x[0] + math.sin(x[0]))
        return True

    assert run_threads(*(lambda s=s: body(s) for s in range(4))) == [True] * 4
