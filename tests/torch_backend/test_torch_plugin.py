"""The torch plugin registers itself and is found through its entry point."""

from __future__ import annotations

import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

import symgraph  # noqa: E402


def test_entry_point_loads_the_plugin_lazily():
    code = (
        "import sys, torch, symgraph\n"
        "assert 'symgraph_torch' not in sys.modules\n"
        "x = symgraph.CustomInput(torch.ones(2, 3))\n"
        "y = symgraph.SymbolicModel(x, x * 2 + 1)(torch.zeros(2, 3))\n"
        "print(type(x).__name__, 'symgraph_torch' in sys.modules, y.tolist())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().split(maxsplit=2) == ["SymbolicTensor", "True", "[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]"]


def test_summary_shows_shapes_and_counts_module_parameters():
    import symgraph_torch

    layer = torch.nn.Linear(3, 4)
    x = symgraph.CustomInput(torch.ones(2, 3))
    assert isinstance(x, symgraph_torch.SymbolicTensor)
    model = symgraph.SymbolicModel(x, symgraph.add_to_graph(layer, x))
    torch.testing.assert_close(model(torch.eye(3)[:2]), layer(torch.eye(3)[:2]))
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    rows = [row.split() for row in lines[0].splitlines()[3:5]]
    assert rows == [["1", "Input_1", "(2,", "3)", "0"], ["2*", "Linear_1", "(2,", "4)", "16", "1"]]
    assert "Total params: 16" in lines[0]
