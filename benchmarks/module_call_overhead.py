"""Cost that ``import symgraph_torch`` adds to plain ``nn.Module`` calls.

Run: ``.venv/bin/python -m benchmarks.module_call_overhead [--repeats N]``

Requirement: after ``import symgraph_torch``, a plain ``nn.Module`` call costs at
most 2% more than before. The import replaces ``nn.Module.__call__`` with a
function that adds one C-level check (does any argument define
``__torch_function__``?) in front of what torch's own ``__call__`` does.
``uninstall_module_call_hook()`` puts torch's ``__call__`` back and
``install_module_call_hook()`` puts ours back, so both variants are timed in one
process, on the same module objects and tensors.

A case calls a module on a ``(4, 4)`` CPU tensor, under ``torch.no_grad()`` or with
grad enabled: a single ``nn.Linear(4, 4)`` (one module call per call), and an
``nn.Sequential`` of three ``Linear(4, 4)`` and two ``ReLU`` (six module calls per
call, five of them nested). A block times a fixed number of calls with
``time.perf_counter_ns`` and the garbage collector off; its loop body makes ten
calls, so the loop itself costs little. This machine's speed wanders by tens of
percent between processes and within one, so the measurement is made robust in
three ways:

* interleaving: every round runs, for each case, ``PAIRS`` pairs of blocks, torch's
  ``__call__`` then ours or the reverse; the order alternates from pair to pair
  and from round to round, so a drift in speed falls on both variants alike;
* minimum of blocks: a round keeps each variant's fastest block, the one least
  disturbed by the rest of the machine;
* medians: the report gives, per case, the median over rounds of that time per
  call and the median of the per-round ratios hooked/original. A case passes
  when that ratio is at most 1.02.

Every variant is warmed up before timing. The hook is installed again on exit,
whatever happens.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

import symgraph_torch  # noqa: F401 (the import installs the hook being measured)
from symgraph_torch._tracing import install_module_call_hook, uninstall_module_call_hook

LIMIT = 1.02
PAIRS = 25
# Calls per block, per module: about 1-2 ms of work on a 2-core CPU machine.
CALLS = {"Linear(4, 4)": 200, "Sequential(3 Linear + 2 ReLU)": 40}
VARIANTS = {"original": uninstall_module_call_hook, "hooked": install_module_call_hook}


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


def cases() -> dict[str, tuple[Callable[[], int], bool, int]]:
    """``{name: (block, grad_enabled, calls)}`` for every module and grad mode."""
    torch.manual_seed(0)
    x = torch.randn(4, 4)
    modules = {
        "Linear(4, 4)": nn.Linear(4, 4),
        "Sequential(3 Linear + 2 ReLU)": nn.Sequential(
            nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4)
        ),
    }
    return {
        f"{name}, {mode}": (make_block(module, x, CALLS[name]), grad, CALLS[name])
        for name, module in modules.items()
        for mode, grad in (("no_grad", False), ("grad", True))
    }


def measure_round(block: Callable[[], int], grad: bool, round_index: int) -> dict[str, int]:
    """Fastest block, in nanoseconds, of each variant over ``PAIRS`` interleaved pairs."""
    times: dict[str, list[int]] = {v: [] for v in VARIANTS}
    names = list(VARIANTS)
    with torch.set_grad_enabled(grad):
        gc.disable()
        try:
            for k in range(PAIRS):
                for variant in names if (round_index + k) % 2 == 0 else names[::-1]:
                    VARIANTS[variant]()
                    times[variant].append(block())
        finally:
            gc.enable()
            install_module_call_hook()
    return {v: min(t) for v, t in times.items()}


def check_variants() -> tuple[str, str]:
    """Make sure the two variants differ; the names of torch's ``__call__`` and of the installed one."""
    uninstall_module_call_hook()
    original = nn.Module.__call__
    install_module_call_hook()
    hooked = nn.Module.__call__
    assert hooked is not original, "installing did not replace torch's __call__"
    return tuple(f"{f.__module__}.{f.__qualname__}" for f in (original, hooked))  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=120)
    args = parser.parse_args()
    try:
        original_name, hooked_name = check_variants()
        all_cases = cases()
        for block, grad, _ in all_cases.values():  # warm-up
            for r in range(2):
                measure_round(block, grad, r)
        rounds = [
            {name: measure_round(block, grad, r) for name, (block, grad, _) in all_cases.items()}
            for r in range(args.repeats)
        ]
    finally:
        install_module_call_hook()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.repeats} rounds x {PAIRS} pairs of "
        f"blocks; original = {original_name}, hooked = {hooked_name}"
    )
    print()
    print(
        f"| {'case':<40} | {'calls/block':>11} | {'original us/call':>16} | {'hooked us/call':>14} "
        f"| {'hooked/original':>15} | {'verdict':>7} |"
    )
    print(f"|{'-' * 42}|{'-' * 12}:|{'-' * 17}:|{'-' * 15}:|{'-' * 16}:|{'-' * 8}:|")
    for name, (_, _, calls) in all_cases.items():
        per_call = {v: statistics.median(r[name][v] for r in rounds) / calls / 1000 for v in VARIANTS}
        ratio = statistics.median(r[name]["hooked"] / r[name]["original"] for r in rounds)
        verdict = "PASS" if ratio <= LIMIT else "FAIL"
        print(
            f"| {name:<40} | {calls:>11} | {per_call['original']:>16.3f} | {per_call['hooked']:>14.3f} "
            f"| {ratio:>14.4f}x | {verdict:>7} |"
        )
    print()
    print(f"Limit: hooked/original <= {LIMIT} in every case.")


if __name__ == "__main__":
    main()
