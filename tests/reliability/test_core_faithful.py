"""Faithful replay in the core: each case is the eager code, run on the new value, as the oracle.

Each test is one of the divergences found by trying symgraph as a data engineer
would: the model must give what the recorded code gives eagerly, or a clear
error that names the step and the line that recorded it.
"""

from __future__ import annotations

import decimal
import fractions
import inspect
import math
import operator
import re
import sys
from typing import Any

import pytest

import symgraph
from symgraph.plugin import Const, Operator, Ref, Slice, SliceT, build_plan, generate, interpret
from symgraph.testing import models_on_each_executor

models = models_on_each_executor


def here() -> str:
    """``file:line`` of the caller's next line: where a test records a loop."""
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return f"{__file__}:{frame.f_back.f_lineno + 1}"


# -- 1. loops and unpacking ---------------------------------------------------------------------


def order_total(orders: list[dict[str, int]]) -> int:
    return sum(o["amount"] for o in orders)


def test_a_generator_sum_over_orders_is_guarded_not_cut_short() -> None:
    orders = symgraph.CustomInput([{"amount": 3}, {"amount": 4}])
    where = here()
    total = sum(o["amount"] for o in orders)
    for model in models(orders, total):
        same_length = [{"amount": 10}, {"amount": 5}]
        assert model(same_length) == order_total(same_length)
        for other in ([{"amount": 1}] * 4, [{"amount": 1}]):
            with pytest.raises(symgraph.GuardError) as info:
                model(other)
            message = str(info.value)
            assert where in message and "Elements_1" in message
            assert f"needs exactly 2, and got a value with {len(other)}" in message
            assert "symgraph.add_to_graph" in message


@pytest.mark.parametrize(
    ("example", "new"),
    [
        ((1, 2, 3), (4, 5, 6)),
        ("abc", "xyz"),
        (b"ab", b"cd"),
        (range(3), range(10, 13)),
        ({"k": 1, "j": 2}, {"p": 0, "q": 0}),
        (frozenset({1, 2}), frozenset({7, 9})),
    ],
)
def test_unpacking_any_iterable_replays_its_own_iteration_order(example: Any, new: Any) -> None:
    x = symgraph.CustomInput(example)
    parts = list(x)
    for model in models(x, tuple(parts)):
        assert model(new) == tuple(new)
        # A one-shot iterator of the right length replays too, read once.
        assert model(iter(list(new))) == tuple(new)
        with pytest.raises(symgraph.GuardError, match=f"exactly {len(example)}"):
            model(list(new) + list(new))


def test_star_unpacking_is_exact_because_the_rest_list_has_the_example_s_length() -> None:
    x = symgraph.CustomInput([1, 2, 3])
    head, *rest = x
    total = symgraph.add_to_graph(sum, rest)
    for model in models(x, (head, total)):
        assert model([5, 6, 7]) == (5, 13)
        with pytest.raises(symgraph.GuardError, match="exactly 3, and got a value with 4"):
            model([5, 6, 7, 8])  # eager: rest would hold three elements


def test_a_symbolic_iterable_inside_a_comprehension_over_pairs() -> None:
    prices = symgraph.CustomInput({"tea": 3.0, "cake": 4.5})
    doubled = {k: v * 2 for k, v in symgraph.add_to_graph(dict.items, prices)}
    assert all(isinstance(k, symgraph.SymbolicData) for k in doubled)  # keys are symbolic too
    model = symgraph.SymbolicModel(prices, list(doubled.values()))
    assert model({"a": 1.0, "b": 2.0}) == [2.0, 4.0]
    with pytest.raises(symgraph.GuardError):
        model({"a": 1.0})


# -- 2. == and != on types whose own == is elementwise --------------------------------------------


def test_pandas_elementwise_equality_is_recorded_not_frozen() -> None:
    pd = pytest.importorskip("pandas")
    example = pd.DataFrame({"g": ["x", "y", "x"], "amount": [1.0, 2.0, 3.0]})
    df = symgraph.CustomInput(example)
    flagged = df.assign(is_x=df["g"] == "x", not_y=df["g"] != "y")
    for model in models(df, flagged):
        new = pd.DataFrame({"g": ["y", "x", "z", "x"], "amount": [5.0, 6.0, 7.0, 8.0]})
        expected = new.assign(is_x=new["g"] == "x", not_y=new["g"] != "y")
        pd.testing.assert_frame_equal(model(new), expected)


def test_pandas_boolean_filter_and_groupby_replay_like_eager() -> None:
    pd = pytest.importorskip("pandas")
    df = symgraph.CustomInput(pd.DataFrame({"g": ["x", "y"], "amount": [1, 2]}))
    kept = df[(df["amount"] > 1) & (df["g"] == "x")]
    per_group = df.groupby("g")["amount"].sum()
    new = pd.DataFrame({"g": ["x", "x", "y", "z"], "amount": [5, 0, 7, 9]})
    for model in models(df, (kept, per_group)):
        got_kept, got_groups = model(new)
        pd.testing.assert_frame_equal(got_kept, new[(new["amount"] > 1) & (new["g"] == "x")])
        pd.testing.assert_series_equal(got_groups, new.groupby("g")["amount"].sum())


def test_polars_filter_on_an_equality_is_recorded_not_frozen() -> None:
    pl = pytest.importorskip("polars")
    d = symgraph.CustomInput(pl.DataFrame({"a": [5, 1, 5], "b": ["p", "q", "r"]}))
    picked = d.filter(d["a"] == 5)
    others = d.filter(d["a"] != 5)
    new = pl.DataFrame({"a": [2, 5, 5, 5, 3], "b": list("vwxyz")})
    for model in models(d, (picked, others)):
        got_picked, got_others = model(new)
        assert got_picked.equals(new.filter(new["a"] == 5))
        assert got_others.equals(new.filter(new["a"] != 5))


def test_plain_equality_replays_as_eager_code() -> None:
    x = symgraph.CustomInput(3)
    y = symgraph.CustomInput("a")
    outputs = (x * (x == 3), x != 4, y == "b", 7 == x)  # noqa: SIM300 - the reflected form is the point
    for model in models((x, y), outputs):
        for a, b in [(3, "b"), (4, "a"), (7, "b")]:
            assert model(a, b) == (a * (a == 3), a != 4, b == "b", a == 7)


def test_branching_on_a_comparison_is_refused_at_record_time() -> None:
    x = symgraph.CustomInput(3)
    with pytest.raises(symgraph.TraceError, match="truth value"):
        if x == 3:
            pass
    assert x.children == ()


# -- 5. number protocols --------------------------------------------------------------------------

NUMBERS = [2.567, -7.5, 5, fractions.Fraction(7, 3), decimal.Decimal("2.675")]


@pytest.mark.parametrize("example", NUMBERS, ids=lambda v: type(v).__name__)
def test_number_protocols_replay_like_eager_code(example: Any) -> None:
    x = symgraph.CustomInput(example)
    calls = {
        "round": lambda v: round(v),
        "round 1": lambda v: round(v, 1),
        "floor": math.floor,
        "ceil": math.ceil,
        "trunc": math.trunc,
        "divmod": lambda v: divmod(v, 2),
        "rdivmod": lambda v: divmod(10, v),
    }
    outputs = {name: fn(x) for name, fn in calls.items()}
    new = type(example)(example * 3 - 1) if not isinstance(example, decimal.Decimal) else example * 3
    for model in models(x, outputs):
        assert model(new) == {name: fn(new) for name, fn in calls.items()}


def test_three_argument_pow_with_symbolic_operands() -> None:
    base, exponent, modulus = symgraph.CustomInput(3), symgraph.CustomInput(4), symgraph.CustomInput(7)
    outputs = (pow(base, 2, 7), pow(base, exponent, modulus), pow(base, 2), pow(base, 3, modulus))
    for model in models((base, exponent, modulus), outputs):
        for b, e, m in [(3, 4, 7), (10, 3, 11), (2, 100, 13)]:
            assert model(b, e, m) == (pow(b, 2, 7), pow(b, e, m), b**2, pow(b, 3, m))


def test_three_argument_pow_with_a_plain_base_is_python_s_own_type_error() -> None:
    # Python never asks the exponent for a three-argument __rpow__, so this cannot be
    # recorded as an operator; the call records it.
    exponent = symgraph.CustomInput(4)
    with pytest.raises(TypeError, match="unsupported operand"):
        pow(5, exponent, 7)
    assert exponent.children == ()
    model = symgraph.SymbolicModel(exponent, symgraph.add_to_graph(pow, 5, exponent, 7))
    assert model(9) == pow(5, 9, 7)


def test_a_failing_three_argument_pow_raises_python_s_own_error() -> None:
    x = symgraph.CustomInput(2.0)
    with pytest.raises(TypeError) as eager:
        pow(2.0, 2, 7)
    with pytest.raises(TypeError) as recorded:
        pow(x, 2, 7)
    assert str(recorded.value) == str(eager.value)
    assert x.children == ()


@pytest.mark.parametrize(
    ("convert", "what"),
    [(int, "int"), (float, "float"), (complex, "complex"), (operator.index, "index"), (range, "index")],
)
def test_conversions_that_need_a_value_now_are_refused_with_the_way_out(convert: Any, what: str) -> None:
    x = symgraph.CustomInput(3)
    with pytest.raises(symgraph.TraceError, match=f"{what}.*add_to_graph"):
        convert(x)


# -- 8. recording errors keep the user's exception -------------------------------------------------


def divide_by_zero(value: Any, constant: Any) -> Any:
    return value / 0


class LoudRepr:
    def __repr__(self) -> str:
        raise RuntimeError("a __repr__ that raises")


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "constant",
    [list(range(5_000_000)), nested(10_000), LoudRepr(), {LoudRepr(): LoudRepr()}, "x" * 10_000_000, 10**100_000],
    ids=["5M list", "deep list", "raising repr", "raising dict", "10M str", "huge int"],
)
def test_the_user_s_exception_survives_a_hostile_constant(constant: Any) -> None:
    x = symgraph.CustomInput(1)
    with pytest.raises(ZeroDivisionError) as info:
        symgraph.add_to_graph(divide_by_zero, x, constant)
    (note,) = info.value.__notes__
    assert note.startswith("symgraph: recording Call(divide_by_zero") and len(note) < 400
    assert "nothing was added to the graph" in note
    assert x.children == ()


def test_a_big_constant_list_is_one_constant_not_a_template_per_element() -> None:
    big = list(range(1_000_000))
    x = symgraph.CustomInput(1)
    y = symgraph.add_to_graph(operator.getitem, big, x)
    (const,) = [t for t in y.op.args if isinstance(t, Const)]
    assert const.value is big
    assert symgraph.SymbolicModel(x, y)(999_999) == 999_999


# -- 9. constants and names -----------------------------------------------------------------------


def test_an_int_constant_with_more_digits_than_python_prints_still_builds() -> None:
    huge = 7 ** (10**5)  # 84,510 digits: repr() of it raises
    x = symgraph.CustomInput(1)
    for model in models(x, (x + huge, x - (-huge))):
        assert model(2) == (2 + huge, 2 + huge)
    assert str(sys.get_int_max_str_digits()) not in symgraph.SymbolicModel(x, x + huge).source


def test_a_dict_input_named_self_is_callable() -> None:
    a, b = symgraph.CustomInput(2), symgraph.CustomInput(3)
    model = symgraph.SymbolicModel({"self": a, "other": b}, a - b)
    assert model(self=10, other=4) == 6
    assert model.interpret(self=10, other=4) == 6


def test_names_cannot_forge_summary_rows_or_send_escape_sequences() -> None:
    x = symgraph.CustomInput(1, custom_name="x\n9*   forged row\x1b[2J")
    y = symgraph.add_to_graph(abs, x, custom_name="y\r\u2028z")
    model = symgraph.SymbolicModel({"key\nrow": x}, {"out\x07": y})
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    (table,) = lines
    rows = table.splitlines()
    assert len(rows) == 2 + 3 + 1  # rules, header, two layers, rule
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029]", table)
    assert "x\\n9*   forged row\\x1b[2J" in table and "y\\r\\u2028z" in table


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: symgraph.to_networkx(5), "to_networkx\\(\\) needs a model"),
        (lambda: symgraph.format_summary(5), "format_summary\\(\\) needs a Plan"),
        (lambda: generate(5), "generate\\(\\) needs a Plan"),
        (lambda: interpret(5, []), "interpret\\(\\) needs a Plan"),
        (lambda: symgraph.plugin.Program(5), "Program\\(\\) needs a Plan"),
        (lambda: symgraph.plugin.record(5, ()), "record\\(\\) needs an Operation"),
        (lambda: symgraph.plugin.record(Operator("+", [Ref(0), Ref(0)]), (5,)), "tuple of parent nodes"),
        (lambda: Slice(5), "Slice: the index must be a template"),
        (lambda: SliceT(5), "SliceT needs a list or tuple of templates"),
        (lambda: symgraph.plugin.ListT(5), "ListT needs a list or tuple"),
        (lambda: symgraph.plugin.DictT(5, 5), "DictT needs a list or tuple of keys"),
        (lambda: build_plan(5, 5), "inputs must be a symbolic value"),
    ],
)
def test_misuse_raises_a_clear_type_error(call: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        call()


# -- in-place changes of builtin containers --------------------------------------------------------


@pytest.mark.parametrize(
    ("example", "change"),
    [
        ([1, 2], lambda v: v.append(3)),
        ([3, 1], lambda v: v.sort()),
        ([1, 2], lambda v: v.pop()),
        ({"a": 1}, lambda v: v.update(b=2)),
        ({"a": 1}, lambda v: v.setdefault("b", 2)),
        ({1, 2}, lambda v: v.add(3)),
        ({1, 2}, lambda v: v.intersection_update({1})),
        (bytearray(b"ab"), lambda v: v.extend(b"c")),
    ],
)
def test_in_place_changes_are_refused_and_leave_the_example_alone(example: Any, change: Any) -> None:
    before = example.copy()
    x = symgraph.CustomInput(example)
    with pytest.raises(symgraph.TraceError, match="in place"):
        change(x)
    assert example == before and x.children == ()


def test_methods_that_return_new_values_still_record() -> None:
    x = symgraph.CustomInput({"a": 1})
    y = symgraph.CustomInput([3, 1, 2])
    outputs = (x.get("a"), x.copy(), y.index(1), y.count(3), y.copy())
    for model in models((x, y), outputs):
        d, v = {"a": 5, "b": 6}, [1, 1, 3]
        assert model(d, v) == (d.get("a"), d.copy(), v.index(1), v.count(3), v.copy())


# -- a failed replay names the step and the line that recorded it -----------------------------------


def parse_quantity(text: str) -> int:
    return int(text)


def test_a_replay_that_fails_names_the_step_and_where_it_was_recorded() -> None:
    order = symgraph.CustomInput({"qty": "3"})
    where = here()
    doubled = symgraph.add_to_graph(parse_quantity, order["qty"]) * 2
    model = symgraph.SymbolicModel(order, doubled)
    assert model({"qty": "5"}) == 10
    for run in (model, model.interpret, symgraph.SymbolicModel(order, doubled, executor="interpreter")):
        with pytest.raises(ValueError) as info:
            run({"qty": "five"})
        with pytest.raises(ValueError) as eager:
            parse_quantity("five")
        assert str(info.value) == str(eager.value)  # the user's own exception, unchanged
        assert info.value.__notes__ == [
            f"symgraph: step 'wrap(parse_quantity)_1', recorded at {where}, failed while the model replayed"
        ]


def test_a_guard_s_error_is_not_noted_twice() -> None:
    xs = symgraph.CustomInput([1, 2])
    a, b = xs
    model = symgraph.SymbolicModel(xs, a + b)
    with pytest.raises(symgraph.GuardError) as info:
        model([1])
    assert not getattr(info.value, "__notes__", [])


def test_a_failure_inside_a_nested_model_names_both_steps() -> None:
    inner_x = symgraph.CustomInput("3")
    inner = symgraph.SymbolicModel(inner_x, symgraph.add_to_graph(parse_quantity, inner_x))
    outer_x = symgraph.CustomInput("4")
    outer = symgraph.SymbolicModel(outer_x, symgraph.add_to_graph(inner, outer_x) + 1)
    assert outer("6") == 7
    with pytest.raises(ValueError) as info:
        outer("six")
    notes = info.value.__notes__
    assert len(notes) == 2
    assert notes[0].startswith("symgraph: step 'wrap(parse_quantity)_1'")
    assert notes[1].startswith("symgraph: step 'SymbolicModel_1'")
