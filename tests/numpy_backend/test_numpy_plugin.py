"""The numpy plugin registers itself and is found through its entry point."""

from __future__ import annotations

import subprocess
import sys

import pytest

np = pytest.importorskip("numpy")

import symgraph  # noqa: E402


def test_entry_point_loads_the_plugin_lazily():
    code = (
        "import sys, numpy as np, symgraph\n"
        "assert 'symgraph_numpy' not in sys.modules\n"
        "x = symgraph.CustomInput(np.arange(3.0))\n"
        "y = symgraph.SymbolicModel(x, (x - 1) * x)(np.array([2.0, 3.0, 4.0]))\n"
        "print(type(x).__name__, 'symgraph_numpy' in sys.modules, y.tolist())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().split(maxsplit=2) == ["SymbolicArray", "True", "[2.0, 6.0, 12.0]"]


def test_summary_shows_shapes():
    x = symgraph.CustomInput(np.zeros((2, 5)))
    model = symgraph.SymbolicModel(x, x.sum(axis=0))
    np.testing.assert_array_equal(model(np.ones((2, 5))), np.full(5, 2.0))
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    assert "(2, 5)" in lines[0] and "(5,)" in lines[0]
