"""pytorch-symbolic 1.2.4's public surface, found under ``symgraph_torch`` and doing what it did.

pytorch-symbolic is not installed here, so its public names are listed by hand
from its sources (module by module, every name not starting with ``_`` that
the module defines or re-exports on purpose). Each name is imported from its
``symgraph_torch`` location, and each argument is checked against an oracle:
eager torch code, or a result worked out by hand.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import random
import sys
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import symgraph  # noqa: E402
import symgraph_torch  # noqa: E402
from symgraph_torch import CustomInput, Input, SymbolicModel, symbolic_api_2, useful_layers  # noqa: E402
from symgraph_torch import graph_algorithms as ga  # noqa: E402
from symgraph_torch import model_tools as mt  # noqa: E402
from symgraph_torch._tracing import ModuleCall, _original_call  # noqa: E402
from symgraph_torch.symbolic_data import (  # noqa: E402
    SymbolicCallable,
    SymbolicData,
    SymbolicFactory,
    SymbolicTensor,
)

# -- the names ------------------------------------------------------------------------------------

#: Module (relative to the package) -> the public names pytorch-symbolic 1.2.4 defines there.
PUBLIC_NAMES: dict[str, tuple[str, ...]] = {
    "": (
        "Input",
        "CustomInput",
        "SymbolicModel",
        "add_to_graph",
        "config",
        "graph_algorithms",
        "model_tools",
        "optimize_module_calls",
        "symbolic_data",
        "useful_layers",
        "SymbolicAPI2ContextManager",
    ),
    "config": ("CODEGEN_BY_DEFAULT", "CODEGEN_MIN_LOOP_LENGTH", "API_2_ENABLED_BY_DEFAULT"),
    "symbolic_data": ("SymbolicData", "SymbolicCallable", "SymbolicTensor", "SymbolicFactory", "Input", "CustomInput"),
    "symbolic_api_2": (
        "SymbolicAPI2ContextManager",
        "optimize_module_calls",
        "is_symbolic_api_2_enabled",
        "enable_symbolic_api_2_for_new_modules",
        "disable_symbolic_api_2_for_new_modules",
    ),
    "symbolic_model": ("DetachedSymbolicModel", "SymbolicModel"),
    "graph_algorithms": (
        "check_for_missing_inputs",
        "figure_out_nodes_between",
        "default_node_text",
        "default_edge_text",
        "variable_name_resolver",
        "draw_graph",
        "sort_graph_and_check_DAG",
    ),
    "functions_utility": ("add_to_graph",),
    "model_tools": (
        "get_parameter_count",
        "get_parameter_shapes",
        "model_similar",
        "hash_torch_tensor",
        "models_have_corresponding_parameters",
    ),
    "useful_layers": (
        "LambdaOpLayer",
        "NamedLambdaOpLayer",
        "CallbackLayer",
        "AddOpLayer",
        "SubOpLayer",
        "MulOpLayer",
        "ModOpLayer",
        "MatmulOpLayer",
        "ConcatLayer",
        "StackLayer",
        "ReshapeLayer",
        "ViewCopyLayer",
        "AggregateLayer",
        "UnpackLayer",
        "SliceLayer",
        "SliceLayerSymbolicIdx",
        "MethodCall",
        "GetAttr",
    ),
}

#: Public names of pytorch-symbolic deliberately not offered, with the reason (see the migration guide).
NOT_OFFERED: dict[str, str] = {
    # Its generated-code builder, tied to pytorch-symbolic's own model internals.
    "code_generator.generate_forward_with_loops": "symgraph generates code from its own plans",
    # The replacement for nn.Module.__call__; symgraph_torch has its own hook.
    "symbolic_api_2.call_wrapper_for_api_2": "the module-call hook is symgraph_torch._tracing's",
}

#: Keyword arguments pytorch-symbolic's callables take, by ``module.name``.
PARAMETERS: dict[str, tuple[str, ...]] = {
    "symbolic_data.Input": ("shape", "batch_size", "batch_shape", "dtype", "min_value", "max_value"),
    "symbolic_data.CustomInput": ("data",),
    "symbolic_model.SymbolicModel": ("inputs", "outputs", "enable_forward_codegen"),
    "functions_utility.add_to_graph": ("func", "custom_name"),
    "graph_algorithms.check_for_missing_inputs": ("used_nodes", "inputs"),
    "graph_algorithms.figure_out_nodes_between": ("inputs", "outputs"),
    "graph_algorithms.default_node_text": ("sym",),
    "graph_algorithms.default_edge_text": ("layer",),
    "graph_algorithms.variable_name_resolver": ("namespace",),
    "graph_algorithms.sort_graph_and_check_DAG": ("nodes",),
    "graph_algorithms.draw_graph": (
        "model",
        "inputs",
        "outputs",
        "node_text_func",
        "edge_text_func",
        "node_text_namespace",
        "rotate_graph",
        "rotate_labels",
        "show",
        "figsize",
    ),
    "model_tools.get_parameter_count": ("model", "only_trainable"),
    "model_tools.get_parameter_shapes": ("model",),
    "model_tools.model_similar": ("a", "b"),
    "model_tools.hash_torch_tensor": ("tensor",),
    "model_tools.models_have_corresponding_parameters": ("a", "b"),
    "useful_layers.LambdaOpLayer": ("op",),
    "useful_layers.NamedLambdaOpLayer": ("op", "name"),
    "useful_layers.CallbackLayer": ("op",),
    "useful_layers.ConcatLayer": ("dim",),
    "useful_layers.StackLayer": ("dim",),
    "useful_layers.ReshapeLayer": ("shape", "batch_size_included"),
    "useful_layers.ViewCopyLayer": ("shape", "batch_size_included"),
    "useful_layers.AggregateLayer": ("op", "dim", "keepdim"),
    "useful_layers.SliceLayer": ("idx",),
    "useful_layers.MethodCall": ("method_name",),
    "useful_layers.GetAttr": ("name",),
}


def resolve(dotted: str) -> Any:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(f"symgraph_torch.{module}" if module else "symgraph_torch"), name)


@pytest.mark.parametrize(
    ("module", "name"), [(m, n) for m, names in PUBLIC_NAMES.items() for n in names], ids=lambda v: v or "top"
)
def test_every_public_name_imports_from_its_symgraph_torch_location(module: str, name: str) -> None:
    target = importlib.import_module(f"symgraph_torch.{module}" if module else "symgraph_torch")
    assert hasattr(target, name), f"symgraph_torch.{module}.{name} is missing" if module else name
    if module and hasattr(target, "__all__") and module != "config":
        assert name in target.__all__


def test_the_new_public_modules_are_exported_from_the_package() -> None:
    for module in ("symbolic_data", "symbolic_api_2", "symbolic_model"):
        assert module in symgraph_torch.__all__
        assert getattr(symgraph_torch, module) is importlib.import_module(f"symgraph_torch.{module}")
    # One object each, wherever it is imported from.
    assert symgraph_torch.symbolic_data.Input is symgraph_torch.Input
    assert symgraph_torch.symbolic_api_2.SymbolicAPI2ContextManager is symgraph_torch.SymbolicAPI2ContextManager
    assert symgraph_torch.symbolic_model.SymbolicModel is symgraph_torch.SymbolicModel
    assert symgraph_torch.symbolic_model.DetachedSymbolicModel is symgraph_torch.DetachedSymbolicModel
    assert symgraph_torch.symbolic_api_2.optimize_module_calls is symgraph_torch.optimize_module_calls


def test_config_read_from_env_reads_without_evaluating(monkeypatch: pytest.MonkeyPatch) -> None:
    read = symgraph_torch.config.read_from_env
    monkeypatch.setenv("PYTORCH_SYMBOLIC_X", "off")
    assert read("PYTORCH_SYMBOLIC_X", True) is False
    monkeypatch.setenv("PYTORCH_SYMBOLIC_X", "12")
    assert read("PYTORCH_SYMBOLIC_X", 50) == 12 and read("PYTORCH_SYMBOLIC_X", "a") == "12"
    # pytorch-symbolic ran ast.literal_eval here; a literal is only text to us.
    monkeypatch.setenv("PYTORCH_SYMBOLIC_X", "[1, 2]")
    with pytest.raises(ValueError, match=r"PYTORCH_SYMBOLIC_X='\[1, 2\]' is not a positive whole number"):
        read("PYTORCH_SYMBOLIC_X", 50)
    with pytest.raises(TypeError, match="not float"):
        read("PYTORCH_SYMBOLIC_X", 1.5)
    monkeypatch.delenv("PYTORCH_SYMBOLIC_X")
    assert read("PYTORCH_SYMBOLIC_X", 7) == 7


@pytest.mark.parametrize("dotted", sorted(NOT_OFFERED))
def test_the_names_left_out_on_purpose_are_absent(dotted: str) -> None:
    # If one appears, the migration guide's list of differences is out of date.
    module, _, name = dotted.rpartition(".")
    try:
        target = importlib.import_module(f"symgraph_torch.{module}")
    except ModuleNotFoundError:
        return
    assert not hasattr(target, name)


@pytest.mark.parametrize("dotted", sorted(PARAMETERS))
def test_callables_take_pytorch_symbolics_argument_names(dotted: str) -> None:
    parameters = inspect.signature(resolve(dotted)).parameters
    for name in PARAMETERS[dotted]:
        assert name in parameters, f"{dotted} has no parameter {name!r}"
        assert parameters[name].kind is not inspect.Parameter.POSITIONAL_ONLY


# -- symbolic_data --------------------------------------------------------------------------------


def test_every_symbolic_value_is_a_symbolic_data() -> None:
    x = Input((3,))
    obj = CustomInput(data={"k": 2})
    values = [x, x + 1, x.size(0), obj, obj["k"], CustomInput(len), symgraph.CustomInput(5)]
    assert all(isinstance(v, SymbolicData) for v in values)
    assert SymbolicData is symgraph.SymbolicData
    assert type(x) is SymbolicTensor and type(x + 1) is SymbolicTensor


class Point:
    def __init__(self, x: int) -> None:
        self.x = x


def make_namesake() -> type:
    class Point:  # same __name__ as the module-level one, another type
        def __init__(self, x: int) -> None:
            self.x = x * 100

    return Point


def test_symbolic_factory_gives_distinct_classes_to_types_that_share_a_name() -> None:
    other = make_namesake()
    assert other.__name__ == Point.__name__ and other is not Point
    ours, theirs = SymbolicFactory(Point), SymbolicFactory(other)
    assert ours is not theirs
    assert SymbolicFactory(Point) is ours  # cached by the type
    assert issubclass(ours, SymbolicData) and issubclass(theirs, SymbolicData)
    # The class CustomInput gives values of the type is the factory's.
    a, b = CustomInput(Point(2)), CustomInput(other(2))
    assert type(a) is ours and type(b) is theirs
    # Derived values get their own type's class too, as in pytorch-symbolic.
    assert type(a.x) is SymbolicFactory(int)
    assert SymbolicModel((a, b), (a.x, b.x))(Point(5), other(5)) == (5, 500)


def test_symbolic_factory_classes_for_tensors_and_callables_and_bad_input() -> None:
    assert SymbolicFactory(torch.Tensor) is SymbolicTensor
    assert type(CustomInput(torch.zeros(2))) is SymbolicFactory(torch.Tensor)
    assert SymbolicFactory(type(len)) is SymbolicCallable
    assert SymbolicFactory(dict) is type(CustomInput({})) and SymbolicFactory(dict) is not SymbolicFactory(list)
    with pytest.raises(TypeError, match="needs a type"):
        SymbolicFactory(3)  # type: ignore[arg-type]


def test_symbolic_callable_records_the_call_of_the_value() -> None:
    def affine(a: float, b: float, *, scale: float = 1.0) -> float:
        return a * scale + b

    f = CustomInput(affine)
    assert isinstance(f, SymbolicCallable)
    n = CustomInput(4)
    y = f(n, 2, scale=10)
    assert y.v == affine(4, 2, scale=10)
    model = SymbolicModel((f, n), y)

    def other(a: float, b: float, *, scale: float = 1.0) -> float:
        return a - b * scale

    assert model(other, 7) == other(7, 2, scale=10)
    # A method read from a value is callable symbolic data too.
    words = CustomInput("a b c")
    split = words.split
    assert isinstance(split, SymbolicCallable)
    assert SymbolicModel(words, split(" "))("x y") == ["x", "y"]


def test_custom_input_non_callable_applies_a_layer_when_called() -> None:
    # pytorch-symbolic: SymbolicData(...)(layer, *others) is layer(data, *others).
    values = CustomInput([3, 1, 2])
    extra = CustomInput([9])
    ordered = values(sorted)
    merged = values.apply_module(lambda a, b: a + b, extra)
    model = SymbolicModel((values, extra), (ordered, merged))
    assert model([5, 4], [0]) == (sorted([5, 4]), [5, 4] + [0])
    with pytest.raises(TypeError, match=r"layer must be an nn\.Module or another callable"):
        values(3)


def test_operators_on_custom_data_compute_what_python_computes() -> None:
    # int.__add__(2.5) is NotImplemented: Python then asks float.__radd__. The
    # model must compute what the expression computes, not NotImplemented.
    x = CustomInput(3)
    cases = [
        (x + 2.5, lambda v: v + 2.5),
        (2.5 + x, lambda v: 2.5 + v),
        (x * 1.5, lambda v: v * 1.5),
        (x - 1, lambda v: v - 1),
    ]
    for y, eager in cases:
        assert y.v == eager(3)
        assert SymbolicModel(x, y)(4) == eager(4)
    with pytest.raises(TypeError, match="unsupported operand"):
        CustomInput([1]) - 1
    assert x.children and all(c.v is not NotImplemented for c in x.children)


def test_batch_size_known_of_inputs() -> None:
    assert Input((3,)).batch_size_known is False
    assert Input(shape=(3,), batch_size=4).batch_size_known is True
    assert Input(batch_shape=(4, 3)).batch_size_known is True
    assert Input(batch_shape=(None, 3)).batch_size_known is False
    assert Input((None, 8), batch_dim=1).batch_size_known is False
    assert CustomInput(torch.zeros(2, 3)).batch_size_known is True
    assert CustomInput(data=[1, 2]).batch_size_known is True  # as pytorch-symbolic's CustomInput


def test_batch_size_known_below_a_mixture_of_inputs() -> None:
    free = Input((3,))
    fixed = Input((3,), batch_size=2)
    weight = Input(batch_shape=(3, 5))
    assert (fixed @ weight).batch_size_known is True
    assert (free @ weight).batch_size_known is False
    mixed = torch.cat([free, fixed], dim=1)  # both have 2 examples in the trace
    assert mixed.batch_size_known is False
    assert (mixed.relu() * 2).batch_size_known is False
    assert (fixed * 2).relu().batch_size_known is True
    items = CustomInput(data=[1, 2])
    assert items[0].batch_size_known is True


def test_batch_size_known_and_depth_are_iterative_on_long_chains() -> None:
    x = Input((1,))
    y = x
    length = sys.getrecursionlimit() + 200
    for _ in range(length):
        y = y + 1
    assert y.batch_size_known is False and y.depth == length


def test_depth_is_the_longest_path_from_an_input() -> None:
    x, w = Input((3,)), Input(batch_shape=(3, 3))
    a = x + 1  # 1
    b = a.relu()  # 2
    c = b * a  # 3
    assert (x.depth, a.depth, b.depth, c.depth, (c @ w).depth, w.depth) == (0, 1, 2, 3, 4, 0)
    assert CustomInput([1]).depth == 0 and (CustomInput([1]) + [2]).depth == 2  # GetAttr then the call


def test_symbolic_tensor_methods_pytorch_symbolic_defines_replay_like_torch() -> None:
    # Applied once to the symbolic input and once to real data: the eager oracle.
    methods = {
        "reshape": lambda t: t.reshape(-1, 12),
        "view": lambda t: t.view(-1, 2, 6),
        "t": lambda t: t[0].t(),
        "T": lambda t: t[0].T,
        "mean": lambda t: t.mean(),
        "mean_dim": lambda t: t.mean(dim=1, keepdim=True),
        "sum": lambda t: t.sum(dim=2),
        "median": lambda t: t.median(),
        "argmax": lambda t: t.argmax(dim=1),
        "argmin": lambda t: t.argmin(),
        "flatten": lambda t: t.flatten(1),
    }
    x = Input((3, 4))
    model = SymbolicModel(x, {name: method(x) for name, method in methods.items()})
    data = torch.rand(5, 3, 4)
    got = model(data)
    assert got.keys() == methods.keys()
    assert all(torch.equal(got[name], method(data)) for name, method in methods.items())


def test_shape_properties_and_layer_and_apply_module() -> None:
    x = Input((3, 8, 6))
    assert (x.C, x.channels, x.H, x.W, x.HW, x.CHW, x.HWC) == (3, 3, 8, 6, (8, 6), (3, 8, 6), (8, 6, 3))
    assert x.shape == (None, 3, 8, 6) and x.batch_size is None and x.numel == 3 * 8 * 6
    assert Input((3,), batch_size=7).batch_size == 7
    conv = nn.Conv2d(3, 2, 3)
    y = x.apply_module(conv, custom_name="conv")
    assert y.layer is conv and x.layer is None
    z = y.apply_module(useful_layers.AddOpLayer(), y)
    assert isinstance(z.layer, useful_layers.AddOpLayer)
    data = torch.rand(2, 3, 8, 6)
    model = SymbolicModel(x, z)
    assert torch.equal(model(data), conv(data) + conv(data))
    assert next(n for n, _ in model.named_children()) == "conv"


# -- symbolic_api_2 ----------------------------------------------------------------------------------


@pytest.fixture
def api_2_restored():  # type: ignore[no-untyped-def]
    before = nn.Module.__call__
    yield
    nn.Module.__call__ = before  # type: ignore[method-assign]


@pytest.mark.usefixtures("api_2_restored")
def test_api_2_functions_toggle_layer_calls() -> None:
    layer = nn.Linear(3, 2)
    data = torch.rand(4, 3)
    assert symbolic_api_2.is_symbolic_api_2_enabled() is True  # on at import (the default config)

    symbolic_api_2.disable_symbolic_api_2_for_new_modules()
    assert symbolic_api_2.is_symbolic_api_2_enabled() is False
    assert nn.Module.__call__ is _original_call
    x = Input((3,))
    # The layer runs its forward on the symbolic tensor: F.linear is recorded, not the layer.
    plain = layer(x)
    assert not isinstance(plain.op, ModuleCall)
    notation_1 = x(layer)  # still recorded as a layer call
    assert isinstance(notation_1.op, ModuleCall)
    with symgraph_torch.SymbolicAPI2ContextManager():
        assert symbolic_api_2.is_symbolic_api_2_enabled() is True
        inside = layer(x)
    assert isinstance(inside.op, ModuleCall)
    assert symbolic_api_2.is_symbolic_api_2_enabled() is False  # as before the block

    symbolic_api_2.enable_symbolic_api_2_for_new_modules()
    assert symbolic_api_2.is_symbolic_api_2_enabled() is True
    again = layer(x)  # made before enabling: recorded all the same
    assert isinstance(again.op, ModuleCall)
    symbolic_api_2.enable_symbolic_api_2_for_new_modules()  # twice: no change
    assert symbolic_api_2.is_symbolic_api_2_enabled() is True
    model = SymbolicModel(x, (plain, notation_1, inside, again))
    expected = layer(data)
    assert all(torch.allclose(out, expected) for out in model(data))


@pytest.mark.usefixtures("api_2_restored")
def test_optimize_module_calls_without_models_keeps_layer_calls_recording(monkeypatch: pytest.MonkeyPatch) -> None:
    from symgraph_torch import _model

    monkeypatch.setattr(_model, "_optimize_new_models", False)
    symbolic_api_2.optimize_module_calls()
    assert _model._optimize_new_models is True
    assert symbolic_api_2.is_symbolic_api_2_enabled() is True  # unlike pytorch-symbolic's, see the guide
    layer = nn.Linear(3, 2)
    x = Input((3,))
    model = SymbolicModel(x, layer(x))
    data = torch.rand(2, 3)
    assert model._direct_calls and torch.equal(model(data), layer(data))


# -- symbolic_model: a shared layer with custom names ------------------------------------------


def line_above() -> int:
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_lineno - 1


def test_a_shared_layer_with_two_custom_names_is_refused_when_the_model_is_built() -> None:
    lin = nn.Linear(3, 3)
    x = Input((3,))
    a = lin(x, custom_name="first")
    first_line = line_above()
    b = lin(a, custom_name="second")
    second_line = line_above()
    with pytest.raises(ValueError, match="two different custom names") as caught:
        SymbolicModel(x, b)
    message = str(caught.value)
    assert "Linear layer" in message
    assert f"'first' (recorded at {__file__}:{first_line})" in message
    assert f"'second' (recorded at {__file__}:{second_line})" in message
    assert "give custom_name on one of its calls only, or the same name on each" in message
    # Nothing was half-built: the same values make a model once the names agree.
    c = lin(a, custom_name="first")
    model = SymbolicModel(x, c)
    assert [n for n, _ in model.named_children()] == ["first"]
    data = torch.rand(2, 3)
    assert torch.equal(model(data), lin(lin(data)))


def test_a_shared_layer_is_named_by_its_only_custom_name_whichever_call_has_it() -> None:
    lin = nn.Linear(3, 3)
    x = Input((3,))
    out = lin(lin(lin(x)), custom_name="last")
    model = SymbolicModel(x, out)
    assert "(last): Linear" in str(model)
    assert [n for n, _ in model.named_children()] == ["last"]
    assert [step.name for step in model.plan.steps] == ["Linear_1", "Linear_2", "last"]
    data = torch.rand(4, 3)
    assert torch.equal(model(data), lin(lin(lin(data))))
    detached = model.detach_from_graph()
    assert [n for n, _ in detached.named_children()] == ["last"] and torch.equal(detached(data), model(data))


def test_add_output_refuses_a_second_name_and_leaves_the_model_as_it_was() -> None:
    lin = nn.Linear(3, 3)
    x = Input((3,))
    hidden = lin(x, custom_name="first")
    model = SymbolicModel(x, hidden)
    data = torch.rand(2, 3)
    before = model(data)
    renamed = lin(hidden, custom_name="second")
    with pytest.raises(ValueError, match=r"'first'.*'second'"):
        model.add_output(renamed)
    assert [n for n, _ in model.named_children()] == ["first"] and torch.equal(model(data), before)
    # A model whose layer took its default name refuses a custom one later, naming both.
    plain_layer = nn.Linear(3, 3)
    plain = SymbolicModel(x, plain_layer(x))
    with pytest.raises(ValueError, match=r"registered in this model as 'Linear_1'.*'late'"):
        plain.add_output(plain_layer(x, custom_name="late"))
    assert [n for n, _ in plain.named_children()] == ["Linear_1"]
    plain.add_output(lin(hidden, custom_name="first"))  # the same name: accepted
    assert torch.equal(plain(data)[0], plain_layer(data))


@pytest.mark.parametrize("names", list(itertools.product([None, "a", "b"], repeat=3)), ids=str)
def test_str_of_a_model_never_silently_lacks_a_custom_name(names: tuple[str | None, ...]) -> None:
    shared = nn.Linear(2, 2)
    own = nn.Linear(2, 2)
    x = Input((2,))
    y = x
    for name in names:
        y = shared(y, custom_name=name)
    out = own(y, custom_name="own")
    given = {n for n in names if n is not None}
    if len(given) > 1:
        with pytest.raises(ValueError, match="two different custom names"):
            SymbolicModel(x, out)
        return
    model = SymbolicModel(x, out)
    text = str(model)
    assert all(f"({name}): Linear" in text for name in {*given, "own"})
    data = torch.rand(3, 2)
    expected = data
    for _ in names:
        expected = shared(expected)
    assert torch.equal(model(data), own(expected))


def test_symbolic_model_surface_of_pytorch_symbolic() -> None:
    a, b = Input((4,)), Input((4,))
    hidden = nn.Linear(4, 4)(a + b)
    out = nn.Linear(4, 1)(hidden)
    interpreted = SymbolicModel(inputs=(a, b), outputs=out, enable_forward_codegen=False)
    generated = SymbolicModel(inputs=(a, b), outputs=out, enable_forward_codegen=True)
    assert interpreted.executor == "interpreter" and generated.executor == "codegen"
    da, db = torch.rand(3, 4), torch.rand(3, 4)
    assert torch.equal(interpreted(da, db), generated(da, db))
    assert generated.inputs[0] is a and generated.outputs is out
    assert generated.input_shape == ((None, 4), (None, 4)) and generated.output_shape == (None, 1)
    generated.add_output(hidden)
    got_out, got_hidden = generated(da, db)
    assert torch.equal(got_hidden, hidden.layer(da + db)) and torch.equal(got_out, out.layer(got_hidden))
    lines: list[str] = []
    generated.summary(print_fn=lines.append)
    assert "Total params: 25" in lines[0]
    detached = generated.detach_from_graph()
    assert isinstance(detached, symgraph_torch.symbolic_model.DetachedSymbolicModel)
    assert all(torch.equal(p, q) for p, q in zip(detached(da, db), generated(da, db), strict=True))


# -- graph_algorithms --------------------------------------------------------------------------------


def test_figure_out_nodes_between_inputs_and_outputs() -> None:
    x, other = Input((2,)), Input((2,))
    y = x + 1
    z = y * 2
    side = x - 1  # below x, not above z
    above_only = other * 3  # above nothing of x's
    w = z + above_only
    assert ga.figure_out_nodes_between(inputs=[x], outputs=[z]) == {x, y, z}
    assert ga.figure_out_nodes_between(x, z) == {x, y, z}  # a single value is accepted too
    # Every descendant; w needs `above_only` too, which is not computed from x.
    with pytest.raises(ValueError, match="neither among the nodes nor an input"):
        ga.figure_out_nodes_between(inputs=[x])
    assert ga.figure_out_nodes_between(inputs=[x, other]) == {x, y, z, side, other, above_only, w}
    assert ga.figure_out_nodes_between(inputs=[y], outputs=[z]) == {y, z}  # any value can start
    assert ga.figure_out_nodes_between(outputs=[w]) == {x, y, z, other, above_only, w}  # every ancestor
    assert ga.figure_out_nodes_between(inputs=[x, other], outputs=[w]) == {x, y, z, other, above_only, w}
    with pytest.raises(ValueError, match="give inputs=, outputs= or both"):
        ga.figure_out_nodes_between()


def test_figure_out_nodes_between_names_a_missing_input() -> None:
    x = Input((2,))
    foreign = Input((2,), custom_name="foreign")
    out = (x + 1) * foreign
    product_line = line_above()
    with pytest.raises(ValueError, match="neither among the nodes nor an input") as caught:
        ga.figure_out_nodes_between(inputs=[x], outputs=[out])
    assert f"MulOpLayer (recorded at {__file__}:{product_line})" in str(caught.value)
    assert "is computed from foreign (recorded at" in str(caught.value)
    # With the foreign value among the inputs, nothing is missing.
    assert len(ga.figure_out_nodes_between(inputs=[x, foreign], outputs=[out])) == 4


def test_check_for_missing_inputs() -> None:
    x1, x2 = Input((3,)), Input((3,))
    x3 = x1 + x2
    ga.check_for_missing_inputs(used_nodes={x1, x2, x3}, inputs=(x1, x2))
    ga.check_for_missing_inputs({x3}, [x3])  # an input needs no parents
    with pytest.raises(ValueError, match="AddOpLayer"):
        ga.check_for_missing_inputs({x1, x3}, (x1,))
    with pytest.raises(TypeError, match="used_nodes must be symbolic values"):
        ga.check_for_missing_inputs({1, 2}, (x1,))


def test_sort_graph_and_check_dag_puts_each_value_after_its_parents() -> None:
    rng = random.Random(0)
    x, w = Input((3,)), Input((3,))
    values = [x, w]
    for _ in range(60):
        a, b = rng.choice(values), rng.choice(values)
        values.append(a * b if rng.random() < 0.5 else (a + 1).relu())
    nodes = set(values)
    order = ga.sort_graph_and_check_DAG(nodes)
    assert len(order) == len(values) and set(order) == nodes
    position = {id(v): k for k, v in enumerate(order)}
    for value in values:
        assert all(position[id(p)] < position[id(value)] for p in value.parents if id(p) in position)
    # A subset: only edges among its members count.
    subset = set(values[30:])
    ordered = ga.sort_graph_and_check_DAG(subset)
    place = {id(v): k for k, v in enumerate(ordered)}
    assert all(place[id(p)] < place[id(v)] for v in subset for p in v.parents if p in subset)


class FakeNode:
    def __init__(self, name: str) -> None:
        self.name = name
        self.parents: list[FakeNode] = []
        self.children: list[FakeNode] = []

    def __repr__(self) -> str:
        return self.name


def test_sort_graph_and_check_dag_refuses_a_cycle() -> None:
    a, b, c, d = (FakeNode(n) for n in "abcd")
    for parent, child in [(a, b), (b, c), (c, b), (c, d)]:
        parent.children.append(child)
        child.parents.append(parent)
    with pytest.raises(ValueError, match=r"not a DAG .*3 of its values lie on a cycle or after one.*b, c, d"):
        ga.sort_graph_and_check_DAG([a, b, c, d])
    c.children.remove(b)
    b.parents.remove(c)
    assert [n.name for n in ga.sort_graph_and_check_DAG([d, c, b, a])] == ["a", "b", "c", "d"]


def test_labels_default_node_and_edge_text_and_the_name_resolver() -> None:
    x = Input((3,))
    y = nn.Linear(3, 2)(x)
    items = CustomInput([1, 2, 3])
    assert ga.default_node_text(x) == "(None, 3)" and ga.default_node_text(y) == "(None, 2)"
    assert ga.default_node_text(items) == "list(3)"
    assert ga.default_node_text(CustomInput(len)) == "callable"
    assert ga.default_node_text(CustomInput(7)) == "int"
    assert ga.default_edge_text(y.layer) == "Linear"
    assert ga.default_edge_text(useful_layers.GetAttr("real")) == ".real"
    assert ga.default_edge_text(useful_layers.NamedLambdaOpLayer(abs, "wrap(abs)")) == "wrap(abs)"
    resolve = ga.variable_name_resolver({"first": x, "alias": x, "y": y})
    assert resolve(x) == "first" and resolve(y) == "y" and resolve(items) == "?"


def test_draw_graph_takes_pytorch_symbolics_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    pytest.importorskip("networkx")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = Input((3,))
    lin = nn.Linear(3, 3)
    y = lin(x)
    out = (y + x).relu()
    model = SymbolicModel(x, out)
    shown: list[bool] = []
    monkeypatch.setattr(plt, "show", lambda *a, **k: shown.append(True))
    seen_layers: list[Any] = []

    def edge_text(layer: nn.Module) -> str:
        seen_layers.append(layer)
        return ga.default_edge_text(layer)

    plt.close("all")
    for rotate in (False, True):
        figure = ga.draw_graph(
            model=model,
            node_text_func=lambda sym: f"n{sym.depth}",
            edge_text_func=edge_text,
            rotate_graph=rotate,
            rotate_labels=rotate,
            show=True,
            figsize=(3, 3),
        )
        texts = {t.get_text() for t in figure.axes[0].texts}
        assert {"n0", "n1", "n2", "n3", "Linear", "AddOpLayer"} <= texts
        plt.close("all")
    assert shown == [True, True]
    assert lin in seen_layers and all(isinstance(layer, nn.Module) for layer in seen_layers)
    # Namespace labels, and inputs/outputs given directly (outputs alone too).
    figure = ga.draw_graph(inputs=[x], outputs=[out], node_text_namespace={"x": x, "out": out})
    assert {"x", "out", "?"} <= {t.get_text() for t in figure.axes[0].texts}
    plt.close("all")
    figure = ga.draw_graph(outputs=out)
    assert "(None, 3)" in {t.get_text() for t in figure.axes[0].texts}
    plt.close("all")


# -- functions_utility -----------------------------------------------------------------------------------


def test_add_to_graph_with_symbolic_values_nested_in_arguments() -> None:
    from symgraph_torch.functions_utility import add_to_graph, add_to_model

    x, kernel = Input((3, 8, 8)), Input(batch_shape=(4, 3, 3, 3))
    bias = Input(batch_shape=(4,))
    out = add_to_graph(torch.nn.functional.conv2d, input=x, weight=kernel, bias=bias, padding=1, custom_name="conv")
    stacked = add_to_graph(torch.cat, [out, out], dim=1)
    assert add_to_model is add_to_graph
    model = SymbolicModel((x, kernel, bias), stacked)
    data, k, b = torch.rand(2, 3, 8, 8), torch.rand(4, 3, 3, 3), torch.rand(4)
    eager = torch.nn.functional.conv2d(data, k, b, padding=1)
    assert torch.equal(model(data, k, b), torch.cat([eager, eager], dim=1))
    assert model.plan.steps[0].name == "conv"
    with pytest.raises(TypeError):
        add_to_graph(torch.relu, torch.ones(2))  # nothing symbolic


# -- useful_layers ----------------------------------------------------------------------------------------


def test_useful_layers_with_pytorch_symbolics_arguments_replay_like_eager_code() -> None:
    ul = useful_layers
    a, b = Input((2, 3)), Input((2, 3))
    idx = Input(batch_shape=(2,), dtype=torch.long, max_value=1)
    seen: list[tuple[int, ...]] = []
    outputs = [
        ul.LambdaOpLayer(op=lambda t: t * 3)(a),
        ul.NamedLambdaOpLayer(op=lambda t, u: t - u, name="diff")(a, b),
        ul.CallbackLayer(op=lambda t: seen.append(tuple(t.shape)))(a),
        ul.AddOpLayer()(a, b),
        ul.SubOpLayer()(a, b),
        ul.MulOpLayer()(a, b),
        ul.ModOpLayer()(a - 0.5, b + 0.1),
        ul.MatmulOpLayer()(a, b.transpose(1, 2)),
        ul.ConcatLayer(dim=1)(a, b),
        ul.StackLayer(dim=0)(a, b),
        ul.ReshapeLayer(shape=(6,))(a),
        ul.ReshapeLayer(shape=(3, -1), batch_size_included=True)(a),
        ul.ViewCopyLayer(shape=(3, 2))(a),
        ul.AggregateLayer(op=torch.mean)(a),
        ul.AggregateLayer(op=torch.sum, dim=2, keepdim=True)(a),
        ul.SliceLayer(idx=(slice(None), 1))(a),
        ul.SliceLayerSymbolicIdx()(a, idx),
        ul.MethodCall("transpose", 1, 2)(a),
        ul.MethodCall("sum", dim=1)(a),
        ul.GetAttr(name="mT")(a),
    ]
    model = SymbolicModel((a, b, idx), outputs)
    seen.clear()
    da, db, di = torch.rand(4, 2, 3), torch.rand(4, 2, 3), torch.tensor([1, 0])
    expected = [
        da * 3,
        da - db,
        da,
        da + db,
        da - db,
        da * db,
        torch.remainder(da - 0.5, db + 0.1),
        da @ db.transpose(1, 2),
        torch.cat([da, db], dim=1),
        torch.stack([da, db], dim=0),
        da.reshape(-1, 6),
        da.reshape(3, -1),
        torch.view_copy(da, (-1, 3, 2)),
        torch.mean(da),
        torch.sum(da, dim=2, keepdim=True),
        da[:, 1],
        da[di],
        da.transpose(1, 2),
        da.sum(dim=1),
        da.mT,
    ]
    got = model(da, db, di)
    assert len(got) == len(expected)
    for k, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert torch.equal(g, e), k
    assert seen == [(4, 2, 3)]


def test_useful_layers_details_pytorch_symbolic_code_may_rely_on() -> None:
    ul = useful_layers
    named = ul.NamedLambdaOpLayer(op=abs, name="AbsLayer")
    assert repr(named) == "AbsLayer" and named._get_name() == "AbsLayer" and named.name == "AbsLayer"
    assert ul.UnpackLayer()(*torch.arange(3)) == tuple(torch.arange(3))
    assert ul.UnpackLayer()(1, "two") == (1, "two")
    assert ul.SliceLayer(idx=2).idx == 2
    assert ul.GetAttr("shape").name == "shape"
    layer = ul.AggregateLayer(torch.max, dim=1)
    values, indices = layer(torch.tensor([[1, 5], [7, 2]]))
    assert values.tolist() == [5, 7] and indices.tolist() == [1, 0]
    assert ul.ReshapeLayer((2, 2)).shape == (-1, 2, 2)
    assert ul.ViewCopyLayer((4,), batch_size_included=True).shape == (4,)
    method = ul.MethodCall("clamp", min=0)
    assert (method.method_name, method.args, method.kwds) == ("clamp", (), {"min": 0})


# -- model_tools --------------------------------------------------------------------------------------------


def test_parameter_count_and_shapes() -> None:
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.ReLU(), shared, nn.Linear(3, 1, bias=False))
    assert mt.get_parameter_count(model) == 12 + 3  # the shared layer counts once
    model[3].weight.requires_grad_(False)
    assert mt.get_parameter_count(model, only_trainable=True) == 12
    assert mt.get_parameter_count(model=model, only_trainable=False) == 15
    assert mt.get_parameter_shapes(model) == [(3, 3), (3,), (1, 3)]


def test_model_similar_compares_counts_and_shapes_in_any_order() -> None:
    first = nn.Sequential(nn.Linear(3, 4), nn.Conv1d(4, 2, 1))
    swapped = nn.Sequential(nn.Conv1d(4, 2, 1), nn.Linear(3, 4))
    assert mt.model_similar(first, swapped) and mt.model_similar(a=first, b=first)
    assert not mt.model_similar(first, nn.Sequential(nn.Linear(3, 4)))
    assert not mt.model_similar(nn.Linear(3, 4), nn.Linear(4, 3))


def test_hash_torch_tensor() -> None:
    t = torch.arange(6.0).reshape(2, 3)
    h = mt.hash_torch_tensor(t)
    assert isinstance(h, int) and h == mt.hash_torch_tensor(tensor=t.clone())
    assert h != mt.hash_torch_tensor(t.reshape(3, 2))  # shape
    assert h != mt.hash_torch_tensor(t.double())  # dtype
    assert h != mt.hash_torch_tensor(t + 1)  # values
    assert h == mt.hash_torch_tensor(t.t().t())  # layout does not matter
    bf = torch.ones(3, dtype=torch.bfloat16)
    assert mt.hash_torch_tensor(bf) == mt.hash_torch_tensor(bf.clone()) != mt.hash_torch_tensor(bf * 2)
    assert mt.hash_torch_tensor(nn.Parameter(t)) == h


def test_models_have_corresponding_parameters_in_any_order() -> None:
    torch.manual_seed(0)
    a, b = nn.Linear(3, 3), nn.Linear(3, 3)
    model = nn.Sequential(a, b)
    reordered = nn.Sequential(b, a)
    assert mt.models_have_corresponding_parameters(model, reordered)
    assert mt.models_have_corresponding_parameters(a=model, b=model)
    assert not mt.models_have_corresponding_parameters(model, nn.Sequential(a, nn.Linear(3, 3)))
    # Each value must occur as often in both: a copy of a's parameters is not b's.
    twice = nn.Sequential(a, nn.Linear(3, 3))
    with torch.no_grad():
        twice[1].weight.copy_(a.weight)
        twice[1].bias.copy_(a.bias)
    assert not mt.models_have_corresponding_parameters(model, twice)
    assert mt.models_have_corresponding_parameters(twice, nn.Sequential(twice[1], a))


# -- state dicts saved by pytorch-symbolic ---------------------------------------------------------
def _siamese() -> tuple[Any, nn.Module, nn.Module]:
    enc, head = nn.Linear(6, 3), nn.Linear(3, 1)
    a, b = Input((6,)), Input((6,))
    return SymbolicModel((a, b), head(nn.ReLU()(enc(a) - enc(b)))), enc, head


def _pytorch_symbolic_state(enc: nn.Module, head: nn.Module) -> dict[str, torch.Tensor]:
    # The keys pytorch-symbolic 1.2.4 writes for this model: it registers the shared
    # encoder once per call, so its weights appear under Linear_1 and Linear_2.
    state = {}
    for name, layer in (("Linear_1", enc), ("Linear_2", enc), ("Linear_3", head)):
        state.update({f"{name}.{k}": v.detach().clone() for k, v in layer.state_dict().items()})
    return state


def test_a_state_dict_from_pytorch_symbolic_with_a_shared_layer_loads() -> None:
    torch.manual_seed(0)
    _, saved_enc, saved_head = _siamese()
    model, enc, head = _siamese()
    state = _pytorch_symbolic_state(saved_enc, saved_head)
    assert str(model.load_state_dict(state)) == "<All keys matched successfully>"
    assert len(state) == 6  # the caller's dict is left as it was
    d1, d2 = torch.rand(4, 6), torch.rand(4, 6)
    expected = saved_head(torch.relu(saved_enc(d1) - saved_enc(d2)))
    assert torch.equal(model(d1, d2), expected)
    assert list(model.state_dict()) == ["Linear_1.weight", "Linear_1.bias", "Linear_3.weight", "Linear_3.bias"]
    # Inside another module, under its prefix.
    outer = nn.ModuleDict({"siamese": _siamese()[0]})
    outer.load_state_dict({f"siamese.{k}": v for k, v in state.items()})
    assert torch.equal(outer["siamese"](d1, d2), expected)


def test_a_state_dict_whose_shared_copies_differ_is_refused_before_any_weight_changes() -> None:
    model, enc, head = _siamese()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = _pytorch_symbolic_state(nn.Linear(6, 3), nn.Linear(3, 1))
    state["Linear_2.bias"] = state["Linear_2.bias"] + 1
    with pytest.raises(RuntimeError, match=r"'Linear_2.bias' and 'Linear_1.bias' hold different values.*nothing"):
        model.load_state_dict(state)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_applying_something_that_is_not_callable_names_it_and_records_nothing() -> None:
    values = CustomInput([3, 1, 2])
    for apply in (values, values.apply_module):
        with pytest.raises(
            TypeError, match=r"layer must be an nn.Module or another callable, got int; the value is a list"
        ):
            apply(5)
    assert values.children == ()
