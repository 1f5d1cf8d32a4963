"""What tests of pandas pipelines compare with: frames and series by pandas' own checks.

Example:
    >>> import pandas as pd
    >>> from symgraph_pandas.testing import assert_same
    >>> assert_same(pd.Series([1, 2]), pd.Series([1, 2]))
    >>> assert_same(3, 3.0)
    Traceback (most recent call last):
    ...
    AssertionError: 3 != 3.0
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["assert_same"]


def assert_same(actual: Any, expected: Any) -> None:
    """Raise ``AssertionError`` unless ``actual`` is ``expected``'s equal: same type, same values, same labels.

    Frames and series go through ``pandas.testing`` (dtypes, index and names
    included); anything else must have exactly the same type and compare equal.

    Example:
        >>> import pandas as pd
        >>> assert_same(pd.DataFrame({"a": [1]}), pd.DataFrame({"a": [1]}))
    """
    if isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(actual, expected)
    elif isinstance(expected, pd.Series):
        pd.testing.assert_series_equal(actual, expected)
    elif type(actual) is not type(expected) or actual != expected:
        raise AssertionError(f"{actual!r} != {expected!r}")
