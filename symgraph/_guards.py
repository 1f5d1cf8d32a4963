"""What a model loaded from a spec checks while it runs.

A spec names attributes that are read from values when the model runs
(``getattr`` steps, calls of ``getattr``). The loader checks the names, but the
values are only known then: a class holds arrays that the whole process shares
(``numpy.polynomial.Polynomial.domain``), and a module leads anywhere. So a
loaded model reads attributes through :func:`read_attribute`, which refuses
both. Recorded models are not affected: they run the user's own code.
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import Any

from symgraph._allowlist import shareable
from symgraph._codegen import EmitContext, register_emitter
from symgraph._errors import GuardError
from symgraph._ops import GetAttr
from symgraph._text import describe, escape

__all__ = ["LoadedGetAttr", "read_attribute"]


def read_attribute(owner: Any, name: str) -> Any:
    """``getattr(owner, name)``, refused when it would hand a loaded model a module or a class's shared state.

    Raises:
        GuardError: the value is a module, or a mutable value that a class or
            module holds for the whole process (an array, a list, a dict).

    Example:
        >>> read_attribute(3 + 4j, "imag")
        4.0
        >>> class Table:
        ...     rows = []
        >>> read_attribute(Table, "rows")
        Traceback (most recent call last):
        ...
        symgraph.GuardError: a loaded model reads 'rows' of Table, a list that Table shares with the whole ...
    """
    value = getattr(owner, name)
    if isinstance(value, types.ModuleType):
        raise GuardError(f"a loaded model reads {escape(name)!r} of {describe(owner)}, a module; it may not")
    if isinstance(owner, (type, types.ModuleType)) and not shareable(value):
        raise GuardError(
            f"a loaded model reads {escape(name)!r} of {describe(owner)}, a {type(value).__qualname__} that "
            f"{describe(owner)} shares with the whole process; a model loaded from a file may not change it"
        )
    return value


class LoadedGetAttr(GetAttr):
    """``parent.name`` in a model loaded from a spec: read through :func:`read_attribute`.

    Example:
        >>> LoadedGetAttr("imag").evaluate([1j])
        1.0
    """

    __slots__ = ()

    def evaluate(self, args: Sequence[Any]) -> Any:
        return read_attribute(args[0], self.name)


def _emit_loaded_getattr(op: LoadedGetAttr, args: Sequence[str], ctx: EmitContext) -> str:
    return f"{ctx.pool.ref(read_attribute)}({args[0]}, {ctx.pool.ref(op.name)})"


register_emitter(LoadedGetAttr, _emit_loaded_getattr)
