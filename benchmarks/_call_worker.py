"""Worker process of the ``module_call`` case: times blocks of plain ``nn.Module`` calls on request.

Started by :mod:`benchmarks.module_call_overhead` as
``python -m benchmarks._call_worker [--symgraph]``; with ``--symgraph`` it runs
``import symgraph_torch`` first, without it the process never imports symgraph.
It reads one JSON request per line on stdin and answers one JSON line on
stdout. This module imports nothing from the suite, so that a worker without
``--symgraph`` stays free of symgraph.

A block times a fixed number of calls ``module(x)`` on a ``(4, 4)`` CPU tensor
with ``time.perf_counter_ns`` and the garbage collector off; its loop body makes
ten calls, so the loop itself costs little. A request runs several blocks and
answers with the fastest, in nanoseconds per call.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

THREADS = 1
# Calls per block, per module: about 1-2 ms of work on this 2-core CPU machine.
CALLS = {"Linear(4, 4)": 200, "Sequential(3 Linear + 2 ReLU)": 40}
# The same modes as _harness.GRAD_MODES, spelled out: the worker stands for a fresh
# process, so it imports nothing of the project beyond torch (and symgraph_torch, when asked).
MODES = {"no_grad": False, "grad": True}


def make_block(module: nn.Module, x: torch.Tensor, calls: int) -> Callable[[], int]:
    """A function that calls ``module(x)`` ``calls`` times (a multiple of 10) and returns the nanoseconds taken."""
    loops = calls // 10

    def block() -> int:
        t0 = time.perf_counter_ns()
        for _ in range(loops):
            module(x)
            module(x)
            module(x)
            module(x)
            module(x)
            module(x)
            module(x)
            module(x)
            module(x)
            module(x)
        return time.perf_counter_ns() - t0

    return block


def modules() -> tuple[dict[str, nn.Module], torch.Tensor]:
    """The modules called (same seed, so the same weights in every worker) and the input."""
    torch.manual_seed(0)
    x = torch.randn(4, 4)
    return {
        "Linear(4, 4)": nn.Linear(4, 4),
        "Sequential(3 Linear + 2 ReLU)": nn.Sequential(
            nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4)
        ),
    }, x


def serve(with_symgraph: bool) -> None:
    torch.set_num_threads(THREADS)
    original = nn.Module.__call__
    install: Callable[[], None] | None = None
    uninstall: Callable[[], None] | None = None
    if with_symgraph:
        import symgraph_torch  # noqa: F401 (the import installs the hook being measured)
        from symgraph_torch._tracing import install_module_call_hook, uninstall_module_call_hook

        install, uninstall = install_module_call_hook, uninstall_module_call_hook
    mods, x = modules()
    blocks = {
        f"{name}, {mode}": (make_block(module, x, CALLS[name]), grad, CALLS[name])
        for name, module in mods.items()
        for mode, grad in MODES.items()
    }
    for line in sys.stdin:
        request: dict[str, Any] = json.loads(line)
        op = request["op"]
        answer: dict[str, Any]
        if op == "info":
            call = nn.Module.__call__
            answer = {
                "call": f"{call.__module__}.{call.__qualname__}",
                "replaced": call is not original,
                "symgraph_modules": sorted(m for m in sys.modules if m.partition(".")[0].startswith("symgraph")),
                "threads": torch.get_num_threads(),
                "outputs": {name: module(x).tolist() for name, module in mods.items()},
            }
            with torch.no_grad():
                answer["outputs_no_grad"] = {name: module(x).tolist() for name, module in mods.items()}
        elif op == "time":
            block, grad, calls = blocks[request["case"]]
            unhook = bool(request.get("unhook"))
            best = None
            with torch.set_grad_enabled(grad):
                if unhook:
                    assert uninstall is not None
                    uninstall()
                gc.disable()
                try:
                    for _ in range(int(request["blocks"])):
                        t = block()
                        best = t if best is None else min(best, t)
                finally:
                    gc.enable()
                    if install is not None:
                        install()
            assert best is not None
            answer = {"ns_per_call": best / calls}
        elif op == "quit":
            break
        else:
            answer = {"error": f"unknown op {op!r}"}
        print(json.dumps(answer), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symgraph", action="store_true", help="import symgraph_torch first")
    serve(parser.parse_args().symgraph)


if __name__ == "__main__":
    main()
