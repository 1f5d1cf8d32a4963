"""Which step failed: a note on an exception raised while a model replays.

A replay that fails on a new value raises what the same code raises eagerly,
from inside generated code or the interpreter. The traceback shows the
generated line; the note added here names the step, as summaries name it, and
the line of user code that recorded it. Nothing runs unless a replay fails:
the ``try`` around a replay costs nothing in CPython 3.11 until an exception
is raised.
"""

from __future__ import annotations

import types
import weakref
from collections.abc import Sequence

from symgraph._errors import GuardError
from symgraph._plan import Plan, Step
from symgraph._text import escape

__all__ = ["note_failed_step", "register_replay", "step_note"]

# id of a generated replay function's code object -> (a weak reference to it, and
# for each source line that runs a step, that step). Keyed by identity, not by a
# WeakKeyDictionary: code objects compare equal by content, so the code of two
# models with the same steps would share one entry, which the first model to go
# would take away from the other.
_replays: dict[int, tuple[weakref.ref[types.CodeType], dict[int, Step]]] = {}


def _forget(key: int, ref: weakref.ref[types.CodeType]) -> None:
    entry = _replays.get(key)
    if entry is not None and entry[0] is ref:  # not a newer code object that took the same id
        del _replays[key]


def register_replay(code: types.CodeType, plan: Plan, lines: Sequence[int]) -> None:
    """Remember which source line of the compiled replay ``code`` runs which step of ``plan``."""
    key = id(code)
    _replays[key] = (weakref.ref(code, lambda ref: _forget(key, ref)), dict(zip(lines, plan.steps, strict=True)))


def _steps_of(code: types.CodeType) -> dict[int, Step] | None:
    entry = _replays.get(id(code))
    return entry[1] if entry is not None and entry[0]() is code else None


def step_note(step: Step) -> str:
    """The note for a failure in ``step``.

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput(1)
        >>> step = symgraph.SymbolicModel(x, x + 1).plan.steps[0]
        >>> step_note(step).startswith("symgraph: step 'LambdaOpLayer_1', recorded at ")
        True
    """
    where = f", recorded at {escape(step.where, 500)}," if step.where else ""
    return f"symgraph: step {escape(step.name)!r}{where} failed while the model replayed"


def note_failed_step(exc: BaseException) -> None:
    """Add a note naming the step of generated code that raised ``exc``, if one did.

    A guard's error names its step already, and a nested model's replay adds
    its own note, once per replay the traceback passes through.
    """
    if isinstance(exc, GuardError):
        return
    tb = exc.__traceback__
    while tb is not None:
        steps = _steps_of(tb.tb_frame.f_code)
        if steps is not None:
            step = steps.get(tb.tb_lineno)
            if step is not None:
                note = step_note(step)
                if note not in getattr(exc, "__notes__", ()):
                    exc.add_note(note)
        tb = tb.tb_next
