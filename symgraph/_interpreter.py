"""The reference interpreter: runs a plan step by step, without generated code.

It is deliberately simple and slow; tests check generated code against it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from symgraph._errors import GuardError
from symgraph._failures import step_note
from symgraph._plan import Plan, Step

__all__ = ["interpret"]


def interpret(plan: Plan, args: Sequence[Any], *, on_step: Callable[[Step, Any], None] | None = None) -> Any:
    """Evaluate ``plan`` on input values ``args`` (one per input slot).

    Args:
        plan: The plan to run.
        args: One value per input slot.
        on_step: Called with each step and its value as soon as it is computed,
            for tools that look at every step (shape inference, debugging).

    Example:
        >>> import symgraph
        >>> from symgraph._plan import build_plan
        >>> x = symgraph.CustomInput([1, 2])
        >>> seen = []
        >>> interpret(build_plan(x, x + [3])[0], [[7]], on_step=lambda step, value: seen.append(value))
        [7, 3]
        >>> seen
        [[7, 3]]
    """
    if not isinstance(plan, Plan):
        raise TypeError(f"interpret() needs a Plan, got {type(plan).__name__}")
    if len(args) != len(plan.inputs):
        raise TypeError(f"the plan takes {len(plan.inputs)} input(s), got {len(args)}")
    values = list(args)
    try:
        for step in plan.steps:
            values.append(step.op.evaluate_step([values[s] for s in step.args], step.name))
            if on_step is not None:
                on_step(step, values[-1])
    except Exception as exc:
        if not isinstance(exc, GuardError):  # a guard's message names its step already
            exc.add_note(step_note(step))
        raise
    return plan.outputs.evaluate(values)
