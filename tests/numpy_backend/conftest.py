"""Shared helpers of the numpy tier."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

np = pytest.importorskip("numpy")

import symgraph  # noqa: E402


def assert_same(actual: Any, expected: Any) -> None:
    """Equal structure, array types, dtypes and values (NaNs equal)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and actual.keys() == expected.keys()
        for key in expected:
            assert_same(actual[key], expected[key])
    elif isinstance(expected, (tuple, list)):
        assert type(actual) is type(expected) and len(actual) == len(expected)
        for a, e in zip(actual, expected, strict=True):
            assert_same(a, e)
    else:
        assert type(actual) is type(expected), (type(actual), type(expected))
        assert np.result_type(actual) == np.result_type(expected)
        np.testing.assert_array_equal(actual, expected)


def check_pipeline(pipeline: Callable[..., Any], symbolic: tuple[Any, ...], *datasets: tuple[Any, ...]) -> Any:
    """Record ``pipeline`` on ``symbolic`` inputs; replay and interpreter equal eager numpy on each dataset."""
    model = symgraph.SymbolicModel(symbolic, pipeline(*symbolic))
    for data in datasets:
        expected = pipeline(*data)
        assert_same(model(*data), expected)
        assert_same(model.interpret(*data), expected)
    return model
