"""Replay of a 100-step numpy pipeline by ``SymbolicModel`` against the same steps written out.

Run: ``.venv/bin/python -m benchmarks.numpy_replay [--repeats N]``

Requirement: a ``SymbolicModel`` recorded with ``symgraph_numpy`` replays a chain
of 100 elementwise numpy steps in at most 1.10x the time of a plain Python
function that applies the same steps to an ``ndarray``, for a float64 input of
shape ``(8,)``, and in at most 1.02x for shape ``(65536,)``. Shape ``(1024,)`` is
reported without a limit. The pipeline cycles 25 times through ``* a``, ``+ b``,
``np.sin`` and ``np.abs``, with Python float constants that change from cycle to
cycle (so that the output still depends on the input after 100 steps).

The model is built once per shape on ``symgraph_numpy.Input((n,))`` and measured as
users get it, with ``check_inputs`` on (rank, dtype kind and size checked on every
call). Informative rows: the direct function with ``np.sin`` and ``np.abs``
bound to global names, the same graph with ``check_inputs=False``, and, when
the ``pytorch-symbolic`` package is installed, its ``SymbolicModel`` built on
``CustomInput(ndarray)`` with default settings. Every variant is checked to give
exactly the direct function's output before timing.

A sample times a batch of calls on the same input array, with the garbage
collector off; the number of calls is chosen per shape and variant, as ``timeit``
does, so that a sample takes at least 20 ms. Every round takes three samples of
each variant, in an order rotated from one pass to the next and from round to
round, and keeps each variant's fastest, the one least disturbed by the rest of
the machine. The report gives the median over rounds of the time per call and
the median of the per-round ratios to the direct function (per call, measured
in the same round). The exit status is 1 if a limit is missed.

A last line checks, outside the timing, that a replay keeps nothing but its
output alive: with ``tracemalloc``, the memory still allocated after a call at
shape ``(65536,)`` minus the memory before it, against the output's ``nbytes``.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

import symgraph
import symgraph_numpy as snp

CYCLES = 25
# Step k of the pipeline: (name, constant). The constants are Python floats; their
# reprs are exact, so the direct function's literals are the same numbers.
STEPS: list[tuple[str, float | None]] = [
    step
    for k in range(CYCLES)
    for step in (("mul", 1.01 + 0.001 * k), ("add", 0.01 + 0.0005 * k), ("sin", None), ("abs", None))
]
SHAPES: tuple[tuple[int, ...], ...] = ((8,), (1024,), (65536,))
LIMITS: dict[tuple[int, ...], float] = {(8,): 1.10, (65536,): 1.02}
SAMPLE_S = 0.02  # each sample lasts at least this long
PASSES = 3  # samples of each variant per round; a round keeps the fastest
MEMORY_SHAPE = (65536,)

DIRECT = "direct"
DIRECT_BOUND = "direct, sin and abs bound to names (info)"
CHECKED = "SymbolicModel"
UNCHECKED = "SymbolicModel, check_inputs=False (info)"
PYTORCH_SYMBOLIC = "pytorch-symbolic SymbolicModel (info)"


def make_direct(bound: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    """The baseline: the 100 steps as straight-line code, one statement per step.

    This is the code a user would type for speed: no loop over a list of steps
    and no function call per step, float literals for the constants, and
    ``np.sin(x)`` spelled as usual. A loop over ``STEPS`` would add interpreter
    work of its own and flatter the model. The source is built from ``STEPS``
    rather than typed out, which gives the same bytecode as 100 typed lines.
    With ``bound``, ``np.sin`` and ``np.abs`` are global names of their own
    (``sin(x)``), which saves an attribute lookup per step, as the generated
    replay code does (it loads each function as one global name); that variant
    is the tightest baseline and is reported for information.
    """
    prefix = "" if bound else "np."
    statements = {
        "mul": "x = x * {!r}",
        "add": "x = x + {!r}",
        "sin": f"x = {prefix}sin(x)",
        "abs": f"x = {prefix}abs(x)",
    }
    body = "".join(f"    {statements[name].format(c)}\n" for name, c in STEPS)
    namespace: dict[str, Any] = {"np": np, "sin": np.sin, "abs": np.abs}
    exec(f"def direct(x):\n{body}    return x\n", namespace)
    return namespace["direct"]  # type: ignore[no-any-return]


def apply_steps(x: Any, sin: Callable[[Any], Any], abs_: Callable[[Any], Any]) -> Any:
    """Apply ``STEPS`` to ``x`` (used to record the pipeline on symbolic values)."""
    for name, c in STEPS:
        if name == "mul":
            x = x * c
        elif name == "add":
            x = x + c
        elif name == "sin":
            x = sin(x)
        else:
            x = abs_(x)
    return x


def symgraph_models(shape: tuple[int, ...]) -> dict[str, Callable[[np.ndarray], Any]]:
    """The ``SymbolicModel`` with input checks (the default) and without, over one recorded graph."""
    x = snp.Input(shape)
    y = apply_steps(x, np.sin, np.abs)
    checked = symgraph.SymbolicModel(x, y)
    assert checked.check_inputs, "check_inputs should be on by default"
    return {CHECKED: checked, UNCHECKED: symgraph.SymbolicModel(x, y, check_inputs=False)}


def pytorch_symbolic_model(shape: tuple[int, ...]) -> Callable[[np.ndarray], Any] | None:
    """pytorch-symbolic's ``SymbolicModel`` over the same steps, or ``None`` if it is not installed.

    pytorch-symbolic records operators on a ``CustomInput`` of any type, each as
    two layers: one that reads the bound method (``x.__mul__``) and one that
    calls it. Its symbolic values do not take part in numpy's dispatch, so
    ``np.sin`` and ``np.abs`` are recorded with its ``add_to_graph``, which wraps
    any function as a layer. Its replay calls the 150 layers (``nn.Module``
    objects) in a loop from its generated ``forward``.
    """
    try:
        import pytorch_symbolic
    except ImportError:
        return None

    def add(func: Callable[[Any], Any]) -> Callable[[Any], Any]:
        return lambda v: pytorch_symbolic.add_to_graph(func, v)

    x = pytorch_symbolic.CustomInput(np.random.default_rng(0).random(shape))
    y = apply_steps(x, add(np.sin), add(np.abs))
    return pytorch_symbolic.SymbolicModel(x, y)  # type: ignore[no-any-return]


def batch_timer(func: Callable[[np.ndarray], Any], data: np.ndarray, calls: int) -> Callable[[], int]:
    """A function that calls ``func(data)`` ``calls`` times and returns the nanoseconds taken."""

    def sample() -> int:
        t0 = time.perf_counter_ns()
        for _ in range(calls):
            func(data)
        return time.perf_counter_ns() - t0

    return sample


def calls_per_sample(func: Callable[[np.ndarray], Any], data: np.ndarray) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50... calls that take at least ``SAMPLE_S``, as ``timeit`` picks."""
    calls = 1
    while True:
        for factor in (1, 2, 5):
            n = calls * factor
            if batch_timer(func, data, n)() >= SAMPLE_S * 1e9:
                return n
        calls *= 10


def measure_round(samples: dict[str, Callable[[], int]], round_index: int) -> dict[str, int]:
    """Fastest of ``PASSES`` samples of every variant, in nanoseconds, in an order rotated between passes."""
    names = list(samples)
    times: dict[str, list[int]] = {name: [] for name in names}
    gc.disable()
    try:
        for k in range(PASSES):
            shift = (round_index + k) % len(names)
            for name in names[shift:] + names[:shift]:
                times[name].append(samples[name]())
    finally:
        gc.enable()
    return {name: min(t) for name, t in times.items()}


def retained_bytes(func: Callable[[np.ndarray], Any], data: np.ndarray) -> tuple[int, int, int]:
    """Bytes still allocated after ``func(data)`` returns, the peak above the start, and the output's size."""
    func(data)  # warm: nothing allocated once and for all is counted
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        out = func(data)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return after - before, peak - before, out.nbytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    direct, direct_bound = make_direct(), make_direct(bound=True)
    rng = np.random.default_rng(1)
    have_pytorch_symbolic = False
    # shape -> variant -> (sample function, calls per sample)
    cases: dict[tuple[int, ...], dict[str, tuple[Callable[[], int], int]]] = {}
    memory_model: Callable[[np.ndarray], Any] | None = None
    for shape in SHAPES:
        data = rng.random(shape)
        variants: dict[str, Callable[[np.ndarray], Any]] = {
            DIRECT: direct,
            DIRECT_BOUND: direct_bound,
            **symgraph_models(shape),
        }
        other = pytorch_symbolic_model(shape)
        if other is not None:
            variants[PYTORCH_SYMBOLIC] = other
            have_pytorch_symbolic = True
        expected = direct(data)
        for name, func in variants.items():
            np.testing.assert_array_equal(func(data), expected, err_msg=f"{name} differs from the direct function")
        if shape == MEMORY_SHAPE:
            memory_model = variants[CHECKED]
        cases[shape] = {}
        for name, func in variants.items():
            calls = calls_per_sample(func, data)
            cases[shape][name] = (batch_timer(func, data, calls), calls)
    samples = {shape: {name: sample for name, (sample, _) in case.items()} for shape, case in cases.items()}
    for r in range(2):  # warm-up
        for shape_samples in samples.values():
            measure_round(shape_samples, r)
    # Per round and shape, nanoseconds per call of each variant.
    rounds = []
    for r in range(args.repeats):
        per_call: dict[tuple[int, ...], dict[str, float]] = {}
        for shape, shape_samples in samples.items():
            times = measure_round(shape_samples, r)
            per_call[shape] = {name: times[name] / cases[shape][name][1] for name in times}
        rounds.append(per_call)

    print(
        f"numpy {np.__version__}, Python {sys.version.split()[0]}, {len(STEPS)} elementwise steps, float64, "
        f"{args.repeats} rounds x {PASSES} samples per variant"
    )
    print()
    print(
        f"| {'shape':<10} | {'variant':<41} | {'calls/sample':>12} | {'us/call':>9} | {'ratio to direct':>15} "
        f"| {'limit':>5} | {'verdict':>7} |"
    )
    print(f"|{'-' * 12}|{'-' * 43}|{'-' * 13}:|{'-' * 10}:|{'-' * 16}:|{'-' * 6}:|{'-' * 8}:|")
    failed = False
    for shape, case in cases.items():
        for name, (_, calls) in case.items():
            per_call_us = statistics.median(r[shape][name] for r in rounds) / 1000
            ratio = statistics.median(r[shape][name] / r[shape][DIRECT] for r in rounds)
            limit = LIMITS.get(shape) if name == CHECKED else None
            verdict = "" if limit is None else "PASS" if ratio <= limit else "FAIL"
            failed = failed or verdict == "FAIL"
            limit_text = "" if limit is None else f"{limit:.2f}"
            print(
                f"| {shape!s:<10} | {name:<41} | {calls:>12} | {per_call_us:>9.2f} | {ratio:>14.3f}x "
                f"| {limit_text:>5} | {verdict:>7} |"
            )
    print()
    limits = ", ".join(f"{limit:.2f} at {shape}" for shape, limit in LIMITS.items())
    print(f"Limits: SymbolicModel / direct <= {limits}; the (info) rows and (1024,) are informative.")
    if not have_pytorch_symbolic:
        print("pytorch-symbolic is not installed (pip install pytorch-symbolic): its rows are skipped.")
    assert memory_model is not None
    kept, peak, nbytes = retained_bytes(memory_model, rng.random(MEMORY_SHAPE))
    note = "only the output survives" if kept - nbytes < nbytes // 2 else "MORE THAN THE OUTPUT SURVIVES"
    print(
        f"Memory at {MEMORY_SHAPE}: {kept} bytes still allocated after a call, output {nbytes} bytes "
        f"({note}); peak {peak} bytes above the start ({peak / nbytes:.2f} outputs)."
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
