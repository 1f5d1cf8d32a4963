"""Generated ``forward`` of a 1000-layer ``SymbolicModel`` against a hand-written loop.

Run: ``.venv/bin/python -m benchmarks.torch_forward [--repeats N]``

Requirement: the generated ``forward`` of a model of 1000 ``nn.Linear(4, 4)`` takes
at most 1.0x the time of a hand-written ``nn.Module`` whose ``forward`` loops over
the same layers in an ``nn.ModuleList``, on the CPU, with a ``(4, 4)`` batch, under
``torch.no_grad()`` and with grad enabled (only the forward pass is timed; its
output, and the autograd graph it holds, is released after the clock stops).

Both models share the same layer objects, and they are checked to give identical
outputs (``torch.equal``) before timing. The symbolic model is measured as users
get it, with ``check_inputs`` on (the input shape is checked on every call). An
extra, informative row times a second ``SymbolicModel`` over the same layers after
``optimize_module_calls``, which calls each layer's ``forward`` directly.

Every round runs, for each grad mode, ``CALLS`` forward passes of every model in
turn, with the models' order rotated from one pass to the next and from one round
to the next, and the garbage collector off; a round keeps each model's fastest
pass, the one least disturbed by the rest of the machine. The report gives the
median over rounds of that time and the median of the per-round ratios to the
hand-written model; the symbolic model passes when its ratio is at most 1.0.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

import torch
from torch import nn

from symgraph_torch import Input, SymbolicModel, optimize_module_calls

LAYERS = 1_000
LIMIT = 1.0
CALLS = 3
MODES = {"no_grad": False, "grad": True}


class HandWritten(nn.Module):
    """The baseline: the layers in an ``nn.ModuleList``, applied in a Python loop."""

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


def symbolic(layers: list[nn.Module]) -> SymbolicModel:
    """A ``SymbolicModel`` that applies ``layers`` in a chain."""
    x = Input((4,))
    h = x
    for layer in layers:
        h = layer(h)
    return SymbolicModel(x, h)


def build() -> tuple[dict[str, nn.Module], torch.Tensor]:
    """The models to compare, by report name, and the input batch."""
    torch.manual_seed(0)
    layers = [nn.Linear(4, 4) for _ in range(LAYERS)]
    optimized = symbolic(layers)
    optimize_module_calls(optimized)
    models = {
        "hand-written": HandWritten(layers),
        "SymbolicModel": symbolic(layers),
        "SymbolicModel + optimize_module_calls (info)": optimized,
    }
    assert models["SymbolicModel"].check_inputs, "check_inputs should be on by default"
    return models, torch.randn(4, 4)


def check_outputs(models: dict[str, nn.Module], x: torch.Tensor) -> None:
    """Every model gives exactly the hand-written model's output, in both grad modes."""
    for grad in MODES.values():
        with torch.set_grad_enabled(grad):
            expected = models["hand-written"](x)
            for name, model in models.items():
                assert torch.equal(model(x), expected), f"{name} differs from the hand-written model"


def time_forward(model: nn.Module, x: torch.Tensor) -> int:
    """Nanoseconds of one forward pass; the output is released after the clock stops."""
    t0 = time.perf_counter_ns()
    out = model(x)
    elapsed = time.perf_counter_ns() - t0
    del out
    return elapsed


def measure_round(models: dict[str, nn.Module], x: torch.Tensor, grad: bool, round_index: int) -> dict[str, int]:
    """Fastest of ``CALLS`` interleaved forward passes of each model, in nanoseconds."""
    names = list(models)
    times: dict[str, list[int]] = {name: [] for name in names}
    with torch.set_grad_enabled(grad):
        gc.disable()
        try:
            for k in range(CALLS):
                shift = (round_index + k) % len(names)
                for name in names[shift:] + names[:shift]:
                    times[name].append(time_forward(models[name], x))
        finally:
            gc.enable()
    return {name: min(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    models, x = build()
    check_outputs(models, x)
    for grad in MODES.values():  # warm-up
        for r in range(3):
            measure_round(models, x, grad, r)
    rounds = [{mode: measure_round(models, x, grad, r) for mode, grad in MODES.items()} for r in range(args.repeats)]
    base = "hand-written"
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {LAYERS} x Linear(4, 4), batch (4, 4), "
        f"{args.repeats} rounds x {CALLS} passes"
    )
    print()
    print(f"| {'mode':<7} | {'model':<44} | {'forward us':>10} | {'ratio to hand-written':>21} | {'verdict':>7} |")
    print(f"|{'-' * 9}|{'-' * 46}|{'-' * 11}:|{'-' * 22}:|{'-' * 8}:|")
    for mode in MODES:
        for name in models:
            median_us = statistics.median(r[mode][name] for r in rounds) / 1000
            ratio = statistics.median(r[mode][name] / r[mode][base] for r in rounds)
            verdict = "" if name != "SymbolicModel" else "PASS" if ratio <= LIMIT else "FAIL"
            print(f"| {mode:<7} | {name:<44} | {median_us:>10.1f} | {ratio:>20.3f}x | {verdict:>7} |")
    print()
    print(
        f"Limit: SymbolicModel / hand-written <= {LIMIT} in both modes; the optimize_module_calls row is informative."
    )


if __name__ == "__main__":
    main()
