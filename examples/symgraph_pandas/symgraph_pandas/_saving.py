"""How ``symgraph.save`` stores what the plugin adds: accessor steps and input checks.

Column labels are stored as JSON strings and integers; a frame with other labels
(tuples of a MultiIndex, timestamps) has a check that saving refuses, naming it.
"""

from __future__ import annotations

from typing import Any

from symgraph import SpecError
from symgraph.plugin import (
    CheckCodec,
    DecodeContext,
    EncodeContext,
    OpCodec,
    register_check_codec,
    register_op_codec,
)
from symgraph_pandas._checks import FrameCheck, SeriesCheck
from symgraph_pandas._handle import AccessorCall

__all__ = ["register_codecs"]


def encode_frame_check(check: FrameCheck, ctx: EncodeContext) -> dict[str, Any]:
    """The check's columns, as ``[label, kind, dtype]`` lists.

    Example:
        >>> import pandas as pd
        >>> encode_frame_check(FrameCheck.of(pd.DataFrame({"a": [1]}), "df"), EncodeContext())
        {'columns': [['a', 'integer', 'int64']]}
    """
    for label, _, _ in check.columns:
        if type(label) not in (str, int):
            raise ctx.refuse(f"has a frame with the column label {label!r}; only str and int labels are saved")
    return {"columns": [list(column) for column in check.columns]}


def decode_frame_check(fields: dict[str, Any], name: str, ctx: DecodeContext, where: str) -> FrameCheck:
    """The check of ``fields``, every column validated.

    Example:
        >>> decode_frame_check({"columns": [["a", "integer", "int64"]]}, "df", None, "spec").columns
        (('a', 'integer', 'int64'),)
    """
    columns = fields.get("columns")
    if set(fields) != {"columns"} or type(columns) is not list:
        raise SpecError(f"{where}: a pandas.frame check has a list of columns")
    for i, column in enumerate(columns):
        if (
            type(column) is not list
            or len(column) != 3
            or type(column[0]) not in (str, int)
            or not all(type(text) is str for text in column[1:])
        ):
            raise SpecError(f"{where}.columns[{i}]: expected [label, kind, dtype], a str or int label and two str")
    return FrameCheck(name, [tuple(column) for column in columns])


def encode_series_check(check: SeriesCheck, ctx: EncodeContext) -> dict[str, Any]:
    """The check's kind of values (stored as ``"values"``: ``"kind"`` names the check) and dtype."""
    return {"values": check.kind, "dtype": check.dtype}


def decode_series_check(fields: dict[str, Any], name: str, ctx: DecodeContext, where: str) -> SeriesCheck:
    """The check of ``fields``, validated.

    Example:
        >>> decode_series_check({"values": "float", "dtype": "float64"}, "s", None, "spec").kind
        'float'
    """
    if set(fields) != {"values", "dtype"} or not all(type(v) is str for v in fields.values()):
        raise SpecError(f"{where}: a pandas.series check has str values and dtype")
    return SeriesCheck(name, fields["values"], fields["dtype"])


def register_codecs() -> None:
    """Register the codecs; importing ``symgraph_pandas`` does.

    Example:
        >>> register_codecs()
    """
    register_op_codec(
        OpCodec(
            "pandas.accessor",
            AccessorCall,
            (
                ("accessor", "accessor", "str"),
                ("name", "member", "str"),
                ("call", "call", "bool"),
                ("args", "args", "templates"),
                ("kwargs", "kwargs", "template"),
            ),
            subject=True,
        )
    )
    register_check_codec(CheckCodec("pandas.frame", FrameCheck, encode_frame_check, decode_frame_check))
    register_check_codec(CheckCodec("pandas.series", SeriesCheck, encode_series_check, decode_series_check))
