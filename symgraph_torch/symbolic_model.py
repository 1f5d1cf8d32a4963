"""pytorch-symbolic's ``symbolic_model`` module: the model classes.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from symgraph_torch import Input
    >>> from symgraph_torch.symbolic_model import DetachedSymbolicModel, SymbolicModel
    >>> x = Input((4,))
    >>> model = SymbolicModel(x, nn.Linear(4, 2)(x))
    >>> isinstance(model.detach_from_graph(), DetachedSymbolicModel)
    True
"""

from __future__ import annotations

from symgraph_torch._model import DetachedSymbolicModel, SymbolicModel

__all__ = ["DetachedSymbolicModel", "SymbolicModel"]
