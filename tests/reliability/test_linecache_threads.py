"""Generated source in ``linecache``: safe while other threads read it, and bounded (issue 11, item 12).

Tracebacks from inside a replay show the generated line. Its ``linecache``
entry is never removed, since ``linecache.checkcache()`` lists the keys and
then reads each, so a removal from another thread in between raises
``KeyError`` there; instead, a dead replay's entry is emptied and its name
reused. The oracle of every test is the model's own source, or the error that
the same code raises eagerly.
"""

from __future__ import annotations

import gc
import inspect
import linecache
import sys
import threading
import time
import traceback
import tracemalloc
import weakref
from collections.abc import Callable
from typing import Any

import pytest

import symgraph
import symgraph.plugin


def fragile(value: int) -> int:
    if value < 0:
        raise ValueError(f"negative value {value}")
    return value * 10


def graph(call: Callable[..., Any], x: Any, k: int) -> Any:
    """Each ``k`` gives another source (ints are written into the code)."""
    return call(fragile, x * 3 + k) - 1


def direct(func: Callable[..., Any], *args: Any) -> Any:
    return func(*args)


def build(k: int) -> symgraph.SymbolicModel:
    x = symgraph.CustomInput(1)  # fragile() succeeds while recording
    return symgraph.SymbolicModel(x, graph(symgraph.add_to_graph, x, k))


def failing_line(model: symgraph.SymbolicModel) -> tuple[int, str]:
    """The number and text of the generated line that calls ``fragile``."""
    (j,) = [j for j, step in enumerate(model.plan.steps) if isinstance(step.op, symgraph.plugin.Call)]
    number = symgraph.plugin.generate(model.plan).lines[j]
    return number, model.source.splitlines()[number - 1].strip()


def replay_error(model: symgraph.SymbolicModel, k: int, value: int = -1000) -> ValueError:
    """What calling ``build(k)`` raises, checked against the eager error."""
    with pytest.raises(ValueError) as eager:
        graph(direct, value, k)
    try:
        model(value)
    except ValueError as exc:
        assert str(exc) == str(eager.value)
        return exc
    raise AssertionError("the replay did not raise")


def shows_line(text: str, model: symgraph.SymbolicModel) -> bool:
    number, line = failing_line(model)
    return f", line {number}, in replay\n    {line}\n" in text


def test_a_failing_replay_shows_its_generated_line():
    model = build(0)
    error = replay_error(model, 0)
    assert shows_line("".join(traceback.format_exception(error)), model)
    filename = model._program.runner.__code__.co_filename
    assert linecache.getlines(filename) == model.source.splitlines(keepends=True)
    assert inspect.getsource(model._program.runner) == model.source


def test_a_traceback_keeps_its_lines_after_the_model_is_dropped(no_collection):
    model = build(7)
    error = replay_error(model, 7)
    expected = "".join(traceback.format_exception(error))
    assert shows_line(expected, model)
    del model
    others = {k: build(k) for k in range(20, 30)}  # other sources, compiled after the drop
    assert "".join(traceback.format_exception(error)) == expected
    for k, other in others.items():
        assert shows_line("".join(traceback.format_exception(replay_error(other, k))), other)


def test_dropped_models_leave_linecache_as_it_was(no_collection):
    del build(-1)._program  # one model first, for a name to reuse
    before = len(linecache.cache)
    code = None
    for k in range(1000):
        model = build(k)  # 1,000 different sources
        assert model(2) == graph(direct, 2, k)
        code = weakref.ref(model._program.runner.__code__)
        filename = model._program.runner.__code__.co_filename
        del model
        assert code() is None  # freed at once, with its source
        assert linecache.getlines(filename) == []
    assert len(linecache.cache) == before


def test_dropped_models_leave_no_memory_behind():
    """Each model once left ~70 bytes behind for good (21 KiB a window), with its unique file name; now none."""
    for k in range(200):
        build(k)(2)
    growth = []
    tracemalloc.start()
    try:
        for window in range(3):
            gc.collect()  # other parts of a model are freed by the collector
            start = tracemalloc.get_traced_memory()[0]
            for k in range(300):
                assert build(10_000 * window + k)(2) == graph(direct, 2, 10_000 * window + k)
            gc.collect()
            growth.append(tracemalloc.get_traced_memory()[0] - start)
    finally:
        tracemalloc.stop()
    # A window may hold a one-off growth (a table of the interpreter doubling); a leak shows in all.
    assert min(growth) < 8 * 1024, growth


def test_models_built_and_dropped_while_another_thread_reads_linecache():
    """For about a second; with the entries removed when models died, checkcache() failed within milliseconds."""
    failures: list[BaseException] = []
    done = threading.Event()
    reads = [0]
    keeper = build(0)  # a model whose traceback the reader formats, over and over
    filename = keeper._program.runner.__code__.co_filename

    def builder() -> None:
        try:
            deadline = time.monotonic() + 1.0
            k = 0
            while time.monotonic() < deadline:
                k = (k + 1) % 500
                model = build(k)
                assert model(3) == graph(direct, 3, k)
                if k % 10 == 0:
                    assert shows_line("".join(traceback.format_exception(replay_error(model, k))), model)
                del model
        except BaseException as exc:
            failures.append(exc)
        finally:
            done.set()

    def reader() -> None:
        try:
            while not done.is_set() or reads[0] == 0:
                linecache.checkcache()
                assert linecache.getlines(filename) == keeper.source.splitlines(keepends=True)
                try:
                    keeper(-4)
                except ValueError:
                    assert shows_line(traceback.format_exc(), keeper)
                else:
                    raise AssertionError("the replay did not raise")
                reads[0] += 1
        except BaseException as exc:
            failures.append(exc)

    # Entries of real files make checkcache() slow (a stat each, without the GIL).
    for module in (threading, traceback, inspect, weakref):
        linecache.getlines(module.__file__)
    threads = [threading.Thread(target=builder), threading.Thread(target=reader)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns far more often, inside checkcache() too
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
            assert not thread.is_alive()
    finally:
        sys.setswitchinterval(interval)
    if failures:
        raise failures[0]
    assert reads[0] > 0
