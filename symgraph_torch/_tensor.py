"""The symbolic tensor: shape shortcuts, recorded torch functions and layer calls."""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from symgraph import InputError, TraceError
from symgraph.plugin import Node, Placeholder, SymbolicData, Unpack, escape, record
from symgraph_torch._tracing import ModuleCall, record_call, record_torch_function

__all__ = ["ShapeCheck", "SymbolicTensor", "batch_is_unknown", "free_batch_dimension"]

_ROUTINES = (types.MethodDescriptorType, types.FunctionType, types.BuiltinFunctionType, types.WrapperDescriptorType)
# name -> torch.Tensor routine, or None for attributes that are not methods.
_METHODS: dict[str, Any] = {}


def batch_is_unknown(node: Node) -> bool:
    """Whether ``node``'s value has the unknown batch dimension of an ``Input``.

    A value has it when any of its ancestors is an ``Input`` made without a batch
    size. The answer is cached on each node; the walk is iterative.

    Example:
        >>> import symgraph_torch
        >>> x = symgraph_torch.Input((3,))
        >>> batch_is_unknown((x * 2).node), batch_is_unknown(symgraph_torch.Input((3,), batch_size=4).node)
        (True, False)
    """
    stack = [node]
    while stack:
        current = stack[-1]
        if current.meta is not None and "batch_unknown" in current.meta:
            stack.pop()
            continue
        todo = [p for p in current.parents if p.meta is None or "batch_unknown" not in p.meta]
        if todo:
            stack.extend(todo)
            continue
        stack.pop()
        unknown = any(p.meta["batch_unknown"] for p in current.parents)  # type: ignore[index]
        current.meta = {**(current.meta or {}), "batch_unknown": unknown}
    return bool(node.meta["batch_unknown"])  # type: ignore[index]


def free_batch_dimension(node: Node) -> bool:
    """Whether dimension 0 of ``node``'s value is a batch whose size may change.

    True where the shape shows ``None`` first and for ``Input(..., batch_size=n)``;
    false for ``Input(..., batched=False)``, for tensors given to ``CustomInput``,
    and where an operation moved the batch away from dimension 0.

    Example:
        >>> import symgraph_torch
        >>> free_batch_dimension(symgraph_torch.Input((3,), batch_size=4).node)
        True
    """
    return _shape(node)[:1] == (None,) or bool(node.meta and node.meta.get("batched"))


def _shape(node: Node) -> tuple[int | None, ...]:
    shape: tuple[int | None, ...] = tuple(node.value.shape)
    # An unknown batch is traced with one example, so a first dimension of any
    # other size is not the batch: x[0], x.sum(0) or x.view(-1, 4) moved it.
    if shape and shape[0] == 1 and batch_is_unknown(node):
        return (None, *shape[1:])
    return shape


class _TensorMethod:
    """``x.view`` before it is called: calling it records one torch call."""

    __slots__ = ("func", "handle")

    def __init__(self, handle: SymbolicTensor, func: Any) -> None:
        self.handle = handle
        self.func = func

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return record_torch_function(self.func, (self.handle, *args), kwargs)

    def __repr__(self) -> str:
        return f"<recording method {self.func.__name__!r} of {self.handle!r}>"


class ShapeCheck:
    """Validates a value passed to a model input: a tensor of the input's shape.

    A plain class rather than a closure, so that models pickle.

    Args:
        name: The input's name, for messages.
        shape: The example's shape.
        free_batch: Dimension 0 may have any size.

    Example:
        >>> import torch
        >>> check = ShapeCheck("Input_1", (1, 3), free_batch=True)
        >>> check(torch.zeros(5, 3))
        >>> check(torch.zeros(5, 4))
        Traceback (most recent call last):
        ...
        symgraph.InputError: Input_1 expects a tensor of shape (None, 3) (None: any batch size), got (5, 4)
    """

    __slots__ = ("free_batch", "name", "shape")

    def __init__(self, name: str, shape: tuple[int, ...], *, free_batch: bool) -> None:
        self.name = escape(name)  # shown in messages: a name's control characters are escaped
        self.shape = shape
        self.free_batch = free_batch

    def __call__(self, value: Any) -> None:
        """Raise if ``value`` does not fit."""
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{self.name} expects a torch.Tensor of shape {self._shown()}, got {type(value).__name__}")
        actual = value.shape
        expected = self.shape
        # Runs on every call of a model: one length test and one tuple comparison.
        if len(actual) != len(expected) or (actual[1:] != expected[1:] if self.free_batch else actual != expected):
            hint = " (None: any batch size)" if self.free_batch else ""
            raise InputError(f"{self.name} expects a tensor of shape {self._shown()}{hint}, got {tuple(actual)}")

    def _shown(self) -> str:
        return str((None, *self.shape[1:]) if self.free_batch else self.shape)

    def __getstate__(self) -> tuple[str, tuple[int, ...], bool]:
        return self.name, self.shape, self.free_batch

    def __setstate__(self, state: tuple[str, tuple[int, ...], bool]) -> None:
        self.name, self.shape, self.free_batch = state


class SymbolicTensor(SymbolicData):
    """A symbolic ``torch.Tensor``: what ``Input`` returns and layers produce.

    Besides everything :class:`symgraph.SymbolicData` records, it:

    * has shape shortcuts (``features``, ``C``, ``H``, ``W``, ...); a batch whose
      size is unknown shows as ``None``;
    * records torch functions applied to it through the ``__torch_function__``
      protocol (``torch.cat([x, y], dim=1)``, ``F.relu(x)``), and tensor methods
      (``x.view(-1, 4)``) as one call each;
    * records layers in both notations, ``layer(x)`` and ``x(layer)``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> import symgraph_torch
        >>> x = symgraph_torch.Input((3, 32, 32))
        >>> x.C, x.HW, x.shape
        (3, (32, 32), (None, 3, 32, 32))
        >>> y = x(nn.Conv2d(x.C, 8, 3))
        >>> torch.flatten(y, 1).features
        7200
    """

    __slots__ = ()

    # -- recording ------------------------------------------------------------------
    @classmethod
    def __torch_function__(
        cls, func: Any, types: Sequence[type], args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        """Record ``func`` instead of running it: torch calls this for any function given a symbolic tensor."""
        return record_torch_function(func, args, kwargs)

    def __getattr__(self, name: str) -> Any:
        method = _METHODS.get(name, _METHODS)
        if method is _METHODS:
            attr = None if name.startswith("_") else getattr(torch.Tensor, name, None)
            method = _METHODS[name] = attr if isinstance(attr, _ROUTINES) else None
        if method is not None:
            return _TensorMethod(self, method)
        return super().__getattr__(name)

    def __call__(self, layer: Callable[..., Any], *others: Any, custom_name: str | None = None, **kwargs: Any) -> Any:
        """Apply ``layer`` to this tensor (and ``others``): ``x(layer)`` is ``layer(x)``.

        Args:
            layer: An ``nn.Module`` or any callable.
            *others: More arguments, after this tensor.
            custom_name: The node's name in summaries and, for a layer, in the model.
            **kwargs: Keyword arguments for the layer.

        Example:
            >>> from torch import nn
            >>> import symgraph_torch
            >>> x = symgraph_torch.Input((4,))
            >>> x(nn.Linear(4, 2), custom_name="head").shape
            (None, 2)
        """
        if not callable(layer):
            raise TypeError(f"x(layer): layer must be an nn.Module or another callable, got {type(layer).__name__}")
        return record_call(layer, (self, *others), kwargs, custom_name)

    def __iter__(self) -> Iterator[SymbolicData]:
        node = self._node
        value = node.value
        if value.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        if batch_is_unknown(node):
            raise TraceError(
                f"cannot iterate over a tensor of shape {_shape(node)}: its first dimension is the batch, whose "
                "size is unknown while recording, so the loop would run once per example of the trace batch "
                "instead of once per real example. Iterate over another dimension with x.unbind(dim), index "
                "single examples with x[i], or give Input a batch_size"
            )
        for i in range(value.shape[0]):
            yield record(Unpack(i), (node,), value=value[i], pending=True)

    # -- hooks for symgraph ---------------------------------------------------------------
    @classmethod
    def symgraph_describe_node(cls, node: Node) -> str:
        return str(_shape(node))

    @classmethod
    def symgraph_input_check(cls, node: Node, name: str) -> Callable[[Any], None]:
        shape = tuple(node.value.shape)
        return ShapeCheck(name, shape, free_batch=free_batch_dimension(node) and len(shape) > 0)

    # -- shape shortcuts ------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int | None, ...]:
        """The shape, with ``None`` for a batch dimension of unknown size."""
        return _shape(self._node)

    def _dims(self, what: str, allowed: tuple[int, ...], layout: str) -> tuple[int | None, ...]:
        shape = self.shape
        if len(shape) not in allowed:
            raise TraceError(
                f".{what} needs {layout} data; this tensor has shape {shape} ({len(shape)} dimensions). "
                "Use .shape for other layouts"
            )
        return shape

    @property
    def features(self) -> int:
        """``shape[1]`` of 2-D ``(batch, features)`` data."""
        return self._dims("features", (2,), "2-D (batch, features)")[1]  # type: ignore[return-value]

    @property
    def C(self) -> int:  # noqa: N802 - the name users know
        """Channels, ``shape[1]``, of ``(batch, C, ...)`` data with 3 to 5 dimensions."""
        return self._dims("C", (3, 4, 5), "(batch, C, L), (batch, C, H, W) or (batch, C, D, H, W)")[1]  # type: ignore[return-value]

    @property
    def channels(self) -> int:
        """Same as :attr:`C`."""
        return self._dims("channels", (3, 4, 5), "(batch, C, L), (batch, C, H, W) or (batch, C, D, H, W)")[1]  # type: ignore[return-value]

    @property
    def H(self) -> int:  # noqa: N802
        """Height, ``shape[-2]``, of ``(batch, C, H, W)`` or ``(batch, C, D, H, W)`` data."""
        return self._dims("H", (4, 5), "(batch, C, H, W) or (batch, C, D, H, W)")[-2]  # type: ignore[return-value]

    @property
    def W(self) -> int:  # noqa: N802
        """Width, ``shape[-1]``, of ``(batch, C, H, W)`` or ``(batch, C, D, H, W)`` data."""
        return self._dims("W", (4, 5), "(batch, C, H, W) or (batch, C, D, H, W)")[-1]  # type: ignore[return-value]

    @property
    def HW(self) -> tuple[int, int]:  # noqa: N802
        """``(H, W)``, for pooling windows and the like."""
        shape = self._dims("HW", (4, 5), "(batch, C, H, W) or (batch, C, D, H, W)")
        return shape[-2], shape[-1]  # type: ignore[return-value]

    @property
    def CHW(self) -> tuple[int, int, int]:  # noqa: N802
        """``(C, H, W)`` of ``(batch, C, H, W)`` data."""
        shape = self._dims("CHW", (4,), "(batch, C, H, W)")
        return shape[1], shape[2], shape[3]  # type: ignore[return-value]

    @property
    def HWC(self) -> tuple[int, int, int]:  # noqa: N802
        """``(H, W, C)`` of ``(batch, C, H, W)`` data."""
        shape = self._dims("HWC", (4,), "(batch, C, H, W)")
        return shape[2], shape[3], shape[1]  # type: ignore[return-value]

    @property
    def batch_size(self) -> int | None:
        """The batch size, or ``None`` when it is unknown (or the value is a scalar)."""
        shape = self.shape
        return shape[0] if shape else None

    @property
    def numel(self) -> int:
        """Elements per example when the batch is unknown, else elements in all."""
        return math.prod(d for d in self.shape if d is not None)

    @property
    def ndim(self) -> int:
        """Number of dimensions, the batch included."""
        return int(self._node.value.ndim)

    @property
    def dtype(self) -> torch.dtype:
        """The element type."""
        return self._node.value.dtype  # type: ignore[no-any-return]

    @property
    def device(self) -> torch.device:
        """The device the example value lives on (``meta`` when building without memory)."""
        return self._node.value.device  # type: ignore[no-any-return]

    @property
    def layer(self) -> nn.Module | None:
        """The ``nn.Module`` that produced this value; ``None`` for an input.

        Operators and recorded functions are wrapped in a small module from
        :mod:`symgraph_torch.useful_layers`.

        Example:
            >>> import symgraph_torch
            >>> x = symgraph_torch.Input((1,))
            >>> print((x + 2).layer)
            LambdaOpLayer()
        """
        op = self._node.op
        if isinstance(op, ModuleCall):
            return op.layer
        if isinstance(op, Placeholder):
            return None
        from symgraph_torch.useful_layers import layer_for

        return layer_for(op)
