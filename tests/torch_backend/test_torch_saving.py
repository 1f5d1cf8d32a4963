"""``symgraph.save`` and ``symgraph.load`` of torch models, against the original model.

The oracle of every round trip is the model that was saved: the loaded one must
compute exactly what it computes (``torch.equal``) on new inputs of another
batch size, in eval mode and, seeded identically, in train mode, and hold the
same state (names, values, dtypes, ties, frozen parameters, train/eval flags).
Where it is easy, the loaded model is also checked against eager code that
calls its own layers. Loading runs with pickle and ``torch.load`` replaced by
functions that fail, so a round trip that unpickled anything fails.

Refusals are checked to raise ``SaveError`` naming the layer or step, and to
leave nothing at the target path; hostile files to raise ``SpecError``.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn.utils import prune  # noqa: E402

import symgraph  # noqa: E402
import symgraph_torch  # noqa: E402
from symgraph_torch import Input, SymbolicModel  # noqa: E402
from tests.torch_backend import _saving_layers as layers  # noqa: E402
from tests.torch_backend.conftest import load_example  # noqa: E402

BATCH = 3  # the models are built on a batch of 2 (the symbolic example values)


# -- helpers ---------------------------------------------------------------------------


@pytest.fixture
def no_pickle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every use of pickle (and torch.load, which unpickles) fail for the rest of the test."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("pickle was used")

    class RefusingUnpickler:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise AssertionError("pickle.Unpickler was used")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", RefusingUnpickler)
    monkeypatch.setattr(torch, "load", refuse)


def round_trip(model: nn.Module, path: Path, **load_options: Any) -> Any:
    saved = symgraph.save(model, path)
    assert saved == path
    return symgraph.load(saved, **load_options)


def outputs(value: Any) -> list[torch.Tensor]:
    """The tensors of a model's output, flattened in order."""
    if isinstance(value, torch.Tensor):
        return [value]
    assert isinstance(value, (tuple, list)), type(value)
    return [t for v in value for t in outputs(v)]


def assert_same_outputs(a: Any, b: Any) -> None:
    xs, ys = outputs(a), outputs(b)
    assert len(xs) == len(ys)
    for x, y in zip(xs, ys, strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert torch.equal(x, y)


def tensor_groups(model: nn.Module) -> list[list[str]]:
    """The names of the model's tensors, grouped by the tensor object they name (tied weights share a group)."""
    groups: dict[int, list[str]] = {}
    for name, tensor in [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]:
        groups.setdefault(id(tensor), []).append(name)
    return sorted(sorted(names) for names in groups.values())


def assert_same_state(original: nn.Module, loaded: Any) -> None:
    """Same class of model, state, ties, frozen parameters and train/eval flags."""
    assert isinstance(loaded, symgraph_torch.SymbolicModel)
    assert isinstance(loaded, nn.Module)
    assert loaded.training == original.training
    assert [(n, m.training) for n, m in loaded.named_modules()] == [
        (n, m.training) for n, m in original.named_modules()
    ]
    ours, theirs = original.state_dict(), loaded.state_dict()
    assert list(theirs) == list(ours)
    for key in ours:
        assert theirs[key].dtype == ours[key].dtype, key
        assert torch.equal(theirs[key], ours[key]), key
    assert [(n, type(p), p.requires_grad) for n, p in loaded.named_parameters()] == [
        (n, type(p), p.requires_grad) for n, p in original.named_parameters()
    ]
    assert [n for n, _ in loaded.named_buffers()] == [n for n, _ in original.named_buffers()]
    for (name, ours_b), (_, theirs_b) in zip(original.named_buffers(), loaded.named_buffers(), strict=True):
        assert torch.equal(theirs_b, ours_b), name
    assert tensor_groups(loaded) == tensor_groups(original)


def assert_same_computation(original: nn.Module, loaded: Any, inputs: tuple[torch.Tensor, ...]) -> None:
    """Equal outputs in eval mode, and in train mode with the same random draws (dropout)."""
    original.eval()
    loaded.eval()
    with torch.no_grad():
        assert_same_outputs(loaded(*inputs), original(*inputs))
    original.train()
    loaded.train()
    torch.manual_seed(123)
    expected = original(*inputs)
    torch.manual_seed(123)
    assert_same_outputs(loaded(*inputs), expected)


# -- models ----------------------------------------------------------------------------
def transformer_block(dim: int = 8, heads: int = 2, seq: int = 5) -> SymbolicModel:
    x = Input((seq, dim))
    attended, _ = nn.MultiheadAttention(dim, heads, dropout=0.1, batch_first=True)(x, x, x)
    h = nn.LayerNorm(dim)(x + attended)
    mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
    return SymbolicModel(x, nn.LayerNorm(dim)(h + mlp(h)))


def transformer_block_eager(model: Any, x: torch.Tensor) -> torch.Tensor:
    """What :func:`transformer_block` computes, written with the model's own layers."""
    attended = model.MultiheadAttention_1(x, x, x)[0]
    h = model.LayerNorm_1(x + attended)
    return model.LayerNorm_2(h + model.Sequential_1(h))


def transformer_encoder_layer() -> SymbolicModel:
    x = Input((5, 8))
    return SymbolicModel(x, nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True)(x))


def nested_models() -> SymbolicModel:
    xi = Input((4,))
    inner = SymbolicModel(xi, nn.Linear(4, 4)(xi)(nn.Tanh())(nn.Dropout(0.3)))
    xo = Input((4,))
    return SymbolicModel(xo, nn.Linear(4, 2)(inner(inner(xo))))


def _images(size: int) -> Callable[[], tuple[torch.Tensor, ...]]:
    return lambda: (torch.rand(BATCH, 3, size, size),)


CASES: dict[str, tuple[Callable[[], SymbolicModel], Callable[[], tuple[torch.Tensor, ...]]]] = {
    "resnet": (lambda: load_example("resnet").build(), _images(32)),
    "vgg": (lambda: load_example("vgg").build(), _images(32)),
    "encoder_decoder": (
        lambda: load_example("encoder_decoder").build(),
        lambda: (torch.rand(BATCH, 3, 16, 16), torch.rand(BATCH, 6)),
    ),
    "lstm": (lambda: load_example("lstm").build(), lambda: (torch.randint(0, 50, (BATCH, 12)),)),
    "transformer_block": (transformer_block, lambda: (torch.rand(BATCH, 5, 8),)),
    "transformer_encoder_layer": (transformer_encoder_layer, lambda: (torch.rand(BATCH, 5, 8),)),
    "nested": (nested_models, lambda: (torch.rand(BATCH, 4),)),
}


def trained_a_little(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
    """A few train-mode calls, so that BatchNorm's running statistics are not the initial ones."""
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(*inputs)


# -- 1. round trips ----------------------------------------------------------------------
@pytest.mark.parametrize("suffix", ["", ".zip"], ids=["dir", "zip"])
@pytest.mark.parametrize("case", list(CASES))
def test_round_trip(case: str, suffix: str, tmp_path: Path, no_pickle: None) -> None:
    torch.manual_seed(0)
    build, make_inputs = CASES[case]
    model = build()
    trained_a_little(model, make_inputs())
    model.train()
    generator = torch.random.get_rng_state()
    loaded = round_trip(model, tmp_path / f"model{suffix}")
    assert torch.equal(torch.random.get_rng_state(), generator)  # loading initialises no weights
    assert (tmp_path / f"model{suffix}").is_dir() is (suffix == "")

    assert_same_state(model, loaded)
    result = loaded.load_state_dict(model.state_dict())  # strict: raises on any key or shape mismatch
    assert (result.missing_keys, result.unexpected_keys) == ([], [])
    assert_same_computation(model, loaded, make_inputs())
    if case == "transformer_block":
        x = torch.rand(BATCH + 1, 5, 8)
        loaded.eval()
        with torch.no_grad():
            assert torch.equal(loaded(x), transformer_block_eager(loaded, x))
        loaded.train()
        torch.manual_seed(7)
        expected = transformer_block_eager(loaded, x)
        torch.manual_seed(7)
        assert torch.equal(loaded(x), expected)


def test_round_trip_keeps_the_eval_mode(tmp_path: Path, no_pickle: None) -> None:
    torch.manual_seed(0)
    model = transformer_encoder_layer().eval()
    loaded = round_trip(model, tmp_path / "model.zip")
    assert loaded.training is False
    assert_same_state(model, loaded)


def test_nested_model_is_one_layer_used_twice(tmp_path: Path, no_pickle: None) -> None:
    torch.manual_seed(0)
    model = nested_models()
    model.SymbolicModel_1.eval()  # the inner model in eval while the outer one trains
    loaded = round_trip(model, tmp_path / "model")
    assert isinstance(loaded.SymbolicModel_1, symgraph_torch.SymbolicModel)
    assert loaded.training and not loaded.SymbolicModel_1.training
    assert_same_state(model, loaded)
    x = torch.rand(BATCH, 4)
    torch.manual_seed(1)
    expected = model(x)
    torch.manual_seed(1)
    assert torch.equal(loaded(x), expected)
    inner = loaded.SymbolicModel_1
    assert torch.equal(loaded(x), loaded.Linear_1(inner(inner(x))))  # the inner model's dropout is off


# -- 2. dtypes ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("convert", "dtype"), [("double", torch.float64), ("half", torch.float16), ("bfloat16", torch.bfloat16)]
)
def test_weights_and_input_dtype_round_trip(convert: str, dtype: torch.dtype, tmp_path: Path, no_pickle: None) -> None:
    torch.manual_seed(0)
    x = Input((4,))
    model = getattr(SymbolicModel(x, nn.Linear(4, 3)(nn.ReLU()(nn.Linear(4, 4)(x)))), convert)()
    loaded = round_trip(model, tmp_path / "model.zip")
    assert {t.dtype for t in loaded.state_dict().values()} == {dtype}
    assert_same_state(model, loaded)
    data = torch.rand(BATCH, 4, dtype=dtype)
    assert torch.equal(loaded(data), model(data))
    with pytest.raises(symgraph.InputError):
        model(data.float())  # the oracle: the original refuses float32 too
    with pytest.raises(symgraph.InputError, match=str(dtype)):
        loaded(data.float())


# -- 3. tied weights ----------------------------------------------------------------------
def test_tied_weights_stay_one_parameter(tmp_path: Path, no_pickle: None) -> None:
    torch.manual_seed(0)
    tokens = Input((6,), dtype=torch.long, min_value=0, max_value=10)
    embedding, head = nn.Embedding(10, 4), nn.Linear(4, 10, bias=False)
    head.weight = embedding.weight
    model = SymbolicModel(tokens, head(embedding(tokens)))
    loaded = round_trip(model, tmp_path / "model")
    assert loaded.Linear_1.weight is loaded.Embedding_1.weight
    assert_same_state(model, loaded)

    data, target = torch.randint(0, 10, (BATCH, 6)), torch.randint(0, 10, (BATCH * 6,))
    before = embedding.weight.detach().clone()
    for m in (model, loaded):
        optimizer = torch.optim.SGD(m.parameters(), lr=0.5)
        F.cross_entropy(m(data).reshape(-1, 10), target).backward()
        optimizer.step()
    assert not torch.equal(loaded.Embedding_1.weight, before)  # the step changed the shared weight
    assert loaded.Linear_1.weight is loaded.Embedding_1.weight
    assert_same_state(model, loaded)


# -- 4. frozen parameters, BatchNorm statistics, modes per layer -------------------------
def test_frozen_parameters_statistics_and_layer_modes(tmp_path: Path, no_pickle: None) -> None:
    torch.manual_seed(0)
    x = Input((4,))
    frozen = nn.Linear(4, 8).requires_grad_(False)
    dropout = nn.Dropout(0.5)
    model = SymbolicModel(x, nn.Linear(8, 2)(dropout(nn.BatchNorm1d(8)(frozen(x)))))
    for _ in range(3):
        model(torch.rand(6, 4))
    dropout.eval()  # one layer in eval while the model trains
    loaded = round_trip(model, tmp_path / "model.zip")

    assert_same_state(model, loaded)
    assert [p.requires_grad for p in loaded.Linear_1.parameters()] == [False, False]
    assert loaded.BatchNorm1d_1.num_batches_tracked.item() == 3
    assert loaded.training and not loaded.Dropout_1.training

    data = torch.rand(BATCH, 4)
    torch.manual_seed(5)
    expected = model(data)  # batch statistics, no dropout
    torch.manual_seed(5)
    assert torch.equal(loaded(data), expected)
    before = loaded.Linear_1.weight.clone()
    for m in (model, loaded):
        optimizer = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.1)
        m(data).sum().backward()
        optimizer.step()
    assert torch.equal(loaded.Linear_1.weight, before)
    assert_same_state(model, loaded)


def test_a_layer_in_train_mode_in_a_model_in_eval_mode(tmp_path: Path, no_pickle: None) -> None:
    x = Input((4,))
    dropout = nn.Dropout(0.5)
    model = SymbolicModel(x, nn.Linear(4, 4)(dropout(x))).eval()
    dropout.train()
    loaded = round_trip(model, tmp_path / "model")
    assert not loaded.training and loaded.Dropout_1.training
    data = torch.rand(BATCH, 4)
    torch.manual_seed(3)
    expected = model(data)
    torch.manual_seed(3)
    assert torch.equal(loaded(data), expected)


# -- 5. tensor constants -------------------------------------------------------------------
def constants_model() -> SymbolicModel:
    x = Input((4,))
    linear = nn.Linear(4, 4)
    scale = nn.Parameter(torch.rand(4))
    frozen_scale = nn.Parameter(torch.rand(4), requires_grad=False)
    y = linear(x + torch.arange(4.0)) * scale + (x @ linear.weight) * frozen_scale
    return SymbolicModel(x, y)


def test_tensor_constants_and_parameters_used_directly(tmp_path: Path, no_pickle: None) -> None:
    torch.manual_seed(0)
    model = constants_model()
    assert len(list(model.named_buffers())) == 1  # the arange
    loaded = round_trip(model, tmp_path / "model.zip")
    assert_same_state(model, loaded)
    # The layer's weight used in the graph is the layer's parameter, after loading too.
    assert any("Linear_1.weight" in group and len(group) == 2 for group in tensor_groups(loaded))
    assert all(isinstance(p, nn.Parameter) for _, p in loaded.named_parameters())

    data = torch.rand(BATCH, 4)
    assert_same_computation(model, loaded, (data,))
    # Gradients reach the loaded model's own parameters through the graph constants.
    model.zero_grad()
    model(data).sum().backward()
    loaded(data).sum().backward()
    for (name, ours), (_, theirs) in zip(model.named_parameters(), loaded.named_parameters(), strict=True):
        if ours.requires_grad:
            assert theirs.grad is not None and torch.equal(theirs.grad, ours.grad), name
        else:
            assert theirs.grad is None, name


def test_scalar_and_bool_constants(tmp_path: Path, no_pickle: None) -> None:
    x = Input((4,))
    mask = torch.tensor([True, False, True, False])
    model = SymbolicModel(x, x.masked_fill(mask, 0.0) * torch.tensor(2.5))
    loaded = round_trip(model, tmp_path / "model")
    assert_same_state(model, loaded)
    data = torch.rand(BATCH, 4)
    assert torch.equal(loaded(data), data.masked_fill(mask, 0.0) * 2.5)


# -- 6. to_spec, spec_constants, from_spec --------------------------------------------
@pytest.mark.parametrize("case", ["resnet", "constants"])
def test_from_spec_with_constants_equals_the_original(case: str, no_pickle: None) -> None:
    torch.manual_seed(0)
    if case == "resnet":
        model, inputs = CASES["resnet"][0](), CASES["resnet"][1]()
    else:
        model, inputs = constants_model(), (torch.rand(BATCH, 4),)
    spec = model.to_spec()
    text = json.dumps(spec)  # plain JSON
    rebuilt = symgraph_torch.SymbolicModel.from_spec(json.loads(text), constants=model.spec_constants())
    assert_same_state(model, rebuilt)
    assert_same_computation(model, rebuilt, inputs)


def test_from_spec_without_constants_builds_the_architecture() -> None:
    torch.manual_seed(0)
    model = CASES["resnet"][0]()
    spec = json.loads(json.dumps(model.to_spec()))
    fresh = symgraph_torch.SymbolicModel.from_spec(spec)
    ours, theirs = model.state_dict(), fresh.state_dict()
    assert list(theirs) == list(ours)
    assert [(t.shape, t.dtype) for t in theirs.values()] == [(t.shape, t.dtype) for t in ours.values()]
    assert not torch.equal(fresh.head.weight, model.head.weight)  # initialised afresh, not copied
    assert all(t.device.type == "cpu" for t in theirs.values())
    fresh.load_state_dict(ours)
    inputs = CASES["resnet"][1]()
    assert_same_computation(model, fresh, inputs)


def test_from_spec_without_constants_names_the_missing_constant() -> None:
    x = Input((4,))
    model = SymbolicModel(x, nn.Linear(4, 4)(x) + torch.arange(4.0))
    spec = model.to_spec()
    (constant,) = [key for key in spec["constants"] if not key.startswith("Linear_1.")]
    with pytest.raises(symgraph.SpecError, match=f"'{constant}'.*constants="):
        symgraph_torch.SymbolicModel.from_spec(spec)


# -- 7. refusals at save --------------------------------------------------------------------
def _one_layer(layer: nn.Module) -> SymbolicModel:
    x = Input((4,))
    return SymbolicModel(x, layer(x))


def _hooked() -> SymbolicModel:
    linear = nn.Linear(4, 4)
    model = _one_layer(linear)
    linear.register_forward_hook(lambda module, args, out: out * 0)
    return model


def _pruned() -> SymbolicModel:
    linear = nn.Linear(4, 4)
    model = _one_layer(linear)
    prune.l1_unstructured(linear, "weight", amount=0.5)
    return model


def _lambda() -> SymbolicModel:
    x = Input((4,))
    return SymbolicModel(x, symgraph.add_to_graph(lambda t: t * 2, x))


REFUSED: dict[str, tuple[Callable[[], SymbolicModel], str, tuple[str, ...]]] = {
    "renamed_argument": (lambda: _one_layer(layers.Renamed(2.0)), "'Renamed_1'", ("register_layer_spec", "torch.save")),
    "forward_hook": (_hooked, "'Linear_1'", ("register_layer_spec", "torch.save")),
    "pruned": (_pruned, "'Linear_1'", ("register_layer_spec", "torch.save")),
    "lambda": (_lambda, "<lambda>", ("pickle",)),
    "tensor_attribute": (
        lambda: _one_layer(layers.WithTensor(4)),
        "'WithTensor_1'",
        ("register_layer_spec", "torch.save"),
    ),
}


@pytest.mark.parametrize("suffix", ["", ".zip"], ids=["dir", "zip"])
@pytest.mark.parametrize("case", list(REFUSED))
def test_save_refuses(case: str, suffix: str, tmp_path: Path) -> None:
    build, named, advice = REFUSED[case]
    model = build()
    model(torch.rand(BATCH, 4))  # a working model, only not storable
    with pytest.raises(symgraph.SaveError) as error:
        symgraph.save(model, tmp_path / f"model{suffix}")
    message = str(error.value)
    assert message.startswith("cannot save this model in the symgraph format")
    assert named in message
    assert any(a in message for a in advice), message
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary left behind
    with pytest.raises(symgraph.SaveError):
        model.to_spec()


@pytest.fixture
def layer_specs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations made by the test are undone after it."""
    from symgraph_torch import _saving

    monkeypatch.setattr(_saving, "_LAYER_SPECS", dict(_saving._LAYER_SPECS))


def test_register_layer_spec_makes_a_layer_saveable(tmp_path: Path, layer_specs: None, no_pickle: None) -> None:
    symgraph_torch.register_layer_spec(layers.Renamed, lambda layer: ([layer.k], {}))
    model = _one_layer(layers.Renamed(2.5))
    loaded = round_trip(model, tmp_path / "model.zip", allow=[layers.Renamed])
    assert type(loaded.Renamed_1) is layers.Renamed and loaded.Renamed_1.k == 2.5
    data = torch.rand(BATCH, 4)
    assert torch.equal(loaded(data), model(data))
    assert torch.equal(loaded(data), data * 2.5)


def test_a_wrong_layer_spec_is_caught_at_save(tmp_path: Path, layer_specs: None) -> None:
    symgraph_torch.register_layer_spec(layers.Renamed, lambda layer: ([layer.k * 2], {}))
    with pytest.raises(symgraph.SaveError, match=r"'Renamed_1'.*2\.5.*5\.0"):
        symgraph.save(_one_layer(layers.Renamed(2.5)), tmp_path / "model")
    assert list(tmp_path.iterdir()) == []


# -- 8. custom layer classes and functions need allow= --------------------------------
def test_custom_layer_needs_allow(tmp_path: Path, no_pickle: None) -> None:
    model = _one_layer(layers.Scale(3.0))
    path = symgraph.save(model, tmp_path / "model")
    with pytest.raises(symgraph.SpecError, match=r"_saving_layers:Scale.*allow="):
        symgraph.load(path)
    data = torch.rand(BATCH, 4)
    for allow in ([layers.Scale], [layers]):
        loaded = symgraph.load(path, allow=allow)
        assert type(loaded.Scale_1) is layers.Scale and loaded.Scale_1.factor == 3.0
        assert torch.equal(loaded(data), model(data))
        assert torch.equal(loaded(data), data * 3.0)


def test_custom_function_needs_allow(tmp_path: Path, no_pickle: None) -> None:
    x = Input((4,))
    model = SymbolicModel(x, symgraph.add_to_graph(layers.double, x))
    path = symgraph.save(model, tmp_path / "model.zip")
    with pytest.raises(symgraph.SpecError, match=r"_saving_layers:double.*allow="):
        symgraph.load(path)
    data = torch.rand(BATCH, 4)
    assert torch.equal(symgraph.load(path, allow=[layers.double])(data), layers.double(data))


# -- 9. layers swapped after building ---------------------------------------------------
@pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")
def test_dynamically_quantized_model_is_refused(tmp_path: Path) -> None:
    import torch.ao.quantization

    torch.manual_seed(0)
    x = Input((4,))
    model = SymbolicModel(x, nn.Linear(4, 2)(nn.ReLU()(nn.Linear(4, 4)(x))))
    quantized = torch.ao.quantization.quantize_dynamic(model, {nn.Linear})
    assert type(quantized.Linear_1) is not nn.Linear  # swapped for a quantized layer
    data = torch.rand(BATCH, 4)
    assert not torch.equal(quantized(data), model(data))  # it computes something else than the float model
    with pytest.raises(symgraph.SaveError, match=r"'Linear_1'.*torch\.save"):
        symgraph.save(quantized, tmp_path / "model.zip")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "replacement",
    [lambda: nn.Linear(4, 4, bias=False), lambda: nn.Sequential(nn.Linear(4, 4, bias=False), nn.Tanh())],
    ids=["other_linear", "sequential"],
)
def test_layer_swapped_by_assignment_round_trips_or_is_refused(
    replacement: Callable[[], nn.Module], tmp_path: Path
) -> None:
    torch.manual_seed(0)
    x = Input((4,))
    model = SymbolicModel(x, nn.Linear(4, 2)(nn.Linear(4, 4)(x)))
    model.Linear_1 = replacement()
    data = torch.rand(BATCH, 4)
    try:
        path = symgraph.save(model, tmp_path / "model")
    except symgraph.SaveError as error:
        assert "'Linear_1'" in str(error)
        return
    loaded = symgraph.load(path)  # saved, so it must load, and compute what the model computes
    assert_same_state(model, loaded)
    assert torch.equal(loaded(data), model(data))


# -- 10. a fresh process ---------------------------------------------------------------
CHILD = textwrap.dedent(
    """
    import pickle, sys
    from pathlib import Path

    import torch

    def refuse(*args, **kwargs):
        raise AssertionError("pickle was used")

    pickle.loads = pickle.load = pickle.Unpickler = torch.load = refuse

    import symgraph
    import symgraph_torch
    from safetensors.torch import load_file, save_file

    folder = Path(sys.argv[1])
    inputs = load_file(folder / "inputs.safetensors")
    results = {}
    for name in ("resnet", "block"):
        model = symgraph.load(folder / f"{name}.zip")
        assert isinstance(model, symgraph_torch.SymbolicModel) and not model.training
        with torch.no_grad():
            results[name] = model(inputs[name])
    assert not any(m.split(".")[0] == "tests" for m in sys.modules), "the test package was imported"
    save_file(results, folder / "outputs.safetensors")
    """
)


def test_load_in_a_fresh_process(tmp_path: Path) -> None:
    torch.manual_seed(0)
    models = {"resnet": CASES["resnet"][0](), "block": transformer_block()}
    inputs = {"resnet": torch.rand(BATCH, 3, 32, 32), "block": torch.rand(BATCH, 5, 8)}
    expected = {}
    for name, model in models.items():
        trained_a_little(model, (inputs[name],))
        model.eval()
        with torch.no_grad():
            expected[name] = model(inputs[name])
        symgraph.save(model, tmp_path / f"{name}.zip")
    safetensors_torch.save_file(inputs, tmp_path / "inputs.safetensors")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    got = safetensors_torch.load_file(tmp_path / "outputs.safetensors")
    assert set(got) == set(expected)
    for name in expected:
        assert torch.equal(got[name], expected[name]), name


# -- 11. a spec written by hand ------------------------------------------------------------
HAND_WRITTEN = {
    "format": "symgraph.model",
    "version": 1,
    "model": "torch",
    "inputs": [
        {
            "name": "x",
            "check": {
                "kind": "torch.tensor",
                "shape": [None, 4],
                "dtype": "float32",
                "anchor": {"layer": "dense", "module": "", "parameter": "weight"},
            },
        }
    ],
    "input_keys": None,
    "steps": [
        {"name": "dense", "op": "module", "layer": {"$layer": "dense"}, "args": [{"$ref": "x"}], "kwargs": {}},
        {
            "name": "act",
            "op": "call",
            "func": {"$object": "torch.nn.functional:relu"},
            "args": [{"$ref": "dense"}],
            "kwargs": {},
        },
    ],
    "outputs": {"$ref": "act"},
    "options": {"check_inputs": True, "executor": "codegen", "executor_options": {}},
    "torch": {
        "layers": {"dense": {"class": "torch.nn:Linear", "args": [4, 3], "kwargs": {}}},
        "training": False,
        "direct_calls": False,
        "input_shape": {"$tuple": [None, 4]},
        "output_shape": {"$tuple": [None, 3]},
        "parameters": [],
        "frozen": [],
        "tied": {},
    },
}


def test_hand_written_spec_builds(no_pickle: None) -> None:
    model = symgraph_torch.SymbolicModel.from_spec(json.loads(json.dumps(HAND_WRITTEN)))
    assert isinstance(model, symgraph_torch.SymbolicModel) and not model.training
    layer = model.dense
    assert type(layer) is nn.Linear and (layer.in_features, layer.out_features) == (4, 3)
    assert list(model.state_dict()) == ["dense.weight", "dense.bias"]
    data = torch.randn(BATCH, 4)
    assert torch.equal(model(data), F.relu(layer(data)))
    with pytest.raises(symgraph.InputError):
        model(data.double())
    with pytest.raises(symgraph.InputError):
        model(data[:, :3])


# -- 12. hostile files ------------------------------------------------------------------------
def small_saved_model(path: Path) -> Path:
    x = Input((4,))
    return symgraph.save(SymbolicModel(x, F.relu(nn.Linear(4, 3)(x))), path)


def edit_spec(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    spec = json.loads((path / "spec.json").read_text())
    edit(spec)
    (path / "spec.json").write_text(json.dumps(spec))


def test_safetensors_header_claiming_more_than_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = small_saved_model(tmp_path / "model")
    file = path / "tensors.safetensors"
    data = file.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header, body = json.loads(data[8 : 8 + length]), data[8 + length :]
    start = header["Linear_1.weight"]["data_offsets"][0]
    header["Linear_1.weight"] = {"dtype": "F32", "shape": [4096, 4096], "data_offsets": [start, start + 4 * 4096**2]}
    text = json.dumps(header).encode()
    file.write_bytes(struct.pack("<Q", len(text)) + text + body)
    edit_spec(path, lambda spec: spec["constants"]["Linear_1.weight"].update(shape=[4096, 4096]))

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the file was handed to safetensors before its header was checked")

    monkeypatch.setattr(safetensors_torch, "load", refuse)
    with pytest.raises(symgraph.SpecError, match="more bytes than the file holds"):
        symgraph.load(path)


def test_safetensors_header_length_beyond_the_file(tmp_path: Path) -> None:
    path = small_saved_model(tmp_path / "model")
    file = path / "tensors.safetensors"
    data = file.read_bytes()
    file.write_bytes(struct.pack("<Q", 2**40) + data[8:])
    with pytest.raises(symgraph.SpecError, match="header claims"):
        symgraph.load(path)


@pytest.mark.parametrize(
    ("field", "value"), [("dtype", "float64"), ("dtype", "int64"), ("shape", [4, 3]), ("shape", [3, 4, 1])]
)
def test_manifest_that_does_not_match_the_file(field: str, value: Any, tmp_path: Path) -> None:
    path = small_saved_model(tmp_path / "model")
    edit_spec(path, lambda spec: spec["constants"]["Linear_1.weight"].update({field: value}))
    with pytest.raises(symgraph.SpecError, match=r"Linear_1\.weight"):
        symgraph.load(path)


def test_tensor_of_another_shape_than_the_layer_needs(tmp_path: Path) -> None:
    path = small_saved_model(tmp_path / "model")
    file = path / "tensors.safetensors"
    tensors = safetensors_torch.load_file(file)
    tensors["Linear_1.weight"] = torch.zeros(2, 2)
    safetensors_torch.save_file(tensors, file)
    edit_spec(path, lambda spec: spec["constants"]["Linear_1.weight"].update(shape=[2, 2]))
    with pytest.raises(symgraph.SpecError, match=r"Linear_1\.weight has shape \(2, 2\)"):
        symgraph.load(path)


@pytest.mark.parametrize("name", ["torch.hub:load", "torch:load", "os:system", "builtins:eval"])
def test_layer_class_outside_the_allowlist(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    called: list[str] = []
    monkeypatch.setattr(os, "system", lambda *args: called.append("os.system"))
    monkeypatch.setattr(torch, "load", lambda *args, **kwargs: called.append("torch.load"))
    monkeypatch.setattr(torch.hub, "load", lambda *args, **kwargs: called.append("torch.hub.load"))
    path = small_saved_model(tmp_path / "model")
    edit_spec(path, lambda spec: spec["torch"]["layers"]["Linear_1"].update({"class": name, "args": ["echo hi"]}))
    with pytest.raises(symgraph.SpecError, match=name.replace(".", r"\.")):
        symgraph.load(path)
    assert called == []


def _module_in_step_kwargs(spec: dict[str, Any]) -> None:
    linear = {"class": "torch.nn:Linear", "args": [1, 1], "kwargs": {}}
    spec["steps"][1]["kwargs"]["inplace"] = {"$torch.module": linear}


def _module_in_executor_options(spec: dict[str, Any]) -> None:
    linear = {"class": "torch.nn:Linear", "args": [1, 1], "kwargs": {}}
    spec["options"]["executor_options"]["layer"] = {"$torch.module": linear}


@pytest.mark.parametrize("edit", [_module_in_step_kwargs, _module_in_executor_options], ids=["step", "options"])
def test_torch_module_outside_a_layer(edit: Callable[[dict[str, Any]], None], tmp_path: Path) -> None:
    path = small_saved_model(tmp_path / "model")
    edit_spec(path, edit)
    with pytest.raises(symgraph.SpecError, match=r"\$torch\.module is only a layer's constructor argument"):
        symgraph.load(path)
