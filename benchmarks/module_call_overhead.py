"""Cost that ``import symgraph_torch`` adds to plain ``nn.Module`` calls.

Run: ``.venv/bin/python -m benchmarks.module_call_overhead [--rounds N] [--quick]``
(or as the ``module_call`` case of ``python -m benchmarks``).

Requirement: after ``import symgraph_torch``, a plain ``nn.Module`` call costs at
most 50 ns more than with torch's own ``nn.Module.__call__``. The import replaces
``nn.Module.__call__`` with a function that checks for symbolic arguments in
front of what torch's own ``__call__`` does; for the common call, one plain
tensor, that is three inline tests, and the tensor is passed on without the
argument tuple torch's ``__call__`` packs and unpacks.

The verdict is measured in one process, where tens of nanoseconds can be seen:
the worker with symgraph times the same calls on the same module objects with
the hook installed and with torch's original ``__call__`` put back
(``uninstall_module_call_hook()``), in interleaved samples, and the target is
the median paired difference in ns per call. Two processes differ by more than
that (memory layout, where the allocator put things): two fresh processes
without symgraph already differ by a few percent. So the ratio to a fresh
process is shown for information only, next to an A/A control row, a second
fresh process, that shows how large that difference is.

Worker processes (``benchmarks._call_worker``) are started side by side: two
never import symgraph (checked), one runs ``import symgraph_torch``. All build
the same modules from the same seed (their outputs are checked to be equal) and
time, on request, blocks of calls on a ``(4, 4)`` CPU tensor, under
``torch.no_grad()`` or with grad enabled: a single ``nn.Linear(4, 4)`` (one module
call per call), and an ``nn.Sequential`` of three ``Linear(4, 4)`` and two ``ReLU``
(six module calls per call, five of them nested). A sample asks one worker for
the fastest of a few blocks; only one worker runs at a time. A round takes
``passes`` samples of every variant in rotated order and keeps each one's fastest.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from typing import Any

from benchmarks import _call_worker, _harness

LIMIT_NS = 50.0  # added per call, in one process
BLOCKS = 5  # blocks per sample; a sample keeps the fastest
PAIRS = 3  # pairs of worker processes (1 in a quick run)

FRESH = "fresh process without symgraph_torch"
CONTROL = "second fresh process (A/A control, info)"
IMPORTED = "after import symgraph_torch"
UNHOOKED = "same process, torch's own __call__"

LEGEND = {
    FRESH: "baseline of the ratios; a worker process that never imports symgraph (checked), torch's own __call__",
    CONTROL: "another such worker: how much two processes differ with nothing changed",
    IMPORTED: "a worker process that ran import symgraph_torch (its nn.Module.__call__ hook installed)",
    UNHOOKED: "the symgraph worker with uninstall_module_call_hook() around the sample (torch's __call__ back); "
    "the target's baseline",
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


def start_group() -> tuple[Worker, Worker, Worker]:
    """Two fresh workers and a worker with ``import symgraph_torch``, checked against each other."""
    workers = (Worker(False), Worker(False), Worker(True))
    try:
        fresh_info, control_info, imported_info = (w.ask(op="info") for w in workers)
        check = _harness.check
        for info in (fresh_info, control_info):
            check(not info["symgraph_modules"], f"a fresh worker imported {info['symgraph_modules']}")
            check(not info["replaced"], "a fresh worker's nn.Module.__call__ is not torch's")
        check(imported_info["replaced"], "import symgraph_torch did not replace nn.Module.__call__")
        for key in ("outputs", "outputs_no_grad"):
            check(
                fresh_info[key] == control_info[key] == imported_info[key],
                "the workers' modules give different outputs",
            )
        threads = {fresh_info["threads"], control_info["threads"], imported_info["threads"]}
        check(threads == {_harness.THREADS}, "a worker is not on 1 thread")
    except BaseException:
        for worker in workers:
            worker.close()
        raise
    return workers


def case(quick: bool) -> _harness.Case:
    pairs: list[tuple[Worker, Worker, Worker]] = []
    try:
        for _ in range(1 if quick else PAIRS):
            pairs.append(start_group())
        calls_info = pairs[0][0].ask(op="info")["call"], pairs[0][2].ask(op="info")["call"]
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
            samples = {
                FRESH: sample(0, name),
                CONTROL: sample(1, name),
                IMPORTED: sample(2, name),
                UNHOOKED: sample(2, name, True),
            }
            rows.append(_harness.Row(name, list(samples), FRESH, samples, dict.fromkeys(samples, calls * BLOCKS)))
    return _harness.Case(
        name="module_call",
        title="plain nn.Module calls on a (4, 4) tensor: the hook of import symgraph_torch vs torch's own __call__",
        rows=rows,
        legend=LEGEND,
        rounds=45,
        quick_rounds=8,
        passes=3,
        targets=[_harness.Target(row.name, IMPORTED, LIMIT_NS, baseline=UNHOOKED, added_ns=True) for row in rows],
        notes=[
            f"{len(pairs)} group(s) of three worker processes, used in turn from round to round, so that the "
            "difference between two particular processes (memory layout) averages out over the rounds.",
            "Targets: the ns per call that the installed hook adds to torch's own __call__, in one process "
            "(median of paired differences); the ratios to the fresh process are information.",
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
