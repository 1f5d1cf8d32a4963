"""symgraph_numpy: record numpy pipelines once, replay them on numpy, dask or any array.

Importing it registers :class:`SymbolicArray` for numpy arrays and scalars. The
plugin is also loaded on its own, through the ``symgraph.backends`` entry point,
the first time an array is wrapped by ``symgraph.CustomInput``.

Example:
    >>> import numpy as np
    >>> import symgraph_numpy as snp
    >>> x = snp.Input((None, 3))
    >>> z = (x - x.mean(axis=0)) / x.std(axis=0)
    >>> model = snp.SymbolicModel(x, np.abs(z).max(axis=1))
    >>> model(np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]]))
    array([1., 1.])
"""

try:
    import numpy  # noqa: F401 - imported first, to say what is missing when it is
except ModuleNotFoundError as _missing:
    if _missing.name != "numpy":
        raise
    raise ImportError(
        "symgraph_numpy needs numpy, which is not installed here; install the extra: pip install 'symgraph-py[numpy]'",
        name="numpy",
    ) from _missing


from symgraph import SymbolicModel, add_to_graph
from symgraph.plugin import register_backend
from symgraph_numpy import _saving  # noqa: F401 - registers how numpy values are saved
from symgraph_numpy._array import SymbolicArray
from symgraph_numpy._backend import BACKEND, NumpyBackend
from symgraph_numpy._input import CustomInput, Input
from symgraph_numpy._shapes import ArrayCheck

register_backend(BACKEND)

__all__ = [
    "BACKEND",
    "ArrayCheck",
    "CustomInput",
    "Input",
    "NumpyBackend",
    "SymbolicArray",
    "SymbolicModel",
    "add_to_graph",
]
