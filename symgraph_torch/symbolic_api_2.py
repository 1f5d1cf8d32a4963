"""pytorch-symbolic's ``symbolic_api_2`` module: switches for recording ``layer(x)`` on symbolic values.

Example:
    >>> from symgraph_torch import symbolic_api_2
    >>> symbolic_api_2.is_symbolic_api_2_enabled()
    True
"""

from __future__ import annotations

from symgraph_torch._api2 import (
    SymbolicAPI2ContextManager,
    disable_symbolic_api_2_for_new_modules,
    enable_symbolic_api_2_for_new_modules,
    is_symbolic_api_2_enabled,
)
from symgraph_torch._model import optimize_module_calls

__all__ = [
    "SymbolicAPI2ContextManager",
    "disable_symbolic_api_2_for_new_modules",
    "enable_symbolic_api_2_for_new_modules",
    "is_symbolic_api_2_enabled",
    "optimize_module_calls",
]
