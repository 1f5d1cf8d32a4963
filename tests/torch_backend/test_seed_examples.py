"""The examples of pytorch-symbolic's Quick Start and Advanced Topics pages, run on symgraph_torch.

Each test is one example with ``pytorch_symbolic`` replaced by ``symgraph_torch``.
The expected summaries are the tables those pages print; they are compared line
by line, so rows, names, shapes, parameter counts and parents must all agree.
"""

from __future__ import annotations

import re

import pytest

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")

from torch import nn  # noqa: E402

from symgraph_torch import (  # noqa: E402
    CustomInput,
    Input,
    SymbolicModel,
    add_to_graph,
    graph_algorithms,
    useful_layers,
)
from symgraph_torch.functions_utility import add_to_model  # noqa: E402
from tests.torch_backend.conftest import summary_of, table  # noqa: E402

REPR = re.compile(r"<SymbolicTensor at 0x[0-9a-f]+; (\d+) parents; (\d+) children>")


def counts(value: object) -> tuple[int, int]:
    match = REPR.fullmatch(repr(value))
    assert match is not None, repr(value)
    return int(match[1]), int(match[2])


# -- Quick Start ---------------------------------------------------------------------------------
def test_linear_classifier_in_both_notations():
    torch.manual_seed(0)
    inputs = Input(shape=(28 * 28,))
    layer = nn.Linear(in_features=inputs.features, out_features=10)
    first = SymbolicModel(inputs, layer(inputs))
    second = SymbolicModel(inputs, inputs(layer))
    assert inputs.shape == (None, 784)
    assert inputs.features == 784
    data = torch.rand(3, 784)
    assert torch.equal(first(data), layer(data))
    assert torch.equal(second(data), layer(data))
    assert summary_of(first) == summary_of(second)


def toy_resnet_keras_notation() -> tuple[SymbolicModel, list[nn.Module]]:
    """The seed's toy ResNet, layer(x) notation; also the model of the training-equivalence test."""
    inputs = Input(shape=(3, 32, 32))
    x = nn.Conv2d(inputs.channels, 32, 3)(inputs)(nn.ReLU())
    x = nn.Conv2d(x.channels, 64, 3)(x)(nn.ReLU())
    block_1_output = nn.MaxPool2d(3)(x)

    x = nn.Conv2d(block_1_output.channels, 64, 3, padding=1)(block_1_output)(nn.ReLU())
    x = nn.Conv2d(x.channels, 64, 3, padding=1)(x)(nn.ReLU())
    block_2_output = x + block_1_output

    x = nn.Conv2d(block_2_output.channels, 64, 3, padding=1)(block_2_output)(nn.ReLU())
    x = nn.Conv2d(x.channels, 64, 3, padding=1)(x)(nn.ReLU())
    block_3_output = x + block_2_output

    x = nn.Conv2d(x.channels, 64, 3)(block_3_output)(nn.ReLU())
    x = nn.AvgPool2d(kernel_size=x.HW)(x)(nn.Flatten())
    x = nn.Linear(x.features, 256)(x)(nn.ReLU())
    x = nn.Dropout(0.5)(x)
    outputs = nn.Linear(x.features, 10)(x)
    model = SymbolicModel(inputs, outputs)
    return model, list(model.children())


def toy_resnet_call_notation() -> SymbolicModel:
    inputs = Input(shape=(3, 32, 32))
    x = inputs(nn.Conv2d(inputs.channels, 32, 3))(nn.ReLU())
    x = x(nn.Conv2d(x.channels, 64, 3))(nn.ReLU())
    block_1_output = x(nn.MaxPool2d(3))

    x = block_1_output(nn.Conv2d(block_1_output.channels, 64, 3, padding=1))(nn.ReLU())
    x = x(nn.Conv2d(x.channels, 64, 3, padding=1))(nn.ReLU())
    block_2_output = x + block_1_output

    x = block_2_output(nn.Conv2d(block_2_output.channels, 64, 3, padding=1))(nn.ReLU())
    x = x(nn.Conv2d(x.channels, 64, 3, padding=1))(nn.ReLU())
    block_3_output = x + block_2_output

    x = block_3_output(nn.Conv2d(x.channels, 64, 3))(nn.ReLU())
    x = x(nn.AvgPool2d(kernel_size=(x.H, x.W)))(nn.Flatten())
    x = x(nn.Linear(x.features, 256))(nn.ReLU())
    x = x(nn.Dropout(0.5))
    outputs = x(nn.Linear(x.features, 10))
    return SymbolicModel(inputs, outputs)


def test_toy_resnet_notations_build_the_same_network():
    torch.manual_seed(0)
    keras_style, _ = toy_resnet_keras_notation()
    torch.manual_seed(0)
    call_style = toy_resnet_call_notation()
    assert summary_of(keras_style) == summary_of(call_style)
    assert keras_style.output_shape == (None, 10)
    keras_style.eval()
    call_style.eval()
    data = torch.rand(2, 3, 32, 32)
    assert torch.equal(keras_style(data), call_style(data))


def test_sequential_topology():
    inputs = Input((3, 128, 128))
    x = inputs
    for channels in (16, 32, 64, 64):
        x = x(nn.Conv2d(in_channels=x.channels, out_channels=channels, kernel_size=3))
        x = x(nn.MaxPool2d(kernel_size=2))
        x = x(nn.ReLU())
    x = x(nn.Flatten())
    outputs = x(nn.Linear(in_features=x.features, out_features=10))
    model = SymbolicModel(inputs=inputs, outputs=outputs)
    assert model.output_shape == (None, 10)
    reference = nn.Sequential(*model.children())
    data = torch.rand(2, 3, 128, 128)
    assert torch.equal(model(data), reference(data))


def test_multiple_inputs_and_outputs():
    task1_input = Input(shape=(1, 28, 28))
    task2_input = Input(shape=(3, 32, 32))

    x = task1_input
    x = x(nn.Conv2d(x.channels, 16, 3))
    x = x(nn.MaxPool2d(3))(nn.ReLU())(nn.Flatten())
    head1_out = x(nn.Linear(x.features, 200))

    x = task2_input
    x = x(nn.Conv2d(x.channels, 16, 3))
    x = x(nn.MaxPool2d(3))(nn.ReLU())(nn.Flatten())
    head2_out = x(nn.Linear(x.features, 200))

    x = head1_out + head2_out
    x = x(nn.Linear(x.features, 400))(nn.ReLU())
    task1_outputs = x(nn.Linear(x.features, 10))
    task2_outputs = x(nn.Linear(x.features, 10))

    model = SymbolicModel(inputs=(task1_input, task2_input), outputs=(task1_outputs, task2_outputs))
    assert model.input_shape == ((None, 1, 28, 28), (None, 3, 32, 32))
    assert model.output_shape == ((None, 10), (None, 10))
    a, b = torch.rand(4, 1, 28, 28), torch.rand(4, 3, 32, 32)
    out1, out2 = model(a, b)
    layers = dict(model.named_children())

    def head(prefix: str, data: torch.Tensor, conv: str, linear: str) -> torch.Tensor:
        y = layers[conv](data)
        y = torch.flatten(torch.relu(nn.functional.max_pool2d(y, 3)), 1)
        return layers[linear](y)

    hidden = torch.relu(layers["Linear_3"](head("1", a, "Conv2d_1", "Linear_1") + head("2", b, "Conv2d_2", "Linear_2")))
    assert torch.allclose(out1, layers["Linear_4"](hidden))
    assert torch.allclose(out2, layers["Linear_5"](hidden))


def test_custom_module_taking_several_arguments():
    calls: list[int] = []

    def custom_func(*args):
        calls.append(len(args))
        return args

    class CustomModule(nn.Module):
        def forward(self, *args, **kwds):
            return custom_func(*args)

    a, b = Input((2,)), Input((3,))
    first, second = CustomModule()(a, b)
    assert (first.shape, second.shape) == ((None, 2), (None, 3))
    model = SymbolicModel((a, b), (second, first))
    x, y = torch.rand(4, 2), torch.rand(4, 3)
    out = model(x, y)
    assert torch.equal(out[0], y) and torch.equal(out[1], x)
    assert calls == [2, 2]


@pytest.mark.parametrize("notation", ["layer(x1, x2)", "x1(layer, x2)", "add_to_model"])
def test_concatenation_three_ways(notation):
    x1 = Input(shape=(1, 2, 3))
    x2 = Input(shape=(5, 2, 3))
    if notation == "layer(x1, x2)":
        x = useful_layers.ConcatLayer(dim=1)(x1, x2)
    elif notation == "x1(layer, x2)":
        x = x1(useful_layers.ConcatLayer(dim=1), x2)
    else:
        x = add_to_model(torch.concat, (x1, x2), dim=1)
    assert x.shape == (None, 6, 2, 3)
    a, b = torch.rand(3, 1, 2, 3), torch.rand(3, 5, 2, 3)
    assert torch.equal(SymbolicModel((x1, x2), x)(a, b), torch.cat((a, b), dim=1))


def test_torch_functions_are_recorded_instead_of_raising():
    # pytorch-symbolic raises TypeError for ``torch.abs(Input(...))``; recording it is the point here.
    x = Input((1, 2, 3))
    y = torch.abs(x)
    assert y.shape == (None, 1, 2, 3)
    data = torch.randn(4, 1, 2, 3)
    assert torch.equal(SymbolicModel(x, y)(data), data.abs())


# -- Advanced Topics -----------------------------------------------------------------------------
def test_nodes_parents_and_children():
    x = Input(shape=(1,))
    assert counts(x) == (0, 0)
    y = x + 2
    assert counts(y) == (1, 0)
    assert str(y.layer) == "LambdaOpLayer()"
    a = y - 1
    assert counts(y) == (1, 1)
    b = y / 2
    assert counts(y) == (1, 2)
    assert y.children == (a, b)
    assert [counts(c) for c in y.children] == [(1, 0), (1, 0)]
    assert y.parents == (x,)


def test_drawing_the_graph(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    pytest.importorskip("networkx")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = Input(shape=(1,))
    y = x + 2
    a = y - 1
    b = y / 2
    figure = graph_algorithms.draw_graph(inputs=x, node_text_namespace=locals())
    labels = sorted(t.get_text() for t in figure.axes[0].texts if t.get_text() in {"x", "y", "a", "b", "?"})
    assert labels == ["a", "b", "x", "y"]
    plt.close("all")

    nodes = [a + i for i in range(10)]
    out = sum(nodes)
    plt.figure(dpi=300)
    figure = graph_algorithms.draw_graph(
        inputs=x, outputs=out, edge_text_func=lambda x: "", node_text_namespace=locals(), figsize=(10, 10)
    )
    # x, y, a, the ten a + i, and the nine additions of sum(); sum() starts with 0 + node.
    assert len(graph_algorithms.nodes_between(x, out)) == 3 + 10 + 10
    figure.savefig(tmp_path / "graph.png")
    plt.close("all")


def test_summary_with_custom_name():
    inputs = x = Input((784,))
    for _ in range(3):
        x = nn.Linear(x.features, 100)(x)
    x = nn.Linear(x.features, 10)(x, custom_name="Classifier")
    model = SymbolicModel(inputs, x)
    assert summary_of(model) == table(
        """
___________________________________________________
     Layer        Output shape   Params   Parent
===================================================
1    Input_1      (None, 784)    0
2    Linear_1     (None, 100)    78500    1
3    Linear_2     (None, 100)    10100    2
4    Linear_3     (None, 100)    10100    3
5*   Classifier   (None, 10)     1010     4
===================================================
Total params: 99710
Trainable params: 99710
Non-trainable params: 0
___________________________________________________
"""
    )
    assert isinstance(model.Classifier, nn.Linear)


class AddN(nn.Module):
    def forward(self, *tensors):
        return sum(tensors)


MULTI_IO_TABLE = """
____________________________________________________________
      Layer             Output shape   Params   Parent
============================================================
1     Input_1           (None, 5)      0
2     Input_2           (None, 5)      0
3     Input_3           (None, 5)      0
4     Input_4           (None, 5)      0
5     Input_5           (None, 5)      0
6     LambdaOpLayer_1   (None, 5)      0        1,2,3,4,5
7*    LambdaOpLayer_2   (None, 5)      0        6
8*    LambdaOpLayer_3   (None, 5)      0        6
9*    LambdaOpLayer_4   (None, 5)      0        6
10*   LambdaOpLayer_5   (None, 5)      0        6
============================================================
Total params: 0
Trainable params: 0
Non-trainable params: 0
____________________________________________________________
"""


def test_multiple_inputs_and_outputs_summary():
    # The page's code sums with a custom AddN module, but its table was printed from
    # a version that used useful_layers.LambdaOpLayer (the page imports useful_layers
    # and never uses it). A layer is named by its class, so the code as written gives
    # AddN_1 and the divisions count from LambdaOpLayer_1; the LambdaOpLayer version
    # gives the page's table exactly.
    inputs = [Input((5,)) for _ in range(5)]
    intermediate = AddN()(*inputs)
    outputs = [intermediate / i for i in range(1, 5)]
    model = SymbolicModel(inputs, outputs)
    as_written = table(MULTI_IO_TABLE).replace(
        "LambdaOpLayer_1   (None, 5)      0        1", "AddN_1            (None, 5)      0        1"
    )
    for k in (2, 3, 4, 5):
        as_written = as_written.replace(f"LambdaOpLayer_{k}", f"LambdaOpLayer_{k - 1}")
    assert summary_of(model) == as_written
    data = [torch.rand(2, 5) for _ in range(5)]
    expected = sum(data)
    for got, i in zip(model(*data), range(1, 5), strict=True):
        assert torch.allclose(got, expected / i)

    inputs = [Input((5,)) for _ in range(5)]
    intermediate = useful_layers.LambdaOpLayer(lambda *tensors: sum(tensors))(*inputs)
    outputs = [intermediate / i for i in range(1, 5)]
    assert summary_of(SymbolicModel(inputs, outputs)) == table(MULTI_IO_TABLE)


def test_addn_module_and_sum_builtin_give_different_graphs():
    inputs = [Input((5,)) for _ in range(3)]
    by_module = graph_algorithms.nodes_between(inputs, AddN()(*inputs))
    by_sum = graph_algorithms.nodes_between(inputs, sum(inputs))
    assert len(by_module) == 3 + 1
    assert len(by_sum) == 3 + 3  # 0 + a, then + b, then + c


CLASSIFIER_TABLE = """
_______________________________________________________
     Layer       Output shape        Params   Parent
=======================================================
1    Input_1     (None, 1, 28, 28)   0
2    Conv2d_1    (None, 8, 28, 28)   80       1
3    ReLU_1      (None, 8, 28, 28)   0        2
4    Conv2d_2    (None, 8, 28, 28)   584      3
5    ReLU_2      (None, 8, 28, 28)   0        4
6    Conv2d_3    (None, 8, 28, 28)   584      5
7    ReLU_3      (None, 8, 28, 28)   0        6
8    Flatten_1   (None, 6272)        0        7
9*   Linear_1    (None, 10)          62730    8
=======================================================
Total params: 63978
Trainable params: 63978
Non-trainable params: 0
_______________________________________________________
"""

FEATURES_TABLE = """
______________________________________________________
     Layer      Output shape        Params   Parent
======================================================
1    Input_1    (None, 1, 28, 28)   0
2    Conv2d_1   (None, 8, 28, 28)   80       1
3    ReLU_1     (None, 8, 28, 28)   0        2
4    Conv2d_2   (None, 8, 28, 28)   584      3
5    ReLU_2     (None, 8, 28, 28)   0        4
6    Conv2d_3   (None, 8, 28, 28)   584      5
7*   ReLU_3     (None, 8, 28, 28)   0        6
======================================================
Total params: 1248
Trainable params: 1248
Non-trainable params: 0
______________________________________________________
"""

NESTED_TABLE = """
______________________________________________________________
      Layer             Output shape        Params   Parent
==============================================================
1     Input_1           (None, 1, 32, 32)   0
2     Input_2           (None, 1, 64, 64)   0
3     Input_3           (None, 1, 64, 64)   0
4     SymbolicModel_1   (None, 8, 32, 32)   1248     1
5     AddOpLayer_1      (None, 1, 64, 64)   0        2,3
6     SymbolicModel_2   (None, 8, 64, 64)   1248     5
7     MaxPool2d_1       (None, 8, 32, 32)   0        6
8     SubOpLayer_1      (None, 8, 32, 32)   0        4,7
9     LambdaOpLayer_1   (None, 8, 32, 32)   0        8
10*   wrap(sum)_1       (None,)             0        9
==============================================================
Total params: 1248
Trainable params: 1248
Non-trainable params: 0
______________________________________________________________
"""


def test_reusing_layers_sub_models_add_output_and_nested_models():
    inputs = x = Input((1, 28, 28))
    for _ in range(3):
        x = nn.Conv2d(x.C, 8, 3, padding=1)(x)(nn.ReLU())
    features = x
    x = nn.Flatten()(x)
    outputs = nn.Linear(x.features, 10)(x)
    classifier = SymbolicModel(inputs, outputs)
    assert summary_of(classifier) == table(CLASSIFIER_TABLE)

    feature_extractor = SymbolicModel(inputs, features)
    assert summary_of(feature_extractor) == table(FEATURES_TABLE)
    assert summary_of(classifier) == table(CLASSIFIER_TABLE), "building a sub-model must not touch the original"
    assert feature_extractor.Conv2d_1 is classifier.Conv2d_1

    classifier.add_output(features)
    marked = table(CLASSIFIER_TABLE).replace("7    ReLU_3      (None, 8, 28, 28)", "7*   ReLU_3      (None, 8, 28, 28)")
    assert summary_of(classifier) == marked
    images = torch.rand(2, 1, 28, 28)
    logits, maps = classifier(images)
    assert torch.equal(maps, feature_extractor(images))

    inputs1 = Input((1, 32, 32))
    inputs2 = Input((1, 64, 64))
    noise = Input((1, 64, 64))
    features1 = feature_extractor(inputs1)
    features2 = feature_extractor(inputs2 + noise)
    features2 = nn.MaxPool2d(2)(features2)
    diffs = (features1 - features2) ** 2
    outputs = add_to_graph(torch.sum, diffs, dim=(1, 2, 3))
    strange_model = SymbolicModel((inputs1, inputs2, noise), outputs)
    assert summary_of(strange_model) == table(NESTED_TABLE)

    a, b, n = torch.rand(3, 1, 32, 32), torch.rand(3, 1, 64, 64), torch.rand(3, 1, 64, 64)
    with pytest.raises(ValueError, match=r"Input_1 expects a tensor of shape \(None, 1, 28, 28\)"):
        feature_extractor(a)  # called directly, the model checks its inputs
    feature_extractor.check_inputs = False  # the oracle runs it on other image sizes
    expected = ((feature_extractor(a) - nn.functional.max_pool2d(feature_extractor(b + n), 2)) ** 2).sum(dim=(1, 2, 3))
    assert torch.allclose(strange_model(a, b, n), expected)


def test_concat_layer_written_as_a_module():
    class ConcatLayer(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.dim = dim

        def forward(self, *tensors):
            return torch.cat(tensors=tensors, dim=self.dim)

    x = Input(batch_shape=(2, 10, 20))
    y = Input(batch_shape=(2, 20, 20))
    by_module = ConcatLayer(dim=1)(x, y)
    concatenated = add_to_graph(torch.cat, (x, y), dim=1)
    assert by_module.shape == concatenated.shape == (2, 30, 20)
    a, b = torch.rand(2, 10, 20), torch.rand(2, 20, 20)
    assert torch.equal(SymbolicModel((x, y), concatenated)(a, b), SymbolicModel((x, y), by_module)(a, b))


def test_add_to_graph_with_nested_arguments(capsys):
    x = Input(batch_shape=(10, 20))
    y = Input(batch_shape=(20, 30))
    z = Input(batch_shape=(30, 10))
    constant = torch.rand(10, 10)
    data_dict = {
        "tensors": {"constant": constant, "symbolic": x, "parameters": [y, z]},
        "metadata": {"date": "01.01.2001", "name": "Batman"},
    }

    def execute_noisy(data_dict, *, add_noise: bool = False):
        params = data_dict["tensors"]["parameters"]
        x = data_dict["tensors"]["symbolic"]
        for param in params:
            x = x @ param
        if add_noise:
            print("Adding noise!")
            x = x + data_dict["tensors"]["constant"]
        return x, data_dict["tensors"]["constant"]

    outputs, noise = add_to_graph(execute_noisy, data_dict, add_noise=True)
    model = SymbolicModel(inputs=(x, y, z), outputs=outputs)
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    assert capsys.readouterr().out == "Adding noise!\n"
    assert "\n".join(line.rstrip() for line in lines[0].splitlines()) == table(
        """
______________________________________________________________
     Layer                   Output shape   Params   Parent
==============================================================
1    Input_1                 (10, 20)       0
2    Input_2                 (20, 30)       0
3    Input_3                 (30, 10)       0
4    wrap(execute_noisy)_1   tuple          0        1,2,3
5*   UnpackLayer_1           (10, 10)       0        4
==============================================================
Total params: 0
Trainable params: 0
Non-trainable params: 0
______________________________________________________________
"""
    )
    a, b, c = torch.rand((10, 20)), torch.rand((20, 30)), torch.rand((30, 10))
    outs = model(a, b, c)
    assert capsys.readouterr().out == "Adding noise!\n"
    assert torch.allclose(outs, a @ b @ c + constant)


def test_arbitrary_symbolic_data():
    input1 = x = CustomInput(np.random.rand(100, 200))
    input2 = y = CustomInput(np.array([1, 2, 3]))
    z = x[:, :, None] + y.reshape(1, 1, -1)
    model = SymbolicModel((input1, input2), outputs=z)
    assert summary_of(model) == table(
        """
______________________________________________________________________
     Layer             Output shape                 Params   Parent
======================================================================
1    Input_1           ndarray                      0
2    Input_2           ndarray                      0
3    SliceLayer_1      ndarray                      0        1
4    GetAttr_1         method-wrapper               0        3
5    GetAttr_2         builtin_function_or_method   0        2
6    wrap(reshape)_1   ndarray                      0        5
7*   wrap(__add__)_1   ndarray                      0        4,6
======================================================================
Total params: 0
Trainable params: 0
Non-trainable params: 0
______________________________________________________________________
"""
    )
    a, b = np.random.rand(100, 200), np.random.rand(3)
    example_outs = model(a, b)
    assert example_outs.shape == (100, 200, 3)
    np.testing.assert_array_equal(example_outs, a[:, :, None] + b.reshape(1, 1, -1))
