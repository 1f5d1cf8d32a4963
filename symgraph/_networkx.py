"""Export of a model's graph to networkx (imported only here)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from symgraph._plan import Plan
from symgraph._text import escape

if TYPE_CHECKING:
    from symgraph._model import SymbolicModel

__all__ = ["to_networkx"]


def to_networkx(model: SymbolicModel) -> Any:
    """The model's graph as a ``networkx.DiGraph``.

    Nodes are numbered like the rows of :meth:`SymbolicModel.summary` (from 1)
    and carry the attributes ``name``, ``output`` (type or shape), ``op`` and
    ``is_output``; edges run from parent to child.

    Args:
        model: The model.

    Returns:
        A new ``networkx.DiGraph``.

    Raises:
        ImportError: networkx is not installed (``pip install symgraph-py[draw]``).

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput(1.0)
        >>> g = symgraph.to_networkx(symgraph.SymbolicModel(x, -x * x))
        >>> sorted(g.edges), g.nodes[3]["name"]
        ([(1, 2), (1, 3), (2, 3)], 'MulOpLayer_1')
    """
    from symgraph._model import SymbolicModel

    if not isinstance(model, SymbolicModel) and not hasattr(type(model), "plan"):
        raise TypeError(f"to_networkx() needs a model, such as a symgraph.SymbolicModel, got {type(model).__name__}")
    try:
        import networkx as nx
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("to_networkx() needs networkx: pip install 'symgraph-py[draw]'", name="networkx") from exc

    plan = model.plan
    if not isinstance(plan, Plan):
        raise TypeError(f"to_networkx() needs a model whose plan is a symgraph.plugin.Plan, got {type(plan).__name__}")
    outputs = plan.output_slots()
    graph = nx.DiGraph()
    for i, spec in enumerate(plan.inputs):
        graph.add_node(i + 1, name=escape(spec.name), output=escape(spec.description), op=None, is_output=i in outputs)
    n_in = len(plan.inputs)
    for j, step in enumerate(plan.steps):
        slot = n_in + j
        graph.add_node(
            slot + 1, name=escape(step.name), output=escape(step.description), op=step.op, is_output=slot in outputs
        )
        graph.add_edges_from((s + 1, slot + 1) for s in step.args)
    return graph
