"""Input checks: a model built on a frame wants its columns, each with values of the same kind."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, Self

import pandas as pd

from symgraph import InputError
from symgraph.plugin import describe, escape

__all__ = ["FrameCheck", "SeriesCheck", "dtype_kind", "label_text"]


def dtype_kind(dtype: Any) -> str:
    """The kind of values a dtype holds; numpy's and pandas' nullable dtypes of a kind share it.

    Object columns count as ``"string"``: before pandas 3, strings are stored that way.

    Example:
        >>> [dtype_kind(d) for d in ("int64", "Int32", "float32", "bool", "object", "datetime64[ns]")]
        ['integer', 'integer', 'float', 'bool', 'string', 'datetime']
    """
    types = pd.api.types
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    for kind, test in (
        ("bool", types.is_bool_dtype),
        ("integer", types.is_integer_dtype),
        ("float", types.is_float_dtype),
        ("complex", types.is_complex_dtype),
        ("datetime", types.is_datetime64_any_dtype),
        ("timedelta", types.is_timedelta64_dtype),
        ("string", types.is_string_dtype),
        ("string", types.is_object_dtype),
    ):
        if test(dtype):
            return kind
    return str(dtype)


def label_text(label: Hashable) -> str:
    """A column label for messages and summaries: bounded, and never the label's own ``repr``.

    Example:
        >>> label_text("price"), label_text(3), label_text("x" * 50)
        ("'price'", '3', "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...'")
    """
    return repr(escape(label, 40)) if isinstance(label, str) else describe(label, 40)


class FrameCheck:
    """Rejects what is not a DataFrame with the example's columns, each holding values of the same kind.

    Extra columns and another column order are accepted, as pandas code that
    selects columns by name accepts them.

    Args:
        name: The input's name, for messages.
        columns: ``(label, kind, dtype)`` per column of the example: the kind is
            :func:`dtype_kind`'s, the dtype's name is for messages.

    Example:
        >>> check = FrameCheck("df", [("n", "integer", "int64")])
        >>> check(pd.DataFrame({"n": [1], "note": ["extra columns are fine"]}))
        >>> check(pd.DataFrame({"n": ["one"]}))
        Traceback (most recent call last):
        ...
        symgraph.InputError: input 'df': column 'n' must hold integer values (the example's dtype was int64), got str
    """

    def __init__(self, name: str, columns: Sequence[tuple[Hashable, str, str]]) -> None:
        self.name = name
        self.columns = tuple((label, kind, dtype) for label, kind, dtype in columns)

    @classmethod
    def of(cls, frame: pd.DataFrame, name: str) -> Self:
        """The check of frames like ``frame``.

        Example:
            >>> FrameCheck.of(pd.DataFrame({"a": [1]}), "df").columns
            (('a', 'integer', 'int64'),)
        """
        return cls(name, [(label, dtype_kind(d), str(d)) for label, d in frame.dtypes.items()])

    def __call__(self, value: Any) -> None:
        name = escape(self.name)
        if not isinstance(value, pd.DataFrame):
            raise InputError(f"input {name!r} expects a pandas DataFrame, got {describe(value)}")
        present = set(value.columns)
        missing = [(label, kind) for label, kind, _ in self.columns if label not in present]
        if missing:
            wanted = ", ".join(f"{label_text(label)} ({kind})" for label, kind in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise InputError(
                f"input {name!r} expects a DataFrame with column {wanted}{more}, which the frame lacks; "
                f"it has {len(value.columns)} column(s)"
            )
        dtypes = value.dtypes
        for label, kind, example in self.columns:
            got = dtypes[label]
            for dtype in got if isinstance(got, pd.Series) else (got,):  # a label may be duplicated
                if dtype_kind(dtype) != kind:
                    raise InputError(
                        f"input {name!r}: column {label_text(label)} must hold {kind} values "
                        f"(the example's dtype was {example}), got {escape(str(dtype), 60)}"
                    )


class SeriesCheck:
    """Rejects what is not a Series holding values of the example's kind.

    Example:
        >>> SeriesCheck("s", "float", "float64")(pd.Series([1, 2]))
        Traceback (most recent call last):
        ...
        symgraph.InputError: input 's' expects a Series of float values (the example's dtype was float64), got int64
    """

    def __init__(self, name: str, kind: str, dtype: str) -> None:
        self.name, self.kind, self.dtype = name, kind, dtype

    def __call__(self, value: Any) -> None:
        expects = f"input {escape(self.name)!r} expects a Series of {self.kind} values"
        if not isinstance(value, pd.Series):
            raise InputError(f"{expects}, got {describe(value)}")
        if dtype_kind(value.dtype) != self.kind:
            raise InputError(f"{expects} (the example's dtype was {self.dtype}), got {escape(str(value.dtype), 60)}")
