"""The conformance suite: the same contract, checked for every backend.

Each backend case supplies example values, an equality oracle and a reduction
function; every test below runs once per backend. A case whose library is not
installed is skipped.
"""

from __future__ import annotations

import importlib
import pickle
import random
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import symgraph
import symgraph.plugin
from symgraph import CustomInput, SymbolicModel, add_to_graph


class Vector:
    """A small pure-Python numeric vector: the generic backend's test value."""

    def __init__(self, items):
        self.items = list(items)

    def _zip(self, other, fn):
        other_items = other.items if isinstance(other, Vector) else [other] * len(self.items)
        return Vector(fn(a, b) for a, b in zip(self.items, other_items, strict=True))

    def __add__(self, other):
        return self._zip(other, lambda a, b: a + b)

    __radd__ = __add__

    def __sub__(self, other):
        return self._zip(other, lambda a, b: a - b)

    def __mul__(self, other):
        return self._zip(other, lambda a, b: a * b)

    __rmul__ = __mul__

    def __neg__(self):
        return Vector(-a for a in self.items)

    def __abs__(self):
        return Vector(abs(a) for a in self.items)

    def __getitem__(self, index):
        got = self.items[index]
        return Vector(got) if isinstance(index, slice) else got

    def __len__(self):
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def __eq__(self, other):
        return isinstance(other, Vector) and self.items == other.items

    __hash__ = None


def _vector_sum(v):
    return sum(v.items)


@dataclass
class Case:
    name: str
    module: str | None
    make: Callable[[random.Random], Any]
    equal: Callable[[Any, Any], bool]
    reduce: Callable[[Any], Any]
    symbolic_class: Callable[[], type]


def _numpy_case() -> Case:
    np = importlib.import_module("numpy")
    return Case(
        "numpy",
        "numpy",
        lambda rng: np.array([rng.uniform(-5, 5) for _ in range(4)]),
        lambda a, b: np.array_equal(np.asarray(a), np.asarray(b)),
        np.sum,
        lambda: importlib.import_module("symgraph_numpy").SymbolicArray,
    )


def _torch_case() -> Case:
    torch = importlib.import_module("torch")
    return Case(
        "torch",
        "torch",
        lambda rng: torch.tensor([rng.uniform(-5, 5) for _ in range(4)], dtype=torch.float64),
        lambda a, b: bool(torch.equal(torch.as_tensor(a), torch.as_tensor(b))),
        torch.sum,
        lambda: importlib.import_module("symgraph_torch").SymbolicTensor,
    )


def _python_case() -> Case:
    return Case(
        "python",
        None,
        lambda rng: Vector(rng.uniform(-5, 5) for _ in range(4)),
        lambda a, b: a == b,
        _vector_sum,
        lambda: symgraph.plugin.symbolic_class_for(Vector),
    )


CASES = {"python": _python_case, "numpy": _numpy_case, "torch": _torch_case}


@pytest.fixture(params=list(CASES))
def case(request) -> Case:
    module = {"python": None, "numpy": "numpy", "torch": "torch"}[request.param]
    if module is not None:
        pytest.importorskip(module)
    return CASES[request.param]()


def _call(func, *args):
    return func(*args)


def _program(x, y, reduce, call):
    """The same operations on symbolic values (``call=add_to_graph``) or on real ones (``call=_call``)."""
    first, *_ = x
    return {
        "sum": x + y,
        "sub": x - y,
        "mul": x * y,
        "scaled": x * 2,
        "rscaled": 3 * y,
        "neg": -x,
        "abs": abs(y),
        "index": x[0],
        "slice": x[1:],
        "first": first,
        "chain": (x + y * 3) - x,
        "wrapped": call(reduce, x * y),
    }


def test_values_get_the_backend_class(case):
    rng = random.Random(0)
    x = CustomInput(case.make(rng))
    assert type(x) is case.symbolic_class()
    assert isinstance(x + x, case.symbolic_class())


def test_replay_equals_eager_and_interpreter(case):
    rng = random.Random(1)
    x, y = CustomInput(case.make(rng)), CustomInput(case.make(rng))
    model = SymbolicModel((x, y), _program(x, y, case.reduce, add_to_graph))
    for _ in range(5):
        a, b = case.make(rng), case.make(rng)
        expected = _program(a, b, case.reduce, _call)
        replayed = model(a, b)
        interpreted = model.interpret(a, b)
        assert replayed.keys() == expected.keys()
        for key in expected:
            assert case.equal(replayed[key], expected[key]), key
            assert case.equal(interpreted[key], expected[key]), key


def test_pickled_models_replay_the_same(case):
    rng = random.Random(2)
    x, y = CustomInput(case.make(rng)), CustomInput(case.make(rng))
    model = SymbolicModel({"x": x, "y": y}, {"out": add_to_graph(case.reduce, x * y - x)})
    clone = pickle.loads(pickle.dumps(model))
    a, b = case.make(rng), case.make(rng)
    assert case.equal(clone(x=a, y=b)["out"], case.reduce(a * b - a))


def test_summary_uses_the_backend_description(case):
    rng = random.Random(3)
    value = case.make(rng)
    x = CustomInput(value)
    model = SymbolicModel(x, x * 2)
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    assert symgraph.plugin.describe_value(value) in lines[0]
    backend = symgraph.plugin.backend_for(type(value))
    expected = backend.describe(value) if backend is not None else type(value).__name__
    assert symgraph.plugin.describe_value(value) == expected


def test_failed_steps_leave_no_node(case):
    rng = random.Random(4)
    x = CustomInput(case.make(rng))
    with pytest.raises(Exception):  # noqa: B017 - each backend raises its own error type
        x + "not addable"
    with pytest.raises(AttributeError):
        x.no_such_attribute  # noqa: B018
    assert x.children == ()


def test_the_plugin_loads_lazily_through_its_entry_point(case):
    if case.module is None:
        pytest.skip("the generic backend has no plugin")
    code = (
        f"import sys, {case.module}, symgraph, random\n"
        "from tests.conformance.test_conformance import CASES\n"
        f"assert 'symgraph_{case.module}' not in sys.modules\n"
        f"case = CASES[{case.name!r}]()\n"
        "x = symgraph.CustomInput(case.make(random.Random(0)))\n"
        "value = case.make(random.Random(1))\n"
        "assert case.equal(symgraph.SymbolicModel(x, x * 2 + 1)(value), value * 2 + 1)\n"
        f"print(type(x) is case.symbolic_class(), 'symgraph_{case.module}' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.split() == ["True", "True"]
