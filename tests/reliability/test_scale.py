"""A million-node chain: recorded, built, replayed, interpreted and pickled.

Every graph walk of the library is iterative, so depth is bounded by memory,
not by the recursion limit; this test holds it to that on a chain of 10**6
additions. It prints the time of each phase (run with ``-s`` to see them); it
asserts only the answers, never the times.
"""

from __future__ import annotations

import pickle
import time

import pytest

import symgraph

N = 10**6


@pytest.mark.slow
def test_million_node_chain() -> None:
    times: dict[str, float] = {}
    start = time.perf_counter()

    def lap(phase: str) -> None:
        nonlocal start
        now = time.perf_counter()
        times[phase] = now - start
        start = now

    x = symgraph.CustomInput(0)
    y = x
    for _ in range(N):
        y = y + 1
    lap("record")
    assert y.v == N

    model = symgraph.SymbolicModel(x, y)
    lap("build (codegen)")
    assert model(5) == N + 5
    lap("first call (codegen)")
    assert model(-N) == 0

    interpreted = symgraph.SymbolicModel(x, y, executor="interpreter")
    lap("build (interpreter)")
    assert interpreted(5) == N + 5
    lap("first call (interpreter)")

    data = pickle.dumps(model)
    lap("pickle dump")
    loaded = pickle.loads(data)
    lap("pickle load")
    assert loaded(5) == N + 5
    assert loaded(-N) == 0
    lap("first call (loaded)")

    width = max(map(len, times))
    print(f"\n{N:,}-node chain, pickle {len(data) / 2**20:.1f} MiB:")
    for phase, seconds in times.items():
        print(f"  {phase:<{width}}  {seconds:8.3f} s")
