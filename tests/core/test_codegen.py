"""Code generation and execution: generated replay vs. the interpreter vs. Python.

Every graph here is built by running a plain Python function on symbolic values;
running the same function on concrete values is the oracle for the model.
"""

from __future__ import annotations

import io
import operator
import re
import sys
import tokenize
import traceback
import types
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import symgraph
import symgraph._compile
import symgraph.plugin
from symgraph._templates import MAX_DEPTH


def direct_call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The eager counterpart of ``symgraph.add_to_graph``."""
    return func(*args, **kwargs)


def assert_only_generated_names(model: symgraph.SymbolicModel) -> None:
    """The source holds our names, int literals and operators; no string or comment."""
    source = model.source
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        assert tok.type not in (tokenize.STRING, tokenize.COMMENT), tok
        if tok.type == tokenize.NAME:
            allowed = ("def", "del", "return", "replay", "abs", "getattr", "None", "True", "False")
            assert tok.string in allowed or re.fullmatch(r"[vc]\d+", tok.string), tok
    # One line per step, plus the signature, the return and the `del` lines that
    # release dead values: nothing was spliced in.
    lines = source.splitlines()
    deletions = [line for line in lines if line.startswith("    del ")]
    assert all(re.fullmatch(r"    del v\d+(, v\d+)*", line) for line in deletions)
    assert len(lines) == len(model.plan.steps) + 2 + len(deletions)


def check_model(model: symgraph.SymbolicModel, direct: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Generated replay and interpreter both equal the direct evaluation."""
    expected = direct(*args, **kwargs)
    assert model(*args, **kwargs) == expected
    assert model.interpret(*args, **kwargs) == expected
    return expected


# -- hand-written graphs ------------------------------------------------------------


def set_algebra(call: Any, a: Any, b: Any) -> tuple[Any, ...]:
    return (
        (a | b) - {1},
        a & b,
        a ^ b,
        {5} | a,  # reflected, constant on the left
        {1, 2} - b,
        (a & {2, 3, 9}) ^ b,
        call(sorted, a - b),
    )


def test_sets_generated_code_matches_interpreter_and_python() -> None:
    a, b = symgraph.CustomInput({1, 2, 3}), symgraph.CustomInput({3, 4})
    model = symgraph.SymbolicModel((a, b), set_algebra(symgraph.add_to_graph, a, b))
    assert_only_generated_names(model)
    for x, y in (({1, 2, 3}, {3, 4}), ({1, 5, 9}, {9, 2}), (set(), {1}), (frozenset({2, 7}), {7, 8, 1})):
        check_model(model, lambda p, q: set_algebra(direct_call, p, q), x, y)


def string_chain(call: Any, s: Any) -> tuple[Any, ...]:
    head, sep, tail = s.partition(",")
    words = s.strip().upper().replace("A", "-").split(",")
    return (
        words,
        call(" | ".join, words),
        (s * 2)[::-1],
        "<" + s.title() + ">",
        call(len, s) + s.count("a"),
        tail + sep + head,
        s.startswith("a"),
    )


def test_strings_with_method_chains() -> None:
    s = symgraph.CustomInput(" alpha,beta ")
    model = symgraph.SymbolicModel(s, string_chain(symgraph.add_to_graph, s))
    assert_only_generated_names(model)
    for value in (" alpha,beta ", "banana", "a,b,c", "", "quote ' and \" and \\ here, # too"):
        check_model(model, lambda v: string_chain(direct_call, v), value)


def dict_graph(call: Any, prices: Any, qty: Any) -> dict[str, Any]:
    first, second = prices  # iterating a dict gives its keys
    return {
        "total": call(sum, prices.values()) * qty,
        "names": call(sorted, prices),
        "first": first,
        "second_price": prices[second],
        "apple": prices.get("apple", 0) * qty,
    }


def test_dict_inputs_and_outputs() -> None:
    prices, qty = symgraph.CustomInput({"apple": 3, "pear": 5}), symgraph.CustomInput(2)
    model = symgraph.SymbolicModel({"prices": prices, "qty": qty}, dict_graph(symgraph.add_to_graph, prices, qty))
    assert_only_generated_names(model)

    def direct(prices: dict[str, int], qty: int) -> dict[str, Any]:
        return dict_graph(direct_call, prices, qty)

    check_model(model, direct, prices={"fig": 4, "apple": 7}, qty=3)
    check_model(model, direct, qty=-1, prices={"kiwi": 2, "plum": 9})
    with pytest.raises(TypeError):
        model({"a": 1, "b": 2}, 3)  # a dict of inputs makes keyword arguments


def test_list_unpacking() -> None:
    def graph(lst: Any) -> list[Any]:
        first, second, third = lst
        return [third, first + second, second * 2]

    lst = symgraph.CustomInput([1, 2, 3])
    model = symgraph.SymbolicModel(lst, graph(lst))
    assert_only_generated_names(model)
    for value in ([4, 5, 6], ["a", "b", "c"], [[1], [2], [3]], (7, 8, 9)):
        check_model(model, graph, value)


def test_operand_precedence_of_literals() -> None:
    # Negative ints are literals in the source; precedence must not change meaning.
    def graph(x: Any) -> tuple[Any, ...]:
        return ((-2) ** x, x ** (-1), 2**x, -(x**2), 3 - -x, -3 // x, (x - 1) * -4, ~x, abs(-x))

    x = symgraph.CustomInput(3)
    model = symgraph.SymbolicModel(x, graph(x))
    for value in (3, 2, 5, -1):
        check_model(model, graph, value)


# -- no user string becomes code ----------------------------------------------------


def hostile_strings(sentinel: Path) -> list[str]:
    run = f"__import__('os').system('touch {sentinel}')"
    touch = f"__import__('pathlib').Path({str(sentinel)!r}).touch()"
    return [
        run,
        touch,
        f"'); {run}; ('",
        f'"); {touch}; ("',
        f'"""\n{run}\n"""',
        f"'''\n{touch}\n'''",
        f"x\n    {touch}\n#",
        f"# {run}",
        f"\\\n{touch}",
        f"v0)\n    {touch}\n    (v0",
        f"}}; {run}; {{",
        f"a' + {touch} + '",
    ]


@pytest.fixture
def sentinel(tmp_path: Path) -> Path:
    return tmp_path / "pwned"


def assert_safe(model: symgraph.SymbolicModel, hostile: str, sentinel: Path) -> None:
    assert hostile not in model.source
    assert "__import__" not in model.source
    assert_only_generated_names(model)
    assert not sentinel.exists()


def keyword_echo(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
    return args, kwargs


class Echo:
    """Answers any attribute name with the name and a tag."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def __getattr__(self, name: str) -> tuple[str, str]:
        return self.tag, name


def test_hostile_custom_names(sentinel: Path) -> None:
    for hostile in hostile_strings(sentinel):
        x = symgraph.CustomInput(3, custom_name=hostile)
        y = symgraph.add_to_graph(operator.add, x, 1, custom_name=hostile)
        model = symgraph.SymbolicModel(x, y * 2)
        assert model.plan.inputs[0].name == hostile
        assert model.plan.steps[0].name == hostile
        lines: list[str] = []
        model.summary(print_fn=lines.append)
        assert_safe(model, hostile, sentinel)
        check_model(model, lambda v: (v + 1) * 2, 20)
        assert not sentinel.exists()


def test_hostile_attribute_names(sentinel: Path) -> None:
    for hostile in hostile_strings(sentinel):
        # Names starting with "_" are never recorded through attribute syntax (by
        # design), so that path gets a prefixed name; getattr() takes the raw one.
        prefixed = "a" + hostile
        ns = types.SimpleNamespace()
        setattr(ns, hostile, 1)
        setattr(ns, prefixed, 10)
        x = symgraph.CustomInput(ns)
        echo = symgraph.CustomInput(Echo("trace"))
        out = (getattr(x, prefixed) + symgraph.add_to_graph(getattr, x, hostile), getattr(echo, prefixed))
        model = symgraph.SymbolicModel((x, echo), out)
        assert_safe(model, hostile, sentinel)
        fresh = types.SimpleNamespace()
        setattr(fresh, hostile, 5)
        setattr(fresh, prefixed, 100)
        assert check_model(
            model,
            lambda n, e, p=prefixed, h=hostile: (getattr(n, p) + getattr(n, h), getattr(e, p)),
            fresh,
            Echo("replay"),
        ) == (
            105,
            ("replay", prefixed),
        )
        assert not sentinel.exists()


def test_hostile_dict_keys_in_arguments(sentinel: Path) -> None:
    for hostile in hostile_strings(sentinel):

        def graph(call: Any, x: Any, hostile: str = hostile) -> Any:
            # Keys of dicts holding symbolic values (templates), of constant dicts, and nested.
            return call(keyword_echo, {hostile: x, "plain": 1}, {hostile: 2}, [{hostile: [x, {hostile: x}]}])

        x = symgraph.CustomInput(1)
        model = symgraph.SymbolicModel(x, graph(symgraph.add_to_graph, x))
        assert_safe(model, hostile, sentinel)
        check_model(model, lambda v: graph(direct_call, v), 42)
        assert not sentinel.exists()


def test_hostile_keyword_argument_names(sentinel: Path) -> None:
    for hostile in hostile_strings(sentinel):

        def graph(call: Any, x: Any, hostile: str = hostile) -> tuple[Any, ...]:
            return (
                call(keyword_echo, x, **{hostile: 1}),  # constant keyword arguments
                call(keyword_echo, x, **{hostile: x, "other": [x]}),  # symbolic ones
            )

        x = symgraph.CustomInput(1)
        model = symgraph.SymbolicModel(x, graph(symgraph.add_to_graph, x))
        assert_safe(model, hostile, sentinel)
        assert check_model(model, lambda v: graph(direct_call, v), 7)[1] == ((7,), {hostile: 7, "other": [7]})
        assert not sentinel.exists()


def test_hostile_model_dict_inputs_and_outputs(sentinel: Path) -> None:
    for hostile in hostile_strings(sentinel):
        x, y = symgraph.CustomInput(1), symgraph.CustomInput(2)
        model = symgraph.SymbolicModel({hostile: x, "y": y}, {hostile: x - y, "sum": x + y})
        assert_safe(model, hostile, sentinel)
        check_model(
            model, lambda h=hostile, **kw: {h: kw[h] - kw["y"], "sum": kw[h] + kw["y"]}, **{hostile: 10, "y": 3}
        )
        model.add_output(x * y, key=hostile + "!")
        assert_safe(model, hostile + "!", sentinel)
        assert model(**{hostile: 4, "y": 5}) == {hostile: -1, "sum": 9, hostile + "!": 20}
        assert not sentinel.exists()


def test_hostile_constants(sentinel: Path) -> None:
    for hostile in hostile_strings(sentinel):

        def graph(call: Any, s: Any, d: Any, hostile: str = hostile) -> tuple[Any, ...]:
            return (s + hostile, hostile + s, d[hostile], call(str.replace, s, "x", hostile), s.split(hostile))

        s, d = symgraph.CustomInput("x"), symgraph.CustomInput({hostile: 1})
        model = symgraph.SymbolicModel((s, d), graph(symgraph.add_to_graph, s, d))
        assert_safe(model, hostile, sentinel)
        check_model(model, lambda a, b: graph(direct_call, a, b), "axb" + hostile + "c", {hostile: "value"})
        assert not sentinel.exists()


# -- tracebacks ---------------------------------------------------------------------


def fragile(value: int) -> int:
    if value < 0:
        raise ValueError(f"negative value {value}")
    return value * 10


def test_traceback_shows_the_generated_line() -> None:
    def graph(call: Any, x: Any) -> Any:
        a = x + 1
        b = a * 3
        c = call(fragile, b)
        return abs(c - 1) + a

    x = symgraph.CustomInput(1)  # fragile() succeeds while recording
    model = symgraph.SymbolicModel(x, graph(symgraph.add_to_graph, x))
    check_model(model, lambda v: graph(direct_call, v), 4)

    (call_step,) = [j for j, step in enumerate(model.plan.steps) if isinstance(step.op, symgraph.plugin.Call)]
    line_number = symgraph.plugin.generate(model.plan).lines[call_step]
    line = model.source.splitlines()[line_number - 1].strip()
    assert "(" in line and line.startswith("v")

    with pytest.raises(ValueError) as direct:
        graph(direct_call, -5)
    with pytest.raises(ValueError) as replayed:
        model(-5)
    assert str(replayed.value) == str(direct.value) == "negative value -12"
    text = "".join(traceback.format_exception(replayed.value))
    assert f", line {line_number}, in replay\n    {line}\n" in text
    # The frame of the wrapped function comes right after the generated one.
    assert text.index(line) < text.index("in fragile")


# -- compilation happens once -------------------------------------------------------


def test_source_is_compiled_once(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[str] = []
    real_compile = compile

    def counting_compile(source: Any, filename: str, mode: str, *args: Any, **kwargs: Any) -> Any:
        compiled.append(filename)
        return real_compile(source, filename, mode, *args, **kwargs)

    # Module globals shadow builtins, so this catches every compilation of generated code.
    monkeypatch.setattr(symgraph._compile, "compile", counting_compile, raising=False)

    def graph(x: Any) -> Any:
        return (x * 2 + 1) % 7

    x = symgraph.CustomInput(3)
    model = symgraph.SymbolicModel(x, graph(x))
    assert len(compiled) == 1  # the hook sees compilations
    replay = model._program.runner
    for value in range(200):
        check_model(model, graph, value)
    assert len(compiled) == 1
    assert model._program.runner is replay
    model.add_output(x - 1)  # a changed model is recompiled, once
    assert len(compiled) == 2
    assert model(10) == (0, 9)
    assert len(compiled) == 2


# -- lifetime of runtime values -----------------------------------------------------

CREATED: list[weakref.ref[Box]] = []


class Box:
    """A weak-referenceable value; every instance is registered in CREATED."""

    __slots__ = ("__weakref__", "n")

    def __init__(self, n: int) -> None:
        self.n = n
        CREATED.append(weakref.ref(self))

    def __add__(self, other: Any) -> Box:
        return Box(self.n + (other.n if isinstance(other, Box) else other))

    def __mul__(self, other: Any) -> Box:
        return Box(self.n * (other.n if isinstance(other, Box) else other))


def alive() -> list[Box]:
    return [box for box in (r() for r in CREATED) if box is not None]


def combine_boxes(items: list[Any], scale: Box) -> Box:
    return Box((items[0].n + items[1]["k"].n) * scale.n)


def nested_graph(call: Any, x: Any) -> Any:
    a, b, c = x + 1, x * 2, x + 3
    return call(combine_boxes, [a, {"k": b}], scale=c) + 0


def test_replay_releases_intermediate_values() -> None:
    def chain(x: Any) -> Any:
        return ((x + 1) * 2 + 3) * (x + 4)

    for graph in (chain, lambda x: nested_graph(symgraph.add_to_graph, x)):
        x = symgraph.CustomInput(Box(1))
        model = symgraph.SymbolicModel(x, graph(x))
        eager = graph if graph is chain else (lambda v: nested_graph(direct_call, v))
        for run in (model, model.interpret):
            inp = Box(5)
            CREATED.clear()
            expected = eager(inp).n
            n_created = len(CREATED)
            assert n_created >= 4
            CREATED.clear()
            out = run(inp)
            assert out.n == expected
            assert len(CREATED) == n_created  # the replay made the same values as Python
            assert alive() == [out]  # no intermediate survives the call, without gc
            del out
            assert alive() == []


def test_variables_are_reused_during_replay() -> None:
    seen: list[list[int]] = []

    def probe(box: Box) -> Box:
        seen.append([b.n for b in alive()])
        return box

    def graph(call: Any, x: Any) -> Any:
        y = x
        for k in range(1, 6):
            y = y + k
        z = call(probe, y)  # x + 15
        a, b = z + 1, z * 2
        return call(probe, a * b) + 1

    x = symgraph.CustomInput(Box(0))
    model = symgraph.SymbolicModel(x, graph(symgraph.add_to_graph, x))
    expected = graph(direct_call, Box(100)).n
    CREATED.clear()
    seen.clear()
    inp = Box(100)
    assert model(inp).n == expected
    first, second = seen
    # The chain's intermediates (101, 103, 106, 110) were released as it went: only
    # the caller's input and the probed value are alive at the first probe.
    assert first == [100, 115]
    # z is dead by the second probe; the probed value is alive.
    assert 115 not in second and 116 * 230 in second
    assert len(set(re.findall(r"\bv\d+\b", model.source))) <= 3


def test_long_chains_use_few_variables() -> None:
    x = symgraph.CustomInput(1)
    y = x
    for _ in range(1000):
        y = y + 1
    model = symgraph.SymbolicModel(x, y)
    assert set(re.findall(r"\bv\d+\b", model.source)) == {"v0"}
    assert model(5) == 1005
    # A ladder: every step needs the two values before it, so three names suffice.
    a, b = symgraph.CustomInput(0), symgraph.CustomInput(1)
    p, q = a, b
    for _ in range(500):
        p, q = q, p + q
    model = symgraph.SymbolicModel((a, b), q)
    assert len(set(re.findall(r"\bv\d+\b", model.source))) <= 3
    p, q = 0, 1
    for _ in range(500):
        p, q = q, p + q
    assert model(0, 1) == model.interpret(0, 1) == q


# -- long graphs need no recursion --------------------------------------------------


def increment(value: int, step: int = 1) -> int:
    return value + step


@pytest.mark.parametrize("via_add_to_graph", [False, True], ids=["operator", "add_to_graph"])
def test_100k_node_chain_without_recursion(via_add_to_graph: bool) -> None:
    n = 100_000
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(250)  # a recursive walk over the chain would need n frames
    try:
        x = symgraph.CustomInput(0)
        y = x
        if via_add_to_graph:
            for _ in range(n):
                y = symgraph.add_to_graph(increment, y, step=1)
        else:
            for _ in range(n):
                y = y + 1
        model = symgraph.SymbolicModel(x, y)
        assert len(model.plan.steps) == n
        assert model(5) == n + 5
        assert model.interpret(-3) == n - 3
    finally:
        sys.setrecursionlimit(limit)


# -- template depth -----------------------------------------------------------------


def nest(obj: Any, depth: int) -> Any:
    """Wrap ``obj`` in ``depth`` containers, cycling through list, dict and tuple."""
    for level in range(depth):
        obj = [obj] if level % 3 == 0 else {"k": obj} if level % 3 == 1 else (obj,)
    return obj


def unnest(obj: Any, depth: int) -> Any:
    for level in reversed(range(depth)):
        obj = obj[0] if level % 3 != 1 else obj["k"]
    return obj


def test_templates_up_to_max_depth_replay() -> None:
    x = symgraph.CustomInput(7)
    y = symgraph.add_to_graph(unnest, nest(x, MAX_DEPTH), MAX_DEPTH)
    model = symgraph.SymbolicModel(x, y * 2)
    assert model.source.count("[") >= MAX_DEPTH // 3
    check_model(model, lambda v: unnest(nest(v, MAX_DEPTH), MAX_DEPTH) * 2, 21)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 2, 5 * MAX_DEPTH])
def test_templates_deeper_than_max_depth_are_refused(depth: int) -> None:
    x = symgraph.CustomInput([1])
    attempts = [
        lambda: symgraph.add_to_graph(unnest, nest(x, depth), depth),
        lambda: symgraph.add_to_graph(keyword_echo, x, key=nest(x, depth)),
        lambda: x + nest(x, depth),
    ]
    for attempt in attempts:
        with pytest.raises(symgraph.TraceError) as info:
            attempt()
        assert str(MAX_DEPTH) in str(info.value)
        assert "nest" in str(info.value)
        assert x.children == ()


def test_self_containing_arguments_are_refused() -> None:
    x = symgraph.CustomInput(1)
    loop: list[Any] = [x]
    loop.append(loop)
    with pytest.raises(symgraph.TraceError):
        symgraph.add_to_graph(len, loop)
    assert x.children == ()


def test_deep_or_self_containing_constants_are_one_constant() -> None:
    x = symgraph.CustomInput(1)
    deep = nest(5, 5 * MAX_DEPTH)
    loop: list[Any] = [1]
    loop.append(loop)
    y = symgraph.add_to_graph(lambda items, v: unnest(items, 5 * MAX_DEPTH) + v, deep, x)
    z = symgraph.add_to_graph(lambda items, v: items[0] + v, loop, x)
    model = symgraph.SymbolicModel(x, (y, z))
    check_model(model, lambda v: (unnest(deep, 5 * MAX_DEPTH) + v, loop[0] + v), 10)


def test_dead_values_are_released_even_when_their_name_is_not_reused() -> None:
    seen: list[list[int]] = []

    def probe(box: Box) -> Box:
        seen.append(sorted(b.n for b in alive()))
        return box

    def graph(call: Any, x: Any) -> Any:
        a, b = x + 1, x + 2  # both die at the next step, which can reuse only one name
        return call(probe, (a + b) * 10) * 2

    x = symgraph.CustomInput(Box(0))
    model = symgraph.SymbolicModel(x, graph(symgraph.add_to_graph, x))
    assert "del " in model.source
    expected = graph(direct_call, Box(100)).n
    CREATED.clear()
    seen.clear()
    inp = Box(100)
    assert model(inp).n == expected
    assert seen == [[100, 2030]]  # neither 101, 102 nor their sum 203 is alive at the probe


def test_method_calls_are_one_step_looked_up_on_the_value_at_replay() -> None:
    # A MethodCall is emitted as getattr(value, name)(...): the name stays a
    # constant, and a value of another type with the same method works.
    text = symgraph.CustomInput("a-b-c")
    collector = symgraph.plugin.ArgumentCollector(text)
    sep = symgraph.CustomInput("-")
    collector.leaf(sep)
    op = symgraph.plugin.MethodCall(
        "split", [symgraph.plugin.Ref(1)], symgraph.plugin.DictT(["maxsplit"], [symgraph.plugin.Const(1)])
    )
    parts = collector.record(op)
    assert parts.v == ["a", "b-c"]
    model = symgraph.SymbolicModel((text, sep), parts)
    assert_only_generated_names(model)
    assert "getattr(v0, c0)(v1, **{c1: 1})" in model.source
    for args in [("x/y/z", "/"), (b"p.q.r", b".")]:
        expected = args[0].split(args[1], maxsplit=1)
        assert model(*args) == model.interpret(*args) == expected
    assert model.plan.steps[0].name == "wrap(split)_1"
    with pytest.raises(TypeError, match="kwargs must be"):
        symgraph.plugin.MethodCall("split", [], symgraph.plugin.Ref(0))


def test_elementwise_equality_operators_are_in_the_fixed_table() -> None:
    # == and != are table operators, written from the table like the others.
    x = symgraph.CustomInput(3)
    collector = symgraph.plugin.ArgumentCollector(x)
    eq = collector.record(symgraph.plugin.Operator("==", [symgraph.plugin.Ref(0), symgraph.plugin.Const(3)]))
    ne = symgraph.plugin.ArgumentCollector(x).record(
        symgraph.plugin.Operator("!=", [symgraph.plugin.Ref(0), symgraph.plugin.Const(3)])
    )
    model = symgraph.SymbolicModel(x, (eq, ne))
    assert "v0 == 3" in model.source and "!= 3" in model.source
    for value in (3, 4):
        assert model(value) == model.interpret(value) == (value == 3, value != 3)
    # The handle records them too, even x == x (NaN is not equal to itself).
    same, other = x == x, x != 3
    model = symgraph.SymbolicModel(x, (same, other))
    assert model(float("nan")) == (False, True) and model(3) == (True, False)


# -- releasing values in a plan written in pieces ------------------------------------


def probed(call: Any, x: Any, probe: Callable[[Box], Box]) -> Any:
    a, b = x + 1, x + 2
    c = a * b
    d = call(probe, c + 1)  # a, b and c are dead here
    e = d + 1000
    f = call(probe, e * 2)  # d and e are dead here
    g = call(probe, f + x)  # x is still needed below
    return call(probe, g + x) + 0


@pytest.mark.parametrize("size", [1, 2, 3])
def test_values_are_released_at_their_last_use_across_pieces(
    pieces: Callable[[int], None], no_collection: None, size: int
) -> None:
    seen: list[list[int]] = []

    def probe(box: Box) -> Box:
        seen.append(sorted(b.n for b in alive()))
        return box

    def run(model: symgraph.SymbolicModel) -> tuple[int, list[list[int]]]:
        CREATED.clear()
        seen.clear()
        inp = Box(10)
        out = model(inp)
        result = (out.n, list(seen))
        assert sorted(b.n for b in alive()) == sorted(
            {10, out.n}
        )  # nothing else survives the call, without a collection
        return result

    x = symgraph.CustomInput(Box(0))
    model = symgraph.SymbolicModel(x, probed(symgraph.add_to_graph, x, probe))
    expected = run(model)  # one function: released as hand-written code releases them
    assert expected[1] == [[10, 133], [10, 2266], [10, 2276], [10, 2286]]
    pieces(size)
    pieced = symgraph.SymbolicModel(x, probed(symgraph.add_to_graph, x, probe))
    assert symgraph.plugin.generate(pieced.plan).pieces
    assert run(pieced) == expected
