"""Every class of the fast-path table computes what calling the layer computes, and every guard part matters.

The oracle is the layer itself, called as ``layer(x)``: the model holds that
very layer, so both read the same settings and tensors. Training-mode state
(BatchNorm's running statistics, Embedding's ``max_norm`` renormalization) is
restored between the model's call and the oracle's, and compared after both.

The guard is checked by mutation: each part is left out of the generated code
in turn (``_fast_paths._omitted``), and the scenario that part protects is
shown to go wrong for every class of the table, while with the whole guard it
goes right.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import warnings
from collections.abc import Callable
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.nn.modules import module as torch_module  # noqa: E402

from symgraph_torch import Input, SymbolicModel, _fast_paths  # noqa: E402
from symgraph_torch._fast_paths import FAST_PATHS, GLOBAL_GUARD_PARTS, LAYER_GUARD_PARTS  # noqa: E402
from tests.torch_backend.conftest import run_watching_forward  # noqa: E402

BATCH = 4

# (id, layer factory, input shape without the batch, integer inputs below this bound or None)
CASES: list[tuple[str, Callable[[], nn.Module], tuple[int, ...], int | None]] = [
    ("linear", lambda: nn.Linear(4, 3), (4,), None),
    ("linear-no-bias-3d", lambda: nn.Linear(4, 3, bias=False), (2, 4), None),
    ("conv1d", lambda: nn.Conv1d(3, 4, 3, stride=2), (3, 9), None),
    ("conv2d", lambda: nn.Conv2d(3, 4, 3, padding=1), (3, 6, 6), None),
    ("conv2d-reflect-groups", lambda: nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect", groups=2), (4, 5, 5), None),
    ("conv3d", lambda: nn.Conv3d(2, 3, 2, bias=False), (2, 4, 4, 4), None),
    ("batchnorm1d", lambda: nn.BatchNorm1d(4), (4,), None),
    ("batchnorm1d-3d", lambda: nn.BatchNorm1d(3, momentum=None), (3, 5), None),
    ("batchnorm2d", lambda: nn.BatchNorm2d(3), (3, 4, 4), None),
    ("batchnorm2d-no-stats", lambda: nn.BatchNorm2d(3, affine=False, track_running_stats=False), (3, 4, 4), None),
    ("layernorm", lambda: nn.LayerNorm(4), (4,), None),
    ("layernorm-2d-no-affine", lambda: nn.LayerNorm((3, 4), elementwise_affine=False, eps=0.1), (3, 4), None),
    ("relu", nn.ReLU, (5,), None),
    ("gelu-tanh", lambda: nn.GELU(approximate="tanh"), (5,), None),
    ("silu", nn.SiLU, (5,), None),
    ("tanh", nn.Tanh, (5,), None),
    ("sigmoid", nn.Sigmoid, (5,), None),
    ("leaky-relu", lambda: nn.LeakyReLU(0.3), (5,), None),
    ("dropout", lambda: nn.Dropout(0.4), (6, 5), None),
    ("maxpool1d", lambda: nn.MaxPool1d(2), (3, 9), None),
    ("maxpool2d", lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), (2, 7, 7), None),
    ("maxpool3d", lambda: nn.MaxPool3d(2, dilation=1), (2, 4, 4, 4), None),
    ("avgpool1d", lambda: nn.AvgPool1d(3, padding=1, count_include_pad=False), (3, 8), None),
    ("avgpool2d", lambda: nn.AvgPool2d(2, divisor_override=3), (2, 6, 6), None),
    ("avgpool3d", lambda: nn.AvgPool3d(2, ceil_mode=True), (2, 5, 5, 5), None),
    ("adaptive-avgpool1d", lambda: nn.AdaptiveAvgPool1d(3), (2, 8), None),
    ("adaptive-avgpool2d", lambda: nn.AdaptiveAvgPool2d((2, 3)), (2, 7, 7), None),
    ("adaptive-avgpool3d", lambda: nn.AdaptiveAvgPool3d(2), (2, 5, 5, 5), None),
    ("adaptive-maxpool1d", lambda: nn.AdaptiveMaxPool1d(3), (2, 8), None),
    ("adaptive-maxpool2d", lambda: nn.AdaptiveMaxPool2d((3, None)), (2, 7, 6), None),
    ("adaptive-maxpool3d", lambda: nn.AdaptiveMaxPool3d(2), (2, 5, 5, 5), None),
    ("flatten", nn.Flatten, (2, 3, 4), None),
    ("flatten-inner", lambda: nn.Flatten(2, 3), (2, 3, 4), None),
    ("embedding", lambda: nn.Embedding(10, 3, padding_idx=0), (7,), 10),
    ("embedding-max-norm", lambda: nn.Embedding(10, 3, max_norm=0.5), (7,), 10),
]

# The first case of each class, for the guard's mutation tests.
_FIRST: dict[type, tuple[str, Callable[[], nn.Module], tuple[int, ...], int | None]] = {}
for _case in CASES:
    _FIRST.setdefault(type(_case[1]()), _case)
ONE_PER_CLASS = list(_FIRST.values())

# Layers whose outputs are tuples (values, indices); each of these has a case of its own.
INDICES = [
    ("maxpool1d-indices", lambda: nn.MaxPool1d(2, return_indices=True), (3, 8)),
    ("maxpool2d-indices", lambda: nn.MaxPool2d(2, return_indices=True), (2, 6, 6)),
    ("maxpool3d-indices", lambda: nn.MaxPool3d(2, return_indices=True), (2, 4, 4, 4)),
    ("adaptive-maxpool2d-indices", lambda: nn.AdaptiveMaxPool2d(2, return_indices=True), (2, 5, 5)),
]

# Settings changed after building, which the model must follow as the layer does.
EDITS: dict[str, dict[str, Any]] = {
    "conv2d": {"stride": (2, 1), "dilation": (2, 2)},
    "conv2d-reflect-groups": {"padding_mode": "circular"},
    "batchnorm2d": {"momentum": None, "eps": 0.5},
    "batchnorm1d": {"eps": 1.0},
    "layernorm": {"eps": 0.3},
    "gelu-tanh": {"approximate": "none"},
    "leaky-relu": {"negative_slope": 2.0},
    "relu": {"inplace": True},
    "silu": {"inplace": True},
    "dropout": {"p": 0.9},
    "maxpool2d": {"stride": 1, "ceil_mode": False},
    "avgpool2d": {"divisor_override": None, "padding": 1},
    "adaptive-avgpool2d": {"output_size": 1},
    "flatten-inner": {"start_dim": 1},
    "embedding-max-norm": {"max_norm": 0.1, "norm_type": 1.0},
}


def example(shape: tuple[int, ...], bound: int | None, requires_grad: bool = False) -> torch.Tensor:
    if bound is not None:
        return torch.randint(0, bound, (BATCH, *shape))
    return torch.randn(BATCH, *shape, requires_grad=requires_grad)


def symbolic_input(shape: tuple[int, ...], bound: int | None) -> Any:
    return Input(shape) if bound is None else Input(shape, dtype=torch.long, max_value=bound)


def single(make: Callable[[], nn.Module], shape: tuple[int, ...], bound: int | None) -> tuple[SymbolicModel, nn.Module]:
    torch.manual_seed(0)
    layer = make()
    x = symbolic_input(shape, bound)
    return SymbolicModel(x, layer(x)), layer


def assert_same(got: Any, expected: Any) -> None:
    if isinstance(expected, tuple):
        assert isinstance(got, tuple) and len(got) == len(expected)
        for g, e in zip(got, expected, strict=True):
            assert_same(g, e)
        return
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert torch.equal(got, expected)


def compare(model: SymbolicModel, layer: nn.Module, data: torch.Tensor, seed: int = 3) -> Any:
    """The model against the layer on ``data``, from the same state; both leave the same state behind."""
    before = copy.deepcopy(layer.state_dict())
    torch.manual_seed(seed)
    got, ran_forward = run_watching_forward(model, type(layer), data.clone())
    assert not ran_forward, "the model did not take the fast path"
    after = copy.deepcopy(layer.state_dict())
    layer.load_state_dict(before)
    torch.manual_seed(seed)
    expected = layer(data.clone())
    assert_same(got, expected)
    assert after.keys() == layer.state_dict().keys()
    for key, value in layer.state_dict().items():
        assert torch.equal(after[key], value), key
    return got


def test_the_table_covers_the_layers_the_issue_lists():
    expected = {
        nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm,
        nn.ReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.Dropout,
        nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
        nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
        nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d, nn.Flatten, nn.Embedding,
    }  # fmt: skip
    assert set(FAST_PATHS) == expected
    assert {type(make()) for _, make, _, _ in CASES} == expected


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize(("make", "shape", "bound"), [case[1:] for case in CASES], ids=[c[0] for c in CASES])
def test_each_layer_computes_what_calling_it_computes(make, shape, bound, mode):
    model, layer = single(make, shape, bound)
    getattr(model, mode)()
    assert layer.training == (mode == "train")
    for seed in (1, 2):  # twice: training state carries over between calls
        torch.manual_seed(seed)
        compare(model, layer, example(shape, bound), seed)
    with torch.no_grad():
        out = compare(model, layer, example(shape, bound))
    assert not out.requires_grad


@pytest.mark.parametrize(("make", "shape", "bound"), [case[1:] for case in CASES], ids=[c[0] for c in CASES])
def test_gradients_match_the_layers_own(make, shape, bound):
    model, layer = single(make, shape, bound)
    data = example(shape, bound, requires_grad=bound is None)
    torch.manual_seed(5)
    model(data).sum().backward()
    model_grads = [None if p.grad is None else p.grad.clone() for p in layer.parameters()]
    input_grad = None if data.grad is None else data.grad.clone()
    layer.zero_grad()
    data.grad = None
    torch.manual_seed(5)
    layer(data).sum().backward()
    for got, p in zip(model_grads, layer.parameters(), strict=True):
        assert (got is None and p.grad is None) or torch.equal(got, p.grad)
    assert (input_grad is None and data.grad is None) or torch.equal(input_grad, data.grad)


@pytest.mark.parametrize(("make", "shape"), [case[1:] for case in INDICES], ids=[c[0] for c in INDICES])
def test_pooling_with_indices_returns_both_as_the_layer_does(make, shape):
    torch.manual_seed(0)
    layer = make()
    x = Input(shape)
    values, indices = layer(x)
    model = SymbolicModel(x, [values, indices])
    data = example(shape, None)
    got, ran_forward = run_watching_forward(model, type(layer), data)
    assert not ran_forward
    assert_same(tuple(got), layer(data))


@pytest.mark.parametrize("name", sorted(EDITS))
def test_settings_changed_after_building_are_followed(name):
    _, make, shape, bound = next(case for case in CASES if case[0] == name)
    model, layer = single(make, shape, bound)
    # Eval mode, where BatchNorm's settings change the output; dropout's show in training.
    model.train(name == "dropout")
    data = example(shape, bound)
    with torch.no_grad():
        unchanged = compare(model, layer, data)
    for attr, value in EDITS[name].items():
        setattr(layer, attr, value)
    with torch.no_grad():
        out = compare(model, layer, data)
    if name not in ("relu", "silu"):  # in place or not, the values are the same
        assert out.shape != unchanged.shape or not torch.equal(out, unchanged)


def test_parameters_replaced_and_moved_are_read_at_call_time():
    _, make, shape, bound = next(case for case in CASES if case[0] == "batchnorm2d")
    model, layer = single(make, shape, bound)
    model.eval()
    data = example(shape, bound)
    layer.running_mean = torch.full((3,), 0.5)  # a new buffer object
    layer.weight = nn.Parameter(torch.full((3,), 2.0))
    compare(model, layer, data)
    model.double()
    compare(model, layer, data.double())
    (prefix,) = dict(model.named_children())
    zeros = {name: torch.zeros_like(p) for name, p in layer.named_parameters()}
    got = torch.func.functional_call(model, {f"{prefix}.{k}": v for k, v in zeros.items()}, (data.double(),))
    assert torch.equal(got, torch.func.functional_call(layer, zeros, (data.double(),)))
    assert not torch.equal(got, layer(data.double()))


def test_a_torch_whose_forward_differs_gets_no_fast_path_for_that_class(monkeypatch):
    # As another torch release would: the entry was copied from a forward this one does not have.
    stale = dataclasses.replace(FAST_PATHS[nn.ReLU], forward="0" * 16)
    monkeypatch.setitem(FAST_PATHS, nn.ReLU, stale)
    monkeypatch.setattr(_fast_paths, "_matching", {})
    x = Input((4,))
    relu, tanh = nn.ReLU(), nn.Tanh()
    model = SymbolicModel(x, tanh(relu(x)))
    assert ".relu(" not in model.source and ".tanh(" in model.source
    data = torch.randn(2, 4)
    assert torch.equal(model(data), tanh(relu(data)))


def test_a_forward_replaced_before_symgraph_was_imported_gets_no_fast_path(monkeypatch):
    # What _FORWARDS holds when a program patched ReLU.forward before importing symgraph_torch.
    def doubled(self, x):
        return torch.relu(x) * 2

    monkeypatch.setattr(nn.ReLU, "forward", doubled)
    monkeypatch.setitem(_fast_paths._FORWARDS, nn.ReLU, doubled)
    monkeypatch.setattr(_fast_paths, "_matching", {})
    x = Input((4,))
    relu = nn.ReLU()
    model = SymbolicModel(x, relu(x))
    assert ".relu(" not in model.source
    data = torch.randn(2, 4)
    assert torch.equal(model(data), relu(data)) and torch.equal(model(data), torch.relu(data) * 2)


def test_the_fingerprint_ignores_comments_and_docstrings_but_not_code(tmp_path):
    source = (
        "def plain(self, x):\n"
        "    return x * self.p\n"
        "\n"
        "def commented(self, x):\n"
        "    'A docstring.'\n"
        "    # a comment\n"
        '    r"""A string as a comment, as torch writes some."""\n'
        "    return (x  *  self.p)\n"
        "\n"
        "def changed(self, x):\n"
        "    return x * self.q\n"
    )
    path = tmp_path / "forwards.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("forwards", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    plain, commented, changed = (
        _fast_paths.forward_fingerprint(getattr(module, n)) for n in ("plain", "commented", "changed")
    )
    assert plain == commented != changed
    assert _fast_paths.forward_fingerprint(len) is None  # no source: no fast path


def test_a_subclass_of_a_table_class_takes_the_normal_path():
    class Scaled(nn.ReLU):
        def forward(self, x):
            return super().forward(x) * 3

    x = Input((4,))
    layer = Scaled()
    model = SymbolicModel(x, layer(x))
    data = torch.randn(2, 4)
    assert torch.equal(model(data), layer(data))
    assert ".relu(" not in model.source


def test_a_call_with_keywords_or_two_arguments_takes_the_normal_path():
    x = Input((4,))
    linear, bilinear = nn.Linear(4, 4), nn.Bilinear(4, 4, 2)
    model = SymbolicModel(x, bilinear(linear(input=x), x))
    data = torch.randn(2, 4)
    assert torch.equal(model(data), bilinear(linear(data), data))
    assert "['weight']" not in model.source


# --- the guard, part by part -------------------------------------------------------


def combined() -> tuple[SymbolicModel, list[nn.Module], list[torch.Tensor]]:
    """One model holding a layer of every class of the table, each on an input of its own."""
    torch.manual_seed(0)
    inputs, outputs, layers, data = [], [], [], []
    for _, make, shape, bound in ONE_PER_CLASS:
        layer = make()
        x = symbolic_input(shape, bound)
        inputs.append(x)
        outputs.append(layer(x))
        layers.append(layer)
        data.append(example(shape, bound, requires_grad=bound is None))
    return SymbolicModel(inputs, tuple(outputs)), layers, data


class Spy(nn.Module):
    """A wrapper put in a layer's place: it records that it ran, then runs the layer."""

    def __init__(self, layer: nn.Module, seen: list[nn.Module]) -> None:
        super().__init__()
        self.layer = layer
        self.seen = seen

    def forward(self, x):
        self.seen.append(self.layer)
        return self.layer(x)

    def __getattr__(self, name):
        # Transparent to a fast path that wrongly reads its settings from the wrapper:
        # it then computes the layer's result silently, which is what must not happen.
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.layer, name)


def backward(outputs: Any) -> None:
    sum(out.sum() for out in outputs).backward()


def scenario(part: str, model: SymbolicModel, layers: list[nn.Module], data: list[torch.Tensor]) -> set[int]:
    """Run the situation that guard part protects; the ``id``s of the layers that took the normal path.

    With the whole guard, every layer must; with the part left out, none may.
    """
    seen: list[nn.Module] = []
    note: Callable[..., None] = lambda module, *rest: seen.append(module) and None  # noqa: E731
    undo: list[Callable[[], None]] = []
    try:
        if part == "identity":
            names = {id(module): name for name, module in model.named_children()}
            for layer in layers:
                name = names[id(layer)]
                setattr(model, name, Spy(layer, seen))
                undo.append(lambda name=name, layer=layer: setattr(model, name, layer))
            model(*data)
        elif part in ("forward_hooks", "forward_pre_hooks", "backward_hooks", "backward_pre_hooks"):
            register = {
                "forward_hooks": "register_forward_hook",
                "forward_pre_hooks": "register_forward_pre_hook",
                "backward_hooks": "register_full_backward_hook",
                "backward_pre_hooks": "register_full_backward_pre_hook",
            }[part]
            undo.extend(getattr(layer, register)(note).remove for layer in layers)
            with warnings.catch_warnings():
                # Embedding's input is indices, which take no gradient.
                warnings.filterwarnings("ignore", "Full backward hook is firing when gradients are computed")
                backward(model(*data))
        elif part == "compiled":
            for layer in layers:
                layer._compiled_call_impl = lambda *args, layer=layer, **kwargs: (
                    note(layer) or layer._call_impl(*args, **kwargs)
                )
                undo.append(lambda layer=layer: setattr(layer, "_compiled_call_impl", None))
            model(*data)
        elif part == "class":
            for layer in layers:
                cls = type(layer)
                layer.__class__ = type(
                    cls.__name__, (cls,), {"forward": lambda self, x, cls=cls: note(self) or cls.forward(self, x)}
                )
                undo.append(lambda layer=layer, cls=cls: setattr(layer, "__class__", cls))
            model(*data)
        elif part == "instance_forward":
            for layer in layers:
                layer.forward = lambda x, layer=layer, forward=layer.forward: note(layer) or forward(x)
                undo.append(lambda layer=layer: delattr(layer, "forward"))
            model(*data)
        elif part.startswith("global_"):
            register = {
                "global_forward_hooks": torch_module.register_module_forward_hook,
                "global_forward_pre_hooks": torch_module.register_module_forward_pre_hook,
                "global_backward_hooks": torch_module.register_module_full_backward_hook,
                "global_backward_pre_hooks": torch_module.register_module_full_backward_pre_hook,
            }[part]
            undo.append(register(note).remove)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Full backward hook is firing when gradients are computed")
                backward(model(*data))
        elif part in ("class_forward", "class_call", "class_call_impl"):
            attr = {"class_forward": "forward", "class_call": "__call__", "class_call_impl": "_call_impl"}[part]
            for cls in {type(layer) for layer in layers}:
                original = getattr(cls, attr)
                had_own = attr in vars(cls)
                setattr(cls, attr, lambda self, *a, original=original, **k: note(self) or original(self, *a, **k))
                undo.append(
                    (lambda cls=cls, original=original: setattr(cls, attr, original))
                    if had_own
                    else (lambda cls=cls: delattr(cls, attr))
                )
            model(*data)
        elif part == "jit_tracing":
            model.eval()  # no training-mode float(num_batches_tracked), which the tracer warns about
            with pytest.warns(DeprecationWarning, match="torch.jit.trace"):
                traced = torch.jit.trace(model, tuple(d.detach() for d in data), check_trace=False)
            # A layer called as a module is one submodule call in the trace, as in a hand-written model's.
            calls = str(traced.graph).count("prim::CallMethod")
            assert calls in (0, len(layers)), calls
            return {id(layer) for layer in layers} if calls else set()
        elif part == "fx_tracing":
            model.eval()
            try:
                graph = torch.fx.symbolic_trace(model).graph
            except torch.fx.proxy.TraceError:
                return set()  # the fast paths' control flow cannot be traced: not the oracle's graph
            modules = dict(model.named_children())
            targets = {id(modules[node.target]) for node in graph.nodes if node.op == "call_module"}
            return targets & {id(layer) for layer in layers}
        else:
            raise AssertionError(part)
    finally:
        for step in reversed(undo):
            step()
    return {id(module) for module in seen} & {id(layer) for layer in layers}


# The situations each part protects; torch.fx replaces Module.__call__ while it traces.
SCENARIOS = {part: (part,) for part in LAYER_GUARD_PARTS + GLOBAL_GUARD_PARTS} | {
    "class_call": ("class_call", "fx_tracing")
}


@pytest.mark.parametrize("part", LAYER_GUARD_PARTS + GLOBAL_GUARD_PARTS)
def test_each_guard_part_is_needed_for_every_class(part, monkeypatch):
    model, layers, data = combined()
    everyone = {id(layer) for layer in layers}
    for situation in SCENARIOS[part]:
        assert scenario(situation, model, layers, data) == everyone, f"{situation}: every layer runs normally"
        model.train()
    # The model still gives the layers' own results afterwards, on the fast path.
    model.eval()
    expected = [layer(d) for layer, d in zip(layers, data, strict=True)]
    for got, want in zip(model(*data), expected, strict=True):
        assert torch.equal(got, want)

    monkeypatch.setattr(_fast_paths, "_omitted", frozenset({part}))
    for situation in SCENARIOS[part]:
        mutated, layers, data = combined()
        assert scenario(situation, mutated, layers, data) == set(), f"without {part!r}, no layer may notice {situation}"
