"""A SymbolicModel computes what a hand-written module holding the same module objects computes.

Each test builds a symbolic model and a hand-written ``nn.Module`` whose
``forward`` calls the same layer objects through its attributes, changes both
the same way (module surgery, checkpoints, a failed ``add_output``), and
compares outputs, gradients and buffers, or an exact error message.
"""

from __future__ import annotations

import copy
import pickle

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from symgraph_torch import Input, SymbolicModel, optimize_module_calls  # noqa: E402


class Hand(nn.Module):
    """The oracle: ``Linear_2(ReLU_1(Linear_1(x)))`` through attributes, as hand-written code reads them."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.Linear_1 = model.Linear_1
        self.ReLU_1 = model.ReLU_1
        self.Linear_2 = model.Linear_2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.Linear_2(self.ReLU_1(self.Linear_1(x)))


def build(**options):
    torch.manual_seed(0)
    x = Input((4,))
    y = nn.Linear(4, 3)(nn.ReLU()(nn.Linear(4, 4)(x)))
    model = SymbolicModel(x, y, **options)
    return model, Hand(model)


def runs(model):
    """Every way the model runs: generated code with and without fast paths, and the interpreter."""
    without_fast_paths = copy.copy(model)
    without_fast_paths.set_executor("codegen", fast_paths=False)
    return {"codegen": model, "no fast paths": without_fast_paths, "interpreter": model.interpret}


def assert_same(model, hand, data):
    expected = hand(data)
    for name, run in runs(model).items():
        assert torch.equal(run(data), expected), name
    return expected


class LoRA(nn.Module):
    """A low-rank adapter wrapping a linear layer, as parameter-efficient fine-tuning does."""

    def __init__(self, base: nn.Linear, rank: int = 2) -> None:
        super().__init__()
        self.base = base
        self.down = nn.Parameter(torch.randn(rank, base.in_features))
        self.up = nn.Parameter(torch.randn(base.out_features, rank))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + x @ self.down.T @ self.up.T


# -- item 2: module surgery ------------------------------------------------------------------------
@pytest.mark.parametrize("direct", [False, True])
def test_assigning_a_new_layer_takes_effect(direct):
    model, hand = build()
    if direct:
        optimize_module_calls(model)
    data = torch.rand(5, 4)
    before = assert_same(model, hand, data)
    replacement = nn.Linear(4, 4)
    model.Linear_1 = replacement
    hand.Linear_1 = replacement
    after = assert_same(model, hand, data)
    assert not torch.equal(before, after)
    assert model.Linear_1 is replacement


def test_a_replaced_layer_runs_its_hooks_and_gets_gradients():
    model, hand = build()
    replacement = nn.Linear(4, 4)
    replacement.register_forward_hook(lambda module, args, out: out * 3)
    model.Linear_1 = hand.Linear_1 = replacement
    data = torch.rand(5, 4)
    assert_same(model, hand, data)
    model(data).sum().backward()
    grad = replacement.weight.grad.clone()
    replacement.weight.grad = None
    hand(data).sum().backward()
    assert torch.equal(grad, replacement.weight.grad)


def test_lora_wrapping_takes_effect_with_gradients():
    model, hand = build()
    data = torch.rand(5, 4)
    before = model(data)
    wrapped = LoRA(model.Linear_1)
    model.Linear_1 = hand.Linear_1 = wrapped
    after = assert_same(model, hand, data)
    assert not torch.equal(before, after)
    model(data).sum().backward()
    grads = [wrapped.down.grad.clone(), wrapped.up.grad.clone()]
    wrapped.zero_grad()
    hand(data).sum().backward()
    assert torch.equal(grads[0], wrapped.down.grad) and torch.equal(grads[1], wrapped.up.grad)
    assert "Linear_1.down" in dict(model.named_parameters())


@pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")
def test_quantize_dynamic_quantizes_what_forward_computes():
    model, hand = build()
    model.eval()
    hand.eval()
    data = torch.rand(5, 4)
    quantized = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    quantized_hand = torch.ao.quantization.quantize_dynamic(hand, {nn.Linear}, dtype=torch.qint8)
    assert type(quantized.Linear_1).__name__ == "Linear" and type(quantized.Linear_1) is not nn.Linear
    expected = quantized_hand(data)
    assert not torch.equal(expected, hand(data)), "quantization changes the result"
    assert torch.equal(quantized(data), expected)
    assert torch.equal(quantized.interpret(data), expected)


def test_convert_sync_batchnorm_reaches_forward():
    torch.manual_seed(0)
    x = Input((3,))
    model = SymbolicModel(x, nn.BatchNorm1d(3)(nn.Linear(3, 3)(x)))

    class HandNorm(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.Linear_1 = model.Linear_1
            self.BatchNorm1d_1 = model.BatchNorm1d_1

        def forward(self, x):
            return self.BatchNorm1d_1(self.Linear_1(x))

    hand = HandNorm()
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    converted_hand = nn.SyncBatchNorm.convert_sync_batchnorm(hand)
    converted_hand.BatchNorm1d_1 = converted.BatchNorm1d_1  # the same module object in both
    assert isinstance(converted.BatchNorm1d_1, nn.SyncBatchNorm)
    calls = []
    converted.BatchNorm1d_1.register_forward_pre_hook(lambda module, args: calls.append(type(module)) or None)
    data = torch.rand(6, 3)
    out = converted(data)  # SyncBatchNorm runs as BatchNorm outside a process group
    stats = converted.BatchNorm1d_1.running_mean.clone()
    converted.BatchNorm1d_1.reset_running_stats()
    assert torch.equal(out, converted_hand(data))
    assert torch.equal(stats, converted.BatchNorm1d_1.running_mean)
    assert calls == [nn.SyncBatchNorm, nn.SyncBatchNorm]


def test_a_removed_layer_is_a_clear_error():
    model, _ = build()
    del model.Linear_2
    data = torch.rand(2, 4)
    with pytest.raises(AttributeError, match="no submodule 'Linear_2' any more"):
        model(data)
    with pytest.raises(AttributeError, match="no submodule 'Linear_2' any more"):
        model.interpret(data)


def test_surgery_on_a_nested_model_and_inside_it():
    torch.manual_seed(0)
    inner, _ = build()
    x = Input((4,))
    outer = SymbolicModel(x, inner(x) * 2)
    data = torch.rand(3, 4)
    replacement = nn.Linear(4, 4)
    inner.Linear_1 = replacement  # inside the nested model
    hand = Hand(inner)
    assert torch.equal(outer(data), hand(data) * 2)
    assert torch.equal(outer.interpret(data), hand(data) * 2)
    other = nn.Linear(4, 3)
    outer.SymbolicModel_1 = other  # the nested model itself, by a plain layer
    assert torch.equal(outer(data), other(data) * 2)
    assert torch.equal(outer.interpret(data), other(data) * 2)


def test_copies_and_detached_models_keep_the_surgery():
    model, hand = build()
    replacement = nn.Linear(4, 4)
    model.Linear_1 = hand.Linear_1 = replacement
    data = torch.rand(3, 4)
    detached = model.detach_from_graph()
    assert detached.Linear_1 is replacement
    assert torch.equal(detached(data), hand(data))
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert torch.equal(clone(data), hand(data))
        assert clone.Linear_1 is not replacement


def test_compile_executor_sees_the_surgery():
    model, hand = build(executor="compile", executor_options={"backend": "eager"})
    data = torch.rand(3, 4)
    try:
        assert torch.equal(model(data), hand(data))
        model.Linear_2 = hand.Linear_2 = nn.Linear(4, 3)
        assert torch.equal(model(data), hand(data))
    finally:
        torch._dynamo.reset()


# -- item 12: dotted names for checkpoints -----------------------------------------------------------
class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 2, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(2)

    def forward(self, x):
        return torch.relu(self.bn1(self.conv1(x))) + x


class TorchvisionLike(nn.Module):
    """State dict keys like torchvision's: layer1.0.conv1.weight, ..., fc.weight."""

    def __init__(self) -> None:
        super().__init__()
        self.layer1 = nn.Sequential(Block(), Block())
        self.fc = nn.Linear(2 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(torch.flatten(self.layer1(x), 1))


def symbolic_torchvision_like():
    x = Input((2, 4, 4))
    y = x
    for k in range(2):
        h = nn.Conv2d(2, 2, 3, padding=1)(y, custom_name=f"layer1.{k}.conv1")
        y = torch.relu(nn.BatchNorm2d(2)(h, custom_name=f"layer1.{k}.bn1")) + y
    return SymbolicModel(x, nn.Linear(2 * 4 * 4, 3)(torch.flatten(y, 1), custom_name="fc"))


def test_dotted_names_load_a_hand_written_checkpoint_strictly():
    torch.manual_seed(0)
    hand = TorchvisionLike()
    for module in hand.modules():
        if isinstance(module, nn.BatchNorm2d):  # non-trivial statistics in the checkpoint
            module.running_mean.uniform_()
            module.running_var.uniform_(0.5, 2)
    model = symbolic_torchvision_like()
    assert list(model.state_dict()) == list(hand.state_dict())
    model.load_state_dict(hand.state_dict(), strict=True)
    model.eval()
    hand.eval()
    data = torch.rand(3, 2, 4, 4)
    assert torch.equal(model(data), hand(data))
    assert torch.equal(model.interpret(data), hand(data))
    assert isinstance(model.layer1, nn.ModuleList) and type(model.layer1[0]) is nn.Module
    assert [name for name, _ in model.named_children()] == ["layer1", "fc"]


def test_surgery_on_a_dotted_layer_takes_effect():
    model = symbolic_torchvision_like()
    model.eval()
    data = torch.rand(3, 2, 4, 4)
    before = model(data)
    model.layer1[1].conv1 = nn.Conv2d(2, 2, 3, padding=1)
    expected = data
    for k in range(2):
        block = model.layer1[k]
        expected = torch.relu(block.bn1(block.conv1(expected))) + expected
    expected = model.fc(torch.flatten(expected, 1))
    assert torch.equal(model(data), expected) and not torch.equal(before, expected)
    assert torch.equal(model.interpret(data), expected)


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (("a..b",), "layer name 'a..b' cannot name a submodule: it is empty or has an empty part between dots"),
        (("block", "block.inner"), "layer name 'block.inner' puts a layer inside the layer 'block'"),
        (("group.inner", "group"), "layer name 'group' already names a group of layers (group.<name>)"),
        (("group.training",), "layer name 'group.training' clashes with an attribute of the nn.Module groups"),
        (
            ("forward.x",),
            "layer name 'forward.x' (its first part 'forward') clashes with an attribute of SymbolicModel",
        ),
    ],
)
def test_bad_dotted_names_are_refused(names, message):
    x = Input((4,))
    y = x
    for name in names:
        y = nn.Linear(4, 4)(y, custom_name=name)
    with pytest.raises(ValueError) as error:
        SymbolicModel(x, y)
    assert str(error.value).startswith(message)
    assert str(error.value).endswith("pick another custom_name")


# -- item 13b: add_output is all or nothing ---------------------------------------------------------
def state_of(model):
    lines = []
    model.summary(print_fn=lines.append)
    return (
        lines[0],
        model.source,
        [name for name, _ in model.named_modules()],
        [name for name, _ in model.named_buffers()],
        model.output_shape,
    )


def test_a_failed_rebuild_leaves_the_model_as_it_was(monkeypatch):
    torch.manual_seed(0)
    x = Input((4,))
    hidden = nn.Linear(4, 4)(x)
    model = SymbolicModel(x, nn.Linear(4, 2)(hidden))
    data = torch.rand(3, 4)
    before, expected = state_of(model), model(data)
    extra = nn.Linear(4, 5)(hidden) * torch.tensor(2.0)  # a new layer and a new tensor constant

    def fail(self, *args, **kwargs):
        raise RuntimeError("rebuild failed")

    monkeypatch.setattr(SymbolicModel, "_program_for", fail)
    with pytest.raises(RuntimeError, match="rebuild failed"):
        model.add_output(extra)
    monkeypatch.undo()
    assert state_of(model) == before
    assert torch.equal(model(data), expected)
    assert model.outputs is not None and len(model.plan.steps) == 2
    model.add_output(extra)  # and it still works afterwards
    assert model(data)[1].shape == (3, 5) and "Linear_3" in dict(model.named_children())


def test_a_refused_layer_name_in_add_output_leaves_the_model_as_it_was():
    x = Input((4,))
    model = SymbolicModel(x, nn.Linear(4, 2)(x))
    before = state_of(model)
    fine = nn.Linear(4, 4)(x, custom_name="fine")
    with pytest.raises(ValueError, match="layer name 'summary' clashes with an attribute of SymbolicModel"):
        model.add_output(nn.Linear(4, 4)(fine, custom_name="summary"))
    assert state_of(model) == before
    assert not hasattr(model, "fine")


# -- item 13c: names that clash with the model's attributes ----------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "_program",
        "_plan",
        "_graph",
        "inputs",
        "outputs",
        "source",
        "forward",
        "training",
        "plan",
        "check_inputs",
        "summary",
        "add_output",
        "_parameters",
        "_tensor_names",
        "executor",
    ],
)
def test_layer_names_clashing_with_model_attributes_are_refused(name):
    x = Input((4,))
    y = nn.Linear(4, 4)(x, custom_name=name)
    with pytest.raises(ValueError) as error:
        SymbolicModel(x, y)
    assert str(error.value) == (
        f"layer name {name!r} clashes with an attribute of SymbolicModel; pick another custom_name"
    )


def test_a_layer_name_clashing_with_a_constant_is_refused():
    x = Input((4,))
    scaled = x * torch.tensor(2.0)
    model = SymbolicModel(x, scaled)
    assert [name for name, _ in model.named_buffers()] == ["constant_0"]
    with pytest.raises(ValueError, match="layer name 'constant_0' clashes with an attribute of SymbolicModel"):
        model.add_output(nn.ReLU()(scaled, custom_name="constant_0"))


# -- item 4 (part): torch.jit.script names what to use instead --------------------------------------
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_jit_script_names_trace_and_export():
    model, _ = build()
    message = (
        "torch.jit.script cannot compile a SymbolicModel: its forward is generated Python that TorchScript "
        "does not support; use torch.jit.trace(model, example_inputs) or torch.export.export(model, "
        "example_inputs) instead"
    )
    with pytest.raises(TypeError) as error:
        torch.jit.script(model)
    assert str(error.value) == message
    with pytest.raises(TypeError) as error:
        torch.jit.script(nn.Sequential(nn.Identity(), model))  # nested in a scripted module
    assert str(error.value) == message
