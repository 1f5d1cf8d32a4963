"""Small ``nn.Module`` layers for common operations, as in pytorch-symbolic.

They are ordinary modules: use them in symbolic models (``ConcatLayer(dim=1)(a, b)``)
or anywhere else. Operators recorded on symbolic tensors (``x + y``) are not
layers in the generated code, which applies the operator directly; their
``.layer`` is one of these modules, for inspection.

Example:
    >>> import torch
    >>> from symgraph_torch import Input, useful_layers
    >>> a, b = Input((1, 2, 3)), Input((5, 2, 3))
    >>> useful_layers.ConcatLayer(dim=1)(a, b).shape
    (None, 6, 2, 3)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from symgraph import plugin
from symgraph.plugin import Const, Node, Operation, Operator, Placeholder, Slice, Unpack
from symgraph_torch._tracing import ModuleCall

__all__ = [
    "AddOpLayer",
    "AggregateLayer",
    "CallbackLayer",
    "ConcatLayer",
    "ConcatOpLayer",
    "GetAttr",
    "LambdaOpLayer",
    "MatmulOpLayer",
    "MethodCall",
    "ModOpLayer",
    "MulOpLayer",
    "NamedLambdaOpLayer",
    "ReshapeLayer",
    "SliceLayer",
    "SliceLayerSymbolicIdx",
    "StackLayer",
    "StackOpLayer",
    "SubOpLayer",
    "UnpackLayer",
    "ViewCopyLayer",
    "layer_for",
    "layer_of",
]


class LambdaOpLayer(nn.Module):
    """Applies a function to its inputs.

    Args:
        op: The function; called with all the layer's positional arguments.

    Example:
        >>> import torch
        >>> LambdaOpLayer(lambda a, b: a * b)(torch.tensor(3), torch.tensor(4))
        tensor(12)
    """

    def __init__(self, op: Callable[..., Any]) -> None:
        super().__init__()
        self.op = op

    def forward(self, *args: Any) -> Any:
        """Return ``op(*args)``."""
        return self.op(*args)


class NamedLambdaOpLayer(LambdaOpLayer):
    """A :class:`LambdaOpLayer` that prints as ``name``, and is named so in summaries.

    Example:
        >>> import torch
        >>> layer = NamedLambdaOpLayer(torch.abs, "AbsLayer")
        >>> layer
        AbsLayer
        >>> layer(torch.tensor([-2]))
        tensor([2])
    """

    def __init__(self, op: Callable[..., Any], name: str) -> None:
        super().__init__(op)
        self.name = name

    def _get_name(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return self.name


class AddOpLayer(nn.Module):
    """Sums all its inputs.

    Example:
        >>> import torch
        >>> AddOpLayer()(torch.tensor(1), torch.tensor(2), torch.tensor(3))
        tensor(6)
    """

    def forward(self, *args: Any) -> Any:
        """Return the sum of the arguments."""
        result = args[0]
        for arg in args[1:]:
            result = result + arg
        return result


class SubOpLayer(nn.Module):
    """``a - b``.

    Example:
        >>> import torch
        >>> SubOpLayer()(torch.tensor(5), torch.tensor(2))
        tensor(3)
    """

    def forward(self, a: Any, b: Any) -> Any:
        """Return ``a - b``."""
        return a - b


class MulOpLayer(nn.Module):
    """Multiplies all its inputs.

    Example:
        >>> import torch
        >>> MulOpLayer()(torch.tensor(2), torch.tensor(3))
        tensor(6)
    """

    def forward(self, *args: Any) -> Any:
        """Return the product of the arguments."""
        result = args[0]
        for arg in args[1:]:
            result = result * arg
        return result


class ModOpLayer(nn.Module):
    """``a % b``.

    Example:
        >>> import torch
        >>> ModOpLayer()(torch.tensor(7), torch.tensor(4))
        tensor(3)
    """

    def forward(self, a: Any, b: Any) -> Any:
        """Return ``a % b``."""
        return a % b


class MatmulOpLayer(nn.Module):
    """``a @ b``.

    Example:
        >>> import torch
        >>> MatmulOpLayer()(torch.eye(2), torch.ones(2, 1)).shape
        torch.Size([2, 1])
    """

    def forward(self, a: Any, b: Any) -> Any:
        """Return ``a @ b``."""
        return a @ b


class ConcatLayer(nn.Module):
    """Concatenates its inputs along ``dim``.

    Args:
        dim: The dimension.

    Example:
        >>> import torch
        >>> ConcatLayer(dim=1)(torch.ones(2, 1), torch.zeros(2, 3)).shape
        torch.Size([2, 4])
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        """Return ``torch.cat(tensors, dim)``."""
        return torch.cat(tensors, dim=self.dim)


class StackLayer(nn.Module):
    """Stacks its inputs along a new dimension ``dim``.

    Args:
        dim: The new dimension.

    Example:
        >>> import torch
        >>> StackLayer(dim=1)(torch.ones(2, 3), torch.zeros(2, 3)).shape
        torch.Size([2, 2, 3])
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        """Return ``torch.stack(tensors, dim)``."""
        return torch.stack(tensors, dim=self.dim)


# pytorch-symbolic's other names for the two layers above.
ConcatOpLayer = ConcatLayer
"""pytorch-symbolic's other name for `ConcatLayer`."""
StackOpLayer = StackLayer
"""pytorch-symbolic's other name for `StackLayer`."""


def _with_batch(shape: tuple[int, ...], batch_size_included: bool) -> tuple[int, ...]:
    # pytorch-symbolic's rule: the batch dimension is -1 unless the shape includes it.
    return tuple(shape) if batch_size_included else (-1, *shape)


class ReshapeLayer(nn.Module):
    """``torch.reshape`` to ``shape``, with the batch dimension in front as ``-1`` unless ``shape`` includes it.

    Args:
        shape: The new shape of one example, or of the whole tensor with
            ``batch_size_included=True``.
        batch_size_included: ``shape`` includes the batch dimension.

    Example:
        >>> import torch
        >>> ReshapeLayer((2, 3))(torch.ones(4, 6)).shape, ReshapeLayer((3, 8), True)(torch.ones(4, 6)).shape
        (torch.Size([4, 2, 3]), torch.Size([3, 8]))
    """

    def __init__(self, shape: tuple[int, ...], batch_size_included: bool = False) -> None:
        super().__init__()
        self.shape = _with_batch(shape, batch_size_included)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x`` reshaped."""
        return torch.reshape(x, self.shape)


class ViewCopyLayer(ReshapeLayer):
    """``torch.view_copy`` to ``shape``: :class:`ReshapeLayer`'s view, as a new tensor.

    Args:
        shape: The new shape of one example, or of the whole tensor with
            ``batch_size_included=True``.
        batch_size_included: ``shape`` includes the batch dimension.

    Example:
        >>> import torch
        >>> x = torch.ones(4, 6)
        >>> y = ViewCopyLayer((2, 3))(x)
        >>> y.shape, y.data_ptr() != x.data_ptr()
        (torch.Size([4, 2, 3]), True)
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return a copy of ``x`` in the new shape."""
        return torch.view_copy(x, self.shape)


class CallbackLayer(nn.Module):
    """Returns its input unchanged, after calling ``op`` on it: for logging or debugging.

    Args:
        op: Called with the input at every call; what it returns is ignored.

    Example:
        >>> import torch
        >>> seen = []
        >>> CallbackLayer(lambda t: seen.append(t.shape))(torch.ones(2, 3)).shape, seen
        (torch.Size([2, 3]), [torch.Size([2, 3])])
    """

    def __init__(self, op: Callable[[Any], Any]) -> None:
        super().__init__()
        self.callback = op

    def forward(self, arg: Any) -> Any:
        """Call the callback on ``arg`` and return ``arg``."""
        self.callback(arg)
        return arg


class AggregateLayer(nn.Module):
    """Reduces along ``dim`` with a torch reduction such as ``torch.mean``, or over everything.

    Args:
        op: The reduction; called as ``op(x, dim=dim, keepdim=keepdim)``, or as
            ``op(x)`` when ``dim`` is ``None`` (``keepdim`` is not passed then).
        dim: The dimension(s); ``None`` reduces over all elements.
        keepdim: Keep the reduced dimensions with size 1.

    Example:
        >>> import torch
        >>> AggregateLayer(torch.sum, dim=1)(torch.ones(2, 3)), AggregateLayer(torch.sum)(torch.ones(2, 3))
        (tensor([3., 3.]), tensor(6.))
    """

    def __init__(self, op: Callable[..., Any], dim: int | tuple[int, ...] | None = None, keepdim: bool = False) -> None:
        super().__init__()
        self.op = op
        self.dim = dim
        self.keepdim = keepdim

    def forward(self, x: torch.Tensor) -> Any:
        """Return ``op(x, dim=dim, keepdim=keepdim)``, or ``op(x)`` without a ``dim``."""
        if self.dim is None:
            return self.op(x)
        return self.op(x, dim=self.dim, keepdim=self.keepdim)


class SliceLayer(nn.Module):
    """``x[idx]`` for a fixed index.

    Args:
        idx: The index: an int, a slice, a tuple of them, a tensor...

    Example:
        >>> import torch
        >>> SliceLayer((slice(None), 0))(torch.arange(6).reshape(2, 3))
        tensor([0, 3])
    """

    def __init__(self, idx: Any) -> None:
        super().__init__()
        self.idx = idx

    def forward(self, x: Any) -> Any:
        """Return ``x[idx]``."""
        return x[self.idx]


class SliceLayerSymbolicIdx(nn.Module):
    """``arg[idx]`` where the index is an input too (a symbolic value in a graph).

    Example:
        >>> import torch
        >>> SliceLayerSymbolicIdx()(torch.arange(5), torch.tensor([4, 0]))
        tensor([4, 0])
    """

    def forward(self, arg: Any, idx: Any) -> Any:
        """Return ``arg[idx]``."""
        return arg[idx]


class MethodCall(nn.Module):
    """Calls the method ``method_name`` of its input with fixed arguments: ``x.<method_name>(*args, **kwds)``.

    Args:
        method_name: The method's name.
        *args: Its positional arguments.
        **kwds: Its keyword arguments.

    Example:
        >>> import torch
        >>> MethodCall("transpose", 0, 1)(torch.ones(2, 3)).shape
        torch.Size([3, 2])
    """

    def __init__(self, method_name: str, *args: Any, **kwds: Any) -> None:
        super().__init__()
        if type(method_name) is not str or not method_name.isidentifier():
            raise TypeError(f"MethodCall needs a method name, got {method_name!r}")
        self.method_name = method_name
        self.args = args
        self.kwds = kwds

    def forward(self, tensor: Any) -> Any:
        """Return ``tensor.<method_name>(*args, **kwds)``."""
        return getattr(tensor, self.method_name)(*self.args, **self.kwds)


class UnpackLayer(nn.Module):
    """Returns its arguments as a tuple: ``UnpackLayer()(*x)`` is the elements of ``x``.

    pytorch-symbolic records ``a, b = x`` with it. Here unpacking records one
    step per element (named ``UnpackLayer`` in summaries).

    Example:
        >>> UnpackLayer()(*[10, 20, 30])
        (10, 20, 30)
    """

    def forward(self, *args: Any) -> tuple[Any, ...]:
        """Return ``args``."""
        return args


class GetAttr(nn.Module):
    """``getattr(x, name)``.

    Example:
        >>> import torch
        >>> GetAttr("T")(torch.ones(2, 3)).shape
        torch.Size([3, 2])
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def forward(self, x: Any) -> Any:
        """Return ``getattr(x, name)``."""
        return getattr(x, self.name)


_BY_SYMBOL: dict[str, type[nn.Module]] = {
    "+": AddOpLayer,
    "-": SubOpLayer,
    "*": MulOpLayer,
    "%": ModOpLayer,
    "@": MatmulOpLayer,
}


def layer_for(op: Operation, name: str | None = None) -> nn.Module:
    """A module that performs ``op`` on its parents' values; what ``x.layer`` shows.

    Args:
        op: The operation.
        name: The name of a module made for a step that none of the layers
            here performs (``wrap(f)`` for a call); the operation's class name
            by default.

    Example:
        >>> from symgraph_torch import Input
        >>> a, b = Input((2,)), Input((2,))
        >>> layer_for((a - b).op), layer_for((a * 3).op)
        (SubOpLayer(), LambdaOpLayer())
    """
    if isinstance(op, Operator):
        if any(isinstance(t, Const) for t in op.operands):
            return LambdaOpLayer(lambda *args: op.evaluate(args))
        cls = _BY_SYMBOL.get(op.symbol)
        if cls is not None:
            return cls()
        return NamedLambdaOpLayer(lambda *args: op.evaluate(args), op.display_name(()))
    if isinstance(op, Unpack):
        return NamedLambdaOpLayer(lambda *args: op.evaluate(args), op.display_name(()))
    if isinstance(op, plugin.GetAttr):
        return GetAttr(op.name)
    if isinstance(op, Slice) and isinstance(op.index, Const):
        return SliceLayer(op.index.value)
    return NamedLambdaOpLayer(lambda *args: op.evaluate(args), name if name is not None else type(op).__name__)


def layer_of(node: Node) -> nn.Module | None:
    """The layer of the step that made ``node``: what ``x.layer`` shows; ``None`` for an input.

    A recorded layer call gives the layer itself; any other step a module from
    :func:`layer_for`.

    Example:
        >>> from torch import nn
        >>> from symgraph_torch import Input
        >>> x = Input((2,))
        >>> linear = nn.Linear(2, 2)
        >>> layer_of(x.node), layer_of(linear(x).node) is linear
        (None, True)
    """
    op = node.op
    if isinstance(op, ModuleCall):
        return op.layer
    if isinstance(op, Placeholder):
        return None
    return layer_for(op, op.display_name([p.value for p in node.parents]))
