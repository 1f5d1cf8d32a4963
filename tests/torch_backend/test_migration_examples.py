"""The pytorch-symbolic programs of examples/pytorch_symbolic/ against hand-written modules.

Each example is a program written for pytorch-symbolic 1.2.4 with only the import
changed. Its oracle here is a classic ``nn.Module`` (``__init__`` and ``forward``)
holding the very layers of the built symbolic model, taken by the names its
summary shows. Both run on fresh data of another batch size than the example's,
in eval mode and, seeded identically, in train mode (BatchNorm statistics and
Dropout masks), and their gradients and BatchNorm buffer updates are compared.
The oracles apply the same operations in the same order, so outputs must agree
exactly; gradients and buffers are compared with float tolerance.
"""

from __future__ import annotations

import ast
import warnings

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import symgraph  # noqa: E402
from symgraph_torch import Input, SymbolicModel  # noqa: E402
from tests.torch_backend.conftest import EXAMPLES, load_example  # noqa: E402

NAMES = ("resnet", "vgg", "lstm", "encoder_decoder")
BATCH = 5  # the examples are built on a batch of 2

# What pytorch-symbolic 1.2.4 exports at the top level: an example that imports
# anything else would not be "pytorch-symbolic code with the import changed".
PYTORCH_SYMBOLIC_NAMES = frozenset(
    {
        "CustomInput",
        "DetachedSymbolicModel",
        "Input",
        "SymbolicAPI2ContextManager",
        "SymbolicModel",
        "add_to_graph",
        "config",
        "functions_utility",
        "graph_algorithms",
        "model_tools",
        "optimize_module_calls",
        "useful_layers",
    }
)


def as_tuple(value):  # type: ignore[no-untyped-def]
    return value if isinstance(value, tuple) else (value,)


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


def assert_same_layers(symbolic: nn.Module, reference: nn.Module) -> None:
    """The oracle holds every parameter and buffer of the symbolic model: no layer was left out."""
    assert {id(p) for p in reference.parameters()} == {id(p) for p in symbolic.parameters()}
    assert {id(b) for b in reference.buffers()} == {id(b) for b in symbolic.buffers()}


def randomize_batchnorm(model: nn.Module) -> None:
    """Freshly built BatchNorm is the identity in eval mode; give it statistics that matter."""
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, nn.modules.batchnorm._BatchNorm):
                layer.weight.uniform_(0.5, 1.5)
                layer.bias.normal_()
                layer.running_mean.normal_()
                layer.running_var.uniform_(0.5, 2.0)


def assert_eval_agrees(symbolic: nn.Module, reference: nn.Module, *inputs: torch.Tensor) -> None:
    symbolic.eval()
    reference.eval()
    with torch.no_grad():
        got, want = as_tuple(symbolic(*inputs)), as_tuple(reference(*inputs))
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.shape[0] == BATCH
        torch.testing.assert_close(g, w, rtol=0, atol=0)  # the same layers and operations, in the same order


def assert_train_agrees(symbolic: nn.Module, reference: nn.Module, *inputs: torch.Tensor, seed: int = 7) -> None:
    """Train mode, each run from the same state and seed: outputs, gradients and updated buffers agree."""
    start = snapshot(symbolic)
    results = []
    for model in (symbolic, reference):
        symbolic.load_state_dict(start)
        model.train()
        model.zero_grad()
        torch.manual_seed(seed)
        outputs = as_tuple(model(*inputs))
        sum(out.square().mean() for out in outputs).backward()
        grads = {name: p.grad.clone() for name, p in symbolic.named_parameters() if p.grad is not None}
        results.append(([out.detach() for out in outputs], grads, snapshot(symbolic)))
    (got, got_grads, got_state), (want, want_grads, want_state) = results
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=0, atol=0)
    assert got_grads.keys() == want_grads.keys() == {name for name, _ in symbolic.named_parameters()}
    for name in got_grads:
        torch.testing.assert_close(got_grads[name], want_grads[name], msg=lambda m, n=name: f"grad of {n}: {m}")
    for key in got_state:
        torch.testing.assert_close(got_state[key], want_state[key], msg=lambda m, k=key: f"buffer {k}: {m}")
    statistics = [key for key in start if key.endswith("running_mean")]
    assert all(not torch.equal(start[key], got_state[key]) for key in statistics), "BatchNorm did not update"


def assert_state_dict_round_trip(name: str, model: SymbolicModel, *inputs: torch.Tensor) -> None:
    torch.manual_seed(12345)
    fresh = load_example(name).build()
    fresh.eval()
    model.eval()
    with torch.no_grad():
        before = as_tuple(fresh(*inputs))
        fresh.load_state_dict(model.state_dict(), strict=True)
        after, want = as_tuple(fresh(*inputs)), as_tuple(model(*inputs))
    assert not all(torch.equal(b, w) for b, w in zip(before, want, strict=True)), "the fresh build had other weights"
    for a, w in zip(after, want, strict=True):
        assert torch.equal(a, w)


# -- ResNet ---------------------------------------------------------------------------------------
class BasicBlock(nn.Module):
    def __init__(self, model: nn.Module, name: str, projection: bool) -> None:
        super().__init__()
        self.conv1 = model.get_submodule(f"{name}_conv1")
        self.bn1 = model.get_submodule(f"{name}_bn1")
        self.conv2 = model.get_submodule(f"{name}_conv2")
        self.bn2 = model.get_submodule(f"{name}_bn2")
        self.shortcut: nn.Module = nn.Identity()
        if projection:
            self.shortcut = nn.Sequential(model.get_submodule(f"{name}_proj"), model.get_submodule(f"{name}_proj_bn"))

    def forward(self, x):  # type: ignore[no-untyped-def]
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.stem_conv = model.get_submodule("stem_conv")
        self.stem_bn = model.get_submodule("stem_bn")
        # Stages 2 and 3 halve the size and widen: their first block projects.
        self.blocks = nn.Sequential(
            *(
                BasicBlock(model, f"stage{stage}_block{block}", projection=stage > 1 and block == 0)
                for stage in (1, 2, 3)
                for block in (0, 1)
            )
        )
        self.head = model.get_submodule("head")

    def forward(self, x):  # type: ignore[no-untyped-def]
        x = self.blocks(F.relu(self.stem_bn(self.stem_conv(x))))
        return self.head(torch.flatten(F.avg_pool2d(x, x.shape[-2:]), 1))


def test_resnet_matches_a_hand_written_resnet():
    torch.manual_seed(0)
    model = load_example("resnet").build()
    reference = ResNet(model)
    assert_same_layers(model, reference)
    randomize_batchnorm(model)
    assert [name for name, _ in model.named_children() if name.endswith("_proj")] == [
        "stage2_block0_proj",
        "stage3_block0_proj",
    ]
    images = torch.rand(BATCH, 3, 32, 32)
    assert_eval_agrees(model, reference, images)
    assert_train_agrees(model, reference, images)
    assert_state_dict_round_trip("resnet", model, images)


# -- VGG ------------------------------------------------------------------------------------------
class VGG(nn.Module):
    def __init__(self, model: nn.Module, config: list[int | str]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        convs = 0
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                convs += 1
                layers += [model.get_submodule(f"Conv2d_{convs}"), model.get_submodule(f"BatchNorm2d_{convs}")]
                layers.append(nn.ReLU(inplace=True))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            model.get_submodule("Linear_1"),
            nn.ReLU(inplace=True),
            model.get_submodule("Dropout_1"),
            model.get_submodule("Linear_2"),
            nn.ReLU(inplace=True),
            model.get_submodule("Dropout_2"),
            model.get_submodule("Linear_3"),
        )

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.classifier(torch.flatten(self.features(x), 1))


def test_vgg_matches_a_hand_written_vgg():
    vgg = load_example("vgg")
    torch.manual_seed(0)
    model = vgg.build()
    reference = VGG(model, vgg.CONFIG)
    assert_same_layers(model, reference)
    randomize_batchnorm(model)
    images = torch.rand(BATCH, 3, 32, 32)
    assert_eval_agrees(model, reference, images)
    assert_train_agrees(model, reference, images)
    # Dropout really is random in train mode: another seed, another answer.
    model.train()
    torch.manual_seed(1)
    first = model(images)
    torch.manual_seed(2)
    assert not torch.equal(first, model(images))
    assert_state_dict_round_trip("vgg", model, images)


# -- LSTM -----------------------------------------------------------------------------------------
class LSTMClassifier(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.embedding = model.get_submodule("Embedding_1")
        self.lstm = model.get_submodule("LSTM_1")
        self.dropout = model.get_submodule("Dropout_1")
        self.head = model.get_submodule("Linear_1")

    def forward(self, tokens):  # type: ignore[no-untyped-def]
        out, (h, _) = self.lstm(self.embedding(tokens))
        return self.head(self.dropout(torch.cat([h[-1], out.mean(dim=1)], dim=1)))


def test_lstm_matches_a_hand_written_classifier():
    torch.manual_seed(0)
    model = load_example("lstm").build(vocab_size=50, seq_len=12)
    reference = LSTMClassifier(model)
    assert_same_layers(model, reference)
    randomize_batchnorm(model)
    tokens = torch.randint(0, 50, (BATCH, 12))
    assert_eval_agrees(model, reference, tokens)
    # nn.LSTM's dropout between its layers and the head's Dropout draw in the same order.
    assert_train_agrees(model, reference, tokens)
    assert_state_dict_round_trip("lstm", model, tokens)


# -- encoder-decoder ------------------------------------------------------------------------------
class ConvBlock(nn.Module):
    def __init__(self, model: nn.Module, first: int) -> None:
        super().__init__()
        self.conv1 = model.get_submodule(f"Conv2d_{first}")
        self.bn1 = model.get_submodule(f"BatchNorm2d_{first}")
        self.conv2 = model.get_submodule(f"Conv2d_{first + 1}")
        self.bn2 = model.get_submodule(f"BatchNorm2d_{first + 1}")

    def forward(self, x):  # type: ignore[no-untyped-def]
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))


class UNet(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.down1, self.down2, self.bottleneck = ConvBlock(model, 1), ConvBlock(model, 3), ConvBlock(model, 5)
        self.condition = model.get_submodule("Linear_1")
        self.up2, self.decode2 = model.get_submodule("ConvTranspose2d_1"), ConvBlock(model, 7)
        self.up1, self.decode1 = model.get_submodule("ConvTranspose2d_2"), ConvBlock(model, 9)
        self.pixel_head = model.get_submodule("pixel_head")
        self.class_head = model.get_submodule("class_head")

    def forward(self, image, condition):  # type: ignore[no-untyped-def]
        skip1 = self.down1(image)
        skip2 = self.down2(F.max_pool2d(skip1, 2))
        bottleneck = self.bottleneck(F.max_pool2d(skip2, 2))
        bottleneck = bottleneck + self.condition(condition)[:, :, None, None]
        x = self.decode2(torch.cat([self.up2(bottleneck), skip2], dim=1))
        x = self.decode1(torch.cat([self.up1(x), skip1], dim=1))
        logits = self.class_head(torch.flatten(F.adaptive_avg_pool2d(bottleneck, 1), 1))
        return self.pixel_head(x), logits


def test_encoder_decoder_matches_a_hand_written_unet():
    torch.manual_seed(0)
    model = load_example("encoder_decoder").build()
    reference = UNet(model)
    assert_same_layers(model, reference)
    randomize_batchnorm(model)
    image, condition = torch.rand(BATCH, 3, 16, 16), torch.rand(BATCH, 6)
    assert_eval_agrees(model, reference, image, condition)
    assert_train_agrees(model, reference, image, condition)
    assert_state_dict_round_trip("encoder_decoder", model, image, condition)
    with pytest.raises(symgraph.InputError, match=r"Input_2 expects a tensor of shape \(None, 6\)"):
        model(image, torch.rand(BATCH, 7))


# -- the programs themselves ----------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_example_imports_only_what_pytorch_symbolic_exports(name):
    tree = ast.parse((EXAMPLES / f"{name}.py").read_text())
    imported = [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
    ours = [node for node in imported if isinstance(node, ast.ImportFrom) and node.module == "symgraph_torch"]
    assert len(ours) == 1
    assert {alias.name for alias in ours[0].names} <= PYTORCH_SYMBOLIC_NAMES
    others = {alias.name for node in imported if isinstance(node, ast.Import) for alias in node.names}
    others |= {node.module for node in imported if isinstance(node, ast.ImportFrom) and node is not ours[0]}
    assert others <= {"torch", "__future__"}


@pytest.mark.parametrize(
    ("name", "printed"),
    [
        ("resnet", "logits: (4, 10)"),
        ("vgg", "logits: (4, 10)"),
        ("lstm", "logits: (3, 4)"),
        ("encoder_decoder", "pixel map: (3, 2, 16, 16) logits: (3, 5)"),
    ],
)
def test_example_main_runs(name, printed, capsys):
    load_example(name).main()
    out = capsys.readouterr().out
    assert out.startswith(printed + "\n")
    assert "Total params:" in out


# -- pytorch-symbolic code that does not run unchanged ----------------------------------------
# Each of these runs on pytorch-symbolic 1.2.4; the examples avoid them.
def test_features_of_a_sequence_is_its_last_dimension():
    steps = Input((7, 5))
    assert steps.features == 5  # as in nn.LSTM(steps.features, ...) or nn.Linear(tokens.features, ...)


def test_token_ids_up_to_the_vocabulary_size_feed_an_embedding():
    tokens = Input((200,), dtype=torch.long, min_value=0, max_value=10)
    assert int(tokens.v.max()) < 10  # pytorch-symbolic: rand * 10 truncated, so 0..9
    nn.Embedding(10, 4)(tokens)


def test_state_of_a_two_layer_lstm_has_the_layers_first():
    _, (h, _) = nn.LSTM(5, 8, num_layers=2, batch_first=True)(Input((7, 5)))
    assert h.shape == (2, None, 8)


def test_iterating_over_the_layers_of_an_lstm_state():
    steps = Input((7, 5))
    lstm = nn.LSTM(5, 8, num_layers=3, batch_first=True)
    _, (h, _) = lstm(steps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pytorch-symbolic warns here, wrongly: dimension 0 is not the batch
        *_, top = h
    model = SymbolicModel(steps, top)
    data = torch.rand(BATCH, 7, 5)
    assert torch.equal(model(data), lstm(data)[1][0][-1])
