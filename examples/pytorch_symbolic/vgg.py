"""A scaled-down VGG built from a config list, written for pytorch-symbolic; only the import names symgraph_torch.

Run it with ``python examples/pytorch_symbolic/vgg.py``.
"""

from __future__ import annotations

import torch
from torch import nn

from symgraph_torch import Input, SymbolicModel

# Numbers are 3x3 convolutions with that many channels, "M" a 2x2 max pool.
CONFIG = [16, "M", 32, "M", 64, 64, "M", 128, 128, "M"]


def build(config=CONFIG, num_classes=10, image_size=32, hidden=64, dropout=0.5) -> SymbolicModel:
    inputs = Input(shape=(3, image_size, image_size))
    x = inputs
    for item in config:
        if item == "M":
            x = x(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            x = x(nn.Conv2d(x.C, item, kernel_size=3, padding=1))(nn.BatchNorm2d(item))(nn.ReLU(inplace=True))
    x = nn.Flatten()(x)
    x = nn.Linear(x.features, hidden)(x)(nn.ReLU(inplace=True))(nn.Dropout(dropout))
    x = nn.Linear(x.features, hidden)(x)(nn.ReLU(inplace=True))(nn.Dropout(dropout))
    outputs = nn.Linear(x.features, num_classes)(x)
    return SymbolicModel(inputs, outputs)


def main() -> None:
    torch.manual_seed(0)
    model = build()
    model.eval()
    logits = model(torch.rand(4, 3, 32, 32))
    print("logits:", tuple(logits.shape))
    model.summary()


if __name__ == "__main__":
    main()
