"""pytorch-symbolic's home of ``add_to_model``; the same as :func:`symgraph_torch.add_to_graph`.

Example:
    >>> import torch
    >>> from symgraph_torch import Input
    >>> from symgraph_torch.functions_utility import add_to_model
    >>> a, b = Input((1, 2, 3)), Input((5, 2, 3))
    >>> add_to_model(torch.concat, (a, b), dim=1).shape
    (None, 6, 2, 3)
"""

from __future__ import annotations

from symgraph import add_to_graph

__all__ = ["add_to_graph", "add_to_model"]

add_to_model = add_to_graph
"""pytorch-symbolic's name for `symgraph.add_to_graph`: the same function."""
