"""Forward pass of a deep chain of ``nn.Linear(4, 4)``: symgraph against the usual ways of writing it in PyTorch.

Run: ``.venv/bin/python -m benchmarks.torch_forward [--rounds N] [--quick]``
(or as the ``deep_linear`` case of ``python -m benchmarks``).

Depths 250, 500, 750 and 1000, a ``(4, 4)`` batch on the CPU, under
``torch.no_grad()`` and with grad enabled (autograd records the pass). Only the
forward pass is timed: its output, and the autograd graph it holds, is released
after the clock stops; no backward pass runs. Variants, all over the same layer
objects (built after ``torch.manual_seed(0)``) and checked to give exactly the
baseline's output (``torch.equal``) in both modes before timing:

* looping nn.Module (the baseline): the layers in an ``nn.ModuleList``, applied
  in a Python loop in ``forward``;
* unrolled nn.Module: one attribute per layer and a ``forward`` of one statement
  per layer (``x = self.l0(x)``, ...), its source generated once per depth;
* ``nn.Sequential`` of the layers;
* ``torch.fx.symbolic_trace`` of the looping module (a ``GraphModule`` whose
  generated code calls every layer);
* pytorch-symbolic's ``SymbolicModel`` (skipped if not importable);
* symgraph: ``symgraph_torch.SymbolicModel``, as users get it (``check_inputs``
  on); and, for information, the same after ``optimize_module_calls``;
* the floor, for information: a generated straight-line function of
  ``F.linear(x, w_i, b_i)`` calls on the same layers' parameters, read once
  when it is built (``benchmarks._floor``): the least a forward pass over these
  layers can cost in Python.

Before timing, the build also checks that the symgraph model follows a layer
swap, as a module reading its layers at every call does: with one layer
replaced (``setattr(model, name, other)``) its output changes, and with the
layer put back it is the baseline's again. The floor, which read the
parameters once, would not follow; it is no candidate for the target.

Target: at 1000 layers, symgraph takes at most 0.62x the looping module's time,
under ``no_grad`` and with grad; the report gives its ratio to the floor beside
the verdict. All variants run in one process after ``import symgraph_torch``, so
their plain module calls pass through its ``nn.Module.__call__`` hook (its cost
is the ``module_call`` case).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import fx, nn

import symgraph_torch
from benchmarks import _floor, _harness

DEPTHS = (250, 500, 750, 1000)
TARGET_DEPTH = 1000
LIMIT = 0.62
MODES = _harness.GRAD_MODES
MIN_SAMPLE_S = 0.002

LOOPING = "looping nn.Module"
UNROLLED = "unrolled nn.Module"
SEQUENTIAL = "nn.Sequential"
FX = "torch.fx"
PYTORCH_SYMBOLIC = "pytorch-symbolic"
SYMGRAPH = "symgraph"
SYMGRAPH_OPTIMIZED = "symgraph optimize_module_calls (info)"
FLOOR = "F.linear floor (info)"

LEGEND = {
    LOOPING: "baseline; the layers in an nn.ModuleList, applied in a for loop in forward",
    UNROLLED: "one attribute per layer, forward written out as x = self.l0(x), x = self.l1(x), ...",
    SEQUENTIAL: "nn.Sequential(*layers)",
    FX: "torch.fx.symbolic_trace of the looping module",
    PYTORCH_SYMBOLIC: "pytorch_symbolic.SymbolicModel 1.2 (PyPI), default code generation",
    SYMGRAPH: "symgraph_torch.SymbolicModel, check_inputs on (as users get it)",
    SYMGRAPH_OPTIMIZED: "the same after symgraph_torch.optimize_module_calls (calls each layer's forward directly)",
    FLOOR: "straight-line F.linear(x, w_i, b_i) calls on the layers' parameters, read once at build (no modules)",
}


class Looping(nn.Module):
    """The baseline: the layers in an ``nn.ModuleList``, applied in a Python loop."""

    def __init__(self, layers: Sequence[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


@functools.cache
def unrolled_class(depth: int) -> type[nn.Module]:
    """A module class holding ``depth`` layers as ``l0``, ``l1``, ... with a ``forward`` that calls each in turn.

    The source is generated from ``depth`` alone (no user text), once per depth;
    it is what a user would type by hand.
    """
    body = "".join(f"        x = self.l{i}(x)\n" for i in range(depth))
    source = (
        f"class Unrolled{depth}(nn.Module):\n"
        "    def __init__(self, layers):\n"
        "        super().__init__()\n"
        "        for i, layer in enumerate(layers):\n"
        "            self.add_module(f'l{i}', layer)\n"
        "\n"
        "    def forward(self, x):\n"
        f"{body}"
        "        return x\n"
    )
    namespace: dict[str, Any] = {"nn": nn, "__name__": __name__}
    exec(compile(source, f"<unrolled module, {depth} layers>", "exec"), namespace)
    cls: type[nn.Module] = namespace[f"Unrolled{depth}"]
    return cls


def symgraph_chain(layers: Sequence[nn.Module]) -> symgraph_torch.SymbolicModel:
    """A ``symgraph_torch.SymbolicModel`` applying ``layers`` in a chain."""
    x = symgraph_torch.Input((4,))
    h = x
    for layer in layers:
        h = layer(h)
    return symgraph_torch.SymbolicModel(x, h)


def pytorch_symbolic_chain(layers: Sequence[nn.Module]) -> nn.Module | None:
    """pytorch-symbolic's ``SymbolicModel`` over the same chain, or ``None`` if it is not importable."""
    ps = _harness.import_pytorch_symbolic()
    if ps is None:
        return None
    x = ps.Input(shape=(4,))
    h = x
    for layer in layers:
        h = h(layer)
    model: nn.Module = ps.SymbolicModel(x, h)
    return model


def build_models(depth: int) -> tuple[dict[str, Callable[[torch.Tensor], torch.Tensor]], torch.Tensor]:
    """Every variant over one set of ``depth`` layers, by name (the baseline first), and the input batch."""
    torch.manual_seed(0)
    layers = [nn.Linear(4, 4) for _ in range(depth)]
    looping = Looping(layers)
    models: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        LOOPING: looping,
        UNROLLED: unrolled_class(depth)(layers),
        SEQUENTIAL: nn.Sequential(*layers),
        FX: fx.symbolic_trace(looping),
    }
    other = pytorch_symbolic_chain(layers)
    if other is not None:
        models[PYTORCH_SYMBOLIC] = other
    symgraph = symgraph_chain(layers)
    models[SYMGRAPH] = symgraph
    optimized = symgraph_chain(layers)
    symgraph_torch.optimize_module_calls(optimized)
    models[SYMGRAPH_OPTIMIZED] = optimized
    models[FLOOR] = _floor.chain_floor(layers)
    x = torch.randn(4, 4)
    _harness.check_same_outputs(models, LOOPING, x, MODES.values())
    check_swap_takes_effect(symgraph, layers, x)
    return models, x


def check_swap_takes_effect(model: nn.Module, layers: Sequence[nn.Module], x: torch.Tensor) -> None:
    """Replacing the last layer of ``model`` changes its output; putting it back restores it.

    ``model`` must apply ``layers`` in a chain, registered as its children. The
    last layer, because a chain of this many contracting ``Linear(4, 4)`` forgets a
    change made early on within float32 precision.
    """
    layer = layers[-1]
    name = next(n for n, child in model.named_children() if child is layer)
    torch.manual_seed(1)
    other = nn.Linear(4, 4)
    for grad in MODES.values():
        with torch.set_grad_enabled(grad):
            expected = model(x)
            setattr(model, name, other)
            try:
                swapped = model(x)
            finally:
                setattr(model, name, layer)
            _harness.check(not torch.equal(swapped, expected), f"swapping {name} left the output unchanged")
            chain = x
            for step in layers:
                chain = (other if step is layer else step)(chain)
            _harness.check(torch.equal(swapped, chain), f"with {name} swapped, the model differs from the chain")
            _harness.check(torch.equal(model(x), expected), f"putting {name} back did not restore the output")


def case(quick: bool) -> _harness.Case:
    builds = [(f"{depth} layers", *build_models(depth)) for depth in DEPTHS]
    have_pytorch_symbolic = all(PYTORCH_SYMBOLIC in models for _, models, _ in builds)
    rows = _harness.torch_forward_rows(builds, LOOPING, MIN_SAMPLE_S)
    notes = [
        "Only the forward pass is timed; its output (with its autograd graph) is released after the clock stops.",
        "Every variant shares the same layer objects and was checked to give exactly the baseline's output.",
        "The symgraph model was checked to follow a swap of one layer (setattr) before timing.",
    ]
    if not have_pytorch_symbolic:
        notes.append(_harness.PYTORCH_SYMBOLIC_MISSING)
    return _harness.Case(
        name="deep_linear",
        title="N x nn.Linear(4, 4), batch (4, 4), forward pass",
        rows=rows,
        legend=LEGEND,
        rounds=30,
        quick_rounds=5,
        passes=2 if quick else 3,
        targets=[_harness.Target(f"{TARGET_DEPTH} layers, {mode}", SYMGRAPH, LIMIT, floor=FLOOR) for mode in MODES],
        notes=notes,
        unit="us",
    )


CASES: _harness.CaseBuilders = {"deep_linear": case}


if __name__ == "__main__":
    sys.exit(_harness.main(CASES, "python -m benchmarks.torch_forward", __doc__))
