"""symgraph's backend contract, for the installed plugin: series and frames pass the whole suite."""

from __future__ import annotations

import pandas as pd
from symgraph_pandas.testing import assert_same

from symgraph.testing import BackendConformance


class TestSeriesBackend(BackendConformance):
    plugin_module = "symgraph_pandas"

    def make_value(self, rng):
        return pd.Series([rng.uniform(-5, 5) for _ in range(4)])

    def assert_equal(self, actual, expected):
        assert_same(actual, expected)

    def reduce(self, value):
        return value.sum()

    def expected_symbolic_class(self):
        from symgraph_pandas import SymbolicPandas

        return SymbolicPandas

    def make_unfit_value(self, rng):
        # The example holds floats: a series of integers is another kind.
        return pd.Series([rng.randint(0, 9) for _ in range(4)])


class TestFrameBackend(BackendConformance):
    plugin_module = "symgraph_pandas"

    def make_value(self, rng):
        # Integer labels: the suite's x[0] selects column 0, x[1:] the rows after the first.
        return pd.DataFrame({0: [rng.uniform(-5, 5) for _ in range(4)], 1: [rng.uniform(-5, 5) for _ in range(4)]})

    def assert_equal(self, actual, expected):
        assert_same(actual, expected)

    def reduce(self, value):
        return value.sum().sum()

    def expected_symbolic_class(self):
        from symgraph_pandas import SymbolicPandas

        return SymbolicPandas

    def make_unfit_value(self, rng):
        return pd.DataFrame({0: [rng.uniform(-5, 5) for _ in range(4)]})  # column 1 is missing
