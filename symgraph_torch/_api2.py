"""``SymbolicAPI2ContextManager``: pytorch-symbolic's switch for calling layers on symbolic values in a block."""

from __future__ import annotations

from typing import Any

from torch import nn

from symgraph_torch._tracing import _original_call, install_module_call_hook, uninstall_module_call_hook

__all__ = ["SymbolicAPI2ContextManager"]


class SymbolicAPI2ContextManager:
    """Within the block, any ``nn.Module`` called on symbolic values records the call (``layer(x)``).

    :mod:`symgraph_torch` turns this on at import unless
    ``PYTORCH_SYMBOLIC_API_2_ENABLED_BY_DEFAULT`` is false (see
    :mod:`symgraph_torch.config`), so the block matters only then. On leaving,
    layer calls are as they were before the block: still on if they were on.
    Blocks nest.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from symgraph_torch import Input, SymbolicAPI2ContextManager, SymbolicModel
        >>> layer = nn.Linear(3, 2)
        >>> with SymbolicAPI2ContextManager():
        ...     x = Input((3,))
        ...     model = SymbolicModel(x, layer(x))
        >>> data = torch.rand(4, 3)
        >>> torch.equal(model(data), layer(data))
        True
    """

    def __init__(self) -> None:
        self._before: list[bool] = []

    def __enter__(self) -> SymbolicAPI2ContextManager:
        self._before.append(nn.Module.__call__ is not _original_call)
        install_module_call_hook()
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self._before.pop():
            uninstall_module_call_hook()
