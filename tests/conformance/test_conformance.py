"""The conformance suite, run for every in-tree backend and for a third-party-style one.

Each class below subclasses :class:`symgraph.testing.BackendConformance` and
supplies example values, an equality oracle and a reduction function; pytest
runs every inherited check once per class. A class whose library is not
installed is skipped (``required_modules``), so this module itself imports
neither numpy nor torch.
"""

from __future__ import annotations

import importlib
import random

import pytest

import symgraph
import symgraph.plugin
from symgraph.plugin import (
    Backend,
    CheckCodec,
    SymbolicData,
    register_backend,
    register_check_codec,
    restore_registry,
    snapshot_registry,
)
from symgraph.testing import BackendConformance


class Vector:
    """A small pure-Python numeric vector: the generic backend's test value."""

    def __init__(self, items):
        self.items = list(items)

    def _zip(self, other, fn):
        other_items = other.items if isinstance(other, Vector) else [other] * len(self.items)
        return type(self)(fn(a, b) for a, b in zip(self.items, other_items, strict=True))

    def __add__(self, other):
        return self._zip(other, lambda a, b: a + b)

    __radd__ = __add__

    def __sub__(self, other):
        return self._zip(other, lambda a, b: a - b)

    def __mul__(self, other):
        return self._zip(other, lambda a, b: a * b)

    __rmul__ = __mul__

    def __neg__(self):
        return type(self)(-a for a in self.items)

    def __abs__(self):
        return type(self)(abs(a) for a in self.items)

    def __getitem__(self, index):
        got = self.items[index]
        return type(self)(got) if isinstance(index, slice) else got

    def __len__(self):
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def __eq__(self, other):
        return type(other) is type(self) and self.items == other.items

    __hash__ = None


def _vector_sum(v):
    return sum(v.items)


class TestPythonBackend(BackendConformance):
    """Generic Python values: no plugin, the registry's generic handle class, no input checks."""

    reduce = staticmethod(_vector_sum)

    def make_value(self, rng):
        return Vector(rng.uniform(-5, 5) for _ in range(4))

    def expected_symbolic_class(self):
        return symgraph.plugin.symbolic_class_for(Vector)


class TestNumpyBackend(BackendConformance):
    """numpy arrays, wrapped by symgraph_numpy's SymbolicArray."""

    plugin_module = "symgraph_numpy"
    required_modules = ("numpy",)

    def make_value(self, rng):
        np = importlib.import_module("numpy")
        return np.array([rng.uniform(-5, 5) for _ in range(4)])

    def equal(self, actual, expected):
        np = importlib.import_module("numpy")
        return bool(np.array_equal(np.asarray(actual), np.asarray(expected)))

    def reduce(self, value):
        return importlib.import_module("numpy").sum(value)

    def expected_symbolic_class(self):
        return importlib.import_module("symgraph_numpy").SymbolicArray

    def make_unfit_value(self, rng):
        # A CustomInput fixes the rank and the dtype kind: a 2-D array does not fit.
        return importlib.import_module("numpy").zeros((2, 2))


class TestTorchBackend(BackendConformance):
    """torch tensors, wrapped by symgraph_torch's SymbolicTensor."""

    plugin_module = "symgraph_torch"
    required_modules = ("torch",)

    def make_value(self, rng):
        torch = importlib.import_module("torch")
        return torch.tensor([rng.uniform(-5, 5) for _ in range(4)], dtype=torch.float64)

    def equal(self, actual, expected):
        torch = importlib.import_module("torch")
        return bool(torch.equal(torch.as_tensor(actual), torch.as_tensor(expected)))

    def reduce(self, value):
        return importlib.import_module("torch").sum(value)

    def expected_symbolic_class(self):
        return importlib.import_module("symgraph_torch").SymbolicTensor

    def make_unfit_value(self, rng):
        # A CustomInput fixes the whole shape: a (2, 2) tensor does not fit a (4,) one.
        torch = importlib.import_module("torch")
        return torch.zeros(2, 2, dtype=torch.float64)


# -- a third-party-style backend: a value type and its plugin, registered at runtime ----------
class Samples(Vector):
    """A third party's value type: a fixed-length series of samples."""


class SymbolicSamples(SymbolicData):
    """The third party's handle class."""

    __slots__ = ()


class LengthCheck:
    """The third party's input check: a series of the example's length (a class, so that models pickle)."""

    def __init__(self, name, length):
        self.name, self.length = name, length

    def __call__(self, value):
        if not isinstance(value, Samples) or len(value) != self.length:
            raise symgraph.InputError(f"{self.name} expects Samples of length {self.length}, got {value!r}")


def _encode_length_check(check, ctx):
    return {"length": check.length}


def _decode_length_check(fields, name, ctx, where):
    if set(fields) != {"length"} or type(fields["length"]) is not int:
        raise symgraph.SpecError(f"{where}: a samples.length check has an int length")
    return LengthCheck(name, fields["length"])


# How symgraph.save stores the check: a third party registers it as the backend does.
register_check_codec(CheckCodec("samples.length", LengthCheck, _encode_length_check, _decode_length_check))


class SamplesBackend(Backend):
    name = "samples"
    types = (Samples,)
    symbolic_class = SymbolicSamples

    def describe(self, value):
        return f"Samples[{len(value)}]"

    def input_checker(self, node_value, name):
        return LengthCheck(name, len(node_value))


class TestThirdPartyStyleBackend(BackendConformance):
    """A backend as a third party writes one passes the suite by subclassing, its registration undone after."""

    @pytest.fixture(autouse=True)
    def registered_backend(self):
        saved = snapshot_registry()
        register_backend(SamplesBackend())
        yield
        restore_registry(saved)

    def make_value(self, rng):
        return Samples(rng.randint(-9, 9) for _ in range(5))

    def reduce(self, value):
        return max(value.items)

    def expected_symbolic_class(self):
        return SymbolicSamples

    def make_unfit_value(self, rng):
        return Samples([1, 2])


def test_the_third_party_backend_is_forgotten_outside_its_tests():
    assert symgraph.plugin.backend_for(Samples) is None
    assert type(symgraph.CustomInput(Samples([1]))) is not SymbolicSamples


def test_the_suite_notices_when_the_third_party_backend_is_missing():
    # Outside the class its fixture does not register the backend: the class and input checks must fail.
    suite = TestThirdPartyStyleBackend()
    with pytest.raises(AssertionError, match="expected SymbolicSamples"):
        suite.test_values_get_the_backend_class()
    with pytest.raises(pytest.fail.Exception, match="DID NOT RAISE"):
        suite.test_input_checks_reject_unfit_values()


def test_a_backend_that_breaks_the_contract_fails_the_suite():
    class Broken(TestPythonBackend):
        def reduce(self, value):
            return random.random()  # not what the replay recomputes

    with pytest.raises(AssertionError, match="output 'wrapped'"):
        Broken().test_replay_equals_eager_and_interpreter()
