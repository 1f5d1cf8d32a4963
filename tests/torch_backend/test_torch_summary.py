"""Torch-specific behaviour of the thin plugin: shapes and parameter counts in summaries."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import symgraph  # noqa: E402


def test_summary_shows_shapes_and_counts_module_parameters():
    import symgraph_torch

    torch.manual_seed(0)
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
