"""Cost that ``import symgraph_torch`` adds to plain ``nn.Module`` calls.

Run: ``.venv/bin/python -m benchmarks.module_call_overhead [--rounds N] [--quick]``
(or as the ``module_call`` case of ``python -m benchmarks``).

Requirement: after ``import symgraph_torch``, a plain ``nn.Module`` call costs at
most 2% more than in a fresh process without it. The import replaces
``nn.Module.__call__`` with a function that checks for symbolic arguments in
front of what torch's own ``__call__`` does; for the common call, one plain
tensor, that is three inline tests, and the tensor is passed on without the
argument tuple torch's ``__call__`` packs and unpacks.

Two worker processes (``benchmarks._call_worker``) are started side by side: one
runs ``import symgraph_torch``, the other never imports symgraph (checked). Both
build the same modules from the same seed (their outputs are checked to be
equal) and time, on request, blocks of calls on a ``(4, 4)`` CPU tensor, under
``torch.no_grad()`` or with grad enabled: a single ``nn.Linear(4, 4)`` (one module
call per call), and an ``nn.Sequential`` of three ``Linear(4, 4)`` and two ``ReLU``
(six module calls per call, five of them nested). A sample asks one worker for
the fastest of a few blocks; only one worker runs at a time. A round takes
``passes`` samples of every variant in rotated order and keeps each one's fastest;
the table gives the median over rounds of the paired ratio to the fresh process.

For information, the worker with symgraph also times the same calls with the
hook switched off (``uninstall_module_call_hook()``, torch's own ``__call__``
back, on the same module objects), which isolates the hook from differences
between two processes (memory layout, where the allocator put things).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from typing import Any

from benchmarks import _call_worker, _harness

LIMIT = 1.02
BLOCKS = 5  # blocks per sample; a sample keeps the fastest
PAIRS = 3  # pairs of worker processes (1 in a quick run)

FRESH = "fresh process without symgraph_torch"
IMPORTED = "after import symgraph_torch"
UNHOOKED = "same process, hook uninstalled (info)"

LEGEND = {
    FRESH: "baseline; a worker process that never imports symgraph (checked), torch's own nn.Module.__call__",
    IMPORTED: "a worker process that ran import symgraph_torch (its nn.Module.__call__ hook installed)",
    UNHOOKED: "the symgraph worker with uninstall_module_call_hook() around the sample (torch's __call__ back)",
}


class Worker:
    """A ``benchmarks._call_worker`` process and its line-based JSON protocol."""

    def __init__(self, with_symgraph: bool) -> None:
        command = [sys.executable, "-m", "benchmarks._call_worker", *(["--symgraph"] if with_symgraph else [])]
        self.process = subprocess.Popen(
            command, cwd=_harness.ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )

    def ask(self, **request: Any) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.process.args!r} exited with status {self.process.wait()}")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(RuntimeError, BrokenPipeError, ValueError):
                self.ask(op="quit")
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_pair() -> tuple[Worker, Worker]:
    """A fresh worker and a worker with ``import symgraph_torch``, checked against each other."""
    fresh, imported = Worker(False), Worker(True)
    try:
        fresh_info, imported_info = fresh.ask(op="info"), imported.ask(op="info")
        check = _harness.check
        check(not fresh_info["symgraph_modules"], f"the fresh worker imported {fresh_info['symgraph_modules']}")
        check(not fresh_info["replaced"], "the fresh worker's nn.Module.__call__ is not torch's")
        check(imported_info["replaced"], "import symgraph_torch did not replace nn.Module.__call__")
        for key in ("outputs", "outputs_no_grad"):
            check(fresh_info[key] == imported_info[key], "the two workers' modules give different outputs")
        check(fresh_info["threads"] == imported_info["threads"] == _harness.THREADS, "a worker is not on 1 thread")
    except BaseException:
        fresh.close()
        imported.close()
        raise
    return fresh, imported


def case(quick: bool) -> _harness.Case:
    pairs: list[tuple[Worker, Worker]] = []
    try:
        for _ in range(1 if quick else PAIRS):
            pairs.append(start_pair())
        calls_info = pairs[0][0].ask(op="info")["call"], pairs[0][1].ask(op="info")["call"]
    except BaseException:
        for pair in pairs:
            for worker in pair:
                worker.close()
        raise
    current = [0]  # index of the pair of workers used in this round

    def sample(which: int, name: str, unhook: bool = False) -> _harness.Sample:
        def timed() -> float:
            worker = pairs[current[0]][which]
            ns = worker.ask(op="time", case=name, blocks=BLOCKS, unhook=unhook)["ns_per_call"]
            return float(ns) / 1e9

        return timed

    def before_round(round_index: int) -> None:
        current[0] = round_index % len(pairs)

    def close() -> None:
        for pair in pairs:
            for worker in pair:
                worker.close()

    rows = []
    for module, calls in _call_worker.CALLS.items():
        for mode in _call_worker.MODES:
            name = f"{module}, {mode}"
            samples = {FRESH: sample(0, name), IMPORTED: sample(1, name), UNHOOKED: sample(1, name, True)}
            rows.append(_harness.Row(name, list(samples), FRESH, samples, dict.fromkeys(samples, calls * BLOCKS)))
    return _harness.Case(
        name="module_call",
        title="plain nn.Module calls on a (4, 4) tensor, after import symgraph_torch vs a fresh process",
        rows=rows,
        legend=LEGEND,
        rounds=45,
        quick_rounds=8,
        passes=3,
        targets=[_harness.Target(row.name, IMPORTED, LIMIT) for row in rows],
        notes=[
            f"{len(pairs)} pair(s) of worker processes, used in turn from round to round, so that the difference "
            "between two particular processes (memory layout) averages out over the rounds.",
            f"Each sample: the fastest of {BLOCKS} blocks of calls in one worker, garbage collector off.",
            f"nn.Module.__call__: fresh worker {calls_info[0]}, symgraph worker {calls_info[1]}.",
        ],
        warmup_rounds=len(pairs),
        before_round=before_round,
        extra_ratios=[(IMPORTED, UNHOOKED)],
        close=close,
    )


CASES: _harness.CaseBuilders = {"module_call": case}


if __name__ == "__main__":
    sys.exit(_harness.main(CASES, "python -m benchmarks.module_call_overhead", __doc__))
