"""symgraph_torch: the PyTorch backend of symgraph.

Importing it registers :class:`SymbolicTensor` for ``torch.Tensor`` values. The
plugin is also loaded on its own, through the ``symgraph.backends`` entry point,
the first time a tensor is wrapped.

Example:
    >>> import torch, symgraph, symgraph_torch
    >>> x = symgraph.CustomInput(torch.ones(2, 3))
    >>> isinstance(x, symgraph_torch.SymbolicTensor)
    True
"""

import symgraph
from symgraph_torch._backend import BACKEND, SymbolicTensor, TorchBackend

symgraph.register_backend(BACKEND)

__all__ = ["BACKEND", "SymbolicTensor", "TorchBackend"]
