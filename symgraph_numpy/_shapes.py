"""Shapes with unknown dimensions, and the check run on a model's array inputs.

An ``Input`` with ``None`` dimensions gets two example arrays: the value that
recording computes with, where unknown dimensions have size 2, and a probe where
they have size 4. A node's shape is known where the two agree. The probe is only
computed when a shape is asked for, by running the recorded steps once more;
data-dependent sizes, such as boolean masking, differ between the two and so
come out unknown, as they should.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from symgraph import InputError
from symgraph.plugin import Node, Placeholder

__all__ = ["EXAMPLE_SIZE", "PROBE_SIZE", "ArrayCheck", "format_dims", "symbolic_shape"]

#: Size of an unknown dimension in the example value that recording computes with.
EXAMPLE_SIZE = 2
#: Its size in the probe value; a multiple, so reshapes that work on the example
#: usually work on the probe too.
PROBE_SIZE = 4

_SAME = object()  # the probe equals the example value: nothing unknown upstream
_FAILED = object()  # the recorded steps fail on the probe
_probes: weakref.WeakKeyDictionary[Node, Any] = weakref.WeakKeyDictionary()


def format_dims(dims: Sequence[int | None]) -> str:
    """A shape as users write it, ``None`` for unknown sizes.

    Example:
        >>> format_dims((None, 3)), format_dims((5,))
        ('(None, 3)', '(5,)')
    """
    return str(tuple(dims))


def _probe(node: Node) -> Any:
    # Iterative post-order over the ancestors that have no probe value yet.
    stack = [node]
    while stack:
        current = stack[-1]
        if current in _probes:
            stack.pop()
            continue
        if isinstance(current.op, Placeholder):
            _probes[current] = (current.meta or {}).get("probe", _SAME)
            stack.pop()
            continue
        missing = [p for p in current.parents if p not in _probes]
        if missing:
            stack.extend(missing)
            continue
        stack.pop()
        probes = [_probes[p] for p in current.parents]
        if all(v is _SAME for v in probes):
            _probes[current] = _SAME
        elif any(v is _FAILED for v in probes):
            _probes[current] = _FAILED
        else:
            args = [p.value if v is _SAME else v for p, v in zip(current.parents, probes, strict=True)]
            try:
                # The probe is our own second run; its warnings are not the user's.
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")
                    _probes[current] = current.op.evaluate(args)
            except Exception:
                _probes[current] = _FAILED
    return _probes[node]


def symbolic_shape(node: Node) -> tuple[int | None, ...]:
    """The shape of ``node``'s value, with ``None`` where it depends on an unknown size.

    Example:
        >>> import numpy as np
        >>> import symgraph_numpy as snp
        >>> x = snp.Input((None, 3))
        >>> symbolic_shape((x @ np.ones((3, 5))).node)
        (None, 5)
    """
    shape = tuple(np.shape(node.value))
    probe = _probe(node)
    if probe is _SAME:
        return shape
    probe_shape = None if probe is _FAILED else getattr(probe, "shape", None)
    if probe_shape is None or len(probe_shape) != len(shape):
        return (None,) * len(shape)
    return tuple(a if a == b else None for a, b in zip(shape, probe_shape, strict=True))


# Signed and unsigned integers count as one kind: a pipeline recorded on int64
# runs the same on uint8 data, but not on floats or booleans.
_KIND_GROUPS = {"i": "i", "u": "i"}
_KIND_NAMES = {
    "b": "boolean",
    "i": "integer",
    "f": "floating-point",
    "c": "complex",
    "U": "unicode string",
    "S": "byte string",
    "O": "object",
    "M": "datetime",
    "m": "timedelta",
    "V": "structured",
}


class ArrayCheck:
    """Validates the arrays passed for one model input: rank, dtype kind, known sizes.

    Any value with ``ndim``, ``shape`` and ``dtype`` passes if it fits, so dask
    arrays are checked too; a dimension whose size a dask array does not know
    yet (``nan``) is not compared. For duck arrays without a numpy dtype, build
    the model with ``check_inputs=False``.

    Args:
        name: The input's name, for messages.
        dims: The expected shape, ``None`` for sizes that may vary.
        dtype: The recorded dtype; only its kind is enforced.

    Example:
        >>> import numpy as np
        >>> check = ArrayCheck("x", (None, 3), np.dtype("float64"))
        >>> check(np.zeros((5, 3), dtype=np.float32))
        >>> check(np.zeros((5, 4)))
        Traceback (most recent call last):
        ...
        symgraph.InputError: x: expected shape (None, 3), got an array of shape (5, 4)
    """

    __slots__ = ("dims", "dtype", "kind", "known", "name")

    def __init__(self, name: str, dims: Sequence[int | None], dtype: np.dtype[Any]) -> None:
        self.name = name
        self.dims = tuple(dims)
        self.dtype = dtype
        self.kind = _KIND_GROUPS.get(dtype.kind, dtype.kind)
        self.known = tuple((axis, size) for axis, size in enumerate(self.dims) if size is not None)

    def __call__(self, value: Any) -> None:
        """Raise :class:`symgraph.InputError` naming the input if ``value`` does not fit."""
        try:
            ndim = value.ndim
            kind = value.dtype.kind
        except AttributeError:
            raise InputError(
                f"{self.name}: expected an array of shape {format_dims(self.dims)} (a numpy array or an array "
                f"with ndim and a numpy dtype), got {type(value).__name__}; build the model with "
                "check_inputs=False to pass other duck arrays"
            ) from None
        if ndim != len(self.dims):
            raise InputError(
                f"{self.name}: expected a {len(self.dims)}-d array of shape {format_dims(self.dims)}, "
                f"got a {ndim}-d array of shape {tuple(value.shape)}"
            )
        if _KIND_GROUPS.get(kind, kind) != self.kind:
            raise InputError(
                f"{self.name}: expected {_KIND_NAMES.get(self.kind, self.kind)} data (recorded with dtype "
                f"{self.dtype}), got dtype {value.dtype}"
            )
        if self.known:
            shape = value.shape
            for axis, size in self.known:
                actual = shape[axis]
                # nan: a dask array that does not know this size yet.
                if actual != size and actual == actual:
                    raise InputError(
                        f"{self.name}: expected shape {format_dims(self.dims)}, got an array of shape {tuple(shape)}"
                    )

    def __repr__(self) -> str:
        return f"ArrayCheck({self.name!r}, {format_dims(self.dims)}, {self.dtype})"
