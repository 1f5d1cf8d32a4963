"""The IR node: one recorded value in the graph."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from symgraph._ops import Operation
    from symgraph._symbolic import SymbolicData

__all__ = ["Node"]

# Creation order is a topological order of any graph built through the public API,
# so it is what schedules are sorted by.
_counter = itertools.count()


class Node:
    """One value in the graph: the operation that made it, its parents and children.

    Users hold a :class:`~symgraph.SymbolicData` handle; the node behind it is
    reachable as ``handle.node``. Nodes are created only by
    :func:`symgraph.record` once the operation has succeeded on the example
    values, so a failed trace step leaves nothing behind.

    Attributes:
        id: Creation number, unique in the process.
        op: The :class:`~symgraph.Operation` that produced the value.
        parents: Distinct parent nodes, in the order the operation refers to them.
        children: Nodes recorded with this one as a parent (a pending node is
            not among its parents' children yet).
        value: The example value computed at trace time.
        custom_name: Name given by the user, or ``None``.
        handle: The user-facing handle.
        meta: Free slot for backends (for example an unknown batch dimension).
        pending: True until the node is linked into its parents' ``children`` by
            :meth:`attach`. :func:`symgraph.record` attaches at once, except for
            elements produced by iterating a symbolic value: Python asks an
            iterator for one element more than an unpacking needs, and a failed
            unpacking must not leave nodes behind, so those join the graph when
            first used.

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput(2)
        >>> y = x * 3
        >>> y.node.parents[0] is x.node, y.node.value
        (True, 6)
    """

    __slots__ = (
        "__weakref__",
        "children",
        "custom_name",
        "handle",
        "id",
        "meta",
        "op",
        "parents",
        "pending",
        "value",
    )

    def __init__(self, op: Operation, parents: tuple[Node, ...], value: Any, custom_name: str | None = None) -> None:
        self.id = next(_counter)
        self.op = op
        self.parents = parents
        self.children: list[Node] = []
        self.value = value
        self.custom_name = custom_name
        self.handle: SymbolicData
        self.meta: dict[str, Any] | None = None
        self.pending = True

    def attach(self) -> None:
        """Link this node, and any pending ancestors, into their parents' ``children``."""
        stack = [self]
        while stack:
            node = stack.pop()
            if node.pending:
                node.pending = False
                for parent in node.parents:
                    parent.children.append(node)
                    stack.append(parent)

    def __repr__(self) -> str:
        return f"<Node {self.id} {self.op!r}>"
