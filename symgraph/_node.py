"""The IR node, one recorded value in the graph, and the base of the handles users hold."""

from __future__ import annotations

import itertools
from types import CodeType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from symgraph._ops import Operation
    from symgraph._symbolic import SymbolicData

__all__ = ["Handle", "Node"]

# Creation order is a topological order of any graph built through the public API,
# so it is what schedules are sorted by.
_counter = itertools.count()


class Node:
    """One value in the graph: the operation that made it, its parents and children.

    Users hold a :class:`~symgraph.SymbolicData` handle; the node behind it is
    reachable as ``handle.node``. Nodes are created only by
    :func:`symgraph.plugin.record` once the operation has succeeded on the example
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
        where_code: The code object of the user code that recorded the node, or
            ``None`` (see :attr:`where`).
        where_line: Its line.
        pending: True until the node is linked into its parents' ``children`` by
            :meth:`attach`. :func:`symgraph.plugin.record` attaches at once, except for
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
        "_children",
        "_parents",
        "custom_name",
        "handle",
        "id",
        "meta",
        "op",
        "pending",
        "value",
        "where_code",
        "where_line",
    )

    # A graph is cyclic (a node and its handle refer to each other, and so do parents
    # and children), so only the cyclic garbage collector frees it, and each of its
    # full collections scans every object of the graph. Recording a large graph pays
    # for several of them, so a node keeps as few objects of its own as it can: a
    # single parent or child is stored as itself, not in a tuple or a list, and the
    # public ``parents`` and ``children`` are built from that.

    def __init__(self, op: Operation, parents: tuple[Node, ...], value: Any, custom_name: str | None = None) -> None:
        self.id = next(_counter)
        self.op = op
        self._parents: Node | tuple[Node, ...] = parents[0] if len(parents) == 1 else tuple(parents)
        self._children: Node | list[Node] | None = None  # None, one child, or the list made by ``children``
        self.value = value
        self.custom_name = custom_name
        self.handle: SymbolicData
        self.meta: dict[str, Any] | None = None
        self.pending = True
        # Two slots rather than a tuple: one object less per node to allocate.
        self.where_code: CodeType | None = None
        self.where_line = 0

    @property
    def where(self) -> str:
        """``file:line`` of the user code that recorded the node, or ``""`` when not known."""
        code = self.where_code
        return f"{code.co_filename}:{self.where_line}" if code is not None else ""

    @property
    def parents(self) -> tuple[Node, ...]:
        """Distinct parent nodes, in the order the operation refers to them."""
        parents = self._parents
        return parents if isinstance(parents, tuple) else (parents,)

    @parents.setter
    def parents(self, parents: tuple[Node, ...]) -> None:
        self._parents = parents[0] if len(parents) == 1 else tuple(parents)

    @property
    def children(self) -> list[Node]:
        """Nodes recorded with this one as a parent, in the order they joined the graph."""
        children = self._children
        if children is None or isinstance(children, Node):
            children = self._children = [] if children is None else [children]
        return children

    def attach(self) -> None:
        """Link this node, and any pending ancestors, into their parents' ``children``."""
        stack = [self]
        while stack:
            node = stack.pop()
            if node.pending:
                node.pending = False
                for parent in node.parents:
                    siblings = parent._children
                    if siblings is None:
                        parent._children = node
                    elif isinstance(siblings, Node):
                        parent._children = [siblings, node]
                    else:
                        siblings.append(node)
                    if parent.pending:
                        stack.append(parent)

    def __repr__(self) -> str:
        return f"<Node {self.id} {self.op!r}>"


class Handle:
    """The thin, user-facing handle over one node; :class:`~symgraph.SymbolicData` adds recording.

    It lives here, beside the node, so that the backend registry can check that a
    plugin's handle class is one without importing the recording machinery.

    Example:
        >>> import symgraph
        >>> from symgraph.plugin import Handle
        >>> isinstance(symgraph.CustomInput(1), Handle)
        True
    """

    __slots__ = ("_node",)
    _node: Node
