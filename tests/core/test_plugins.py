"""The backend registry: runtime registration, generic classes, lazy entry points."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import types
from importlib import metadata

import pytest

import symgraph
import symgraph.plugin
from symgraph import _backends


def test_import_symgraph_imports_no_backend_library():
    code = (
        "import sys, symgraph\n"
        "x = symgraph.CustomInput({1}); symgraph.SymbolicModel(x, x | {2})({3})\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'torch', 'numpy', 'networkx', 'matplotlib', 'symgraph_torch', 'symgraph_numpy'})\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_generic_subclass_per_type_even_with_equal_names():
    first = type("Thing", (), {"__module__": "lib_one"})
    second = type("Thing", (), {"__module__": "lib_two"})
    a, b = symgraph.CustomInput(first()), symgraph.CustomInput(second())
    assert type(a) is not type(b)
    assert type(a).__name__ == type(b).__name__ == "SymbolicData[Thing]"
    assert type(symgraph.CustomInput(first())) is type(a)
    assert isinstance(a, symgraph.SymbolicData)


def test_runtime_registration_picks_the_plugin_class_for_subclasses_too(isolated_registry):
    class Money:
        def __init__(self, cents):
            self.cents = cents

        def __add__(self, other):
            return Money(self.cents + other.cents)

    class Euro(Money):
        pass

    class SymbolicMoney(symgraph.SymbolicData):
        __slots__ = ()

    class MoneyBackend(symgraph.plugin.Backend):
        name = "money"
        types = (Money,)
        symbolic_class = SymbolicMoney

        def describe(self, value):
            return f"{value.cents} cents"

    before = symgraph.CustomInput(Money(1))
    assert not isinstance(before, SymbolicMoney)
    backend = MoneyBackend()
    symgraph.plugin.register_backend(backend)
    assert backend in symgraph.plugin.loaded_backends()
    x = symgraph.CustomInput(Euro(150))
    assert isinstance(x, SymbolicMoney)
    total = x + x
    assert isinstance(total, SymbolicMoney)
    model = symgraph.SymbolicModel(x, total)
    assert model(Money(7)).cents == 14
    assert model.plan.steps[0].description == "300 cents"


def test_register_backend_validates_its_argument():
    with pytest.raises(TypeError, match="Backend instance"):
        symgraph.plugin.register_backend(object())

    class NoClass(symgraph.plugin.Backend):
        types = (int,)

    with pytest.raises(TypeError, match="symbolic_class"):
        symgraph.plugin.register_backend(NoClass())

    class BadTypes(symgraph.plugin.Backend):
        types = [int]  # type: ignore[assignment]  # noqa: RUF012 - deliberately malformed
        symbolic_class = symgraph.SymbolicData

    with pytest.raises(TypeError, match="tuple of classes"):
        symgraph.plugin.register_backend(BadTypes())


@pytest.fixture
def fake_library(monkeypatch, isolated_registry):
    """A library 'fakelib' whose plugin is declared through an entry point only."""
    value_type = type("Widget", (), {"__module__": "fakelib.widgets"})
    plugin = types.ModuleType("fake_symgraph_plugin")
    plugin.SymbolicWidget = type("SymbolicWidget", (symgraph.SymbolicData,), {"__slots__": ()})

    class WidgetBackend(symgraph.plugin.Backend):
        name = "fakelib"
        types = (value_type,)
        symbolic_class = plugin.SymbolicWidget

    plugin.BACKEND = WidgetBackend()
    monkeypatch.setitem(sys.modules, "fake_symgraph_plugin", plugin)
    entry = metadata.EntryPoint(name="fakelib", value="fake_symgraph_plugin:BACKEND", group=_backends.ENTRY_POINT_GROUP)
    broken = metadata.EntryPoint(
        name="brokenlib", value="no_such_module_xyz:BACKEND", group=_backends.ENTRY_POINT_GROUP
    )
    monkeypatch.setattr(_backends, "_entry_points", {"fakelib": entry, "brokenlib": broken})
    monkeypatch.setattr(_backends, "_loaded_modules", set())
    return value_type, plugin


def test_plugins_load_lazily_from_entry_points(fake_library):
    value_type, plugin = fake_library
    assert plugin.BACKEND not in symgraph.plugin.loaded_backends()
    symgraph.CustomInput(3)  # an int does not load fakelib's plugin
    assert plugin.BACKEND not in symgraph.plugin.loaded_backends()
    x = symgraph.CustomInput(value_type())
    assert type(x) is plugin.SymbolicWidget
    assert plugin.BACKEND in symgraph.plugin.loaded_backends()


def test_a_broken_plugin_fails_loudly_and_names_itself(fake_library):
    broken_type = type("Gadget", (), {"__module__": "brokenlib"})
    for _ in range(2):  # it keeps failing rather than silently falling back to a generic class
        with pytest.raises(symgraph.SymgraphError, match="'brokenlib'"):
            symgraph.CustomInput(broken_type())


@pytest.mark.skipif(not os.environ.get("SYMGRAPH_NO_BACKENDS"), reason="only meaningful in the no-backend tier")
def test_the_no_backend_tier_really_has_no_backends():
    for name in ("numpy", "torch", "symgraph_torch", "symgraph_numpy"):
        with pytest.raises(ImportError):
            importlib.import_module(name)
