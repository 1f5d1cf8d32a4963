"""Numpy-specific behaviour of the thin plugin: shapes in summaries."""

from __future__ import annotations

import pytest

np = pytest.importorskip("numpy")

import symgraph  # noqa: E402


def test_summary_shows_shapes():
    x = symgraph.CustomInput(np.zeros((2, 5)))
    model = symgraph.SymbolicModel(x, x.sum(axis=0))
    np.testing.assert_array_equal(model(np.ones((2, 5))), np.full(5, 2.0))
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    assert "(2, 5)" in lines[0] and "(5,)" in lines[0]
