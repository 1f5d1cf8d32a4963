"""The user-facing symbolic value and the single function that records nodes."""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from symgraph._backends import backend_for, describe_value
from symgraph._errors import TraceError
from symgraph._location import locate, user_location
from symgraph._node import Handle, Node
from symgraph._operators import BINARY, UNARY, OperatorSpec
from symgraph._ops import SEQUENCES, Call, Elements, GetAttr, Operation, Operator, Slice, Unpack
from symgraph._templates import Template, is_shared, parse
from symgraph._text import describe

__all__ = ["ArgumentCollector", "SymbolicData", "operator_methods", "record", "record_operator", "symbolic_class_for"]

_UNSET: Any = object()

# Methods of the builtin containers that change the value in place. Recording one
# would change the example and replay nothing (its result, None, feeds no output),
# so the model would silently differ from the code; they are refused instead.
_IN_PLACE: dict[type, frozenset[str]] = {
    list: frozenset({"append", "extend", "insert", "remove", "pop", "clear", "sort", "reverse"}),
    dict: frozenset({"update", "pop", "popitem", "clear", "setdefault"}),
    set: frozenset(
        {"add", "discard", "remove", "pop", "clear", "update"}
        | {f"{op}_update" for op in ("intersection", "difference", "symmetric_difference")}
    ),
    bytearray: frozenset({"append", "extend", "insert", "remove", "pop", "clear", "reverse"}),
}
_IN_PLACE_NAMES = frozenset().union(*_IN_PLACE.values())


class SymbolicData(Handle):
    """A symbolic value: a thin handle over one node of the graph.

    Operations on it are recorded instead of just computed: operators, attribute
    access, indexing, calls and unpacking each add a node whose example value
    (``.v``) is computed right away from the parents' example values. An operation
    the example value does not support raises its usual error and adds nothing.

    ``==`` and ``!=`` are recorded like every other operator, whatever the
    example's type, so ``df["g"] == "x"`` stays an elementwise comparison and
    ``x * (x == 3)`` computes what eager code computes. Their result is
    symbolic, so ``if x == 3:`` raises :class:`~symgraph.TraceError`. Hashing
    stays by identity, so symbolic values can still be dict keys and set members
    (Python checks identity before equality there); to test whether two handles
    are the same, use ``is``.

    A loop or an unpacking over a symbolic value is unrolled over the example's
    elements, and the model checks at every call that the value has as many (see
    :class:`~symgraph.plugin.Elements`), raising :class:`~symgraph.GuardError`
    otherwise.

    The handle's own names are ``v``, ``node``, ``parents``, ``children``, ``op``
    and the plugin hooks, whose names start with ``symgraph_``; an attribute of the
    underlying value with one of these names is reached with
    ``symgraph.add_to_graph(getattr, x, "v")``. Private names (starting with
    ``_``) are never recorded, so probes such as ``hasattr(x, "__wrapped__")``
    do not touch the graph.

    Example:
        >>> import symgraph
        >>> s = symgraph.CustomInput({1, 2, 3})
        >>> t = (s & {2, 3, 4}) | {9}
        >>> sorted(t.v)
        [2, 3, 9]
        >>> model = symgraph.SymbolicModel(s, t)
        >>> sorted(model({3, 4, 5}))
        [3, 4, 9]
    """

    __slots__ = ()

    #: Plugin hook: when set, values recorded from this handle (with it as first
    #: parent) get this class whatever their type, instead of the class the
    #: registry picks. A compatibility layer uses it to keep its own recording
    #: rules downstream.
    symgraph_child_class: ClassVar[type[SymbolicData] | None] = None

    # Makes numpy hand mixed operations back to our reflected operators instead of
    # building object arrays out of handles.
    __array_ufunc__ = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            "SymbolicData is not created directly; use symgraph.CustomInput(value) "
            "or operate on an existing symbolic value"
        )

    # -- graph structure -------------------------------------------------------------
    @property
    def v(self) -> Any:
        """The example value computed when this node was recorded."""
        return self._node.value

    @property
    def node(self) -> Node:
        """The IR node behind this handle."""
        return self._node

    @property
    def op(self) -> Operation:
        """The operation that produced this value."""
        return self._node.op

    @property
    def parents(self) -> tuple[SymbolicData, ...]:
        """Handles of the distinct values this one was computed from."""
        return tuple(p.handle for p in self._node.parents)

    @property
    def children(self) -> tuple[SymbolicData, ...]:
        """Handles of the values recorded from this one so far."""
        return tuple(c.handle for c in self._node.children)

    def __repr__(self) -> str:
        node = self._node
        return f"<{type(self).__name__} at {id(self):#x}; {len(node.parents)} parents; {len(node.children)} children>"

    # -- hooks for plugins --------------------------------------------------------------
    # Classmethods named ``symgraph_*``: a name no value's own attribute is likely to
    # have, so a hook never shadows an attribute that should be recorded.
    @classmethod
    def symgraph_describe_node(cls, node: Node) -> str:
        """Plugin hook: summary text for ``node``'s value; the backend's description by default.

        Example:
            >>> import symgraph
            >>> x = symgraph.CustomInput({1})
            >>> type(x).symgraph_describe_node(x.node)
            'set'
        """
        return describe_value(node.value)

    @classmethod
    def symgraph_child_class_for(cls, value: Any) -> type[SymbolicData] | None:
        """Plugin hook: the class of a value recorded from this handle (its first parent), or ``None``.

        ``None`` lets the registry pick the class of the value's type. By default
        it is :attr:`symgraph_child_class`; a backend overrides it to keep its own
        recording rules for some values (the torch plugin keeps sizes read from a
        tensor reaching torch functions).

        Example:
            >>> import symgraph
            >>> x = symgraph.CustomInput({1})
            >>> type(x).symgraph_child_class_for(2) is None
            True
        """
        return cls.symgraph_child_class

    @classmethod
    def symgraph_input_check(cls, node: Node, name: str) -> Callable[[Any], None] | None:
        """Plugin hook: validator for values passed where ``node`` is a model input, or ``None``.

        The validator raises :class:`symgraph.InputError` naming the input.

        Example:
            >>> import symgraph
            >>> x = symgraph.CustomInput({1})
            >>> type(x).symgraph_input_check(x.node, "Input_1") is None
            True
        """
        backend = backend_for(type(node.value))
        return backend.input_checker(node.value, name) if backend is not None else None

    # -- identity hashing, recorded equality -------------------------------------------
    # ``==`` is installed from the operator table with the other operators; hashing
    # keeps identity, as torch.Tensor's does.
    __hash__ = object.__hash__

    # -- recorded protocols ----------------------------------------------------------
    def __getattr__(self, name: str) -> SymbolicData:
        # Called only for names the handle lacks. Private and dunder names are never
        # recorded: copy, pickle, numpy and inspect probe them and expect AttributeError.
        if name.startswith("_"):
            # describe(): the name may be a str subclass with a hostile __repr__, and
            # hasattr() must still get an AttributeError.
            raise AttributeError(
                f"{type(self).__name__!r} does not record private attribute {describe(name)}; "
                f"use symgraph.add_to_graph(getattr, x, {describe(name)})"
            )
        # Python looks attributes up by the name's characters; so do we, without
        # running a str subclass's own __hash__ or __eq__.
        name = str.__str__(name)
        if name in _IN_PLACE_NAMES:  # one set lookup for every other attribute
            for container, methods in _IN_PLACE.items():
                if name in methods and isinstance(self._node.value, container):
                    raise TraceError(
                        f"x.{name}() changes the {container.__name__} in place, which a model cannot replay: "
                        "nothing would depend on it. Build a new value instead (x + [item], x | {item}, "
                        "{**x, key: value}, sorted(x)), or record a function that copies and changes it with "
                        "symgraph.add_to_graph"
                    )
        return record(GetAttr(name), (self._node,))

    def __getitem__(self, index: Any) -> SymbolicData:
        args = ArgumentCollector(self)
        return args.record(Slice(args.template(index)))

    def __call__(self, *args: Any, **kwargs: Any) -> SymbolicData:
        collector = ArgumentCollector(self)
        return collector.record(collector.call_op(self, args, kwargs))

    def __iter__(self) -> Iterator[SymbolicData]:
        # The loop is unrolled: one Unpack per element taken, all reading an
        # Elements step that checks at replay that the value has as many. Its
        # bound grows as the loop takes elements and becomes exact when the loop
        # runs to the end; until something uses them, these nodes are pending.
        node = self._node
        value = node.value
        items = value if type(value) in SEQUENCES else tuple(value)
        where = user_location()
        elements = record(Elements(0, False, where), (node,), value=items, pending=True)._node
        for i, item in enumerate(items):
            elements.op = Elements(i + 1, False, where)
            yield record(Unpack(i), (elements,), value=item, pending=True)
        elements.op = Elements(len(items), True, where)

    # -- protocols that cannot be recorded -----------------------------------------
    def __bool__(self) -> bool:
        raise TraceError(
            "the truth value of a symbolic value is not known while recording, so Python "
            "control flow (if/while/and/or, and 'in' or .index() on lists of symbolic values, "
            "which compare with ==) cannot depend on it; record the decision with "
            "symgraph.add_to_graph(func, x) instead, use 'is' to test whether two symbolic "
            "values are the same one, or x.v to read the example value"
        )

    def __format__(self, format_spec: str) -> str:
        # f"n={x}" would put the handle's description into a string that the model
        # returns at every call: a silently wrong answer. print(x) and str(x) still
        # show the handle, for looking at it while building.
        raise TraceError(
            "an f-string, format() or str.format() of a symbolic value would write the handle's description, "
            "not the value at each call; record the formatting as a step: "
            f"symgraph.add_to_graph(format, x, {format_spec!r}) or symgraph.add_to_graph('n={{}}'.format, x)"
        )

    def __int__(self) -> int:
        raise TraceError(_conversion("int"))

    def __float__(self) -> float:
        raise TraceError(_conversion("float"))

    def __complex__(self) -> complex:
        raise TraceError(_conversion("complex"))

    def __index__(self) -> int:
        raise TraceError(_conversion("an index (operator.index, range(), list indexing)"))

    # -- number protocols recorded as calls ---------------------------------------------
    # round(), math.floor/ceil/trunc and three-argument pow() are recorded as calls
    # of those functions, which at replay dispatch to the value's own method.
    # divmod() is in the operator table.
    def __round__(self, ndigits: Any = None) -> SymbolicData:
        return _record_builtin(round, self) if ndigits is None else _record_builtin(round, self, ndigits)

    def __floor__(self) -> SymbolicData:
        return _record_builtin(math.floor, self)

    def __ceil__(self) -> SymbolicData:
        return _record_builtin(math.ceil, self)

    def __trunc__(self) -> SymbolicData:
        return _record_builtin(math.trunc, self)

    def __pow__(self, other: Any, modulo: Any = None) -> SymbolicData:
        if modulo is None:
            return record_operator("**", self, other)
        return _record_builtin(pow, self, other, modulo)

    def __rpow__(self, other: Any, modulo: Any = None) -> SymbolicData:
        if modulo is None:
            return record_operator("**", other, self)
        return _record_builtin(pow, other, self, modulo)

    def __contains__(self, item: Any) -> bool:
        raise TraceError(
            "'in' must return a real bool and cannot be recorded; use symgraph.add_to_graph(operator.contains, x, item)"
        )

    def __setitem__(self, index: Any, value: Any) -> None:
        raise TraceError("in-place item assignment is not recorded; build a new value instead")

    def __delitem__(self, index: Any) -> None:
        raise TraceError("in-place item deletion is not recorded; build a new value instead")

    # -- operators -------------------------------------------------------------------
    # Installed from the operator table below the class. These declarations only
    # tell type checkers what the table installs; a test checks that they agree.
    if TYPE_CHECKING:

        def __add__(self, o: Any) -> SymbolicData: ...
        def __radd__(self, o: Any) -> SymbolicData: ...
        def __sub__(self, o: Any) -> SymbolicData: ...
        def __rsub__(self, o: Any) -> SymbolicData: ...
        def __mul__(self, o: Any) -> SymbolicData: ...
        def __rmul__(self, o: Any) -> SymbolicData: ...
        def __truediv__(self, o: Any) -> SymbolicData: ...
        def __rtruediv__(self, o: Any) -> SymbolicData: ...
        def __floordiv__(self, o: Any) -> SymbolicData: ...
        def __rfloordiv__(self, o: Any) -> SymbolicData: ...
        def __mod__(self, o: Any) -> SymbolicData: ...
        def __rmod__(self, o: Any) -> SymbolicData: ...
        def __divmod__(self, o: Any) -> SymbolicData: ...
        def __rdivmod__(self, o: Any) -> SymbolicData: ...
        def __matmul__(self, o: Any) -> SymbolicData: ...
        def __rmatmul__(self, o: Any) -> SymbolicData: ...
        def __and__(self, o: Any) -> SymbolicData: ...
        def __rand__(self, o: Any) -> SymbolicData: ...
        def __or__(self, o: Any) -> SymbolicData: ...
        def __ror__(self, o: Any) -> SymbolicData: ...
        def __xor__(self, o: Any) -> SymbolicData: ...
        def __rxor__(self, o: Any) -> SymbolicData: ...
        def __lshift__(self, o: Any) -> SymbolicData: ...
        def __rlshift__(self, o: Any) -> SymbolicData: ...
        def __rshift__(self, o: Any) -> SymbolicData: ...
        def __rrshift__(self, o: Any) -> SymbolicData: ...
        def __lt__(self, o: Any) -> SymbolicData: ...
        def __le__(self, o: Any) -> SymbolicData: ...
        def __gt__(self, o: Any) -> SymbolicData: ...
        def __ge__(self, o: Any) -> SymbolicData: ...
        def __eq__(self, o: object) -> SymbolicData: ...  # type: ignore[override]
        def __ne__(self, o: object) -> SymbolicData: ...  # type: ignore[override]
        def __neg__(self) -> SymbolicData: ...
        def __pos__(self) -> SymbolicData: ...
        def __invert__(self) -> SymbolicData: ...
        def __abs__(self) -> SymbolicData: ...


def _conversion(target: str) -> str:
    return (
        f"a symbolic value cannot become {target} while recording: its value is only known at replay. "
        "Record the function that needs it with symgraph.add_to_graph(func, x), or use x.v for the example value"
    )


def _record_builtin(func: Callable[..., Any], *args: Any) -> SymbolicData:
    collector = ArgumentCollector()
    return collector.record(collector.call_op(func, args, {}))


def _forward_method(spec: OperatorSpec) -> Callable[..., SymbolicData]:
    symbol = spec.symbol
    if spec.arity == 1:

        def unary(self: SymbolicData) -> SymbolicData:
            return record_operator(symbol, self)

        method: Callable[..., SymbolicData] = unary
    elif spec.equality:
        # Python's containers call == while searching (``h in [a, b]``); a search
        # that then fails on bool() must leave nothing in the graph, so the
        # comparison joins it only when something uses it.
        def equality(self: SymbolicData, other: Any) -> SymbolicData:
            return record_operator(symbol, self, other, pending=True)

        method = equality
    else:

        def binary(self: SymbolicData, other: Any) -> SymbolicData:
            return record_operator(symbol, self, other)

        method = binary
    method.__name__ = method.__qualname__ = spec.dunder
    return method


def _reflected_method(spec: OperatorSpec) -> Callable[[SymbolicData, Any], SymbolicData]:
    symbol = spec.symbol

    def reflected(self: SymbolicData, other: Any) -> SymbolicData:
        return record_operator(symbol, other, self)

    reflected.__name__ = reflected.__qualname__ = str(spec.reflected)
    return reflected


def operator_methods(specs: Sequence[OperatorSpec]) -> dict[str, Callable[..., SymbolicData]]:
    """The recording dunder methods for ``specs``, by name: forward and reflected forms.

    A backend whose values compare elementwise installs the ``==``/``!=`` entries
    of the table on its handle with this.

    Example:
        >>> from symgraph.plugin import OPERATORS
        >>> sorted(operator_methods([OPERATORS["-"]]))
        ['__rsub__', '__sub__']
    """
    methods: dict[str, Callable[..., SymbolicData]] = {}
    for spec in specs:
        methods[spec.dunder] = _forward_method(spec)
        if spec.reflected is not None:
            methods[spec.reflected] = _reflected_method(spec)
    return methods


for _name, _method in operator_methods([*BINARY, *UNARY]).items():
    if _name not in ("__pow__", "__rpow__"):  # defined above, with pow()'s modulo
        setattr(SymbolicData, _name, _method)


class ArgumentCollector:
    """Collects the distinct symbolic values met while parsing a call's arguments.

    Each distinct node becomes one parent; templates refer to parents by position.

    Args:
        *first: Symbolic values that must come first among the parents.

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput(2)
        >>> c = ArgumentCollector()
        >>> c.template([x, 1, {"k": x}])
        ListT([Ref(0), Const(1), DictT({'k': Ref(0)})])
    """

    __slots__ = ("index", "parents")

    def __init__(self, *first: SymbolicData) -> None:
        self.parents: list[Node] = []
        self.index: dict[int, int] = {}
        for handle in first:
            self.leaf(handle)

    def leaf(self, obj: Any) -> int | None:
        """Parent position of ``obj`` if it is symbolic, else ``None``."""
        if not isinstance(obj, SymbolicData):
            return None
        node = obj._node
        position = self.index.get(id(node))
        if position is None:
            position = self.index[id(node)] = len(self.parents)
            self.parents.append(node)
        return position

    def template(self, obj: Any) -> Template:
        """Parse ``obj`` into a template, collecting its symbolic values."""
        return parse(obj, self.leaf)

    def call_op(self, func: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> Call:
        """A :class:`Call` operation for ``func(*args, **kwargs)``."""
        return Call(self.template(func), [self.template(a) for a in args], self.template(kwargs))

    def record(self, op: Operation, custom_name: str | None = None) -> SymbolicData:
        """Record ``op`` with the collected parents."""
        return record(op, tuple(self.parents), custom_name=custom_name)


# Operations are immutable, so an operator whose operands are all shared templates
# (``y + 1`` is Operator("+", Ref(0), Const(1))) is made once and shared by every node
# that records it: two fewer objects per node for the garbage collector to scan. The
# table is bounded: a few symbols times the shared leaves.
_shared_operators: dict[tuple[Any, ...], Operator] = {}


def record_operator(symbol: str, *operands: Any, pending: bool = False) -> SymbolicData:
    """Record the operator ``symbol`` of the operator table applied to ``operands``.

    ``pending`` is passed on to :func:`record`.

    Example:
        >>> import symgraph
        >>> from symgraph.plugin import record_operator
        >>> x = symgraph.CustomInput(3)
        >>> record_operator("**", 2, x).v
        8
    """
    collector = ArgumentCollector()
    templates = [collector.template(o) for o in operands]
    key = (symbol, *templates)
    op = _shared_operators.get(key)
    if op is None:
        op = Operator(symbol, templates)
        if all(is_shared(t) for t in templates):
            _shared_operators[key] = op
    return record(op, tuple(collector.parents), pending=pending)


def record(
    op: Operation,
    parents: Sequence[Node],
    *,
    custom_name: str | None = None,
    value: Any = _UNSET,
    meta: dict[str, Any] | None = None,
    pending: bool = False,
    handle_class: type[SymbolicData] | None = None,
) -> SymbolicData:
    """Add a node for ``op`` applied to ``parents`` and return its handle.

    The operation is evaluated on the parents' example values first; if that
    raises, the exception propagates with a note and the graph is untouched.

    Args:
        op: The operation.
        parents: Distinct parent nodes, in the order ``op``'s templates refer to.
        custom_name: Name shown in summaries instead of the default one.
        value: The result, when the caller already computed it.
        meta: Backend data stored on the node.
        pending: Leave the node out of its parents' ``children`` until something
            uses it (see :attr:`Node.pending`).
        handle_class: The handle's class; by default the first parent's
            ``symgraph_child_class_for(value)`` if it gives one, else the class registered for the
            value's type.

    Returns:
        A handle of the class the backend registry picks for the result's type.

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput(20)
        >>> from symgraph.plugin import GetAttr, record
        >>> y = record(GetAttr("real"), (x.node,))
        >>> y.v
        20
    """
    if custom_name is not None:
        if not isinstance(custom_name, str):
            raise TypeError(f"custom_name must be a str or None, got {type(custom_name).__name__}")
        custom_name = str.__str__(custom_name)  # an exact str: a subclass's methods never run later
    if not isinstance(op, Operation):
        raise TypeError(f"record() needs an Operation, got {type(op).__name__}")
    if not isinstance(parents, (tuple, list)) or not all(isinstance(p, Node) for p in parents):
        raise TypeError(
            "record() needs a tuple of parent nodes (handle.node), in the order the operation refers to them"
        )
    if value is _UNSET:
        try:
            value = op.evaluate([p.value for p in parents])
        except Exception as exc:
            # repr(op) is bounded and never runs the constants' own __repr__, so the
            # note cannot replace or hide the user's exception.
            exc.add_note(f"symgraph: recording {op!r} failed on the example values; nothing was added to the graph")
            raise
    cls = handle_class
    if cls is None and parents:
        cls = parents[0].handle.symgraph_child_class_for(value)
    if cls is None:
        cls = symbolic_class_for(type(value))
    node = Node(op, tuple(parents), value, custom_name)
    node.meta = meta
    locate(node)
    handle = object.__new__(cls)
    handle._node = node
    node.handle = handle
    if not pending:
        node.attach()
    return handle


# The generic handle class of each type, made once so that handles of one type
# share a class. Which backend handles a type is cached by the registry alone.
_generic: weakref.WeakKeyDictionary[type, type[SymbolicData]] = weakref.WeakKeyDictionary()


def symbolic_class_for(tp: type) -> type[SymbolicData]:
    """The handle class for values of type ``tp``.

    A registered backend's class if one handles ``tp``; otherwise a generic
    subclass made once per type (keyed by the type object, so two classes that
    share a ``__name__`` get different handle classes).

    Example:
        >>> from symgraph.plugin import symbolic_class_for
        >>> symbolic_class_for(set).__name__
        'SymbolicData[set]'
    """
    backend = backend_for(tp)
    if backend is not None:
        return backend.symbolic_class
    try:
        return _generic[tp]
    except KeyError:
        pass
    cls = type(
        f"SymbolicData[{tp.__qualname__}]",
        (SymbolicData,),
        {
            "__slots__": (),
            "__module__": __name__,
            "__doc__": f"Symbolic value of type {tp.__module__}.{tp.__qualname__}.",
        },
    )
    return _generic.setdefault(tp, cls)
