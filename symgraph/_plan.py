"""From a graph of nodes to a flat, ordered plan.

Code generation and the reference interpreter both consume plans.

Values in a plan live in numbered slots: the inputs take ``0 .. n_inputs - 1`` and
step ``j`` writes slot ``n_inputs + j``. A plan holds no nodes and no example
values, so it pickles without walking the graph.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from symgraph._errors import GraphError
from symgraph._node import Node
from symgraph._ops import Operation
from symgraph._symbolic import ArgumentCollector, SymbolicData
from symgraph._templates import DictT, ListT, Template, TupleT, shared_ref
from symgraph._text import describe

__all__ = ["InputSpec", "Plan", "Step", "build_plan"]


@dataclass(frozen=True, slots=True)
class Step:
    """One operation of a plan.

    Attributes:
        op: The operation.
        args: Slots holding the operation's parents, in the op's parent order.
        name: Display name in this model, such as ``Linear_2``.
        description: The example output's type or shape, for summaries.
        where: ``file:line`` of the user code that recorded it, for error notes;
            ``""`` when not known.
    """

    op: Operation
    args: tuple[int, ...]
    name: str
    description: str
    where: str = ""


@dataclass(frozen=True, slots=True)
class InputSpec:
    """One input of a plan.

    Attributes:
        name: Display name, such as ``Input_1``.
        description: The example value's type or shape.
        check: Backend validator for values passed in, or ``None``.
    """

    name: str
    description: str
    check: Callable[[Any], None] | None


@dataclass(frozen=True, slots=True)
class Plan:
    """A model's computation as a flat list of steps.

    Attributes:
        inputs: One spec per input slot.
        input_keys: The keys, in order, when the inputs were given as a dict.
        steps: Operations in execution order.
        outputs: Template of the return value; its ``Ref`` leaves are slots.
    """

    inputs: tuple[InputSpec, ...]
    input_keys: tuple[str, ...] | None
    steps: tuple[Step, ...]
    outputs: Template

    def output_slots(self) -> set[int]:
        """Slots returned by the model."""
        return set(self.outputs.refs())


def _display(node: Node) -> str:
    if node.custom_name is not None:
        return describe(node.custom_name)
    return f"{node.op.display_name([p.value for p in node.parents])} node {node.handle!r}"


def _normalize_inputs(inputs: Any) -> tuple[list[Node], tuple[str, ...] | None]:
    if isinstance(inputs, SymbolicData):
        items: list[tuple[str, Any]] = [("inputs", inputs)]
        keys = None
    elif isinstance(inputs, Mapping):
        items = [(f"inputs[{describe(k)}]", v) for k, v in inputs.items()]
        keys = tuple(inputs)
        for k in keys:
            if type(k) is not str:
                raise TypeError(
                    f"dict inputs need str keys (they become keyword arguments), got {describe(k)} "
                    f"of type {type(k).__name__}"
                )
    elif isinstance(inputs, (list, tuple)):
        items = [(f"inputs[{i}]", v) for i, v in enumerate(inputs)]
        keys = None
    else:
        raise TypeError(
            f"inputs must be a symbolic value, a list or tuple of them, or a dict; got {type(inputs).__name__}"
        )
    nodes: list[Node] = []
    seen: set[int] = set()
    for label, value in items:
        if not isinstance(value, SymbolicData):
            raise TypeError(f"{label} must be a symbolic value, got {type(value).__name__}")
        if id(value.node) in seen:
            raise GraphError(f"{label} is given twice among the inputs")
        seen.add(id(value.node))
        nodes.append(value.node)
    if not nodes:
        raise GraphError("a model needs at least one input")
    return nodes, keys


def _normalize_outputs(outputs: Any) -> tuple[list[Node], Template, list[str]]:
    """Distinct output nodes, the return template, and how each node is named in messages."""
    collector = ArgumentCollector()
    if isinstance(outputs, SymbolicData):
        template: Template = collector.template(outputs)
        labels = ["the output"]
    elif isinstance(outputs, (list, tuple, Mapping)):
        labelled = list(outputs.items() if isinstance(outputs, Mapping) else enumerate(outputs))
        first: dict[int, str] = {}
        for label, value in labelled:
            if not isinstance(value, SymbolicData):
                raise TypeError(f"outputs[{describe(label)}] must be a symbolic value, got {type(value).__name__}")
            first.setdefault(
                id(value.node), f"outputs[{describe(label)}]" if isinstance(outputs, Mapping) else f"output {label}"
            )
        if isinstance(outputs, Mapping):
            template = DictT(list(outputs), [collector.template(v) for v in outputs.values()])
        else:
            items = [collector.template(v) for v in outputs]
            template = ListT(items) if isinstance(outputs, list) else TupleT(items)
        if not collector.parents:
            raise GraphError("a model needs at least one output")
        labels = [first[id(n)] for n in collector.parents]
    else:
        raise TypeError(
            f"outputs must be a symbolic value, a list or tuple of them, or a dict; got {type(outputs).__name__}"
        )
    return collector.parents, template, labels


_ON_PATH = -1  # the slot of a node that the walk in _schedule has entered but not emitted yet


def _schedule(inputs: list[Node], outputs: list[Node], labels: list[str]) -> tuple[list[Node], dict[Node, int]]:
    """Nodes strictly between the inputs and the outputs, in execution order, and every slot.

    An iterative depth-first walk from each output in turn, parents in the order
    the operation refers to them, emits every node after its parents (post-order).
    This is the order pytorch-symbolic lists layers in, and running each branch to
    its end before starting the next keeps few intermediate values alive.

    Returns:
        The nodes in execution order, and the slot of each input and each of those
        nodes: the walk's own bookkeeping, so a large graph is not indexed twice.
    """
    # Nodes are keys as themselves (they hash by identity): their hash spreads
    # better than id(), whose low bits are always zero.
    slots = {node: i for i, node in enumerate(inputs)}
    order: list[Node] = []
    for output, origin in zip(outputs, labels, strict=True):
        # Two stacks, of nodes and of the next parent to visit, rather than one of
        # pairs: a deep chain keeps its whole path on the stack, and a pair per node
        # would be that many more objects for the garbage collector to scan.
        stack: list[Node] = [output]
        next_parents: list[int] = [0]
        while stack:
            node = stack.pop()
            next_parent = next_parents.pop()
            parents = node.parents
            if next_parent == 0:
                slot = slots.get(node)
                if slot is not None:
                    if slot != _ON_PATH:
                        continue  # an input, or emitted already
                    path = [n for n in stack if slots.get(n) == _ON_PATH]
                    names = ", ".join(_display(n) for n in path[-5:])
                    raise GraphError(
                        f"the graph between the inputs and outputs has a cycle through {_display(node)}; "
                        f"the walk from {origin} came through: {names}"
                    )
                if not parents:
                    raise GraphError(
                        f"{origin} depends on {_display(node)}, which is a missing input: "
                        "it is not among the model's inputs; add it to them or build the output without it"
                    )
                slots[node] = _ON_PATH
            if next_parent < len(parents):
                stack += (node, parents[next_parent])
                next_parents += (next_parent + 1, 0)
            else:
                slots[node] = len(inputs) + len(order)
                order.append(node)
    return order, slots


def build_plan(inputs: Any, outputs: Any) -> tuple[Plan, list[Node]]:
    """Select, order and flatten the subgraph from ``inputs`` to ``outputs``.

    Args:
        inputs: A symbolic value, a list or tuple of them, or a dict of them.
        outputs: Same forms.

    Returns:
        The plan and its nodes, one per slot.

    Raises:
        GraphError: an output depends on a node that is not an input, the
            subgraph has a cycle, or inputs and outputs are malformed.
        TypeError: inputs or outputs are not symbolic values.

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput(2)
        >>> plan, nodes = build_plan(x, (x + 1) * 3)
        >>> [step.name for step in plan.steps]
        ['LambdaOpLayer_1', 'LambdaOpLayer_2']
    """
    input_nodes, keys = _normalize_inputs(inputs)
    output_nodes, out_template, labels = _normalize_outputs(outputs)
    inner, slot = _schedule(input_nodes, output_nodes, labels)
    nodes = input_nodes + inner
    for node in (*input_nodes, *output_nodes):
        node.attach()  # a model uses them, so they are part of the graph now

    # A custom name, or a dict input's key, is used as it is; other names are a base
    # name numbered per base (Input_1, LambdaOpLayer_2, ...). The handle's class
    # describes and checks values: it knows what the node's value alone does not (a
    # tensor's unknown batch size, say).
    counts: dict[str, int] = {}
    specs: list[InputSpec] = []
    for i, node in enumerate(input_nodes):
        name = node.custom_name
        if name is None:
            if keys is not None:
                name = keys[i]  # dict inputs are named by their keys; the summary only displays them
            else:
                count = counts["Input"] = counts.get("Input", 0) + 1
                name = f"Input_{count}"
        handle_type = type(node.handle)
        specs.append(
            InputSpec(name, handle_type.symgraph_describe_node(node), handle_type.symgraph_input_check(node, name))
        )
    # One pass per node does all its work: a large graph does not fit in the CPU's
    # caches, and each further pass over it would fetch every node from memory again.
    steps: list[Step] = []
    for node in inner:
        parents = node.parents
        name = node.custom_name
        if name is None:
            base = node.op.display_name([p.value for p in parents])
            count = counts[base] = counts.get(base, 0) + 1
            name = f"{base}_{count}"
        args = tuple([slot[p] for p in parents])
        steps.append(Step(node.op, args, name, type(node.handle).symgraph_describe_node(node), node.where))
    # Output templates refer to collector positions; renumber them to slots.
    out_slots = [slot[n] for n in output_nodes]
    outputs = out_template.map(lambda ref: shared_ref(out_slots[ref.index]))
    return Plan(tuple(specs), keys, tuple(steps), outputs), nodes
