"""symgraph: record Python operations on symbolic values, replay them fast.

Build a graph by operating on symbolic values, pick inputs and outputs, and get
a model that replays the recorded operations on new values, through generated
straight-line Python code or another executor.

This module holds what users need. What backend and executor authors need is
in :mod:`symgraph.plugin`; the conformance tests for backends are in
:mod:`symgraph.testing`.

Example:
    >>> import symgraph
    >>> a = symgraph.CustomInput({1, 2, 3})
    >>> b = symgraph.CustomInput({3, 4})
    >>> model = symgraph.SymbolicModel((a, b), ((a | b) - {1}, a & b))
    >>> model({1, 5}, {5, 6})
    ({5, 6}, {5})
"""

from symgraph._errors import (
    ExecutorError,
    ExecutorFallbackWarning,
    GraphError,
    GuardError,
    InputError,
    MissingGraphError,
    SaveError,
    SpecError,
    SymgraphError,
    TraceError,
)
from symgraph._executors import available_executors, register_executor
from symgraph._model import SymbolicModel
from symgraph._networkx import to_networkx
from symgraph._saving import load, save
from symgraph._summary import format_summary
from symgraph._symbolic import SymbolicData
from symgraph._trace import CustomInput, add_to_graph

__version__ = "0.1.0"
"""The version of symgraph, as in the package metadata of ``symgraph-py``."""

__all__ = [
    "CustomInput",
    "ExecutorError",
    "ExecutorFallbackWarning",
    "GraphError",
    "GuardError",
    "InputError",
    "MissingGraphError",
    "SaveError",
    "SpecError",
    "SymbolicData",
    "SymbolicModel",
    "SymgraphError",
    "TraceError",
    "__version__",
    "add_to_graph",
    "available_executors",
    "format_summary",
    "load",
    "register_executor",
    "save",
    "to_networkx",
]
