"""Pictures of torch models: ``model.plot``, ``graph_algorithms.draw_graph`` and ``to_dot``.

Each picture is saved as a PNG and checked as a person would need it (see
``tests/core/test_dot_plot.py``'s ``check_picture``): one box per layer of the
summary, nothing overlapping, text large enough at the saved DPI.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from symgraph_torch import Input, SymbolicModel, graph_algorithms
from tests.core.test_dot import label_lines, model_nodes
from tests.core.test_dot_plot import check_picture, summary_names, titles
from tests.torch_backend.conftest import load_example

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend


def basic_block(x: Any, planes: int, stride: int, name: str) -> Any:
    """torchvision's ``BasicBlock``, with its submodules' names."""
    identity = x
    out = nn.Conv2d(x.C, planes, 3, stride=stride, padding=1, bias=False)(x, custom_name=f"{name}.conv1")
    out = nn.BatchNorm2d(planes)(out, custom_name=f"{name}.bn1")
    out = nn.ReLU(inplace=True)(out)
    out = nn.Conv2d(planes, planes, 3, padding=1, bias=False)(out, custom_name=f"{name}.conv2")
    out = nn.BatchNorm2d(planes)(out, custom_name=f"{name}.bn2")
    if stride != 1 or planes != x.C:
        identity = nn.Conv2d(x.C, planes, 1, stride=stride, bias=False)(x, custom_name=f"{name}.downsample.0")
        identity = nn.BatchNorm2d(planes)(identity, custom_name=f"{name}.downsample.1")
    return nn.ReLU(inplace=True)(out + identity)


def resnet18(num_classes: int = 1000, image_size: int = 64) -> SymbolicModel:
    """torchvision's ``resnet18()`` structure (torchvision is not installed here)."""
    images = Input((3, image_size, image_size))
    x = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)(images, custom_name="conv1")
    x = nn.BatchNorm2d(64)(x, custom_name="bn1")
    x = nn.ReLU(inplace=True)(x, custom_name="relu")
    x = nn.MaxPool2d(3, stride=2, padding=1)(x, custom_name="maxpool")
    for i, planes in enumerate((64, 128, 256, 512), start=1):
        for j in range(2):
            x = basic_block(x, planes, 2 if i > 1 and j == 0 else 1, f"layer{i}.{j}")
    x = nn.AdaptiveAvgPool2d((1, 1))(x, custom_name="avgpool")
    x = nn.Flatten(1)(x)
    return SymbolicModel(images, nn.Linear(512, num_classes)(x, custom_name="fc"))


@pytest.fixture(scope="module")
def resnet18_model() -> SymbolicModel:
    return resnet18()


def test_resnet18_builder_matches_torchvision() -> None:
    model = resnet18()
    # torchvision's resnet18() has 11,689,512 parameters and these state_dict keys.
    assert sum(p.numel() for p in model.parameters()) == 11_689_512
    keys = set(model.state_dict())
    assert {"conv1.weight", "layer2.0.downsample.0.weight", "layer4.1.bn2.running_var", "fc.bias"} <= keys
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, 1000)


def _shapes(model: SymbolicModel) -> list[str]:
    lines = [t.get_text() for t in model.plot().axes[0].texts if t.get_gid() == "symgraph-line"]
    return [line for line in lines if line.startswith("(")]


def test_resnet18_picture_is_readable(tmp_path: Path, resnet18_model: SymbolicModel) -> None:
    names = summary_names(resnet18_model)
    assert len(names) == 1 + len(resnet18_model.plan.steps) == 70
    figure = resnet18_model.plot()
    check_picture(figure, tmp_path / "resnet18.png", names)
    # Folded into columns, nearer square than a chain of 62 levels would be.
    width, height = figure.get_size_inches()
    assert 0.5 < height / width < 2 and height < 30
    # Every box shows its output's shape, as the summary does.
    printed: list[str] = []
    resnet18_model.summary(print_fn=printed.append)
    for shape in _shapes(resnet18_model):
        assert shape in printed[0]
    assert len(_shapes(resnet18_model)) == len(names)
    # Custom names carry their layer's class on a second line.
    lines = [t.get_text() for t in figure.axes[0].texts if t.get_gid() in ("symgraph-title", "symgraph-line")]
    at = lines.index("layer2.0.downsample.0")
    assert lines[at + 1 : at + 3] == ["Conv2d", "(None, 128, 8, 8)"]
    check_picture(resnet18_model.plot(rotate=True), tmp_path / "resnet18_rotated.png", names)


def test_toy_resnet_picture_and_its_saved_file(tmp_path: Path) -> None:
    model = load_example("resnet").build()
    names = summary_names(model)
    path = tmp_path / "toy.png"
    figure = model.plot(path, dpi=100)
    image = check_picture(figure, tmp_path / "check.png", names)
    from matplotlib.image import imread

    assert (imread(path) == image).all()
    # Inputs and outputs are marked: the legend names the three colours.
    legend = [t.get_text() for t in figure.axes[0].texts if t.get_gid() == "symgraph-legend"]
    assert legend[:3] == ["input", "layer", "output"]


def test_a_pickled_model_draws_from_its_plan(tmp_path: Path) -> None:
    model = load_example("resnet").build()
    restored = pickle.loads(pickle.dumps(model))
    assert restored._graph is None  # the graph is gone
    assert restored.to_dot() == model.to_dot()
    assert titles(restored.plot()) == titles(model.plot()) == summary_names(model)
    plt.close("all")
    figure = graph_algorithms.draw_graph(model=restored)
    assert titles(figure) == summary_names(model)
    check_picture(figure, tmp_path / "restored.png", summary_names(model))
    plt.close("all")


def test_to_dot_of_resnet18_lists_its_layers_and_edges(resnet18_model: SymbolicModel) -> None:
    nodes, edges = model_nodes(resnet18_model.to_dot())
    plan = resnet18_model.plan
    assert [label_lines(v["label"])[0] for v in nodes.values()] == summary_names(resnet18_model)
    n_in = len(plan.inputs)
    assert edges == [(f"n{s + 1}", f"n{n_in + j + 1}") for j, step in enumerate(plan.steps) for s in step.args]
    assert sum(1 for a, _ in edges if a == "n1") == 1
    adds = [k for k, v in nodes.items() if label_lines(v["label"])[0].startswith("AddOpLayer")]
    assert len(adds) == 8 and all(sum(1 for _, b in edges if b == k) == 2 for k in adds)


def test_draw_graph_draws_what_plot_draws(tmp_path: Path) -> None:
    images = Input((3, 16, 16))
    features = load_example("resnet").residual_block(images, 8, 2, "block")
    model = SymbolicModel(images, nn.Flatten()(features))
    plt.close("all")
    figure = graph_algorithms.draw_graph(model=model)
    assert figure is plt.gcf()
    check_picture(figure, tmp_path / "draw_graph.png", summary_names(model))
    plt.close("all")
    # From the symbolic values: the same names as a model of them gets.
    figure = graph_algorithms.draw_graph(inputs=model.inputs, outputs=model.outputs, node_color="#f4cccc")
    assert titles(figure) == summary_names(model)
    fills = {p.get_facecolor() for p in figure.axes[0].patches if p.get_gid() == "symgraph-box-3"}
    assert fills == {matplotlib.colors.to_rgba("#f4cccc")}
    plt.close("all")
    with pytest.raises(TypeError, match="node_size"):
        graph_algorithms.draw_graph(model=model, node_size=3)
    # A figure opened beforehand is drawn into, and sized for the drawing.
    prepared = plt.figure(dpi=150)
    assert graph_algorithms.draw_graph(model=model) is prepared
    assert tuple(prepared.get_size_inches()) == tuple(model.plot().get_size_inches())
    plt.close("all")


def test_draw_graph_labels_and_foreign_parents(tmp_path: Path) -> None:
    x1, x2 = Input((3,)), Input((3,))
    hidden = nn.Linear(3, 3)(x1, custom_name="cost $")
    out = (hidden + x2).relu()
    plt.close("all")
    # inputs=x1 alone: out also reads x2, which is drawn as an input.
    figure = graph_algorithms.draw_graph(inputs=x1, node_text_namespace={"x1": x1, "hidden": hidden, "out": out})
    assert titles(figure) == summary_names(SymbolicModel([x1, x2], out))
    assert titles(figure)[:4] == ["Input_1", "Input_2", "cost $", "AddOpLayer_1"]
    lines = [t.get_text() for t in figure.axes[0].texts if t.get_gid() == "symgraph-line"]
    assert lines == ["x1", "?", "Linear", "hidden", "?", "out"]
    check_picture(figure, tmp_path / "labels.png", titles(figure))
    plt.close("all")
    with pytest.raises(ValueError, match="no value lies between"):
        graph_algorithms.draw_graph(inputs=x2, outputs=hidden)
    # Outputs not computed from the inputs are left out; hidden, which out reads, is an input.
    figure = graph_algorithms.draw_graph(inputs=x2, outputs=[hidden, out])
    assert titles(figure) == summary_names(SymbolicModel([x2, hidden], out))
    assert titles(figure)[:3] == ["Input_1", "cost $", "AddOpLayer_1"] and len(titles(figure)) == 4
    with pytest.raises(TypeError, match="must be a str"):
        graph_algorithms.draw_graph(outputs=out, node_text_func=lambda value: 3)
    plt.close("all")


def test_numpy_pipeline_shows_its_dims(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    import symgraph
    from symgraph_numpy import Input as ArrayInput

    table = ArrayInput((None, 4), dtype="float32")
    centred = table - table.mean(axis=0)
    model = symgraph.SymbolicModel(table, (centred * 2).astype(np.float64))
    figure = model.plot()
    check_picture(figure, tmp_path / "numpy.png", summary_names(model))
    # The boxes show what the summary's Output column shows: the dims, None for a free size.
    printed: list[str] = []
    model.summary(print_fn=printed.append)
    rows = printed[0].splitlines()
    at, end = rows[1].index("Output"), rows[1].index("Parent")
    shapes = [row[at:end].strip() for row in rows[3:-1]]
    assert shapes == ["(None, 4)", "(4,)", "(None, 4)", "(None, 4)", "(None, 4)"]
    lines = [t.get_text() for t in figure.axes[0].texts if t.get_gid() == "symgraph-line"]
    assert [line for line in lines if line.startswith("(")] == shapes
