"""Shapes, ``features``, integer example values and iteration, as pytorch-symbolic programs use them.

The oracle of every shape here is eager torch: the same function run on real data
of two batch sizes (and, for free sizes, two lengths). A size that differs between
the two runs follows the batch (or the free size) and must show as ``None``; every
other size must show as it is. Where a model is built, it is run on fresh data and
compared with the same layers called eagerly.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import symgraph  # noqa: E402
import symgraph_torch._tensor as tensor_module  # noqa: E402
from symgraph_torch import Input, SymbolicModel, add_to_graph  # noqa: E402
from symgraph_torch._tensor import EXAMPLE_BATCH  # noqa: E402
from symgraph_torch.cuda_graphs import CudaGraphsFallbackWarning, FakeDeviceLayer  # noqa: E402

BATCHES = (3, 4)  # neither is the example batch (2), and they differ


def eager_shape(fn: Callable[..., Any], shapes: Sequence[tuple[int, ...]]) -> tuple[int | None, ...]:
    """The shape ``fn``'s result should show: ``None`` where it differs between two batch sizes."""
    results = []
    for batch in BATCHES:
        generator = torch.Generator().manual_seed(batch)
        with torch.no_grad():
            results.append(fn(*(torch.rand(batch, *shape, generator=generator) for shape in shapes)).shape)
    first, second = results
    assert len(first) == len(second)
    return tuple(a if a == b else None for a, b in zip(first, second, strict=True))


def assert_replays(
    inputs: Sequence[Any], output: Any, fn: Callable[..., Any], shapes: Sequence[tuple[int, ...]]
) -> None:
    """A model from ``inputs`` to ``output`` computes what ``fn`` computes, on a batch of 5."""
    model = SymbolicModel(tuple(inputs), output).eval()
    data = [torch.rand(5, *shape) for shape in shapes]
    with torch.no_grad():
        assert torch.equal(model(*data), fn(*data))


# -- features ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "real"),
    [
        (lambda: Input((16,)), torch.rand(3, 16)),
        (lambda: Input((7, 5)), torch.rand(3, 7, 5)),
        (lambda: Input((3, 8, 6)), torch.rand(3, 3, 8, 6)),
        (lambda: Input((7,), batch_size=4), torch.rand(4, 7)),
        (lambda: Input((None, 6)), torch.rand(3, 9, 6)),
        (lambda: Input((None, 6), batch_dim=1), torch.rand(9, 3, 6)),
        (lambda: Input((4, 3), batched=False), torch.rand(4, 3)),
    ],
)
def test_features_is_the_size_of_the_last_dimension(make, real):
    # pytorch-symbolic's features is shape[-1] for any layout.
    assert make().features == real.shape[-1]


def test_features_of_a_sequence_sizes_an_lstm_and_a_linear_layer():
    torch.manual_seed(0)
    steps = Input((7, 5))
    lstm = nn.LSTM(steps.features, 8, batch_first=True)
    out, _ = lstm(steps)
    head = nn.Linear(out.features, 3)
    model = SymbolicModel(steps, head(out))
    data = torch.rand(4, 7, 5)
    assert torch.equal(model(data), head(lstm(data)[0]))
    assert (lstm.input_size, head.in_features) == (5, 8)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Input(()), r"\.features needs .* this tensor has shape \(None,\) \(1 dimension\)"),
        (lambda: Input((5,), batched=False), r"\.features needs .* shape \(5,\) \(1 dimension\)"),
        (lambda: Input((), batched=False), r"\.features needs .* shape \(\) \(0 dimensions\)"),
        (
            lambda: Input((4, None)),
            r"\.features: the last size of this tensor \(shape \(None, 4, None\)\) is not known",
        ),
        (lambda: Input((None,)), r"\.features: the last size .*\(None, None\)"),
    ],
)
def test_features_refuses_clearly_without_a_known_last_size(make, message):
    x = make()
    with pytest.raises(symgraph.TraceError, match=message):
        _ = x.features
    assert x.children == ()


def test_features_of_a_step_that_fails_on_the_probe_is_refused():
    grid = Input((3, None))
    flat = grid.view(-1, 48)  # fits the example's 16 columns only
    assert flat.shape == (None, None)
    with pytest.raises(symgraph.TraceError, match=r"\.features: the last size"):
        _ = flat.features


# -- integer example values ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [(0, 10, range(10)), (3, 7, range(3, 7)), (-2, 2, range(-2, 2)), (0.5, 3.5, range(1, 4))],
)
def test_integer_examples_go_from_min_value_up_to_not_including_max_value(low, high, expected):
    # The oracle: torch.randint(low, high) draws from range(low, high), as pytorch-symbolic's truncation does.
    values = Input((4000,), dtype=torch.int64, min_value=low, max_value=high).v
    assert set(values.unique().tolist()) == set(expected)
    assert values.dtype == torch.int64


def test_default_bounds_give_zeros_for_integers_and_both_values_for_booleans():
    assert torch.equal(Input((50,), dtype=torch.int32).v, torch.zeros(2, 50, dtype=torch.int32))
    flags = Input((200,), dtype=torch.bool).v
    assert flags.dtype == torch.bool and set(flags.unique().tolist()) == {False, True}
    floats = Input((1000,)).v
    assert float(floats.min()) >= 0.0 and float(floats.max()) < 1.0


def test_max_value_may_be_the_vocabulary_size_of_an_embedding():
    torch.manual_seed(0)
    vocabulary = 10
    tokens = Input((12,), dtype=torch.long, max_value=vocabulary)
    embedding = nn.Embedding(vocabulary, 4)
    model = SymbolicModel(tokens, embedding(tokens))
    data = torch.randint(0, vocabulary, (5, 12))
    assert torch.equal(model(data), embedding(data))
    # The probe draws from the same bounds: a free length still shows its sizes.
    any_length = Input((None,), dtype=torch.long, max_value=vocabulary)
    embedded = embedding(any_length)
    expected = []
    for batch, length in ((3, 7), (4, 9)):
        expected.append(embedding(torch.randint(0, vocabulary, (batch, length))).shape)
    assert embedded.shape == tuple(a if a == b else None for a, b in zip(*expected, strict=True)) == (None, None, 4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"dtype": torch.int64, "min_value": 0.5, "max_value": 1.0},
            r"min_value \(0\.5\) up to, not including, max_value \(1\.0\)",
        ),
        ({"dtype": torch.int64, "min_value": 3, "max_value": 3}, r"min_value \(3\) must be below max_value \(3\)"),
        ({"dtype": torch.uint8, "max_value": 300}, r"max_value \(300\) do not fit dtype torch\.uint8"),
        (
            {"dtype": torch.int8, "min_value": -129, "max_value": 0},
            r"min_value \(-129\).* do not fit dtype torch\.int8",
        ),
        ({"dtype": torch.int32, "max_value": float("inf")}, r"min_value \(0\.0\) and max_value \(inf\) must be finite"),
    ],
)
def test_integer_bounds_that_hold_no_value_of_the_dtype_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Input((3,), **kwargs)


def test_the_largest_bounds_of_a_small_dtype_are_accepted():
    values = Input((3000,), dtype=torch.uint8, min_value=0, max_value=256).v
    assert int(values.max()) == 255 and int(values.min()) == 0


# -- a leading size equal to the example batch ------------------------------------------------------------
def _two_layer_lstm() -> nn.LSTM:
    torch.manual_seed(0)
    return nn.LSTM(5, 8, num_layers=2, batch_first=True)


with torch.random.fork_rng(devices=[]):  # layers made at import leave torch's global RNG as it was
    LSTM = _two_layer_lstm()
    GRU = nn.GRU(5, 6, num_layers=2, batch_first=True)
    CONV = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten())

CASES: dict[str, tuple[Callable[..., Any], list[tuple[int, ...]]]] = {
    "lstm state h": (lambda x: LSTM(x)[1][0], [(7, 5)]),
    "lstm state c": (lambda x: LSTM(x)[1][1], [(7, 5)]),
    "lstm output": (lambda x: LSTM(x)[0], [(7, 5)]),
    "gru state": (lambda x: GRU(x)[1], [(2, 5)]),
    "stack": (lambda a, b: torch.stack([a, b]), [(5,), (5,)]),
    "stack on dim 1": (lambda a, b: torch.stack([a, b], dim=1), [(5,), (5,)]),
    "transpose": (lambda x: x.transpose(0, 1), [(2, 5)]),
    "permute": (lambda x: x.permute(1, 0, 2), [(2, 5)]),
    "movedim": (lambda x: torch.movedim(x, 0, 1), [(2, 3)]),
    "expand": (lambda x: x.unsqueeze(0).expand(2, -1, -1), [(5,)]),
    "batch kept with size 2 second": (lambda x: x * 2, [(2, 5)]),
    "conv, batchnorm, flatten": (lambda x: CONV(x), [(3, 6, 6)]),
    "sum over the batch": (lambda x: x.sum(0), [(2, 3)]),
    "first example": (lambda x: x[0], [(2, 3)]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_shapes_follow_eager_torch(case):
    fn, shapes = CASES[case]
    inputs = [Input(shape) for shape in shapes]
    CONV.eval()
    output = fn(*inputs)
    assert output.shape == eager_shape(fn, shapes)
    assert_replays(inputs, output, fn, shapes)


def test_the_state_of_a_two_layer_lstm_has_its_layers_first():
    out, (h, c) = LSTM(Input((7, 5)))
    assert (out.shape, h.shape, c.shape) == ((None, 7, 8), (2, None, 8), (2, None, 8))
    assert (h.features, h.numel) == (8, 16)


class Doubler(nn.Module):
    """A layer of the user's own: never run on the probe."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return x * 2


@pytest.mark.parametrize(
    ("after", "shown"),
    [
        (lambda y: y, (None, 16)),
        (lambda y: nn.Linear(16, 4)(y), (None, 4)),
        (lambda y: torch.relu(y), (None, 16)),
        (lambda y: y.view(-1, 4), (None, 4)),
        (lambda y: y[0], (16,)),
        (lambda y: torch.stack([y, y]), (2, None, 16)),
    ],
)
def test_after_a_layer_of_ones_own_the_batch_is_taken_to_stay_first(after, shown):
    torch.manual_seed(0)
    custom = Doubler()
    fn = lambda x: after(custom(x))  # noqa: E731
    x = Input((16,))
    torch.manual_seed(1)
    output = fn(x)
    calls = custom.calls
    assert output.shape == shown
    assert custom.calls == calls == 1  # asking for the shape did not run it again
    torch.manual_seed(1)
    assert shown == eager_shape(fn, [(16,)])


def test_after_a_function_of_ones_own_the_batch_is_taken_to_stay_first():
    seen = []

    def double(t):  # type: ignore[no-untyped-def]
        seen.append(tuple(t.shape))
        return t * 2

    x = Input((16,))
    doubled = add_to_graph(double, x)
    head = nn.Linear(16, 4)
    out = F.relu(head(doubled))
    assert (doubled.shape, out.shape) == ((None, 16), (None, 4))
    assert seen == [(EXAMPLE_BATCH, 16)]  # recorded once, never probed
    data = torch.rand(5, 16)
    assert torch.equal(SymbolicModel(x, out)(data), F.relu(head(data * 2)))


def test_a_step_that_fails_on_the_probe_keeps_the_batch_first(monkeypatch):
    x = Input((16,))
    doubled, first = x * 2, x[0]

    def fail(op, values):  # type: ignore[no-untyped-def]
        raise RuntimeError("the probe cannot run this step")

    monkeypatch.setattr(tensor_module, "_evaluate_at_trace_time", fail)
    # The example batch's size first: taken for the batch, as eager torch agrees here.
    assert doubled.shape == eager_shape(lambda t: t * 2, [(16,)]) == (None, 16)
    assert first.shape == (None,)  # another size first: nothing is known (eager: (16,))


def test_the_toy_resnet_keeps_its_shapes():
    torch.manual_seed(0)
    inputs = Input((3, 16, 16))
    x = nn.Conv2d(inputs.C, 8, 3, padding=1)(inputs)(nn.BatchNorm2d(8))(nn.ReLU())
    block = nn.Conv2d(x.C, 8, 3, padding=1)(x)(nn.ReLU()) + x
    pooled = nn.AvgPool2d(kernel_size=block.HW)(block)(nn.Flatten())
    logits = nn.Linear(pooled.features, 10)(pooled)
    shapes = [step.shape for step in (x, block, pooled, logits)]
    assert shapes == [(None, 8, 16, 16), (None, 8, 16, 16), (None, 8), (None, 10)]
    model = SymbolicModel(inputs, logits).eval()
    for batch in BATCHES:
        assert model(torch.rand(batch, 3, 16, 16)).shape == (batch, 10)


# -- steps known to keep the batch first are not run on the probe -----------------------------------------
with torch.random.fork_rng(devices=[]):
    KEEPERS: dict[str, tuple[Callable[..., Any], list[tuple[int, ...]]]] = {
        "conv1d": (nn.Conv1d(3, 4, 3), [(3, 9)]),
        "conv2d": (nn.Conv2d(3, 4, 3, stride=2), [(3, 9, 9)]),
        "conv transpose 2d": (nn.ConvTranspose2d(3, 2, 2, stride=2), [(3, 4, 4)]),
        "conv3d": (nn.Conv3d(2, 2, 2), [(2, 3, 3, 3)]),
        "max pool": (nn.MaxPool2d(2), [(2, 6, 6)]),
        "adaptive pool": (nn.AdaptiveAvgPool2d(1), [(2, 6, 6)]),
        "linear on a sequence": (nn.Linear(5, 2), [(7, 5)]),
        "embedding": (lambda t: nn.Embedding(10, 2)((t * 9).long()), [(7,)]),
        "flatten": (nn.Flatten(), [(2, 3, 4)]),
        "flatten from dimension 2": (nn.Flatten(2), [(2, 3, 4)]),
        "flatten everything": (nn.Flatten(0), [(1,)]),
        "batchnorm": (nn.BatchNorm1d(2), [(2, 5)]),
        "layernorm": (nn.LayerNorm(5), [(2, 5)]),
        "softmax over the batch": (nn.Softmax(dim=0), [(2,)]),
        "relu": (nn.ReLU(), [(2, 2)]),
        "F.relu": (F.relu, [(2,)]),
        "F.softmax": (lambda t: F.softmax(t, dim=-1), [(2, 3)]),
        "relu method": (lambda t: t.relu(), [(2, 3)]),
        "flatten method": (lambda t: t.flatten(1), [(2, 3, 4)]),
        "flatten method from 0": (lambda t: t.flatten(), [(1,)]),
        "torch.flatten": (lambda t: torch.flatten(t, 1), [(2, 3)]),
        "torch.flatten from 0": (lambda t: torch.flatten(t), [(1,)]),
        "cat on dim 1": (lambda a, b: torch.cat([a, b], dim=1), [(2, 3), (4, 3)]),
        "cat on dim -1": (lambda a, b: torch.cat((a, b), -1), [(2,), (2,)]),
        "cat on dim 0": (lambda a, b: torch.cat([a, b]), [(2,), (2,)]),
        "sum of two": (lambda a, b: a + b, [(2, 3), (2, 3)]),
        "broadcast into the batch": (lambda a, b: a[:, None] + b, [(3,), (3,)]),
        "matmul of squares": (lambda a, b: a @ b, [(2, 2), (2, 2)]),
        "scaled": (lambda t: 2 * t - 1, [(2,)]),
    }


# The dimension 0 of these is not the batch, or may not be: they run on the probe.
PROBED = {"flatten everything", "flatten method from 0", "torch.flatten from 0", "cat on dim 0"}
PROBED |= {"broadcast into the batch"}


@pytest.mark.parametrize("case", list(KEEPERS))
def test_steps_that_keep_the_batch_first_show_what_eager_torch_gives(case, monkeypatch):
    fn, shapes = KEEPERS[case]
    inputs = [Input(shape) for shape in shapes]
    output = fn(*inputs)
    evaluate = tensor_module._evaluate_at_trace_time
    probed = []

    def counted(op, values):  # type: ignore[no-untyped-def]
        probed.append(op)
        return evaluate(op, values)

    monkeypatch.setattr(tensor_module, "_evaluate_at_trace_time", counted)
    assert output.shape == eager_shape(fn, shapes)
    assert bool(probed) == (case in PROBED)
    if case != "embedding":  # its example ids come from the inputs' values
        assert_replays(inputs, output, fn, shapes)


def counting(layer: nn.Module, calls: dict[str, int], name: str) -> nn.Module:
    """``layer``, counting its calls in ``calls[name]`` through a forward hook."""

    def hook(module: nn.Module, args: Any, result: Any) -> None:
        calls[name] = calls.get(name, 0) + 1

    layer.register_forward_hook(hook)
    return layer


def test_a_convolutional_network_is_not_run_on_the_probe():
    torch.manual_seed(0)
    calls: dict[str, int] = {}
    conv = counting(nn.Conv2d(3, 8, 3, padding=1), calls, "conv")
    norm = counting(nn.BatchNorm2d(8), calls, "norm")
    head = counting(nn.Linear(8 * 4 * 4 + 8, 2), calls, "head")
    images = Input((3, 8, 8))
    x = F.relu(norm(conv(images)))
    x = nn.MaxPool2d(2)(x + x)(nn.Flatten())
    pooled = torch.flatten(nn.AdaptiveAvgPool2d(1)(norm(conv(images))), 1)
    logits = head(nn.Dropout(0.1)(torch.cat([x, pooled], dim=1)))
    model = SymbolicModel(images, logits)
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    assert (x.shape, pooled.shape, logits.shape) == ((None, 128), (None, 8), (None, 2))
    assert calls == {"conv": 2, "norm": 2, "head": 1}  # recorded, never probed
    model.eval()
    data = torch.rand(5, 3, 8, 8)
    with torch.no_grad():
        normed = norm(conv(data))
        y = F.relu(normed)
        branches = [nn.MaxPool2d(2)(y + y).flatten(1), torch.flatten(F.adaptive_avg_pool2d(normed, 1), 1)]
        want = head(torch.cat(branches, 1))
        assert torch.equal(model(data), want)


def test_only_the_steps_after_the_batch_led_ones_run_on_the_probe():
    torch.manual_seed(0)
    calls: dict[str, int] = {}
    conv = counting(nn.Conv1d(4, 5, 1), calls, "conv")
    lstm = counting(nn.LSTM(5, 6, num_layers=2), calls, "lstm")
    signal = Input((4, 9))
    features = conv(signal).permute(2, 0, 1)  # (time, batch, channels)
    out, (h, _) = lstm(features)
    assert (features.shape, out.shape, h.shape) == ((9, None, 5), (9, None, 6), (2, None, 6))
    assert calls == {"conv": 1, "lstm": 2}  # the LSTM ran on the probe; the convolution did not
    data = torch.rand(3, 4, 9)
    with torch.no_grad():
        assert torch.equal(SymbolicModel(signal, h)(data), lstm(conv(data).permute(2, 0, 1))[1][0])


# -- iteration -------------------------------------------------------------------------------------------
def test_iterating_over_the_layers_of_an_lstm_state():
    torch.manual_seed(0)
    steps = Input((7, 5))
    lstm = nn.LSTM(5, 8, num_layers=3, batch_first=True)
    _, (h, _) = lstm(steps)
    assert h.shape == (3, None, 8)
    layers = list(h)
    assert [layer.shape for layer in layers] == [(None, 8)] * 3
    *_, top = h
    model = SymbolicModel(steps, (*layers, top))
    data = torch.rand(5, 7, 5)
    with torch.no_grad():
        got, want = model(data), lstm(data)[1][0]
    for i in range(3):
        assert torch.equal(got[i], want[i])
    assert torch.equal(got[3], want[-1])


def test_iterating_over_a_stack_and_a_transposed_pair():
    a, b = Input((5,)), Input((5,))
    first, second = torch.stack([a, b])
    pair = Input((2, 5))
    left, right = pair.transpose(0, 1)
    assert first.shape == second.shape == left.shape == right.shape == (None, 5)
    model = SymbolicModel((a, b, pair), (first, second, left, right))
    x, y, z = torch.rand(4, 5), torch.rand(4, 5), torch.rand(4, 2, 5)
    got = model(x, y, z)
    for value, expected in zip(got, (x, y, z[:, 0], z[:, 1]), strict=True):
        assert torch.equal(value, expected)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Input((3,)),
        lambda: Input((2, 5)),
        lambda: Input((3,)) * 2,
        lambda: Doubler()(Input((16,))),
        lambda: Input((None, 8), batch_dim=1),  # a free length first
        lambda: Input(batch_shape=(None, 4)),
    ],
)
def test_iterating_over_an_unknown_first_size_is_still_refused(make):
    x = make()
    assert x.shape[0] is None
    with pytest.raises(symgraph.TraceError, match="first dimension is the batch, whose size is unknown"):
        list(x)
    assert x.children == ()


# -- the cuda_graphs executor slices padded outputs by the recorded shapes -------------------------------
def test_padded_buckets_give_an_lstm_state_exactly_as_eager_code():
    lstm = _two_layer_lstm()
    steps = Input((7, 5))
    out, (h, _) = lstm(steps)
    model = SymbolicModel(
        steps, (out, h), executor="cuda_graphs", executor_options={"device_layer": FakeDeviceLayer(), "buckets": [8]}
    ).eval()
    assert model.output_shape == ((None, 7, 8), (2, None, 8))
    with torch.no_grad():
        for batch in (3, 8, 1):
            data = torch.rand(batch, 7, 5)
            with warnings.catch_warnings():
                # Padding to a bucket does not give this state (its batch is not first): said once.
                warnings.simplefilter("ignore", CudaGraphsFallbackWarning)
                got = model(data)
            want_out, (want_h, _) = lstm(data)
            assert got[0].shape == want_out.shape and got[1].shape == want_h.shape == (2, batch, 8)
            torch.testing.assert_close(got[0], want_out)
            torch.testing.assert_close(got[1], want_h)
