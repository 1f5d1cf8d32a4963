"""The symbolic tensor: shape shortcuts, recorded torch functions and layer calls."""

from __future__ import annotations

import collections
import math
import types
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from symgraph import InputError, TraceError
from symgraph.plugin import (
    Call,
    Const,
    Elements,
    GetAttr,
    MethodCall,
    Node,
    Operator,
    Plan,
    Slice,
    SymbolicData,
    Unpack,
    describe,
    escape,
    fold_ancestors,
    record,
)
from symgraph_torch._tracing import (
    ModuleCall,
    NestedModelCall,
    TorchRecording,
    _evaluate_at_trace_time,
    checked_operators,
    record_call,
    record_torch_function,
)

__all__ = [
    "EXAMPLE_BATCH",
    "ShapeCheck",
    "SymbolicTensor",
    "batch_is_unknown",
    "free_batch_dimension",
    "node_depth",
    "probe_size",
]

_ROUTINES = (types.MethodDescriptorType, types.FunctionType, types.BuiltinFunctionType, types.WrapperDescriptorType)
# name -> torch.Tensor routine, or None for attributes that are not methods.
_METHODS: dict[str, Any] = {}


#: Size of an unknown batch in the example data that recording computes with: more
#: than one, so that layers that need several examples in training mode (BatchNorm)
#: can be recorded.
EXAMPLE_BATCH = 2


def _inherited(node: Node, key: str) -> bool:
    # Whether any ancestor placeholder set ``key`` in its meta; cached on each node
    # (placeholders without the key count as False). Iterative post-order.
    stack = [node]
    while stack:
        current = stack[-1]
        if current.meta is not None and key in current.meta:
            stack.pop()
            continue
        todo = [p for p in current.parents if p.meta is None or key not in p.meta]
        if todo:
            stack.extend(todo)
            continue
        stack.pop()
        found = any(p.meta[key] for p in current.parents)  # type: ignore[index]
        current.meta = {**(current.meta or {}), key: found}
    return bool(node.meta[key])  # type: ignore[index]


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
    return _inherited(node, "batch_unknown")


_depths: weakref.WeakKeyDictionary[Node, int] = weakref.WeakKeyDictionary()


def node_depth(node: Node) -> int:
    """Steps on the longest path from an input to ``node``: ``0`` for an input.

    pytorch-symbolic's ``depth``. Cached on each node; the walk is iterative.

    Example:
        >>> import symgraph_torch
        >>> x = symgraph_torch.Input((3,))
        >>> node_depth(x.node), node_depth(((x * 2) + x).node)
        (0, 2)
    """
    return fold_ancestors(node, _depths, _zero, _one_more)


def _zero(node: Node) -> int:
    return 0


def _one_more(node: Node, parents: list[int]) -> int:
    return 1 + max(parents)


def free_batch_dimension(node: Node) -> bool:
    """Whether dimension 0 of ``node``'s value may have any size at call time.

    True where the shape shows ``None`` first and for ``Input(..., batch_size=n)``;
    false for ``Input(..., batched=False)`` (unless its first size is ``None``),
    for tensors given to ``CustomInput``, and where an operation moved the batch
    away from dimension 0.

    Example:
        >>> import symgraph_torch
        >>> free_batch_dimension(symgraph_torch.Input((3,), batch_size=4).node)
        True
    """
    return _shape(node)[:1] == (None,) or bool(node.meta and node.meta.get("batched"))


# -- probes: which sizes follow from the declared shapes alone ------------------------------
#
# With free sizes besides a batch in dimension 0 (``Input((3, None, None))``,
# ``Input((None, 8), batch_dim=1)``), the steps are run a second time when a shape
# is first asked for, on probe inputs whose free sizes differ from the example's
# (``2 * size + 1``: a floor division by any stride up to the example's size tells
# the two apart). A size is shown as known only where the example and the probe
# agree; where a step fails on the probe, every size of it and of what is computed
# from it is shown as ``None``.
#
# Below inputs whose only free size is an unknown batch, a value whose first size
# is the example batch's (2) is "batch-led" (batch first, every other size fixed)
# without a probe when it comes from such values through a step known to keep the
# batch first (``_keeps_batch``: convolutions, Linear, activations, elementwise
# operators, ...), or from a user's layer or function (not run on the probe, see
# ``_probe_safe``; taken as batch-first). So common graphs are not run twice. Any
# other step with that size first (an LSTM's state (layers, batch, hidden),
# torch.stack, x.transpose(0, 1)) asks the probe; where it fails there, the value
# is taken as batch-first too. In the probe, a batch-led value stands in as zeros
# with the probe's batch first and its other sizes unchanged: the steps after it
# run on that, and nothing before it is run again.

_SAME = object()  # the probe equals the example value (nothing upstream has a free size)
_FAILED = object()  # the step raised on the probe
_probes: weakref.WeakKeyDictionary[Node, Any] = weakref.WeakKeyDictionary()
_led: weakref.WeakKeyDictionary[Node, bool] = weakref.WeakKeyDictionary()


def probe_size(size: int) -> int:
    """The size that a free dimension of example size ``size`` has in the probe.

    Example:
        >>> probe_size(2), probe_size(16)
        (5, 33)
    """
    return 2 * size + 1


def _torch_owned(fn: Any) -> bool:
    """Whether ``fn`` is one of torch's own functions or tensor methods, and not its I/O."""
    module = getattr(fn, "__module__", None) or getattr(getattr(fn, "__objclass__", None), "__module__", None)
    if not isinstance(module, str):
        return False
    return module.partition(".")[0] == "torch" and not module.startswith(("torch.serialization", "torch.hub"))


def _probe_safe(op: Any) -> bool:
    """Whether ``op`` may run a second time, on the probe: torch's own code only.

    A user's function or layer (``add_to_graph(f, x)``, a custom module) is not
    run again: its side effects would happen twice. What it computes gets no
    known sizes instead. Random torch operations are safe: the probe, like
    recording, draws from a generator private to the thread.
    """
    if isinstance(op, NestedModelCall):
        return False  # it may hold anything; its own steps are not looked into
    if isinstance(op, ModuleCall):
        return type(op.layer).__module__.partition(".")[0] == "torch"
    if isinstance(op, Call):
        return isinstance(op.func, Const) and _torch_owned(op.func.value)
    return isinstance(op, (Operator, GetAttr, Slice, Unpack, Elements, MethodCall))


# Steps that give a tensor of their input's shape, whatever that shape.
_SAME_SHAPE_LAYERS: frozenset[type] = frozenset(
    {
        nn.Identity,
        *(nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish),
        *(nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.Softsign),
        *(nn.Tanhshrink, nn.LogSigmoid, nn.Softmax, nn.LogSoftmax),
        *(nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout),
        *(nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm),
    }
)
# By id: a recorded callable need not be hashable.
_SAME_SHAPE_FUNCTIONS = frozenset(
    map(
        id,
        (
            *(functional.relu, functional.relu6, functional.leaky_relu, functional.elu, functional.selu),
            *(functional.celu, functional.gelu, functional.silu, functional.mish, functional.hardswish),
            *(functional.hardsigmoid, functional.hardtanh, functional.softplus, functional.softmax),
            *(functional.log_softmax, functional.dropout, functional.layer_norm, functional.group_norm),
            *(functional.batch_norm, functional.normalize, functional.sigmoid, functional.tanh),
            *(torch.relu, torch.sigmoid, torch.tanh, torch.softmax, torch.log_softmax, torch.exp, torch.log),
            *(torch.abs, torch.sqrt, torch.rsqrt, torch.square, torch.sin, torch.cos, torch.erf),
        ),
    )
)
_SAME_SHAPE_METHODS = frozenset(
    {"relu", "sigmoid", "tanh", "softmax", "log_softmax", "exp", "log", "abs", "sqrt", "rsqrt", "square"}
    | {"neg", "float", "double", "half", "bfloat16", "long", "int", "bool", "to", "type", "contiguous", "clone"}
    | {"detach"}
)
# Layers that keep dimension 0 of a batched input first, with this many spatial
# dimensions after (batch, channels): a 3-D input to Conv2d is one unbatched image.
_SPATIAL_LAYERS: dict[type, int] = {
    **dict.fromkeys((nn.Conv1d, nn.ConvTranspose1d, nn.MaxPool1d, nn.AvgPool1d, nn.LPPool1d), 1),
    **dict.fromkeys((nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool1d), 1),
    **dict.fromkeys((nn.Conv2d, nn.ConvTranspose2d, nn.MaxPool2d, nn.AvgPool2d, nn.LPPool2d), 2),
    **dict.fromkeys((nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.UpsamplingNearest2d), 2),
    **dict.fromkeys((nn.UpsamplingBilinear2d,), 2),
    **dict.fromkeys((nn.Conv3d, nn.ConvTranspose3d, nn.MaxPool3d, nn.AvgPool3d), 3),
    **dict.fromkeys((nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool3d), 3),
}
_CONCATENATE = frozenset(map(id, (torch.cat, torch.concat, torch.concatenate)))
_UNSET = object()


def _constant_argument(op: Call | MethodCall, index: int, name: str, default: Any) -> Any:
    """Argument ``name`` (or positional ``index``) of ``op`` when it is a constant; ``_UNSET`` if symbolic."""
    kwargs = op.kwargs.value if isinstance(op.kwargs, Const) else None
    if kwargs is None:
        return _UNSET
    if name in kwargs:
        return kwargs[name]
    if index < len(op.args):
        template = op.args[index]
        return template.value if isinstance(template, Const) else _UNSET
    return default


def _from_dimension_one(dim: Any, ndim: int) -> bool:
    """Whether ``dim`` is an int naming a dimension after the first, of ``ndim`` dimensions."""
    if isinstance(dim, bool) or not isinstance(dim, int):
        return False
    return 1 <= (dim + ndim if dim < 0 else dim) < ndim


def _keeps_batch(node: Node) -> bool:
    """Whether ``node``'s step keeps dimension 0 of its tensor inputs first, with fixed other sizes.

    Asked only where every tensor parent is batch-led; each rule answers as the
    probe would (a step that fits the example batch only fails on the probe,
    whose answer is then batch-first too).
    """
    op, value = node.op, node.value
    tensors = [p.value for p in node.parents if isinstance(p.value, torch.Tensor)]
    if not tensors:
        return False
    if isinstance(op, Operator):
        # Elementwise, or a batched matmul of equal shapes: nothing broadcast into the batch.
        return all(t.shape == value.shape for t in tensors)
    if isinstance(op, ModuleCall):
        if len(node.parents) != 1 or len(tensors) != 1:
            return False
        kind, (given,) = type(op.layer), tensors
        if kind in _SAME_SHAPE_LAYERS:
            return bool(given.shape == value.shape)
        spatial = _SPATIAL_LAYERS.get(kind)
        if spatial is not None:
            return given.ndim == spatial + 2 and given.shape[0] == value.shape[0]
        if kind is nn.Linear:
            return given.ndim >= 2 and given.shape[:-1] == value.shape[:-1]
        if kind is nn.Embedding:
            return bool(value.shape[:-1] == given.shape)
        if kind is nn.Flatten:
            return _from_dimension_one(op.layer.start_dim, given.ndim)
        return False
    if isinstance(op, MethodCall):
        if len(tensors) != 1:
            return False
        (given,) = tensors
        if op.name in _SAME_SHAPE_METHODS:
            return bool(given.shape == value.shape)
        if op.name == "flatten":
            return _from_dimension_one(_constant_argument(op, 0, "start_dim", 0), given.ndim)
        return False
    if isinstance(op, Call) and isinstance(op.func, Const):
        fn = op.func.value
        if id(fn) in _CONCATENATE:
            dim = _constant_argument(op, 1, "dim", 0)
            return _from_dimension_one(dim, value.ndim) and all(t.ndim == value.ndim for t in tensors)
        if len(tensors) != 1:
            return False
        (given,) = tensors
        if fn is torch.flatten:
            return _from_dimension_one(_constant_argument(op, 1, "start_dim", 0), given.ndim)
        return id(fn) in _SAME_SHAPE_FUNCTIONS and given.shape == value.shape
    return False


def _batch_led_root(node: Node) -> bool:
    return _may_lead(node)


def _batch_led_step(node: Node, parents: list[bool]) -> bool:
    if not _may_lead(node):
        return False
    if not _probe_safe(node.op):
        return True  # a user's step, not run on the probe: taken as batch-first
    tensor_parents = [led for p, led in zip(node.parents, parents, strict=True) if isinstance(p.value, torch.Tensor)]
    return all(tensor_parents) and _keeps_batch(node)


def _may_lead(node: Node) -> bool:
    value = node.value
    return (
        isinstance(value, torch.Tensor)
        and value.ndim > 0
        and value.shape[0] == EXAMPLE_BATCH
        and not _inherited(node, "free_sizes")
        and batch_is_unknown(node)
    )


def _batch_led(node: Node) -> bool:
    """Whether ``node``'s value is batch-led: the unknown batch first, every other size fixed, known without a probe."""
    return fold_ancestors(node, _led, _batch_led_root, _batch_led_step)


def _stand_in(value: torch.Tensor, sizes: Sequence[int]) -> Any:
    """Zeros of ``value``'s dtype and device in ``sizes``; ``_FAILED`` where torch makes none (quantized dtypes)."""
    try:
        return torch.zeros(list(sizes), dtype=value.dtype, device=value.device)
    except Exception:
        return _FAILED


def _evaluate_probe(node: Node, parents: list[Any]) -> Any:
    if any(p is _FAILED for p in parents):
        return _FAILED
    if all(p is _SAME for p in parents):
        return _SAME
    if not _probe_safe(node.op):
        # Not run again: a stand-in whose every size differs from the example's
        # lets torch's own steps downstream still tell which of their sizes follow.
        value = node.value
        if isinstance(value, torch.Tensor):
            return _stand_in(value, [probe_size(n) for n in value.shape])
        return _FAILED
    args = [node_.value if p is _SAME else p for node_, p in zip(node.parents, parents, strict=True)]
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a probe's warnings are not the user's
            # As at record time: buffers put back, the global RNG untouched.
            return _evaluate_at_trace_time(node.op, args)
    except Exception:
        return _FAILED


def _placeholder_probe(node: Node) -> Any:
    make = (node.meta or {}).get("probe")
    return make(node.value) if make is not None else _SAME


def _batch_led_stand_in(node: Node) -> Any:
    if not _batch_led(node):
        return None
    value = node.value
    return _stand_in(value, [probe_size(EXAMPLE_BATCH), *value.shape[1:]])


def _probe(node: Node) -> Any:
    """``node``'s value in the probe; batch-led values stand in, and nothing before them is run."""
    return fold_ancestors(node, _probes, _placeholder_probe, _evaluate_probe, stop=_batch_led_stand_in)


def _shape(node: Node) -> tuple[int | None, ...]:
    shape: tuple[int | None, ...] = tuple(node.value.shape)
    if not shape:
        return shape
    batch_first: tuple[int | None, ...] | None = None
    if not _inherited(node, "free_sizes"):
        if not batch_is_unknown(node):
            return shape
        # An unknown batch is traced with EXAMPLE_BATCH examples. A value with that
        # size first most often keeps the batch there, but not always (an LSTM's
        # state (layers, batch, hidden) with 2 layers, torch.stack([a, b])).
        if shape[0] == EXAMPLE_BATCH:
            batch_first = (None, *shape[1:])
            if _batch_led(node):
                return batch_first
        # Anything else moved the batch (x[0], x.sum(0)) or folded it into another
        # size (x.view(-1, 4)): the probe tells which sizes still follow from it.
    probe = _probe(node)
    if probe is _SAME:
        return shape
    if not isinstance(probe, torch.Tensor) or probe.ndim != len(shape):
        # The step failed on the probe (or gave something else): nothing is known,
        # except that the example batch's size first is taken for the batch.
        return batch_first if batch_first is not None else (None,) * len(shape)
    return tuple(None if a != b else a for a, b in zip(shape, probe.shape, strict=True))


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


_KIND_NAMES = {"b": "boolean", "i": "integer", "f": "floating-point", "c": "complex"}


def _kind(dtype: torch.dtype) -> str:
    if dtype.is_floating_point:
        return "f"
    if dtype.is_complex:
        return "c"
    return "b" if dtype is torch.bool else "i"


class _NotATensorError(InputError, TypeError):
    """A model input that takes a tensor was given something else (an ``InputError`` and a ``TypeError``)."""


class ShapeCheck:
    """Validates a value passed to a model input: a tensor of the input's shape, dtype and device.

    A plain class rather than a closure, so that models pickle.

    The expected dtype and device follow the model: ``anchor``, a parameter of a
    layer the input reaches, is converted in place by ``model.to(...)``,
    ``model.double()`` or ``model.cuda()``, and when its device has changed the
    input is expected there too; when its floating dtype has changed, a floating
    input is expected in that dtype. Integer and boolean inputs keep their dtype,
    as ``model.half()`` keeps integer tensors. An example on the ``meta`` device
    (a model built without memory) fixes no device. Without an anchor (no layer
    with parameters), only the kind of dtype is checked (boolean, integer,
    floating-point, complex), and no device.

    Args:
        name: The input's name, for messages.
        shape: The expected shape; ``None`` for a size that may differ at every call.
        free_batch: Dimension 0 may have any size too (as if it were ``None``).
        dtype: The expected dtype; ``None``: any.
        device: The expected device; ``None``: any.
        anchor: The tensor whose conversions the expected dtype and device follow,
            or ``(module, name, tensor)``: the parameter ``name`` of ``module``, read at
            every call, so that a parameter replaced after building
            (``load_state_dict(..., assign=True)``, ``layer.weight = nn.Parameter(...)``)
            is the one followed. When the module has none of that name any more (a
            parametrization moves it below the module), its first floating
            parameter is followed, or else ``tensor``, the parameter at build.

    Example:
        >>> import torch
        >>> check = ShapeCheck("Input_1", (1, 3), free_batch=True, dtype=torch.float32, anchor=torch.zeros(1))
        >>> check(torch.zeros(5, 3))
        >>> check(torch.zeros(5, 4))
        Traceback (most recent call last):
        ...
        symgraph.InputError: Input_1 expects a tensor of shape (None, 3) (None: any batch size), got (5, 4)
        >>> check(torch.zeros(5, 3, dtype=torch.float64))
        Traceback (most recent call last):
        ...
        symgraph.InputError: Input_1 expects a tensor of dtype torch.float32, got torch.float64; use .to(torch.float32)
    """

    __slots__ = ("_known", "_tail", "anchor", "anchor_device", "anchor_dtype", "device", "dims", "dtype", "name")

    def __init__(
        self,
        name: str,
        shape: Sequence[int | None],
        *,
        free_batch: bool = False,
        dtype: torch.dtype | None = None,
        device: torch.device | None = None,
        anchor: torch.Tensor | tuple[torch.nn.Module, str, torch.Tensor] | None = None,
    ) -> None:
        self.name = escape(name)  # shown in messages: a name's control characters are escaped
        dims = tuple(shape)
        if free_batch and dims:
            dims = (None, *dims[1:])
        self.dims = dims
        self.dtype = dtype
        self.device = device if device is None or device.type != "meta" else None
        self.anchor = anchor
        tensor = self._anchor_tensor()
        self.anchor_dtype = tensor.dtype if tensor is not None else None
        self.anchor_device = tensor.device if tensor is not None else None
        self._prepare()

    def reanchor(self, anchor: tuple[torch.nn.Module, str, torch.Tensor] | None) -> None:
        """Follow another parameter from now on, as if the check had been built with it.

        Example:
            >>> import torch
            >>> from torch import nn
            >>> check = ShapeCheck("Input_1", (None, 3), dtype=torch.float32)
            >>> layer = nn.Linear(3, 1).double()
            >>> check.reanchor((layer, "weight", layer.weight))
            >>> check.anchor_dtype
            torch.float64
        """
        self.anchor = anchor
        tensor = self._anchor_tensor()
        self.anchor_dtype = tensor.dtype if tensor is not None else None
        self.anchor_device = tensor.device if tensor is not None else None

    def _anchor_tensor(self) -> torch.Tensor | None:
        anchor = self.anchor
        if type(anchor) is tuple:
            module, name, at_build = anchor
            found = module._parameters.get(name)
            if isinstance(found, torch.Tensor):
                return found
            # Moved (a parametrization keeps it, or what it is made of, below the
            # module): whatever floating parameter the module holds now.
            return next((p for p in module.parameters() if p.is_floating_point()), at_build)
        return anchor  # type: ignore[return-value]

    def _prepare(self) -> None:
        # Runs on every call of a model, so the common layouts get one tuple comparison.
        dims = self.dims
        self._tail = dims[1:] if dims and dims[0] is None and None not in dims[1:] else None
        self._known = tuple((axis, size) for axis, size in enumerate(dims) if size is not None)

    @property
    def shape(self) -> tuple[int | None, ...]:
        """The expected shape, ``None`` for free sizes."""
        return self.dims

    @property
    def free_batch(self) -> bool:
        """Whether dimension 0 may have any size."""
        return bool(self.dims) and self.dims[0] is None

    @property
    def free_dims(self) -> tuple[int, ...]:
        """The dimensions that may have any size."""
        return tuple(axis for axis, size in enumerate(self.dims) if size is None)

    def __call__(self, value: Any) -> None:
        """Raise :class:`symgraph.InputError` naming the input if ``value`` does not fit."""
        if not isinstance(value, torch.Tensor):
            raise _NotATensorError(
                f"{self.name} expects a torch.Tensor of shape {self._shown()}, got {describe(value)}"
            )
        actual = value.shape
        dims = self.dims
        if len(actual) != len(dims):
            self._refuse_shape(actual)
        tail = self._tail
        if tail is not None:
            if actual[1:] != tail:
                self._refuse_shape(actual)
        else:
            for axis, size in self._known:
                if actual[axis] != size:
                    self._refuse_shape(actual)
        expected_dtype = self.dtype
        if expected_dtype is None:
            return
        given = self.anchor
        anchor: torch.Tensor | None
        if type(given) is tuple:
            # Runs at every call: the parameter's own entry, looked up directly.
            anchor = given[0]._parameters.get(given[1])
            if not isinstance(anchor, torch.Tensor):
                anchor = self._anchor_tensor()
        else:
            anchor = given  # type: ignore[assignment]
        if anchor is None:
            # Nothing to follow (a graph of torch functions and constants, which
            # model.to() may convert): only the kind is checked, and no device.
            if _kind(value.dtype) != _kind(expected_dtype):
                raise InputError(
                    f"{self.name} expects a {_KIND_NAMES[_kind(expected_dtype)]} tensor (built with "
                    f"{expected_dtype}), got {value.dtype}; use .to({expected_dtype})"
                )
            return
        expected_device = self.device
        # Converted in place by model.to(), .double(), .cuda(): the input follows it.
        converted = anchor.dtype
        if converted is not self.anchor_dtype and expected_dtype.is_floating_point and converted.is_floating_point:
            expected_dtype = converted
        if anchor.device != self.anchor_device:
            expected_device = anchor.device
        if value.dtype is not expected_dtype:
            raise InputError(
                f"{self.name} expects a tensor of dtype {expected_dtype}, got {value.dtype}; use .to({expected_dtype})"
            )
        if expected_device is not None and value.device != expected_device:
            raise InputError(
                f"{self.name} expects a tensor on device {expected_device}, got one on {value.device}; "
                "move it with .to(device), or the model with model.to(device)"
            )

    def _refuse_shape(self, actual: Any) -> None:
        free = self.free_dims
        hint = " (None: any batch size)" if free == (0,) else " (None: any size)" if free else ""
        raise InputError(f"{self.name} expects a tensor of shape {self._shown()}{hint}, got {tuple(actual)}")

    def _shown(self) -> str:
        return str(self.dims)

    # What pickles, in order; the rest is derived by _prepare().
    _STATE = ("name", "dims", "dtype", "device", "anchor", "anchor_dtype", "anchor_device")

    def __getstate__(self) -> tuple[Any, ...]:
        return tuple(getattr(self, field) for field in self._STATE)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        if len(state) == 3:  # pickled before dtype and device were checked: (name, shape, free_batch)
            name, shape, free_batch = state
            state = (name, (None, *shape[1:]) if free_batch and shape else shape, None, None, None, None, None)
        for field, value in zip(self._STATE, state, strict=True):
            setattr(self, field, value)
        self._prepare()


def _anchor(node: Node) -> tuple[torch.nn.Module, str, torch.Tensor] | None:
    """A floating-point parameter of the first layer (breadth first) that ``node`` reaches.

    Returned as ``(module holding it, its name there, the parameter)``, for the
    check to read it at every call.
    """
    seen = {node.id}
    queue = collections.deque(node.children)
    budget = 10_000  # a bound on the walk in very wide graphs
    while queue and budget:
        budget -= 1
        current = queue.popleft()
        if current.id in seen:
            continue
        seen.add(current.id)
        op = current.op
        if isinstance(op, ModuleCall):
            found = _first_parameter(op.layer)
            if found is not None:
                return found
        queue.extend(current.children)
    return None


def _first_parameter(layer: nn.Module) -> tuple[torch.nn.Module, str, torch.Tensor] | None:
    for module in layer.modules():
        for name, parameter in module._parameters.items():
            if parameter is not None and parameter.is_floating_point():
                return module, name, parameter
    return None


def anchor_in_plan(plan: Plan) -> None:
    """Make each input check follow a layer of ``plan`` itself.

    The check was made with the graph, where the first layer an input reaches
    may belong to another model built on the same input; a model follows its own
    layers, so ``model.double()`` changes what its inputs must be. The walk is
    breadth first from the input over the plan's steps, as :func:`_anchor`'s over
    the graph.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> import symgraph_torch
        >>> x = symgraph_torch.Input((3,))
        >>> other = symgraph_torch.SymbolicModel(x, nn.Linear(3, 2)(x))
        >>> mine = symgraph_torch.SymbolicModel(x, nn.Linear(3, 1)(x)).double()
        >>> mine(torch.rand(2, 3, dtype=torch.float64)).dtype
        torch.float64
    """
    layers = {id(m) for step in plan.steps if isinstance(step.op, ModuleCall) for m in step.op.layer.modules()}
    n_in = len(plan.inputs)
    readers: dict[int, list[int]] = {}
    for j, step in enumerate(plan.steps):
        for slot in dict.fromkeys(step.args):
            readers.setdefault(slot, []).append(n_in + j)
    for i, spec in enumerate(plan.inputs):
        check = spec.check
        if not isinstance(check, ShapeCheck) or type(check.anchor) is not tuple or id(check.anchor[0]) in layers:
            continue
        found = None
        seen = {i}
        queue = collections.deque(readers.get(i, ()))
        while queue and found is None:
            slot = queue.popleft()
            if slot in seen:
                continue
            seen.add(slot)
            op = plan.steps[slot - n_in].op
            if isinstance(op, ModuleCall):
                found = _first_parameter(op.layer)
            queue.extend(readers.get(slot, ()))
        check.reanchor(found)


class SymbolicTensor(TorchRecording, SymbolicData):
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
    # __torch_function__ comes from TorchRecording: torch functions given a symbolic
    # tensor are recorded instead of run.

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
        # Refused only where dimension 0 is the unknown batch: an LSTM's state
        # (layers, batch, hidden) below it iterates over its layers.
        if _shape(node)[0] is None:
            raise TraceError(
                f"cannot iterate over a tensor of shape {_shape(node)}: its first dimension is the batch, whose "
                "size is unknown while recording (or a size declared None, which may differ at every call), so "
                "the loop would run once per example of the trace batch instead of once per real example. "
                "Iterate over another dimension with x.unbind(dim), index single examples with x[i], or give "
                "Input a batch_size"
            )
        for i in range(value.shape[0]):
            yield record(Unpack(i), (node,), value=value[i], pending=True)

    # -- hooks for symgraph ---------------------------------------------------------------
    @classmethod
    def symgraph_describe_node(cls, node: Node) -> str:
        return str(_shape(node))

    @classmethod
    def symgraph_input_check(cls, node: Node, name: str) -> Callable[[Any], None]:
        value = node.value
        declared = (node.meta or {}).get("check_dims")
        if declared is not None:
            dims = tuple(declared)
        else:
            shape = tuple(value.shape)
            dims = (None, *shape[1:]) if shape and free_batch_dimension(node) else shape
        return ShapeCheck(name, dims, dtype=value.dtype, device=value.device, anchor=_anchor(node))

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
        """The size of the last dimension: features of ``(batch, features)`` or ``(batch, ..., features)`` data.

        As in pytorch-symbolic, ``nn.Linear(x.features, ...)`` and
        ``nn.LSTM(x.features, ...)`` work on sequences too.

        Raises:
            TraceError: the tensor has fewer than 2 dimensions (a batch alone, or
                a scalar), or the last size is not known (``None``).

        Example:
            >>> import symgraph_torch
            >>> symgraph_torch.Input((16,)).features, symgraph_torch.Input((7, 5)).features
            (16, 5)
        """
        shape = self.shape
        if len(shape) < 2:
            raise TraceError(
                f".features needs (batch, features) or (batch, ..., features) data; this tensor has shape "
                f"{shape} ({len(shape)} dimension{'' if len(shape) == 1 else 's'}), with no features "
                "dimension besides the batch. Use .shape"
            )
        size = shape[-1]
        if size is None:
            raise TraceError(
                f".features: the last size of this tensor (shape {shape}) is not known while recording (it "
                "may differ at every call, or comes from a step that is not run on the probe), so there is no "
                "fixed number of features; declare that size in Input, or use a layer that infers it "
                "(nn.LazyLinear)"
            )
        return size

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
    def batch_size_known(self) -> bool:
        """Whether the batch size is fixed: no ``Input`` this value is computed from has an unknown one.

        For an ``Input``, whether ``batch_size=`` or ``batch_shape=`` (with a size
        first) fixed it; for any other value, whether that holds for every input
        it is computed from. Tensors given to ``CustomInput`` have a fixed size.

        Example:
            >>> import symgraph_torch
            >>> free, fixed = symgraph_torch.Input((3,)), symgraph_torch.Input((3,), batch_size=4)
            >>> weight = symgraph_torch.Input(batch_shape=(3, 5))
            >>> free.batch_size_known, fixed.batch_size_known, weight.batch_size_known
            (False, True, True)
            >>> (fixed @ weight).batch_size_known, (free @ weight).batch_size_known
            (True, False)
        """
        return not batch_is_unknown(self._node)

    @property
    def depth(self) -> int:
        """Steps on the longest path from an input to this value: ``0`` for an input.

        Example:
            >>> import symgraph_torch
            >>> x = symgraph_torch.Input((3,))
            >>> x.depth, (x + 1).relu().depth
            (0, 2)
        """
        return node_depth(self._node)

    def apply_module(self, layer: Callable[..., Any], *others: Any, custom_name: str | None = None) -> Any:
        """pytorch-symbolic's name for ``x(layer, *others)``: record ``layer(x, *others)``.

        Example:
            >>> from torch import nn
            >>> import symgraph_torch
            >>> x = symgraph_torch.Input((4,))
            >>> x.apply_module(nn.Linear(4, 2)).shape
            (None, 2)
        """
        if not callable(layer):
            raise TypeError(f"apply_module: layer must be an nn.Module or another callable, got {type(layer).__name__}")
        return record_call(layer, (self, *others), {}, custom_name)

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
        from symgraph_torch.useful_layers import layer_of

        return layer_of(self._node)


# Operators refuse a tensor operand computed from parameters outside the graph
# (x + pos_emb(torch.arange(n))), which would be frozen as a constant.
for _name, _method in checked_operators().items():
    setattr(SymbolicTensor, _name, _method)
