"""Helpers for comparing and inspecting models' parameters, and for the shapes they give.

Example:
    >>> from torch import nn
    >>> from symgraph_torch import model_tools
    >>> model_tools.get_parameter_count(nn.Linear(3, 2))
    8
"""

from __future__ import annotations

import collections
import hashlib

import torch
from torch import nn

from symgraph_torch._shapes import infer_shapes, infer_step_shapes

__all__ = [
    "get_parameter_count",
    "get_parameter_shapes",
    "hash_torch_tensor",
    "infer_shapes",
    "infer_step_shapes",
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
    """Whether two models have as many parameter elements, in parameters of the same shapes, in any order.

    Example:
        >>> from torch import nn
        >>> model_similar(nn.Linear(3, 2), nn.Linear(3, 2)), model_similar(nn.Linear(3, 2), nn.Linear(2, 3))
        (True, False)
        >>> linear, conv = nn.Linear(3, 3), nn.Conv1d(3, 3, 1)
        >>> model_similar(nn.Sequential(linear, conv), nn.Sequential(conv, linear))  # in any order
        True
    """
    if get_parameter_count(a) != get_parameter_count(b):
        return False
    return sorted(get_parameter_shapes(a)) == sorted(get_parameter_shapes(b))


def _digest(tensor: torch.Tensor) -> bytes:
    """SHA-256 of a tensor's dtype, shape and raw bytes."""
    data = tensor.detach().cpu().contiguous()
    digest = hashlib.sha256(f"{data.dtype}{tuple(data.shape)}".encode())
    raw = data.reshape(-1).view(torch.uint8)
    try:
        digest.update(raw.numpy().tobytes())
    except RuntimeError:  # torch was built without numpy support
        digest.update(bytes(raw.tolist()))
    return digest.digest()


def hash_torch_tensor(tensor: torch.Tensor) -> int:
    """A hash of a tensor's dtype, shape and values (its raw bytes), as an int.

    Unlike Python's ``hash`` of bytes, it is the same in every process, for
    every dtype (``bfloat16`` included).

    Example:
        >>> import torch
        >>> hash_torch_tensor(torch.ones(2)) == hash_torch_tensor(torch.ones(2))
        True
        >>> hash_torch_tensor(torch.ones(2)) == hash_torch_tensor(torch.ones(2, dtype=torch.float64))
        False
    """
    return int.from_bytes(_digest(tensor)[:8], "big", signed=True)


def models_have_corresponding_parameters(a: nn.Module, b: nn.Module) -> bool:
    """Whether two models hold the same parameter values, in any order: equal dtypes, shapes and bytes.

    Each value must occur as many times in both models.

    Example:
        >>> import copy
        >>> from torch import nn
        >>> layer = nn.Linear(3, 2)
        >>> models_have_corresponding_parameters(layer, copy.deepcopy(layer))
        True
        >>> models_have_corresponding_parameters(layer, nn.Linear(3, 2))
        False
    """
    return collections.Counter(map(_digest, a.parameters())) == collections.Counter(map(_digest, b.parameters()))
