"""``SymbolicPandas``: the handle that records what pandas code does with frames, series and groupbys."""

from __future__ import annotations

import inspect
import types
from collections.abc import Sequence
from typing import Any

import pandas as pd

from symgraph import SymbolicData, TraceError
from symgraph.plugin import (
    ArgumentCollector,
    Const,
    DictT,
    EmitContext,
    GetAttr,
    MethodCall,
    Operation,
    Template,
    attribute_name_permitted,
    record,
    register_emitter,
)

__all__ = ["ACCESSORS", "AccessorCall", "SymbolicMethod", "SymbolicPandas", "emit_accessor_call"]

#: The accessors whose members are recorded as one step each: ``s.str.upper()``.
ACCESSORS = frozenset({"str", "dt", "cat", "sparse", "list", "struct"})
# Methods that change a frame or series in place; the message says what to use instead.
IN_PLACE = {
    "insert": "df.assign(name=values)",
    "pop": "df[name] for the column and df.drop(columns=name) for the rest",
    "update": "df.combine_first or df.where",
}
METHOD_TYPES = (types.FunctionType, classmethod, staticmethod)
# Looked up once per class and name: every attribute access on a handle asks.
KINDS: dict[tuple[type, str], str] = {}


def member_kind(cls: type, name: str) -> str:
    """What ``cls.name`` is to the recorder: ``"method"``, ``"accessor"`` or ``"other"``.

    Example:
        >>> member_kind(pd.Series, "sum"), member_kind(pd.Series, "str"), member_kind(pd.Series, "index")
        ('method', 'accessor', 'other')
    """
    kind = KINDS.get((cls, name))
    if kind is None:
        member = inspect.getattr_static(cls, name, None)
        if name in ACCESSORS and member is not None:
            kind = "accessor"
        else:
            kind = "method" if isinstance(member, METHOD_TYPES) else "other"
        KINDS[cls, name] = kind
    return kind


class AccessorCall(Operation):
    """``x.accessor.name(*args, **kwargs)`` as one step, or the property ``x.accessor.name`` when ``call`` is false.

    Args:
        accessor: One of :data:`ACCESSORS`, an exact ``str``.
        name: The member's name, an exact ``str`` that saved models may record.
        call: Whether the member is called.
        args: One template per positional argument.
        kwargs: The keyword arguments: a ``Const`` dict or a ``DictT``, with ``str`` keys.

    Example:
        >>> import symgraph
        >>> s = symgraph.CustomInput(pd.Series(["a", "b"]))
        >>> s.str.upper().op
        AccessorCall('str', 'upper', call=True)
    """

    __slots__ = ("accessor", "args", "call", "kwargs", "name")
    payload = ("accessor", "name", "call", "args", "kwargs")

    def __init__(self, accessor: str, name: str, call: bool, args: Sequence[Template], kwargs: Template) -> None:
        if type(accessor) is not str or accessor not in ACCESSORS:
            raise ValueError(f"AccessorCall: the accessor must be one of {sorted(ACCESSORS)}, got {accessor!r}")
        if type(name) is not str or not name.isidentifier() or not attribute_name_permitted(name):
            raise ValueError(f"AccessorCall: {name!r} is not a member name a model may record")
        if type(call) is not bool:
            raise TypeError(f"AccessorCall: call must be a bool, got {type(call).__name__}")
        args = tuple(args)
        if not all(isinstance(t, Template) for t in args):
            raise TypeError("AccessorCall: the arguments must be templates")
        keys = kwargs.keys if isinstance(kwargs, DictT) else kwargs.value if isinstance(kwargs, Const) else None
        if not isinstance(keys, (tuple, dict)) or not all(type(k) is str for k in keys):
            raise TypeError("AccessorCall: kwargs must be a Const dict or a DictT template with str keys")
        if not call and (args or keys):
            raise ValueError("AccessorCall: a property takes no arguments")
        self.accessor, self.name, self.call, self.args, self.kwargs = accessor, name, call, args, kwargs

    def evaluate(self, args: Sequence[Any]) -> Any:
        member = getattr(getattr(args[0], self.accessor), self.name)
        if not self.call:
            return member
        return member(*(t.evaluate(args) for t in self.args), **self.kwargs.evaluate(args))

    def display_name(self, args: Sequence[Any]) -> str:
        return f"{self.accessor}.{self.name}"

    def templates(self) -> tuple[Template, ...]:
        return (*self.args, self.kwargs)

    def __repr__(self) -> str:
        return f"AccessorCall({self.accessor!r}, {self.name!r}, call={self.call})"


def emit_accessor_call(op: AccessorCall, args: Sequence[str], ctx: EmitContext) -> str:
    """The Python expression of an :class:`AccessorCall`; both names are constants, never pasted in.

    Example:
        >>> import symgraph
        >>> s = symgraph.CustomInput(pd.Series(["a"]))
        >>> "getattr(getattr(v0, " in symgraph.SymbolicModel(s, s.str.upper()).source
        True
    """
    member = f"getattr(getattr({args[0]}, {ctx.pool.ref(op.accessor)}), {ctx.pool.ref(op.name)})"
    if not op.call:
        return member
    return f"{member}({', '.join(ctx.arguments(op.args, op.kwargs, args))})"


register_emitter(AccessorCall, emit_accessor_call)


def record_method(handle: SymbolicData, name: str, args: Sequence[Any], kwargs: dict[str, Any]) -> SymbolicData:
    """Record ``handle.name(*args, **kwargs)`` as one :class:`~symgraph.plugin.MethodCall` step.

    Example:
        >>> import symgraph
        >>> df = symgraph.CustomInput(pd.DataFrame({"a": [1.0, None]}))
        >>> record_method(df, "fillna", [0], {}).op
        MethodCall('fillna', (Const(0),), {})
    """
    value = handle.node.value
    if kwargs.get("inplace") is True:
        raise TraceError(
            f"x.{name}(inplace=True) changes the value in place, which a model cannot replay; "
            f"use the result instead: x = x.{name}(...)"
        )
    if name in IN_PLACE and isinstance(value, (pd.DataFrame, pd.Series)):
        raise TraceError(f"x.{name}() changes the value in place, which a model cannot replay; use {IN_PLACE[name]}")
    collector = ArgumentCollector(handle)
    op = MethodCall(name, [collector.template(a) for a in args], collector.template(kwargs))
    # Pending until the result is known: a method that returns None wrote somewhere
    # (a file, the value itself), and nothing of it would replay.
    result = record(op, tuple(collector.parents), pending=True)
    if result.node.value is None:
        raise TraceError(
            f"x.{name}() returned None: it changes a value in place or writes somewhere, "
            "which a model cannot replay; record a call that returns its result"
        )
    result.node.attach()
    return result


def record_accessor_call(
    handle: SymbolicData, accessor: str, member: str, args: Sequence[Any], kwargs: dict[str, Any]
) -> SymbolicData:
    """Record ``handle.accessor.member(*args, **kwargs)`` as one :class:`AccessorCall` step.

    Example:
        >>> import symgraph
        >>> s = symgraph.CustomInput(pd.Series(["a"]))
        >>> record_accessor_call(s, "str", "pad", [3], {}).v.tolist()
        ['  a']
    """
    collector = ArgumentCollector(handle)
    templates = [collector.template(a) for a in args]
    return collector.record(AccessorCall(accessor, member, True, templates, collector.template(kwargs)))


class SymbolicMethod(SymbolicData):
    """A method of a symbolic pandas value, read but not called yet: ``df.fillna``, ``s.str.upper``.

    Calling it records one step on the value, as ``df.fillna(0)`` does. Passed on
    uncalled, as in ``s.map(lookup.get)``, it is a symbolic value like any other:
    the model reads the method from the new value at replay. Its node stays
    pending until something uses it, so a method that is called adds one step.

    Example:
        >>> import symgraph
        >>> df = symgraph.CustomInput(pd.DataFrame({"k": ["a"]}))
        >>> lookup = symgraph.CustomInput(pd.Series({"a": 1, "b": 2}))
        >>> model = symgraph.SymbolicModel([df, lookup], df["k"].map(lookup.get))
        >>> model(pd.DataFrame({"k": ["b", "a"]}), pd.Series({"a": 5, "b": 6})).tolist()
        [6, 5]
    """

    __slots__ = ()

    def __call__(self, *args: Any, **kwargs: Any) -> SymbolicData:
        node = self._node
        owner, op = node.parents[0].handle, node.op
        if isinstance(op, GetAttr):
            return record_method(owner, op.name, args, kwargs)
        if isinstance(op, AccessorCall):
            return record_accessor_call(owner, op.accessor, op.name, args, kwargs)
        raise TypeError(f"a symbolic method is read from a value, by a GetAttr or AccessorCall step; got {op!r}")


class Accessor:
    """``x.str``, ``x.dt``...: its members are recorded as one :class:`AccessorCall` each."""

    __slots__ = ("cls", "handle", "name")

    def __init__(self, handle: SymbolicData, name: str) -> None:
        # Read on the example so that ``.str`` of numbers fails here, as in pandas.
        self.cls = type(getattr(handle.node.value, name))
        self.handle, self.name = handle, name

    def __getattr__(self, member: str) -> Any:
        if member.startswith("_") or inspect.getattr_static(self.cls, member, None) is None:
            raise AttributeError(f"the .{self.name} accessor has no member {member!r}")
        op = AccessorCall(self.name, member, False, (), Const({}))
        if member_kind(self.cls, member) == "method":
            return record(op, (self.handle.node,), pending=True, handle_class=SymbolicMethod)
        return record(op, (self.handle.node,))

    def __getitem__(self, index: Any) -> SymbolicData:
        raise TraceError(f"x.{self.name}[...] is not recorded; use x.{self.name}.get(i) or x.{self.name}.slice(...)")


class SymbolicPandas(SymbolicData):
    """A symbolic pandas ``DataFrame``, ``Series``, ``Index`` or groupby that records what pandas code does.

    * methods (``df.fillna(0)``, ``df.groupby("g")``, ``s.between(1, 3)``) are
      recorded as one step each, and so are accessor members (``s.str.upper()``,
      ``s.dt.year``);
    * operators compare and compute elementwise, as in pandas: ``df["g"] == "x"``
      is a recorded mask, so ``df[df["g"] == "x"]`` replays on new frames;
    * numpy ufuncs record themselves: ``np.log(df)``, ``np.add(s, 1)``;
    * in-place changes (``df["c"] = ...``, ``inplace=True``, ``df.insert``) are
      refused with the call to use instead.

    Example:
        >>> import numpy as np, symgraph
        >>> df = symgraph.CustomInput(pd.DataFrame({"g": ["x", "y"], "v": [1.0, 4.0]}))
        >>> out = np.sqrt(df[df["g"] == "x"]["v"]).sum()
        >>> model = symgraph.SymbolicModel(df, out)
        >>> model(pd.DataFrame({"g": ["y", "x", "x"], "v": [1.0, 9.0, 16.0]}))
        np.float64(7.0)
    """

    __slots__ = ()

    # pandas hands binary operations with a real frame back to our reflected operators.
    __pandas_priority__ = 5000

    # The base class sets __array_ufunc__ = None, so that numpy defers to operators;
    # pandas values take ufuncs, so a recorded ufunc is what eager code would run.
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """Record ``np.log(df)``, ``np.add(s, 1)`` or a ufunc method such as ``np.maximum.reduce``."""
        if kwargs.get("out") is not None:
            raise TraceError(f"np.{ufunc.__name__}(..., out=...) writes into an existing array; use the result")
        func = ufunc if method == "__call__" else getattr(ufunc, method)
        collector = ArgumentCollector()
        return collector.record(collector.call_op(func, inputs, kwargs))

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        """Record a numpy function such as ``np.where(s > 0, s, 0)``: eager code would run it on the values."""
        collector = ArgumentCollector()
        return collector.record(collector.call_op(func, args, kwargs))

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        raise TraceError(
            "a symbolic pandas value has no data while recording, so it cannot become a numpy array; "
            "record the conversion with x.to_numpy(), or use x.v for the example value"
        )

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("_"):
            kind = member_kind(type(self._node.value), name)
            if kind == "method":
                return record(GetAttr(name), (self._node,), pending=True, handle_class=SymbolicMethod)
            if kind == "accessor":
                return Accessor(self, name)
        return super().__getattr__(name)

    def __setitem__(self, key: Any, value: Any) -> None:
        raise TraceError(
            "df[key] = value changes the frame in place, which a model cannot replay; "
            "build a new frame instead: df = df.assign(name=value), or df.where/df.mask for masked values"
        )

    def __len__(self) -> int:
        raise TraceError(
            "len() must return a number now, but the length is only known at replay; "
            "record it with symgraph.add_to_graph(len, x), or use x.shape[0]"
        )
