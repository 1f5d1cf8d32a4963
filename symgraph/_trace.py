"""Entry points for starting and extending a graph by hand."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from symgraph._ops import Placeholder
from symgraph._symbolic import ArgumentCollector, SymbolicData, record
from symgraph._templates import Const

__all__ = ["CustomInput", "add_to_graph"]


def CustomInput(value: Any, *, custom_name: str | None = None) -> SymbolicData:  # noqa: N802 - public API name
    """Start a graph: a root node around any Python object.

    Args:
        value: The example value. Operations are recorded by applying them to it,
            so it should look like the values the model will later receive.
        custom_name: Name of the input in summaries.

    Returns:
        The symbolic handle, of the class the backend registry picks for
        ``type(value)`` (a plugin's class for tensors and arrays).

    Raises:
        TypeError: ``value`` is already symbolic.

    Example:
        >>> import symgraph
        >>> words = symgraph.CustomInput("graph replay")
        >>> shout = words.upper().split()
        >>> symgraph.SymbolicModel(words, shout)("hello world")
        ['HELLO', 'WORLD']
    """
    if isinstance(value, SymbolicData):
        raise TypeError("CustomInput() got a value that is already symbolic; use it directly")
    return record(Placeholder(), (), value=value, custom_name=custom_name)


def add_to_graph(func: Callable[..., Any], *args: Any, custom_name: str | None = None, **kwargs: Any) -> SymbolicData:
    """Record a call of any callable on symbolic values.

    Symbolic values may sit at any depth inside lists, tuples (named tuples too)
    and dicts among the arguments; everything else is captured once as a constant.
    ``func`` itself may be symbolic. The call runs once now, on the example
    values, and again on real values at every replay.

    Args:
        func: The callable.
        *args: Positional arguments.
        custom_name: Name of the node in summaries.
        **kwargs: Keyword arguments.

    Returns:
        The symbolic result. If it is a tuple, unpack it (``a, b = ...``) to get
        one symbolic value per element.

    Raises:
        TypeError: ``func`` is not callable, or no argument is symbolic.

    Example:
        >>> import operator
        >>> import symgraph
        >>> a, b = symgraph.CustomInput(3), symgraph.CustomInput(4)
        >>> same = symgraph.add_to_graph(operator.eq, a, b)
        >>> total = symgraph.add_to_graph(sum, [a, b, 10])
        >>> model = symgraph.SymbolicModel((a, b), (same, total))
        >>> model(5, 5)
        (True, 20)
    """
    collector = ArgumentCollector()
    op = collector.call_op(func, args, kwargs)
    if isinstance(op.func, Const) and not callable(func):
        raise TypeError(f"add_to_graph() expects a callable as its first argument, got {type(func).__name__}")
    if not collector.parents:
        name = getattr(func, "__name__", type(func).__name__)
        raise TypeError(
            f"add_to_graph({name}): none of the arguments is symbolic, so there is nothing to record; "
            "call the function directly"
        )
    return collector.record(op, custom_name=custom_name)
