"""The Example of every public name in the installed package runs, as the core's doctests do."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest
import symgraph_pandas

MODULES = ["symgraph_pandas", *(f"symgraph_pandas.{m.name}" for m in pkgutil.iter_modules(symgraph_pandas.__path__))]


@pytest.mark.parametrize("name", MODULES)
def test_module_examples_run(name):
    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, raise_on_error=False, verbose=False, report=True)
    assert result.attempted > 0 and result.failed == 0, f"{name}: {result}"


def test_every_public_name_has_an_example():
    missing = [name for name in symgraph_pandas.__all__ if ">>>" not in (getattr(symgraph_pandas, name).__doc__ or "")]
    # Constants carry no docstring of their own; their module documents them.
    assert sorted(missing) == ["ACCESSORS", "GROUPED_TYPES"], missing
