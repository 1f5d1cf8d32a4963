"""Forward pass of a 12-block MLP (Linear, LayerNorm, GELU, Dropout): symgraph against hand-written PyTorch.

Run: ``.venv/bin/python -m benchmarks.mlp [--rounds N] [--quick]``
(or as the ``mlp`` case of ``python -m benchmarks``).

Twelve blocks of ``Linear(64, 64)``, ``LayerNorm(64)``, ``GELU()`` and
``Dropout(0.1)``, every layer its own object, on a CPU batch ``(4, 64)``, in
two modes: *eval* (``model.eval()`` under ``torch.no_grad()``: inference) and
*train* (``model.train()`` with grad enabled: the forward pass of a training
step, with random dropout masks). Only the forward pass is timed; its output
(with its autograd graph) is released after the clock stops, and no backward
pass runs. At this size the layers' kernels are short, and what a forward pass
spends between them (module calls, attribute look-ups) shows.

Variants, over the same layer objects (built after ``torch.manual_seed(0)``),
checked to give exactly the baseline's output (``torch.equal``) in each mode
before timing, with ``torch.manual_seed`` before every compared call in train
mode:

* hand-written nn.Module (the baseline): one attribute per layer
  (``self.linear0``, ``self.norm0``, ``self.act0``, ``self.drop0``, ...) and a
  ``forward`` of one statement per layer, as one types it; its source is
  generated from the block count, which gives the same code;
* ``nn.Sequential`` of the layers;
* ``torch.fx.symbolic_trace`` of the hand-written module;
* pytorch-symbolic's ``SymbolicModel`` (skipped if not importable);
* symgraph: ``symgraph_torch.SymbolicModel`` built from
  ``symgraph_torch.Input((64,))`` and ``layer(x)`` calls (``check_inputs`` on),
  and, for information, the same after ``optimize_module_calls``;
* the floor, for information: straight-line ``F.linear``, ``F.layer_norm``,
  ``F.gelu`` and ``F.dropout`` calls on the same tensors, with the mode's
  settings read at build (``benchmarks._floor``).

Target: symgraph takes at most 0.70x the hand-written module's time, in both
modes; the report gives its ratio to the floor beside the verdict.
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
from benchmarks.torch_forward import FX, PYTORCH_SYMBOLIC, SEQUENTIAL, SYMGRAPH, SYMGRAPH_OPTIMIZED

BLOCKS = 12
WIDTH = 64
BATCH = 4
DROPOUT = 0.1
LIMIT = 0.70
MODES = _harness.TRAIN_MODES
MIN_SAMPLE_S = 0.002

HAND_WRITTEN = "hand-written nn.Module"
FLOOR = "F.* floor (info)"
#: The attribute names of one block's layers in the hand-written module (with the block's index).
BLOCK_NAMES = ("linear", "norm", "act", "drop")

LEGEND = {
    HAND_WRITTEN: "baseline; one attribute per layer, forward written out as x = self.linear0(x), "
    "x = self.norm0(x), ...",
    SEQUENTIAL: "nn.Sequential(*layers)",
    FX: "torch.fx.symbolic_trace of the hand-written module",
    PYTORCH_SYMBOLIC: "pytorch_symbolic.SymbolicModel 1.2 (PyPI), default code generation",
    SYMGRAPH: "symgraph_torch.SymbolicModel from Input((64,)) and layer(x) calls, check_inputs on (as users get it)",
    SYMGRAPH_OPTIMIZED: "the same after symgraph_torch.optimize_module_calls",
    FLOOR: "straight-line F.linear / F.layer_norm / F.gelu / F.dropout calls on the layers' tensors, with the "
    "mode's settings read at build (no modules)",
}


def make_layers() -> list[nn.Module]:
    """The ``4 * BLOCKS`` layers in order, each its own object, in eval mode.

    The LayerNorms get random affine parameters: fresh ones are the identity
    after the normalisation, which would hide a mix-up of their tensors.
    """
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for _ in range(BLOCKS):
        norm = nn.LayerNorm(WIDTH)
        with torch.no_grad():
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.2, 0.2)
        layers += [nn.Linear(WIDTH, WIDTH), norm, nn.GELU(), nn.Dropout(DROPOUT)]
    for layer in layers:
        layer.eval()
    return layers


def attribute_names() -> list[str]:
    """The hand-written module's attribute name of every layer, in order."""
    return [f"{name}{block}" for block in range(BLOCKS) for name in BLOCK_NAMES]


@functools.cache
def hand_written_class() -> type[nn.Module]:
    """The hand-written module's class: one attribute per layer and a ``forward`` of one statement per layer.

    The source is generated from ``BLOCKS`` alone (no user text); it is what a
    user would type by hand.
    """
    body = "".join(f"        x = self.{name}(x)\n" for name in attribute_names())
    source = (
        "class MLP(nn.Module):\n"
        "    def __init__(self, layers):\n"
        "        super().__init__()\n"
        "        for name, layer in zip(NAMES, layers, strict=True):\n"
        "            self.add_module(name, layer)\n"
        "\n"
        "    def forward(self, x):\n"
        f"{body}"
        "        return x\n"
    )
    namespace: dict[str, Any] = {"nn": nn, "NAMES": attribute_names(), "__name__": __name__}
    exec(compile(source, f"<hand-written MLP, {BLOCKS} blocks>", "exec"), namespace)
    cls: type[nn.Module] = namespace["MLP"]
    return cls


def symgraph_mlp(layers: Sequence[nn.Module]) -> symgraph_torch.SymbolicModel:
    """A ``symgraph_torch.SymbolicModel`` applying ``layers`` in a chain, as users build it."""
    x = symgraph_torch.Input((WIDTH,))
    h = x
    for layer in layers:
        h = layer(h)
    return symgraph_torch.SymbolicModel(x, h).eval()


def pytorch_symbolic_mlp(layers: Sequence[nn.Module]) -> nn.Module | None:
    """pytorch-symbolic's ``SymbolicModel`` over the same chain, or ``None`` if it is not importable."""
    ps = _harness.import_pytorch_symbolic()
    if ps is None:
        return None
    x = ps.Input(shape=(WIDTH,))
    h = x
    for layer in layers:
        h = h(layer)
    model: nn.Module = ps.SymbolicModel(x, h)
    return model.eval()


def module_variants(layers: Sequence[nn.Module]) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """The variants that are modules over ``layers`` (the hand-written baseline first), in eval mode."""
    hand_written = hand_written_class()(layers).eval()
    models: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        HAND_WRITTEN: hand_written,
        SEQUENTIAL: nn.Sequential(*layers).eval(),
        FX: fx.symbolic_trace(hand_written).eval(),
    }
    other = pytorch_symbolic_mlp(layers)
    if other is not None:
        models[PYTORCH_SYMBOLIC] = other
    models[SYMGRAPH] = symgraph_mlp(layers)
    optimized = symgraph_mlp(layers)
    symgraph_torch.optimize_module_calls(optimized)
    models[SYMGRAPH_OPTIMIZED] = optimized
    return models


def build_models() -> tuple[dict[str, dict[str, Callable[[torch.Tensor], torch.Tensor]]], torch.Tensor]:
    """The variants per mode of ``MODES`` (the baseline first), checked against the baseline, and the input batch.

    The modules are the same objects in both modes (``torch_forward_row`` puts
    them in the row's mode before each sample); the floor is built per mode.
    """
    layers = make_layers()
    modules = module_variants(layers)
    torch.manual_seed(1)
    x = torch.randn(BATCH, WIDTH)
    per_mode = {}
    for mode, (training, grad) in MODES.items():
        _harness.set_training(modules, training)
        models = {**modules, FLOOR: _floor.chain_floor(layers)}
        seed = _harness.CHECK_SEED if training else None
        _harness.check_same_outputs(models, HAND_WRITTEN, x, [grad], seed=seed)
        per_mode[mode] = models
    _harness.set_training(modules, False)
    return per_mode, x


def case(quick: bool) -> _harness.Case:
    per_mode, x = build_models()
    rows = [
        _harness.torch_forward_row(
            f"{BLOCKS} blocks, {mode}", per_mode[mode], HAND_WRITTEN, x, grad, MIN_SAMPLE_S, training=training
        )
        for mode, (training, grad) in MODES.items()
    ]
    notes = [
        _harness.TRAIN_MODES_NOTE,
        "The modules of both modes are the same objects, put in the row's mode before each sample; the floor "
        "is built per mode.",
    ]
    if PYTORCH_SYMBOLIC not in per_mode["eval"]:
        notes.append(_harness.PYTORCH_SYMBOLIC_MISSING)
    return _harness.Case(
        name="mlp",
        title=f"{BLOCKS} x (Linear({WIDTH}, {WIDTH}), LayerNorm, GELU, Dropout({DROPOUT})), batch ({BATCH}, {WIDTH}), "
        "forward pass",
        rows=rows,
        legend=LEGEND,
        rounds=30,
        quick_rounds=5,
        passes=2 if quick else 3,
        targets=[_harness.Target(f"{BLOCKS} blocks, {mode}", SYMGRAPH, LIMIT, floor=FLOOR) for mode in MODES],
        notes=notes,
        unit="us",
    )


CASES: _harness.CaseBuilders = {"mlp": case}


if __name__ == "__main__":
    sys.exit(_harness.main(CASES, "python -m benchmarks.mlp", __doc__))
