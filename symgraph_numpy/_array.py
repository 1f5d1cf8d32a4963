"""``SymbolicArray``: the handle that records numpy calls on symbolic arrays."""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from symgraph import SymbolicData, TraceError
from symgraph.plugin import (
    ArgumentCollector,
    MethodCall,
    Node,
    Placeholder,
    Unpack,
    record,
    user_location,
)
from symgraph_numpy._shapes import ArrayCheck, format_dims, read_reasons, symbolic_shape, upstream_placeholders

__all__ = ["SymbolicArray"]

# Public ndarray methods, recorded as one call each. Properties (``T``, ``real``)
# are recorded as attribute access by the base handle.
_METHODS = frozenset(
    name
    for name, attr in vars(np.ndarray).items()
    if isinstance(attr, types.MethodDescriptorType) and not name.startswith("_")
)
# Methods that change the array in place: recording them would change the
# example value and replay nothing. Each maps to the function that returns a copy.
_IN_PLACE = {
    "sort": "np.sort(x)",
    "partition": "np.partition(x, kth)",
    "fill": "np.full_like(x, value)",
    "put": "np.put on a copy, or np.where",
    "resize": "np.resize(x, shape)",
    "itemset": "np.where",
    "setfield": "a new structured array",
    "setflags": "np.asarray(x)",
}


def _note_read(node: Node, what: str, kind: str, shape: tuple[int | None, ...] | None = None) -> None:
    """Remember on the inputs upstream of ``node`` that the user's code read its sizes or dtype.

    A model built on them then requires the example's full shape (inputs made by
    ``CustomInput``; an ``Input`` declares its sizes, and unknown ones read as
    ``None``) or its exact dtype (any input), and says where the read was.
    """
    if shape is not None and all(d is None for d in shape):
        return  # nothing the example decided was read
    location: str | None = None
    for placeholder in upstream_placeholders(node):
        if not isinstance(placeholder.handle, SymbolicArray):
            continue
        meta = placeholder.meta
        if kind == "shape" and meta is not None and meta.get("dims") is not None:
            continue
        if meta is None:
            meta = placeholder.meta = {}
        reads = meta.setdefault("reads", {})
        if kind not in reads:  # the first read is the one to fix
            if location is None:
                location = user_location()
            subject = "" if placeholder is node else " of a value computed from it"
            reads[kind] = f"{what}{subject} at {location}"


def _record_call(func: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]) -> SymbolicData:
    collector = ArgumentCollector()
    return collector.record(collector.call_op(func, args, kwargs))


class _ArrayMethod:
    """``x.name`` before it is called; calling it records one :class:`~symgraph.MethodCall`."""

    __slots__ = ("handle", "name")

    def __init__(self, handle: SymbolicArray, name: str) -> None:
        self.handle = handle
        self.name = name

    def __call__(self, *args: Any, **kwargs: Any) -> SymbolicData:
        collector = ArgumentCollector(self.handle)
        op = MethodCall(self.name, [collector.template(a) for a in args], collector.template(kwargs))
        return collector.record(op)

    def __repr__(self) -> str:
        return f"<symbolic method {self.name!r} of {self.handle!r}>"


class SymbolicArray(SymbolicData):
    """A symbolic ``numpy.ndarray`` (or numpy scalar) that records what numpy does with it.

    * numpy functions record themselves through numpy's own dispatch protocols,
      ``__array_ufunc__`` and ``__array_function__``: ``np.sin(x)``,
      ``np.add.reduce(x)``, ``np.concatenate([x, y])``, ``np.where(x > 0, x, 0)``,
      ``np.einsum``, ``np.linalg.norm(x, axis=1)``;
    * methods (``x.reshape(-1, 3)``, ``x.sum(axis=0)``, ``x.astype(np.float32)``)
      are recorded as one call each and looked up on the value at replay, so
      the same pipeline runs on any array with those methods, such as dask's;
    * operators, ``x.T`` and indexing are recorded as for any symbolic value;
      indices may be symbolic (``x[mask]``, ``x[:, order]``), and ``==`` and
      ``!=`` compare elementwise, as numpy does (hashing stays by identity);
    * ``shape``, ``ndim``, ``dtype``, ``size`` and ``len()`` are read at once, not
      recorded, with ``None`` for every size that is not the same for all inputs
      (an unknown ``Input`` dimension, a boolean mask); ``np.shape(x)`` records
      the shape instead, for sizes the replay must read. A size or dtype read
      from the example becomes a requirement of models built on the input:
      the full shape of a ``CustomInput``, the exact dtype of any input.

    Example:
        >>> import numpy as np
        >>> import symgraph, symgraph_numpy as snp
        >>> x = snp.Input((None, 3))
        >>> y = np.linalg.norm(x - x.mean(axis=0), axis=1)
        >>> x.shape, y.shape
        ((None, 3), (None,))
        >>> model = symgraph.SymbolicModel(x, y)
        >>> data = np.array([[1.0, 2, 3], [3, 2, 1]])
        >>> np.allclose(model(data), np.linalg.norm(data - data.mean(axis=0), axis=1))
        True
    """

    __slots__ = ()

    # -- numpy's dispatch protocols -----------------------------------------------------
    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """Record a ufunc, or one of its methods such as ``np.add.reduce``, applied to symbolic arrays."""
        out = kwargs.pop("out", None)
        if out is not None and any(o is not None for o in (out if isinstance(out, tuple) else (out,))):
            raise TraceError(
                f"np.{ufunc.__name__}(..., out=...) writes into an existing array, which cannot be recorded; "
                "use the returned array instead"
            )
        if method == "at":
            raise TraceError(
                f"np.{ufunc.__name__}.at changes its first argument in place, which cannot be recorded; "
                "build a new array instead (np.bincount, or a wrapped function via symgraph.add_to_graph)"
            )
        func = ufunc if method == "__call__" else getattr(ufunc, method)
        return _record_call(func, inputs, kwargs)

    def __array_function__(
        self, func: Callable[..., Any], types: Sequence[type], args: Sequence[Any], kwargs: dict[str, Any]
    ) -> Any:
        """Record a numpy function (``np.concatenate``, ``np.where``, ``np.linalg.norm``...) on symbolic arrays."""
        return _record_call(func, args, kwargs)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray[Any, Any]:
        raise TraceError(
            "a symbolic array has no data of its own while recording, so it cannot become a numpy array "
            "(np.asarray, np.array, or a library that converts its input). Record the conversion with "
            "symgraph.add_to_graph(func, x), or use x.v for the example value"
        )

    # -- attributes ---------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name in _METHODS:
            if name in _IN_PLACE:
                raise TraceError(
                    f"x.{name}() changes the array in place, which cannot be recorded; use {_IN_PLACE[name]}"
                )
            return _ArrayMethod(self, name)
        return super().__getattr__(name)

    @property
    def shape(self) -> tuple[int | None, ...]:
        """The shape, with ``None`` for every size that is not the same for all inputs."""
        shape = symbolic_shape(self._node)
        _note_read(self._node, ".shape", "shape", shape)
        return shape

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return int(np.ndim(self._node.value))

    @property
    def dtype(self) -> np.dtype[Any]:
        """The element type; models built on the inputs upstream then require their exact dtypes."""
        _note_read(self._node, ".dtype", "dtype")
        return np.result_type(self._node.value)

    @property
    def size(self) -> int | None:
        """The number of elements, or ``None`` if a dimension is unknown."""
        shape = symbolic_shape(self._node)
        if None in shape:
            return None
        _note_read(self._node, ".size", "shape", shape)
        return math.prod(shape)  # type: ignore[arg-type]

    def _first_size(self, what: str) -> int:
        shape = symbolic_shape(self._node)
        if not shape:
            raise TypeError(f"{what} of a 0-d array")
        if shape[0] is None:
            raise TraceError(
                f"{what} of an array of shape {format_dims(shape)}: its first size is unknown while recording, "
                f"and {what} needs a number now. Record the size instead: np.shape(x)[0]"
            )
        _note_read(self._node, what, "shape", shape[:1])
        return shape[0]

    def __len__(self) -> int:
        return self._first_size("len()")

    def __iter__(self) -> Iterator[SymbolicData]:
        # Each element is x[i]; the loop is unrolled over the first dimension.
        node = self._node
        for i in range(self._first_size("iteration")):
            yield record(Unpack(i), (node,), value=node.value[i], pending=True)

    def __setitem__(self, index: Any, value: Any) -> None:
        raise TraceError(
            "item assignment changes the array in place, which cannot be recorded; build a new array instead, "
            "for example np.where(mask, new, x) for x[mask] = new"
        )

    # -- hooks for symgraph ----------------------------------------------------------------
    @classmethod
    def symgraph_describe_node(cls, node: Node) -> str:
        return format_dims(symbolic_shape(node))

    @classmethod
    def symgraph_input_check(cls, node: Node, name: str) -> Callable[[Any], None]:
        # An Input declares which sizes are fixed. Anything else (a CustomInput, an
        # inner node) fixes only rank and dtype, so that a pipeline recorded on a
        # small example replays on larger arrays, unless the recording read the
        # example's sizes or dtype: then they are required exactly.
        value = node.value
        placeholder = isinstance(node.op, Placeholder)
        declared = (node.meta or {}).get("dims") if placeholder else None
        shape_read, dtype_read = read_reasons(node.meta) if placeholder else (None, None)
        if declared is not None:
            dims, shape_read = declared, None
        elif shape_read is not None:
            dims = tuple(np.shape(value))
        else:
            dims = (None,) * np.ndim(value)
        return ArrayCheck(name, dims, np.result_type(value), shape_read=shape_read, dtype_read=dtype_read)
