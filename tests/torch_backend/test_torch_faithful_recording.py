"""Issue 12: a model computes what the same code computes eagerly, or recording refuses.

Every test compares with a hand-written ``nn.Module`` over the same module
objects (or the same seed), or checks the exact refusal.
"""

from __future__ import annotations

import copy
import threading

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import symgraph
from symgraph_torch import Input, SymbolicModel
from symgraph_torch._tracing import SymbolicTorchValue


# -- item 3: symbolic values inside containers -------------------------------------------
class FPN(nn.Module):
    """Sums lateral projections in training, only the first one in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.lateral = nn.Linear(4, 4)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        if self.training:
            return sum(self.lateral(f) for f in features)  # type: ignore[return-value]
        return self.lateral(features[0])


class FPNByHand(nn.Module):
    def __init__(self, stem: nn.Module, fpn: FPN) -> None:
        super().__init__()
        self.stem, self.fpn = stem, fpn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fpn([self.stem(x), x * 2])


def test_a_layer_given_a_list_of_symbolic_tensors_is_one_layer_call() -> None:
    torch.manual_seed(0)
    stem, fpn = nn.Linear(4, 4), FPN()
    x = Input((4,))
    model = SymbolicModel(x, fpn([stem(x), x * 2]))
    oracle = FPNByHand(stem, fpn)
    assert [name for name, _ in model.named_children()] == ["Linear_1", "FPN_1"]
    assert list(model.state_dict()) == [
        "Linear_1.weight",
        "Linear_1.bias",
        "FPN_1.lateral.weight",
        "FPN_1.lateral.bias",
    ]
    data = torch.rand(3, 4)
    assert torch.equal(model(data), oracle(data))
    model.eval()
    assert not fpn.training
    assert torch.equal(model(data), oracle(data))  # the layer's own branch follows eval()
    assert torch.equal(model(data), fpn.lateral(stem(data)))
    model.train()
    assert torch.equal(model(data), oracle(data))


def test_a_layer_given_a_dict_keyword_of_symbolic_tensors_is_recorded() -> None:
    class Pick(nn.Module):
        def forward(self, *, parts: dict[str, torch.Tensor]) -> torch.Tensor:
            return parts["a"] - parts["b"]

    a, b = Input((2,)), Input((2,))
    pick = Pick()
    model = SymbolicModel((a, b), pick(parts={"a": a, "b": b}))
    assert [name for name, _ in model.named_children()] == ["Pick_1"]
    left, right = torch.rand(3, 2), torch.rand(3, 2)
    assert torch.equal(model(left, right), pick(parts={"a": left, "b": right}))


def test_an_lstm_fed_a_packed_sequence_of_symbolic_tensors_is_one_layer_call() -> None:
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 5, batch_first=True)
    x = Input((4, 3), batch_size=2)
    lengths = torch.tensor([4, 2])
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True)
    output, (hidden, _) = lstm(packed)
    model = SymbolicModel(x, hidden)
    assert "LSTM_1" in dict(model.named_children())
    assert [k for k in model.state_dict() if k.startswith("LSTM_1.")] == [f"LSTM_1.{k}" for k in lstm.state_dict()]
    data = torch.rand(2, 4, 3)
    _, (expected, _) = lstm(nn.utils.rnn.pack_padded_sequence(data, lengths, batch_first=True))
    assert torch.allclose(model(data), expected)


# -- item 6: tensors computed from parameters outside the graph ----------------------------
def test_a_tensor_computed_from_parameters_is_refused_with_the_way_to_record_it() -> None:
    emb = nn.Embedding(10, 4)
    x = Input((5, 4))
    with pytest.raises(
        symgraph.TraceError,
        match=r"the \+ operator: a constant tensor argument of shape \(5, 4\) "
        r"was computed from parameters outside the graph \(grad_fn=EmbeddingBackward0\), at .*"
        r"test_torch_faithful_recording.py:\d+\..*pos_emb\(torch.arange\(x.size\(1\)\)\)",
    ):
        x + emb(torch.arange(5))
    with pytest.raises(
        symgraph.TraceError, match=r"the @ operator: .*grad_fn=PermuteBackward0.*F.linear\(h, emb.weight\)"
    ):
        x @ emb.weight.T
    with pytest.raises(symgraph.TraceError, match=r"cat\(\): .*grad_fn="):
        torch.cat([x, emb(torch.arange(5))[None]], dim=1)
    with torch.no_grad():
        view = emb.weight.T
    with pytest.raises(symgraph.TraceError, match=r"a view of a parameter"):
        F.linear(x, view)
    with pytest.raises(symgraph.TraceError, match=r"the Bilinear layer: .*grad_fn="):
        nn.Bilinear(4, 4, 2)(x, emb(torch.arange(5)))
    assert not x.node.children  # nothing was recorded


class PositionalByHand(nn.Module):
    def __init__(self, emb: nn.Embedding) -> None:
        super().__init__()
        self.emb = emb

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.emb(torch.arange(x.size(1)))


def assert_same_grads_over_two_backward_passes(
    model: nn.Module, oracle: nn.Module, emb: nn.Embedding, data: torch.Tensor
) -> None:
    """Two backward passes through each: a frozen constant would fail the second, or miss the gradient."""
    for _ in range(2):
        model(data).sum().backward()
    expected = emb.weight.grad.clone()  # type: ignore[union-attr]
    emb.weight.grad = None
    for _ in range(2):
        oracle(data).sum().backward()
    assert torch.equal(emb.weight.grad, expected)  # type: ignore[arg-type]


def test_positional_embedding_recorded_in_the_graph_follows_its_parameters() -> None:
    torch.manual_seed(0)
    emb = nn.Embedding(5, 4)
    x = Input((5, 4))
    model = SymbolicModel(x, x + emb(torch.arange(x.size(1))))
    oracle = PositionalByHand(emb)
    assert [name for name, _ in model.named_children()] == ["Embedding_1"]
    data = torch.rand(3, 5, 4)
    assert torch.equal(model(data), oracle(data))
    assert_same_grads_over_two_backward_passes(model, oracle, emb, data)
    clone = copy.deepcopy(model)
    assert torch.equal(clone(data), model(data))
    with torch.no_grad():
        emb.weight.add_(1.0)  # training changed it: the model sees it
    assert torch.equal(model(data), oracle(data))


class TiedByHand(nn.Module):
    def __init__(self, emb: nn.Embedding) -> None:
        super().__init__()
        self.emb = emb

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.linear(self.emb(tokens), self.emb.weight)


def test_a_tied_head_written_with_the_parameter_keeps_the_tie() -> None:
    torch.manual_seed(0)
    emb = nn.Embedding(7, 4)
    tokens = Input((3,), dtype=torch.int64, max_value=6)
    model = SymbolicModel(tokens, F.linear(emb(tokens), emb.weight))
    oracle = TiedByHand(emb)
    data = torch.randint(0, 7, (2, 3))
    assert torch.equal(model(data), oracle(data))
    assert_same_grads_over_two_backward_passes(model, oracle, emb, data)
    assert torch.equal(copy.deepcopy(model)(data), model(data))
    model.double()
    assert emb.weight.dtype == torch.float64
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert torch.equal(model(data), oracle(data))


# -- item 7: in-place operations -------------------------------------------------------
@pytest.mark.parametrize(
    ("spell", "name"),
    [
        (lambda h, m: h.relu_(), "relu_"),
        (lambda h, m: F.relu_(h), "relu_"),
        (lambda h, m: h.mul_(m), "mul_"),
        (lambda h, m: h.add_(1), "add_"),
        (lambda h, m: F.relu(h, inplace=True), r"relu\(\.\.\., inplace=True\)"),
        (lambda h, m: torch.add(h, 1, out=torch.empty(1, 4)), r"add\(\.\.\., out=\.\.\.\)"),
    ],
)
def test_in_place_operations_are_refused_with_the_out_of_place_spelling(spell, name) -> None:  # type: ignore[no-untyped-def]
    x = Input((4,))
    h = x * 1
    before = h.v.clone()
    with pytest.raises(
        symgraph.TraceError,
        match=rf"^{name} changes a tensor in place, at .*test_torch_faithful_"
        r"recording.py:\d+: .*Use the out-of-place form",
    ):
        spell(h, x)
    assert torch.equal(h.v, before)  # the example value is left alone
    assert not h.node.children


def test_in_place_layers_still_match_eager() -> None:
    torch.manual_seed(0)
    linear, relu = nn.Linear(4, 4), nn.ReLU(inplace=True)
    x = Input((4,))
    h = linear(x)
    model = SymbolicModel(x, relu(h) * 2)
    data = torch.randn(3, 4)
    assert torch.equal(model(data), relu(linear(data)) * 2)


# -- item 8: symbolic sizes into torch factories and real tensors' methods -------------------
class ClsTokenByHand(nn.Module):
    def __init__(self, token: nn.Parameter, emb: nn.Embedding) -> None:
        super().__init__()
        self.token, self.emb = token, emb

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.token.expand((x.size(0), -1, -1))
        x = torch.cat([tokens, x], dim=1)
        return x + self.emb(torch.arange(x.size(1))) + torch.zeros((x.size(0), 1, 4))


def test_sizes_of_symbolic_tensors_reach_torch_factories_and_real_tensors() -> None:
    torch.manual_seed(0)
    token, emb = nn.Parameter(torch.randn(1, 1, 4)), nn.Embedding(6, 4)
    x = Input((5, 4))
    assert type(x.size(0)) is SymbolicTorchValue and type(x.size(1)) is SymbolicTorchValue
    tokens = token.expand((x.size(0), -1, -1))
    joined = torch.cat([tokens, x], dim=1)
    out = joined + emb(torch.arange(joined.size(1))) + torch.zeros((joined.size(0), 1, 4))
    model = SymbolicModel(x, out)
    oracle = ClsTokenByHand(token, emb)
    for batch in (1, 3, 7):
        data = torch.rand(batch, 5, 4)
        assert torch.equal(model(data), oracle(data))


def test_arithmetic_and_unpacking_on_sizes_keep_recording() -> None:
    x = Input((6, 2))
    batch, length, _ = x.size()
    half = length // 2
    assert type(half) is SymbolicTorchValue and type(batch) is SymbolicTorchValue
    model = SymbolicModel(x, (torch.arange(half), torch.ones(batch * 2) * x.size()[0]))
    positions, scaled = model(torch.rand(4, 6, 2))
    assert torch.equal(positions, torch.arange(3))
    assert torch.equal(scaled, torch.ones(8) * 4)


def test_a_symbolic_size_first_among_varargs_sizes_gets_torchs_own_error() -> None:
    # torch parses ``zeros(n, 4)`` before any dispatch: the tuple spelling records.
    x = Input((4,))
    with pytest.raises(TypeError, match="zeros"):
        torch.zeros(x.size(0), 4)
    model = SymbolicModel(x, torch.zeros((x.size(0), 4)) + x)
    data = torch.rand(3, 4)
    assert torch.equal(model(data), torch.zeros((3, 4)) + data)


# -- item 13a: building in one thread leaves other threads' random streams alone -------------
def test_building_in_another_thread_does_not_rewind_this_threads_generator() -> None:
    stop = threading.Event()
    built: list[int] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            while not stop.is_set():
                x = Input((64,))
                h = nn.Dropout(0.5)(x)
                h = F.dropout(h, 0.3) + torch.rand_like(h) + torch.randn_like(h)
                SymbolicModel(x, nn.Dropout2d(0.2)(h.view(-1, 4, 4, 4)))
                built.append(1)
        except BaseException as error:
            errors.append(error)

    builder = threading.Thread(target=build)
    torch.manual_seed(123)
    got: list[torch.Tensor] = []
    builder.start()
    try:
        # Draw for as long as the other thread keeps building (at least 20 models).
        while len(built) < 20 or len(got) < 500:
            got.append(torch.rand(3))
    finally:
        stop.set()
        builder.join()
    assert not errors
    torch.manual_seed(123)
    expected = [torch.rand(3) for _ in got]
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))


def test_building_draws_what_building_by_hand_draws() -> None:
    torch.manual_seed(7)
    x = Input((4,))
    h = nn.Dropout(0.5)(nn.Linear(4, 8)(x))
    h = h + torch.rand_like(h)
    symbolic = SymbolicModel(x, nn.Linear(8, 2)(h))
    after_symbolic = torch.rand(3)
    torch.manual_seed(7)
    by_hand = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 2))
    assert torch.equal(symbolic.Linear_2.weight, by_hand[2].weight)
    assert torch.equal(after_symbolic, torch.rand(3))


# -- lazy modules ---------------------------------------------------------------------
def test_recording_a_lazy_module_leaves_its_buffers_as_initialised() -> None:
    x = Input((3, 4, 4))
    norm = nn.LazyBatchNorm2d()
    norm(x)
    assert torch.equal(norm.running_mean, torch.zeros(3))
    assert torch.equal(norm.running_var, torch.ones(3))
    assert norm.num_batches_tracked.item() == 0


def test_a_layer_made_with_a_symbolic_size_is_refused_with_the_number_to_use() -> None:
    x = Input((8,))
    with pytest.raises(symgraph.TraceError, match=r"x\.shape\[1\] or x\.features"):
        nn.Linear(x.size(1), 3)
    layer = nn.Linear(x.shape[1], 3)  # the spelling the message gives
    model = SymbolicModel(x, layer(x))
    data = torch.rand(2, 8)
    assert torch.equal(model(data), layer(data))


def test_augmented_assignment_rebinds_the_name_as_eager_code_does() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(4, 4)
    x = Input((4,))
    h = layer(x)
    h += x  # a residual written in place: the name h gets h + x
    total = torch.ones(1, 4)
    total += h  # a real tensor with a symbolic value: total is now symbolic too
    model = SymbolicModel(x, total)
    data = torch.rand(3, 4)
    expected = torch.ones(1, 4) + (layer(data) + data)
    assert torch.equal(model(data), expected)
    assert isinstance(total, symgraph.SymbolicData)
