"""A small conditional U-Net with two inputs and two outputs, written for pytorch-symbolic.

Only the import names symgraph_torch. The encoder halves the image twice, the
decoder doubles it back and concatenates the encoder's feature maps of the same
size (skip connections); a condition vector shifts the bottleneck. The model
returns a per-pixel map and image-level logits read from the bottleneck.

Run it with ``python examples/pytorch_symbolic/encoder_decoder.py``.
"""

from __future__ import annotations

import torch
from torch import nn

from symgraph_torch import Input, SymbolicModel, useful_layers


def conv_block(x, channels):
    x = nn.Conv2d(x.C, channels, 3, padding=1)(x)(nn.BatchNorm2d(channels))(nn.ReLU())
    return nn.Conv2d(channels, channels, 3, padding=1)(x)(nn.BatchNorm2d(channels))(nn.ReLU())


def build(in_channels=3, out_channels=2, condition_size=6, num_classes=5, width=8, image_size=16) -> SymbolicModel:
    image = Input(shape=(in_channels, image_size, image_size))
    condition = Input(shape=(condition_size,))

    skip1 = conv_block(image, width)
    skip2 = conv_block(nn.MaxPool2d(2)(skip1), 2 * width)
    bottleneck = conv_block(nn.MaxPool2d(2)(skip2), 4 * width)
    shift = nn.Linear(condition.features, bottleneck.C)(condition)
    bottleneck = bottleneck + useful_layers.ReshapeLayer((bottleneck.C, 1, 1))(shift)

    x = nn.ConvTranspose2d(bottleneck.C, 2 * width, 2, stride=2)(bottleneck)
    x = conv_block(useful_layers.ConcatLayer(dim=1)(x, skip2), 2 * width)
    x = nn.ConvTranspose2d(x.C, width, 2, stride=2)(x)
    x = conv_block(useful_layers.ConcatLayer(dim=1)(x, skip1), width)
    pixel_map = nn.Conv2d(x.C, out_channels, 1)(x, custom_name="pixel_head")

    pooled = nn.AdaptiveAvgPool2d(1)(bottleneck)(nn.Flatten())
    logits = nn.Linear(pooled.features, num_classes)(pooled, custom_name="class_head")
    return SymbolicModel((image, condition), (pixel_map, logits))


def main() -> None:
    torch.manual_seed(0)
    model = build()
    model.eval()
    pixel_map, logits = model(torch.rand(3, 3, 16, 16), torch.rand(3, 6))
    print("pixel map:", tuple(pixel_map.shape), "logits:", tuple(logits.shape))
    model.summary()


if __name__ == "__main__":
    main()
