"""The torch backend: which values it handles and how they are described."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from symgraph.plugin import Backend
from symgraph_torch._tensor import SymbolicTensor

__all__ = ["BACKEND", "TorchBackend"]


class TorchBackend(Backend):
    """Registers :class:`SymbolicTensor` for tensors and counts module parameters.

    Example:
        >>> import torch
        >>> TorchBackend().describe(torch.zeros(2, 3))
        '(2, 3)'
    """

    name = "torch"
    types = (torch.Tensor,)
    symbolic_class = SymbolicTensor

    def describe(self, value: Any) -> str:
        """The tensor's shape."""
        return str(tuple(value.shape))

    def parameters(self, obj: Any) -> Iterable[tuple[Any, int, bool]] | None:
        """Parameters of an ``nn.Module``; ``None`` for anything else."""
        if not isinstance(obj, nn.Module):
            return None
        return [(p, p.numel(), p.requires_grad) for p in obj.parameters()]


BACKEND = TorchBackend()
"""The torch backend, registered when ``symgraph_torch`` is imported."""
