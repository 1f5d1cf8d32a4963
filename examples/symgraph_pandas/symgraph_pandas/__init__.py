"""symgraph_pandas: record a pandas pipeline once, replay it on new frames.

A third-party symgraph plugin: symgraph loads it through its ``symgraph.backends``
entry point the first time a pandas value is wrapped, so importing it is never
needed. Importing it registers the backend and the codecs at once.

Example:
    >>> import pandas as pd
    >>> import symgraph
    >>> df = symgraph.CustomInput(pd.DataFrame({"g": ["x", "y"], "v": [1, 2]}))
    >>> totals = df[df["v"] > 1].groupby("g")["v"].sum()
    >>> model = symgraph.SymbolicModel(df, totals)
    >>> model(pd.DataFrame({"g": ["x", "x", "y"], "v": [5, 7, 1]})).to_dict()
    {'x': 12}
"""

from symgraph.plugin import register_backend, register_internal_package
from symgraph_pandas._backend import BACKEND, GROUPED_TYPES, PandasBackend, describe_pandas
from symgraph_pandas._checks import FrameCheck, SeriesCheck, dtype_kind
from symgraph_pandas._handle import ACCESSORS, AccessorCall, SymbolicMethod, SymbolicPandas, emit_accessor_call
from symgraph_pandas._saving import register_codecs

# Steps are located at the user's line that recorded them, never at this package's own frames.
register_internal_package("symgraph_pandas")
register_backend(BACKEND)
register_codecs()

__all__ = [
    "ACCESSORS",
    "BACKEND",
    "GROUPED_TYPES",
    "AccessorCall",
    "FrameCheck",
    "PandasBackend",
    "SeriesCheck",
    "SymbolicMethod",
    "SymbolicPandas",
    "describe_pandas",
    "dtype_kind",
    "emit_accessor_call",
    "register_codecs",
]
