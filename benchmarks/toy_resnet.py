"""Forward pass of the toy ResNet from the Keras functional-API guide: symgraph against hand-written PyTorch.

Run: ``.venv/bin/python -m benchmarks.toy_resnet [--rounds N] [--quick]``
(or as the ``toy_resnet`` case of ``python -m benchmarks``).

The network of pytorch-symbolic's quick start (three convolution blocks, two
residual additions, global average pooling, two linear layers with a dropout
between them), on a CPU batch of 4 images of 16, 32 and 64 px, under
``torch.no_grad()`` and with grad enabled; only the forward pass is timed.
Variants, over the same layer objects (built after ``torch.manual_seed(0)``), all
in eval mode (so that the dropout is the identity and outputs can be compared),
checked to give exactly the baseline's output before timing:

* hand-written nn.Module (the baseline): the seed docs' ``ToyResNet`` class, a
  ``forward`` that calls every layer by attribute;
* ``torch.fx.symbolic_trace`` of it;
* pytorch-symbolic's ``SymbolicModel`` (skipped if not importable);
* symgraph: ``symgraph_torch.SymbolicModel`` (``check_inputs`` on), and, for
  information, the same after ``optimize_module_calls``.

The unrolled module and ``nn.Sequential`` of the ``deep_linear`` case do not
apply: the network branches (two residual additions), and the hand-written
module is already written out layer by layer. There is no limit on this case.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import fx, nn

import symgraph_torch
from benchmarks import _harness
from benchmarks.torch_forward import FX, PYTORCH_SYMBOLIC, SYMGRAPH, SYMGRAPH_OPTIMIZED

SIZES = (16, 32, 64)
BATCH = 4
MODES = _harness.GRAD_MODES
MIN_SAMPLE_S = 0.005

HAND_WRITTEN = "hand-written nn.Module"

LEGEND = {
    HAND_WRITTEN: "baseline; the ToyResNet class of the seed docs, layers called by attribute in forward",
    FX: "torch.fx.symbolic_trace of the hand-written module",
    PYTORCH_SYMBOLIC: "pytorch_symbolic.SymbolicModel 1.2 (PyPI), default code generation",
    SYMGRAPH: "symgraph_torch.SymbolicModel, check_inputs on (as users get it)",
    SYMGRAPH_OPTIMIZED: "the same after symgraph_torch.optimize_module_calls",
}


def pool_size(px: int) -> int:
    """Side of the last feature map for a ``px`` x ``px`` input (what ``x.HW`` gives the symbolic versions)."""
    side = px - 2 - 2  # two 3x3 convolutions without padding
    side //= 3  # MaxPool2d(3)
    return side - 2  # the last 3x3 convolution without padding


def make_layers(px: int) -> dict[str, nn.Module]:
    """The layers of the toy ResNet for ``px`` x ``px`` inputs, by the hand-written class's attribute names."""
    torch.manual_seed(0)
    layers: dict[str, nn.Module] = {
        "relu": nn.ReLU(),
        "block1conv1": nn.Conv2d(3, 32, 3),
        "block1conv2": nn.Conv2d(32, 64, 3),
        "maxpool": nn.MaxPool2d(3),
        "block2conv1": nn.Conv2d(64, 64, 3, padding=1),
        "block2conv2": nn.Conv2d(64, 64, 3, padding=1),
        "block3conv1": nn.Conv2d(64, 64, 3, padding=1),
        "block3conv2": nn.Conv2d(64, 64, 3, padding=1),
        "conv1": nn.Conv2d(64, 64, 3),
        "global_pool": nn.AvgPool2d(pool_size(px)),
        "flatten": nn.Flatten(),
        "linear": nn.Linear(64, 256),
        "dropout": nn.Dropout(0.5),
        "classifier": nn.Linear(256, 10),
    }
    for layer in layers.values():
        layer.eval()
    return layers


class ToyResNet(nn.Module):
    """The hand-written toy ResNet of the seed docs, over given layer objects."""

    relu: nn.Module
    block1conv1: nn.Module
    block1conv2: nn.Module
    maxpool: nn.Module
    block2conv1: nn.Module
    block2conv2: nn.Module
    block3conv1: nn.Module
    block3conv2: nn.Module
    conv1: nn.Module
    global_pool: nn.Module
    flatten: nn.Module
    linear: nn.Module
    dropout: nn.Module
    classifier: nn.Module

    def __init__(self, layers: dict[str, nn.Module]) -> None:
        super().__init__()
        for name, layer in layers.items():
            self.add_module(name, layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.block1conv1(x))
        x = self.relu(self.block1conv2(x))
        block_1_output = self.maxpool(x)

        x = self.relu(self.block2conv1(block_1_output))
        x = self.relu(self.block2conv2(x))
        block_2_output = x + block_1_output

        x = self.relu(self.block3conv1(block_2_output))
        x = self.relu(self.block3conv2(x))
        block_3_output = x + block_2_output

        x = self.relu(self.conv1(block_3_output))
        x = self.global_pool(x)
        x = self.flatten(x)
        x = self.relu(self.linear(x))
        x = self.dropout(x)
        return self.classifier(x)  # type: ignore[no-any-return]


def record(layers: dict[str, nn.Module], inputs: Any, apply: Callable[[nn.Module, Any], Any]) -> Any:
    """The toy ResNet's graph on symbolic ``inputs``; ``apply(layer, x)`` records one layer call."""
    relu = layers["relu"]
    x = apply(relu, apply(layers["block1conv1"], inputs))
    x = apply(relu, apply(layers["block1conv2"], x))
    block_1_output = apply(layers["maxpool"], x)

    x = apply(relu, apply(layers["block2conv1"], block_1_output))
    x = apply(relu, apply(layers["block2conv2"], x))
    block_2_output = x + block_1_output

    x = apply(relu, apply(layers["block3conv1"], block_2_output))
    x = apply(relu, apply(layers["block3conv2"], x))
    block_3_output = x + block_2_output

    x = apply(relu, apply(layers["conv1"], block_3_output))
    x = apply(layers["flatten"], apply(layers["global_pool"], x))
    x = apply(relu, apply(layers["linear"], x))
    x = apply(layers["dropout"], x)
    return apply(layers["classifier"], x)


def symgraph_resnet(layers: dict[str, nn.Module], px: int) -> symgraph_torch.SymbolicModel:
    inputs = symgraph_torch.Input(shape=(3, px, px))
    outputs = record(layers, inputs, lambda layer, x: layer(x))
    model = symgraph_torch.SymbolicModel(inputs, outputs)
    return model.eval()


def pytorch_symbolic_resnet(layers: dict[str, nn.Module], px: int) -> nn.Module | None:
    ps = _harness.import_pytorch_symbolic()
    if ps is None:
        return None
    inputs = ps.Input(shape=(3, px, px))
    outputs = record(layers, inputs, lambda layer, x: x(layer))
    model: nn.Module = ps.SymbolicModel(inputs, outputs)
    return model.eval()


def build_models(px: int) -> tuple[dict[str, Callable[[torch.Tensor], torch.Tensor]], torch.Tensor]:
    """Every variant over one set of layers for ``px`` x ``px`` inputs (the baseline first), and the input batch."""
    layers = make_layers(px)
    hand_written = ToyResNet(layers).eval()
    models: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        HAND_WRITTEN: hand_written,
        FX: fx.symbolic_trace(hand_written).eval(),
    }
    other = pytorch_symbolic_resnet(layers, px)
    if other is not None:
        models[PYTORCH_SYMBOLIC] = other
    models[SYMGRAPH] = symgraph_resnet(layers, px)
    optimized = symgraph_resnet(layers, px)
    symgraph_torch.optimize_module_calls(optimized)
    models[SYMGRAPH_OPTIMIZED] = optimized
    torch.manual_seed(1)
    x = torch.rand(BATCH, 3, px, px)
    _harness.check_same_outputs(models, HAND_WRITTEN, x, MODES.values())
    return models, x


def case(quick: bool) -> _harness.Case:
    builds = [(f"{px} px", *build_models(px)) for px in SIZES]
    have_pytorch_symbolic = all(PYTORCH_SYMBOLIC in models for _, models, _ in builds)
    rows = _harness.torch_forward_rows(builds, HAND_WRITTEN, MIN_SAMPLE_S)
    notes = [
        "Unrolled module and nn.Sequential do not apply: the network branches (two residual additions), "
        "and the hand-written module already calls its layers one by one.",
        "All models in eval mode (dropout off) so that outputs can be compared; only the forward pass is timed.",
    ]
    if not have_pytorch_symbolic:
        notes.append(_harness.PYTORCH_SYMBOLIC_MISSING)
    return _harness.Case(
        name="toy_resnet",
        title=f"toy ResNet (Keras guide), batch {BATCH}, forward pass",
        rows=rows,
        legend=LEGEND,
        rounds=15,
        quick_rounds=3,
        passes=2 if quick else 3,
        notes=notes,
        unit="ms",
    )


CASES: _harness.CaseBuilders = {"toy_resnet": case}


if __name__ == "__main__":
    sys.exit(_harness.main(CASES, "python -m benchmarks.toy_resnet", __doc__))
