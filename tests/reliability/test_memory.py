"""Memory: dropped models leave nothing behind, and models never keep example values alive.

Allocations are measured with :mod:`tracemalloc` after a full collection, once
the library's caches have been warmed up, so only what a model leaks is counted.
"""

from __future__ import annotations

import gc
import linecache
import traceback
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

import symgraph

MiB = 2**20


@pytest.fixture
def traced() -> Iterator[None]:
    """Trace allocations during the test."""
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def traced_now() -> int:
    """Bytes allocated and still alive, after collecting every cycle."""
    gc.collect()
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def eager(v: int) -> tuple[int, int, int]:
    y = (v * 2 + 1) // 3
    q, r = divmod(y, 7)
    return q - r, abs(y), y + 100


def build_call_and_drop(i: int, executor: str) -> None:
    """Build a small model on ``executor``, check two answers, and drop everything."""
    x = symgraph.CustomInput(i)
    y = (x * 2 + 1) // 3
    q, r = symgraph.add_to_graph(divmod, y, 7)
    model = symgraph.SymbolicModel(x, (q - r, abs(y), y + 100), executor=executor)
    assert model(i + 1) == eager(i + 1)
    assert model(-i) == eager(-i)


def build_many(n: int) -> None:
    for i in range(n):
        build_call_and_drop(i, "interpreter" if i % 5 == 0 else "codegen")


def test_dropped_models_release_their_memory(traced: None) -> None:
    build_many(200)  # warm-up: interned names, type and method caches, shared operations
    baseline = traced_now()
    lines = len(linecache.cache)
    build_many(1000)
    growth = traced_now() - baseline
    assert len(linecache.cache) == lines, "generated sources stay registered in linecache"
    assert growth < 1 * MiB, f"1000 dropped models left {growth / MiB:.2f} MiB behind"


def fail_and_format(i: int) -> None:
    """A model whose replay raises; its traceback is formatted, as a logger or a REPL would."""
    x = symgraph.CustomInput(i)
    model = symgraph.SymbolicModel(x, (x * 2) // 3)
    # Caught with ``except ... as``, which unbinds the exception, so its traceback
    # does not keep this frame, and the model in it, alive until a collection.
    try:
        model("not a number")
    except TypeError as exc:
        text = "".join(traceback.format_exception(exc))
    else:
        raise AssertionError("the replay did not raise")
    assert "TypeError" in text and "model(" in text


def test_failed_replays_leave_one_linecache_entry_per_source(traced: None) -> None:
    # Each model has the same source; formatting their tracebacks must not keep
    # one entry (and one copy of the source) per model.
    for i in range(100):
        fail_and_format(i)
    baseline = traced_now()
    lines = len(linecache.cache)
    for i in range(1000):
        fail_and_format(i)
    growth = traced_now() - baseline
    assert len(linecache.cache) <= lines + 1
    assert growth < 1 * MiB, f"1000 failed replays left {growth / MiB:.2f} MiB behind"


class Big:
    """An 8 MB example value whose method returns a new one."""

    def __init__(self, n: int = 0) -> None:
        self.n = n
        self.blob = bytearray(8_000_000)

    def grow(self) -> Big:
        return Big(self.n + 1)


def test_model_does_not_keep_example_values_alive(traced: None) -> None:
    baseline = traced_now()
    x = symgraph.CustomInput(Big())
    y: Any = x
    for _ in range(20):
        y = y.grow()
    models = [symgraph.SymbolicModel(x, y), symgraph.SymbolicModel(x, y, executor="interpreter")]
    held = traced_now() - baseline
    assert held > 20 * 8_000_000, f"the handles should hold 21 example values, {held / MiB:.0f} MiB traced"

    del x, y
    left = traced_now() - baseline
    assert left < 4 * MiB, f"with only the models kept, {left / MiB:.1f} MiB of example values stay alive"
    for model in models:
        with pytest.raises(symgraph.MissingGraphError):
            _ = model.inputs
        result = model(Big(100))
        assert type(result) is Big and result.n == 120
