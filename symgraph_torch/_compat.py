"""Symbolic values of any other type, recorded the way pytorch-symbolic records them.

``symgraph_torch.CustomInput`` wraps values that are not tensors in a
:class:`SymbolicObject`: one subclass per type of value (see
:func:`SymbolicFactory`), and :class:`SymbolicCallable` for callables. Like
pytorch-symbolic's generic symbolic data, it records an operator as a call of the
operand's dunder method (``a + b`` becomes ``a.__add__`` then a call), keeps that
behaviour for every value derived from it (tensors derived from it are
:class:`~symgraph_torch.SymbolicTensor`), and is described by type name in
summaries. Code written for pytorch-symbolic therefore builds the same graphs
and prints the same summaries. For symgraph's own recording of such values, use
:func:`symgraph.CustomInput`.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from symgraph.plugin import (
    BINARY,
    UNARY,
    ArgumentCollector,
    Call,
    EmitContext,
    GetAttr,
    Node,
    SymbolicData,
    emit_template,
    record,
    record_operator,
    register_emitter,
    symbolic_class_for,
)
from symgraph_torch._tensor import batch_is_unknown, node_depth
from symgraph_torch._tracing import record_call

__all__ = ["DunderCall", "SymbolicCallable", "SymbolicFactory", "SymbolicObject", "call_dunder"]

# The dunders the operator table installs on the base handle, forward and
# reflected; ``==`` and ``!=`` keep pytorch-symbolic's identity semantics here.
# Each maps to the operator it stands for and whether the handle is its right operand.
_BINARY: dict[str, tuple[str, bool]] = {}
for _spec in BINARY:
    if not _spec.equality:
        _BINARY[_spec.dunder] = (_spec.symbol, False)
        if _spec.reflected is not None:
            _BINARY[_spec.reflected] = (_spec.symbol, True)
_UNARY = {spec.dunder: spec.symbol for spec in UNARY}


# The dunders a DunderCall may fall back from: what Python's operator does when the
# method returns NotImplemented, as (operator function, whether the method's owner
# is the right operand).
_FALLBACKS: dict[str, tuple[Callable[..., Any], bool]] = {}
for _spec in BINARY:
    if not _spec.equality:
        _FALLBACKS[_spec.dunder] = (_spec.fn, False)
        if _spec.reflected is not None:
            _FALLBACKS[_spec.reflected] = (_spec.fn, True)
for _spec in UNARY:
    _FALLBACKS[_spec.dunder] = (_spec.fn, False)


def call_dunder(method: Any, *args: Any) -> Any:
    """``method(*args)``, or what Python's operator gives where the method declines.

    A recorded ``x.__mul__(2.5)`` replays on whatever value comes in. If the
    example was a float and the call gets an int, ``int.__mul__(2.5)`` is
    ``NotImplemented``, while the code recorded, ``x * 2.5``, gives a float: so a
    ``NotImplemented`` answer is replaced by the operator itself, which asks the
    other operand and raises ``TypeError`` when neither can.

    Example:
        >>> call_dunder((3).__mul__, 2.5)
        7.5
        >>> call_dunder((3).__rsub__, 10)
        7
    """
    result = method(*args)
    if result is not NotImplemented:
        return result
    fallback = _FALLBACKS.get(getattr(method, "__name__", ""))
    owner = getattr(method, "__self__", None)
    if fallback is None or owner is None:
        return result
    fn, right = fallback
    if not args:
        return fn(owner)
    return fn(args[0], owner) if right else fn(owner, *args)


class DunderCall(Call):
    """The call of an operand's dunder method, as pytorch-symbolic records an operator.

    A :class:`~symgraph.plugin.Call` of the recorded bound method, shown and named
    as one (``wrap(__add__)``), that replays through :func:`call_dunder` so that a
    method declining the value given at call time gets the operator's answer.

    Example:
        >>> import symgraph, symgraph_torch
        >>> x = symgraph_torch.CustomInput(1.5)
        >>> y = x * 2.5
        >>> type(y.op).__name__, symgraph.SymbolicModel(x, y)(3)
        ('DunderCall', 7.5)
    """

    __slots__ = ()

    def evaluate(self, args: Any) -> Any:
        return call_dunder(self.func.evaluate(args), *(t.evaluate(args) for t in self.args))


def _emit_dunder_call(op: DunderCall, args: Any, ctx: EmitContext) -> str:
    operands = [emit_template(op.func, args, ctx), *ctx.arguments(op.args, op.kwargs, args)]
    return f"{ctx.pool.ref(call_dunder)}({', '.join(operands)})"


register_emitter(DunderCall, _emit_dunder_call)


def _as_method_call(handle: SymbolicData, dunder: str, args: tuple[Any, ...]) -> SymbolicData:
    """``handle.<dunder>(*args)`` recorded as pytorch-symbolic records an operator.

    Python's operator does more than call the left operand's method: when that
    method is missing or returns ``NotImplemented`` (``3 + 2.5`` asks
    ``int.__add__`` first), it asks the other operand, and raises ``TypeError``
    if neither can. Then the operator itself is recorded, so that the model
    computes what the code computes; the method's nodes stay pending and never
    join the graph.
    """
    try:
        method = record(GetAttr(dunder), (handle.node,), pending=True)
    except AttributeError:
        method = None
    if method is not None:
        collector = ArgumentCollector(method)
        call = collector.call_op(method, args, {})
        op = DunderCall(call.func, call.args, call.kwargs)
        result = record(op, tuple(collector.parents), pending=True)
        if result.v is not NotImplemented:
            result.node.attach()
            return result
    if dunder in _UNARY:
        return record_operator(_UNARY[dunder], handle)
    symbol, right = _BINARY[dunder]
    (other,) = args
    return record_operator(symbol, other, handle) if right else record_operator(symbol, handle, other)


def _instances_callable(tp: type) -> bool:
    # What callable() asks of an instance: whether its type (not its metaclass) has __call__.
    return any("__call__" in vars(klass) for klass in tp.__mro__)


class SymbolicObject(SymbolicData):
    """A symbolic value of a type torch does not know, with pytorch-symbolic's rules.

    Its values have one subclass per type (:func:`SymbolicFactory`), and
    :class:`SymbolicCallable` when they are callable. Calling one applies a
    layer, as in pytorch-symbolic: ``x(layer, *others)`` is ``layer(x, *others)``.

    Example:
        >>> import symgraph_torch
        >>> x = symgraph_torch.CustomInput([1, 2])
        >>> y = x + [3]
        >>> [type(p.op).__name__ for p in y.parents], y.v
        (['GetAttr'], [1, 2, 3])
        >>> isinstance(y, SymbolicObject), x.batch_size_known, y.depth
        (True, True, 2)
    """

    __slots__ = ()

    # pytorch-symbolic compares its symbolic data by identity; code written for it
    # relies on that (``if out == inp``), so this compatibility handle keeps it.
    def __eq__(self, other: object) -> bool:  # type: ignore[override]
        return self is other

    def __ne__(self, other: object) -> bool:  # type: ignore[override]
        return self is not other

    __hash__ = SymbolicData.__hash__

    def __call__(self, layer: Any, *others: Any, custom_name: str | None = None, **kwargs: Any) -> Any:
        """Apply ``layer`` to this value (and ``others``): ``x(layer)`` is ``layer(x)``.

        Example:
            >>> import symgraph_torch
            >>> x = symgraph_torch.CustomInput([3, 1, 2])
            >>> x(sorted).v
            [1, 2, 3]
        """
        return self.apply_module(layer, *others, custom_name=custom_name, **kwargs)

    def apply_module(self, layer: Any, *others: Any, custom_name: str | None = None, **kwargs: Any) -> Any:
        """pytorch-symbolic's name for ``x(layer, *others)``: record ``layer(x, *others)``.

        Example:
            >>> import symgraph_torch
            >>> x = symgraph_torch.CustomInput([3, 1, 2])
            >>> x.apply_module(sorted).v
            [1, 2, 3]
        """
        if not callable(layer):
            raise TypeError(
                f"x(layer) or x.apply_module(layer): layer must be an nn.Module or another callable, got "
                f"{type(layer).__name__}; the value is a {type(self.v).__name__}, which cannot be called"
            )
        return record_call(layer, (self, *others), kwargs, custom_name)

    @property
    def batch_size_known(self) -> bool:
        """Whether no input this value is computed from has an unknown batch size (``CustomInput``'s have none)."""
        return not batch_is_unknown(self._node)

    @property
    def depth(self) -> int:
        """Steps on the longest path from an input to this value: ``0`` for an input."""
        return node_depth(self._node)

    @property
    def layer(self) -> nn.Module | None:
        """The ``nn.Module`` that produced this value, or one that does what its step does; ``None`` for an input."""
        from symgraph_torch.useful_layers import layer_of

        return layer_of(self._node)

    @classmethod
    def symgraph_describe_node(cls, node: Node) -> str:
        return type(node.value).__name__

    @classmethod
    def symgraph_input_check(cls, node: Node, name: str) -> Callable[[Any], None] | None:
        return None

    @classmethod
    def symgraph_child_class_for(cls, value: Any) -> type[SymbolicData] | None:
        # As pytorch-symbolic picks the class of every new value: a tensor is a
        # SymbolicTensor (the registry's), anything else gets its type's class.
        return None if isinstance(value, torch.Tensor) else SymbolicFactory(type(value))


class SymbolicCallable(SymbolicObject):
    """A symbolic value that is callable: calling it records the call of the value.

    ``CustomInput(f)`` gives one, and so does a method read from a symbolic
    value. Unlike :class:`SymbolicObject`, calling it calls the value rather than
    applying a layer; to apply a layer, use :meth:`apply_module`.

    Example:
        >>> import symgraph
        >>> import symgraph_torch
        >>> f = symgraph_torch.CustomInput(lambda a, b: a * 10 + b)
        >>> isinstance(f, SymbolicCallable), f(4, 2).v
        (True, 42)
        >>> model = symgraph.SymbolicModel(f, f(4, 2))
        >>> model(lambda a, b: a - b)
        2
    """

    __slots__ = ()

    def __call__(self, *args: Any, **kwargs: Any) -> SymbolicData:
        """Record ``value(*args, **kwargs)``."""
        return SymbolicData.__call__(self, *args, **kwargs)


def _binary(dunder: str) -> Callable[[SymbolicData, Any], SymbolicData]:
    def method(self: SymbolicData, other: Any) -> SymbolicData:
        return _as_method_call(self, dunder, (other,))

    method.__name__ = dunder
    method.__qualname__ = f"SymbolicObject.{dunder}"
    return method


def _unary(dunder: str) -> Callable[[SymbolicData], SymbolicData]:
    def method(self: SymbolicData) -> SymbolicData:
        return _as_method_call(self, dunder, ())

    method.__name__ = dunder
    method.__qualname__ = f"SymbolicObject.{dunder}"
    return method


for _name in _BINARY:
    setattr(SymbolicObject, _name, _binary(_name))
for _name in _UNARY:
    setattr(SymbolicObject, _name, _unary(_name))


# One class per type, keyed by the type object itself: two classes that share a
# __name__ get two symbolic classes, and a class no longer used takes its
# symbolic class with it.
_FACTORY: weakref.WeakKeyDictionary[type, type[SymbolicObject]] = weakref.WeakKeyDictionary()


def SymbolicFactory(dtype: type) -> type[SymbolicData]:  # noqa: N802 - pytorch-symbolic's name
    """The symbolic class that ``symgraph_torch.CustomInput`` gives values of type ``dtype``.

    A subclass of :class:`SymbolicObject` made once per type; for types whose
    instances are callable, :class:`SymbolicCallable`; for tensors,
    :class:`~symgraph_torch.SymbolicTensor`.

    Raises:
        TypeError: ``dtype`` is not a type.

    Example:
        >>> import symgraph_torch
        >>> SymbolicFactory(dict).__name__
        'SymbolicObject[dict]'
        >>> type(symgraph_torch.CustomInput({"a": 1})) is SymbolicFactory(dict)
        True
    """
    if not isinstance(dtype, type):
        raise TypeError(f"SymbolicFactory() needs a type, got {type(dtype).__name__}")
    if issubclass(dtype, torch.Tensor):
        return symbolic_class_for(dtype)
    if _instances_callable(dtype):
        return SymbolicCallable
    found = _FACTORY.get(dtype)
    if found is None:
        found = type(
            f"SymbolicObject[{dtype.__qualname__}]",
            (SymbolicObject,),
            {
                "__slots__": (),
                "__module__": __name__,
                "__doc__": f"Symbolic value of type {dtype.__module__}.{dtype.__qualname__}.",
            },
        )
        found = _FACTORY.setdefault(dtype, found)
    return found
