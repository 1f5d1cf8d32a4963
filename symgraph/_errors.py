"""Exceptions raised by symgraph."""

from __future__ import annotations

__all__ = ["GraphError", "SymgraphError", "TraceError"]


class SymgraphError(Exception):
    """Base class of every error symgraph raises on purpose.

    Example:
        >>> import symgraph
        >>> issubclass(symgraph.GraphError, symgraph.SymgraphError)
        True
    """


class GraphError(SymgraphError, ValueError):
    """The graph cannot become a model: a missing input, a cycle, a bad output.

    Example:
        >>> import symgraph
        >>> a, b = symgraph.CustomInput(1), symgraph.CustomInput(2)
        >>> try:
        ...     symgraph.SymbolicModel(a, a + b)
        ... except symgraph.GraphError as e:
        ...     print("missing input" in str(e))
        True
    """


class TraceError(SymgraphError, TypeError):
    """A Python protocol that cannot be recorded was used on a symbolic value.

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput(3)
        >>> try:
        ...     bool(x)
        ... except symgraph.TraceError:
        ...     print("cannot branch on a symbolic value")
        cannot branch on a symbolic value
    """
