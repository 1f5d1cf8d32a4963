"""Starting a graph: ``Input`` for tensors, ``CustomInput`` for any value."""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

import torch

import symgraph
from symgraph.plugin import Placeholder, SymbolicData, record
from symgraph_torch._compat import SymbolicFactory
from symgraph_torch._tensor import EXAMPLE_BATCH, SymbolicTensor, probe_size

__all__ = ["CustomInput", "Input"]

# Example data comes from a private generator, so building a model draws no
# numbers from torch's global RNG and layers get the weights they would get if
# built by hand after the same torch.manual_seed.
_generator = torch.Generator().manual_seed(0)


def _dims(value: Any, what: str, *, free: bool = True) -> tuple[int | None, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, (tuple, list, torch.Size)):
        raise TypeError(
            f"Input: {what} must be a tuple of ints{' and None' if free else ''}, got {type(value).__name__}"
        )
    dims: list[int | None] = []
    for d in value:
        if d is None and free:
            dims.append(None)
            continue
        try:
            dims.append(operator.index(d))
        except TypeError:
            raise TypeError(
                f"Input: {what} must be a tuple of ints{' and None' if free else ''}, got {tuple(value)!r}"
            ) from None
    if any(d is not None and d < 0 for d in dims):
        raise ValueError(f"Input: {what} must not have negative sizes, got {tuple(dims)}")
    return tuple(dims)


def _example(
    shape: Sequence[int],
    dtype: torch.dtype,
    low: float,
    high: float,
    generator: torch.Generator = _generator,
    device: torch.device | None = None,
) -> torch.Tensor:
    device = device if device is not None else torch.get_default_device()
    if device.type == "meta":
        return torch.empty(shape, dtype=dtype, device=device)
    if dtype == torch.bool:
        value = torch.randint(0, 2, shape, generator=generator).bool()
    elif dtype.is_floating_point or dtype.is_complex:
        value = torch.rand(shape, generator=generator, dtype=dtype) * (high - low) + low
    else:
        # From low up to high, not included, as torch.randint's high and as
        # pytorch-symbolic (which truncates): max_value=V fits nn.Embedding(V, d).
        first, stop = _integer_range(low, high)
        value = torch.randint(first, stop, shape, generator=generator, dtype=dtype)
    return value.to(device)


def _integer_range(low: float, high: float) -> tuple[int, int]:
    """``(first, stop)``: the integers ``k`` with ``low <= k < high`` are ``range(first, stop)``."""
    return math.ceil(low), math.ceil(high)


#: Example size of a free dimension other than the batch, unless ``example_shape`` gives one.
EXAMPLE_SIZE = 16


class _Probe:
    """Makes an ``Input``'s probe: random data whose free sizes differ from the example's.

    A plain class rather than a closure, so that it pickles with the graph.
    """

    __slots__ = ("bounds", "free")

    def __init__(self, free: tuple[int, ...], bounds: tuple[float, float]) -> None:
        self.free = free  # the dimensions whose size changes
        self.bounds = bounds

    def __call__(self, example: torch.Tensor) -> torch.Tensor:
        shape = [probe_size(d) if axis in self.free else d for axis, d in enumerate(example.shape)]
        generator = torch.Generator().manual_seed(1)  # never the global RNG
        return _example(shape, example.dtype, *self.bounds, generator=generator, device=example.device)


def Input(  # noqa: N802 - the name users know from Keras and pytorch-symbolic
    shape: int | Sequence[int | None] | None = None,
    batch_size: int | None = None,
    *,
    batch_shape: Sequence[int | None] | None = None,
    batch_dim: int = 0,
    example_shape: Sequence[int] | None = None,
    dtype: torch.dtype | None = None,
    min_value: float = 0.0,
    max_value: float = 1.0,
    batched: bool = True,
    custom_name: str | None = None,
) -> SymbolicTensor:
    """A placeholder for a model input: a symbolic tensor with random example data.

    Args:
        shape: The shape of one example, without the batch dimension (with it,
            when ``batched=False``); ``None`` marks a size that may differ at
            every call, as in ``(3, None, None)`` for images of any size.
        batch_size: A fixed batch size of the example. Without one the batch size
            is unknown: it shows as ``None`` and the example data has a batch of
            ``EXAMPLE_BATCH`` (2). A model accepts any batch size either way.
        batch_shape: The full shape, batch included, instead of ``shape`` and
            ``batch_size``; ``None`` entries may have any size (``(None, None, 8)``
            for time-major sequences of any length and batch).
        batch_dim: Where the batch goes among the dimensions of ``shape``:
            ``Input((None, 8), batch_dim=1)`` is ``(time, batch, 8)``, and
            ``Input((2, 16), batch_dim=1)`` a ``(layers, batch, hidden)`` state.
        example_shape: The example's sizes, in the layout of ``shape`` (or of
            ``batch_shape``), for the ``None`` entries; ``EXAMPLE_SIZE`` (16) by
            default. Every other entry must match.
        dtype: Element type; ``torch.get_default_dtype()`` by default. A model
            built on the input expects this dtype (see :class:`ShapeCheck`).
        min_value: Lower bound of the random example values (included).
        max_value: Upper bound of the random example values, not included:
            integer examples are the integers from ``min_value`` up to ``max_value``,
            as ``torch.randint``'s ``high`` (so ``max_value=V`` fits
            ``nn.Embedding(V, d)``, and the defaults give all zeros, as in
            pytorch-symbolic). Boolean examples are random ``True`` and
            ``False`` whatever the bounds.
        batched: ``False`` when ``shape`` has no batch dimension at all; then every
            dimension is checked when the model is called, except ``None`` ones.
        custom_name: Name of the input in summaries.

    Returns:
        The symbolic tensor. Example data lives on the default device, so under
        ``with torch.device("meta"):`` it takes no memory.

    Raises:
        TypeError: ``shape`` or ``batch_shape`` is not a tuple of ints and ``None``.
        ValueError: both or neither of ``shape`` and ``batch_shape`` are given,
            ``batch_dim`` is out of range, ``example_shape`` does not fit, or the
            bounds are empty (for an integer dtype: hold no integer).

    Example:
        >>> import torch
        >>> from symgraph_torch import Input
        >>> Input((3, 32, 32)).shape
        (None, 3, 32, 32)
        >>> Input((3, None, None)).shape, Input((None, 8), batch_dim=1).shape
        ((None, 3, None, None), (None, None, 8))
        >>> tokens = Input(batch_shape=(8, 10), dtype=torch.int64, max_value=9)
        >>> 0 <= int(tokens.v.min()) and int(tokens.v.max()) <= 8
        True
        >>> int(Input((10,), dtype=torch.int64).v.abs().sum())  # the defaults: all zeros
        0
    """
    if (shape is None) == (batch_shape is None):
        raise ValueError("Input: give exactly one of shape= (without the batch) and batch_shape= (with it)")
    if batch_size is not None and (batch_shape is not None or not batched):
        raise ValueError("Input: batch_size= goes with shape= on batched data only")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"Input: batch_size must be a positive int, got {batch_size!r}")
    if not min_value < max_value:
        raise ValueError(f"Input: min_value ({min_value}) must be below max_value ({max_value})")
    dtype = dtype if dtype is not None else torch.get_default_dtype()
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"Input: dtype must be a torch.dtype, got {type(dtype).__name__}")
    if not (dtype.is_floating_point or dtype.is_complex or dtype is torch.bool):
        if not (math.isfinite(min_value) and math.isfinite(max_value)):
            raise ValueError(
                f"Input: min_value ({min_value}) and max_value ({max_value}) must be finite for dtype {dtype}"
            )
        first, stop = _integer_range(min_value, max_value)
        if first >= stop:
            raise ValueError(
                f"Input: for dtype {dtype}, example values are the integers from min_value ({min_value}) up "
                f"to, not including, max_value ({max_value}), and there are none; raise max_value"
            )
        limits = torch.iinfo(dtype)
        if first < limits.min or stop - 1 > limits.max:
            raise ValueError(
                f"Input: example values from min_value ({min_value}) up to, not including, max_value "
                f"({max_value}) do not fit dtype {dtype} ({limits.min} to {limits.max})"
            )
    if isinstance(batch_dim, bool) or not isinstance(batch_dim, int):
        raise TypeError(f"Input: batch_dim must be an int, got {type(batch_dim).__name__}")
    if batch_dim != 0 and (batch_shape is not None or not batched):
        raise ValueError("Input: batch_dim= goes with shape= on batched data only; batch_shape= may use None")
    given = _dims(batch_shape if batch_shape is not None else shape, "batch_shape" if shape is None else "shape")
    sizes = _example_sizes(given, example_shape)
    if batch_shape is not None:
        if not given:
            raise ValueError("Input: batch_shape needs at least the batch dimension")
        declared, example = given, sizes
        batch_axis = 0  # batch first; a size given for it fixes the example's batch only
    elif not batched:
        declared, example = given, sizes
        batch_axis = None
    else:
        if not 0 <= batch_dim <= len(given):
            raise ValueError(f"Input: batch_dim must be between 0 and {len(given)} for shape {given}, got {batch_dim}")
        declared = (*given[:batch_dim], batch_size, *given[batch_dim:])
        example = (*sizes[:batch_dim], batch_size or EXAMPLE_BATCH, *sizes[batch_dim:])
        batch_axis = batch_dim
    # The check accepts any batch size, also where batch_size fixed the example's.
    check = tuple(None if axis == batch_axis else d for axis, d in enumerate(declared))
    free = tuple(axis for axis, d in enumerate(declared) if d is None)
    value = _example(example, dtype, min_value, max_value)
    meta: dict[str, Any] = {
        "batch_unknown": batch_axis is not None and declared[batch_axis] is None,
        "batched": batch_axis == 0,
        "check_dims": check,
        # Free sizes other than an unknown batch in dimension 0 need probes (see _tensor).
        "free_sizes": any(axis != 0 or batch_axis != 0 for axis in free),
    }
    if free:
        meta["probe"] = _Probe(free, (min_value, max_value))
    handle = record(Placeholder(), (), value=value, custom_name=custom_name, meta=meta)
    assert isinstance(handle, SymbolicTensor)
    return handle


def _example_sizes(given: tuple[int | None, ...], example_shape: Sequence[int] | None) -> tuple[int, ...]:
    if example_shape is None:
        return tuple(EXAMPLE_SIZE if d is None else d for d in given)
    example = _dims(example_shape, "example_shape", free=False)
    if len(example) != len(given) or any(d is not None and d != e for d, e in zip(given, example, strict=False)):
        raise ValueError(f"Input: example_shape {example} must have the sizes of {given} where they are not None")
    return example  # type: ignore[return-value]


def CustomInput(data: Any, *, custom_name: str | None = None) -> SymbolicData:  # noqa: N802
    """A placeholder around any example value, as in pytorch-symbolic.

    A tensor gives a :class:`SymbolicTensor` whose shape is exactly the example's
    (no unknown batch). Any other value gives a
    :class:`~symgraph_torch.SymbolicObject` of the class
    :func:`~symgraph_torch.symbolic_data.SymbolicFactory` makes for its type
    (:class:`~symgraph_torch.symbolic_data.SymbolicCallable` for a callable),
    which records operators as method calls, like pytorch-symbolic does. Its
    batch size counts as known (``batch_size_known``), as in pytorch-symbolic.

    Args:
        data: The example value (``data=``, as pytorch-symbolic names it).
        custom_name: Name of the input in summaries.

    Example:
        >>> import torch
        >>> from symgraph_torch import CustomInput
        >>> CustomInput(torch.zeros(2, 5)).shape
        (2, 5)
        >>> type(CustomInput({"a": 1})).__name__
        'SymbolicObject[dict]'
    """
    if isinstance(data, SymbolicData):
        raise TypeError("CustomInput() got a value that is already symbolic; use it directly")
    if isinstance(data, torch.Tensor):
        return symgraph.CustomInput(data, custom_name=custom_name)
    return record(Placeholder(), (), value=data, custom_name=custom_name, handle_class=SymbolicFactory(type(data)))
