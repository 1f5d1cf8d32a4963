"""Forward pass of the toy ResNet from the Keras functional-API guide: symgraph against hand-written PyTorch.

Run: ``.venv/bin/python -m benchmarks.toy_resnet [--rounds N] [--quick]``
(or as the ``toy_resnet`` and ``toy_resnet_bn`` cases of ``python -m benchmarks``).

The network of pytorch-symbolic's quick start (three convolution blocks, two
residual additions, global average pooling, two linear layers with a dropout
between them), on a CPU batch of 4 images; only the forward pass is timed, and
its output (with its autograd graph) is released after the clock stops. Two
cases:

* ``toy_resnet``: the network as the seed docs write it, at 16, 32 and 64 px,
  all models in eval mode (the dropout is the identity), under
  ``torch.no_grad()`` and with grad enabled;
* ``toy_resnet_bn``: the same network with a ``BatchNorm2d`` after each of its
  seven convolutions (before the ReLU), at 16 and 64 px, in two modes: *eval*
  (``model.eval()`` under ``torch.no_grad()``: inference) and *train*
  (``model.train()`` with grad enabled: the forward pass of a training step,
  batch statistics, running-statistics updates and a random dropout mask).

Variants, over the same layer objects (built after ``torch.manual_seed(0)``),
checked to give exactly the baseline's output (``torch.equal``) in each mode
before timing, with ``torch.manual_seed`` before every compared call in train
mode; in train mode every variant is also checked to update the BatchNorm
buffers (``running_mean``, ``running_var``, ``num_batches_tracked``) exactly as
the baseline does, from the same starting values:

* hand-written nn.Module (the baseline): the seed docs' ``ToyResNet`` class (and
  ``ToyResNetBN``, the same with its norms), a ``forward`` that calls every
  layer by attribute;
* ``torch.fx.symbolic_trace`` of it;
* pytorch-symbolic's ``SymbolicModel`` (skipped if not importable);
* symgraph: ``symgraph_torch.SymbolicModel`` (``check_inputs`` on), and, for
  information, the same after ``optimize_module_calls``;
* the floor, for information: the network as one straight-line function of
  ``F.conv2d``, ``F.batch_norm``, ``F.relu``, ``F.max_pool2d``,
  ``F.avg_pool2d``, ``flatten``, ``F.linear`` and ``F.dropout`` calls on the
  same tensors, with the layers' settings of the row's mode read at build
  (``benchmarks._floor``).

The unrolled module and ``nn.Sequential`` of the ``deep_linear`` case do not
apply: the network branches (two residual additions), and the hand-written
module is already written out layer by layer.

Targets: with BatchNorm, symgraph takes at most 0.90x the hand-written module's
time at 16 px and at most 1.00x at 64 px, in both modes; without it, at most
1.00x at 64 px, in both grad modes. The report gives each target's ratio to the
floor beside the verdict.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import fx, nn

import symgraph_torch
from benchmarks import _floor, _harness
from benchmarks.torch_forward import FX, PYTORCH_SYMBOLIC, SYMGRAPH, SYMGRAPH_OPTIMIZED

SIZES = (16, 32, 64)
BN_SIZES = (16, 64)
BATCH = 4
MODES = _harness.GRAD_MODES
TRAIN_MODES = _harness.TRAIN_MODES
MIN_SAMPLE_S = 0.005
#: Limits on symgraph / hand-written: by size, for the plain network (both grad modes).
LIMITS = {64: 1.00}
#: The same with BatchNorm, in both modes.
BN_LIMITS = {16: 0.90, 64: 1.00}

HAND_WRITTEN = "hand-written nn.Module"
FLOOR = "F.* floor (info)"

LEGEND = {
    HAND_WRITTEN: "baseline; the ToyResNet class of the seed docs, layers called by attribute in forward",
    FX: "torch.fx.symbolic_trace of the hand-written module",
    PYTORCH_SYMBOLIC: "pytorch_symbolic.SymbolicModel 1.2 (PyPI), default code generation",
    SYMGRAPH: "symgraph_torch.SymbolicModel, check_inputs on (as users get it)",
    SYMGRAPH_OPTIMIZED: "the same after symgraph_torch.optimize_module_calls",
    FLOOR: "straight-line F.conv2d / F.relu / F.max_pool2d / ... calls on the layers' tensors and settings, "
    "read at build (no modules)",
}
BN_LEGEND = {
    **LEGEND,
    HAND_WRITTEN: "baseline; ToyResNetBN, the seed docs' ToyResNet with a BatchNorm2d after each convolution, "
    "layers called by attribute in forward",
    FLOOR: "straight-line F.conv2d / F.batch_norm (running statistics updated in train mode) / F.relu / ... "
    "calls on the layers' tensors, with the mode's settings read at build (no modules)",
}

#: The BatchNorm2d that follows each convolution in ``toy_resnet_bn``, by the convolution's name.
NORM_OF = {
    "block1conv1": "block1bn1",
    "block1conv2": "block1bn2",
    "block2conv1": "block2bn1",
    "block2conv2": "block2bn2",
    "block3conv1": "block3bn1",
    "block3conv2": "block3bn2",
    "conv1": "bn1",
}


def pool_size(px: int) -> int:
    """Side of the last feature map for a ``px`` x ``px`` input (what ``x.HW`` gives the symbolic versions)."""
    side = px - 2 - 2  # two 3x3 convolutions without padding
    side //= 3  # MaxPool2d(3)
    return side - 2  # the last 3x3 convolution without padding


def make_layers(px: int, batch_norm: bool = False) -> dict[str, nn.Module]:
    """The toy ResNet's layers for ``px`` x ``px`` inputs, by the hand-written class's attribute names, in eval mode.

    With ``batch_norm``, also a ``BatchNorm2d`` per convolution (``NORM_OF``),
    drawn after the others so that those are the plain network's, with random
    affine parameters and running statistics: a fresh norm is the identity in
    eval mode, which would hide a mix-up of its tensors.
    """
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
    if batch_norm:
        for conv, norm_name in NORM_OF.items():
            convolution = layers[conv]
            assert isinstance(convolution, nn.Conv2d)
            norm = nn.BatchNorm2d(convolution.out_channels)
            assert norm.running_mean is not None and norm.running_var is not None
            with torch.no_grad():
                norm.weight.uniform_(0.5, 1.5)
                norm.bias.uniform_(-0.2, 0.2)
                norm.running_mean.uniform_(-0.2, 0.2)
                norm.running_var.uniform_(0.5, 1.5)
            layers[norm_name] = norm
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


class ToyResNetBN(ToyResNet):
    """The same network with a ``BatchNorm2d`` after each convolution, as one would write it by hand."""

    block1bn1: nn.Module
    block1bn2: nn.Module
    block2bn1: nn.Module
    block2bn2: nn.Module
    block3bn1: nn.Module
    block3bn2: nn.Module
    bn1: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.block1bn1(self.block1conv1(x)))
        x = self.relu(self.block1bn2(self.block1conv2(x)))
        block_1_output = self.maxpool(x)

        x = self.relu(self.block2bn1(self.block2conv1(block_1_output)))
        x = self.relu(self.block2bn2(self.block2conv2(x)))
        block_2_output = x + block_1_output

        x = self.relu(self.block3bn1(self.block3conv1(block_2_output)))
        x = self.relu(self.block3bn2(self.block3conv2(x)))
        block_3_output = x + block_2_output

        x = self.relu(self.bn1(self.conv1(block_3_output)))
        x = self.global_pool(x)
        x = self.flatten(x)
        x = self.relu(self.linear(x))
        x = self.dropout(x)
        return self.classifier(x)  # type: ignore[no-any-return]


def record(layers: dict[str, nn.Module], inputs: Any, apply: Callable[[nn.Module, Any], Any]) -> Any:
    """The toy ResNet's graph on symbolic ``inputs``; ``apply(layer, x)`` records one layer call.

    Where ``layers`` has the norms of ``NORM_OF``, each convolution is followed
    by its norm (the ``toy_resnet_bn`` network).
    """
    relu = layers["relu"]

    def conv(name: str, x: Any) -> Any:
        x = apply(layers[name], x)
        norm = layers.get(NORM_OF[name])
        return x if norm is None else apply(norm, x)

    x = apply(relu, conv("block1conv1", inputs))
    x = apply(relu, conv("block1conv2", x))
    block_1_output = apply(layers["maxpool"], x)

    x = apply(relu, conv("block2conv1", block_1_output))
    x = apply(relu, conv("block2conv2", x))
    block_2_output = x + block_1_output

    x = apply(relu, conv("block3conv1", block_2_output))
    x = apply(relu, conv("block3conv2", x))
    block_3_output = x + block_2_output

    x = apply(relu, conv("conv1", block_3_output))
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


def floor_resnet(layers: dict[str, nn.Module]) -> Callable[[torch.Tensor], torch.Tensor]:
    """The network as straight-line functional calls, with the layers' current settings (their mode included)."""
    builder = _floor.FloorBuilder()
    return builder.function(record(layers, builder.input(), builder.apply))


def module_variants(layers: dict[str, nn.Module], px: int) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """The variants that are modules over ``layers`` (the hand-written baseline first), in eval mode."""
    hand_written = (ToyResNetBN if NORM_OF["conv1"] in layers else ToyResNet)(layers).eval()
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
    return models


def input_batch(px: int) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(BATCH, 3, px, px)


def build_models(px: int) -> tuple[dict[str, Callable[[torch.Tensor], torch.Tensor]], torch.Tensor]:
    """Every variant of the plain network for ``px`` x ``px`` inputs (the baseline first), and the input batch."""
    layers = make_layers(px)
    models = module_variants(layers, px)
    models[FLOOR] = floor_resnet(layers)
    x = input_batch(px)
    _harness.check_same_outputs(models, HAND_WRITTEN, x, MODES.values())
    return models, x


def build_bn_models(px: int) -> tuple[dict[str, dict[str, Callable[[torch.Tensor], torch.Tensor]]], torch.Tensor]:
    """The variants of the BatchNorm network per mode of ``TRAIN_MODES``, checked, and the input batch.

    The modules are the same objects in both modes (``torch_forward_row`` puts
    them in the row's mode before each sample); the floor is built per mode.
    """
    layers = make_layers(px, batch_norm=True)
    modules = module_variants(layers, px)
    x = input_batch(px)
    buffers = {f"{name}.{key}": b for name, layer in layers.items() for key, b in layer.named_buffers()}
    per_mode = {}
    for mode, (training, grad) in TRAIN_MODES.items():
        _harness.set_training(modules, training)
        models = {**modules, FLOOR: floor_resnet(layers)}
        seed = _harness.CHECK_SEED if training else None
        _harness.check_same_outputs(models, HAND_WRITTEN, x, [grad], seed=seed)
        if training:
            with torch.set_grad_enabled(grad):
                _harness.check_same_buffer_updates(models, HAND_WRITTEN, x, buffers)
        per_mode[mode] = models
    _harness.set_training(modules, False)
    return per_mode, x


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
        targets=[
            _harness.Target(f"{px} px, {mode}", SYMGRAPH, limit, floor=FLOOR)
            for px, limit in LIMITS.items()
            for mode in MODES
        ],
        notes=notes,
        unit="ms",
    )


def bn_case(quick: bool) -> _harness.Case:
    rows = []
    have_pytorch_symbolic = True
    for px in BN_SIZES:
        per_mode, x = build_bn_models(px)
        for mode, (training, grad) in TRAIN_MODES.items():
            models = per_mode[mode]
            have_pytorch_symbolic &= PYTORCH_SYMBOLIC in models
            rows.append(
                _harness.torch_forward_row(
                    f"{px} px, {mode}", models, HAND_WRITTEN, x, grad, MIN_SAMPLE_S, training=training
                )
            )
    notes = [
        _harness.TRAIN_MODES_NOTE,
        "In train mode every variant was also checked to update the BatchNorm running statistics and "
        "num_batches_tracked exactly as the hand-written module does.",
        "The modules of both modes are the same objects, put in the row's mode before each sample; the floor "
        "is built per mode.",
    ]
    if not have_pytorch_symbolic:
        notes.append(_harness.PYTORCH_SYMBOLIC_MISSING)
    return _harness.Case(
        name="toy_resnet_bn",
        title=f"toy ResNet with BatchNorm2d after each convolution, batch {BATCH}, forward pass",
        rows=rows,
        legend=BN_LEGEND,
        rounds=15,
        quick_rounds=3,
        passes=2 if quick else 3,
        targets=[
            _harness.Target(f"{px} px, {mode}", SYMGRAPH, limit, floor=FLOOR)
            for px, limit in BN_LIMITS.items()
            for mode in TRAIN_MODES
        ],
        notes=notes,
        unit="ms",
    )


CASES: _harness.CaseBuilders = {"toy_resnet": case, "toy_resnet_bn": bn_case}


if __name__ == "__main__":
    sys.exit(_harness.main(CASES, "python -m benchmarks.toy_resnet", __doc__))
