"""Recording, building and replaying from several threads at once.

Eight threads run the same recording code, each on its own graph, then replay
their own models and one model shared by all of them, many times, with a short
switch interval so that the interpreter hands the GIL over inside the
library's own code. Every answer must equal eager evaluation, and no thread may
raise.
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import symgraph

N_THREADS = 8
N_CALLS = 800  # per thread and model: long enough for the threads to interleave many times


def eager_call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """What ``symgraph.add_to_graph`` records, run now."""
    return func(*args, **kwargs)


def generic(text: Any, n: Any, call: Callable[..., Any]) -> tuple[Any, ...]:
    """Shared user code on generic values: symbolic with ``call=add_to_graph``, eager with ``eager_call``."""
    parts = text.upper().split(",")
    first, *rest = parts
    joined = call("-".join, parts)
    return parts[n % 3] * 2, abs(n * 3 - 7) // 2, joined + text, call(sorted, rest), first.lower()


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Make the interpreter switch threads far more often than it normally does."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def run_threads(work: Callable[[int, threading.Barrier], None]) -> None:
    """Run ``work(i, barrier)`` in each thread; fail with every thread's traceback if any raised."""
    barrier = threading.Barrier(N_THREADS, timeout=60)
    errors: list[str] = []
    lock = threading.Lock()

    def target(i: int) -> None:
        try:
            work(i, barrier)
        except BaseException:
            with lock:
                errors.append(f"thread {i}:\n{traceback.format_exc()}")
            barrier.abort()  # the others would otherwise wait for this one until the timeout

    threads = [threading.Thread(target=target, args=(i,), name=f"symgraph-{i}") for i in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    # A thread whose barrier was aborted by another reports BrokenBarrierError; the first error is the cause.
    assert not errors, "\n".join(errors)


def generic_inputs(i: int, k: int) -> tuple[str, int]:
    return f"t{i},k{k},{'x' * (k % 4)}", i * 1000 + k - 500


def test_generic_models_in_threads(fast_switching: None) -> None:
    text, n = symgraph.CustomInput("a,b,c"), symgraph.CustomInput(4)
    shared = symgraph.SymbolicModel((text, n), generic(text, n, symgraph.add_to_graph))

    def work(i: int, barrier: threading.Barrier) -> None:
        barrier.wait()
        models = []
        for executor in ("codegen", "interpreter"):
            t, m = symgraph.CustomInput(f"p{i},q,r"), symgraph.CustomInput(i)
            models.append(symgraph.SymbolicModel((t, m), generic(t, m, symgraph.add_to_graph), executor=executor))
        barrier.wait()
        for k in range(N_CALLS):
            data = generic_inputs(i, k)
            expected = generic(*data, eager_call)
            for model in (*models, shared):
                assert model(*data) == expected
            assert shared.interpret(*data) == expected

    run_threads(work)


def test_numpy_models_in_threads(fast_switching: None) -> None:
    np = pytest.importorskip("numpy")
    snp = pytest.importorskip("symgraph_numpy")

    def numeric(x: Any, w: Any) -> tuple[Any, ...]:
        centred = (x - x.mean(axis=0)) / (x.std(axis=0) + 1.0)
        return centred, (x @ w).sum(axis=1), np.abs(x[1:, ::2]) * 3, np.maximum(centred, 0.0).max()

    def check(got: tuple[Any, ...], want: tuple[Any, ...]) -> None:
        assert len(got) == len(want)
        for g, e in zip(got, want, strict=True):
            assert type(g) is type(e) and np.result_type(g) == np.result_type(e)
            np.testing.assert_array_equal(g, e)

    x, w = snp.Input((None, 4)), symgraph.CustomInput(np.ones((4, 2)))
    shared = symgraph.SymbolicModel((x, w), numeric(x, w))

    def work(i: int, barrier: threading.Barrier) -> None:
        rng = np.random.default_rng(i)
        barrier.wait()
        xi, wi = snp.Input((None, 4)), symgraph.CustomInput(np.zeros((4, 2)))
        own = symgraph.SymbolicModel((xi, wi), numeric(xi, wi))
        barrier.wait()
        for k in range(N_CALLS // 4):
            data = (rng.standard_normal((k % 5 + 2, 4)), rng.standard_normal((4, 2)))
            expected = numeric(*data)
            check(own(*data), expected)
            check(shared(*data), expected)
            check(shared.interpret(*data), expected)

    run_threads(work)
