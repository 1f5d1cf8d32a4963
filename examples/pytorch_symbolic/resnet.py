"""A small CIFAR-style ResNet, written for pytorch-symbolic; only the import names symgraph_torch.

Run it with ``python examples/pytorch_symbolic/resnet.py``.
"""

from __future__ import annotations

import torch
from torch import nn

from symgraph_torch import Input, SymbolicModel


def residual_block(x, channels, stride, name):
    """Two 3x3 convolutions with BatchNorm, and a 1x1 projection when the shape changes."""
    in_channels = x.C
    y = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)(x, custom_name=f"{name}_conv1")
    y = nn.BatchNorm2d(channels)(y, custom_name=f"{name}_bn1")(nn.ReLU())
    y = nn.Conv2d(channels, channels, 3, padding=1, bias=False)(y, custom_name=f"{name}_conv2")
    y = nn.BatchNorm2d(channels)(y, custom_name=f"{name}_bn2")
    if stride != 1 or in_channels != channels:
        x = x(nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False), custom_name=f"{name}_proj")
        x = x(nn.BatchNorm2d(channels), custom_name=f"{name}_proj_bn")
    return nn.ReLU()(y + x)


def build(widths=(8, 16, 32), blocks_per_stage=2, num_classes=10, image_size=32) -> SymbolicModel:
    inputs = Input(shape=(3, image_size, image_size))
    x = nn.Conv2d(inputs.C, widths[0], 3, padding=1, bias=False)(inputs, custom_name="stem_conv")
    x = nn.BatchNorm2d(x.C)(x, custom_name="stem_bn")(nn.ReLU())
    for stage, width in enumerate(widths, start=1):
        for block in range(blocks_per_stage):
            stride = 2 if stage > 1 and block == 0 else 1
            x = residual_block(x, width, stride, name=f"stage{stage}_block{block}")
    x = nn.AvgPool2d(kernel_size=x.HW)(x)(nn.Flatten())
    outputs = nn.Linear(x.features, num_classes)(x, custom_name="head")
    return SymbolicModel(inputs, outputs)


def main() -> None:
    torch.manual_seed(0)
    model = build()
    images = torch.rand(4, 3, 32, 32)
    logits = model(images)
    print("logits:", tuple(logits.shape))
    model.summary()


if __name__ == "__main__":
    main()
