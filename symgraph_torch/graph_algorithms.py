"""Graph algorithms of pytorch-symbolic, and drawing graphs with matplotlib (``pip install symgraph-py[draw]``).

Example:
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from torch import nn
    >>> from symgraph_torch import Input, graph_algorithms
    >>> x = Input((4,))
    >>> y = nn.Linear(4, 2)(x)
    >>> figure = graph_algorithms.draw_graph(inputs=x, outputs=y)
    >>> sorted(t.get_text() for t in figure.axes[0].texts if t.get_gid() == "symgraph-title")
    ['Input_1', 'Linear_1']
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from torch import nn

from symgraph._drawing import draw_boxes, plan_boxes, step_kind
from symgraph._summary import Row
from symgraph.plugin import Node, Plan, SymbolicData, build_plan, escape
from symgraph_torch.useful_layers import GetAttr, layer_of

__all__ = [
    "check_for_missing_inputs",
    "default_edge_text",
    "default_node_text",
    "draw_graph",
    "figure_out_nodes_between",
    "nodes_between",
    "sort_graph_and_check_DAG",
    "variable_name_resolver",
]


def _nodes(values: Any, what: str) -> list[Node]:
    if values is None:
        return []
    if isinstance(values, SymbolicData):
        return [values.node]
    items = values.values() if isinstance(values, Mapping) else values
    if not isinstance(items, Iterable):
        raise TypeError(
            f"{what} must be symbolic values (one, or a list, tuple, set or dict), got {type(values).__name__}"
        )
    out = []
    for v in items:
        if not isinstance(v, SymbolicData):
            raise TypeError(f"{what} must be symbolic values, got {type(v).__name__}")
        out.append(v.node)
    return out


def _reach(starts: list[Node], forward: bool, within: dict[int, Node] | None = None) -> dict[int, Node]:
    """The nodes reachable from ``starts`` (themselves included) by children or by parents; iterative."""
    found: dict[int, Node] = {}
    stack = [n for n in starts if within is None or id(n) in within]
    while stack:
        node = stack.pop()
        if id(node) not in found:
            found[id(node)] = node
            for nxt in node.children if forward else node.parents:
                if within is None or id(nxt) in within:
                    stack.append(nxt)
    return found


def _between(inputs: list[Node] | None, outputs: list[Node] | None) -> dict[int, Node]:
    # Descendants of the inputs that are ancestors of the outputs; one side alone
    # when the other is not given.
    if inputs is None:
        return _reach(outputs or [], forward=False)
    down = _reach(inputs, forward=True)
    return down if outputs is None else _reach(outputs, forward=False, within=down)


def nodes_between(inputs: Any, outputs: Any = None) -> list[Node]:
    """Nodes reachable from ``inputs`` that lead to ``outputs`` (all descendants without outputs).

    Iterative; the order is the order of creation.

    Example:
        >>> from symgraph_torch import Input
        >>> x = Input((2,))
        >>> y = x + 1
        >>> _ = x * 5  # not on the way to y
        >>> len(nodes_between(x, y))
        2
    """
    starts = _nodes(inputs, "inputs")
    if not starts:
        raise ValueError("draw_graph: give inputs= (symbolic values) or model=")
    ends = _nodes(outputs, "outputs")
    return sorted(_between(starts, ends or None).values(), key=lambda n: n.id)


def _site(node: Node) -> str:
    return f"recorded at {node.where}" if node.where else "where it was recorded is not known"


def _describe(node: Node) -> str:
    name = node.custom_name or node.op.display_name([p.value for p in node.parents])
    return f"{escape(name)} ({_site(node)})"


def check_for_missing_inputs(used_nodes: Iterable[SymbolicData], inputs: Any) -> None:
    """Raise if a value among ``used_nodes`` is computed from one outside them that is not an input.

    A model made of ``used_nodes`` could not compute such a value without the
    foreign one: ``x3 = x1 + x2`` needs ``x2`` as well as ``x1``.

    Args:
        used_nodes: Symbolic values (a set, or any iterable of them).
        inputs: The inputs: a symbolic value, or a list, tuple or dict of them.

    Raises:
        ValueError: a value needs one that is neither among ``used_nodes`` nor an
            input; the message names both and where they were recorded.

    Example:
        >>> from symgraph_torch import Input
        >>> x1, x2 = Input((3,)), Input((3,))
        >>> x3 = x1 + x2
        >>> check_for_missing_inputs({x1, x3}, [x1])
        Traceback (most recent call last):
        ...
        ValueError: AddOpLayer (recorded at ...) is computed from ... which is neither among the nodes nor an input; ...
    """
    used = {id(n): n for n in _nodes(used_nodes, "used_nodes")}
    starts = {id(n) for n in _nodes(inputs, "inputs")}
    for node in used.values():
        if id(node) in starts:
            continue
        for parent in node.parents:
            if id(parent) not in used:
                raise ValueError(
                    f"{_describe(node)} is computed from {_describe(parent)}, which is neither among the "
                    "nodes nor an input; add it to the inputs"
                )


def figure_out_nodes_between(inputs: Any = None, outputs: Any = None) -> set[SymbolicData]:
    """The symbolic values computed from ``inputs`` on the way to ``outputs``, both ends included.

    With both, the values that are descendants of an input and ancestors of an
    output; with one of them only, all the descendants of the inputs, or all the
    ancestors of the outputs. Iterative.

    Args:
        inputs: A symbolic value, or a list, tuple, set or dict of them.
        outputs: The same forms.

    Returns:
        A set of the symbolic values (hashed by identity).

    Raises:
        ValueError: neither is given, or (with ``inputs``) a value needs a
            foreign one that is not an input (see :func:`check_for_missing_inputs`).

    Example:
        >>> from symgraph_torch import Input
        >>> x = Input((2,))
        >>> y = x + 1
        >>> z = y * 2
        >>> _ = x - 1
        >>> figure_out_nodes_between(x, z) == {x, y, z}
        True
        >>> len(figure_out_nodes_between(inputs=x)), len(figure_out_nodes_between(outputs=y))
        (4, 2)
    """
    if inputs is None and outputs is None:
        raise ValueError("figure_out_nodes_between: give inputs=, outputs= or both")
    starts = None if inputs is None else _nodes(inputs, "inputs")
    ends = None if outputs is None else _nodes(outputs, "outputs")
    between = _between(starts, ends)
    used = {node.handle for node in between.values()}
    if inputs is not None:
        check_for_missing_inputs(used, inputs)
    return used


def sort_graph_and_check_DAG(nodes: Iterable[Any]) -> list[Any]:  # noqa: N802 - pytorch-symbolic's name
    """The values of ``nodes`` in an order where each comes after its parents among them.

    Kahn's algorithm, iterative. Only edges between members of ``nodes`` count.
    Values whose order is free keep the order they were recorded in (or given
    in, for values that are not symbolic).

    Args:
        nodes: Symbolic values; anything with ``parents`` and ``children``
            sequences of the same kind of objects will do.

    Returns:
        A list of the values, parents first.

    Raises:
        ValueError: the values form a cycle; the message names some of them.

    Example:
        >>> from symgraph_torch import Input
        >>> x = Input((2,))
        >>> a = x + 1
        >>> b = a * x
        >>> sort_graph_and_check_DAG({b, a, x}) == [x, a, b]
        True
    """
    items = list(nodes)
    if any(not hasattr(n, "parents") or not hasattr(n, "children") for n in items):
        raise TypeError("sort_graph_and_check_DAG: nodes must be symbolic values (with parents and children)")
    order = {id(n): k for k, n in enumerate(items)}

    def rank(n: Any) -> tuple[int, int]:
        node = n.node if isinstance(n, SymbolicData) else None
        return (node.id if node is not None else -1, order[id(n)])

    items.sort(key=rank)
    members = {id(n): n for n in items}
    waiting = {id(n): len({id(p) for p in n.parents if id(p) in members}) for n in items}
    ready = collections.deque(n for n in items if waiting[id(n)] == 0)
    ordered: list[Any] = []
    while ready:
        current = ready.popleft()
        ordered.append(current)
        seen: set[int] = set()
        for child in sorted((c for c in current.children if id(c) in members), key=rank):
            if id(child) in seen:
                continue
            seen.add(id(child))
            waiting[id(child)] -= 1
            if waiting[id(child)] == 0:
                ready.append(child)
    if len(ordered) != len(items):
        stuck = [n for n in items if waiting[id(n)] > 0]
        shown = ", ".join(repr(n) for n in stuck[:5]) + (", ..." if len(stuck) > 5 else "")
        raise ValueError(
            f"the graph is not a DAG (directed acyclic graph): {len(stuck)} of its values lie on a cycle or "
            f"after one, so no order puts every value after its parents: {shown}"
        )
    return ordered


def default_node_text(sym: SymbolicData) -> str:
    """pytorch-symbolic's label of a node: a tensor's shape, else its value's type (and length).

    Example:
        >>> from symgraph_torch import CustomInput, Input
        >>> default_node_text(Input((3,))), default_node_text(CustomInput([1, 2])), default_node_text(CustomInput(len))
        ('(None, 3)', 'list(2)', 'callable')
    """
    if not isinstance(sym, SymbolicData):
        raise TypeError(f"default_node_text needs a symbolic value, got {type(sym).__name__}")
    if isinstance(getattr(type(sym), "shape", None), property):
        return str(sym.shape)
    value = sym.v
    if callable(value):
        return "callable"
    try:
        return f"{type(value).__name__}({len(value)})"
    except TypeError:  # no length
        return type(value).__name__


def default_edge_text(layer: nn.Module) -> str:
    """pytorch-symbolic's label of an edge, given the layer of the value it leads to.

    Example:
        >>> from torch import nn
        >>> from symgraph_torch import useful_layers
        >>> default_edge_text(nn.Linear(2, 3)), default_edge_text(useful_layers.GetAttr("T"))
        ('Linear', '.T')
    """
    if isinstance(layer, GetAttr):
        return "." + layer.name
    if not isinstance(layer, nn.Module):
        raise TypeError(f"default_edge_text needs an nn.Module, got {type(layer).__name__}")
    return str(layer._get_name())


def variable_name_resolver(namespace: Mapping[str, Any]) -> Callable[[Any], str]:
    """A label function: the first name in ``namespace`` bound to the value itself, or ``"?"``.

    Example:
        >>> from symgraph_torch import Input
        >>> x = Input((2,))
        >>> y = x + 1
        >>> resolve = variable_name_resolver({"x": x, "y": y})
        >>> resolve(y), resolve(y + 1)
        ('y', '?')
    """
    if not isinstance(namespace, Mapping):
        raise TypeError(f"variable_name_resolver needs a mapping of names (globals()), got {type(namespace).__name__}")

    def resolver(value: Any) -> str:
        for name, bound in namespace.items():
            if bound is value:
                return str(name)
        return "?"

    return resolver


def _namespace_text(namespace: Mapping[str, Any]) -> Callable[[Node], str]:
    names: dict[int, list[str]] = {}
    for name, value in namespace.items():
        if isinstance(value, SymbolicData) and isinstance(name, str) and not name.startswith("_"):
            names.setdefault(id(value.node), []).append(name)

    def text(node: Node) -> str:
        return ", ".join(names.get(id(node), ["?"]))

    return text


def _plan_between(starts: list[Node] | None, ends: list[Node] | None) -> tuple[Plan, list[Node]]:
    """The plan of the values between ``starts`` and ``ends``, and its node of each slot.

    Its inputs are the given inputs (every value that reads nothing, without
    them) and any value outside that a value between reads: what a model of
    them would need. Its outputs are the given outputs, or the values between
    that no other value between reads.
    """
    between = _between(starts, ends)
    if not between:
        raise ValueError("draw_graph: no value lies between the inputs and the outputs")
    nodes = sorted(between.values(), key=lambda n: n.id)
    roots: dict[int, Node] = {}
    for node in starts if starts is not None else [n for n in nodes if not n.parents]:
        roots.setdefault(id(node), node)
    if starts is not None:
        for node in nodes:
            if id(node) not in roots:
                for parent in node.parents:
                    if id(parent) not in between:
                        roots.setdefault(id(parent), parent)
    if ends is not None:
        # Outputs not computed from the inputs are not between them: they are left out.
        outs = [n for n in ends if id(n) in between]
    else:
        read = {id(p) for n in nodes for p in n.parents}
        outs = [n for n in nodes if id(n) not in read]
    return build_plan([n.handle for n in roots.values()], [n.handle for n in outs])


_DRAW_OPTIONS = ("node_color", "edge_color", "font_size")


def draw_graph(
    *,
    model: Any = None,
    inputs: Any = None,
    outputs: Any = None,
    node_text_func: Callable[[SymbolicData], str] | None = None,
    edge_text_func: Callable[[nn.Module], str] | None = None,
    node_text_namespace: Mapping[str, Any] | None = None,
    rotate_graph: bool = False,
    rotate_labels: bool = False,
    show: bool = False,
    figsize: tuple[float, float] | None = None,
    **draw_kwargs: Any,
) -> Any:
    """Draw the graph between ``inputs`` and ``outputs``, or a model's graph, with pyplot.

    The picture is the one :meth:`~symgraph_torch.SymbolicModel.plot` makes: a
    box per layer with its name, its class and its output's shape, in levels
    from the inputs down to the outputs, which are coloured apart and named in
    a legend. A skip connection runs in a lane beside the chain it skips, and a
    deep graph is folded into columns. The figure is sized so that no text
    overlaps (see ``figsize``).

    Args:
        model: A :class:`~symgraph_torch.SymbolicModel`, instead of ``inputs``
            and ``outputs``; it is drawn from its plan, so a loaded model draws
            too, unless label functions need its symbolic values.
        inputs: Symbolic values to start from (one, a list, tuple or dict).
            A value drawn that reads one from elsewhere shows it as an input.
        outputs: Symbolic values to end at; without them every value computed
            from the inputs is drawn, and without inputs every value they are
            computed from.
        node_text_func: The last line of a box, given its symbolic value; by
            default the output's shape (or type).
        edge_text_func: The class line of a box, given the layer that computed
            it (an ``nn.Module``: see :func:`default_edge_text`); pytorch-symbolic
            wrote it on the edges. By default the layer's class, where the name
            does not already say it.
        node_text_namespace: Give each box a line with the variable names its
            value has in this mapping (``globals()``, say); ``?`` marks values
            with no name there.
        rotate_graph: Levels run left to right instead of downwards.
        rotate_labels: Accepted for pytorch-symbolic's calls; labels sit in
            boxes and are always upright, so it changes nothing.
        show: Call ``matplotlib.pyplot.show()`` once drawn.
        figsize: Width and height in inches; the drawing is scaled to fit, text
            included. By default, the size the text needs. The current pyplot
            figure is drawn into, and resized, when there is one.
        **draw_kwargs: ``node_color`` (the fill of inner layers), ``edge_color``
            and ``font_size`` (in points).

    Returns:
        The matplotlib figure.

    Raises:
        ImportError: matplotlib is missing.
        TypeError: an unknown keyword argument.
        ValueError: both ``model`` and ``inputs``/``outputs``, or neither.
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("draw_graph needs matplotlib: pip install 'symgraph-py[draw]'", name="matplotlib") from exc
    unknown = sorted(set(draw_kwargs) - set(_DRAW_OPTIONS))
    if unknown:
        raise TypeError(
            f"draw_graph got unexpected keyword argument(s) {', '.join(unknown)}; "
            f"it takes {', '.join(_DRAW_OPTIONS)} besides pytorch-symbolic's arguments"
        )
    labelled = node_text_func is not None or edge_text_func is not None or node_text_namespace is not None
    if model is not None:
        if inputs is not None or outputs is not None:
            raise ValueError("draw_graph: give either model= or inputs=/outputs=, not both")
        if not labelled:
            plan, nodes = model.plan, None
        else:
            inputs, outputs = model.inputs, model.outputs
    elif inputs is None and outputs is None:
        raise ValueError("draw_graph: give inputs= (symbolic values), outputs=, or model=")
    if model is None or labelled:
        starts = None if inputs is None else _nodes(inputs, "inputs")
        ends = None if outputs is None else _nodes(outputs, "outputs")
        plan, nodes = _plan_between(starts, ends)
    kind_text = node_text = None
    if nodes is not None:
        if edge_text_func is not None:
            func = edge_text_func

            def kind_text(row: Row) -> str:
                # An input was computed by no layer of this drawing.
                return step_kind(None) if row.op is None else func(layer_of(nodes[row.slot]))  # type: ignore[arg-type]

        if node_text_namespace is not None:
            names = _namespace_text(node_text_namespace)

            def node_text(row: Row) -> str:
                return names(nodes[row.slot])

        elif node_text_func is not None:
            text_func = node_text_func

            def node_text(row: Row) -> str:
                return text_func(nodes[row.slot].handle)

    # The outputs of a drawing of values are a list made here: their places in it mean nothing.
    boxes = plan_boxes(plan, kind_text, node_text, output_places=model is not None)
    figure = plt.gcf() if plt.get_fignums() else plt.figure()
    fill = {"layer": draw_kwargs["node_color"]} if "node_color" in draw_kwargs else None
    draw_boxes(
        boxes,
        figure,
        figsize=figsize,
        rotate=rotate_graph,
        fill=fill,
        font_size=draw_kwargs.get("font_size", 9.0),
        edge_color=draw_kwargs.get("edge_color", "#555555"),
    )
    if show:
        plt.show()
    return figure
