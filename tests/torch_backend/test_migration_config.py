"""pytorch-symbolic's ``config`` constants and ``SymbolicAPI2ContextManager`` under ``symgraph_torch``.

Environment variables are read in a fresh interpreter each, since they are read
at import; the oracle is the layer called directly.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import symgraph_torch  # noqa: E402
from symgraph_torch import Input, SymbolicAPI2ContextManager, SymbolicModel, config  # noqa: E402
from symgraph_torch._tracing import _original_call  # noqa: E402


def run_with(env: dict[str, str], code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env}, check=False
    )


def test_the_constants_exist_with_pytorch_symbolics_defaults():
    assert (config.CODEGEN_BY_DEFAULT, config.CODEGEN_MIN_LOOP_LENGTH, config.API_2_ENABLED_BY_DEFAULT) == (
        True,
        50,
        True,
    )
    assert symgraph_torch.config is config


def test_codegen_by_default_chooses_the_executor_when_a_model_is_built(monkeypatch):
    torch.manual_seed(0)
    layer = nn.Linear(3, 2)
    x = Input((3,))
    data = torch.rand(4, 3)
    monkeypatch.setattr(config, "CODEGEN_BY_DEFAULT", False)
    interpreted = SymbolicModel(x, layer(x))
    assert interpreted.executor == "interpreter" and torch.equal(interpreted(data), layer(data))
    assert SymbolicModel(x, layer(x), enable_forward_codegen=True).executor == "codegen"  # asked for: wins
    assert SymbolicModel(x, layer(x), executor="codegen").executor == "codegen"
    monkeypatch.setattr(config, "CODEGEN_BY_DEFAULT", True)
    assert SymbolicModel(x, layer(x)).executor == "codegen"


@pytest.mark.parametrize(("text", "expected"), [("false", "interpreter"), ("  OFF ", "interpreter"), ("1", "codegen")])
def test_the_environment_sets_codegen_by_default(text, expected):
    done = run_with(
        {"PYTORCH_SYMBOLIC_CODEGEN_BY_DEFAULT": text},
        "from symgraph_torch import Input, SymbolicModel; x = Input((2,)); print(SymbolicModel(x, x * 2).executor)",
    )
    assert done.stdout.strip() == expected, done.stderr


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("CODEGEN_BY_DEFAULT", "print('EVALUATED')"),
        ("API_2_ENABLED_BY_DEFAULT", "True and print('EVALUATED')"),
        ("CODEGEN_MIN_LOOP_LENGTH", "__import__('builtins').print('EVALUATED') or 5"),
        ("CODEGEN_MIN_LOOP_LENGTH", "0"),
    ],
)
def test_an_environment_value_is_never_evaluated_and_a_bad_one_is_named(name, text):
    done = run_with({f"PYTORCH_SYMBOLIC_{name}": text}, "import symgraph_torch")
    assert done.returncode != 0 and "EVALUATED" not in done.stdout  # (the message quotes the value)
    assert f"ValueError: environment variable PYTORCH_SYMBOLIC_{name}={text!r}" in done.stderr


def test_with_api_2_off_the_context_manager_turns_layer_calls_on_for_a_block():
    code = """
import torch
from torch import nn
import symgraph_torch
from symgraph_torch import Input, SymbolicAPI2ContextManager, SymbolicModel
print(nn.Module.__call__ is nn.Module._wrapped_call_impl)
layer = nn.Linear(3, 2)
with SymbolicAPI2ContextManager():
    x = Input((3,))
    model = SymbolicModel(x, layer(x))
    print(nn.Module.__call__ is nn.Module._wrapped_call_impl)
print(nn.Module.__call__ is nn.Module._wrapped_call_impl)
data = torch.rand(4, 3)
print(torch.equal(model(data), layer(data)), [name for name, _ in model.named_children()])
"""
    done = run_with({"PYTORCH_SYMBOLIC_API_2_ENABLED_BY_DEFAULT": "false"}, code)
    assert done.stdout.split("\n")[:4] == ["True", "False", "True", "True ['Linear_1']"], done.stderr


def test_the_context_manager_leaves_layer_calls_on_when_they_were_on():
    assert torch.nn.Module.__call__ is not _original_call
    torch.manual_seed(0)
    layer = nn.Linear(3, 2)
    with SymbolicAPI2ContextManager() as manager, manager:  # nested
        x = Input((3,))
        y = layer(x)
    assert torch.nn.Module.__call__ is not _original_call
    data = torch.rand(2, 3)
    assert torch.equal(SymbolicModel(x, y)(data), layer(data))


def test_pytorch_symbolics_remaining_useful_layers_work_in_models():
    from symgraph_torch.useful_layers import (
        CallbackLayer,
        MethodCall,
        ReshapeLayer,
        SliceLayerSymbolicIdx,
        ViewCopyLayer,
    )

    seen: list[torch.Size] = []
    x = Input((6,))
    index = Input((2,), dtype=torch.long, batch_size=2)
    logged = CallbackLayer(lambda t: seen.append(t.shape))(x)
    outputs = (
        ReshapeLayer((2, 3))(logged),
        ReshapeLayer((3, 4), batch_size_included=True)(x),
        ViewCopyLayer((3, 2))(x),
        MethodCall("transpose", 0, 1)(x),
        SliceLayerSymbolicIdx()(x, index),
    )
    model = SymbolicModel((x, index), outputs)
    seen.clear()  # recording ran the callback on the example
    data, picks = torch.rand(2, 6), torch.tensor([[1, 0], [0, 0]])
    got = model(data, picks)
    expected = (
        torch.reshape(data, (-1, 2, 3)),
        torch.reshape(data, (3, 4)),
        torch.view_copy(data, (-1, 3, 2)),
        data.transpose(0, 1),
        data[picks],
    )
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))
    assert seen == [torch.Size([2, 6])]
    assert got[2].data_ptr() != data.data_ptr()
    with pytest.raises(TypeError, match="MethodCall needs a method name"):
        MethodCall("not a name")


def test_custom_input_takes_its_example_as_data_like_pytorch_symbolic():
    from symgraph_torch import CustomInput

    example = torch.rand(2, 5)
    x = CustomInput(data=example)
    y = CustomInput(data={"scale": 3.0})
    model = SymbolicModel((x, y), x * y["scale"])
    data = torch.rand(2, 5)
    assert x.shape == (2, 5) and torch.equal(model(data, {"scale": 2.0}), data * 2.0)
