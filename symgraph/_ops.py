"""Operations: how a node's value is computed from the values of its parents.

Each operation knows how to evaluate itself (this is what the reference
interpreter and tracing run) and what it is called in a summary. Turning an
operation into Python source is the job of :mod:`symgraph._codegen`.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Sequence
from typing import Any

from symgraph._templates import Const, DictT, Template

__all__ = [
    "BINARY_OPERATORS",
    "UNARY_OPERATORS",
    "Call",
    "GetAttr",
    "MethodCall",
    "Operation",
    "Operator",
    "Placeholder",
    "Slice",
    "Unpack",
    "nth",
]

# symbol -> (function, name used in summaries). The symbols are the only operator
# text that reaches generated code, and they come from this table alone.
BINARY_OPERATORS: dict[str, tuple[Callable[[Any, Any], Any], str]] = {
    "+": (operator.add, "Add"),
    "-": (operator.sub, "Sub"),
    "*": (operator.mul, "Mul"),
    "/": (operator.truediv, "Div"),
    "//": (operator.floordiv, "FloorDiv"),
    "%": (operator.mod, "Mod"),
    "**": (operator.pow, "Pow"),
    "@": (operator.matmul, "MatMul"),
    "&": (operator.and_, "And"),
    "|": (operator.or_, "Or"),
    "^": (operator.xor, "Xor"),
    "<<": (operator.lshift, "LShift"),
    ">>": (operator.rshift, "RShift"),
    "<": (operator.lt, "Lt"),
    "<=": (operator.le, "Le"),
    ">": (operator.gt, "Gt"),
    ">=": (operator.ge, "Ge"),
    # Only backends whose values compare elementwise (arrays) record these; the
    # base handle keeps identity semantics for == and !=.
    "==": (operator.eq, "Eq"),
    "!=": (operator.ne, "Ne"),
}
UNARY_OPERATORS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "neg": (operator.neg, "Neg"),
    "pos": (operator.pos, "Pos"),
    "invert": (operator.invert, "Invert"),
    "abs": (abs, "Abs"),
}


class Operation:
    """Base class of everything that produces a node.

    Subclasses implement :meth:`evaluate` and :meth:`display_name`; a backend that
    adds a new operation also registers a code emitter for it with
    :func:`symgraph.register_emitter`.

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput(2)
        >>> isinstance((x + 1).op, symgraph.Operation)
        True
    """

    __slots__ = ()

    def evaluate(self, args: Sequence[Any]) -> Any:
        """Compute the value from the parents' values, in parent order."""
        raise NotImplementedError  # pragma: no cover - abstract

    def display_name(self, args: Sequence[Any]) -> str:
        """Base name of the node in summaries; ``args`` are the trace-time parent values."""
        return type(self).__name__

    def owned_objects(self) -> tuple[Any, ...]:
        """Constant objects this operation applies, such as a layer; summaries count their parameters."""
        return ()

    def templates(self) -> tuple[Template, ...]:
        """The argument templates the operation holds, for walks over its constants.

        Example:
            >>> import symgraph
            >>> x = symgraph.CustomInput(2)
            >>> [t.constants() for t in (x + 5).op.templates()]
            [[], [5]]
        """
        return ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Placeholder(Operation):
    """A root node; its value is supplied by the caller of a model.

    Example:
        >>> import symgraph
        >>> symgraph.CustomInput([1, 2]).op
        Placeholder()
    """

    __slots__ = ()

    def evaluate(self, args: Sequence[Any]) -> Any:
        raise TypeError("a Placeholder has no parents to compute a value from")

    def display_name(self, args: Sequence[Any]) -> str:
        return "Input"


class Operator(Operation):
    """A Python operator such as ``+``, ``<`` or unary ``-``.

    Args:
        symbol: A key of :data:`BINARY_OPERATORS` or :data:`UNARY_OPERATORS`.
        operands: One template per operand, each a ``Ref`` to a parent or a ``Const``.

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput(2)
        >>> (10 - x).op
        Operator('-', Const(10), Ref(0))
    """

    __slots__ = ("fn", "operands", "symbol")

    def __init__(self, symbol: str, operands: Sequence[Template]) -> None:
        table = BINARY_OPERATORS if len(operands) == 2 else UNARY_OPERATORS
        if symbol not in table:
            raise ValueError(f"unknown operator {symbol!r} for {len(operands)} operand(s)")
        self.symbol = symbol
        self.operands = tuple(operands)
        self.fn: Callable[..., Any] = table[symbol][0]

    def evaluate(self, args: Sequence[Any]) -> Any:
        operands = self.operands
        if len(operands) == 2:  # spelled out: recording evaluates every operator once
            return self.fn(operands[0].evaluate(args), operands[1].evaluate(args))
        return self.fn(*(t.evaluate(args) for t in operands))

    def templates(self) -> tuple[Template, ...]:
        return self.operands

    def display_name(self, args: Sequence[Any]) -> str:
        # Same convention as pytorch-symbolic: an operator between symbolic values is
        # named after itself, one that involves a constant is a "lambda".
        if len(self.operands) == 2 and any(isinstance(t, Const) for t in self.operands):
            return "LambdaOpLayer"
        table = BINARY_OPERATORS if len(self.operands) == 2 else UNARY_OPERATORS
        return table[self.symbol][1] + "OpLayer"

    def __repr__(self) -> str:
        return f"Operator({self.symbol!r}, {', '.join(map(repr, self.operands))})"

    def __getstate__(self) -> tuple[str, tuple[Template, ...]]:
        return self.symbol, self.operands

    def __setstate__(self, state: tuple[str, tuple[Template, ...]]) -> None:
        self.__init__(*state)  # type: ignore[misc]


class GetAttr(Operation):
    """Attribute access ``parent.name``.

    Example:
        >>> import symgraph
        >>> s = symgraph.CustomInput({1, 2})
        >>> s.union.op
        GetAttr('union')
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def evaluate(self, args: Sequence[Any]) -> Any:
        return getattr(args[0], self.name)

    def display_name(self, args: Sequence[Any]) -> str:
        return "GetAttr"

    def __repr__(self) -> str:
        return f"GetAttr({self.name!r})"


class Slice(Operation):
    """Indexing ``parent[index]``; the index template may refer to other parents.

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput([5, 6, 7])
        >>> x[1:].op
        Slice(Const(slice(1, None, None)))
    """

    __slots__ = ("index",)

    def __init__(self, index: Template) -> None:
        self.index = index

    def evaluate(self, args: Sequence[Any]) -> Any:
        return args[0][self.index.evaluate(args)]

    def templates(self) -> tuple[Template, ...]:
        return (self.index,)

    def display_name(self, args: Sequence[Any]) -> str:
        return "SliceLayer"

    def __repr__(self) -> str:
        return f"Slice({self.index!r})"


class Call(Operation):
    """A call ``func(*args, **kwargs)``; any part may hold symbolic values.

    Args:
        func: Template of the callable: a ``Const`` for :func:`symgraph.add_to_graph`,
            a ``Ref`` when a symbolic callable such as ``x.reshape`` is called.
        args: One template per positional argument.
        kwargs: Keyword arguments as a template (``Const`` dict or ``DictT``).

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput([3, 1, 2])
        >>> symgraph.add_to_graph(sorted, x).op
        Call(sorted, (Ref(0),), {})
    """

    __slots__ = ("args", "func", "kwargs")

    def __init__(self, func: Template, args: Sequence[Template], kwargs: Template) -> None:
        if not isinstance(kwargs, (Const, DictT)):
            raise TypeError("kwargs must be a Const dict or a DictT template")
        self.func = func
        self.args = tuple(args)
        self.kwargs = kwargs

    def evaluate(self, args: Sequence[Any]) -> Any:
        return self.func.evaluate(args)(*(t.evaluate(args) for t in self.args), **self.kwargs.evaluate(args))

    def display_name(self, args: Sequence[Any]) -> str:
        fn = self.func.evaluate(args)
        name = getattr(fn, "__name__", None)
        # Callable objects such as layers are named by their class, functions are "wrapped".
        return f"wrap({name})" if isinstance(name, str) else type(fn).__name__

    def owned_objects(self) -> tuple[Any, ...]:
        return (self.func.value,) if isinstance(self.func, Const) else ()

    def templates(self) -> tuple[Template, ...]:
        return (self.func, *self.args, self.kwargs)

    def __repr__(self) -> str:
        func = self.func.value if isinstance(self.func, Const) else self.func
        func_repr = getattr(func, "__qualname__", None) or repr(func)
        kwargs = self.kwargs.value if isinstance(self.kwargs, Const) else self.kwargs
        return f"Call({func_repr}, {self.args!r}, {kwargs!r})"


class MethodCall(Operation):
    """A method call ``parent.name(*args, **kwargs)``, recorded as one step.

    The method is looked up on the value at replay, so any value with a method of
    that name works: an array recorded on numpy replays on a dask array. The
    object whose method is called is always parent 0.

    Args:
        name: The method's name.
        args: One template per positional argument.
        kwargs: Keyword arguments as a template (``Const`` dict or ``DictT``).

    Example:
        >>> import symgraph
        >>> from symgraph import Const, MethodCall
        >>> x = symgraph.CustomInput("a-b")
        >>> y = symgraph.record(MethodCall("split", [Const("-")], Const({})), (x.node,))
        >>> y.v, symgraph.SymbolicModel(x, y)("c-d-e")
        (['a', 'b'], ['c', 'd', 'e'])
    """

    __slots__ = ("args", "kwargs", "name")

    def __init__(self, name: str, args: Sequence[Template], kwargs: Template) -> None:
        if not isinstance(kwargs, (Const, DictT)):
            raise TypeError("kwargs must be a Const dict or a DictT template")
        self.name = name
        self.args = tuple(args)
        self.kwargs = kwargs

    def evaluate(self, args: Sequence[Any]) -> Any:
        return getattr(args[0], self.name)(*(t.evaluate(args) for t in self.args), **self.kwargs.evaluate(args))

    def display_name(self, args: Sequence[Any]) -> str:
        return f"wrap({self.name})"

    def templates(self) -> tuple[Template, ...]:
        return (*self.args, self.kwargs)

    def __repr__(self) -> str:
        kwargs = self.kwargs.value if isinstance(self.kwargs, Const) else self.kwargs
        return f"MethodCall({self.name!r}, {self.args!r}, {kwargs!r})"


class Unpack(Operation):
    """Element ``index`` of iterating over the parent, as in ``a, b = x``.

    Args:
        index: Position of the element.
        by_index: Use ``parent[index]``, which is right for sequences; otherwise the
            parent is iterated (sets, dicts, iterators).

    Example:
        >>> import symgraph
        >>> a, b = symgraph.CustomInput((1, 2))
        >>> b.op
        Unpack(1)
    """

    __slots__ = ("by_index", "index")

    def __init__(self, index: int, by_index: bool = True) -> None:
        self.index = index
        self.by_index = by_index

    def evaluate(self, args: Sequence[Any]) -> Any:
        return args[0][self.index] if self.by_index else nth(args[0], self.index)

    def display_name(self, args: Sequence[Any]) -> str:
        return "UnpackLayer"

    def __repr__(self) -> str:
        return f"Unpack({self.index})"


def nth(iterable: Any, index: int) -> Any:
    """Element ``index`` of iterating over ``iterable``.

    Example:
        >>> nth({"a": 1, "b": 2}, 1)
        'b'
    """
    for item in itertools.islice(iter(iterable), index, None):
        return item
    raise IndexError(f"the value has no element {index}; it was longer when the graph was recorded")
