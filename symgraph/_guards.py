"""What a model loaded from a spec checks while it runs.

A spec names attributes that are read from values when the model runs
(``getattr`` steps, calls of ``getattr``). The loader checks the names, but the
values are only known then: a class holds arrays that the whole process shares
(``numpy.polynomial.Polynomial.domain``), and a module leads anywhere. So a
loaded model reads attributes through :func:`read_attribute`, which refuses
both. Recorded models are not affected: they run the user's own code.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Sequence
from typing import Any

from symgraph._allowlist import INDIRECT_METHODS, attribute_name_permitted, shareable
from symgraph._codegen import EmitContext, register_emitter
from symgraph._errors import GuardError
from symgraph._ops import GetAttr, MethodCall
from symgraph._text import describe, escape

__all__ = ["LoadedGetAttr", "LoadedMethodCall", "call_method", "read_attribute"]


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
    if name in INDIRECT_METHODS and callable(value):
        # Called later by a call step, with arguments that must be checked then.
        return functools.partial(call_method, owner, name)
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


# Containers are searched this deep for strings; deeper ones are refused, not skipped.
_MAX_DEPTH = 16


def _refused_string(values: Sequence[Any]) -> str | None:
    """The first string among ``values`` (in lists, tuples, sets and dicts too) that names a refused attribute."""
    stack: list[tuple[Any, int]] = [(v, 0) for v in values]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if not attribute_name_permitted(item):
                return item
        elif isinstance(item, (list, tuple, set, frozenset, dict)):
            if depth >= _MAX_DEPTH:
                return "<a container nested too deep to check>"
            parts = [*item.keys(), *item.values()] if isinstance(item, dict) else list(item)
            stack.extend((part, depth + 1) for part in parts)
    return None


def call_method(owner: Any, name: str, /, *args: Any, **kwargs: Any) -> Any:
    """``owner.name(*args, **kwargs)`` in a loaded model, refused when a string argument would name a refused method.

    Methods such as pandas' ``agg``, ``apply`` and ``transform`` look up and call
    the method that a string argument names (``df.agg("to_csv", path)``), so the
    strings they are given are checked like the names a spec records.

    Raises:
        GuardError: ``name`` is one of :data:`~symgraph._allowlist.INDIRECT_METHODS`
            and a string among the arguments is a refused name.

    Example:
        >>> call_method([3, 1, 2], "index", 2)
        2
        >>> class Frame:
        ...     def agg(self, how, *args):
        ...         return getattr(self, how)(*args)
        ...     def to_csv(self, path):
        ...         raise AssertionError("never reached")
        >>> call_method(Frame(), "agg", "to_csv", "out.csv")
        Traceback (most recent call last):
        ...
        symgraph.GuardError: a loaded model calls agg of a Frame with the string 'to_csv', a name that is ...
    """
    if name in INDIRECT_METHODS:
        refused = _refused_string([*args, *kwargs.values()])
        if refused is not None:
            raise GuardError(
                f"a loaded model calls {escape(name)} of a {escape(type(owner).__qualname__)} with the string "
                f"{escape(refused)!r}, a name that is refused when loading: {escape(name)} would look up and call "
                "what it names"
            )
    return getattr(owner, name)(*args, **kwargs)


class LoadedMethodCall(MethodCall):
    """``parent.name(...)`` in a model loaded from a spec: called through :func:`call_method`.

    Example:
        >>> from symgraph.plugin import Const
        >>> LoadedMethodCall("upper", [], Const({})).evaluate(["ab"])
        'AB'
    """

    __slots__ = ()

    def evaluate(self, args: Sequence[Any]) -> Any:
        return call_method(args[0], self.name, *(t.evaluate(args) for t in self.args), **self.kwargs.evaluate(args))


def _emit_loaded_method_call(op: LoadedMethodCall, args: Sequence[str], ctx: EmitContext) -> str:
    arguments = ", ".join(ctx.arguments(op.args, op.kwargs, args))
    return f"{ctx.pool.ref(call_method)}({args[0]}, {ctx.pool.ref(op.name)}{', ' if arguments else ''}{arguments})"


register_emitter(LoadedMethodCall, _emit_loaded_method_call)
