"""SymbolicModel: input and output forms, subgraphs, errors, summaries, copying."""

from __future__ import annotations

import copy
import functools
import operator
import pickle
import re

import pytest

import symgraph
import symgraph.plugin
from symgraph import CustomInput, GraphError, SymbolicModel, add_to_graph


def test_single_tuple_list_and_dict_forms():
    a, b = CustomInput(1), CustomInput(2)
    assert SymbolicModel(a, a * 3)(5) == 15
    assert SymbolicModel((a, b), (a + b, a - b))(5, 1) == (6, 4)
    assert SymbolicModel([a, b], [a + b])(5, 1) == [6]
    assert SymbolicModel({"x": a, "y": b}, {"d": a - b})(y=1, x=5) == {"d": 4}
    assert SymbolicModel(a, a)(7) == 7


def test_wrong_arguments_name_what_was_expected():
    a, b = CustomInput(1, custom_name="left"), CustomInput(2)
    model = SymbolicModel((a, b), a + b)
    with pytest.raises(TypeError, match=r"takes 2 input\(s\) \(left, Input_1\), got 1"):
        model(1)
    with pytest.raises(TypeError, match="by position"):
        model(1, y=2)
    kw = SymbolicModel({"x": a, "y": b}, a + b)
    with pytest.raises(TypeError, match="missing input"):
        kw(x=1)
    with pytest.raises(TypeError, match=r"unexpected input.*'z'"):
        kw(x=1, y=2, z=3)
    with pytest.raises(TypeError, match="by keyword"):
        kw(1, 2)


def test_models_from_intermediate_nodes_and_shared_nodes():
    x = CustomInput(2)
    hidden = x * 10
    out = hidden + 1
    full = SymbolicModel(x, out)
    tail = SymbolicModel(hidden, out)
    head = SymbolicModel(x, hidden)
    assert full(3) == 31 and tail(3) == 4 and head(3) == 30
    # Building more models does not change the earlier ones or the graph.
    assert full(4) == 41 and len(x.children) == 1


def test_nodes_outside_the_subgraph_never_run():
    calls: list[str] = []

    def spy(tag, value):
        calls.append(tag)
        return value

    x = CustomInput(1)
    kept = add_to_graph(spy, "kept", x)
    add_to_graph(spy, "side branch", x)
    add_to_graph(spy, "downstream", kept)
    calls.clear()
    model = SymbolicModel(x, kept + 1)
    assert model(5) == 6
    assert calls == ["kept"]


def test_missing_input_is_named():
    x = CustomInput(1)
    offset = CustomInput(2, custom_name="offset")
    with pytest.raises(GraphError, match=r"'offset'.*missing input"):
        SymbolicModel(x, x + offset)
    with pytest.raises(GraphError, match="output 1 depends on"):
        SymbolicModel(x, (x * 2, offset * 2))
    with pytest.raises(GraphError, match=r"outputs\['shifted'\] depends on 'offset'"):
        SymbolicModel(x, {"plain": x * 2, "shifted": offset * 2})
    with pytest.raises(GraphError, match="the output depends on 'offset'"):
        SymbolicModel(x, offset - x)


def test_cycles_through_private_state_raise_a_clear_error():
    x = CustomInput(1)
    a = x + 1
    b = a * 2
    a.node.parents = (b.node,)  # only private state can make a cycle
    with pytest.raises(GraphError, match="cycle"):
        SymbolicModel(x, b + x)


def test_out_of_creation_order_but_acyclic_graphs_still_sort():
    x = CustomInput(1)
    late = x + 100
    early = x * 2
    y = early - 1
    # Re-point y at a node created after it: creation order is no longer topological.
    z = x + 0
    y.node.parents = (z.node,)
    model = SymbolicModel(x, y)
    assert model(5) == 4
    assert late.v == 101


def test_bad_inputs_and_outputs_are_refused():
    a = CustomInput(1)
    with pytest.raises(TypeError, match=r"inputs\[1\] must be a symbolic value"):
        SymbolicModel((a, 3), a)
    with pytest.raises(TypeError, match="outputs must be"):
        SymbolicModel(a, 3)
    with pytest.raises(TypeError, match=r"outputs\['k'\] must be a symbolic value"):
        SymbolicModel(a, {"k": 1})
    with pytest.raises(GraphError, match="given twice"):
        SymbolicModel((a, a), a)
    with pytest.raises(TypeError, match="str keys"):
        SymbolicModel({1: a}, a)


def test_add_output_extends_single_sequence_and_dict_outputs():
    x = CustomInput(2)
    half, double = x / 2, x * 2
    single = SymbolicModel(x, half)
    single.add_output(double)
    assert single(8) == (4.0, 16)
    listed = SymbolicModel(x, [half])
    listed.add_output(double)
    assert listed(8) == [4.0, 16]
    named = SymbolicModel(x, {"half": half})
    with pytest.raises(TypeError, match="key="):
        named.add_output(double)
    named.add_output(double, key="double")
    assert named(8) == {"half": 4.0, "double": 16}
    with pytest.raises(GraphError, match="missing input"):
        single.add_output(CustomInput(0) + 1)
    assert single(8) == (4.0, 16)  # a failed add_output leaves the model as it was


def test_summary_table():
    x = CustomInput({1, 2}, custom_name="items")
    y = CustomInput({2, 3})
    z = add_to_graph(sorted, (x | y) - {1})
    model = SymbolicModel((x, y), (z, x & y))
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    table = lines[0].splitlines()
    rows = [line.split() for line in table[3:-1]]
    assert rows == [
        ["1", "items", "set"],
        ["2", "Input_1", "set"],
        ["3", "OrOpLayer_1", "set", "1,2"],
        ["4", "LambdaOpLayer_1", "set", "3"],
        ["5*", "wrap(sorted)_1", "list", "4"],
        ["6*", "AndOpLayer_1", "set", "1,2"],
    ]
    assert table[0] == "_" * len(table[1]) and table[2] == "=" * len(table[1])
    assert "Params" not in table[1]


def test_summary_counts_parameters_from_backends_once_per_parameter(isolated_registry):
    class Layer:
        def __init__(self, *weights):
            self.weights = weights

        def __call__(self, value):
            return value + sum(w.size for w in self.weights)

    class Weight:
        def __init__(self, size, trainable=True):
            self.size, self.trainable = size, trainable

    class LayerBackend(symgraph.plugin.Backend):
        name = "layers"
        types = (Layer,)
        symbolic_class = type("SymbolicLayer", (symgraph.SymbolicData,), {"__slots__": ()})

        def parameters(self, obj):
            if not isinstance(obj, Layer):
                return None
            return [(w, w.size, w.trainable) for w in obj.weights]

    symgraph.plugin.register_backend(LayerBackend())
    shared = Weight(10)
    first, second = Layer(shared, Weight(5, trainable=False)), Layer(shared)
    x = CustomInput(0)
    model = SymbolicModel(x, add_to_graph(second, add_to_graph(first, x)))
    assert model(1) == 1 + 15 + 10
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    text = lines[0]
    assert "Params" in text
    assert [row.split()[-2] for row in text.splitlines()[4:6]] == ["15", "10"]
    assert "Total params: 15" in text and "Trainable params: 10" in text and "Non-trainable params: 5" in text


def test_to_networkx_mirrors_the_summary():
    nx = pytest.importorskip("networkx")
    x = CustomInput(3)
    y = x * x + 1
    graph = symgraph.to_networkx(SymbolicModel(x, (y, x - 1)))
    assert isinstance(graph, nx.DiGraph)
    assert sorted(graph.edges) == [(1, 2), (1, 4), (2, 3)]
    assert graph.nodes[3]["is_output"] and graph.nodes[4]["is_output"] and not graph.nodes[2]["is_output"]
    assert graph.nodes[2]["name"] == "MulOpLayer_1" and graph.nodes[1]["output"] == "int"


def test_pickle_round_trip_keeps_behaviour_and_drops_the_graph():
    a, b = CustomInput([1, 2]), CustomInput(3)
    out = {"total": add_to_graph(sum, a) * b, "max": add_to_graph(max, a)}
    model = SymbolicModel({"a": a, "b": b}, out)
    clone = pickle.loads(pickle.dumps(model))
    assert clone(a=[4, 5], b=2) == model(a=[4, 5], b=2) == {"total": 18, "max": 5}
    assert clone.source == model.source
    with pytest.raises(GraphError, match="unpickled"):
        clone.add_output(a)


def test_operators_recorded_with_equal_constant_objects_do_not_alias():
    x = CustomInput(0)
    model = SymbolicModel(x, (x + 1.5, x + 2.5, x * 1.5))
    assert model(1) == (2.5, 3.5, 1.5)


def test_interpreter_matches_generated_code_on_a_mixed_graph():
    s, n = CustomInput({1, 2, 3}), CustomInput(2)
    first, *_ = add_to_graph(sorted, s)
    out = (add_to_graph(operator.getitem, add_to_graph(sorted, s), -1) * n, s - add_to_graph(set, [first]), n**n)
    model = SymbolicModel((s, n), out)
    for values in [({4, 9, 1}, 3), ({0, 1, 7}, -1), ({5, 6, 8}, 0)]:
        assert model(*values) == model.interpret(*values)
    # The unpacking ran over three elements; both executors refuse another number.
    for run in (model, model.interpret):
        with pytest.raises(symgraph.GuardError, match="exactly 3, and got a value with 2"):
            run({0, 1}, 1)


def test_dict_inputs_are_named_by_their_keys_in_summaries():
    price, qty = CustomInput(2.0), CustomInput(3)
    model = SymbolicModel({"price": price, "qty": qty}, price * qty)
    assert [spec.name for spec in model.plan.inputs] == ["price", "qty"]
    assert "price" not in model.source  # names are displayed, never pasted into code


def test_shallow_copies_share_the_graph_and_deep_copies_keep_the_plan():
    x = CustomInput(2)
    y = x + 1
    model = SymbolicModel(x, y)
    shallow = copy.copy(model)
    shallow.add_output(y * 10)
    assert shallow(1) == (2, 20) and model(1) == 2
    deep = copy.deepcopy(model)
    assert deep(5) == 6
    with pytest.raises(GraphError, match="holds no graph"):
        deep.add_output(y)


def _double(v):
    return v * 2


def test_pickling_a_lambda_names_the_step_and_the_fix():
    x = CustomInput(3)

    def local_helper(v):
        return v - 1

    cases = {
        "wrap(<lambda>)_1": add_to_graph(lambda v: v + 1, x),
        "wrap(local_helper)_1": add_to_graph(local_helper, x),
        "partial_1": add_to_graph(functools.partial(local_helper), x),
    }
    for step_name, out in cases.items():
        model = SymbolicModel(x, out)
        with pytest.raises(pickle.PicklingError, match=re.escape(step_name)) as info:
            pickle.dumps(model)
        assert "define them at module level" in str(info.value)
        assert copy.deepcopy(model).source == model.source  # deep copies keep functions by reference
    fine = SymbolicModel(x, add_to_graph(functools.partial(_double), x) + add_to_graph(_double, x))
    assert pickle.loads(pickle.dumps(fine))(5) == 20
