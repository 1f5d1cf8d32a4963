"""Module-level layers and functions for test_torch_saving.py.

The symgraph format names classes and functions by import path, so the ones a
saved model uses must live at the top level of an importable module, not inside
a test function.
"""

from __future__ import annotations

import torch
from torch import nn


class Scale(nn.Module):
    """Keeps its constructor argument under the argument's own name: saveable as it is."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


class Renamed(nn.Module):
    """Keeps its argument ``factor`` as ``k``: its arguments cannot be read back without a spec function."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.k = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.k


class WithTensor(nn.Module):
    """Holds a plain tensor attribute (neither a parameter nor a buffer), which no constructor argument gives."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.offset = torch.ones(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.offset


def double(t: torch.Tensor) -> torch.Tensor:
    """A module-level function for ``add_to_graph``."""
    return t * 2
