"""Keras-like text summaries of a plan."""

from __future__ import annotations

from typing import Any

from symgraph._backends import backend_for, loaded_backends
from symgraph._plan import Plan

__all__ = ["format_summary"]


def _parameters(plan: Plan) -> list[list[tuple[Any, int, bool]] | None]:
    """Per step, the parameters of the objects it applies, or None when no backend knows them."""
    out: list[list[tuple[Any, int, bool]] | None] = []
    for step in plan.steps:
        found: list[tuple[Any, int, bool]] | None = None
        for obj in step.op.owned_objects():
            backend_for(type(obj))  # loads the plugin of obj's library, if there is one
            for backend in loaded_backends():
                params = backend.parameters(obj)
                if params is not None:
                    found = (found or []) + list(params)
                    break
        out.append(found)
    return out


def format_summary(plan: Plan, *, show_params: bool | None = None, output_header: str = "Output") -> str:
    """The summary table of a plan.

    Args:
        plan: The model's plan.
        show_params: Force the parameter column on or off; by default it is shown
            when a backend counts parameters for some step.
        output_header: Title of the output column (backends with shapes say
            ``"Output shape"``).

    Returns:
        The table: index (``*`` marks outputs), layer name, output type or shape,
        parameters, and the indices of the parents.

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput({1, 2})
        >>> print(format_summary(symgraph.SymbolicModel(x, x | {3}).plan))
        _________________________________________
             Layer             Output   Parent
        =========================================
        1    Input_1           set
        2*   LambdaOpLayer_1   set      1
        =========================================
    """
    params = _parameters(plan)
    if show_params is None:
        show_params = any(p is not None for p in params)
    outputs = plan.output_slots()
    n_in = len(plan.inputs)

    header = ["", "Layer", output_header, *(["Params"] if show_params else []), "Parent"]
    rows: list[list[str]] = []
    for i, spec in enumerate(plan.inputs):
        rows.append(
            [f"{i + 1}{'*' if i in outputs else ''}", spec.name, spec.description, *(["0"] if show_params else []), ""]
        )
    for j, step in enumerate(plan.steps):
        slot = n_in + j
        count = sum(n for _, n, _ in params[j] or ())
        rows.append(
            [
                f"{slot + 1}{'*' if slot in outputs else ''}",
                step.name,
                step.description,
                *([str(count)] if show_params else []),
                ",".join(str(s + 1) for s in step.args),
            ]
        )
    widths = [max(len(r[c]) for r in [header, *rows]) + 3 for c in range(len(header))]

    def line(cells: list[str]) -> str:
        return "".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True))

    total_width = sum(widths)
    lines = ["_" * total_width, line(header), "=" * total_width, *(line(r) for r in rows), "=" * total_width]
    if show_params:
        unique: dict[int, tuple[int, bool]] = {}
        for found in params:
            for param, n, trainable in found or ():
                unique[id(param)] = (n, trainable)
        total = sum(n for n, _ in unique.values())
        n_trainable = sum(n for n, t in unique.values() if t)
        lines += [
            f"Total params: {total}",
            f"Trainable params: {n_trainable}",
            f"Non-trainable params: {total - n_trainable}",
            "_" * total_width,
        ]
    return "\n".join(lines)
