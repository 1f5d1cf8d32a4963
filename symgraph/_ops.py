"""Operations: how a node's value is computed from the values of its parents.

Each operation knows how to evaluate itself (this is what the reference
interpreter and tracing run) and what it is called in a summary. Turning an
operation into Python source is the job of :mod:`symgraph._codegen`.

Every operation declares its payload in ``payload``: the constructor's
arguments, in order. A payload item is either a :class:`~symgraph.plugin.Template`
or plain data that the constructor validates (an exact ``str`` for names, an
exact ``int`` for positions), because code generation relies on it. Operations
pickle through their constructors, so a plan loaded from a pickle is validated
exactly like one made by recording.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from symgraph._errors import GuardError
from symgraph._operators import OperatorSpec, operator_spec
from symgraph._templates import Const, DictT, Template
from symgraph._text import describe, escape

__all__ = [
    "SEQUENCES",
    "Call",
    "Elements",
    "GetAttr",
    "MethodCall",
    "Operation",
    "Operator",
    "Placeholder",
    "Slice",
    "Unpack",
    "nth",
]


def _name(owner: str, name: object) -> str:
    if type(name) is not str:
        raise TypeError(f"{owner} needs a str name, got {type(name).__name__}")
    return name


def _template(owner: str, what: str, template: object) -> Template:
    if not isinstance(template, Template):
        raise TypeError(f"{owner}: {what} must be a template, got {type(template).__name__}")
    return template


def _templates(owner: str, what: str, templates: Sequence[object]) -> tuple[Template, ...]:
    return tuple(_template(owner, what, t) for t in templates)


def _kwargs(owner: str, kwargs: object) -> Template:
    if isinstance(kwargs, Const):
        keys: Sequence[object] = list(kwargs.value) if type(kwargs.value) is dict else [None]
    elif isinstance(kwargs, DictT):
        keys = kwargs.keys
    else:
        raise TypeError(f"{owner}: kwargs must be a Const dict or a DictT template, got {type(kwargs).__name__}")
    if any(type(k) is not str for k in keys):
        raise TypeError(f"{owner}: kwargs must be a dict with str keys")
    return kwargs


class Operation:
    """Base class of everything that produces a node.

    Subclasses implement :meth:`evaluate` and :meth:`display_name`, name their
    constructor arguments in :attr:`payload` and validate them in ``__init__``;
    a backend that adds a new operation also registers a code emitter for it
    with :func:`symgraph.plugin.register_emitter`.

    Attributes:
        payload: Names of the attributes that hold the constructor's arguments,
            in order. Pickling, copying and :func:`copy.replace`-style rebuilds
            call the constructor with them, so validation always runs.

    Example:
        >>> import symgraph
        >>> from symgraph.plugin import Operation
        >>> x = symgraph.CustomInput(2)
        >>> op = (x + 1).op
        >>> isinstance(op, Operation), op.payload, op.payload_values()
        (True, ('symbol', 'operands'), ('+', (Ref(0), Const(1))))
    """

    __slots__ = ()
    payload: ClassVar[tuple[str, ...]] = ()
    #: A check rather than a computation (see :class:`Elements`): summaries, which
    #: list layers, do not give it a row.
    is_guard: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Pickling rebuilds an operation by calling its constructor with the
        # payload, so a constructor that takes arguments needs a payload naming
        # them; without one, every loaded plan would fail, or skip validation.
        parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
        takes = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if len(cls.payload) < len([p for p in parameters if p.default is p.empty and p.name in takes]):
            raise TypeError(
                f"{cls.__name__}.__init__ takes {', '.join(takes)}; declare them in order as "
                f"{cls.__name__}.payload, so that the operation pickles through its constructor"
            )

    def evaluate(self, args: Sequence[Any]) -> Any:
        """Compute the value from the parents' values, in parent order."""
        raise NotImplementedError  # pragma: no cover - abstract

    def evaluate_step(self, args: Sequence[Any], step: str) -> Any:
        """:meth:`evaluate` as step ``step`` of a plan; a guard names the step in its error.

        Executors that evaluate operations one by one (the reference interpreter,
        dask) call this rather than :meth:`evaluate`.

        Example:
            >>> import symgraph
            >>> x = symgraph.CustomInput(2)
            >>> (x + 1).op.evaluate_step([5], "LambdaOpLayer_1")
            6
        """
        return self.evaluate(args)

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

    def payload_values(self) -> tuple[Any, ...]:
        """The constructor's arguments, as :attr:`payload` names them."""
        return tuple(getattr(self, name) for name in self.payload)

    def map_templates(self, fn: Callable[[Template], Template]) -> Operation:
        """The same operation with each template of its payload replaced by ``fn(template)``.

        It is rebuilt through the constructor, so the result is validated like any
        other; an operation that ``fn`` leaves unchanged is returned itself.

        Example:
            >>> from symgraph.plugin import Const, Operator, Ref
            >>> Operator("+", [Ref(0), Const(1)]).map_templates(lambda t: t.map(const=lambda c: Const(5)))
            Operator('+', Ref(0), Const(5))
        """
        changed = False
        values: list[Any] = []
        for value in self.payload_values():
            if isinstance(value, Template):
                new: Any = fn(value)
            elif isinstance(value, tuple) and value and all(isinstance(t, Template) for t in value):
                new = tuple(fn(t) for t in value)
                new = value if all(a is b for a, b in zip(new, value, strict=True)) else new
            else:
                new = value
            changed = changed or new is not value
            values.append(new)
        return type(self)(*values) if changed else self

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), self.payload_values()

    def __setstate__(self, state: Any) -> None:
        # Pickles made by ``__reduce__`` carry no state. One that sets attributes
        # directly (``NEWOBJ`` then ``BUILD``) would skip the constructor's checks.
        raise TypeError(f"a pickled {type(self).__name__} is rebuilt through its constructor, not from its state")

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
        symbol: A key of the operator table (:data:`symgraph.plugin.OPERATORS`)
            with as many operands as given; only an exact ``str`` is accepted.
        operands: One template per operand, each a ``Ref`` to a parent or a ``Const``.

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput(2)
        >>> (10 - x).op
        Operator('-', Const(10), Ref(0))
    """

    __slots__ = ("fn", "operands", "spec", "symbol")
    payload = ("symbol", "operands")

    def __init__(self, symbol: str, operands: Sequence[Template]) -> None:
        operands = _templates("Operator", "an operand", operands)
        spec: OperatorSpec = operator_spec(symbol, len(operands))
        self.spec = spec
        self.symbol = spec.symbol  # the table's own string, never the caller's object
        self.operands = operands
        self.fn: Callable[..., Any] = spec.fn

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
        return self.spec.name + "OpLayer"

    def __repr__(self) -> str:
        return f"Operator({self.symbol!r}, {', '.join(map(repr, self.operands))})"


class GetAttr(Operation):
    """Attribute access ``parent.name``.

    Args:
        name: The attribute's name, an exact ``str``.

    Example:
        >>> import symgraph
        >>> s = symgraph.CustomInput({1, 2})
        >>> s.union.op
        GetAttr('union')
    """

    __slots__ = ("name",)
    payload = ("name",)

    def __init__(self, name: str) -> None:
        self.name = _name("GetAttr", name)

    def evaluate(self, args: Sequence[Any]) -> Any:
        return getattr(args[0], self.name)

    def display_name(self, args: Sequence[Any]) -> str:
        return "GetAttr"

    def __repr__(self) -> str:
        return f"GetAttr({describe(self.name)})"


class Slice(Operation):
    """Indexing ``parent[index]``; the index template may refer to other parents.

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput([5, 6, 7])
        >>> x[1:].op
        Slice(Const(slice(1, None, None)))
    """

    __slots__ = ("index",)
    payload = ("index",)

    def __init__(self, index: Template) -> None:
        self.index = _template("Slice", "the index", index)

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
        kwargs: Keyword arguments as a template (``Const`` dict or ``DictT``),
            with ``str`` keys.

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput([3, 1, 2])
        >>> symgraph.add_to_graph(sorted, x).op
        Call(sorted, (Ref(0),), {})
    """

    __slots__ = ("args", "func", "kwargs")
    payload = ("func", "args", "kwargs")

    def __init__(self, func: Template, args: Sequence[Template], kwargs: Template) -> None:
        owner = type(self).__name__
        self.func = _template(owner, "the callable", func)
        self.args = _templates(owner, "an argument", args)
        self.kwargs = _kwargs(owner, kwargs)

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
        func = describe(self.func.value) if isinstance(self.func, Const) else repr(self.func)
        kwargs = describe(self.kwargs.value) if isinstance(self.kwargs, Const) else repr(self.kwargs)
        return f"Call({func}, {self.args!r}, {kwargs})"


class MethodCall(Operation):
    """A method call ``parent.name(*args, **kwargs)``, recorded as one step.

    The method is looked up on the value at replay, so any value with a method of
    that name works: an array recorded on numpy replays on a dask array. The
    object whose method is called is always parent 0.

    Args:
        name: The method's name, an exact ``str``.
        args: One template per positional argument.
        kwargs: Keyword arguments as a template (``Const`` dict or ``DictT``).

    Example:
        >>> import symgraph
        >>> from symgraph.plugin import Const, MethodCall, record
        >>> x = symgraph.CustomInput("a-b")
        >>> y = record(MethodCall("split", [Const("-")], Const({})), (x.node,))
        >>> y.v, symgraph.SymbolicModel(x, y)("c-d-e")
        (['a', 'b'], ['c', 'd', 'e'])
    """

    __slots__ = ("args", "kwargs", "name")
    payload = ("name", "args", "kwargs")

    def __init__(self, name: str, args: Sequence[Template], kwargs: Template) -> None:
        self.name = _name("MethodCall", name)
        self.args = _templates("MethodCall", "an argument", args)
        self.kwargs = _kwargs("MethodCall", kwargs)

    def evaluate(self, args: Sequence[Any]) -> Any:
        return getattr(args[0], self.name)(*(t.evaluate(args) for t in self.args), **self.kwargs.evaluate(args))

    def display_name(self, args: Sequence[Any]) -> str:
        return f"wrap({self.name})"

    def templates(self) -> tuple[Template, ...]:
        return (*self.args, self.kwargs)

    def __repr__(self) -> str:
        kwargs = describe(self.kwargs.value) if isinstance(self.kwargs, Const) else repr(self.kwargs)
        return f"MethodCall({describe(self.name)}, {self.args!r}, {kwargs})"


class Unpack(Operation):
    """Element ``index`` of iterating over the parent, as in ``a, b = x``.

    Args:
        index: Position of the element: an exact, non-negative ``int``.
        by_index: Use ``parent[index]``, which is right for sequences; otherwise the
            parent is iterated (sets, dicts, iterators).

    Raises:
        TypeError: ``index`` is not an exact ``int`` or ``by_index`` not a bool.
        ValueError: ``index`` is negative.

    Example:
        >>> import symgraph
        >>> a, b = symgraph.CustomInput((1, 2))
        >>> b.op
        Unpack(1)
    """

    __slots__ = ("by_index", "index")
    payload = ("index", "by_index")

    def __init__(self, index: int, by_index: bool = True) -> None:
        if type(index) is not int:
            raise TypeError(f"Unpack needs an int index, got {type(index).__name__}")
        if index < 0:
            raise ValueError(f"Unpack needs a non-negative index, got {index}")
        if type(by_index) is not bool:
            raise TypeError(f"Unpack: by_index must be a bool, got {type(by_index).__name__}")
        self.index = index
        self.by_index = by_index

    def evaluate(self, args: Sequence[Any]) -> Any:
        return args[0][self.index] if self.by_index else nth(args[0], self.index)

    def display_name(self, args: Sequence[Any]) -> str:
        return "UnpackLayer"

    def __repr__(self) -> str:
        return f"Unpack({self.index})"


SEQUENCES = (list, tuple, str, bytes, range)
"""Exact types whose elements iterating yields in index order.

Anything else is read into a tuple once, so that each element is then a plain index.
"""


class Elements(Operation):
    """The elements a Python loop or unpacking over the parent took, guarded by their number.

    A loop over a symbolic value is unrolled while recording: one
    :class:`Unpack` per element the loop took. The replay is only the same
    computation when the value has as many elements, so this step checks it:
    exactly ``length`` when the loop ran to the end, at least ``length`` when it
    stopped early (``break``, ``zip``, ``next``). It returns the value itself
    when it is a list, tuple, str, bytes or range, and otherwise a tuple of
    what iterating it yields, so that each element is an index.

    Args:
        length: The number of elements: an exact, non-negative ``int``.
        exact: Whether the loop ran to the end.
        where: Where the user's code iterated (``file:line``), for the message.

    Raises:
        GuardError: when evaluated on a value with another number of elements.

    Example:
        >>> import symgraph
        >>> xs = symgraph.CustomInput([1, 2])
        >>> first, second = xs
        >>> first.parents[0].op
        Elements(2, exact=True)
    """

    __slots__ = ("exact", "length", "where")
    payload = ("length", "exact", "where")
    is_guard = True

    def __init__(self, length: int, exact: bool, where: str) -> None:
        if type(length) is not int or length < 0:
            raise TypeError(f"Elements needs a non-negative int length, got {describe(length)}")
        if type(exact) is not bool:
            raise TypeError(f"Elements: exact must be a bool, got {type(exact).__name__}")
        if type(where) is not str:
            raise TypeError(f"Elements: where must be a str, got {type(where).__name__}")
        self.length = length
        self.exact = exact
        self.where = where

    def evaluate(self, args: Sequence[Any]) -> Any:
        return self.check(args[0], "Elements")

    def evaluate_step(self, args: Sequence[Any], step: str) -> Any:
        return self.check(args[0], step)

    def check(self, value: Any, step: str) -> Any:
        """``value`` as a sequence of its elements, or :class:`~symgraph.GuardError` naming ``step``."""
        items = value if type(value) in SEQUENCES else tuple(value)
        n = len(items)
        if n == self.length or (n > self.length and not self.exact):
            return items
        needs = f"exactly {self.length}" if self.exact else f"at least {self.length}"
        took = "ran over" if self.exact else "took"
        raise GuardError(
            f"step {escape(step)!r}: the loop or unpacking recorded at {escape(self.where, 500)} {took} the "
            f"example's {self.length} element(s), so this model needs {needs}, and got a value with {n}. "
            "A Python loop over a symbolic value is unrolled while recording; to loop over a length that "
            "varies, record the whole loop as one step: symgraph.add_to_graph(func, value), with func "
            "holding the loop"
        )

    def display_name(self, args: Sequence[Any]) -> str:
        return "Elements"

    def __repr__(self) -> str:
        return f"Elements({self.length}, exact={self.exact})"


def nth(iterable: Any, index: int) -> Any:
    """Element ``index`` of iterating over ``iterable``.

    Example:
        >>> nth({"a": 1, "b": 2}, 1)
        'b'
    """
    for item in itertools.islice(iter(iterable), index, None):
        return item
    raise IndexError(f"the value has no element {index}; it was longer when the graph was recorded")
