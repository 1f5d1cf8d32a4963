"""Argument templates: nested Python structures with holes where symbolic values go.

A call such as ``f([x, 2], key={"a": y})`` is stored as templates whose leaves are
either :class:`Ref` (the n-th parent of the node) or :class:`Const` (a value captured
once at trace time). Only ``list``, ``tuple`` (including named tuples), ``dict`` and
``slice`` are looked into; anything else is a constant.

Templates are immutable once built, so :func:`parse` hands out shared instances of
the commonest leaves (see :func:`shared_ref` and :func:`shared_const`).

Templates are operation payloads, so they are validated when built, and they
pickle through their constructors: a template loaded from a pickle is checked
exactly like one made by recording.
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from symgraph._errors import TraceError
from symgraph._text import describe

__all__ = [
    "MAX_DEPTH",
    "Const",
    "DictT",
    "ListT",
    "NamedTupleT",
    "Ref",
    "SliceT",
    "Template",
    "TupleT",
    "is_shared",
    "parse",
    "shared_const",
    "shared_ref",
]

# Templates are emitted as nested Python expressions, and CPython's parser refuses
# more than about 200 nested brackets, so deeper structures are refused up front.
MAX_DEPTH = 100


class Template:
    """A node of an argument template."""

    __slots__ = ()

    def evaluate(self, values: Sequence[Any]) -> Any:
        """Build the concrete structure, taking ``Ref(i)`` from ``values[i]``."""
        raise NotImplementedError  # pragma: no cover - abstract

    def refs(self) -> list[int]:
        """Parent positions referenced anywhere in this template, in order."""
        out: list[int] = []
        stack: list[Template] = [self]
        while stack:
            t = stack.pop()
            if isinstance(t, Ref):
                out.append(t.index)
            else:
                stack.extend(reversed(t.children()))
        return out

    def constants(self) -> list[Any]:
        """Values of the :class:`Const` leaves, in order.

        Example:
            >>> ListT([Ref(0), Const("a"), TupleT([Ref(1), Const(2)])]).constants()
            ['a', 2]
        """
        out: list[Any] = []
        stack: list[Template] = [self]
        while stack:
            t = stack.pop()
            if isinstance(t, Const):
                out.append(t.value)
            else:
                stack.extend(reversed(t.children()))
        return out

    def children(self) -> tuple[Template, ...]:
        """Sub-templates, for generic walks."""
        return ()

    def rebuild(self, children: Sequence[Template]) -> Template:
        """The same template with other sub-templates, in :meth:`children` order."""
        return self

    def __setstate__(self, state: Any) -> None:
        # Templates pickle through their constructors, with no state; a pickle that
        # sets attributes directly would skip the constructor's checks.
        raise TypeError(f"a pickled {type(self).__name__} is rebuilt through its constructor, not from its state")

    def map(
        self, ref: Callable[[Ref], Template] | None = None, *, const: Callable[[Const], Template] | None = None
    ) -> Template:
        """A copy with every :class:`Ref` leaf replaced by ``ref(leaf)`` and every :class:`Const` by ``const(leaf)``.

        Either function may be left out, keeping those leaves. Parts that nothing
        changes are shared with the original, not copied. Iterative.

        Example:
            >>> TupleT([Ref(0), Const("a"), ListT([Ref(1)])]).map(lambda r: Ref(r.index + 10))
            TupleT([Ref(10), Const('a'), ListT([Ref(11)])])
            >>> ListT([Ref(0), Const(2)]).map(const=lambda c: Const(c.value * 10))
            ListT([Ref(0), Const(20)])
        """
        # Post-order with an explicit stack: each composite is rebuilt once its
        # children's results are on ``done``.
        stack: list[tuple[Template, bool]] = [(self, False)]
        done: list[Template] = []
        while stack:
            template, expanded = stack.pop()
            if isinstance(template, Ref):
                done.append(ref(template) if ref is not None else template)
                continue
            if isinstance(template, Const):
                done.append(const(template) if const is not None else template)
                continue
            children = template.children()
            if not children:
                done.append(template)
            elif expanded:
                new = done[len(done) - len(children) :]
                del done[len(done) - len(children) :]
                changed = any(a is not b for a, b in zip(new, children, strict=True))
                done.append(template.rebuild(new) if changed else template)
            else:
                stack.append((template, True))
                stack.extend((child, False) for child in reversed(children))
        return done[0]


def _check_templates(owner: str, items: Iterable[object]) -> tuple[Template, ...]:
    if not isinstance(items, (list, tuple)):
        raise TypeError(f"{owner} needs a list or tuple of templates, got {type(items).__name__}")
    checked: list[Template] = []
    for item in items:
        if not isinstance(item, Template):
            raise TypeError(f"{owner} holds templates only, got {type(item).__name__}")
        checked.append(item)
    return tuple(checked)


class Ref(Template):
    """The value of the node's parent number ``index``.

    Args:
        index: The parent's position: an exact, non-negative ``int``.

    Raises:
        TypeError: ``index`` is not an exact ``int`` (a subclass could format
            itself as code).
        ValueError: ``index`` is negative.
    """

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        if type(index) is not int:
            raise TypeError(f"Ref index must be an int, got {type(index).__name__}")
        if index < 0:
            raise ValueError(f"Ref index must not be negative, got {index}")
        self.index = index

    def __reduce__(self) -> tuple[Any, ...]:
        return Ref, (self.index,)

    def evaluate(self, values: Sequence[Any]) -> Any:
        return values[self.index]

    def __repr__(self) -> str:
        return f"Ref({self.index})"


class Const(Template):
    """A value captured once when the call was recorded."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def evaluate(self, values: Sequence[Any]) -> Any:
        return self.value

    def __reduce__(self) -> tuple[Any, ...]:
        return Const, (self.value,)

    def __repr__(self) -> str:
        # Bounded and safe: reprs end up in error notes, and a constant's own
        # __repr__ may be huge, slow or raising.
        return f"Const({describe(self.value)})"


# Recording makes templates for every node, and most of them are the same few leaves:
# Ref(0), Ref(1), Const(1), Const(None). An object kept per node is one more for each
# full collection of the cyclic garbage collector to scan, and those collections are
# what made recording a large graph grow faster than the graph, so the leaves are shared.
_SHARED_REFS = tuple(Ref(i) for i in range(256))
_SMALL_INTS = range(-5, 257)  # CPython keeps one object per value here, so sharing keeps identity
_SMALL_INT_CONSTS = tuple(Const(i) for i in _SMALL_INTS)
_SINGLETON_CONSTS = {id(v): Const(v) for v in (None, True, False, Ellipsis, NotImplemented)}
# Exact types whose values :func:`parse` takes as constants without looking inside.
_ATOMS = frozenset({int, float, complex, str, bytes, bool, type(None)})


def shared_ref(index: int) -> Ref:
    """``Ref(index)``; a shared instance for small indices.

    Example:
        >>> shared_ref(1) is shared_ref(1), shared_ref(1)
        (True, Ref(1))
    """
    if 0 <= index < len(_SHARED_REFS):
        return _SHARED_REFS[index]
    return Ref(index)


def shared_const(value: Any) -> Const:
    """``Const(value)``; a shared instance for ``None``, bools, ``...`` and small ints.

    Only values that are singletons in CPython are shared, so ``.value`` is always
    the very object passed in.

    Example:
        >>> shared_const(2) is shared_const(2), shared_const(2.0) is shared_const(2.0)
        (True, False)
    """
    if type(value) is int and -5 <= value <= 256:
        return _SMALL_INT_CONSTS[value + 5]
    const = _SINGLETON_CONSTS.get(id(value))
    return const if const is not None else Const(value)


def is_shared(template: Template) -> bool:
    """Whether ``template`` is one of the shared leaves, which live as long as the process.

    Example:
        >>> is_shared(shared_const(None)), is_shared(Const(None))
        (True, False)
    """
    if type(template) is Ref:
        return shared_ref(template.index) is template
    return type(template) is Const and shared_const(template.value) is template


class _Seq(Template):
    __slots__ = ("items",)

    def __init__(self, items: Sequence[Template]) -> None:
        self.items = _check_templates(type(self).__name__, items)

    def children(self) -> tuple[Template, ...]:
        return self.items

    def rebuild(self, children: Sequence[Template]) -> Template:
        return type(self)(children)

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.items,)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self.items)!r})"


class ListT(_Seq):
    """A list with at least one symbolic value inside."""

    __slots__ = ()

    def evaluate(self, values: Sequence[Any]) -> Any:
        return [t.evaluate(values) for t in self.items]


class TupleT(_Seq):
    """A tuple with at least one symbolic value inside."""

    __slots__ = ()

    def evaluate(self, values: Sequence[Any]) -> Any:
        return tuple(t.evaluate(values) for t in self.items)


class NamedTupleT(_Seq):
    """A named tuple with at least one symbolic value inside; rebuilt as ``cls(*items)``."""

    __slots__ = ("cls",)

    def __init__(self, cls: type, items: Sequence[Template]) -> None:
        if not (isinstance(cls, type) and issubclass(cls, tuple)):
            raise TypeError(f"NamedTupleT needs a tuple subclass, got {type(cls).__name__}")
        super().__init__(items)
        self.cls = cls

    def rebuild(self, children: Sequence[Template]) -> Template:
        return NamedTupleT(self.cls, children)

    def __reduce__(self) -> tuple[Any, ...]:
        return NamedTupleT, (self.cls, self.items)

    def evaluate(self, values: Sequence[Any]) -> Any:
        return self.cls(*(t.evaluate(values) for t in self.items))


class SliceT(_Seq):
    """A ``slice`` whose start, stop or step is symbolic."""

    __slots__ = ()

    def __init__(self, items: Sequence[Template]) -> None:
        super().__init__(items)
        if len(self.items) != 3:
            raise ValueError(f"SliceT needs start, stop and step, got {len(self.items)} item(s)")

    def evaluate(self, values: Sequence[Any]) -> Any:
        return slice(*(t.evaluate(values) for t in self.items))


class DictT(Template):
    """A dict with at least one symbolic value; keys are always constants."""

    __slots__ = ("keys", "values")

    def __init__(self, keys: Sequence[Any], values: Sequence[Template]) -> None:
        if not isinstance(keys, (list, tuple)):
            raise TypeError(f"DictT needs a list or tuple of keys, got {type(keys).__name__}")
        self.keys = tuple(keys)
        self.values = _check_templates("DictT", values)
        if len(self.keys) != len(self.values):
            raise ValueError(f"DictT needs one value per key, got {len(self.keys)} key(s) and {len(self.values)}")

    def children(self) -> tuple[Template, ...]:
        return self.values

    def rebuild(self, children: Sequence[Template]) -> Template:
        return DictT(self.keys, children)

    def __reduce__(self) -> tuple[Any, ...]:
        return DictT, (self.keys, self.values)

    def evaluate(self, values: Sequence[Any]) -> Any:
        return {k: t.evaluate(values) for k, t in zip(self.keys, self.values, strict=True)}

    def __repr__(self) -> str:
        pairs = ", ".join(f"{describe(k)}: {v!r}" for k, v in zip(self.keys, self.values, strict=True))
        return f"DictT({{{pairs}}})"


def parse(obj: Any, leaf: Callable[[Any], int | None], _depth: int = 0) -> Template:
    """Turn a nested structure into a template.

    Args:
        obj: The structure, for example ``([x, 2], {"k": y})``.
        leaf: Returns the parent position of a symbolic value, or ``None`` for
            anything else. It is called on every object met.
        _depth: Internal nesting counter.

    Returns:
        A :class:`Const` when nothing symbolic is inside, otherwise a template.

    Raises:
        TraceError: a symbolic value sits inside an unsupported container (a set,
            a list subclass, a dataclass, a ``functools.partial``, a function's
            closure), where it would be frozen as a constant, or the
            nesting is deeper than :data:`MAX_DEPTH` (which includes structures
            that contain themselves).
    """
    index = leaf(obj)
    if index is not None:
        return shared_ref(index)
    tp = type(obj)
    if tp in _ATOMS:
        return shared_const(obj)  # the commonest constants, which hold nothing to look into
    if _depth > MAX_DEPTH:
        if not _contains_symbolic(obj, leaf):
            return Const(obj)  # a deep constant is emitted as one name, however deep it is
        raise TraceError(
            f"symbolic values are nested deeper than {MAX_DEPTH} levels (or in a structure that contains "
            "itself); flatten the arguments before recording the call"
        )
    is_namedtuple = tp is not tuple and isinstance(obj, tuple) and hasattr(tp, "_fields")
    if (tp is list or tp is tuple) and set(map(type, obj)) <= _ATOMS:
        # A type scan at C speed: a list of five million numbers is one constant,
        # without a template per element.
        return Const(obj)
    if tp is list or tp is tuple or tp is slice or is_namedtuple:
        raw = (obj.start, obj.stop, obj.step) if tp is slice else obj
        items = [parse(item, leaf, _depth + 1) for item in raw]
        if all(isinstance(t, Const) for t in items):
            return Const(obj)
        if tp is list:
            return ListT(items)
        if tp is tuple:
            return TupleT(items)
        if tp is slice:
            return SliceT(items)
        return NamedTupleT(tp, items)
    if tp is dict:
        keys = list(obj)
        for k in keys:
            if leaf(k) is not None:
                raise TraceError("a symbolic value cannot be a dict key; use it as a value instead")
        vals = [parse(obj[k], leaf, _depth + 1) for k in keys]
        if all(isinstance(t, Const) for t in vals):
            return Const(obj)
        return DictT(keys, vals)
    hidden = _hidden_items(obj)
    if hidden is not None and any(leaf(item) is not None for item in hidden):
        raise TraceError(
            f"a symbolic value is hidden inside a {tp.__name__!r}, where it would be frozen as a constant; "
            "pass it as an argument, in a plain list, tuple or dict"
        )
    return shared_const(obj)


def _contains_symbolic(obj: Any, leaf: Callable[[Any], int | None]) -> bool:
    """Whether a symbolic value sits anywhere inside ``obj``'s lists, tuples and dicts; iterative."""
    stack, seen = [obj], set()
    while stack:
        item = stack.pop()
        if leaf(item) is not None:
            return True
        if isinstance(item, (list, tuple, dict)) and id(item) not in seen:
            seen.add(id(item))
            stack.extend(item.values() if isinstance(item, dict) else item)
            if isinstance(item, dict):
                stack.extend(item)
    return False


def _hidden_items(obj: Any) -> Iterable[Any] | None:
    """Objects that a constant holds directly and where a symbolic value would be a mistake."""
    if isinstance(obj, dict):
        return obj.values()
    if isinstance(obj, (list, tuple, set, frozenset)):
        return obj
    if isinstance(obj, functools.partial):
        return (*obj.args, *obj.keywords.values())
    if isinstance(obj, types.FunctionType) and obj.__closure__:
        return _cell_contents(obj.__closure__)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return (getattr(obj, f.name, None) for f in dataclasses.fields(obj))
    return None


def _cell_contents(cells: tuple[types.CellType, ...]) -> Iterator[Any]:
    for cell in cells:
        try:
            yield cell.cell_contents
        except ValueError:  # an empty cell
            continue
