"""Drawing symbolic graphs with networkx and matplotlib (``pip install symgraph[draw]``).

Example:
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from torch import nn
    >>> from symgraph_torch import Input, graph_algorithms
    >>> x = Input((4,))
    >>> y = nn.Linear(4, 2)(x)
    >>> figure = graph_algorithms.draw_graph(inputs=x, outputs=y)
    >>> len(figure.axes[0].collections) > 0
    True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from symgraph.plugin import Node, SymbolicData, escape

__all__ = ["draw_graph", "nodes_between"]


def _nodes(values: Any, what: str) -> list[Node]:
    if values is None:
        return []
    if isinstance(values, SymbolicData):
        return [values.node]
    items = values.values() if isinstance(values, Mapping) else values
    out = []
    for v in items:
        if not isinstance(v, SymbolicData):
            raise TypeError(f"draw_graph: {what} must be symbolic values, got {type(v).__name__}")
        out.append(v.node)
    return out


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
    down: dict[int, Node] = {}
    stack = list(starts)
    while stack:
        node = stack.pop()
        if id(node) not in down:
            down[id(node)] = node
            stack.extend(node.children)
    ends = _nodes(outputs, "outputs")
    if ends:
        up: set[int] = set()
        stack = [n for n in ends if id(n) in down]
        while stack:
            node = stack.pop()
            if id(node) not in up:
                up.add(id(node))
                stack.extend(p for p in node.parents if id(p) in down)
        down = {k: v for k, v in down.items() if k in up}
    return sorted(down.values(), key=lambda n: n.id)


def _label(text: str) -> str:
    # Names come from the user: control characters are escaped, and "$" would start
    # matplotlib's mathtext, which fails on text that is not valid TeX.
    return escape(text).replace("$", "\\$")


def _default_node_text(value: SymbolicData) -> str:
    shape = getattr(type(value), "shape", None)
    if isinstance(shape, property):
        return _label(str(value.shape))
    return _label(type(value.v).__name__)


def _namespace_text(namespace: Mapping[str, Any]) -> Callable[[SymbolicData], str]:
    names: dict[int, list[str]] = {}
    for name, value in namespace.items():
        if isinstance(value, SymbolicData) and not name.startswith("_"):
            names.setdefault(id(value.node), []).append(name)

    def text(value: SymbolicData) -> str:
        return _label(", ".join(names.get(id(value.node), ["?"])))

    return text


def draw_graph(
    *,
    inputs: Any = None,
    outputs: Any = None,
    model: Any = None,
    node_text_func: Callable[[SymbolicData], str] | None = None,
    edge_text_func: Callable[[SymbolicData], str] | None = None,
    node_text_namespace: Mapping[str, Any] | None = None,
    figsize: tuple[float, float] = (10, 10),
    **draw_kwargs: Any,
) -> Any:
    """Draw the graph between ``inputs`` and ``outputs``, or a model's graph.

    Nodes are laid out in layers by their distance from the inputs; each edge is
    labelled with the layer that produced its target node.

    Args:
        inputs: Symbolic values to start from (one, a list, tuple or dict).
        outputs: Symbolic values to end at; without them every value computed
            from the inputs is drawn.
        model: A :class:`~symgraph_torch.SymbolicModel` whose graph still exists;
            instead of ``inputs`` and ``outputs``.
        node_text_func: Label of a node, given its symbolic value; by default its
            shape.
        edge_text_func: Label of an edge, given the symbolic value it leads to;
            by default the layer's name.
        node_text_namespace: Label nodes with the variable names they have in this
            mapping (``globals()``, say); ``?`` marks values with no name there.
        figsize: Size of a new figure, in inches.
        **draw_kwargs: Passed to ``networkx.draw_networkx``.

    Returns:
        The matplotlib figure.

    Raises:
        ImportError: networkx or matplotlib is missing.
    """
    try:
        import matplotlib.pyplot as plt
        import networkx as nx
    except ImportError as exc:
        raise ImportError(
            "draw_graph needs networkx and matplotlib: pip install 'symgraph[draw]'",
        ) from exc
    if model is not None:
        if inputs is not None or outputs is not None:
            raise ValueError("draw_graph: give either model= or inputs=/outputs=, not both")
        inputs, outputs = model.inputs, model.outputs
    nodes = nodes_between(inputs, outputs)
    members = {id(n) for n in nodes}
    if node_text_func is None:
        node_text_func = _namespace_text(node_text_namespace) if node_text_namespace is not None else _default_node_text
    if edge_text_func is None:

        def edge_text_func(value: SymbolicData) -> str:
            node = value.node
            return _label(node.custom_name or node.op.display_name([p.value for p in node.parents]))

    graph = nx.DiGraph()
    depth: dict[int, int] = {}
    for node in nodes:  # creation order: parents come first
        depth[id(node)] = 1 + max((depth[id(p)] for p in node.parents if id(p) in members), default=-1)
        graph.add_node(node.id, layer=depth[id(node)], label=node_text_func(node.handle))
    edge_labels = {}
    for node in nodes:
        for parent in node.parents:
            if id(parent) in members:
                graph.add_edge(parent.id, node.id)
                edge_labels[(parent.id, node.id)] = edge_text_func(node.handle)
    positions = nx.multipartite_layout(graph, subset_key="layer", align="horizontal", scale=-1)
    figure = plt.gcf() if plt.get_fignums() else plt.figure(figsize=figsize)
    axes = figure.gca()
    # Curved edges keep a skip connection from hiding behind the chain it parallels.
    curve = draw_kwargs.pop("connectionstyle", "arc3,rad=0.2")
    options: dict[str, Any] = {"node_color": "#cfe2f3", "node_size": 1200, "font_size": 8, **draw_kwargs}
    labels = nx.get_node_attributes(graph, "label")
    nx.draw_networkx(graph, positions, ax=axes, labels=labels, arrows=True, connectionstyle=curve, **options)
    nx.draw_networkx_edge_labels(graph, positions, edge_labels=edge_labels, ax=axes, font_size=7, connectionstyle=curve)
    axes.set_axis_off()
    return figure
