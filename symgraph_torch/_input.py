"""Starting a graph: ``Input`` for tensors, ``CustomInput`` for any value."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import torch

import symgraph
from symgraph.plugin import Placeholder, SymbolicData, record
from symgraph_torch._compat import SymbolicObject
from symgraph_torch._tensor import SymbolicTensor

__all__ = ["CustomInput", "Input"]

# Example data comes from a private generator, so building a model draws no
# numbers from torch's global RNG and layers get the weights they would get if
# built by hand after the same torch.manual_seed.
_generator = torch.Generator().manual_seed(0)


def _dims(value: Any, what: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, (tuple, list, torch.Size)):
        raise TypeError(f"Input: {what} must be a tuple of ints, got {type(value).__name__}")
    try:
        dims = tuple(operator.index(d) for d in value)
    except TypeError:
        raise TypeError(f"Input: {what} must be a tuple of ints, got {tuple(value)!r}") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"Input: {what} must not have negative sizes, got {dims}")
    return dims


def _example(shape: Sequence[int], dtype: torch.dtype, low: float, high: float) -> torch.Tensor:
    device = torch.get_default_device()
    if device.type == "meta":
        return torch.empty(shape, dtype=dtype, device=device)
    if dtype == torch.bool:
        value = torch.randint(0, 2, shape, generator=_generator).bool()
    elif dtype.is_floating_point or dtype.is_complex:
        value = torch.rand(shape, generator=_generator, dtype=dtype) * (high - low) + low
    else:
        value = torch.randint(int(low), int(high) + 1, shape, generator=_generator, dtype=dtype)
    return value.to(device)


def Input(  # noqa: N802 - the name users know from Keras and pytorch-symbolic
    shape: int | Sequence[int] | None = None,
    batch_size: int | None = None,
    *,
    batch_shape: Sequence[int] | None = None,
    dtype: torch.dtype | None = None,
    min_value: float = 0.0,
    max_value: float = 1.0,
    batched: bool = True,
    custom_name: str | None = None,
) -> SymbolicTensor:
    """A placeholder for a model input: a symbolic tensor with random example data.

    Args:
        shape: The shape of one example, without the batch dimension (with it,
            when ``batched=False``).
        batch_size: A fixed batch size. Without one the batch size is unknown: it
            shows as ``None`` and the example data has a batch of 1.
        batch_shape: The full shape, batch first; instead of ``shape`` and
            ``batch_size``.
        dtype: Element type; ``torch.get_default_dtype()`` by default.
        min_value: Lower bound of the random example values.
        max_value: Upper bound of the random example values (inclusive for
            integer types).
        batched: ``False`` when ``shape`` has no batch dimension at all; then every
            dimension is checked when the model is called.
        custom_name: Name of the input in summaries.

    Returns:
        The symbolic tensor. Example data lives on the default device, so under
        ``with torch.device("meta"):`` it takes no memory.

    Raises:
        TypeError: ``shape`` or ``batch_shape`` is not a tuple of ints.
        ValueError: both or neither of ``shape`` and ``batch_shape`` are given, or
            the bounds are empty.

    Example:
        >>> import torch
        >>> from symgraph_torch import Input
        >>> Input((3, 32, 32)).shape
        (None, 3, 32, 32)
        >>> Input(batch_shape=(8, 10), dtype=torch.int64, max_value=9).v.max() <= 9
        tensor(True)
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
    if batch_shape is not None:
        full = _dims(batch_shape, "batch_shape")
        if not full:
            raise ValueError("Input: batch_shape needs at least the batch dimension")
        unknown = False
    elif not batched:
        full = _dims(shape, "shape")
        unknown = False
    else:
        dims = _dims(shape, "shape")
        full = (batch_size or 1, *dims)
        unknown = batch_size is None
    value = _example(full, dtype, min_value, max_value)
    handle = record(
        Placeholder(),
        (),
        value=value,
        custom_name=custom_name,
        meta={"batch_unknown": unknown, "batched": batched},
    )
    assert isinstance(handle, SymbolicTensor)
    return handle


def CustomInput(value: Any, *, custom_name: str | None = None) -> SymbolicData:  # noqa: N802
    """A placeholder around any example value, as in pytorch-symbolic.

    A tensor gives a :class:`SymbolicTensor` whose shape is exactly the example's
    (no unknown batch). Any other value gives a :class:`SymbolicObject`, which
    records operators as method calls, like pytorch-symbolic does.

    Args:
        value: The example value.
        custom_name: Name of the input in summaries.

    Example:
        >>> import torch
        >>> from symgraph_torch import CustomInput
        >>> CustomInput(torch.zeros(2, 5)).shape
        (2, 5)
        >>> type(CustomInput({"a": 1})).__name__
        'SymbolicObject'
    """
    if isinstance(value, SymbolicData):
        raise TypeError("CustomInput() got a value that is already symbolic; use it directly")
    if isinstance(value, torch.Tensor):
        return symgraph.CustomInput(value, custom_name=custom_name)
    return record(Placeholder(), (), value=value, custom_name=custom_name, handle_class=SymbolicObject)
