"""How numpy values are stored by ``symgraph.save``: arrays as ``.npy`` files, dtypes and scalars inline.

Arrays are read back with ``allow_pickle=False``, so an object array, which
only pickle can store, is refused when saving and when loading. Before an
array is read, its ``.npy`` header is checked against the file's size and the
manifest entry, so a hostile header cannot make loading allocate more than the
file holds.
"""

from __future__ import annotations

import base64
import io
import math
import re
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.lib import format as npy_format

from symgraph import SpecError
from symgraph.plugin import (
    CheckCodec,
    ConstantCodec,
    DecodeContext,
    EncodeContext,
    Files,
    ValueCodec,
    decode_value,
    encode_value,
    escape,
    register_check_codec,
    register_constant_codec,
    register_value_codec,
)
from symgraph_numpy._shapes import ArrayCheck

__all__ = ["NpyCodec", "dtype_from_spec", "dtype_to_spec"]

# An array-protocol dtype string: byte order, kind, size, and a datetime unit.
_DTYPE = re.compile(r"[<>|=]?[A-Za-z][0-9]{0,5}(\[[0-9]{0,5}[A-Za-z]{1,2}\])?")
# The largest .npy header read: numpy's own default limit.
_MAX_HEADER = 10_000


def dtype_to_spec(dtype: np.dtype[Any], ctx: EncodeContext | None = None) -> str:
    """The dtype as its array-protocol string (``"<f8"``, ``"<M8[ns]"``); structured dtypes are refused.

    Example:
        >>> dtype_to_spec(np.dtype("float32")), dtype_to_spec(np.dtype("datetime64[s]"))
        ('<f4', '<M8[s]')
    """
    if dtype.fields is not None or dtype.subdtype is not None or dtype.hasobject:
        what = f"the dtype {dtype}, which the symgraph format does not store (object and structured dtypes need pickle)"
        if ctx is not None:
            raise ctx.refuse(f"has {what}")
        raise TypeError(f"an array of {what}")
    return dtype.str


def dtype_from_spec(payload: Any, where: str) -> np.dtype[Any]:
    """The dtype an array-protocol string names; refuses object and structured dtypes.

    Example:
        >>> dtype_from_spec("<i8", "spec")
        dtype('int64')
    """
    if type(payload) is not str or not _DTYPE.fullmatch(payload):
        raise SpecError(f"{where}: expected a dtype string such as '<f8', got {escape(repr(payload))}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy deprecates some spellings ('a0'): refused, not warned
            dtype = np.dtype(payload)
    except (TypeError, ValueError, Warning):
        raise SpecError(f"{where}: {payload!r} is not a numpy dtype") from None
    if dtype.fields is not None or dtype.subdtype is not None or dtype.hasobject:
        raise SpecError(f"{where}: the dtype {payload!r} is not one the symgraph format stores")
    return dtype


def _encode_scalar(value: np.generic, ctx: EncodeContext) -> Any:
    dtype = dtype_to_spec(value.dtype, ctx)
    if value.dtype.kind in "biuf" and value.dtype.itemsize <= 8:
        item = value.item()
        if isinstance(item, float) and not math.isfinite(item):
            return [dtype, encode_value(item, ctx)]
        return [dtype, item]
    return [dtype, {"$bytes": base64.b64encode(value.tobytes()).decode("ascii")}]


def _decode_scalar(payload: Any, ctx: DecodeContext, where: str) -> np.generic:
    if type(payload) is not list or len(payload) != 2:
        raise SpecError(f"{where}: expected [dtype, value]")
    dtype = dtype_from_spec(payload[0], f"{where}[0]")
    value = decode_value(payload[1], ctx, f"{where}[1]")
    if type(value) is bytes:
        if len(value) != dtype.itemsize:
            raise SpecError(f"{where}: {len(value)} bytes for a {dtype} scalar of {dtype.itemsize}")
        scalar: np.generic = np.frombuffer(value, dtype=dtype)[0]
        return scalar
    if dtype.kind not in "biuf" or type(value) not in (bool, int, float):
        raise SpecError(f"{where}: a {dtype} scalar is stored as bytes")
    return np.array(value, dtype=dtype)[()]  # type: ignore[return-value]


class NpyCodec(ConstantCodec):
    """numpy arrays, one ``arrays/<n>.npy`` file each.

    Example:
        >>> NpyCodec().describe(np.zeros((2, 3), dtype=np.float32))
        {'dtype': '<f4', 'shape': [2, 3]}
    """

    name = "numpy"
    types = (np.ndarray,)

    def describe(self, value: Any) -> dict[str, Any]:
        return {"dtype": dtype_to_spec(value.dtype), "shape": list(value.shape)}

    def copy(self, value: Any) -> Any:
        return np.array(value, copy=True)

    def check(self, value: Any, entry: Mapping[str, Any], where: str) -> None:
        if type(value) is not np.ndarray:
            raise SpecError(f"{where}: expected a numpy array, got {type(value).__name__}")
        super().check(value, entry, where)

    def write(self, values: Mapping[str, Any]) -> dict[str, tuple[str, bytes]]:
        out: dict[str, tuple[str, bytes]] = {}
        for n, (key, array) in enumerate(values.items()):
            buffer = io.BytesIO()
            npy_format.write_array(buffer, np.asarray(array), allow_pickle=False)
            out[key] = (f"arrays/{n}.npy", buffer.getvalue())
        return out

    def read(self, entries: Mapping[str, Mapping[str, Any]], files: Files) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, entry in entries.items():
            where = f"spec.constants[{key!r}]"
            dtype = dtype_from_spec(entry.get("dtype"), f"{where}.dtype")
            shape = entry.get("shape")
            if type(shape) is not list or not all(type(n) is int and n >= 0 for n in shape) or len(shape) > 64:
                raise SpecError(f"{where}.shape: expected a list of sizes")
            name = entry["file"]
            size = files.size(name)
            expected = math.prod(shape) * dtype.itemsize
            if expected > size:
                raise SpecError(
                    f"{where}: a {dtype} array of shape {tuple(shape)} needs {expected} bytes, {name} has {size}"
                )
            stream = io.BytesIO(files.read(name, expected + _MAX_HEADER + 128))
            try:
                version = npy_format.read_magic(stream)
                if version == (1, 0):
                    header = npy_format.read_array_header_1_0(stream, max_header_size=_MAX_HEADER)
                elif version in ((2, 0), (3, 0)):
                    header = npy_format.read_array_header_2_0(stream, max_header_size=_MAX_HEADER)
                else:
                    raise ValueError(f"unknown .npy version {version}")
                file_shape, fortran, file_dtype = header
                if file_dtype.hasobject or file_dtype != dtype or list(file_shape) != shape:
                    raise ValueError(
                        f"it holds a {file_dtype} array of shape {file_shape}, the spec says {dtype} {tuple(shape)}"
                    )
                if size - stream.tell() != expected:
                    raise ValueError(
                        f"its data is {size - stream.tell()} bytes, a {dtype} {tuple(shape)} array is {expected}"
                    )
                data = np.frombuffer(stream.getbuffer(), dtype=dtype, count=math.prod(shape), offset=stream.tell())
                array = data.reshape(shape, order="F" if fortran else "C").copy()
            except SpecError:
                raise
            except (ValueError, TypeError, OSError, EOFError) as exc:
                raise SpecError(f"{where}: {name} is not a valid .npy file: {exc}") from None
            out[key] = array
        return out


def _encode_check(check: ArrayCheck, ctx: EncodeContext) -> dict[str, Any]:
    return {
        "dims": list(check.dims),
        "dtype": dtype_to_spec(check.dtype, ctx),
        "shape_read": check.shape_read,
        "dtype_read": check.dtype_read,
    }


def _decode_check(fields: dict[str, Any], name: str, ctx: DecodeContext, where: str) -> ArrayCheck:
    if set(fields) != {"dims", "dtype", "shape_read", "dtype_read"}:
        raise SpecError(f"{where}: a numpy.array check has dims, dtype, shape_read and dtype_read")
    dims = fields["dims"]
    if type(dims) is not list or not all(d is None or (type(d) is int and d >= 0) for d in dims) or len(dims) > 64:
        raise SpecError(f"{where}.dims: expected a list of sizes or nulls")
    for field in ("shape_read", "dtype_read"):
        if fields[field] is not None and type(fields[field]) is not str:
            raise SpecError(f"{where}.{field}: expected null or a str")
    return ArrayCheck(
        name,
        dims,
        dtype_from_spec(fields["dtype"], f"{where}.dtype"),
        shape_read=fields["shape_read"],
        dtype_read=fields["dtype_read"],
    )


register_value_codec(ValueCodec("$numpy.dtype", (np.dtype,), dtype_to_spec, lambda p, ctx, w: dtype_from_spec(p, w)))
register_value_codec(ValueCodec("$numpy.scalar", (np.generic,), _encode_scalar, _decode_scalar))
register_constant_codec(NpyCodec())
register_check_codec(CheckCodec("numpy.array", ArrayCheck, _encode_check, _decode_check))
