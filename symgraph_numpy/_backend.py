"""The numpy backend: which values it handles and how they are described."""

from __future__ import annotations

from typing import Any

import numpy as np

import symgraph

__all__ = ["BACKEND", "NumpyBackend", "SymbolicArray"]


class SymbolicArray(symgraph.SymbolicData):
    """A symbolic ``numpy.ndarray``.

    Example:
        >>> import numpy as np, symgraph
        >>> type(symgraph.CustomInput(np.zeros(3))).__name__
        'SymbolicArray'
    """

    __slots__ = ()


class NumpyBackend(symgraph.Backend):
    """Registers :class:`SymbolicArray` for ``numpy.ndarray`` values.

    Example:
        >>> import numpy as np
        >>> NumpyBackend().describe(np.zeros((2, 3)))
        '(2, 3)'
    """

    name = "numpy"
    types = (np.ndarray,)
    symbolic_class = SymbolicArray

    def describe(self, value: Any) -> str:
        """The array's shape."""
        return str(tuple(value.shape))


BACKEND = NumpyBackend()
