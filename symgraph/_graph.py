"""A model's link to the graph it was built from, held weakly.

A model needs its symbolic inputs and outputs only to grow (``add_output``) and
to show them (``model.inputs``); holding them strongly would keep every example
value of the graph alive for as long as the model lives.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, MutableMapping
from typing import Any, TypeVar

from symgraph._errors import MissingGraphError
from symgraph._node import Node
from symgraph._symbolic import ArgumentCollector
from symgraph._templates import Template

T = TypeVar("T")

__all__ = ["WeakGraph", "fold_ancestors"]


class WeakGraph:
    """The inputs and outputs a model was built from, without keeping the graph alive.

    Args:
        inputs: The model's inputs, in the structure given.
        outputs: The model's outputs, in the structure given.

    Example:
        >>> import symgraph
        >>> from symgraph.plugin import WeakGraph
        >>> x = symgraph.CustomInput(1)
        >>> graph = WeakGraph(x, [x + 1])
        >>> graph.outputs("outputs")[0].v
        2
    """

    __slots__ = ("input_nodes", "input_template", "output_nodes", "output_template")

    def __init__(self, inputs: Any, outputs: Any) -> None:
        self.input_template, self.input_nodes = self._split(inputs)
        self.output_template, self.output_nodes = self._split(outputs)

    @staticmethod
    def _split(structure: Any) -> tuple[Template, list[weakref.ref[Node]]]:
        collector = ArgumentCollector()
        template = collector.template(structure)
        return template, [weakref.ref(n) for n in collector.parents]

    @staticmethod
    def _join(template: Template, refs: list[weakref.ref[Node]], what: str) -> Any:
        handles = []
        for ref in refs:
            node = ref()
            if node is None:
                raise MissingGraphError(
                    f"{what}: the graph this model was built from no longer exists (a model does not keep the "
                    "trace-time graph alive); keep references to its inputs and outputs to use it"
                )
            handles.append(node.handle)
        return template.evaluate(handles)

    def inputs(self, what: str) -> Any:
        """The symbolic inputs; ``what`` names the caller in the error when they are gone."""
        return self._join(self.input_template, self.input_nodes, what)

    def outputs(self, what: str) -> Any:
        """The symbolic outputs; ``what`` names the caller in the error when they are gone."""
        return self._join(self.output_template, self.output_nodes, what)


def fold_ancestors(
    node: Node,
    cache: MutableMapping[Node, T],
    root: Callable[[Node], T],
    step: Callable[[Node, list[T]], T],
    stop: Callable[[Node], T | None] | None = None,
) -> T:
    """A value for ``node`` computed from its parents' values, back to the roots; each cached.

    Roots (nodes without parents) get ``root(node)``; every other node gets
    ``step(node, [value of each parent])``, once its parents have theirs.
    ``stop``, when given, may end the walk early at a node: where it returns a
    value other than ``None``, that is the node's value and its ancestors are not
    visited. ``cache`` keeps the values, so a later call does only the nodes that
    are new. Iterative: a chain of a million nodes needs no deep recursion.

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput(1)
        >>> y = (x + 1) * (x + 2)
        >>> depth: dict = {}
        >>> fold_ancestors(y.node, depth, lambda n: 0, lambda n, ps: 1 + max(ps))
        2
    """
    if node in cache:
        return cache[node]
    stack = [node]
    while stack:
        current = stack[-1]
        if current in cache:
            stack.pop()
            continue
        parents = current.parents
        if not parents:
            cache[current] = root(current)
            stack.pop()
            continue
        early = stop(current) if stop is not None else None
        if early is not None:
            cache[current] = early
            stack.pop()
            continue
        missing = [p for p in parents if p not in cache]
        if missing:
            stack.extend(missing)
            continue
        stack.pop()
        cache[current] = step(current, [cache[p] for p in parents])
    return cache[node]
