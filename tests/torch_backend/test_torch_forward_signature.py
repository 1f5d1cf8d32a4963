"""Issue 12 item 4: ``forward`` has one named parameter per input.

Oracles: a hand-written ``nn.Module`` holding the same layers, run eagerly.
"""

from __future__ import annotations

import copy
import inspect
import io
import pickle

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from symgraph_torch import Input, SymbolicModel  # noqa: E402


class Eager(nn.Module):
    def __init__(self, first: nn.Module, second: nn.Module) -> None:
        super().__init__()
        self.first, self.second = first, second

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.first(x))
        return self.second(torch.cat([h, h * 2 + 1], dim=1))


def build() -> tuple[SymbolicModel, Eager]:
    first, second = nn.Linear(4, 3), nn.Linear(6, 2)
    x = Input((4,))
    h = F.relu(first(x))
    return SymbolicModel(x, second(torch.cat([h, h * 2 + 1], dim=1))), Eager(first, second)


def test_positional_inputs_are_named_parameters():
    model, oracle = build()
    assert str(inspect.signature(model.forward)) == "(Input_1)"
    data = torch.rand(5, 4)
    assert torch.equal(model(Input_1=data), oracle(data))


def test_dict_inputs_are_keyword_only_parameters():
    a, b = Input((3,)), Input((2,))
    model = SymbolicModel({"left": a, "right": b}, torch.cat([a, b], 1))
    assert str(inspect.signature(model.forward)) == "(*, left, right)"
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'right'"):
        model(left=torch.rand(2, 3))


def test_keys_that_are_not_parameter_names_keep_the_generic_forward():
    a = Input((3,))
    model = SymbolicModel({"my-key": a, "class": a + 1}, a * 2)
    assert str(inspect.signature(model.forward)) == "(*args: 'Any', **kwargs: 'Any') -> 'Any'"
    data = torch.rand(2, 3)
    assert torch.equal(model(**{"my-key": data, "class": data + 1}), data * 2)


def test_export_with_a_dynamic_batch():
    model, oracle = build()
    batch = torch.export.Dim("batch")
    exported = torch.export.export(model, (torch.rand(5, 4),), dynamic_shapes=({0: batch},))
    for n in (3, 7):
        data = torch.rand(n, 4)
        torch.testing.assert_close(exported.module()(data), oracle(data))


def test_fx_symbolic_trace_matches_eager():
    model, oracle = build()
    traced = torch.fx.symbolic_trace(model)
    assert [n.op for n in traced.graph.nodes].count("call_module") == 2
    data = torch.rand(5, 4)
    assert torch.equal(traced(data), oracle(data))


def test_fx_feature_extraction_returns_an_intermediate_value():
    # What torchvision's create_feature_extractor does: trace, then return a node's value.
    model, oracle = build()
    traced = torch.fx.symbolic_trace(model)
    relu = next(n for n in traced.graph.nodes if n.target is F.relu)
    output = next(n for n in traced.graph.nodes if n.op == "output")
    output.args = ((relu,),)
    traced.recompile()
    data = torch.rand(5, 4)
    assert torch.equal(traced(data)[0], F.relu(oracle.first(data)))


def test_onnx_export_with_dynamic_axes(tmp_path):
    pytest.importorskip("onnx", reason="onnx is not installed")
    model, _ = build()
    torch.onnx.export(model, (torch.rand(5, 4),), str(tmp_path / "m.onnx"), dynamic_axes={"Input_1": {0: "batch"}})
    assert (tmp_path / "m.onnx").stat().st_size > 0


@pytest.mark.parametrize(
    "roundtrip",
    [
        lambda m: pickle.loads(pickle.dumps(m)),
        copy.deepcopy,
        lambda m: _torch_roundtrip(m),
        lambda m: m.detach_from_graph(),
    ],
    ids=["pickle", "deepcopy", "torch.save", "detach"],
)
def test_copies_keep_the_signature(roundtrip):
    model, oracle = build()
    clone = roundtrip(model)
    assert str(inspect.signature(clone.forward)) == "(Input_1)"
    data = torch.rand(5, 4)
    assert torch.equal(clone(data), oracle(data))


def _torch_roundtrip(model):
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


def test_nested_model_skips_its_checks_only_inside_the_enclosing_replay():
    conv = nn.Conv2d(1, 1, 3, padding=1)
    y = Input((1, 4, 4))
    inner = SymbolicModel(y, conv(y))
    z = Input((1, 8, 8))
    outer = SymbolicModel(z, inner(z))
    data = torch.rand(2, 1, 8, 8)
    assert torch.equal(outer(data), conv(data))
    with pytest.raises(ValueError, match=r"Input_1 expects a tensor of shape \(None, 1, 4, 4\)"):
        inner(data)


def test_failing_replay_names_the_step_and_line():
    x = Input((4,))
    model = SymbolicModel(x, x.reshape(-1, 2, 2), check_inputs=False)
    with pytest.raises(RuntimeError, match="is invalid for input of size 15") as info:
        model(torch.rand(3, 5))
    (note,) = info.value.__notes__
    assert note.startswith("symgraph: step 'wrap(reshape)_1', recorded at ")
    assert "test_torch_forward_signature.py:" in note


def test_fx_traces_tensor_methods_as_a_hand_written_forward_has_them() -> None:
    torch.manual_seed(0)
    conv, head = nn.Conv2d(3, 4, 3), nn.Linear(4 * 6 * 6, 2)
    x = Input((3, 8, 8))
    model = SymbolicModel(x, head(conv(x).relu().flatten(1)))

    class Written(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.Conv2d_1, self.Linear_1 = conv, head

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.Linear_1(self.Conv2d_1(x).relu().flatten(1))

    traced, by_hand = torch.fx.symbolic_trace(model), torch.fx.symbolic_trace(Written())
    shape = [(n.op, n.target) for n in by_hand.graph.nodes if n.op != "placeholder"]
    assert [(n.op, n.target) for n in traced.graph.nodes if n.op != "placeholder"] == shape
    data = torch.rand(5, 3, 8, 8)
    assert torch.equal(traced(data), Written()(data))
