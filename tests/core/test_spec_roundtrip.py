"""Saving and loading core models in the symgraph format, without any backend.

Each model is built back three ways: from ``to_spec()`` passed through JSON text,
from a directory written by ``symgraph.save``, and from a ``.zip``. The oracle is
the original model and the same code run eagerly, both on inputs the recording
never saw; structure (names, summary, generated source, executor, options) must
come back unchanged too.

This module imports no numpy or torch: it runs in the ``SYMGRAPH_NO_BACKENDS=1`` tier.
"""

from __future__ import annotations

import collections
import functools
import importlib
import json
import math
import operator
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import symgraph
from symgraph import CustomInput, GuardError, SaveError, SpecError, SymbolicModel, add_to_graph

#: A named tuple of a module-level class: loading a spec that names it needs allow=.
Point = collections.namedtuple("Point", "x y")

ROUTES = ["spec", "dir", "zip"]


# -- helpers --------------------------------------------------------------------------
def reload(model: SymbolicModel, route: str, tmp_path: Path, **load_kw: Any) -> SymbolicModel:
    """``model`` written and read back through ``route``."""
    if route == "spec":
        # Through JSON text, so that only JSON data survives.
        spec = json.loads(json.dumps(model.to_spec(), allow_nan=False))
        return SymbolicModel.from_spec(spec, model.spec_constants(), **load_kw)
    path = tmp_path / ("saved.zip" if route == "zip" else "saved")
    written = symgraph.save(model, path)
    assert written == path
    assert path.is_file() if route == "zip" else (path / "spec.json").is_file()
    loaded = symgraph.load(path, **load_kw)
    assert type(loaded) is SymbolicModel
    return loaded


def assert_same(actual: Any, expected: Any) -> None:
    """Equal values of equal types, all the way down; NaNs equal, ``-0.0`` differs from ``0.0``."""
    assert type(actual) is type(expected), (actual, expected)
    if isinstance(expected, (float, complex)):
        assert repr(actual) == repr(expected)
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), (actual, expected)
        for a, e in zip(actual, expected, strict=True):
            assert_same(a, e)
    elif isinstance(expected, dict):
        assert list(actual) == list(expected), (actual, expected)
        for key in expected:
            assert_same(actual[key], expected[key])
    elif isinstance(expected, functools.partial):
        assert actual.func is expected.func
        assert_same(actual.args, expected.args)
        assert_same(actual.keywords, expected.keywords)
    else:
        assert actual == expected, (actual, expected)


def _symbolic(value: Any) -> bool:
    if isinstance(value, symgraph.SymbolicData):
        return True
    if isinstance(value, (list, tuple)):
        return any(_symbolic(v) for v in value)
    if isinstance(value, dict):
        return any(_symbolic(v) for v in value.values())
    return False


def call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``func(*args, **kwargs)``, recorded when an argument is symbolic: the same code runs eagerly and recorded."""
    if _symbolic(args) or _symbolic(kwargs):
        return add_to_graph(func, *args, **kwargs)
    return func(*args, **kwargs)


def summary_of(model: SymbolicModel) -> str:
    printed: list[str] = []
    model.summary(print_fn=printed.append)
    return printed[0]


def assert_same_structure(loaded: SymbolicModel, model: SymbolicModel) -> None:
    assert [s.name for s in loaded.plan.inputs] == [s.name for s in model.plan.inputs]
    assert [s.name for s in loaded.plan.steps] == [s.name for s in model.plan.steps]
    assert loaded.plan.input_keys == model.plan.input_keys
    assert summary_of(loaded) == summary_of(model)
    # The constant pool may be numbered differently; the code must be the same.
    # Constants are numbered in another order, and a loaded model reads attributes
    # through symgraph's guard (a constant) rather than the builtin getattr.
    assert re.sub(r"\bc\d+\b", "c", loaded.source) == re.sub(r"\bc\d+\b|\bgetattr\b", "c", model.source)
    assert loaded.executor == model.executor
    assert loaded.executor_options == model.executor_options
    assert loaded.check_inputs == model.check_inputs


def check_roundtrip(
    fn: Callable[..., Any],
    example: tuple[Any, ...],
    datasets: list[tuple[Any, ...]],
    route: str,
    tmp_path: Path,
    **load_kw: Any,
) -> SymbolicModel:
    """Record ``fn`` on ``example``; the loaded model answers like the original and eager ``fn`` on ``datasets``."""
    inputs = tuple(CustomInput(v) for v in example)
    model = SymbolicModel(inputs, fn(*inputs))
    loaded = reload(model, route, tmp_path, **load_kw)
    assert_same_structure(loaded, model)
    for data in datasets:
        expected = fn(*data)
        assert_same(model(*data), expected)
        assert_same(loaded(*data), expected)
        assert_same(loaded.interpret(*data), expected)
    return loaded


@pytest.fixture
def helper_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """An importable module of the test's own, with module-level functions; forgotten after the test."""
    name = f"spec_helper_{uuid.uuid4().hex}"
    folder = tmp_path / "helpers"
    folder.mkdir()
    (folder / f"{name}.py").write_text(
        "def scale(value, factor=2):\n"
        "    return [v * factor for v in value]\n"
        "\n"
        "def label(value, *, prefix):\n"
        "    return prefix + str(value)\n"
    )
    monkeypatch.syspath_prepend(str(folder))
    module = importlib.import_module(name)
    yield module
    sys.modules.pop(name, None)


# -- operations -----------------------------------------------------------------------
def arithmetic(a: Any, b: Any) -> list[Any]:
    return [
        a + b,
        a - b,
        a * b,
        a / b,
        a // b,
        a % b,
        a**2,
        2**b,
        10 - a,
        7 // b,
        -a,
        +a,
        abs(a),
        ~a,
        a & b,
        a | b,
        a ^ b,
        a << 2,
        a >> 1,
        a < b,
        a <= b,
        a == b,
        a != b,
        a > b,
        a >= b,
        a == 3,
        (a + b) * (a - b) % 7,
    ]


@pytest.mark.parametrize("route", ROUTES)
def test_operators(route: str, tmp_path: Path) -> None:
    check_roundtrip(arithmetic, (3, 5), [(7, 2), (-4, 3), (3, 3)], route, tmp_path)


def comparisons_on_values(s: Any, items: Any, pair: Any) -> list[Any]:
    return [s == "yes", s != "no", items == [1, 2, 3], items < [5], pair == (1, "a"), pair >= (0, "z"), s + "!", s * 2]


@pytest.mark.parametrize("route", ROUTES)
def test_equality_and_comparisons_of_values(route: str, tmp_path: Path) -> None:
    check_roundtrip(
        comparisons_on_values,
        ("yes", [1, 2, 3], (1, "a")),
        [("no", [1, 2, 3], (0, "z")), ("yes", [4], (1, "a")), ("maybe", [], (2, ""))],
        route,
        tmp_path,
    )


def attributes_and_methods(z: Any, s: Any, d: Any) -> list[Any]:
    return [
        z.real,
        z.imag,
        z.conjugate(),
        s.upper(),
        s.split(",", maxsplit=1),
        s.replace("a", "A", 1),
        s.strip().startswith("x"),
        d.get("k", "missing"),
        d.get("other"),
        call(sorted, d.keys()),
        s.count("a", 1),
        s.center(9, "*"),
    ]


@pytest.mark.parametrize("route", ROUTES)
def test_getattr_and_method_calls_with_kwargs(route: str, tmp_path: Path) -> None:
    check_roundtrip(
        attributes_and_methods,
        (1 + 2j, "a,b,c", {"k": 1}),
        [(-3.5j, "xa,a,a", {"other": 2}), (0j, "", {"k": "v", "other": None})],
        route,
        tmp_path,
    )


def indexing(items: Any, text: Any, n: Any, m: Any, table: Any) -> list[Any]:
    return [
        items[0],
        items[-1],
        items[1:],
        items[::2],
        items[n:],
        items[:n],
        items[n:m],
        items[n:m:2],
        items[-m:-n],
        items[::-1][n],
        text[n],
        text[n:],
        table["row"][n],
        table["row"][n : m + 1],
    ]


@pytest.mark.parametrize("route", ROUTES)
def test_indexing_and_slices_with_symbolic_bounds(route: str, tmp_path: Path) -> None:
    check_roundtrip(
        indexing,
        ([0, 1, 2, 3, 4, 5], "symbolic", 1, 4, {"row": [9, 8, 7, 6, 5]}),
        [
            ([10, 20, 30, 40, 50, 60, 70], "graphs!", 2, 5, {"row": [1, 2, 3, 4, 5, 6]}),
            ([5, 4, 3], "abc", 0, 2, {"row": [1]}),
        ],
        route,
        tmp_path,
    )


def calls(values: Any, x: Any, words: Any) -> list[Any]:
    return [
        call(len, values),
        call(sum, values, 10),
        call(max, values, key=abs),
        call(min, values, default=None),
        call(sorted, words, key=len, reverse=True),
        call(round, x, 1),
        call(divmod, x, 3),
        call(isinstance, x, (int, float)),
        call(pow, values[0], 3, 7),
        call(getattr, x, "real"),
        call(str, x),
        call(list, call(zip, range(3), words)),
        call(math.sqrt, abs(x)),
        call(math.floor, x),
        call(math.isclose, x, 2.5, rel_tol=0.5),
        call(math.hypot, x, 4.0),
        call(math.fsum, values),
        call(math.gcd, values[0], 12),
    ]


@pytest.mark.parametrize("route", ROUTES)
def test_calls_of_builtins_and_math(route: str, tmp_path: Path) -> None:
    check_roundtrip(
        calls,
        ([3, -1, 2], 2.5, ["bb", "a", "ccc"]),
        [([6, -8, 4, 9], -7.25, ["xyz", "w"]), ([12], 3.0, ["one", "three", "seventeen", ""])],
        route,
        tmp_path,
    )


def operator_calls(a: Any, b: Any, items: Any) -> list[Any]:
    return [
        call(operator.add, a, b),
        call(operator.mul, a, 3),
        call(operator.neg, b),
        call(operator.eq, a, b),
        call(operator.contains, items, a),
        call(operator.getitem, items, 0),
        call(operator.truth, b),
    ]


@pytest.mark.parametrize("route", ROUTES)
def test_calls_of_operator_functions(route: str, tmp_path: Path) -> None:
    check_roundtrip(operator_calls, (3, 5, [1, 3]), [(4, 0, [4, 5]), (-1, 2, [7])], route, tmp_path)


def unpacking(items: Any, pair: Any) -> list[Any]:
    first, *rest = items
    a, b = pair
    total = 0
    for v in items:
        total = total + v
    q, r = call(divmod, a, b)
    return [first, rest[1], a - b, total, [v * 2 for v in items][2], q, r]


@pytest.mark.parametrize("route", ROUTES)
def test_unpacking_and_loops_keep_their_guard(route: str, tmp_path: Path) -> None:
    loaded = check_roundtrip(
        unpacking, ([1, 2, 3], (7, 2)), [([10, 20, 30], (9, 4)), ([-1, 0, 1], (-5, 3))], route, tmp_path
    )
    items, pair = CustomInput([1, 2, 3]), CustomInput((7, 2))
    model = SymbolicModel((items, pair), unpacking(items, pair))
    for bad in ([1, 2, 3, 4], [1, 2]):
        with pytest.raises(GuardError) as original:
            model(bad, (1, 1))
        with pytest.raises(GuardError) as reloaded:
            loaded(bad, (1, 1))
        assert str(reloaded.value) == str(original.value)


# -- inputs and outputs ---------------------------------------------------------------
@pytest.mark.parametrize("route", ROUTES)
def test_dict_inputs_are_called_by_keyword(route: str, tmp_path: Path) -> None:
    x, scale, other = CustomInput([1, 2]), CustomInput(3), CustomInput("s")
    model = SymbolicModel({"x": x, "self": scale, "a key": other}, {"out": x * scale, "tag": other + "!"})
    loaded = reload(model, route, tmp_path)
    assert_same_structure(loaded, model)
    for data in ({"x": [4], "self": 2, "a key": "k"}, {"a key": "", "x": [], "self": 5}):
        expected = {"out": data["x"] * data["self"], "tag": data["a key"] + "!"}
        assert_same(loaded(**data), expected)
        assert_same(model(**data), expected)
    with pytest.raises(TypeError, match="by keyword"):
        loaded([1], 2, "k")
    with pytest.raises(TypeError, match="missing input"):
        loaded(x=[1], self=2)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "outputs",
    [
        lambda a, b: a * b,
        lambda a, b: (a + b, a - b),
        lambda a, b: [a, b, a * b],
        lambda a, b: {"sum": a + b, "first": a},
        lambda a, b: {1: a, (2, "x"): b, "$ref": a + 1},
        lambda a, b: (a,),
    ],
    ids=["single", "tuple", "list", "dict", "dict-non-str-keys", "one-tuple"],
)
def test_output_structures(outputs: Callable[[Any, Any], Any], route: str, tmp_path: Path) -> None:
    a, b = CustomInput(2), CustomInput(3)
    model = SymbolicModel([a, b], outputs(a, b))
    loaded = reload(model, route, tmp_path)
    assert_same_structure(loaded, model)
    for data in ((5, 7), (-1, 0)):
        assert_same(loaded(*data), outputs(*data))
        assert_same(loaded(*data), model(*data))


# -- constants ------------------------------------------------------------------------
CONSTANTS = [
    (1, "a", None),
    (),
    {1, 2, 3},
    frozenset({"x", ("y", 1)}),
    b"\x00\xff bytes",
    b"",
    1 + 2j,
    complex(math.inf, math.nan),
    math.nan,
    math.inf,
    -math.inf,
    -0.0,
    0.1,
    2**70,
    -(2**80),
    Ellipsis,
    range(1, 10, 3),
    range(5, -5, -2),
    slice(1, None, 2),
    slice(None, "k"),
    {1: "one", (2, 3): [4], None: False, 2.5: b"x"},
    {"$ref": "x", "$tuple": 1, "plain": [1, {"c": (2,)}]},
    {"a": [1, (2, {3}), {"b": {frozenset({1}): b"x"}}], "z": [[[[]]]]},
    "naïve\n\x00 'quoted' \"text\" {0}",
    True,
    None,
    [1, [2, [3, [4]]]],
    functools.partial(max, 10),
    functools.partial(round, ndigits=1),
    functools.partial(sorted, key=len, reverse=True),
    Point(1, (2, 3)),
    {"nested": [Point("a", b"b"), (Point(0, 0),)]},
]


def with_constants(table: Any, key: Any) -> list[Any]:
    return [table.get(key, c) for c in CONSTANTS]


@pytest.mark.parametrize("route", ROUTES)
def test_constants_of_every_inline_kind(route: str, tmp_path: Path) -> None:
    # The key is present in the example, so recording returns the table's value;
    # new calls without it return the constants, read back from the file.
    loaded = check_roundtrip(
        with_constants, ({"k": 0}, "k"), [({}, "k"), ({"k": 1}, "k"), ({"j": 2}, "j")], route, tmp_path, allow=[Point]
    )
    got = loaded({}, "k")
    assert type(got[CONSTANTS.index(Point(1, (2, 3)))]) is Point


def constants_as_operands(items: Any, s: Any, fs: Any, data: Any, n: Any, z: Any) -> list[Any]:
    return [
        items + (1, 2),
        s | {1, 2},
        fs & frozenset({"a", "b"}),
        data + b"\xfe",
        z * (1 + 2j),
        n + math.inf,
        n * -0.0,
        items[slice(1, None, 2)],
        call(functools.partial(max, 10), n),
        call(functools.partial(round, ndigits=1), n / 3),
        call(list, call(zip, range(10, 0, -3), items)),
        call(max, Point(n, 4)),
        call(isinstance, n, (int, str)),
    ]


@pytest.mark.parametrize("route", ROUTES)
def test_constants_in_operations(route: str, tmp_path: Path) -> None:
    check_roundtrip(
        constants_as_operands,
        ((0,), {3}, frozenset({"a"}), b"d", 5, 1j),
        [((9, 8, 7), {1, 4}, frozenset({"b", "c"}), b"", 2, 2 + 0j), ((), set(), frozenset(), b"\x00", -7, -1j)],
        route,
        tmp_path,
        allow=[Point],
    )


def test_named_tuple_class_needs_allow(tmp_path: Path) -> None:
    table, key = CustomInput({"k": 0}), CustomInput("k")
    model = SymbolicModel((table, key), table.get(key, Point(1, 2)))
    spec = json.loads(json.dumps(model.to_spec()))
    path = symgraph.save(model, tmp_path / "m.zip")
    reference = f"{Point.__module__}:Point"
    for attempt in (lambda: SymbolicModel.from_spec(spec), lambda: symgraph.load(path)):
        with pytest.raises(SpecError, match="allow=") as info:
            attempt()
        assert reference in str(info.value)
    assert SymbolicModel.from_spec(spec, allow=[Point])({}, "k") == Point(1, 2)
    assert symgraph.load(path, allow=[Point])({}, "k") == Point(1, 2)


# -- names, executors, options --------------------------------------------------------
@pytest.mark.parametrize("route", ROUTES)
def test_custom_and_duplicate_names_survive(route: str, tmp_path: Path) -> None:
    a = CustomInput(2, custom_name="value")
    b = CustomInput(3, custom_name="value")
    c = CustomInput(4, custom_name="Input_1")
    d = CustomInput(5)
    s1 = add_to_graph(max, a, b, custom_name="step")
    s2 = add_to_graph(min, a, c, custom_name="step")
    s3 = add_to_graph(sum, [s1, s2, d], custom_name="value")
    model = SymbolicModel([a, b, c, d], [s1, s2, s3])
    spec = model.to_spec()
    names = [e["name"] for e in spec["inputs"]] + [e["name"] for e in spec["steps"]]
    assert len(set(names)) == len(names)
    loaded = reload(model, route, tmp_path)
    assert [s.name for s in loaded.plan.inputs] == ["value", "value", "Input_1", "Input_1"]
    assert [s.name for s in loaded.plan.steps] == ["step", "step", "value"]
    assert_same_structure(loaded, model)
    assert loaded(10, 20, 1, 100) == model(10, 20, 1, 100) == [20, 1, 121]


@pytest.mark.parametrize("route", ROUTES)
def test_executor_choice_and_check_inputs_are_preserved(route: str, tmp_path: Path) -> None:
    x = CustomInput([1, 2])
    model = SymbolicModel(
        x, x * 2, check_inputs=False, executor="interpreter", executor_options={"fallback": "codegen"}
    )
    loaded = reload(model, route, tmp_path)
    assert loaded.executor == "interpreter"
    assert loaded.executor_options == {"fallback": "codegen"}
    assert loaded.check_inputs is False
    assert loaded([5]) == [5, 5]
    model.set_executor("codegen")
    model.check_inputs = True
    again = reload(model, route, tmp_path / "again")
    assert (again.executor, again.executor_options, again.check_inputs) == ("codegen", {}, True)
    assert again([7]) == [7, 7]


# -- specs written by hand ------------------------------------------------------------
HAND_WRITTEN = {
    "format": "symgraph.model",
    "version": 1,
    "model": "symgraph",
    "inputs": [{"name": "text"}, {"name": "n", "description": "how many words"}],
    "input_keys": ["text", "n"],
    "steps": [
        {"name": "lower", "op": "method", "of": "text", "method": "lower", "args": [], "kwargs": {}},
        {"name": "words", "op": "method", "of": "lower", "method": "split", "args": [], "kwargs": {"sep": " "}},
        {
            "name": "longest",
            "op": "call",
            "func": {"$object": "builtins:sorted"},
            "args": [{"$ref": "words"}],
            "kwargs": {"key": {"$object": "builtins:len"}, "reverse": True},
        },
        {"name": "top", "op": "index", "of": "longest", "index": {"$slice": [None, {"$ref": "n"}, None]}},
        {"name": "count", "op": "call", "func": {"$object": "builtins:len"}, "args": [{"$ref": "words"}], "kwargs": {}},
        {"name": "ratio", "op": "operator", "symbol": "/", "operands": [{"$ref": "n"}, {"$ref": "count"}]},
        {
            "name": "root",
            "op": "call",
            "func": {"$object": "math:sqrt"},
            "args": [{"$ref": "ratio"}],
            "kwargs": {},
            "display": "square root",
        },
        {"name": "first", "op": "index", "of": "words", "index": 0},
        {"name": "real", "op": "getattr", "of": "ratio", "attr": "real"},
        {"name": "tag", "op": "operator", "symbol": "+", "operands": [{"$ref": "lower"}, "!"]},
        {"name": "big", "op": "operator", "symbol": ">", "operands": [{"$ref": "count"}, 2]},
    ],
    "outputs": {
        "top": {"$ref": "top"},
        "root": {"$ref": "root"},
        "pair": {"$tuple": [{"$ref": "tag"}, {"$ref": "big"}, {"$float": "inf"}]},
        "bounds": {"$slice": [0, {"$ref": "n"}, None]},
        "first": [{"$ref": "first"}, {"$ref": "real"}],
    },
    "options": {"check_inputs": True, "executor": "codegen", "executor_options": {}},
}

HAND_WRITTEN_YAML = """
format: symgraph.model
version: 1
model: symgraph
inputs:
  - name: text
  - {name: n, description: how many words}
input_keys: [text, n]
steps:
  - {name: lower, op: method, of: text, method: lower, args: [], kwargs: {}}
  - {name: words, op: method, of: lower, method: split, args: [], kwargs: {sep: " "}}
  - name: longest
    op: call
    func: {"$object": "builtins:sorted"}
    args: [{"$ref": words}]
    kwargs:
      key: {"$object": "builtins:len"}
      reverse: true
  - name: top
    op: index
    of: longest
    index: {"$slice": [null, {"$ref": n}, null]}
  - {name: count, op: call, func: {"$object": "builtins:len"}, args: [{"$ref": words}], kwargs: {}}
  - {name: ratio, op: operator, symbol: /, operands: [{"$ref": n}, {"$ref": count}]}
  - name: root
    op: call
    func: {"$object": "math:sqrt"}
    args: [{"$ref": ratio}]
    kwargs: {}
    display: square root
  - {name: first, op: index, of: words, index: 0}
  - {name: real, op: getattr, of: ratio, attr: real}
  - {name: tag, op: operator, symbol: +, operands: [{"$ref": lower}, "!"]}
  - {name: big, op: operator, symbol: ">", operands: [{"$ref": count}, 2]}
outputs:
  top: {"$ref": top}
  root: {"$ref": root}
  pair: {"$tuple": [{"$ref": tag}, {"$ref": big}, {"$float": inf}]}
  bounds: {"$slice": [0, {"$ref": n}, null]}
  first: [{"$ref": first}, {"$ref": real}]
options: {check_inputs: true, executor: codegen, executor_options: {}}
"""


def hand_written_eager(text: str, n: int) -> dict[str, Any]:
    lower = text.lower()
    words = lower.split(sep=" ")
    count = len(words)
    return {
        "top": sorted(words, key=len, reverse=True)[:n],
        "root": math.sqrt(n / count),
        "pair": (lower + "!", count > 2, math.inf),
        "bounds": slice(0, n, None),
        "first": [words[0], (n / count).real],
    }


HAND_DATA = [("The Quick brown Fox", 2), ("a bb ccc dddd", 3), ("single", 1), ("x  y", 0)]


def check_hand_written(model: SymbolicModel) -> None:
    assert [s.name for s in model.plan.inputs] == ["text", "n"]
    assert model.plan.inputs[1].description == "how many words"
    assert "square root" in [s.name for s in model.plan.steps]
    for text, n in HAND_DATA:
        assert_same(model(text=text, n=n), hand_written_eager(text, n))
        assert_same(model.interpret(text=text, n=n), hand_written_eager(text, n))


def test_model_from_a_hand_written_spec(tmp_path: Path) -> None:
    model = SymbolicModel.from_spec(HAND_WRITTEN)
    check_hand_written(model)
    for route in ROUTES:
        check_hand_written(reload(model, route, tmp_path / route))


def test_model_from_a_hand_written_yaml_spec() -> None:
    yaml = pytest.importorskip("yaml")
    spec = yaml.safe_load(HAND_WRITTEN_YAML)
    assert spec == HAND_WRITTEN
    check_hand_written(SymbolicModel.from_spec(spec))


# -- what cannot be saved -------------------------------------------------------------
def _local_model(kind: str) -> SymbolicModel:
    x = CustomInput(2)
    if kind == "lambda":
        y = add_to_graph(lambda v: v + 1, x, custom_name="the_step")
    else:

        def local_function(v: int) -> int:
            return v + 1

        y = add_to_graph(local_function, x, custom_name="the_step")
    return SymbolicModel(x, y * 2)


@pytest.mark.parametrize("kind", ["lambda", "local"])
def test_lambdas_and_local_functions_are_refused_and_nothing_is_written(kind: str, tmp_path: Path) -> None:
    model = _local_model(kind)
    assert model(3) == 8
    with pytest.raises(SaveError) as info:
        model.to_spec()
    message = str(info.value)
    assert message.startswith("cannot save this model in the symgraph format")
    assert "'the_step'" in message and "pickle" in message
    assert isinstance(info.value, TypeError)
    for name in ("model", "model.zip", "nested/dir/model"):
        with pytest.raises(SaveError, match="the_step") as again:
            symgraph.save(model, tmp_path / name)
        assert "pickle" in str(again.value)
        assert not (tmp_path / name).exists()
    # No temporary files left behind either (nested/dir may exist, but empty).
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert leftovers == []


def test_a_refused_save_leaves_an_existing_model_as_it_was(tmp_path: Path) -> None:
    x = CustomInput(2)
    good = SymbolicModel(x, x * 10)
    for name in ("kept", "kept.zip"):
        path = symgraph.save(good, tmp_path / name)
        with pytest.raises(SaveError):
            symgraph.save(_local_model("lambda"), path, overwrite=True)
        assert symgraph.load(path)(4) == 40


# -- overwriting ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["model", "model.zip"])
def test_overwrite(name: str, tmp_path: Path) -> None:
    x = CustomInput(2)
    first, second = SymbolicModel(x, x + 1), SymbolicModel(x, x - 1)
    path = symgraph.save(first, tmp_path / name)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        symgraph.save(second, path)
    assert symgraph.load(path)(10) == 11
    assert symgraph.save(second, path, overwrite=True) == path
    assert symgraph.load(path)(10) == 9
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("name", ["plain", "plain.zip"])
def test_overwrite_refuses_a_directory_that_is_not_a_saved_model(name: str, tmp_path: Path) -> None:
    x = CustomInput(2)
    model = SymbolicModel(x, x + 1)
    target = tmp_path / name
    (target / "sub").mkdir(parents=True)
    (target / "precious.txt").write_text("keep me")
    (target / "sub" / "spec.json").write_text("{}")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError):
            symgraph.save(model, target, overwrite=overwrite)
    assert (target / "precious.txt").read_text() == "keep me"
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == [
        "precious.txt",
        "sub",
        "sub/spec.json",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


# -- allow= ---------------------------------------------------------------------------
@pytest.mark.parametrize("route", ROUTES)
def test_functions_of_a_helper_module_need_allow(route: str, tmp_path: Path, helper_module: ModuleType) -> None:
    values, word = CustomInput([1, 2]), CustomInput(5)
    model = SymbolicModel(
        (values, word),
        (add_to_graph(helper_module.scale, values, factor=3), add_to_graph(helper_module.label, word, prefix="#")),
    )
    spec = model.to_spec()
    reference = f"{helper_module.__name__}:scale"
    assert spec["steps"][0]["func"] == {"$object": reference}
    with pytest.raises(SpecError) as info:
        reload(model, route, tmp_path)
    message = str(info.value)
    assert reference in message and "allow=" in message
    for allow in ([helper_module.scale, helper_module.label], [helper_module]):
        loaded = reload(model, route, tmp_path / f"allow{len(allow)}", allow=allow)
        for data in (([4, 5, 6], 0), ([], -1)):
            expected = (helper_module.scale(data[0], factor=3), helper_module.label(data[1], prefix="#"))
            assert loaded(*data) == model(*data) == expected
    # Permitting one function does not permit its neighbour.
    with pytest.raises(SpecError, match=f"{helper_module.__name__}:label"):
        reload(model, route, tmp_path / "one", allow=[helper_module.scale])
