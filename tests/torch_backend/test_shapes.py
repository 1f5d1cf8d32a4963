"""model_tools.infer_shapes and infer_step_shapes: shapes for other input sizes, on the meta device.

The oracle is always the real call: the same model run on real tensors of those
sizes, whose outputs' shapes infer_shapes must give, and whose error it must
raise where the model cannot take them. Every step's shape is checked against
the same layers called by hand.
"""

from __future__ import annotations

import copy
import warnings

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import symgraph  # noqa: E402
from symgraph_torch import Input, SymbolicModel, model_tools  # noqa: E402
from symgraph_torch.cuda_graphs import FakeDeviceLayer  # noqa: E402
from tests.torch_backend.conftest import summary_of  # noqa: E402


def shapes_of(value):  # type: ignore[no-untyped-def]
    """The real oracle's answer: tensors replaced by their shapes, structure kept."""
    if isinstance(value, torch.Tensor):
        return value.shape
    if isinstance(value, dict):
        return {key: shapes_of(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(shapes_of(item) for item in value)
    return value


def state_of(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.clone() for name, tensor in model.state_dict().items()}


def resnet_like() -> SymbolicModel:
    """Two residual stages (the second strided, with a projection), any image size."""
    torch.manual_seed(0)
    images = Input((3, None, None))
    x = nn.Conv2d(3, 8, 3, padding=1, bias=False)(images)
    x = nn.BatchNorm2d(8)(x)(nn.ReLU())
    x = nn.MaxPool2d(2)(x)
    for stride, width in ((1, 8), (2, 16)):
        shortcut = x if stride == 1 else nn.Conv2d(x.C, width, 1, stride=stride)(x)
        y = nn.Conv2d(x.C, width, 3, stride=stride, padding=1)(x)(nn.BatchNorm2d(width))(nn.ReLU())
        y = nn.Conv2d(width, width, 3, padding=1)(y)(nn.BatchNorm2d(width))
        x = (y + shortcut).relu()
    pooled = nn.AdaptiveAvgPool2d(1)(x)(nn.Flatten())
    return SymbolicModel(images, nn.Linear(pooled.features, 10)(pooled))


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize(
    "size", [(1, 3, 8, 8), (4, 3, 32, 32), (2, 3, 17, 40), (3, 3, 5, 9), (1, 3, 2, 2), (2, 3, 1, 1)]
)
def test_a_resnet_like_net_gives_the_shapes_of_the_real_call(size, training):
    model = resnet_like().train(training)
    before = state_of(model)
    try:
        inferred = model_tools.infer_shapes(model, size)
    except Exception as error:  # then the real call must fail the same way
        inferred = error
    assert all(torch.equal(before[name], value) for name, value in state_of(model).items())  # nothing computed
    try:
        real = model(torch.rand(size))
    except Exception as error:
        assert type(inferred) is type(error) and str(inferred) == str(error)
        assert inferred.__notes__[0] == error.__notes__[0]  # the same step named
        return
    assert type(inferred) is torch.Size and inferred == real.shape


def test_a_batch_of_one_pixel_in_training_mode_fails_as_the_real_call_does():
    model = resnet_like().train()
    with pytest.raises(ValueError, match="Expected more than 1 value per channel") as real:
        model(torch.rand(1, 3, 2, 2))
    with pytest.raises(ValueError) as inferred:
        model_tools.infer_shapes(model, (1, 3, 2, 2))
    assert str(inferred.value) == str(real.value)
    assert model_tools.infer_shapes(model.eval(), (1, 3, 2, 2)) == model(torch.rand(1, 3, 2, 2)).shape


def test_every_step_matches_the_layers_called_by_hand():
    model = resnet_like().eval()
    data = torch.rand(2, 3, 20, 12)
    steps = model_tools.infer_step_shapes(model, data.shape)
    # The summary's rows, in its order.
    names = [line.split()[1] for line in summary_of(model).splitlines()[3:] if line[:1].isdigit()]
    assert list(steps) == names
    real: dict[str, torch.Size] = {}
    hooks = [
        module.register_forward_hook(lambda module, args, out, name=name: real.__setitem__(name, out.shape))
        for name, module in model.named_children()
    ]
    logits = model(data)
    for hook in hooks:
        hook.remove()
    assert real and all(steps[name] == shape for name, shape in real.items())
    assert steps["Input_1"] == data.shape and steps["Linear_1"] == logits.shape
    assert steps["AddOpLayer_2"] == (2, 16, 5, 3)  # 20x12 pooled to 10x6, then strided to 5x3


def test_several_and_dict_outputs_keep_their_structure():
    torch.manual_seed(0)
    tokens = Input((None,), dtype=torch.int64, max_value=50)
    extra = Input((6,))
    embedded = nn.Embedding(50, 8)(tokens)
    _, (h, c) = nn.LSTM(8, 5, num_layers=2, batch_first=True)(embedded)
    pooled = torch.cat([embedded.mean(1), extra], dim=1)
    as_tuple = SymbolicModel((tokens, extra), (nn.Linear(14, 3)(pooled), h, c))
    as_dict = SymbolicModel({"tokens": tokens, "extra": extra}, {"scores": as_tuple.outputs[0], "state": h})
    for length, batch in ((7, 3), (1, 1), (30, 2)):
        ids, more = torch.randint(0, 50, (batch, length)), torch.rand(batch, 6)
        assert model_tools.infer_shapes(as_tuple, ids.shape, more.shape) == shapes_of(as_tuple(ids, more))
        assert model_tools.infer_shapes(as_tuple, ids, more) == shapes_of(as_tuple(ids, more))  # tensors: shapes taken
        inferred = model_tools.infer_shapes(as_dict, tokens=(batch, length), extra=(batch, 6))
        assert inferred == shapes_of(as_dict(tokens=ids, extra=more))
        assert list(inferred) == ["scores", "state"]


def test_a_step_returning_several_tensors_gives_their_shapes():
    steps_in = Input((None, 3), batch_dim=1)
    gru = nn.GRU(3, 4)
    sequence, state = gru(steps_in)
    model = SymbolicModel(steps_in, (sequence, state))
    data = torch.rand(11, 2, 3)
    rows = model_tools.infer_step_shapes(model, data.shape)
    real_sequence, real_state = gru(data)
    assert rows["GRU_1"] == (real_sequence.shape, real_state.shape)
    assert all(isinstance(shape, torch.Size) for shape in rows["GRU_1"])
    assert [rows["UnpackLayer_1"], rows["UnpackLayer_2"]] == [real_sequence.shape, real_state.shape]


def test_an_input_the_model_cannot_take_raises_as_the_real_call_naming_the_step():
    flat = Input((3, 8, 8))
    x = nn.Conv2d(3, 4, 3)(flat)(nn.Flatten())
    model = SymbolicModel(flat, nn.Linear(x.features, 2)(x))  # any batch, 8x8 images only
    for bad in ((2, 3, 16, 16), (2, 4, 8, 8), (2, 3, 8)):
        with pytest.raises(symgraph.InputError) as real:
            model(torch.rand(bad))
        with pytest.raises(symgraph.InputError) as inferred:
            model_tools.infer_shapes(model, bad)
        assert str(inferred.value) == str(real.value)

    free = Input((3, None, None))
    pooled = nn.MaxPool2d(2)(nn.Conv2d(3, 4, 3)(free))
    deep = SymbolicModel(free, nn.Conv2d(4, 4, 3)(pooled))  # needs at least 8x8
    assert model_tools.infer_shapes(deep, (2, 3, 8, 8)) == deep(torch.rand(2, 3, 8, 8)).shape
    with pytest.raises(RuntimeError) as real:
        deep(torch.rand(2, 3, 6, 6))
    with pytest.raises(RuntimeError) as inferred:
        model_tools.infer_shapes(deep, (2, 3, 6, 6))
    assert str(inferred.value) == str(real.value)
    assert inferred.value.__notes__[0].startswith("symgraph: step 'Conv2d_2', recorded at ")
    assert inferred.value.__notes__[0] == real.value.__notes__[0]


def test_a_step_that_needs_data_says_so():
    x = Input((4,))
    hidden = nn.Linear(4, 4)(x)
    model = SymbolicModel(x, hidden[hidden > 0].sum())
    assert model(torch.rand(3, 4)).shape == ()
    with pytest.raises(NotImplementedError) as raised:
        model_tools.infer_shapes(model, (3, 4))
    assert raised.value.__notes__[0].startswith("symgraph: step 'SliceLayer_1'")
    assert "meta tensors, which hold no data" in raised.value.__notes__[1]


class Scale(nn.Module):
    """Keeps a tensor in a plain attribute, not as a buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.full((3,), 2.0)

    def forward(self, x):  # type: ignore[no-untyped-def]
        return x * self.scale


def test_a_tensor_outside_parameters_and_buffers_is_named_as_the_cause():
    x = Input((3,))
    model = SymbolicModel(x, Scale()(x))
    assert torch.equal(model(torch.ones(4, 3)), torch.full((4, 3), 2.0))
    with pytest.raises(RuntimeError, match="expected device meta") as raised:
        model_tools.infer_shapes(model, (4, 3))
    assert raised.value.__notes__[0].startswith("symgraph: step 'Scale_1'")
    assert "register_buffer" in raised.value.__notes__[1]


def test_errors_that_depend_on_values_are_not_found_as_documented():
    # Meta tensors hold no values: positions past the embedding's 20 rows pass here
    # and fail in the real call. This pins the limit the docstring states.
    words = Input((None, 4))
    positions = nn.Embedding(20, 4)(torch.arange(words.size(1)))  # the example has 16
    model = SymbolicModel(words, words + positions)
    assert model_tools.infer_shapes(model, (2, 20, 4)) == model(torch.rand(2, 20, 4)).shape
    assert model_tools.infer_shapes(model, (2, 21, 4)) == (2, 21, 4)
    with pytest.raises(IndexError, match="index out of range"):
        model(torch.rand(2, 21, 4))


def test_nothing_is_copied_moved_or_drawn():
    model = resnet_like().train()
    parameters = {name: (p, p.data_ptr(), p.clone()) for name, p in model.named_parameters()}
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    rng = torch.get_rng_state()
    dropping = SymbolicModel(model.inputs, nn.Dropout(0.5)(model.outputs))
    assert model_tools.infer_shapes(dropping, (4, 3, 16, 16)) == (4, 10)
    assert torch.equal(torch.get_rng_state(), rng)
    for name, p in model.named_parameters():
        kept, pointer, value = parameters[name]
        assert p is kept and p.data_ptr() == pointer and torch.equal(p, value) and p.device.type == "cpu"
    assert all(torch.equal(b, buffers[name]) for name, b in model.named_buffers())
    dropping(torch.rand(4, 3, 16, 16))  # the oracle: a real call does draw and update
    assert not torch.equal(torch.get_rng_state(), rng)
    assert model.BatchNorm2d_1.num_batches_tracked.item() == 1


def test_symbolic_sizes_and_values_that_are_not_tensors():
    x = Input((None, 4))
    h = nn.Linear(4, 4)(x)
    reshaped = h.reshape((h.size(0), h.size(1) * 2, 2))
    model = SymbolicModel(x, (reshaped, h.size(1)))
    for size in ((3, 7, 4), (1, 1, 4)):
        assert model_tools.infer_shapes(model, size) == shapes_of(model(torch.rand(size)))
    steps = model_tools.infer_step_shapes(model, (3, 7, 4))
    assert steps["wrap(reshape)_1"] == (3, 14, 2) and steps["LambdaOpLayer_1"] == 14


def test_dtype_follows_the_model_and_a_tensor_gives_its_own():
    x = Input((4,))
    model = SymbolicModel(x, nn.Linear(4, 2)(x)).double()
    with pytest.raises(symgraph.InputError):
        model(torch.rand(3, 4))  # float32 is refused now
    assert model_tools.infer_shapes(model, (3, 4)) == model(torch.rand(3, 4, dtype=torch.float64)).shape
    with pytest.raises(symgraph.InputError, match=r"dtype torch.float64, got torch.float32"):
        model_tools.infer_shapes(model, torch.rand(3, 4))


def test_a_shared_layer_tied_weights_and_a_nested_model():
    encoder = nn.Linear(6, 3)
    left, right = Input((6,)), Input((6,))
    siamese = SymbolicModel((left, right), (encoder(left) - encoder(right)).norm(dim=1))
    outer_in = Input((5, 6))
    outer = SymbolicModel(outer_in, siamese(outer_in[:, 0], outer_in[:, 1]))
    tied = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 10, bias=False))
    tied[1].weight = tied[0].weight
    tokens = Input((3,), dtype=torch.int64, max_value=10)
    language = SymbolicModel(tokens, tied(tokens))
    assert model_tools.infer_shapes(siamese, (7, 6), (7, 6)) == siamese(torch.rand(7, 6), torch.rand(7, 6)).shape
    assert model_tools.infer_shapes(outer, (2, 5, 6)) == outer(torch.rand(2, 5, 6)).shape
    ids = torch.randint(0, 10, (4, 3))
    assert model_tools.infer_shapes(language, ids) == language(ids).shape
    assert tied[1].weight is tied[0].weight


def test_any_module_and_any_executor():
    plain = nn.Sequential(nn.Conv1d(2, 4, 5), nn.ReLU(), nn.Flatten())
    assert model_tools.infer_shapes(plain, (3, 2, 11)) == plain(torch.rand(3, 2, 11)).shape
    x = Input((16,))
    graphed = SymbolicModel(
        x, nn.Linear(16, 4)(x), executor="cuda_graphs", executor_options={"device_layer": FakeDeviceLayer()}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning: the plan runs through the interpreter
        assert model_tools.infer_shapes(graphed, (5, 16)) == (5, 4)
    assert graphed.executor_stats()["captures"] == 0
    detached = copy.deepcopy(graphed)  # no graph: the plan is enough
    assert model_tools.infer_step_shapes(detached, (2, 16)) == {"Input_1": (2, 16), "Linear_1": (2, 4)}


def test_a_model_built_on_the_meta_device():
    with torch.device("meta"):
        huge_in = Input((None, 50_000))
        huge = SymbolicModel(huge_in, nn.Linear(50_000, 20_000)(huge_in).relu())
    assert model_tools.infer_shapes(huge, (8, 3, 50_000)) == (8, 3, 20_000)
    small_in = Input((None, 50))  # the same layers, small enough to run for real
    small = SymbolicModel(small_in, nn.Linear(50, 20)(small_in).relu())
    assert model_tools.infer_shapes(small, (8, 3, 50)) == small(torch.rand(8, 3, 50)).shape


def test_wrong_arguments():
    x = Input((4,))
    model = SymbolicModel(x, nn.Linear(4, 2)(x))
    with pytest.raises(TypeError, match="takes 2 positional arguments but 3 were given"):  # as model(a, b)
        model_tools.infer_shapes(model, (3, 4), (3, 4))
    with pytest.raises(TypeError, match=r"needs an nn.Module, got builtin_function_or_method"):
        model_tools.infer_shapes(len, (3, 4))
    with pytest.raises(TypeError, match=r"needs a SymbolicModel, got Linear"):
        model_tools.infer_step_shapes(nn.Linear(4, 2), (3, 4))  # type: ignore[arg-type]
    with pytest.raises(symgraph.InputError, match=r"expects a torch.Tensor"):
        model_tools.infer_shapes(model, "not a shape")
