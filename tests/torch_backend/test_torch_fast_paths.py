"""The generated forward's fast paths keep every semantic of calling the layers normally.

Each test builds a deep stack of ``nn.Linear`` layers mixed with ``Tanh`` and
``Dropout`` (all with fast paths; every class of the table is covered in
``test_torch_fast_path_table.py``), and compares the model with a hand-written
module over the same layer objects, after changing something a fast path must
notice: hooks, compilation, parametrizations, patched forwards, swapped
parameters, tracing and export.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.nn.utils import parametrize, prune  # noqa: E402

from symgraph_torch import Input, SymbolicModel, optimize_module_calls  # noqa: E402
from tests.torch_backend.conftest import run_watching_forward  # noqa: E402


class Stack(nn.Module):
    """The hand-written oracle: the same layers, called one after another."""

    def __init__(self, layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


def build(depth: int = 6, features: int = 4):
    torch.manual_seed(0)
    layers = []
    for i in range(depth):
        layers.append(nn.Linear(features, features))
        if i % 3 == 2:
            layers.append(nn.Dropout(0.5))
        elif i % 3 == 1:
            layers.append(nn.Tanh())
    x = Input((features,))
    y = x
    for layer in layers:
        y = layer(y)
    return SymbolicModel(x, y), Stack(layers), layers


def same(model, oracle, data, seed=1):
    torch.manual_seed(seed)
    got = model(data)
    torch.manual_seed(seed)
    expected = oracle(data)
    assert torch.equal(got, expected)
    return got


@pytest.fixture
def data():
    return torch.rand(5, 4)


def test_every_layer_takes_its_fast_path_and_linear_layers_read_their_weights():
    model, _, layers = build()
    source = model.source
    assert source.count("['weight']") == sum(type(layer) is nn.Linear for layer in layers)
    assert source.count("'_compiled_call_impl' in ") == len(layers)
    assert source.count(".dropout(") == sum(type(layer) is nn.Dropout for layer in layers)


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("grad", [True, False])
def test_matches_the_hand_written_module_in_both_modes(data, mode, grad):
    model, oracle, _ = build()
    getattr(model, mode)()
    getattr(oracle, mode)()
    with torch.set_grad_enabled(grad):
        out = same(model, oracle, data)
    assert out.requires_grad == grad
    # train() and eval() still switch the dropout layers in between
    if mode == "train":
        model.eval()
        torch.manual_seed(1)
        assert not torch.equal(model(data), out)


def test_gradients_flow_through_the_fast_path(data):
    model, oracle, layers = build()
    model.eval()
    oracle.eval()
    model(data).sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    oracle(data).sum().backward()
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, oracle.parameters(), strict=True))


def test_hooks_registered_after_building_fire_and_removing_them_restores_the_fast_path(data):
    model, oracle, layers = build()
    model.eval()
    oracle.eval()
    first, last = layers[0], layers[-1]
    calls = []
    handles = [
        first.register_forward_pre_hook(lambda mod, args: (args[0] * 2,)),
        last.register_forward_hook(lambda mod, args, out: out + 1),
        first.register_forward_hook(lambda mod, args, out: calls.append("forward") or None),
        last.register_full_backward_hook(lambda mod, gin, gout: calls.append("backward") or None),
    ]
    out = same(model, oracle, data.requires_grad_())
    out.sum().backward()
    assert calls.count("forward") == 2  # the model's call and the oracle's
    assert calls.count("backward") == 1  # only the model's output was backpropagated
    for handle in handles:
        handle.remove()
    plain = same(model, oracle, data)
    assert not torch.equal(plain, out)


@pytest.mark.parametrize("kind", ["forward_pre", "forward", "full_backward", "full_backward_pre"])
def test_each_kind_of_layer_hook_is_noticed_on_its_own(data, kind):
    model, oracle, layers = build()
    model.eval()
    oracle.eval()
    layer = layers[3]
    calls = []
    if kind == "forward_pre":
        handle = layer.register_forward_pre_hook(lambda mod, args: (args[0] + 3,))
    elif kind == "forward":
        handle = layer.register_forward_hook(lambda mod, args, out: out * -1)
    elif kind == "full_backward":
        handle = layer.register_full_backward_hook(lambda mod, gin, gout: calls.append(1) or None)
    else:
        handle = layer.register_full_backward_pre_hook(lambda mod, gout: calls.append(1) or None)
    out = same(model, oracle, data.requires_grad_())
    if kind.startswith("full_backward"):
        model(data).sum().backward()
        assert calls == [1]
    handle.remove()
    plain = same(model, oracle, data)
    assert torch.equal(plain, out) == kind.startswith("full_backward")


def test_hooks_registered_by_another_layer_during_the_forward_fire(data):
    model, oracle, layers = build()
    model.eval()
    oracle.eval()
    seen = []

    def register_later(mod, args, out):
        if not layers[-1]._forward_hooks:
            layers[-1].register_forward_hook(lambda m, a, o: seen.append(o.shape) or None)

    layers[0].register_forward_hook(register_later)
    model(data)
    assert seen == [torch.Size([5, 4])]


def test_global_module_hooks_fire(data):
    model, oracle, layers = build()
    model.eval()
    oracle.eval()
    seen = []
    handle = nn.modules.module.register_module_forward_hook(lambda mod, args, out: seen.append(type(mod)) or None)
    try:
        model(data)
    finally:
        handle.remove()
    # every layer, and the model itself
    assert seen.count(nn.Linear) == sum(type(layer) is nn.Linear for layer in layers)
    # The model's class is the subclass that gives forward its signature.
    assert issubclass(seen[-1], SymbolicModel) and seen[-1].__name__ == "SymbolicModel"


def test_parametrized_and_instance_patched_layers_are_followed(data):
    model, oracle, layers = build()
    model.eval()
    oracle.eval()

    class Doubled(nn.Module):
        def forward(self, weight):
            return weight * 2

    parametrize.register_parametrization(layers[0], "weight", Doubled())  # swaps the layer's class
    layers[3].forward = lambda x: x * 0 + 7  # an instance-level forward
    out = same(model, oracle, data)
    assert torch.all(out == same(model, oracle, data))


def test_a_patched_class_forward_is_followed(data, monkeypatch):
    model, oracle, _ = build()
    model.eval()
    oracle.eval()
    original = nn.Linear.forward
    monkeypatch.setattr(nn.Linear, "forward", lambda self, x: original(self, x) + 0.5)
    same(model, oracle, data)


def test_layers_compiled_after_building_run_compiled(data):
    model, oracle, layers = build()
    model.eval()
    oracle.eval()
    layers[0].compile(backend="eager")
    compiled = layers[0]._compiled_call_impl
    assert compiled is not None
    calls = []

    def spy(*args, **kwargs):
        calls.append(1)
        return compiled(*args, **kwargs)

    # What layer(x) dispatches to after layer.compile(); the model must use it too.
    layers[0]._compiled_call_impl = spy
    try:
        same(model, oracle, data)
    finally:
        torch._dynamo.reset()
    assert calls == [1, 1]


def test_functional_call_and_to_reach_the_fast_path(data):
    model, oracle, layers = build()
    model.eval()
    zeros = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    assert torch.equal(torch.func.functional_call(model, zeros, (data,)), torch.zeros(5, 4))
    model.to(torch.float64)
    oracle.eval()
    same(model, oracle, data.double())
    layers[0].weight = nn.Parameter(torch.ones(4, 4, dtype=torch.float64))  # a new parameter object
    layers[0].bias = None
    same(model, oracle, data.double())


def test_optimize_module_calls_keeps_the_fast_paths(data):
    model, oracle, layers = build()
    model.eval()
    oracle.eval()
    optimize_module_calls(model)
    assert "['weight']" in model.source
    same(model, oracle, data)


def test_tracing_compiling_and_exporting_still_work(data):
    model, oracle, _ = build()
    model.eval()
    oracle.eval()
    expected = oracle(data)
    with pytest.warns(DeprecationWarning, match="torch.jit.trace"):
        traced = torch.jit.trace(model, data)
    with pytest.warns(DeprecationWarning, match="torch.jit.trace"):
        traced_oracle = torch.jit.trace(oracle, data)
    assert torch.equal(traced(data), expected)
    # The trace took the normal path: every layer is a submodule call, as in the oracle's trace.
    calls = str(traced.graph).count("prim::CallMethod")
    assert calls == str(traced_oracle.graph).count("prim::CallMethod") == len(list(model.children()))
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    assert torch.allclose(compiled(data), expected)
    exported = torch.export.export(model, (data,))
    assert torch.allclose(exported.module()(data), expected)
    torch._dynamo.reset()


def test_pruning_is_followed_and_prune_remove_restores_the_fast_path(data):
    # torch.nn.utils.prune moves the weight out of _parameters and adds a pre-hook;
    # prune.remove makes it a parameter again and removes the hook.
    model, oracle, layers = build()
    model.eval()
    oracle.eval()
    unpruned = same(model, oracle, data)
    prune.l1_unstructured(layers[0], "weight", amount=0.5)
    prune.random_unstructured(layers[3], "weight", amount=0.3)
    pruned = same(model, oracle, data)
    assert not torch.equal(pruned, unpruned)
    for layer in (layers[0], layers[3]):
        prune.remove(layer, "weight")
    assert torch.equal(same(model, oracle, data), pruned)
    _, ran_forward = run_watching_forward(model, nn.Linear, data)
    assert not ran_forward  # every Linear is back on its fast path
