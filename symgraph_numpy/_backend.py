"""The numpy backend: which values it handles and how they are described."""

from __future__ import annotations

from typing import Any

import numpy as np

from symgraph.plugin import Backend
from symgraph_numpy._array import SymbolicArray

__all__ = ["BACKEND", "NumpyBackend"]


class NumpyBackend(Backend):
    """Registers :class:`SymbolicArray` for numpy arrays and numpy scalars.

    Scalars (``np.float64``, what ``x.sum()`` returns) are included so that they
    keep recording numpy calls.

    Example:
        >>> import numpy as np
        >>> NumpyBackend().describe(np.zeros((2, 3))), NumpyBackend().describe(np.float64(1))
        ('(2, 3)', '()')
    """

    name = "numpy"
    types = (np.ndarray, np.generic)
    symbolic_class = SymbolicArray

    def describe(self, value: Any) -> str:
        """The array's shape."""
        return str(tuple(np.shape(value)))


BACKEND = NumpyBackend()
"""The numpy backend, registered when ``symgraph_numpy`` is imported."""
