"""Starting a pipeline: ``Input`` for declared shapes, ``CustomInput`` for an example array."""

from __future__ import annotations

import itertools
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

import symgraph
from symgraph.plugin import Placeholder, record
from symgraph_numpy._array import SymbolicArray
from symgraph_numpy._shapes import EXAMPLE_SIZE, probe_size

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


# Numbers the inputs, so that each gets its own sizes in the probe world where
# the inputs' unknown sizes differ from one another.
_input_numbers = itertools.count()


class _Probe:
    """Makes an ``Input``'s probe arrays, when a shape is first asked for (see ``_shapes``)."""

    __slots__ = ("bounds", "dims", "dtype", "number", "seed")

    def __init__(
        self, dims: tuple[int | None, ...], dtype: np.dtype[Any], bounds: tuple[float, float], seed: int
    ) -> None:
        self.dims = dims
        self.dtype = dtype
        self.bounds = bounds
        self.seed = seed
        self.number = next(_input_numbers)

    def __call__(self, world: int) -> np.ndarray[Any, Any]:
        rng = np.random.default_rng([abs(self.seed), world + 1])
        shape = tuple(probe_size(world, self.number, axis) if d is None else d for axis, d in enumerate(self.dims))
        return _example(rng, shape, self.dtype, *self.bounds)


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
            such as a batch, and reads as ``None`` while recording. A model built
            on it checks the known sizes and the rank of what it is given.
        dtype: The element type; anything ``np.dtype`` accepts. A model built on
            it checks the kind (precision may differ), datetime and timedelta
            units, and structured field names and kinds; the exact dtype, if the
            recording read ``x.dtype``.
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
        meta["probe"] = _Probe(dims, dt, (min_value, max_value), seed)
    handle = record(Placeholder(), (), value=value, custom_name=custom_name, meta=meta)
    assert isinstance(handle, SymbolicArray)
    return handle


def CustomInput(value: Any, *, custom_name: str | None = None) -> SymbolicArray:  # noqa: N802
    """A placeholder around an example array: record on small data, replay on large.

    A model built on it checks the rank and the dtype of its input as
    :func:`Input` does, so it runs on arrays of any size, dask arrays included.
    Sizes read while recording (``x.shape``, ``x.size``, ``len(x)``, iterating,
    also on values computed from it) are the example's, and a model built on it
    then requires the example's full shape; likewise the exact dtype once
    ``x.dtype`` was read. Declare varying sizes with :func:`Input`, or record
    them with ``np.shape(x)``.

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
        >>> fixed = symgraph.SymbolicModel(x, x / len(x))  # reads the example's size
        >>> fixed(np.ones(6))
        Traceback (most recent call last):
        ...
        symgraph.InputError: Input_1: expected an array of shape (4,), the example's, got an array of shape (6,): ...
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
