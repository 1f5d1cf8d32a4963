"""Graph build time: against graph size, and for a convolutional model against pytorch-symbolic.

Run: ``.venv/bin/python -m benchmarks.build_scaling [--rounds N] [--quick] [--cases build_scaling conv_build]``
(or as the ``build_scaling`` and ``conv_build`` cases of ``python -m benchmarks``).

``build_scaling``: a chain of ``x = x + 1`` on ``symgraph.CustomInput(0)``, of
1,000, 10,000, 100,000 and 1,000,000 nodes. Building is recording the chain plus
``symgraph.SymbolicModel(x, y)`` (selecting the subgraph, ordering it,
generating and compiling the code; from 2,000 steps on, the code is compiled in
pieces of that many steps, see ``symgraph._codegen.PIECE_STEPS``); both parts
and one replay (checked to give ``n + 1``) are timed on their own. A round
builds every size once, in an order rotated from round to round, each in a
fresh process that imports only symgraph and first builds an untimed
1,000-node chain, with the garbage collector on (its scans of the growing graph
are part of what users pay) after a ``gc.collect()``; ratios are paired with the
10,000-node build of the same round, and the 1,000,000-node build also with the
100,000-node one. A round takes about half a minute, most of it the
million-node chain, so the case runs 5 rounds (2 with ``--quick``) and no
warm-up round: every build has a fresh process, which a warm-up round would not
warm. Targets, each over a factor of ten in size (linear would be 10x): the
100,000-node build takes at most 11x the 10,000-node one, and the
1,000,000-node build at most 11x the 100,000-node one.

``conv_build``: 16 ``nn.Conv2d(64, 64, 3, padding=1)`` on a 224 px input, batch 1
(the example tensor an ``Input`` holds). Building the model from an ``Input``
runs every layer on the example, so the baseline is that work alone: the 16
layers applied to a ``(1, 64, 224, 224)`` tensor under ``torch.no_grad()``. The
variants build the model as a user would, with grad enabled: symgraph
(``symgraph_torch.Input``, ``layer(x)``, ``SymbolicModel``) and pytorch-symbolic
(``pytorch_symbolic.Input``, ``x(layer)``, ``SymbolicModel``; skipped if not
importable). The built models are checked to give exactly the eager output.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import symgraph
from benchmarks import _harness

SIZES = (1_000, 10_000, 100_000, 1_000_000)
BASE_SIZE = 10_000
WARMUP_SIZE = 1_000
LIMIT = 11.0

BUILD = "record + model"
RECORD = "record (info)"
MODEL = "model (info)"
REPLAY = "replay once (info)"

CONV_LAYERS = 16
CONV_PX = 224
EAGER = "eager forward"
SYMGRAPH = "symgraph build"
PYTORCH_SYMBOLIC = "pytorch-symbolic build"


def label(n: int) -> str:
    return f"{n:,} nodes"


def record_chain(n: int) -> tuple[symgraph.SymbolicData, symgraph.SymbolicData]:
    """The input and the end of a recorded ``n``-node chain of ``x = x + 1``."""
    x = symgraph.CustomInput(0)
    y = x
    for _ in range(n):
        y = y + 1
    return x, y


def measure(n: int) -> tuple[float, float, float]:
    """Seconds to record an ``n``-node chain, to build its model, and to replay it once."""
    t0 = time.perf_counter()
    x, y = record_chain(n)
    t1 = time.perf_counter()
    model = symgraph.SymbolicModel(x, y)
    t2 = time.perf_counter()
    result = model(1)
    t3 = time.perf_counter()
    _harness.check(result == n + 1, f"the {n}-node chain replayed to {result}")
    return t1 - t0, t2 - t1, t3 - t2


def _measure_in_this_process(n: int) -> tuple[float, float, float]:
    measure(WARMUP_SIZE)  # untimed: what a first build pays once (caches, lazy imports) is not the size's cost
    gc.collect()
    return measure(n)


def measure_scaling_round(round_index: int) -> _harness.RoundTimes:
    # Each size is built in a fresh process that imports symgraph and nothing else.
    # In the runner's own process torch's ~170k objects sit in the heap, and every
    # full collection of the garbage collector scans them: whether one lands inside
    # the 10,000-node build or not moves the ratio by a third, which measures the
    # heap left by other cases rather than how the build grows with the graph. And
    # sizes built one after another in one process disturb each other: after the
    # million-node build the process holds gigabytes of freed memory, which makes
    # the next builds faster than a first one, by whatever they happen to reuse.
    shift = round_index % len(SIZES)
    root = Path(__file__).resolve().parent.parent
    times: dict[str, tuple[float, ...]] = {}
    for n in SIZES[shift:] + SIZES[:shift]:
        code = (
            "import json; from benchmarks.build_scaling import _measure_in_this_process as m; "
            f"print(json.dumps(m({n})))"
        )
        done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
        times[label(n)] = tuple(json.loads(done.stdout.splitlines()[-1]))
    return {
        BUILD: {name: t[0] + t[1] for name, t in times.items()},
        RECORD: {name: t[0] for name, t in times.items()},
        MODEL: {name: t[1] for name, t in times.items()},
        REPLAY: {name: t[2] for name, t in times.items()},
    }


def scaling_case(quick: bool) -> _harness.Case:
    variants = [label(n) for n in SIZES]
    rows = [_harness.Row(name, variants, label(BASE_SIZE)) for name in (BUILD, RECORD, MODEL, REPLAY)]
    return _harness.Case(
        name="build_scaling",
        title="build time of a chain of x = x + 1 against its length (symgraph core)",
        rows=rows,
        legend={
            label(BASE_SIZE): "baseline; the 10,000-node chain built in the same round",
            BUILD: "recording the chain, then symgraph.SymbolicModel(x, y); targets on this row",
            RECORD: "the recording alone (x = x + 1 on symbolic values)",
            MODEL: "symgraph.SymbolicModel(x, y) alone: subgraph, order, code generation and compilation",
            REPLAY: "one call of the built model (a single call: noisy at 1,000 nodes)",
        },
        rounds=5,
        quick_rounds=2,
        warmup_rounds=0,
        targets=[
            _harness.Target(BUILD, label(100_000), LIMIT),
            _harness.Target(BUILD, label(1_000_000), LIMIT, baseline=label(100_000)),
        ],
        extra_ratios=[(label(1_000_000), label(100_000))],
        notes=[
            "Each size in a fresh process that imports only symgraph and builds an untimed 1,000-node chain first; "
            "garbage collector on, as for users; a gc.collect() before each build. "
            "Linear growth is 10x per factor of ten."
        ],
        unit="s",
        gc_off=False,
        log_ratio=True,
        measure_round=measure_scaling_round,
    )


def build_chain(n: int) -> symgraph.SymbolicModel:
    """Record an ``n``-node chain of ``x = x + 1`` and build its model."""
    return symgraph.SymbolicModel(*record_chain(n))


def conv_setup() -> tuple[dict[str, Callable[[Any], Any]], Any, Any]:
    """The ``conv_build`` variants (the eager baseline first; each called with the example or ``None``).

    Also returns the example tensor and the eager output, which every built
    model was checked to reproduce exactly.
    """
    import torch
    from torch import nn

    import symgraph_torch

    torch.manual_seed(0)
    layers = [nn.Conv2d(64, 64, 3, padding=1) for _ in range(CONV_LAYERS)]
    shape = (64, CONV_PX, CONV_PX)
    example = torch.rand(1, *shape)

    def eager(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            for layer in layers:
                x = layer(x)
        return x

    def build_symgraph(_: object) -> nn.Module:
        x = symgraph_torch.Input(shape)
        h = x
        for layer in layers:
            h = layer(h)
        return symgraph_torch.SymbolicModel(x, h)

    builders: dict[str, Callable[[Any], Any]] = {EAGER: eager, SYMGRAPH: build_symgraph}
    ps = _harness.import_pytorch_symbolic()
    if ps is not None:

        def build_pytorch_symbolic(_: object) -> nn.Module:
            x = ps.Input(shape=shape)
            h = x
            for layer in layers:
                h = h(layer)
            model: nn.Module = ps.SymbolicModel(x, h)
            return model

        builders[PYTORCH_SYMBOLIC] = build_pytorch_symbolic
    expected = eager(example)
    with torch.no_grad():
        for name, build in builders.items():
            if name != EAGER:
                model = build(None)
                _harness.check(isinstance(model, nn.Module), f"{name} did not build an nn.Module")
                _harness.check(
                    torch.equal(model(example), expected), f"the model of {name} differs from the eager layers"
                )
    return builders, example, expected


def conv_case(quick: bool) -> _harness.Case:
    builders, example, _ = conv_setup()
    have_pytorch_symbolic = PYTORCH_SYMBOLIC in builders
    arg = {EAGER: example}
    samples = {name: _harness.time_each_call(build, arg.get(name), 1) for name, build in builders.items()}
    row_name = f"{CONV_LAYERS} x Conv2d(64, 64, 3), {CONV_PX} px"
    row = _harness.Row(row_name, list(builders), EAGER, samples, dict.fromkeys(builders, 1))
    notes = [
        "Builds run with grad enabled, as a user's script would; the built models are released after the clock stops."
    ]
    if not have_pytorch_symbolic:
        notes.append(_harness.PYTORCH_SYMBOLIC_MISSING)
    return _harness.Case(
        name="conv_build",
        title=f"model build: {CONV_LAYERS} x Conv2d(64, 64, 3, padding=1) from a {CONV_PX} px Input, batch 1",
        rows=[row],
        legend={
            EAGER: "baseline; the 16 layers applied to a (1, 64, 224, 224) tensor under no_grad (the example's work)",
            SYMGRAPH: "symgraph_torch.Input(shape), layer(x) 16 times, symgraph_torch.SymbolicModel",
            PYTORCH_SYMBOLIC: "pytorch_symbolic.Input(shape=shape), x(layer) 16 times, pytorch_symbolic.SymbolicModel",
        },
        rounds=6,
        quick_rounds=2,
        passes=1,
        notes=notes,
        unit="s",
        gc_off=False,
    )


CASES: _harness.CaseBuilders = {"build_scaling": scaling_case, "conv_build": conv_case}


if __name__ == "__main__":
    sys.exit(_harness.main(CASES, "python -m benchmarks.build_scaling", __doc__))
