"""pytorch-symbolic's "symbolic API 2" switches: whether ``layer(x)`` records a call on symbolic values.

Here one hook on ``nn.Module.__call__`` (see :func:`symgraph_torch._tracing.install_module_call_hook`)
does the recording, for modules made before and after it is installed alike;
these functions turn it on and off under pytorch-symbolic's names.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from symgraph_torch._tracing import (
    _call_with_symbolic_check,
    _delegating_call,
    install_module_call_hook,
    uninstall_module_call_hook,
)

__all__ = [
    "SymbolicAPI2ContextManager",
    "disable_symbolic_api_2_for_new_modules",
    "enable_symbolic_api_2_for_new_modules",
    "is_symbolic_api_2_enabled",
]


def is_symbolic_api_2_enabled() -> bool:
    """Whether calling an ``nn.Module`` on symbolic values records the call (``layer(x)``).

    True after importing :mod:`symgraph_torch`, unless
    ``PYTORCH_SYMBOLIC_API_2_ENABLED_BY_DEFAULT`` is false (see
    :mod:`symgraph_torch.config`).

    Example:
        >>> import symgraph_torch
        >>> from symgraph_torch.symbolic_api_2 import is_symbolic_api_2_enabled
        >>> is_symbolic_api_2_enabled()
        True
    """
    return nn.Module.__call__ in (_call_with_symbolic_check, _delegating_call)


def enable_symbolic_api_2_for_new_modules() -> None:
    """Make calling any ``nn.Module`` on symbolic values record the call, from now on.

    pytorch-symbolic turns its call wrapper on when the next module is made;
    here the hook is installed at once and covers every module, whenever it
    was made. Calling it when recording is on already changes nothing.

    Example:
        >>> from torch import nn
        >>> from symgraph_torch import Input
        >>> from symgraph_torch.symbolic_api_2 import (
        ...     disable_symbolic_api_2_for_new_modules,
        ...     enable_symbolic_api_2_for_new_modules,
        ...     is_symbolic_api_2_enabled,
        ... )
        >>> layer = nn.Linear(3, 2)
        >>> disable_symbolic_api_2_for_new_modules()
        >>> is_symbolic_api_2_enabled()
        False
        >>> enable_symbolic_api_2_for_new_modules()
        >>> layer(Input((3,))).shape  # a layer made before still records
        (None, 2)
    """
    install_module_call_hook()


def disable_symbolic_api_2_for_new_modules() -> None:
    """Stop recording ``layer(x)`` on symbolic values: modules are called as torch calls them.

    ``x(layer)`` and :func:`symgraph_torch.add_to_graph` still record. A
    :class:`SymbolicAPI2ContextManager` block turns ``layer(x)`` on again for
    its duration. Unlike pytorch-symbolic's, whose call wrapper stays on until
    something else removes it, this takes effect at once.

    Example:
        >>> from torch import nn
        >>> from symgraph_torch import Input
        >>> from symgraph_torch.symbolic_api_2 import (
        ...     disable_symbolic_api_2_for_new_modules,
        ...     enable_symbolic_api_2_for_new_modules,
        ... )
        >>> x = Input((3,))
        >>> disable_symbolic_api_2_for_new_modules()
        >>> x(nn.Linear(3, 2)).shape
        (None, 2)
        >>> enable_symbolic_api_2_for_new_modules()
    """
    uninstall_module_call_hook()


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
        self._before.append(is_symbolic_api_2_enabled())
        install_module_call_hook()
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self._before.pop():
            uninstall_module_call_hook()
