"""Replay of a 100-step numpy pipeline by ``SymbolicModel`` against the same steps written out.

Run: ``.venv/bin/python -m benchmarks.numpy_replay [--rounds N] [--quick]``
(or as the ``numpy`` case of ``python -m benchmarks``).

Requirement: a ``SymbolicModel`` recorded with ``symgraph_numpy`` replays a chain
of 100 elementwise numpy steps in at most 1.00x the time of a plain Python
function that applies the same steps to an ``ndarray`` (no slower), for a
float64 input of shape ``(8,)``, and in at most 1.02x for shape ``(65536,)``.
The direct function is already straight-line code, the floor of the torch
cases, so this case has no separate floor. Shape ``(1024,)`` is
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
in the same round). With ``--strict`` the exit status is 1 if a limit is missed.

A note checks, outside the timing, that a replay keeps nothing but its output
alive: with ``tracemalloc``, the memory still allocated after a call at shape
``(65536,)`` minus the memory before it, against the output's ``nbytes``.
"""

from __future__ import annotations

import gc
import sys
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

import symgraph
import symgraph_numpy as snp
from benchmarks import _harness

CYCLES = 25
# Step k of the pipeline: (name, constant). The constants are Python floats; their
# reprs are exact, so the direct function's literals are the same numbers.
STEPS: list[tuple[str, float | None]] = [
    step
    for k in range(CYCLES)
    for step in (("mul", 1.01 + 0.001 * k), ("add", 0.01 + 0.0005 * k), ("sin", None), ("abs", None))
]
SHAPES: tuple[tuple[int, ...], ...] = ((8,), (1024,), (65536,))
LIMITS: dict[tuple[int, ...], float] = {(8,): 1.00, (65536,): 1.02}
SAMPLE_S = 0.02  # each sample lasts at least this long
PASSES = 3  # samples of each variant per round; a round keeps the fastest
MEMORY_SHAPE = (65536,)

DIRECT = "direct"
DIRECT_BOUND = "direct, bound names (info)"
CHECKED = "symgraph"
UNCHECKED = "symgraph check_inputs=False (info)"
PYTORCH_SYMBOLIC = "pytorch-symbolic"

LEGEND = {
    DIRECT: "baseline; the 100 steps as straight-line code (x = x * 1.01, x = np.sin(x), ...)",
    DIRECT_BOUND: "the same with np.sin and np.abs bound to global names (one attribute lookup less per step)",
    CHECKED: "symgraph.SymbolicModel recorded on symgraph_numpy.Input, check_inputs on (as users get it)",
    UNCHECKED: "the same graph with check_inputs=False",
    PYTORCH_SYMBOLIC: "pytorch_symbolic.SymbolicModel on CustomInput(ndarray), np.sin/np.abs via add_to_graph",
}


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
    _harness.check(checked.check_inputs, "check_inputs should be on by default")
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
    pytorch_symbolic = _harness.import_pytorch_symbolic()
    if pytorch_symbolic is None:
        return None

    def add(func: Callable[[Any], Any]) -> Callable[[Any], Any]:
        return lambda v: pytorch_symbolic.add_to_graph(func, v)

    x = pytorch_symbolic.CustomInput(np.random.default_rng(0).random(shape))
    y = apply_steps(x, add(np.sin), add(np.abs))
    return pytorch_symbolic.SymbolicModel(x, y)  # type: ignore[no-any-return]


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


def build_variants(shape: tuple[int, ...], data: np.ndarray) -> dict[str, Callable[[np.ndarray], Any]]:
    """Every variant for inputs of ``shape`` (the direct function first), checked to give the direct output."""
    direct = make_direct()
    variants: dict[str, Callable[[np.ndarray], Any]] = {
        DIRECT: direct,
        DIRECT_BOUND: make_direct(bound=True),
        **symgraph_models(shape),
    }
    other = pytorch_symbolic_model(shape)
    if other is not None:
        variants[PYTORCH_SYMBOLIC] = other
    expected = direct(data)
    for name, func in variants.items():
        np.testing.assert_array_equal(func(data), expected, err_msg=f"{name} differs from the direct function")
    return variants


def case(quick: bool) -> _harness.Case:
    rng = np.random.default_rng(1)
    have_pytorch_symbolic = False
    rows = []
    memory_model: Callable[[np.ndarray], Any] | None = None
    for shape in SHAPES:
        data = rng.random(shape)
        variants = build_variants(shape, data)
        have_pytorch_symbolic = PYTORCH_SYMBOLIC in variants
        if shape == MEMORY_SHAPE:
            memory_model = variants[CHECKED]
        calls = {name: _harness.calls_per_sample(func, data, SAMPLE_S) for name, func in variants.items()}
        samples = {name: _harness.time_calls(func, data, calls[name]) for name, func in variants.items()}
        rows.append(_harness.Row(str(shape), list(variants), DIRECT, samples, calls))
    assert memory_model is not None
    kept, peak, nbytes = retained_bytes(memory_model, rng.random(MEMORY_SHAPE))
    verdict = "only the output survives" if kept - nbytes < nbytes // 2 else "MORE THAN THE OUTPUT SURVIVES"
    notes = [
        f"numpy {np.__version__}; {len(STEPS)} elementwise steps on float64; every variant checked to give exactly "
        "the direct output.",
        f"Memory at {MEMORY_SHAPE}: {kept} bytes still allocated after a call, output {nbytes} bytes ({verdict}); "
        f"peak {peak} bytes above the start ({peak / nbytes:.2f} outputs).",
    ]
    if not have_pytorch_symbolic:
        notes.append(_harness.PYTORCH_SYMBOLIC_MISSING)
    return _harness.Case(
        name="numpy",
        title=f"{len(STEPS)} elementwise steps, float64, replayed vs written out",
        rows=rows,
        legend=LEGEND,
        rounds=25,
        quick_rounds=4,
        passes=2 if quick else PASSES,
        targets=[_harness.Target(str(shape), CHECKED, limit) for shape, limit in LIMITS.items()],
        notes=notes,
        unit="us",
        log_ratio=True,
    )


CASES: _harness.CaseBuilders = {"numpy": case}


if __name__ == "__main__":
    sys.exit(_harness.main(CASES, "python -m benchmarks.numpy_replay", __doc__))
