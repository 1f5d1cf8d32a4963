"""Recording on symbolic tensors: layers, torch functions, methods, shapes, errors."""

from __future__ import annotations

import sys
from typing import Any

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import symgraph  # noqa: E402
from symgraph_torch import CustomInput, Input, SymbolicModel, SymbolicTensor, useful_layers  # noqa: E402
from symgraph_torch._tracing import install_module_call_hook, uninstall_module_call_hook  # noqa: E402


def replay(inputs, output, *data):  # type: ignore[no-untyped-def]
    model = SymbolicModel(inputs, output)
    result = model(*data)
    interpreted = model.interpret(*data)
    assert torch.equal(result, interpreted)
    return result


# -- layers ---------------------------------------------------------------------------------------
def test_both_notations_with_several_inputs_and_custom_names():
    class Affine(nn.Module):
        def forward(self, x, y, *, scale=1.0):
            return x * scale + y

    a, b = Input((3,)), Input((3,))
    keras = Affine()(a, b, scale=2.0, custom_name="affine")
    ours = a(Affine(), b, scale=2.0, custom_name="affine2")
    assert [p is q for p, q in zip(keras.parents, (a, b), strict=True)] == [True, True]
    model = SymbolicModel((a, b), (keras, ours))
    assert [step.name for step in model.plan.steps] == ["affine", "affine2"]
    x, y = torch.rand(2, 3), torch.rand(2, 3)
    out1, out2 = model(x, y)
    assert torch.equal(out1, x * 2 + y) and torch.equal(out2, x * 2 + y)


def test_symbolic_keyword_argument_is_recorded():
    class Gate(nn.Module):
        def forward(self, x, gate=None):
            return x * torch.sigmoid(gate)

    x, g = Input((4,)), Input((4,))
    out = Gate()(x, gate=g)
    data, gate = torch.rand(2, 4), torch.randn(2, 4)
    assert torch.equal(replay((x, g), out, data, gate), data * torch.sigmoid(gate))


def test_calling_a_non_callable_is_refused():
    x = Input((2,))
    with pytest.raises(TypeError, match=r"layer must be an nn\.Module or another callable"):
        x(3)


def test_a_failing_layer_leaves_no_node():
    x = Input((4,))
    before = len(x.children)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied") as info:
        nn.Linear(5, 2)(x)
    assert "nothing was added" in "".join(info.value.__notes__)
    with pytest.raises(RuntimeError):
        x(nn.Linear(7, 2))
    with pytest.raises(RuntimeError):
        torch.cat([x, Input((2, 2))], dim=1)
    assert len(x.children) == before
    y = nn.Linear(4, 2)(x)
    assert x.children == (y,)


def test_plain_module_calls_are_untouched_by_the_hook():
    layer = nn.Linear(3, 3)
    data = torch.rand(2, 3)
    hooked = layer(data)
    uninstall_module_call_hook()
    try:
        plain = layer(data)
    finally:
        install_module_call_hook()
    assert torch.equal(hooked, plain)
    # Hooks and module.compile() still work through the replaced __call__.
    seen = []
    handle = layer.register_forward_hook(lambda m, args, out: seen.append(out.shape))
    layer(data)
    handle.remove()
    assert seen == [torch.Size([2, 3])]
    layer.compile(backend="eager")
    assert torch.allclose(layer(data), hooked)


class _Forms(nn.Module):
    # A forward whose parameter names could clash with the hook's own (``self``, ``first``).
    def forward(self, first: Any = None, *rest: Any, **named: Any) -> Any:
        return (first, rest, named)


class _Marked(torch.Tensor):
    """A tensor subclass: the hook must hand it to ``forward`` as it is."""


@pytest.mark.parametrize(
    "call",
    [
        lambda m, t: m(),
        lambda m, t: m(t),
        lambda m, t: m(t, t),
        lambda m, t: m(first=t),
        lambda m, t: m(t, other=t),
        lambda m, t: m(None),
        lambda m, t: m(t.as_subclass(_Marked)),
        lambda m, t: m(*[t, 2], **{"flag": 3}),
    ],
)
def test_every_argument_form_reaches_forward_as_without_the_hook(call):
    module, data = _Forms(), torch.rand(2)
    hooked = call(module, data)
    uninstall_module_call_hook()
    try:
        plain = call(module, data)
    finally:
        install_module_call_hook()
    assert repr(hooked) == repr(plain)
    assert type(hooked[0]) is type(plain[0])


# -- torch functions and methods -------------------------------------------------------------------
CASES = {
    "torch.cat": lambda x, y: torch.cat([x, y], dim=1),
    "torch.abs": lambda x, y: torch.abs(x),
    "F.relu": lambda x, y: F.relu(x - 0.5),
    "x.view": lambda x, y: x.view(-1, 4),
    "x.mean": lambda x, y: x.mean(1),
    "x.softmax": lambda x, y: x.softmax(-1),
    "torch.stack": lambda x, y: torch.stack((x, y)).sum(0),
    "torch.where": lambda x, y: torch.where(x > y, x, y),
    "matmul": lambda x, y: (x.unsqueeze(1) @ y.unsqueeze(2)).squeeze(2) @ torch.ones(1, 3),
    "tensor on the left": lambda x, y: torch.ones(4) - x,
    "method chain": lambda x, y: x.float().clamp(0.2, 0.8).pow(2),
    "size as a value": lambda x, y: x.reshape(x.size(0), 2, 2),
    "indexing": lambda x, y: x[:, 1:3] * y[:, :2],
    "split": lambda x, y: torch.split(x, 2, dim=1)[1],
    "max values": lambda x, y: x.max(1).values,
    "operators": lambda x, y: (-x) ** 2 / (1 + abs(y)) % 0.7,
}


@pytest.mark.parametrize("name", CASES)
def test_torch_functions_replay_like_eager_code(name):
    fn = CASES[name]
    x, y = Input((4,)), Input((4,))
    out = fn(x, y)
    assert isinstance(out, SymbolicTensor)
    a, b = torch.randn(3, 4), torch.randn(3, 4)
    expected = fn(a, b)
    assert torch.equal(replay((x, y), out, a, b), expected)
    assert out.shape[1:] == tuple(expected.shape[1:])


def test_function_names_in_summaries():
    x = Input((4,))
    out = F.relu(torch.cat([x, x], dim=1)).view(-1, 2)
    names = [step.name for step in SymbolicModel(x, out).plan.steps]
    assert names == ["wrap(cat)_1", "wrap(relu)_1", "wrap(view)_1"]


def test_unknown_batch_cannot_be_iterated():
    x = Input((3,))
    with pytest.raises(symgraph.TraceError, match="batch, whose size is unknown"):
        for _ in x:
            pass
    with pytest.raises(symgraph.TraceError, match="unknown"):
        a, b = x
    assert x.children == ()
    fixed = Input((3,), batch_size=2)
    first, second = fixed
    model = SymbolicModel(fixed, second - first)
    data = torch.rand(2, 3)
    assert torch.equal(model(data), data[1] - data[0])
    columns = list(x.unbind(1))
    assert len(columns) == 3
    data = torch.rand(5, 3)
    assert torch.equal(SymbolicModel(x, columns[2])(data), data[:, 2])


# -- shapes and properties ------------------------------------------------------------------------
def test_shape_properties():
    image = Input((3, 20, 30))
    assert image.shape == (None, 3, 20, 30)
    assert (image.C, image.channels, image.H, image.W) == (3, 3, 20, 30)
    assert (image.HW, image.CHW, image.HWC) == ((20, 30), (3, 20, 30), (20, 30, 3))
    assert (image.batch_size, image.ndim, image.numel) == (None, 4, 1800)
    assert image.dtype == torch.float32 and image.device == torch.device("cpu")
    flat = Input((7,), batch_size=5)
    assert (flat.features, flat.batch_size, flat.numel, flat.shape) == (7, 5, 35, (5, 7))
    volume = Input((2, 4, 6, 8))
    assert (volume.C, volume.H, volume.W) == (2, 6, 8)
    sequence = Input((2, 9))
    assert sequence.C == 2


@pytest.mark.parametrize(
    ("prop", "shape"),
    [("H", (5,)), ("W", (5,)), ("HW", (3, 7)), ("features", ()), ("C", (5,)), ("CHW", (1, 2, 3, 4))],
)
def test_properties_that_do_not_fit_raise_clearly(prop, shape):
    x = Input(shape)
    with pytest.raises(symgraph.TraceError, match=rf"\.{prop} needs .* this tensor has shape"):
        getattr(x, prop)
    assert x.children == ()


def test_unknown_batch_propagates_and_known_batch_stays():
    x = Input((4,))
    y = torch.sum(nn.Linear(4, 2)(x), dim=1)
    assert y.shape == (None,)
    z = CustomInput(torch.rand(3, 4))
    assert (z * 2).shape == (3, 4)
    assert (x.mean() + 0).shape == ()


def test_layer_property():
    x, y = Input((2,)), Input((2,))
    linear = nn.Linear(2, 2)
    assert linear(x).layer is linear
    assert x.layer is None
    assert isinstance((x + y).layer, useful_layers.AddOpLayer)
    assert str((x * 3).layer) == "LambdaOpLayer()"
    data = torch.rand(2)
    assert torch.equal((x * 3).layer(data), data * 3)


# -- Input -------------------------------------------------------------------------------------------
def test_input_arguments():
    ints = Input(batch_shape=(100, 3), dtype=torch.int64, min_value=2, max_value=5)
    assert ints.dtype == torch.int64 and ints.shape == (100, 3)
    assert int(ints.v.min()) >= 2 and int(ints.v.max()) <= 5
    floats = Input((1000,), min_value=-3.0, max_value=-1.0, dtype=torch.float64)
    assert floats.dtype == torch.float64
    assert float(floats.v.min()) >= -3.0 and float(floats.v.max()) <= -1.0
    assert Input((2,), dtype=torch.bool).dtype == torch.bool
    assert Input(5).shape == (None, 5)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({}, ValueError, "exactly one of shape"),
        ({"shape": (2,), "batch_shape": (1, 2)}, ValueError, "exactly one of shape"),
        ({"shape": "abc"}, TypeError, "shape must be a tuple of ints"),
        ({"shape": (2.5,)}, TypeError, "shape must be a tuple of ints"),
        ({"shape": (-1,)}, ValueError, "negative"),
        ({"shape": (2,), "batch_size": 0}, ValueError, "batch_size must be a positive int"),
        ({"batch_shape": (4, 2), "batch_size": 4}, ValueError, "batch_size= goes with shape="),
        ({"shape": (2,), "min_value": 1.0, "max_value": 1.0}, ValueError, "min_value"),
        ({"shape": (2,), "dtype": "float32"}, TypeError, "dtype must be a torch.dtype"),
        ({"batch_shape": ()}, ValueError, "at least the batch"),
    ],
)
def test_input_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        Input(**kwargs)


def test_building_does_not_touch_the_global_rng():
    torch.manual_seed(3)
    expected = torch.rand(5)
    torch.manual_seed(3)
    x = Input((4,))
    h = nn.Dropout(0.5)(x)
    h = F.dropout(h, 0.3)
    h = h.clamp(0, 1).bernoulli()
    h = torch.rand_like(h) + h
    assert torch.equal(torch.rand(5), expected)


def test_symbolic_object_records_operators_as_method_calls():
    x = CustomInput([1, 2])
    y = x + [3]
    z = 2 * y
    model = SymbolicModel(x, z)
    assert [step.name for step in model.plan.steps] == ["GetAttr_1", "wrap(__add__)_1", "GetAttr_2", "wrap(__rmul__)_1"]
    assert model([5]) == 2 * ([5] + [3])
    assert model.interpret([5]) == [5, 3, 5, 3]


def test_shapes_where_an_operation_moves_the_batch():
    x = Input((3, 4))
    assert x[0].shape == (3, 4)
    assert x.sum(0).shape == (3, 4)
    assert x.view(-1, 4).shape == (None, 4)  # 3 rows per example: the first size follows the batch
    assert (x * 2).shape == (None, 3, 4)
    row = x[0]
    model = SymbolicModel(row, row * 2)
    assert model.input_shape == (3, 4)
    with pytest.raises(ValueError, match=r"expects a tensor of shape \(3, 4\), got \(7, 4\)"):
        model(torch.rand(7, 4))


def test_recording_a_layer_leaves_its_buffers_alone():
    torch.manual_seed(0)
    norm = nn.BatchNorm2d(3)
    fresh = {k: v.clone() for k, v in norm.state_dict().items()}
    x = Input((3, 4, 4))
    y = norm(x)
    x(norm)
    for key, value in norm.state_dict().items():
        assert torch.equal(value, fresh[key]), key
    model = SymbolicModel(x, y)
    data = torch.rand(5, 3, 4, 4)
    reference = nn.BatchNorm2d(3)
    assert torch.equal(model(data), reference(data))
    assert torch.equal(norm.running_mean, reference.running_mean), "real calls do update the statistics"


def test_rng_states_of_initialised_cuda_devices_are_restored_too(monkeypatch):
    # No GPU here: stand-ins for torch.cuda check that the CUDA branch saves and restores.
    from symgraph_torch import _tracing

    states = {"cuda": ["state-0"]}
    restored: list[list[str]] = []

    def fake_set(new: list[str]) -> None:
        restored.append(new)

    monkeypatch.setattr(_tracing.torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(_tracing.torch.cuda, "get_rng_state_all", lambda: list(states["cuda"]))
    monkeypatch.setattr(_tracing.torch.cuda, "set_rng_state_all", fake_set)

    def draw() -> None:
        states["cuda"] = ["changed"]
        raise RuntimeError("the layer failed")

    with pytest.raises(RuntimeError, match="the layer failed"):
        _tracing.rng_neutral(draw)
    assert restored == [["state-0"]]


def test_steps_recorded_through_torch_python_code_point_at_the_users_line():
    # F.normalize, torch.unique and nn.Sequential run torch Python frames between
    # this line and the recording; the step must name this file, as errors quote it.
    x = Input((4,))
    here = sys._getframe().f_lineno
    normalized = torch.nn.functional.normalize(x)
    unique = torch.unique(normalized)
    sequential = nn.Sequential(nn.Linear(4, 4), nn.ReLU())(normalized)
    model = SymbolicModel(x, (unique, sequential))
    where = [step.where for step in model.plan.steps]
    assert where == [f"{__file__}:{here + k}" for k in (1, 2, 3)]
