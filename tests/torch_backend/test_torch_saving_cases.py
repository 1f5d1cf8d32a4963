"""Torch models that ordinary code builds, saved and loaded: each case once found a difference or a refusal.

The oracle is the original model on new inputs (and its state), compared exactly.
"""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import symgraph  # noqa: E402
from symgraph_torch import Input, SymbolicModel  # noqa: E402


def round_trip(model: nn.Module, tmp_path: Path) -> nn.Module:
    return symgraph.load(symgraph.save(model, tmp_path / "model.zip"))


def test_a_nested_model_sharing_layers_with_the_outer_one_keeps_each_steps_layer(tmp_path):
    torch.manual_seed(0)
    first, second = nn.Linear(4, 4), nn.Linear(4, 4)
    i = Input((4,))
    inner = SymbolicModel(i, second(first(i)))  # inner names: first=Linear_1, second=Linear_2
    o = Input((4,))
    outer = SymbolicModel(o, first(second(o)) + inner(o))  # outer names: second=Linear_1, first=Linear_2
    loaded = round_trip(outer, tmp_path)
    x = torch.randn(3, 4)
    assert torch.equal(loaded(x), outer(x))
    # The shared weights stay shared between the outer layer and the nested one.
    assert loaded.Linear_2.weight is loaded.SymbolicModel_1.Linear_1.weight


def test_a_layer_wrapped_after_building_is_stored_with_its_wrapper(tmp_path):
    torch.manual_seed(1)
    x = Input((4,))
    model = SymbolicModel(x, nn.Linear(4, 2)(x))
    model.Linear_1 = nn.Sequential(model.Linear_1, nn.Tanh())
    loaded = round_trip(model, tmp_path)
    t = torch.randn(5, 4)
    assert torch.equal(loaded(t), model(t))
    assert list(loaded.state_dict()) == list(model.state_dict()) == ["Linear_1.0.weight", "Linear_1.0.bias"]


def test_modes_inside_layers_and_nested_models_are_kept(tmp_path):
    image = Input((3, 8, 8))
    block = nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3), nn.ReLU())
    inner = SymbolicModel(image, block(image))
    x = Input((3, 8, 8))
    outer = SymbolicModel(x, nn.Dropout(0.5)(inner(x)))
    block[1].eval()  # a frozen BatchNorm inside a block that trains
    loaded = round_trip(outer, tmp_path)
    assert [(n, m.training) for n, m in loaded.named_modules()] == [(n, m.training) for n, m in outer.named_modules()]
    t = torch.randn(2, 3, 8, 8)
    torch.manual_seed(5)
    expected = outer(t)
    torch.manual_seed(5)
    assert torch.equal(loaded(t), expected)


def test_layouts_are_kept_channels_last_and_transposed_weights(tmp_path):
    torch.manual_seed(2)
    x = Input((3, 8, 8))
    conv = SymbolicModel(x, nn.Conv2d(3, 4, 3)(x)).to(memory_format=torch.channels_last)
    loaded = round_trip(conv, tmp_path)
    assert loaded.Conv2d_1.weight.stride() == conv.Conv2d_1.weight.stride()
    t = torch.randn(2, 3, 8, 8)
    assert torch.equal(loaded(t), conv(t))

    y = Input((5,))
    linear = nn.Linear(5, 7)
    model = SymbolicModel(y, linear(y))
    linear.weight = nn.Parameter(torch.randn(5, 7).t())  # not contiguous: its transpose is
    loaded = symgraph.load(symgraph.save(model, tmp_path / "t"))
    assert loaded.Linear_1.weight.stride() == linear.weight.stride()
    assert loaded.Linear_1.weight.is_leaf and loaded.Linear_1.weight.requires_grad
    u = torch.randn(4, 5)
    assert torch.equal(loaded(u), model(u))


def test_a_sequential_of_named_layers_round_trips(tmp_path):
    x = Input((4,))
    block = nn.Sequential(collections.OrderedDict([("fc", nn.Linear(4, 3)), ("act", nn.ReLU())]))
    model = SymbolicModel(x, block(x))
    loaded = round_trip(model, tmp_path)
    assert list(loaded.state_dict()) == ["Sequential_1.fc.weight", "Sequential_1.fc.bias"]
    t = torch.randn(2, 4)
    assert torch.equal(loaded(t), model(t))


def test_from_spec_does_not_share_tensors_with_the_model_they_came_from():
    x = Input((4,))
    model = SymbolicModel(x, nn.Linear(4, 2)(x) * torch.ones(2, requires_grad=True))
    copy = SymbolicModel.from_spec(model.to_spec(), model.spec_constants())
    assert copy.Linear_1.weight.data_ptr() != model.Linear_1.weight.data_ptr()
    assert copy.constant_0.requires_grad  # a constant that takes gradients still does
    with torch.no_grad():
        copy.Linear_1.weight.add_(1.0)
    t = torch.randn(3, 4)
    assert not torch.equal(copy(t), model(t))  # changing the copy leaves the original alone


def test_a_layer_replaced_by_one_without_the_anchor_parameter_loads(tmp_path):
    x = Input((4,))
    model = SymbolicModel(x, nn.Linear(4, 2)(nn.Linear(4, 4)(x)))
    model.Linear_1 = nn.Sequential(nn.Linear(4, 4, bias=False), nn.Tanh())
    loaded = round_trip(model, tmp_path)
    t = torch.rand(3, 4)
    assert torch.equal(loaded(t), model(t))
    with pytest.raises(symgraph.InputError):
        loaded(t.double())


def test_a_plugin_executor_is_chosen_by_who_loads_not_by_the_file(tmp_path):
    torch.manual_seed(3)
    x = Input((4,))
    model = SymbolicModel(x, nn.Linear(4, 2)(x))
    spec = model.to_spec()
    spec["options"]["executor"] = "compile"  # as a model built with executor="compile" saves
    constants = model.spec_constants()
    with pytest.raises(symgraph.SpecError, match=r"executor 'compile'.*symgraph\.load\(path, executor='compile'\)"):
        SymbolicModel.from_spec(spec, constants)
    loaded = SymbolicModel.from_spec(spec, constants, executor="interpreter")
    assert loaded.executor == "interpreter"
    t = torch.randn(3, 4)
    assert torch.equal(loaded(t), model(t))


def test_an_input_of_a_dtype_safetensors_does_not_store_keeps_its_check(tmp_path):
    x = Input((3,), dtype=torch.complex64)
    model = SymbolicModel(x, x.real * 2)
    loaded = round_trip(model, tmp_path)
    t = torch.randn(2, 3, dtype=torch.complex64)
    assert torch.equal(loaded(t), t.real * 2)
    with pytest.raises(symgraph.InputError):
        loaded(t.real)  # a float tensor, refused as by the original model
    with pytest.raises(symgraph.InputError):
        model(t.real)
