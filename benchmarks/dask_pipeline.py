"""Independent slow steps of a plain-Python pipeline, run by the ``dask`` executor against ``codegen``.

Run: ``.venv/bin/python -m benchmarks.dask_pipeline [--rounds N] [--quick]``
(or as the ``dask_pipeline`` case of ``python -m benchmarks``).

The pipeline, recorded with ``symgraph.add_to_graph`` on ``symgraph.CustomInput(1)``:
8 independent branches, each an I/O-like wait (``time.sleep``, which releases the
GIL, as reading a file or a socket does) followed by a multiplication, and a
cheap combine (``sum`` of the 8 results). ``codegen`` (the default executor,
baseline) runs the branches one after the other; the ``dask`` executor runs
them as a dask task graph on the threaded scheduler with 8 threads
(``executor_options={"scheduler": "threads", "num_workers": 8}``), so the waits
overlap. Every variant is checked to give the plain function's result first.

Requirement: for 8 branches of 20 ms, the dask executor takes at most 0.5x the
time of codegen. Ideally the branches overlap completely, 20 ms against 160 ms
(0.125x), plus dask's cost of building and scheduling a graph of 10 tasks
(about a millisecond on this machine); the limit leaves room for a shared,
loaded 2-core machine, where threads wake late, while still failing if the
branches do not overlap (four or more of eight in sequence would miss it).
Informative variants: the same dask graph on the synchronous scheduler (no
parallelism: dask's overhead on top of the sequential waits), and a row with
no wait at all, whose ratio is the price of a task graph for steps too cheap to
gain from it (codegen replays such a plan in microseconds).

A sample times a batch of calls, as many as make it last at least 0.2 s, with
the garbage collector off. Every round takes two samples of each variant, in an
order rotated from pass to pass and from round to round, and keeps each
variant's fastest; the report gives the median time per call and the median of
the per-round ratios to codegen. With ``--strict`` the exit status is 1 if the
limit is missed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import symgraph
from benchmarks import _harness

BRANCHES = 8
WAITS_S = (0.02, 0.0)  # per branch, one row each
LIMIT = 0.5  # dask / codegen at 20 ms per branch
SAMPLE_S = 0.2  # each sample lasts at least this long
PASSES = 2  # samples of each variant per round; a round keeps the fastest

CODEGEN = "codegen"
DASK = "symgraph dask, threads"
DASK_SYNC = "symgraph dask, sync (info)"

LEGEND = {
    CODEGEN: "baseline; symgraph.SymbolicModel with the default codegen executor: the branches in sequence",
    DASK: 'executor="dask", scheduler="threads", num_workers=8: the branches as parallel dask tasks',
    DASK_SYNC: 'executor="dask", scheduler="sync": the same graph, one task at a time',
}


def fetch(x: int, i: int, wait_s: float) -> int:
    """One branch: an I/O-like wait, then a little arithmetic."""
    if wait_s:
        time.sleep(wait_s)
    return x * (i + 1)


def pipeline(call: Callable[..., Any], x: Any, wait_s: float) -> Any:
    """``call`` is ``symgraph.add_to_graph`` to record, a direct call to run eagerly."""
    return call(sum, [call(fetch, x, i, wait_s) for i in range(BRANCHES)])


def direct(func: Callable[..., Any], *args: Any) -> Any:
    return func(*args)


def label(wait_s: float) -> str:
    if wait_s:
        return f"{BRANCHES} branches x {wait_s * 1e3:g} ms"
    return f"{BRANCHES} branches, no wait (info)"


def build_variants(wait_s: float) -> dict[str, Callable[[int], Any]]:
    """Every variant over one recorded graph, checked to give the plain function's result."""
    x = symgraph.CustomInput(1)
    y = pipeline(symgraph.add_to_graph, x, wait_s)
    variants: dict[str, Callable[[int], Any]] = {
        CODEGEN: symgraph.SymbolicModel(x, y),
        DASK: symgraph.SymbolicModel(
            x, y, executor="dask", executor_options={"scheduler": "threads", "num_workers": BRANCHES}
        ),
        DASK_SYNC: symgraph.SymbolicModel(x, y, executor="dask", executor_options={"scheduler": "sync"}),
    }
    for value in (3, 7):
        expected = pipeline(direct, value, wait_s)
        for name, model in variants.items():
            _harness.check(model(value) == expected, f"{name} differs from the plain function")
    return variants


def case(quick: bool) -> _harness.Case:
    import dask

    rows = []
    for wait_s in WAITS_S:
        variants = build_variants(wait_s)
        calls = {name: _harness.calls_per_sample(func, 5, SAMPLE_S) for name, func in variants.items()}
        samples = {name: _harness.time_calls(func, 5, calls[name]) for name, func in variants.items()}
        rows.append(_harness.Row(label(wait_s), list(variants), CODEGEN, samples, calls))
    return _harness.Case(
        name="dask_pipeline",
        title=f"{BRANCHES} independent I/O-like steps and a combine: dask executor vs codegen",
        rows=rows,
        legend=LEGEND,
        rounds=15,
        quick_rounds=3,
        passes=PASSES,
        targets=[_harness.Target(label(WAITS_S[0]), DASK, LIMIT)],
        notes=[
            f"dask {dask.__version__}; each branch waits with time.sleep (the GIL released), then multiplies; "
            "every variant checked to give the plain function's result.",
            f"Full overlap would give {1 / BRANCHES:.3f}x at 20 ms per branch; the rest is dask's cost per call.",
        ],
        unit="ms",
    )


CASES: _harness.CaseBuilders = {"dask_pipeline": case}


if __name__ == "__main__":
    sys.exit(_harness.main(CASES, "python -m benchmarks.dask_pipeline", __doc__))
