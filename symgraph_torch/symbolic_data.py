"""pytorch-symbolic's ``symbolic_data`` module: the symbolic value classes and the inputs.

:class:`SymbolicData` is the class of every symbolic value (symgraph's handle);
:class:`SymbolicTensor` is what :func:`Input` returns and layers produce;
:func:`CustomInput` wraps any other value in the class :func:`SymbolicFactory`
makes for its type, or :class:`SymbolicCallable` for a callable.

Example:
    >>> from symgraph_torch import symbolic_data
    >>> x = symbolic_data.Input((3,))
    >>> f = symbolic_data.CustomInput(len)
    >>> isinstance(x, symbolic_data.SymbolicTensor), isinstance(f, symbolic_data.SymbolicCallable)
    (True, True)
    >>> all(isinstance(v, symbolic_data.SymbolicData) for v in (x, f, x + 1, f([1, 2])))
    True
"""

from __future__ import annotations

from symgraph.plugin import SymbolicData
from symgraph_torch._compat import SymbolicCallable, SymbolicFactory
from symgraph_torch._input import CustomInput, Input
from symgraph_torch._tensor import SymbolicTensor

__all__ = ["CustomInput", "Input", "SymbolicCallable", "SymbolicData", "SymbolicFactory", "SymbolicTensor"]
