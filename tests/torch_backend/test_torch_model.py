"""SymbolicModel as an nn.Module: registration, state, copying, composition, checks, training, tooling."""

from __future__ import annotations

import copy
import gc
import io
import pickle
import weakref

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import symgraph  # noqa: E402
import symgraph.plugin  # noqa: E402
from symgraph_torch import (  # noqa: E402
    DetachedSymbolicModel,
    Input,
    SymbolicModel,
    model_tools,
    optimize_module_calls,
)
from symgraph_torch._model import MissingGraphError  # noqa: E402
from tests.torch_backend.conftest import summary_of  # noqa: E402
from tests.torch_backend.test_seed_examples import toy_resnet_keras_notation  # noqa: E402


def mlp(features: int = 6) -> tuple[SymbolicModel, nn.Module, nn.Module]:
    x = Input((features,))
    first, second = nn.Linear(features, 8), nn.Linear(8, 3)
    return SymbolicModel(x, second(torch.relu(first(x)))), first, second


def reference(first: nn.Module, second: nn.Module, data: torch.Tensor) -> torch.Tensor:
    return second(torch.relu(first(data)))


# -- standard module behaviour --------------------------------------------------------------------
def test_layers_are_named_submodules():
    x = Input((4,))
    h = nn.Linear(4, 4)(x)
    h = nn.Linear(4, 4)(h, custom_name="middle")
    h = nn.ReLU()(h)
    model = SymbolicModel(x, nn.Linear(4, 2)(h))
    assert [name for name, _ in model.named_children()] == ["Linear_1", "middle", "ReLU_1", "Linear_2"]
    assert [name for name, _ in model.named_parameters()] == [
        "Linear_1.weight",
        "Linear_1.bias",
        "middle.weight",
        "middle.bias",
        "Linear_2.weight",
        "Linear_2.bias",
    ]


def test_duplicate_or_invalid_layer_names_are_refused():
    x = Input((4,))
    a = nn.Linear(4, 4)(x, custom_name="same")
    b = nn.Linear(4, 4)(a, custom_name="same")
    with pytest.raises(ValueError, match="two different layers are named 'same'"):
        SymbolicModel(x, b)
    # Dotted names make nested submodules (test_torch_faithful_model); an empty part cannot.
    with pytest.raises(ValueError, match="empty part between dots"):
        SymbolicModel(x, nn.Linear(4, 4)(x, custom_name="a..b"))
    with pytest.raises(ValueError, match="clashes with an attribute"):
        SymbolicModel(x, nn.Linear(4, 4)(x, custom_name="forward"))


def test_state_dict_round_trip_and_parameters():
    torch.manual_seed(0)
    model, first, second = mlp()
    assert {id(p) for p in model.parameters()} == {id(p) for p in (*first.parameters(), *second.parameters())}
    torch.manual_seed(1)
    other, _, _ = mlp()
    data = torch.rand(5, 6)
    assert not torch.equal(other(data), model(data))
    other.load_state_dict(model.state_dict())
    assert torch.equal(other(data), model(data))
    assert model_tools.get_parameter_count(model) == 6 * 8 + 8 + 8 * 3 + 3


def test_to_dtype_and_device_moves_layers_and_constants():
    x = Input((3,))
    scale = torch.tensor([1.0, 2.0, 3.0])
    model = SymbolicModel(x, nn.Linear(3, 3)(x) * scale)
    assert [name for name, _ in model.named_buffers()] == ["constant_0"]
    assert "constant_0" not in model.state_dict()  # part of the code, not of the state
    data = torch.rand(2, 3)
    expected = model(data).double()
    model.to(torch.float64)
    assert model.constant_0.dtype == torch.float64
    assert model.Linear_1.weight.dtype == torch.float64
    assert torch.allclose(model(data.double()), expected)
    model.to("cpu")
    assert model(data.double()).device.type == "cpu"


def test_train_and_eval_reach_the_layers():
    x = Input((50,))
    model = SymbolicModel(x, nn.Dropout(0.5)(x))
    data = torch.ones(4, 50)
    assert model.training and model.Dropout_1.training
    torch.manual_seed(0)
    assert (model(data) == 0).any()
    model.eval()
    assert not model.Dropout_1.training
    assert torch.equal(model(data), data)


def test_interpreter_agrees_with_generated_code():
    torch.manual_seed(0)
    x, y = Input((3, 8, 8)), Input((5,))
    h = nn.Conv2d(3, 4, 3)(x).flatten(1)
    h = torch.cat([h, y], dim=1)
    out = {"logits": nn.Linear(h.features, 2)(h), "mean": h.mean(1)}
    model = SymbolicModel({"image": x, "extra": y}, out)
    image, extra = torch.rand(2, 3, 8, 8), torch.rand(2, 5)
    generated, interpreted = model(image=image, extra=extra), model.interpret(image=image, extra=extra)
    assert generated.keys() == interpreted.keys() == {"logits", "mean"}
    for key in generated:
        assert torch.equal(generated[key], interpreted[key])


# -- copying and saving ---------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["pickle", "deepcopy", "torch.save"])
def test_copies_run_the_same_function_with_their_own_weights(method):
    torch.manual_seed(0)
    model, _, _ = mlp()
    data = torch.rand(4, 6)
    if method == "pickle":
        clone = pickle.loads(pickle.dumps(model))
    elif method == "deepcopy":
        clone = copy.deepcopy(model)
    else:
        buffer = io.BytesIO()
        torch.save(model, buffer)
        buffer.seek(0)
        clone = torch.load(buffer, weights_only=False)
    assert torch.equal(clone(data), model(data))
    with torch.no_grad():
        clone.Linear_1.weight.add_(1.0)
    assert not torch.equal(clone(data), model(data)), "the copy's forward must use the copy's layers"
    assert summary_of(clone) == summary_of(model)
    with pytest.raises(MissingGraphError, match="no graph"):
        clone.add_output(None)  # type: ignore[arg-type]


# -- composition ----------------------------------------------------------------------------------
def test_shared_layers_between_models_share_weights():
    shared = nn.Linear(4, 4)
    x = Input((4,))
    a = SymbolicModel(x, shared(x))
    b = SymbolicModel(x, nn.ReLU()(shared(x)))
    with torch.no_grad():
        shared.weight.fill_(0.5)
    data = torch.rand(2, 4)
    assert torch.equal(a(data), shared(data))
    assert torch.equal(b(data), torch.relu(shared(data)))
    assert a.Linear_1 is b.Linear_1 is shared


def test_one_layer_used_twice_is_registered_once_and_counted_once():
    layer = nn.Linear(4, 4)
    x = Input((4,))
    model = SymbolicModel(x, layer(layer(x)))
    assert list(model.children()) == [layer]
    assert "Total params: 20" in summary_of(model)
    data = torch.rand(3, 4)
    assert torch.equal(model(data), layer(layer(data)))


def test_nested_model_is_a_layer_and_trains_with_its_parent():
    torch.manual_seed(0)
    inner, first, second = mlp()
    x = Input((6,))
    outer = SymbolicModel(x, inner(x) + inner(x * 2))
    assert isinstance(outer.SymbolicModel_1, SymbolicModel)
    data = torch.rand(3, 6)
    expected = reference(first, second, data) + reference(first, second, data * 2)
    assert torch.allclose(outer(data), expected)
    outer(data).sum().backward()
    assert first.weight.grad is not None


def test_detached_model_lives_without_the_graph():
    torch.manual_seed(0)

    def build() -> tuple[DetachedSymbolicModel, nn.Module, nn.Module]:
        model, first, second = mlp()
        return model.detach_from_graph(), first, second

    detached, first, second = build()
    gc.collect()
    assert isinstance(detached, DetachedSymbolicModel) and not isinstance(detached, SymbolicModel)
    data = torch.rand(2, 6)
    assert torch.equal(detached(data), reference(first, second, data))
    assert detached.Linear_1 is first
    assert detached.input_shape == (None, 6) and detached.output_shape == (None, 3)
    assert not hasattr(detached, "add_output")
    assert torch.equal(pickle.loads(pickle.dumps(detached))(data), detached(data))


def test_dict_inputs_and_outputs():
    a, b = Input((3,)), Input((2,))
    joined = torch.cat([a, b], dim=1)
    model = SymbolicModel({"left": a, "right": b}, {"sum": joined.sum(1), "joined": joined})
    assert model.input_shape == {"left": (None, 3), "right": (None, 2)}
    assert model.output_shape == {"sum": (None,), "joined": (None, 5)}
    left, right = torch.rand(4, 3), torch.rand(4, 2)
    out = model(left=left, right=right)
    assert torch.equal(out["joined"], torch.cat([left, right], 1))
    assert torch.equal(out["sum"], torch.cat([left, right], 1).sum(1))
    # forward(*, left, right): Python's own message, as for a hand-written module.
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'right'"):
        model(left=left)
    model.add_output(a * 2, key="double")
    assert set(model(left=left, right=right)) == {"sum", "joined", "double"}


def test_no_trace_time_activations_are_kept():
    def build() -> tuple[SymbolicModel, list[weakref.ref[torch.Tensor]]]:
        x = Input((3, 16, 16))
        h = nn.Conv2d(3, 4, 3)(x)(nn.ReLU())
        out = nn.Linear(h.numel, 2)(h.flatten(1))
        refs = [weakref.ref(t.v) for t in (x, h, out)]
        return SymbolicModel(x, out), refs

    model, refs = build()
    gc.collect()
    assert [r() for r in refs] == [None, None, None]
    assert model(torch.rand(2, 3, 16, 16)).shape == (2, 2)
    with pytest.raises(MissingGraphError, match="no longer exists"):
        model.inputs  # noqa: B018
    assert not hasattr(model, "outputs")


def test_inputs_and_outputs_while_the_graph_lives():
    x = Input((3,))
    y = nn.Linear(3, 1)(x)
    model = SymbolicModel([x], [y])
    assert model.inputs == [x] and model.outputs == [y]


# -- input checks ---------------------------------------------------------------------------------
def test_wrong_inputs_are_refused_before_any_layer_runs():
    model, first, _ = mlp()
    ran: list[str] = []
    first.register_forward_pre_hook(lambda module, args: ran.append("first"))
    model(torch.rand(2, 6))
    assert ran == ["first"]
    ran.clear()
    with pytest.raises(ValueError, match=r"Input_1 expects a tensor of shape \(None, 6\) .*got \(2, 7\)"):
        model(torch.rand(2, 7))
    with pytest.raises(ValueError, match=r"got \(2, 6, 1\)"):
        model(torch.rand(2, 6, 1))
    with pytest.raises(TypeError, match=r"forward\(\) takes 2 positional arguments but 3 were given"):
        model(torch.rand(2, 6), torch.rand(2, 6))
    with pytest.raises(TypeError, match=r"expects a torch\.Tensor"):
        model([[0.0] * 6])
    assert ran == []
    assert model(torch.rand(9, 6)).shape == (9, 3), "the batch may have any size"


def test_input_check_can_be_switched_off():
    x = Input((3, 8, 8))
    conv = nn.Conv2d(3, 2, 3, padding=1)
    model = SymbolicModel(x, conv(x), check_inputs=False)
    bigger = torch.rand(1, 3, 16, 16)
    assert torch.equal(model(bigger), conv(bigger))
    model.check_inputs = True
    with pytest.raises(ValueError, match=r"\(None, 3, 8, 8\)"):
        model(bigger)


def test_unbatched_and_fixed_batch_inputs():
    fixed = Input((3,), batch_size=4)
    assert fixed.shape == (4, 3) and fixed.batch_size == 4
    whole = Input((2, 3), batched=False)
    model = SymbolicModel((fixed, whole), (fixed * 1, whole * 1))
    assert model(torch.rand(7, 3), torch.rand(2, 3))[0].shape == (7, 3)
    with pytest.raises(ValueError, match=r"Input_2 expects a tensor of shape \(2, 3\), got \(5, 3\)"):
        model(torch.rand(7, 3), torch.rand(5, 3))


# -- training equivalence -------------------------------------------------------------------------
class ToyResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.block1conv1 = nn.Conv2d(3, 32, 3)
        self.block1conv2 = nn.Conv2d(32, 64, 3)
        self.maxpool = nn.MaxPool2d(3)
        self.block2conv1 = nn.Conv2d(64, 64, 3, padding=1)
        self.block2conv2 = nn.Conv2d(64, 64, 3, padding=1)
        self.block3conv1 = nn.Conv2d(64, 64, 3, padding=1)
        self.block3conv2 = nn.Conv2d(64, 64, 3, padding=1)
        self.conv1 = nn.Conv2d(64, 64, 3)
        self.global_pool = nn.AvgPool2d(7)
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(64, 256)
        self.dropout = nn.Dropout(0.5)
        self.classifier = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.block1conv1(x))
        x = self.relu(self.block1conv2(x))
        block_1_output = self.maxpool(x)
        x = self.relu(self.block2conv1(block_1_output))
        x = self.relu(self.block2conv2(x))
        block_2_output = x + block_1_output
        x = self.relu(self.block3conv1(block_2_output))
        x = self.relu(self.block3conv2(x))
        block_3_output = x + block_2_output
        x = self.relu(self.conv1(block_3_output))
        x = self.global_pool(x)
        x = self.flatten(x)
        x = self.relu(self.linear(x))
        x = self.dropout(x)
        return self.classifier(x)


def train(model: nn.Module, steps: int) -> list[float]:
    generator = torch.Generator().manual_seed(123)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    torch.manual_seed(7)  # the dropout masks
    for _ in range(steps):
        images = torch.rand(8, 3, 32, 32, generator=generator)
        labels = torch.randint(0, 10, (8,), generator=generator)
        loss = nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_training_matches_a_hand_written_module_exactly():
    torch.manual_seed(0)
    symbolic, _ = toy_resnet_keras_notation()
    torch.manual_seed(0)
    by_hand = ToyResNet()
    # Same seed, same layer order: building symbolically draws nothing from the global RNG.
    assert model_tools.models_have_corresponding_parameters(symbolic, by_hand)
    symbolic_losses, hand_losses = train(symbolic, 4), train(by_hand, 4)
    assert symbolic_losses == hand_losses
    assert model_tools.models_have_corresponding_parameters(symbolic, by_hand)


# -- tooling ----------------------------------------------------------------------------------------
def conv_model() -> SymbolicModel:
    torch.manual_seed(0)
    x = Input((3, 12, 12))
    h = nn.Conv2d(3, 4, 3)(x)(nn.ReLU())
    h = torch.flatten(h, 1)
    model = SymbolicModel(x, nn.Linear(h.features, 5)(h).softmax(-1) * torch.tensor(3.0))
    return model.eval()


def test_torch_compile_fullgraph():
    model = conv_model()
    data = torch.rand(2, 3, 12, 12)
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    assert torch.allclose(compiled(data), model(data))


def test_torch_export():
    model = conv_model()
    data = torch.rand(2, 3, 12, 12)
    exported = torch.export.export(model, (data,))
    assert torch.allclose(exported.module()(data), model(data))


def test_torch_jit_trace():
    model = conv_model()
    data = torch.rand(2, 3, 12, 12)
    with pytest.warns(DeprecationWarning, match="torch.jit.trace"):
        traced = torch.jit.trace(model, data)
    other = torch.rand(2, 3, 12, 12)
    assert torch.allclose(traced(other), model(other))


def test_functional_call_swaps_parameters_and_constants():
    model = conv_model()
    data = torch.rand(2, 3, 12, 12)
    zeros = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    out = torch.func.functional_call(model, zeros, (data,))
    assert torch.allclose(out, torch.full((2, 5), 3.0 / 5))
    halved = torch.func.functional_call(model, {"constant_0": torch.tensor(1.5)}, (data,))
    assert torch.allclose(halved * 2, model(data))


def test_building_on_the_meta_device_then_materialising():
    with torch.device("meta"):
        x = Input((1024,))
        model = SymbolicModel(x, nn.Linear(1024, 4)(nn.Linear(1024, 1024)(x)))
    assert x.device.type == "meta"
    assert all(p.device.type == "meta" for p in model.parameters())
    assert model.output_shape == (None, 4)
    model.to_empty(device="cpu")
    torch.manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.Linear):
            module.reset_parameters()
    data = torch.rand(3, 1024)
    assert torch.allclose(model(data), model.Linear_2(model.Linear_1(data)))


def test_optimized_calls_skip_call_machinery_but_keep_hooked_layers():
    torch.manual_seed(0)
    model, first, second = mlp()
    seen: list[str] = []
    first.register_forward_hook(lambda module, args, out: seen.append("first"))
    data = torch.rand(2, 6)
    before = model(data)
    optimize_module_calls(model)
    assert torch.equal(model(data), before)
    assert seen == ["first", "first"], "a layer with hooks stays on the normal path"
    # Linear layers keep their fast path; the program for global hooks calls forward directly.
    normal = symgraph.plugin.generate(model.plan, model.codegen_policy(model.plan, {"fast_paths": False}))
    assert ".forward(" in normal.source
    with pytest.raises(TypeError, match="expects SymbolicModel"):
        optimize_module_calls(first)  # type: ignore[arg-type]


def test_generic_core_model_runs_torch_layers_too():
    layer = nn.Linear(3, 2)
    x = symgraph.CustomInput(torch.rand(4, 3))
    model = symgraph.SymbolicModel(x, layer(x))
    data = torch.rand(4, 3)
    assert torch.equal(model(data), layer(data))


def test_add_output_after_to_keeps_one_buffer_per_constant():
    x = Input((3,))
    scale = torch.tensor([1.0, 2.0, 3.0])
    scaled = x * scale
    model = SymbolicModel(x, scaled + 1)
    model.to(torch.float64)
    model.add_output(scaled * torch.tensor(2.0, dtype=torch.float64))
    assert [name for name, _ in model.named_buffers()] == ["constant_0", "constant_1"]
    data = torch.rand(2, 3, dtype=torch.float64)
    first, second = model(data)
    assert torch.equal(first, data * scale.double() + 1)
    assert torch.equal(second, data * scale.double() * 2)


def test_shallow_copy_shares_layers_and_graph():
    x = Input((4,))
    y = nn.Linear(4, 2)(x)
    model = SymbolicModel(x, y)
    clone = copy.copy(model)
    assert clone.Linear_1 is model.Linear_1
    assert clone.inputs is x and clone.outputs is y
    data = torch.rand(3, 4)
    assert torch.equal(clone(data), model(data))
