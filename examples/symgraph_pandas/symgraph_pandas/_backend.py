"""The pandas backend: which values it handles, how summaries show them, how inputs are checked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from symgraph.plugin import Backend, escape
from symgraph_pandas._checks import FrameCheck, SeriesCheck, dtype_kind, label_text
from symgraph_pandas._handle import SymbolicPandas

__all__ = ["BACKEND", "GROUPED_TYPES", "PandasBackend", "describe_pandas"]

try:  # pandas >= 2.1 names them publicly
    from pandas.api.typing import (
        DataFrameGroupBy,
        Expanding,
        ExponentialMovingWindow,
        Resampler,
        Rolling,
        SeriesGroupBy,
        Window,
    )
except ImportError:  # pragma: no cover - pandas 2.0
    from pandas.core.groupby import DataFrameGroupBy, SeriesGroupBy
    from pandas.core.resample import Resampler
    from pandas.core.window import Expanding, ExponentialMovingWindow, Rolling, Window

#: The intermediate objects of grouped and windowed computations; their methods are recorded too.
GROUPED_TYPES: tuple[type, ...] = (
    DataFrameGroupBy,
    SeriesGroupBy,
    Resampler,
    Rolling,
    Window,
    Expanding,
    ExponentialMovingWindow,
)

# Summaries put one line per step: a wide frame must not make a line of thousands of characters.
WIDTH = 60


def describe_pandas(value: Any) -> str:
    """Summary text: the columns and dtypes of a frame, cut to about 60 characters; a series' name and dtype.

    Example:
        >>> describe_pandas(pd.DataFrame({"a": [1], "b": [0.5]}))
        "DataFrame['a': int64, 'b': float64]"
        >>> describe_pandas(pd.DataFrame({f"c{i}": [i] for i in range(200)}))
        "DataFrame['c0': int64, 'c1': int64, 'c2': int64, 'c3': int64, ... 196 more]"
        >>> describe_pandas(pd.Series([1.0], name="price")), describe_pandas(pd.Index([1, 2]))
        ("Series['price': float64]", 'Index[int64]')
    """
    if isinstance(value, pd.DataFrame):
        parts: list[str] = []
        length = 0
        for i, (label, dtype) in enumerate(value.dtypes.items()):
            part = f"{label_text(label)}: {escape(str(dtype), 30)}"
            if length + len(part) > WIDTH:
                parts.append(f"... {len(value.columns) - i} more")
                break
            parts.append(part)
            length += len(part) + 2
        return f"DataFrame[{', '.join(parts)}]"
    if isinstance(value, pd.Series):
        name = "" if value.name is None else f"{label_text(value.name)}: "
        return f"Series[{name}{escape(str(value.dtype), 30)}]"
    if isinstance(value, pd.Index):
        return f"{type(value).__name__}[{escape(str(value.dtype), 30)}]"
    return type(value).__name__


class PandasBackend(Backend):
    """Registers :class:`SymbolicPandas` for frames, series, indexes, groupbys and windows.

    Example:
        >>> backend = PandasBackend()
        >>> backend.describe(pd.Series([1, 2]))
        'Series[int64]'
        >>> backend.input_checker(pd.DataFrame({"a": [1.0]}), "df").columns
        (('a', 'float', 'float64'),)
    """

    name = "pandas"
    types = (pd.DataFrame, pd.Series, pd.Index, *GROUPED_TYPES)
    symbolic_class = SymbolicPandas

    def describe(self, value: Any) -> str:
        """The frame's columns and dtypes, bounded; see :func:`describe_pandas`."""
        return describe_pandas(value)

    def input_checker(self, node_value: Any, name: str) -> Callable[[Any], None] | None:
        """A :class:`FrameCheck` for frames, a :class:`SeriesCheck` for series; nothing for the rest."""
        if isinstance(node_value, pd.DataFrame):
            return FrameCheck.of(node_value, name)
        if isinstance(node_value, pd.Series):
            return SeriesCheck(name, dtype_kind(node_value.dtype), str(node_value.dtype))
        return None


BACKEND = PandasBackend()
