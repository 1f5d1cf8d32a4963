"""Symbolic values of any other type, recorded the way pytorch-symbolic records them.

``symgraph_torch.CustomInput`` wraps values that are not tensors in
:class:`SymbolicObject`. Like pytorch-symbolic's generic symbolic data, it records
an operator as a call of the operand's dunder method (``a + b`` becomes
``a.__add__`` then a call), keeps that behaviour for every value derived from it,
and is described by type name in summaries. Code written for pytorch-symbolic
therefore builds the same graphs and prints the same summaries. For symgraph's
own recording of such values, use :func:`symgraph.CustomInput`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from symgraph.plugin import BINARY, UNARY, GetAttr, Node, SymbolicData, record

__all__ = ["SymbolicObject"]

# The dunders the operator table installs on the base handle, forward and
# reflected; ``==`` and ``!=`` keep pytorch-symbolic's identity semantics here.
_BINARY = tuple(
    name for spec in BINARY if not spec.equality for name in (spec.dunder, spec.reflected) if name is not None
)
_UNARY = tuple(spec.dunder for spec in UNARY)


def _as_method_call(handle: SymbolicData, dunder: str, args: tuple[Any, ...]) -> SymbolicData:
    method = record(GetAttr(dunder), (handle.node,))
    return method(*args)


class SymbolicObject(SymbolicData):
    """A symbolic value of a type torch does not know, with pytorch-symbolic's rules.

    Example:
        >>> import symgraph_torch
        >>> x = symgraph_torch.CustomInput([1, 2])
        >>> y = x + [3]
        >>> [type(p.op).__name__ for p in (y.parents[0],)], y.v
        (['GetAttr'], [1, 2, 3])
    """

    __slots__ = ()

    # pytorch-symbolic compares its symbolic data by identity; code written for it
    # relies on that (``if out == inp``), so this compatibility handle keeps it.
    def __eq__(self, other: object) -> bool:  # type: ignore[override]
        return self is other

    def __ne__(self, other: object) -> bool:  # type: ignore[override]
        return self is not other

    __hash__ = SymbolicData.__hash__

    @classmethod
    def symgraph_describe_node(cls, node: Node) -> str:
        return type(node.value).__name__

    @classmethod
    def symgraph_input_check(cls, node: Node, name: str) -> Callable[[Any], None] | None:
        return None


def _binary(dunder: str) -> Callable[[SymbolicData, Any], SymbolicData]:
    def method(self: SymbolicData, other: Any) -> SymbolicData:
        return _as_method_call(self, dunder, (other,))

    method.__name__ = dunder
    return method


def _unary(dunder: str) -> Callable[[SymbolicData], SymbolicData]:
    def method(self: SymbolicData) -> SymbolicData:
        return _as_method_call(self, dunder, ())

    method.__name__ = dunder
    return method


for _name in _BINARY:
    setattr(SymbolicObject, _name, _binary(_name))
for _name in _UNARY:
    setattr(SymbolicObject, _name, _unary(_name))
SymbolicObject.symgraph_child_class = SymbolicObject
