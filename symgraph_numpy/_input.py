"""Starting a pipeline: ``Input`` for declared shapes, ``CustomInput`` for an example array."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

import symgraph
from symgraph.plugin import Placeholder, record
from symgraph_numpy._array import SymbolicArray
from symgraph_numpy._shapes import EXAMPLE_SIZE, PROBE_SIZE

__all__ = ["CustomInput", "Input"]


def _dims(shape: Any) -> tuple[int | None, ...]:
    if shape is None or isinstance(shape, int):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)):
        raise TypeError(f"Input: shape must be a tuple of ints and None, got {type(shape).__name__}")
    dims: list[int | None] = []
    for d in shape:
        if d is None:
            dims.append(None)
            continue
        try:
            size = operator.index(d)
        except TypeError:
            raise TypeError(f"Input: shape must be a tuple of ints and None, got {tuple(shape)!r}") from None
        if size < 0:
            raise ValueError(f"Input: shape must not have negative sizes, got {tuple(shape)!r}")
        dims.append(size)
    return tuple(dims)


def _example(
    rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype[Any], low: float, high: float
) -> np.ndarray[Any, Any]:
    kind = dtype.kind
    if kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    if kind in "iu":
        return rng.integers(int(low), int(high), shape, endpoint=True).astype(dtype)
    if kind in "fc":
        return (rng.random(shape) * (high - low) + low).astype(dtype)
    return np.zeros(shape, dtype=dtype)  # strings, dates, objects: no useful random data


def Input(  # noqa: N802 - the name users know from Keras
    shape: int | Sequence[int | None] | None,
    dtype: Any = np.float64,
    *,
    min_value: float = 0.0,
    max_value: float = 1.0,
    seed: int = 0,
    custom_name: str | None = None,
) -> SymbolicArray:
    """A placeholder for a pipeline input: a symbolic array with random example data.

    Args:
        shape: The full shape; ``None`` marks a size that may differ at every call,
            such as a batch. A model built on it checks the known sizes, the rank
            and the dtype kind of what it is given.
        dtype: The element type; anything ``np.dtype`` accepts.
        min_value: Lower bound of the random example values.
        max_value: Upper bound (inclusive for integers).
        seed: Seed of the example data, which is drawn from a private generator:
            recording never touches numpy's global random state.
        custom_name: Name of the input in summaries.

    Returns:
        The symbolic array. Its example value has size 2 in unknown dimensions.

    Raises:
        TypeError: ``shape`` is not a tuple of ints and ``None``, or ``dtype`` is
            not a dtype.
        ValueError: a size is negative, or the bounds are empty.

    Example:
        >>> import numpy as np
        >>> import symgraph_numpy as snp
        >>> x = snp.Input((None, 3), dtype=np.float32)
        >>> x.shape, x.dtype, x.v.shape
        ((None, 3), dtype('float32'), (2, 3))
    """
    dims = _dims(shape)
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"Input: dtype must be a numpy dtype or something np.dtype accepts, got {dtype!r}") from None
    if not min_value < max_value:
        raise ValueError(f"Input: min_value ({min_value}) must be below max_value ({max_value})")
    rng = np.random.default_rng(seed)
    value = _example(rng, tuple(EXAMPLE_SIZE if d is None else d for d in dims), dt, min_value, max_value)
    meta: dict[str, Any] = {"dims": dims}
    if None in dims:
        meta["probe"] = _example(rng, tuple(PROBE_SIZE if d is None else d for d in dims), dt, min_value, max_value)
    handle = record(Placeholder(), (), value=value, custom_name=custom_name, meta=meta)
    assert isinstance(handle, SymbolicArray)
    return handle


def CustomInput(value: Any, *, custom_name: str | None = None) -> SymbolicArray:  # noqa: N802
    """A placeholder around an example array: record on small data, replay on large.

    Shapes read while recording are the example's. A model built on it checks
    only the rank and the dtype kind of its input, so it runs on arrays of any
    size, dask arrays included. Declare varying sizes with :func:`Input` when
    the pipeline reads them (``x.shape[0]``, ``len(x)``).

    Args:
        value: A numpy array or scalar, or anything ``np.asarray`` accepts.
        custom_name: Name of the input in summaries.

    Raises:
        TypeError: ``value`` is already symbolic, or numpy makes an object array
            of it (ragged lists, arbitrary objects).

    Example:
        >>> import numpy as np
        >>> import symgraph, symgraph_numpy as snp
        >>> x = snp.CustomInput(np.arange(4.0))
        >>> model = symgraph.SymbolicModel(x, np.cumsum(x) * 2)
        >>> model(np.ones(6))
        array([ 2.,  4.,  6.,  8., 10., 12.])
    """
    if isinstance(value, symgraph.SymbolicData):
        raise TypeError("CustomInput() got a value that is already symbolic; use it directly")
    if not isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
        if array.dtype == object:
            raise TypeError(
                f"CustomInput: expected a numpy array or array-like, got {type(value).__name__}; for other "
                "Python values use symgraph.CustomInput"
            )
        value = array
    handle = record(Placeholder(), (), value=value, custom_name=custom_name)
    assert isinstance(handle, SymbolicArray)
    return handle
