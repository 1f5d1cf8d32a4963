"""Keras-like text summaries of a plan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from symgraph._backends import backend_for, loaded_backends
from symgraph._ops import Operation
from symgraph._plan import Plan
from symgraph._templates import DictT, Ref, Template
from symgraph._text import describe, escape

__all__ = ["Row", "format_summary", "layer_rows", "output_paths"]


def _key_text(key: Any) -> str:
    # Shown, never run: a key's own __repr__ is not called (describe shows builtins
    # abridged, anything else by its type). Escaped again where it is drawn, a no-op.
    return describe(key, 40)


@dataclass(frozen=True, slots=True)
class Row:
    """One layer of a plan as the summary, the drawings and the DOT text show it.

    Attributes:
        number: The row's number, from 1, without gaps.
        slot: The plan slot the layer writes.
        name: The layer's name, as the user gave it (not escaped).
        description: The output's type or shape (not escaped).
        parents: Numbers of the rows it reads, each once, in the order first read.
        is_output: The model returns it.
        op: The operation; ``None`` for an input.
        output_paths: Where the model's output holds it (``['mean']``, ``[1]``),
            in the order of the output; ``("",)`` when it is the whole output.
    """

    number: int
    slot: int
    name: str
    description: str
    parents: tuple[int, ...]
    is_output: bool
    op: Operation | None
    output_paths: tuple[str, ...] = ()


def output_paths(template: Template) -> dict[int, list[str]]:
    """Where each slot appears in an output template: ``[key]`` for dicts, ``[i]`` for sequences.

    Iterative; a slot returned twice has two paths.

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput(2)
        >>> y = x * 2
        >>> output_paths(symgraph.SymbolicModel(x, {"double": y, "same": x, "again": y}).plan.outputs)
        {1: ["['double']", "['again']"], 0: ["['same']"]}
    """
    found: dict[int, list[str]] = {}
    stack: list[tuple[Template, str]] = [(template, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, Ref):
            found.setdefault(item.index, []).append(path)
        elif isinstance(item, DictT):
            pairs = list(zip(item.keys, item.values, strict=True))
            stack.extend((v, f"{path}[{_key_text(k)}]") for k, v in reversed(pairs))
        else:
            stack.extend((c, f"{path}[{i}]") for i, c in reversed(list(enumerate(item.children()))))
    return found


def layer_rows(plan: Plan) -> list[Row]:
    """The rows of a plan's summary: its inputs, then its steps less the guards.

    Guards are checks, not layers: they get no row, and a step that reads one is
    shown reading the guard's own parent. Rows are numbered without gaps.

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput(2)
        >>> [(r.number, r.name, r.parents, r.is_output) for r in layer_rows(symgraph.SymbolicModel(x, x * x).plan)]
        [(1, 'Input_1', (), False), (2, 'MulOpLayer_1', (1,), True)]
    """
    if not isinstance(plan, Plan):
        raise TypeError(f"layer_rows() needs a Plan (model.plan), got {type(plan).__name__}")
    n_in = len(plan.inputs)
    row_of: list[int] = list(range(1, n_in + 1))
    rows_so_far = n_in
    for step in plan.steps:
        if step.op.is_guard:
            row_of.append(row_of[step.args[0]])
        else:
            rows_so_far += 1
            row_of.append(rows_so_far)
    shown = {row_of[s] for s in plan.output_slots()}
    paths: dict[int, list[str]] = {}
    for slot, where in output_paths(plan.outputs).items():
        paths.setdefault(row_of[slot], []).extend(where)
    rows = [
        Row(i + 1, i, spec.name, spec.description, (), i + 1 in shown, None, tuple(paths.get(i + 1, ())))
        for i, spec in enumerate(plan.inputs)
    ]
    for j, step in enumerate(plan.steps):
        if not step.op.is_guard:
            number = row_of[n_in + j]
            parents = tuple(dict.fromkeys(row_of[s] for s in step.args))
            places = tuple(paths.get(number, ()))
            rows.append(Row(number, n_in + j, step.name, step.description, parents, number in shown, step.op, places))
    return rows


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
        parameters, and the indices of the parents. Guard steps, such as the
        check of a loop's length, are checks rather than layers and get no row.

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
    if not isinstance(plan, Plan):
        raise TypeError(f"format_summary() needs a Plan (model.plan), got {type(plan).__name__}")
    params = _parameters(plan)
    if show_params is None:
        show_params = any(p is not None for p in params)
    header = ["", "Layer", output_header, *(["Params"] if show_params else []), "Parent"]
    rows: list[list[str]] = []
    # Names and descriptions come from the user (custom names, dict keys, a value's
    # type name): escaped, so that a newline cannot forge a row nor an escape
    # sequence drive the terminal.
    n_in = len(plan.inputs)
    for row in layer_rows(plan):
        count = 0 if row.op is None else sum(n for _, n, _ in params[row.slot - n_in] or ())
        rows.append(
            [
                f"{row.number}{'*' if row.is_output else ''}",
                escape(row.name),
                escape(row.description),
                *([str(count)] if show_params else []),
                ",".join(str(r) for r in row.parents),
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
