"""Issue 12, items 9-11: free input sizes, dtype and device checks, BatchNorm and lazy layers at build time.

Every test compares with a hand-written ``nn.Module`` (or the same modules run
eagerly) on new inputs, or with an exact error message.
"""

from __future__ import annotations

import copy
import pickle
import types

import pytest
import torch
from torch import nn

import symgraph
from symgraph_torch import Input, SymbolicModel
from symgraph_torch._tensor import EXAMPLE_BATCH, ShapeCheck


def _known_sizes_hold(reported: tuple[int | None, ...], actual: torch.Size) -> None:
    assert len(reported) == len(actual), (reported, actual)
    for axis, size in enumerate(reported):
        assert size is None or size == actual[axis], f"reported {reported}, eager gave {tuple(actual)}"


# -- item 9: free sizes besides the batch ---------------------------------------------------------


def _image_net() -> tuple[SymbolicModel, nn.Module]:
    torch.manual_seed(0)
    images = Input((3, None, None))
    conv1 = nn.Conv2d(images.C, 8, 3, padding=1)
    pool = nn.MaxPool2d(2)
    conv2 = nn.Conv2d(8, 16, 3, stride=2)
    head_pool = nn.AdaptiveAvgPool2d(1)
    x = head_pool(conv2(pool(conv1(images).relu())))
    x = torch.flatten(x, 1)
    assert x.shape == (None, 16)
    head = nn.Linear(x.features, 5)
    model = SymbolicModel(images, head(x))
    oracle = nn.Sequential(conv1, nn.ReLU(), pool, conv2, head_pool, nn.Flatten(), head)
    return model, oracle


def test_images_of_any_size_run_as_the_hand_written_module():
    model, oracle = _image_net()
    assert model.input_shape == (None, 3, None, None)
    assert model.output_shape == (None, 5)
    for size in ((9, 9), (13, 20), (32, 32)):
        data = torch.rand(2, 3, *size)
        assert torch.equal(model(data), oracle(data))
    with pytest.raises(symgraph.InputError, match=r"^Input_1 expects a tensor of shape \(None, 3, None, None\) "):
        model(torch.rand(2, 4, 9, 9))


@pytest.mark.parametrize(
    "step",
    [
        lambda x: nn.Conv2d(3, 4, 3)(x),
        lambda x: nn.Conv2d(3, 4, 5, stride=3, padding=1)(x),
        lambda x: nn.MaxPool2d(2)(x),
        lambda x: nn.MaxPool2d(4, ceil_mode=True)(x),
        lambda x: nn.AdaptiveAvgPool2d((2, 3))(x),
        lambda x: x.flatten(2),
        lambda x: x.flatten(1),
        lambda x: x.sum((2, 3)),
        lambda x: x.mean(-1, keepdim=True),
        lambda x: x[:, :, :4],
        lambda x: x.transpose(0, 2),
        lambda x: torch.cat([x, x], dim=3),
    ],
)
def test_reported_sizes_hold_for_every_size_tried(step):
    images = Input((3, None, None))
    reported = step(images).shape
    for batch, height, width in ((1, 4, 4), (3, 7, 11), (2, 16, 16), (5, 33, 40), (2, 64, 8)):
        _known_sizes_hold(reported, step(torch.rand(batch, 3, height, width)).shape)


def test_a_step_that_fails_on_other_sizes_reports_no_size():
    images = Input((3, None, None))
    folded = images.view(-1, 3 * 16 * 16)  # fits the 16x16 example only
    assert folded.shape == (None, None)
    assert images.v.shape == (EXAMPLE_BATCH, 3, 16, 16)


def test_folding_an_unknown_batch_into_a_size_is_not_reported_as_known():
    x = Input((3, 4))
    folded = x.view(-1, 4)
    assert folded.shape == (None, 4)
    assert x[0].shape == (3, 4) and (x * 2).shape == (None, 3, 4)
    model = SymbolicModel(x, folded)
    data = torch.rand(5, 3, 4)
    assert torch.equal(model(data), data.view(-1, 4))


def test_example_shape_sets_the_example_sizes():
    images = Input((3, None, None), example_shape=(3, 40, 30))
    assert images.v.shape == (EXAMPLE_BATCH, 3, 40, 30) and images.shape == (None, 3, None, None)
    with pytest.raises(ValueError, match=r"example_shape \(4, 40, 30\) must have the sizes of \(3, None, None\)"):
        Input((3, None, None), example_shape=(4, 40, 30))


def test_time_major_sequences_and_layer_states_declare_where_the_batch_is():
    torch.manual_seed(1)
    sequence = Input((None, 8), batch_dim=1)
    state = Input((2, 16), batch_dim=1)
    assert sequence.shape == (None, None, 8) and state.shape == (2, None, 16)
    gru = nn.GRU(8, 16, num_layers=2)
    out, last = gru(sequence, state)
    assert out.shape == (None, None, 16) and last.shape == (2, None, 16)
    model = SymbolicModel((sequence, state), (out, last))
    for steps, batch in ((5, 3), (1, 7)):
        data, h0 = torch.rand(steps, batch, 8), torch.rand(2, batch, 16)
        got, expected = model(data, h0), gru(data, h0)
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    with pytest.raises(
        symgraph.InputError, match=r"^Input_2 expects a tensor of shape \(2, None, 16\) .*got \(3, 4, 16\)"
    ):
        model(torch.rand(5, 4, 8), torch.rand(3, 4, 16))


def test_batch_shape_may_mark_any_size_free():
    sequence = Input(batch_shape=(None, None, 8))
    assert sequence.shape == (None, None, 8)
    model = SymbolicModel(sequence, sequence.sum(0))
    data = torch.rand(6, 3, 8)
    assert model.output_shape == (None, 8) and torch.equal(model(data), data.sum(0))


# -- item 9: dtype, device and non-tensor values ------------------------------------------------


def _linear_model() -> tuple[SymbolicModel, nn.Linear, list[str]]:
    x = Input((4,))
    layer = nn.Linear(4, 2)
    ran: list[str] = []
    layer.register_forward_pre_hook(lambda module, args: ran.append("ran"))
    model = SymbolicModel(x, layer(x))
    ran.clear()
    return model, layer, ran


def test_a_dtype_eager_torch_refuses_is_refused_naming_the_input_before_any_layer():
    model, layer, ran = _linear_model()
    for dtype in (torch.float64, torch.float16, torch.int64):
        data = torch.ones(3, 4, dtype=dtype)
        with pytest.raises(RuntimeError):
            layer._call_impl(data)  # the oracle: eager torch raises deep inside F.linear
        ran.clear()
        with pytest.raises(
            symgraph.InputError, match=rf"^Input_1 expects a tensor of dtype torch.float32, got {dtype}; use .to"
        ):
            model(data)
        assert ran == []


def test_the_expected_dtype_follows_the_model_conversions():
    x = Input((4,))
    layer = nn.Linear(4, 2)
    model = SymbolicModel(x, layer(x))
    model.double()
    data = torch.rand(3, 4, dtype=torch.float64)
    assert torch.equal(model(data), layer(data))
    with pytest.raises(symgraph.InputError, match=r"expects a tensor of dtype torch.float64, got torch.float32"):
        model(data.float())
    restored = pickle.loads(pickle.dumps(model))
    assert torch.equal(restored(data), layer(data))
    restored.float()
    assert torch.equal(restored(data.float()), copy.deepcopy(layer).float()(data.float()))
    with pytest.raises(symgraph.InputError, match=r"expects a tensor of dtype torch.float32, got torch.float64"):
        restored(data)


def test_integer_inputs_keep_their_dtype_when_the_model_is_halved():
    torch.manual_seed(2)
    tokens = Input((5,), dtype=torch.int64, max_value=9)
    embedding = nn.Embedding(10, 3)
    model = SymbolicModel(tokens, embedding(tokens))
    model.half()
    ids = torch.randint(0, 10, (2, 5))
    assert torch.equal(model(ids), embedding(ids))
    with pytest.raises(symgraph.InputError, match=r"expects a tensor of dtype torch.int64, got torch.float16"):
        model(ids.half())


def test_a_tensor_on_another_device_is_refused():
    model, _, ran = _linear_model()
    with pytest.raises(symgraph.InputError, match=r"^Input_1 expects a tensor on device cpu, got one on meta; "):
        model(torch.ones(3, 4, device="meta"))
    assert ran == []


def test_the_expected_device_follows_the_anchor():
    # No GPU here: a stand-in for a parameter that model.cuda() moved in place.
    anchor = types.SimpleNamespace(dtype=torch.float32, device=torch.device("cpu"))
    check = ShapeCheck("x", (None, 4), dtype=torch.float32, device=torch.device("cpu"), anchor=anchor)  # type: ignore[arg-type]
    check(torch.ones(2, 4))
    anchor.device = torch.device("meta")
    check(torch.ones(2, 4, device="meta"))
    with pytest.raises(symgraph.InputError, match=r"^x expects a tensor on device meta, got one on cpu"):
        check(torch.ones(2, 4))


@pytest.mark.parametrize(
    "how", ["load_state_dict(assign=True)", "new parameter, then .double()", "weight_norm, then .double()"]
)
def test_the_expected_dtype_follows_parameters_replaced_after_building(how):
    # Found by a user program: the check followed the parameter object seen at build,
    # so a model whose parameters were replaced refused inputs the layers accept.
    torch.manual_seed(0)
    layer = nn.Linear(4, 2)
    x = Input((4,))
    model = SymbolicModel(x, layer(x))
    oracle = copy.deepcopy(layer)
    if how.startswith("load"):
        state = {k: v.double() for k, v in model.state_dict().items()}
        model.load_state_dict(state, assign=True)
        oracle.load_state_dict({k.split(".", 1)[1]: v for k, v in state.items()}, assign=True)
    elif how.startswith("new"):
        layer.weight = nn.Parameter(layer.weight.detach().clone())
        oracle.weight = nn.Parameter(oracle.weight.detach().clone())
        model.double()
        oracle.double()
    else:
        # weight_norm moves the weight out of _parameters, below the layer.
        for each in (layer, oracle):
            nn.utils.parametrizations.weight_norm(each)
        model.double()
        oracle.double()
    data = torch.randn(3, 4, dtype=torch.float64)
    assert torch.equal(model(data), oracle(data))
    with pytest.raises(
        symgraph.InputError, match=r"^Input_1 expects a tensor of dtype torch.float64, got torch.float32"
    ):
        model(data.float())


def test_a_model_built_on_meta_fixes_no_device():
    with torch.device("meta"):
        x = Input((3,))
        model = SymbolicModel(x, x * 2)
    assert torch.equal(model(torch.ones(2, 3)), torch.full((2, 3), 2.0))


def test_a_value_that_is_not_a_tensor_is_an_input_error_naming_the_input():
    model, _, ran = _linear_model()
    for value in ([[0.0] * 4], 3.0, None):
        with pytest.raises(symgraph.InputError, match=r"^Input_1 expects a torch.Tensor of shape \(None, 4\), got "):
            model(value)
        with pytest.raises(TypeError):  # still a TypeError, as before
            model(value)
    assert ran == []


# -- item 10: BatchNorm in training mode ----------------------------------------------------------


def _fresh_statistics(norm: nn.modules.batchnorm._BatchNorm) -> bool:
    assert norm.running_mean is not None and norm.running_var is not None and norm.num_batches_tracked is not None
    return bool(
        (norm.running_mean == 0).all() and (norm.running_var == 1).all() and norm.num_batches_tracked.item() == 0
    )


def test_the_example_batch_has_several_examples():
    x = Input((3,))
    assert x.v.shape == (EXAMPLE_BATCH, 3) and EXAMPLE_BATCH > 1 and x.shape == (None, 3)


def test_linear_then_batchnorm1d_builds_in_training_mode_and_matches_by_hand():
    torch.manual_seed(3)
    x = Input((4,))
    linear, norm = nn.Linear(4, 8), nn.BatchNorm1d(8)
    out = norm(linear(x))
    assert out.shape == (None, 8) and _fresh_statistics(norm)
    model = SymbolicModel(x, out)
    oracle = copy.deepcopy(nn.Sequential(linear, norm))
    data = torch.rand(6, 4)
    assert torch.equal(model(data), oracle(data))
    assert torch.equal(norm.running_mean, oracle[1].running_mean) and norm.num_batches_tracked.item() == 1


def test_batchnorm_on_one_by_one_maps_builds():
    torch.manual_seed(4)
    images = Input((3, 8, 8))
    conv, pool, norm = nn.Conv2d(3, 5, 3), nn.AdaptiveAvgPool2d(1), nn.BatchNorm2d(5)
    out = norm(pool(conv(images)))
    assert out.shape == (None, 5, 1, 1) and _fresh_statistics(norm)
    model = SymbolicModel(images, out)
    oracle = copy.deepcopy(nn.Sequential(conv, pool, norm))
    data = torch.rand(4, 3, 8, 8)
    assert torch.equal(model(data), oracle(data))


# -- item 11: lazy layers -------------------------------------------------------------------------


def test_lazy_batchnorm_builds_with_fresh_statistics():
    images = Input((3, 8, 8))
    norm = nn.LazyBatchNorm2d()
    out = norm(nn.Conv2d(3, 4, 3)(images))
    assert out.shape == (None, 4, 6, 6)
    assert type(norm) is nn.BatchNorm2d and _fresh_statistics(norm)


def _copy_weights(source: nn.Module, target: nn.Module) -> None:
    # The same tensors in the same order: lazy layers became their normal classes.
    source_state, target_state = source.state_dict(), target.state_dict()
    assert [v.shape for v in source_state.values()] == [v.shape for v in target_state.values()]
    target.load_state_dict(dict(zip(target_state, source_state.values(), strict=True)))


def _same_in_both_modes(model: nn.Module, oracle: nn.Module, data: torch.Tensor) -> None:
    assert torch.allclose(model(data), oracle(data), rtol=1e-5, atol=1e-6)  # training mode
    for got, expected in zip(model.buffers(), oracle.buffers(), strict=True):
        assert torch.allclose(got, expected)
    model.eval(), oracle.eval()
    assert torch.allclose(model(data), oracle(data), rtol=1e-5, atol=1e-6)


def test_torchx_sequential_example_with_lazy_layers_matches_by_hand():
    images = Input((3, 32, 32))
    x = images
    for layer in (
        nn.LazyConv2d(20, kernel_size=5, stride=2, padding=1),
        nn.ReLU(),
        nn.LazyConv2d(30, kernel_size=7),
        nn.LazyBatchNorm2d(),
        nn.ReLU(),
        nn.LazyConv2d(40, kernel_size=3),
        nn.LazyBatchNorm2d(),
        nn.ReLU(),
        nn.Flatten(),
        nn.LazyLinear(80),
        nn.ReLU(),
        nn.LazyLinear(10),
    ):
        x = layer(x)
    model = SymbolicModel(images, x)
    assert model.output_shape == (None, 10)
    by_hand = nn.Sequential(
        nn.Conv2d(3, 20, kernel_size=5, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(20, 30, kernel_size=7),
        nn.BatchNorm2d(30),
        nn.ReLU(),
        nn.Conv2d(30, 40, kernel_size=3),
        nn.BatchNorm2d(40),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(1960, 80),
        nn.ReLU(),
        nn.Linear(80, 10),
    )
    _copy_weights(model, by_hand)
    _same_in_both_modes(model, by_hand, torch.randn(8, 3, 32, 32))


class _Diamond(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=5, stride=2)
        self.conv2_1 = nn.Conv2d(10, 30, kernel_size=7, padding=2)
        self.conv2_2 = nn.Conv2d(10, 30, kernel_size=5, padding=1)
        self.fc1 = nn.Linear(4320, 80)
        self.fc2 = nn.Linear(80, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = self.conv2_1(x) * self.conv2_2(x)
        return self.fc2(self.fc1(x.view(x.size(0), -1)))


def test_torchx_functional_example_with_lazy_layers_matches_by_hand():
    images = Input(batch_shape=(8, 3, 32, 32))
    x = nn.LazyConv2d(10, kernel_size=5, stride=2)(images)
    x = nn.LazyConv2d(30, kernel_size=7, padding=2)(x) * nn.LazyConv2d(30, kernel_size=5, padding=1)(x)
    x = nn.LazyLinear(10)(nn.LazyLinear(80)(x.flatten(1)))
    model = SymbolicModel(images, x)
    assert model.output_shape == (8, 10)
    by_hand = _Diamond()
    _copy_weights(model, by_hand)
    _same_in_both_modes(model, by_hand, torch.randn(8, 3, 32, 32))


def test_reading_a_shape_does_not_run_the_user_s_functions_again() -> None:
    calls: list[tuple[int, ...]] = []

    def crop(images: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(images.shape))  # a side effect, as a user's function may have
        return images[..., 1:, 1:]

    x = Input((3, None, None))
    cropped = symgraph.add_to_graph(crop, x)
    assert len(calls) == 1  # recorded once, on the example
    # Without a second run, nothing tells which sizes of the user's result follow the
    # input's, so none is shown as known; torch's own steps downstream are probed.
    assert cropped.shape == (None, None, None, None)
    pooled = nn.AdaptiveAvgPool2d(1)(cropped)
    assert pooled.shape == (None, None, 1, 1)
    model = SymbolicModel(x, pooled)
    assert len(calls) == 1  # neither shapes nor the build ran it again
    data = torch.rand(2, 3, 7, 9)
    assert torch.equal(model(data), nn.AdaptiveAvgPool2d(1)(crop(data)))
