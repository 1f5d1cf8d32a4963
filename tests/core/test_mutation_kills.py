"""Tests that kill code-generation and model mutations the rest of the core tier let through.

Each test builds a model, replays it, and compares the generated replay and the
reference interpreter with the same function evaluated directly in Python.
"""

from __future__ import annotations

import copy
import enum
import functools
import math
import pickle
import struct
from pathlib import Path
from typing import Any

import pytest

import symgraph
import symgraph.plugin
from symgraph import CustomInput, SymbolicModel, add_to_graph
from symgraph.plugin import Const, Ref


def same(a: Any, b: Any) -> bool:
    """Equal values of the same type; floats compare bitwise (so -0.0 differs from 0.0), NaN equals NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or struct.pack("<d", a) == struct.pack("<d", b)
    return bool(a == b)


def replay_and_interpret(model: SymbolicModel, *args: Any, **kwargs: Any) -> list[Any]:
    return [model(*args, **kwargs), model.interpret(*args, **kwargs)]


# -- MethodCall: positional arguments keep their order ---------------------------------


def test_method_call_positional_arguments_keep_their_order() -> None:
    text, old, new = CustomInput("a-b-a"), CustomInput("a"), CustomInput("X")
    collector = symgraph.plugin.ArgumentCollector(text)
    collector.leaf(old)
    collector.leaf(new)
    # str.replace(old, new, count): three positional arguments, symbolic and constant.
    replaced = collector.record(symgraph.plugin.MethodCall("replace", [Ref(1), Ref(2), Const(1)], Const({})))
    assert replaced.v == "a-b-a".replace("a", "X", 1)
    # Two constant positional arguments: str.find(sub, start).
    found = symgraph.plugin.record(symgraph.plugin.MethodCall("find", [Const("a"), Const(1)], Const({})), (text.node,))
    model = SymbolicModel((text, old, new), (replaced, found))
    for args in (("a-b-a", "a", "X"), ("xyzy", "y", "Q"), ("banana", "an", "")):
        expected = (args[0].replace(args[1], args[2], 1), args[0].find("a", 1))
        for result in replay_and_interpret(model, *args):
            assert result == expected


# -- pickles and copies keep check_inputs ------------------------------------------------


class Meters:
    """A value type with a backend whose input check refuses negative lengths."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __add__(self, other: Any) -> Meters:
        return Meters(self.n + (other.n if isinstance(other, Meters) else other))


def check_meters(name: str, value: Any) -> None:
    if not isinstance(value, Meters) or value.n < 0:
        raise ValueError(f"{name} must be a non-negative Meters")


class SymbolicMeters(symgraph.SymbolicData):
    __slots__ = ()


class MetersBackend(symgraph.plugin.Backend):
    name = "meters"
    types = (Meters,)
    symbolic_class = SymbolicMeters

    def input_checker(self, node_value: Any, name: str) -> Any:
        return functools.partial(check_meters, name)  # picklable, so models with it pickle


def test_pickles_and_copies_keep_check_inputs(isolated_registry: None) -> None:
    symgraph.plugin.register_backend(MetersBackend())
    x = CustomInput(Meters(1))
    assert isinstance(x, SymbolicMeters)
    out = x + 1
    for check in (True, False):
        model = SymbolicModel(x, out, check_inputs=check)
        clones = [model, pickle.loads(pickle.dumps(model)), copy.deepcopy(model), copy.copy(model)]
        for clone in clones:
            assert clone.check_inputs is check
            assert [r.n for r in replay_and_interpret(clone, Meters(2))] == [3, 3]
            if check:
                for run in (clone, clone.interpret):
                    with pytest.raises(ValueError, match="non-negative"):
                        run(Meters(-5))
            else:
                assert [r.n for r in replay_and_interpret(clone, Meters(-5))] == [-4, -4]


# -- dicts keep their key order ------------------------------------------------------------


def keyword_echo(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
    return args, kwargs


def test_dict_outputs_and_dict_arguments_keep_key_order() -> None:
    a, b = CustomInput(1), CustomInput(2)
    model = SymbolicModel((a, b), {"z": a + b, "a": a - b, "m": a * b})
    for result in replay_and_interpret(model, 5, 3):
        assert list(result.items()) == [("z", 8), ("a", 2), ("m", 15)]

    def graph(call: Any, p: Any, q: Any) -> Any:
        # A dict argument and keyword arguments, both holding symbolic values.
        return call(keyword_echo, {"z": p, "a": 1, "m": q}, z=q, a=p, m=[p])

    model = SymbolicModel((a, b), graph(add_to_graph, a, b))
    expected = graph(lambda f, *args, **kwargs: f(*args, **kwargs), 5, 3)
    for result in replay_and_interpret(model, 5, 3):
        assert repr(result) == repr(expected)  # repr shows the key order; == would not


# -- constants that are not plain ints or simple floats ------------------------------------


class Color(enum.IntEnum):
    RED = 1


def describe(value: int, constant: int) -> tuple[str, int]:
    return type(constant).__name__, value + constant


def test_int_subclass_constants_are_passed_as_the_objects(tmp_path: Path) -> None:
    sentinel = tmp_path / "pwned"

    class Hostile(int):
        # If the constant's repr were written into the source, the replay would
        # touch the sentinel and pass 999 instead of this object.
        def __repr__(self) -> str:
            return f"(__import__('pathlib').Path({str(sentinel)!r}).touch() or 999)"

    hostile, red = Hostile(5), Color.RED
    x = CustomInput(10)

    def graph(call: Any, v: Any) -> tuple[Any, ...]:
        return (call(describe, v, hostile), call(describe, v, red), v + hostile, v * True, v - False)

    model = SymbolicModel(x, graph(add_to_graph, x))
    assert "999" not in model.source and "pathlib" not in model.source and "Color" not in model.source
    for value in (10, -4):
        expected = graph(lambda f, *args: f(*args), value)
        for result in replay_and_interpret(model, value):
            assert same(result, expected)
    assert not sentinel.exists()


SPECIAL_FLOATS = (0.0, -0.0, math.inf, -math.inf, math.nan, 1e308, 5e-324, -2.5, 0.1)


def float_graph(x: Any) -> tuple[Any, ...]:
    return (
        *(x * c for c in SPECIAL_FLOATS),
        *(c - x for c in SPECIAL_FLOATS),
        (-2.5) ** x,
        (-0.5) ** x,
    )


def test_special_float_constants_replay_bit_for_bit() -> None:
    # inf and nan have no literal; 0.0 and -0.0 are equal but must stay distinct;
    # negative floats on the left of ** keep their parentheses.
    x = CustomInput(1.0)
    model = SymbolicModel(x, float_graph(x))
    for value in (1.0, -3.0, 2.0, 0.0, -0.0):
        expected = float_graph(value)
        for result in replay_and_interpret(model, value):
            assert same(result, expected), (value, result, expected)


# -- unused inputs that are outputs are never overwritten ----------------------------------


def test_an_unused_input_that_is_an_output_keeps_its_value() -> None:
    # b feeds no step but is returned, so its variable must never be reused; the
    # two steps here need more names than the dead inputs free up.
    for order in ("ab", "ba", "abc", "cab"):
        a, b, c = CustomInput(1), CustomInput(2), CustomInput(3)
        y = a + 1
        z = y * 2
        inputs = tuple({"a": a, "b": b, "c": c}[k] for k in order)
        model = SymbolicModel(inputs, (y, z, b, a))
        values = {"a": 10, "b": 20, "c": 30}
        args = [values[k] for k in order]
        for result in replay_and_interpret(model, *args):
            assert result == (11, 22, 20, 10), (order, model.source)
