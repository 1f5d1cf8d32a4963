"""model_tools.infer_shapes where a user found it differing from the real call.

The oracle is the real call on real tensors of the same sizes: its outputs'
shapes, or its error. Parameters and buffers are compared with copies taken
before, object by object.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import symgraph  # noqa: E402
from symgraph_torch import Input, SymbolicModel, model_tools  # noqa: E402


def snapshot(model):  # type: ignore[no-untyped-def]
    named = [*model.named_parameters(), *model.named_buffers()]
    return {name: (tensor, tensor.detach().clone(), tensor.requires_grad, tensor.grad) for name, tensor in named}


def assert_unchanged(model, before):  # type: ignore[no-untyped-def]
    now = dict([*model.named_parameters(), *model.named_buffers()])
    assert now.keys() == before.keys()
    for name, (tensor, value, requires_grad, grad) in before.items():
        assert now[name] is tensor, name
        assert torch.equal(tensor.detach(), value), name
        assert tensor.requires_grad is requires_grad and tensor.grad is grad, name


def outcome(call, *args, **kwargs):  # type: ignore[no-untyped-def]
    """The shape ``call(*args, **kwargs)`` returns (a tensor's, or infer_shapes' answer), or its error and message."""
    try:
        result = call(*args, **kwargs)
    except Exception as error:
        return type(error), str(error)
    return result.shape if isinstance(result, torch.Tensor) else result


def test_batchnorm_without_momentum_in_training_mode_counts_nothing():
    # momentum=None averages over num_batches_tracked, read as a number: a meta tensor has none.
    torch.manual_seed(0)
    x = Input((4, None))
    model = SymbolicModel(x, nn.Conv1d(4, 2, 3)(nn.BatchNorm1d(4, momentum=None)(x)))
    model.train()
    model(torch.rand(2, 4, 9)).sum().backward()  # a counter at 1, and gradients to keep
    before = snapshot(model)
    for size in ((8, 4, 50), (3, 4, 3)):
        assert model_tools.infer_shapes(model, size) == model(torch.rand(size)).shape
        before = snapshot(model)  # the real call counted; infer_shapes must not
        assert model_tools.infer_step_shapes(model, size)["Conv1d_1"] == (size[0], 2, size[2] - 2)
        assert_unchanged(model, before)
    assert model.BatchNorm1d_1.num_batches_tracked.item() == 3
    bad = (1, 4, 1)  # one value per channel in training mode
    assert outcome(model_tools.infer_shapes, model, bad) == outcome(model, torch.rand(bad))


def test_hooks_on_the_model_run_as_in_the_real_call():
    x = Input((6,))
    model = SymbolicModel(x, nn.Linear(6, 4)(x))
    model.register_forward_pre_hook(lambda module, args: (args[0].reshape(-1, 6),))
    model.register_forward_hook(lambda module, args, output: output.unsqueeze(0))
    for size in ((2, 3, 6), (5, 6), (4, 4)):
        assert outcome(model_tools.infer_shapes, model, size) == outcome(model, torch.rand(size))
    assert model_tools.infer_shapes(model, (2, 3, 6)) == (1, 6, 4)
    steps = model_tools.infer_step_shapes(model, (2, 3, 6))
    assert steps == {"Input_1": (6, 6), "Linear_1": (6, 4)}


class Pairs(SymbolicModel):
    """A subclass with its own forward, which post-processes the recorded model's output."""

    def forward(self, x):  # type: ignore[no-untyped-def]
        return super().forward(x).unflatten(0, (-1, 2))


def test_a_subclass_forward_runs_as_in_the_real_call():
    x = Input((3,))
    model = Pairs(x, nn.Linear(3, 5)(x))
    for size in ((4, 3), (6, 3), (3, 3), (4, 2)):
        assert outcome(model_tools.infer_shapes, model, size) == outcome(model, torch.rand(size))
    assert model_tools.infer_shapes(model, (4, 3)) == (2, 2, 5)


def test_arguments_are_taken_as_the_real_call_takes_them():
    x = Input((4,))
    model = SymbolicModel(x, nn.Linear(4, 2)(x))
    model.double()
    real = torch.rand(3, 4, dtype=torch.float64)
    assert model_tools.infer_shapes(model, Input_1=(3, 4)) == model(Input_1=real).shape == (3, 2)
    for args, kwargs in ((((3, 4), (3, 4)), {}), (((3, 4),), {"other": (3, 4)}), ((), {})):
        tensors = [torch.rand(size, dtype=torch.float64) for size in args]
        keyword_tensors = {key: torch.rand(size, dtype=torch.float64) for key, size in kwargs.items()}
        inferred = outcome(model_tools.infer_shapes, model, *args, **kwargs)
        assert inferred == outcome(model, *tensors, **keyword_tensors)
        assert inferred[0] is TypeError


def test_a_model_sharing_its_input_with_another_follows_its_own_layers():
    inputs = Input((6,))
    SymbolicModel(inputs, nn.Linear(6, 4)(inputs))
    classifier = SymbolicModel(inputs, nn.Linear(6, 2)(inputs)).double()
    assert classifier(torch.rand(3, 6, dtype=torch.float64)).shape == (3, 2)
    assert model_tools.infer_shapes(classifier, (3, 6)) == (3, 2)


def test_the_checks_notice_a_wrong_answer():
    x = Input((6,))
    model = SymbolicModel(x, nn.Linear(6, 4)(x))
    before = snapshot(model)
    with torch.no_grad():
        model.Linear_1.bias.add_(1)
    with pytest.raises(AssertionError):
        assert_unchanged(model, before)
    assert outcome(model, torch.rand(2, 5)) != outcome(model, torch.rand(2, 6))
    with pytest.raises(symgraph.InputError):
        model_tools.infer_shapes(model, (2, 5))
