"""symgraph_numpy: the numpy backend of symgraph.

Importing it registers :class:`SymbolicArray` for ``numpy.ndarray`` values. The
plugin is also loaded on its own, through the ``symgraph.backends`` entry point,
the first time an array is wrapped.

Example:
    >>> import numpy as np, symgraph, symgraph_numpy
    >>> x = symgraph.CustomInput(np.arange(3.0))
    >>> symgraph.SymbolicModel(x, x * 2)(np.ones(3))
    array([2., 2., 2.])
"""

import symgraph
from symgraph_numpy._backend import BACKEND, NumpyBackend, SymbolicArray

symgraph.register_backend(BACKEND)

__all__ = ["BACKEND", "NumpyBackend", "SymbolicArray"]
