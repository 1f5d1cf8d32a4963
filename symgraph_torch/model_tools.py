"""Helpers for comparing and inspecting models' parameters.

Example:
    >>> from torch import nn
    >>> from symgraph_torch import model_tools
    >>> model_tools.get_parameter_count(nn.Linear(3, 2))
    8
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

__all__ = [
    "get_parameter_count",
    "get_parameter_shapes",
    "hash_torch_tensor",
    "model_similar",
    "models_have_corresponding_parameters",
]


def get_parameter_count(model: nn.Module, only_trainable: bool = False) -> int:
    """Number of parameter elements, each shared parameter counted once.

    Example:
        >>> from torch import nn
        >>> layer = nn.Linear(3, 2)
        >>> layer.bias.requires_grad_(False)
        Parameter containing:
        tensor(...)
        >>> get_parameter_count(layer), get_parameter_count(layer, only_trainable=True)
        (8, 6)
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not only_trainable)


def get_parameter_shapes(model: nn.Module) -> list[tuple[int, ...]]:
    """Shapes of the parameters, in ``model.parameters()`` order.

    Example:
        >>> from torch import nn
        >>> get_parameter_shapes(nn.Linear(3, 2))
        [(2, 3), (2,)]
    """
    return [tuple(p.shape) for p in model.parameters()]


def model_similar(a: nn.Module, b: nn.Module) -> bool:
    """Whether two models have parameters of the same shapes, in the same order.

    Example:
        >>> from torch import nn
        >>> model_similar(nn.Linear(3, 2), nn.Linear(3, 2)), model_similar(nn.Linear(3, 2), nn.Linear(2, 3))
        (True, False)
    """
    return get_parameter_shapes(a) == get_parameter_shapes(b)


def hash_torch_tensor(tensor: torch.Tensor) -> str:
    """A hex digest of a tensor's dtype, shape and values.

    Example:
        >>> import torch
        >>> hash_torch_tensor(torch.ones(2)) == hash_torch_tensor(torch.ones(2))
        True
    """
    data = tensor.detach().cpu().contiguous()
    digest = hashlib.sha256(f"{data.dtype}{tuple(data.shape)}".encode())
    raw = data.reshape(-1).view(torch.uint8)
    try:
        digest.update(raw.numpy().tobytes())
    except RuntimeError:  # torch was built without numpy support
        digest.update(bytes(raw.tolist()))
    return digest.hexdigest()


def models_have_corresponding_parameters(a: nn.Module, b: nn.Module) -> bool:
    """Whether two models hold equal parameter values, in the same order.

    Example:
        >>> import copy
        >>> from torch import nn
        >>> layer = nn.Linear(3, 2)
        >>> models_have_corresponding_parameters(layer, copy.deepcopy(layer))
        True
    """
    pa, pb = list(a.parameters()), list(b.parameters())
    return len(pa) == len(pb) and all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(pa, pb, strict=True))
