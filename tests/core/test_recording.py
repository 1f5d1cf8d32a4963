"""Recording operations on symbolic values, each checked against eager evaluation."""

from __future__ import annotations

import copy
import inspect
import operator
import random
import re
from typing import Any

import pytest

import symgraph
import symgraph.plugin
from symgraph import CustomInput, SymbolicModel, TraceError, add_to_graph

BINARY = [
    operator.add,
    operator.sub,
    operator.mul,
    operator.truediv,
    operator.floordiv,
    operator.mod,
    operator.pow,
    operator.and_,
    operator.or_,
    operator.xor,
    operator.lshift,
    operator.rshift,
    operator.lt,
    operator.le,
    operator.gt,
    operator.ge,
]


def random_set(rng: random.Random) -> set[int]:
    return {rng.randrange(20) for _ in range(rng.randrange(12))}


@pytest.mark.parametrize("op", BINARY, ids=lambda f: f.__name__)
def test_binary_operators_and_reflected_forms_replay_like_eager(op):
    a, b = CustomInput(7), CustomInput(3)
    outputs = (op(a, b), op(a, 2), op(5, b))
    model = SymbolicModel((a, b), outputs)
    rng = random.Random(0)
    for _ in range(20):
        x, y = rng.randrange(1, 50), rng.randrange(1, 6)
        assert model(x, y) == (op(x, y), op(x, 2), op(5, y))
        assert model.interpret(x, y) == model(x, y)


def test_matmul_with_reflected_form():
    class Vec:
        def __init__(self, *xs):
            self.xs = xs

        def __matmul__(self, other):
            other_xs = other.xs if isinstance(other, Vec) else other
            return sum(p * q for p, q in zip(self.xs, other_xs, strict=True))

        def __rmatmul__(self, other):
            return sum(p * q for p, q in zip(other, self.xs, strict=True))

    u, v = CustomInput(Vec(1, 2)), CustomInput(Vec(3, 4))
    model = SymbolicModel((u, v), (u @ v, (5, 6) @ v))
    assert model(Vec(2, 2), Vec(1, 10)) == (22, 65)


@pytest.mark.parametrize("op", [operator.neg, operator.pos, operator.invert, abs], ids=lambda f: f.__name__)
def test_unary_operators(op):
    x = CustomInput(4)
    model = SymbolicModel(x, op(x))
    for value in (-3, 0, 9):
        assert model(value) == op(value)


def test_sets_with_constants_replay_on_random_sets():
    s, t = CustomInput({1, 2, 3}), CustomInput({3, 4})
    out = ((s & t) | {100}) ^ (s - {1, 2})
    extra = {5, 6} - t
    model = SymbolicModel((s, t), (out, extra, s.union(t), s.issubset(t)))
    rng = random.Random(1)
    for _ in range(50):
        a, b = random_set(rng), random_set(rng)
        assert model(a, b) == (((a & b) | {100}) ^ (a - {1, 2}), {5, 6} - b, a.union(b), a.issubset(b))


def test_ints_mixed_with_constants():
    x, y = CustomInput(3), CustomInput(4)
    z = (2 * x + y**2 - 7) // 3 % 5 + (1 << (x % 5)) - abs(-y) + 10 / (1 + y * y)
    model = SymbolicModel((x, y), z)
    rng = random.Random(2)
    for _ in range(50):
        a, b = rng.randrange(-20, 20), rng.randrange(-20, 20)
        assert model(a, b) == (2 * a + b**2 - 7) // 3 % 5 + (1 << (a % 5)) - abs(-b) + 10 / (1 + b * b)


def test_strings_and_method_chains():
    text = CustomInput("  Hello, Graph World  ")
    words = text.strip().lower().replace(",", "").split(" ")
    joined = add_to_graph("-".join, words)
    model = SymbolicModel(text, (words, joined, text.count("o"), text[2:7].upper()))
    for sample in ("  Replay, Me Please ", "one,two three"):
        w = sample.strip().lower().replace(",", "").split(" ")
        assert model(sample) == (w, "-".join(w), sample.count("o"), sample[2:7].upper())


def test_unpacking_a_list_records_one_node_per_element():
    data = CustomInput([10, 20, 30])
    first_line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
    first, second, third = data
    assert [(type(h.op), h.op.index) for h in (first, second, third)] == [(symgraph.plugin.Unpack, i) for i in range(3)]
    assert (first.v, second.v, third.v) == (10, 20, 30)
    # All three read one Elements guard, which the unpacking ran to the end.
    (elements,) = {h.parents[0] for h in (first, second, third)}
    assert type(elements.op) is symgraph.plugin.Elements
    assert (elements.op.length, elements.op.exact, elements.parents) == (3, True, (data,))
    # Elements join the graph's children once used: a failed unpacking leaves nothing behind.
    assert data.children == ()
    model = SymbolicModel(data, (third - first, second))
    assert data.children == (elements,) and set(elements.children) == {first, second, third}
    assert model([1, 2, 8]) == (7, 2)
    # Eager unpacking of another length fails; so does the replay, with a GuardError
    # naming the line that unpacked.
    line = f"{__file__}:{first_line}"
    for other in ([1, 2], [1, 2, 3, 4]):
        with pytest.raises(symgraph.GuardError, match=re.escape(line)):
            model(other)
    with pytest.raises(ValueError, match="too many values"):
        _p, _q = data
    with pytest.raises(ValueError, match="not enough values"):
        _p, _q, _r, _s = data
    with pytest.raises(TypeError):
        " ".join(data)
    assert data.children == (elements,)


def test_unpacking_a_set_and_a_dict_iterates_like_python():
    d = CustomInput({"a": 1, "b": 2})
    k1, k2 = d
    model = SymbolicModel(d, (k2, k1))
    assert model({"x": 0, "y": 0}) == ("y", "x")
    # Read once into a tuple, as the loop does: a generator replays too.
    assert model(c for c in "pq") == ("q", "p")
    for other in ({"only": 1}, {"x": 0, "y": 0, "z": 0}, {7}):
        with pytest.raises(symgraph.GuardError, match=f"exactly 2, and got a value with {len(other)}"):
            model(other)
    s = CustomInput({5, 6})
    low, high = s
    assert SymbolicModel(s, (low, high))({8, 9}) == tuple(iter({8, 9}))


def test_a_loop_that_stops_early_needs_at_least_the_elements_it_took():
    xs = CustomInput([4, 5, 6, 7])
    taken = []
    for i, x in enumerate(xs):
        if i == 2:
            break
        taken.append(x)
    pairs = [a * b for a, b in zip(xs, [10, 100], strict=False)]
    model = SymbolicModel(xs, (add_to_graph(sum, taken), add_to_graph(list, pairs)))

    def eager(v: list[int]) -> tuple[int, list[int]]:
        taken = []
        for i, x in enumerate(v):
            if i == 2:
                break
            taken.append(x)
        return sum(taken), [a * b for a, b in zip(v, [10, 100], strict=False)]

    for value in ([1, 2, 3], [1, 2, 3, 4, 5, 6]):
        assert model(value) == model.interpret(value) == eager(value)
    # zip asked the list for its third element before stopping.
    with pytest.raises(symgraph.GuardError, match="at least 3, and got a value with 2"):
        model([1, 2])


def test_a_loop_over_a_longer_list_is_refused_not_cut_short():
    orders = CustomInput([{"amount": 3}, {"amount": 4}])
    total = sum(o["amount"] for o in orders)
    model = SymbolicModel(orders, total)
    assert model([{"amount": 10}, {"amount": 1}]) == 11
    with pytest.raises(symgraph.GuardError, match="add_to_graph") as info:
        model([{"amount": 1}] * 4)
    assert "exactly 2, and got a value with 4" in str(info.value)
    # The way out the message gives: the loop as one recorded step.
    total = add_to_graph(lambda orders: sum(o["amount"] for o in orders), orders)
    assert SymbolicModel(orders, total)([{"amount": 1}] * 4) == 4


def test_dict_inputs_become_keywords_and_dict_outputs_stay_dicts():
    a, b = CustomInput(2), CustomInput(5)
    model = SymbolicModel({"left": a, "right": b}, {"sum": a + b, "prod": a * b})
    assert model(left=3, right=4) == {"sum": 7, "prod": 12}
    assert model(right=4, left=3) == {"sum": 7, "prod": 12}


class Echo:
    """Indexing returns the key it was given together with a tag, to check index replay."""

    def __init__(self, tag):
        self.tag = tag

    def __getitem__(self, key):
        return (self.tag, key)


def test_indexing_with_ints_slices_ellipsis_none_tuples_and_symbolic_values():
    grid, i, j = CustomInput(Echo("trace")), CustomInput(1), CustomInput(4)
    outputs = (
        grid[3],
        grid[1:j],
        grid[...],
        grid[None],
        grid[i, ..., None, 2:j:i],
        grid[(i, j)],
        grid[[i, 0]],
    )
    model = SymbolicModel((grid, i, j), outputs)
    g = Echo("run")
    assert model(g, 2, 9) == (
        g[3],
        g[1:9],
        g[...],
        g[None],
        g[2, ..., None, 2:9:2],
        g[(2, 9)],
        g[[2, 0]],
    )
    assert model.interpret(g, 2, 9) == model(g, 2, 9)


def test_calling_a_symbolic_callable_records_the_call():
    s, t = CustomInput({1}), CustomInput({2})
    u = s.union(t, {3})
    assert isinstance(u.op, symgraph.plugin.Call)
    assert isinstance(u.parents[0].op, symgraph.plugin.GetAttr)
    assert SymbolicModel((s, t), u)({7}, {8}) == {3, 7, 8}


def test_equality_is_recorded_and_hashing_keeps_identity():
    a, b = CustomInput(1), CustomInput(1)
    same, different, with_constant = a == b, a != b, a == 1
    model = SymbolicModel((a, b), (same, different, with_constant, a * (a == 3)))
    for x, y in [(1, 1), (1, 2), (3, 0)]:
        assert model(x, y) == model.interpret(x, y) == (x == y, x != y, x == 1, x * (x == 3))
    # Hashing is by identity, and Python checks identity first in dicts and sets.
    assert {a: "a", b: "b"}[b] == "b"
    assert len({a, b, a}) == 2 and a in {a}
    assert [a, b].index(a) == 0
    # Branching on a comparison, or a list search that needs ==, is refused, and the
    # comparisons it made leave nothing in the graph.
    c = CustomInput(2)
    with pytest.raises(symgraph.TraceError, match="'is'"):
        if c == 2:
            pass
    with pytest.raises(symgraph.TraceError, match="'in'"):
        _ = c in [a, b]
    assert c.children == ()


def test_recording_an_equality_test_with_add_to_graph():
    a, b = CustomInput(3), CustomInput(4)
    model = SymbolicModel((a, b), (add_to_graph(operator.eq, a, b), add_to_graph(operator.ne, a, b)))
    assert model(5, 5) == (True, False)
    assert model(5, 6) == (False, True)


@pytest.mark.parametrize(
    "probe",
    [
        lambda x: hasattr(x, "_foo"),
        lambda x: hasattr(x, "__wrapped__"),
        lambda x: hasattr(x, "missing_attribute"),
        lambda x: getattr(x, "__deepcopy__", None),
        lambda x: getattr(x, "__getnewargs_ex__", None),
        lambda x: getattr(x, "__reduce__", None),
        lambda x: copy.copy(x),
        lambda x: inspect.unwrap(x),
        lambda x: inspect.isfunction(x),
    ],
)
def test_probing_missing_or_private_attributes_adds_no_node(probe):
    x = CustomInput({1, 2})
    probe(x)
    assert x.children == ()


def test_failed_steps_leave_no_node():
    x = CustomInput(3)
    with pytest.raises(TypeError) as info:
        x + "text"
    assert any("nothing was added" in note for note in info.value.__notes__)
    with pytest.raises(AttributeError):
        x.no_such_method  # noqa: B018
    with pytest.raises(ZeroDivisionError):
        add_to_graph(operator.truediv, 1, x - 3)
    assert len(x.children) == 1  # only x - 3, which succeeded
    with pytest.raises(TypeError):
        x[0]
    with pytest.raises(TypeError):
        list(x)
    assert len(x.children) == 1


def test_protocols_that_cannot_be_recorded_raise_clearly():
    x = CustomInput([1, 2])
    with pytest.raises(TraceError, match="truth value"):
        bool(x)
    with pytest.raises(TraceError, match=r"operator\.contains"):
        1 in x  # noqa: B015
    with pytest.raises(TraceError, match="in-place"):
        x[0] = 5
    with pytest.raises(TraceError, match="in-place"):
        del x[0]
    assert x.children == ()


def test_add_to_graph_nested_structures_and_constants():
    a, b = CustomInput(2), CustomInput(3)
    log: list[object] = []

    def combine(data, *, scale, tag):
        log.append(tag)
        return (data["xs"][0] + data["xs"][1][0]) * scale + data["k"]["deep"][0]

    nested = {"xs": [a, (b, 100)], "k": {"deep": [a * b]}}
    out = add_to_graph(combine, nested, scale=b, tag="constant", custom_name="combine")
    model = SymbolicModel((a, b), out)
    assert model(5, 7) == (5 + 7) * 7 + 35
    assert log == ["constant", "constant"]
    assert model.plan.steps[-1].name == "combine"


def test_add_to_graph_symbolic_function_and_kwargs():
    f = CustomInput(max)
    a = CustomInput(3)
    out = add_to_graph(f, a, 1, 2, key=lambda v: -v)
    model = SymbolicModel((f, a), out)
    assert model(min, 9) == min(9, 1, 2, key=lambda v: -v) == 9
    assert model(max, 9) == max(9, 1, 2, key=lambda v: -v) == 1


def test_add_to_graph_rejects_bad_calls():
    a = CustomInput(1)
    with pytest.raises(TypeError, match="callable"):
        add_to_graph(42, a)
    with pytest.raises(TypeError, match="none of the arguments is symbolic"):
        add_to_graph(max, 1, 2)
    with pytest.raises(TraceError, match="plain list, tuple or dict"):
        add_to_graph(sorted, {a})
    with pytest.raises(TraceError, match="dict key"):
        add_to_graph(dict, {a: 1})
    with pytest.raises(TypeError, match="custom_name"):
        add_to_graph(abs, a, custom_name=3)
    assert a.children == ()


def test_named_tuples_are_rebuilt_with_their_type():
    from collections import namedtuple

    Pair = namedtuple("Pair", "left right")
    a = CustomInput(1)
    out = add_to_graph(lambda p: (type(p).__name__, p.left - p.right), Pair(a, 10))
    assert SymbolicModel(a, out)(25) == ("Pair", 15)


def test_handles_expose_parents_children_op_and_value():
    x = CustomInput(5, custom_name="x")
    y = x * 2
    z = y + x
    assert x.parents == () and x.children == (y, z)
    assert z.parents == (y, x)
    assert z.v == 15 and z.node.custom_name is None and x.node.custom_name == "x"
    assert isinstance(x.op, symgraph.plugin.Placeholder) and isinstance(z.op, symgraph.plugin.Operator)
    assert repr(z).startswith("<SymbolicData[int] at 0x") and repr(z).endswith("2 parents; 0 children>")


def test_symbolic_data_cannot_be_instantiated_directly():
    with pytest.raises(TypeError, match="CustomInput"):
        symgraph.SymbolicData()
    with pytest.raises(TypeError, match="already symbolic"):
        CustomInput(CustomInput(1))


def test_unpacking_one_shot_iterators_reads_them_once():
    it = CustomInput(iter([1, 2]))
    a, b = it
    assert (a.v, b.v) == (1, 2)
    assert SymbolicModel(it, (b, a))(iter([10, 20])) == (20, 10)
    p, q = CustomInput([1, 2]), CustomInput([3, 4])
    u, w = add_to_graph(zip, p, q)
    assert SymbolicModel((p, q), (u, w))([5, 6], [7, 8]) == ((5, 7), (6, 8))


def test_symbolic_values_hidden_in_constants_are_refused():
    import dataclasses
    import functools

    x = CustomInput(3)

    @dataclasses.dataclass
    class Box:
        item: object

    def make_closure():
        return lambda n: x + n

    for hidden in (Box(x), functools.partial(max, x), {x}, make_closure()):
        with pytest.raises(TraceError, match="frozen as a constant"):
            add_to_graph(lambda *args: args, hidden, x)
    assert x.children == ()


def test_a_failure_names_its_step_after_a_model_with_the_same_code_is_gone() -> None:
    # Two models of the same steps compile to code objects that compare equal; the
    # first one's going must not take the second's map of lines to steps with it.
    import gc

    def build() -> symgraph.SymbolicModel:
        x = symgraph.CustomInput(4)
        return symgraph.SymbolicModel(x, 12 // x)

    first, second = build(), build()
    assert first.source == second.source
    del first
    gc.collect()
    with pytest.raises(ZeroDivisionError) as caught:
        second(0)
    with pytest.raises(ZeroDivisionError) as eager:
        12 // 0  # noqa: B018 - the oracle: what the same code raises eagerly
    assert str(caught.value) == str(eager.value)
    assert caught.value.__notes__ == [
        f"symgraph: step 'LambdaOpLayer_1', recorded at {second.plan.steps[0].where}, failed while the model replayed"
    ]


@pytest.mark.parametrize(
    "fmt",
    [
        lambda x: f"n={x}",
        lambda x: format(x),
        lambda x: format(x, ">5"),
        lambda x: "{}".format(x),  # noqa: UP032 - str.format is what is tested
    ],
    ids=["f-string", "format", "format-spec", "str.format"],
)
def test_formatting_a_symbolic_value_is_refused(fmt: Any) -> None:
    # The oracle: the same formatting recorded as a step gives what eager code gives.
    x = symgraph.CustomInput(5)
    with pytest.raises(symgraph.TraceError, match="add_to_graph"):
        fmt(x)
    recorded = symgraph.SymbolicModel(x, symgraph.add_to_graph(fmt, x))
    assert recorded(123) == fmt(123)
