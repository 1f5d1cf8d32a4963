"""The operator table drives the handle's dunders, the recorded nodes, their names and the code.

Also the backend registry: snapshots restore registrations, and the registry
module stands apart from the recording machinery.
"""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import symgraph
import symgraph._backends
import symgraph._symbolic
from symgraph._codegen import emitter_for
from symgraph.plugin import (
    BINARY,
    OPERATORS,
    UNARY,
    Backend,
    CodegenPolicy,
    Const,
    ConstantPool,
    EmitContext,
    Operator,
    Ref,
    SymbolicData,
    backend_for,
    loaded_backends,
    register_backend,
    restore_registry,
    snapshot_registry,
)
from symgraph.testing import EAGER_BINARY, EAGER_UNARY


class Mat:
    """Supports ``@`` only, for the one operator no builtin type has; ``a @ b`` is not ``b @ a``."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, v: int) -> None:
        self.v = v

    def __matmul__(self, other: object) -> Any:
        return Mat(self.v * 10 + other.v) if isinstance(other, Mat) else NotImplemented

    def __rmatmul__(self, other: object) -> Any:
        return Mat(other.v * 10 + self.v) if isinstance(other, Mat) else NotImplemented  # other @ self

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mat) and other.v == self.v

    def __repr__(self) -> str:
        return f"Mat({self.v})"


#: What Python calls when the symbolic value is on the right of a comparison.
MIRRORED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}

# (example left, example right), then (new left, new right)
INTS = ((7, 3), (-9, 4))
SMALL_INTS = ((7, 3), (-9, 2))
SHIFTS = ((7, 3), (5, 2))  # no negative shift count in either order
FLOATS = ((2.5, 1.25), (-3.75, 0.5))
POSITIVE_FLOATS = ((2.5, 1.25), (3.75, 0.5))
SETS = (({1, 2, 3}, {2, 5}), ({2, 7}, {7, 8, 9}))
FROZENSETS = ((frozenset({1, 2}), frozenset({2})), (frozenset({4}), frozenset({4, 5})))
BOOLS = ((True, False), (False, True))
NONZERO_BOOLS = ((True, True), (True, True))  # False is a zero divisor
MATS = ((Mat(2), Mat(3)), (Mat(5), Mat(7)))

BINARY_CASES: dict[str, tuple[Any, ...]] = {
    "+": (INTS, FLOATS, BOOLS),
    "-": (INTS, FLOATS, SETS, BOOLS),
    "*": (INTS, FLOATS, BOOLS),
    "/": (INTS, FLOATS, NONZERO_BOOLS),
    "//": (INTS, FLOATS, NONZERO_BOOLS),
    "%": (INTS, FLOATS, NONZERO_BOOLS),
    "**": (SMALL_INTS, POSITIVE_FLOATS, BOOLS),
    "divmod": (INTS, FLOATS, NONZERO_BOOLS),
    "@": (MATS,),
    "&": (INTS, SETS, FROZENSETS, BOOLS),
    "|": (INTS, SETS, FROZENSETS, BOOLS),
    "^": (INTS, SETS, BOOLS),
    "<<": (SHIFTS, BOOLS),
    ">>": (SHIFTS, BOOLS),
    "<": (INTS, FLOATS, SETS, BOOLS),
    "<=": (INTS, FLOATS, SETS, BOOLS),
    ">": (INTS, FLOATS, SETS, BOOLS),
    ">=": (INTS, FLOATS, SETS, BOOLS),
    "==": (INTS, FLOATS, SETS, BOOLS),
    "!=": (INTS, FLOATS, SETS, BOOLS),
}
UNARY_CASES: dict[str, tuple[Any, ...]] = {
    "neg": (7, -2.5, True),
    "pos": (-7, 2.5, False),
    "invert": (7, -3),  # ~bool is deprecated
    "abs": (-7, -2.5, True),
}


def test_the_cases_cover_the_whole_table() -> None:
    assert set(EAGER_BINARY) == set(BINARY_CASES) == {spec.symbol for spec in BINARY}
    assert set(EAGER_UNARY) == set(UNARY_CASES) == {spec.symbol for spec in UNARY}
    assert set(OPERATORS) == set(EAGER_BINARY) | set(EAGER_UNARY)
    for symbol, spec in OPERATORS.items():
        assert spec.symbol == symbol and spec.arity == (2 if symbol in EAGER_BINARY else 1)


def binary_ids() -> list[str]:
    return [f"{symbol} {type(pair[0][0]).__name__}" for symbol, kinds in BINARY_CASES.items() for pair in kinds]


def binary_params() -> list[tuple[str, Any, Any]]:
    return [(symbol, *pair) for symbol, kinds in BINARY_CASES.items() for pair in kinds]


def same(actual: Any, expected: Any) -> None:
    assert type(actual) is type(expected) and actual == expected, (actual, expected)


def check_replay(inputs: Any, output: Any, new: tuple[Any, ...], expected: Any) -> symgraph.SymbolicModel:
    model = symgraph.SymbolicModel(inputs, output)
    same(model(*new), expected)
    same(model.interpret(*new), expected)
    return model


# -- the handle's dunders -----------------------------------------------------------------------

_METHODS = ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor", "lshift", "rshift")
#: Every operator dunder Python knows, installed or not.
ALL_OPERATOR_DUNDERS = frozenset(
    {f"__{prefix}{m}__" for m in (*_METHODS, "divmod") for prefix in ("", "r", "i")}
    | {f"__{m}__" for m in ("lt", "le", "gt", "ge", "eq", "ne", "neg", "pos", "invert", "abs")}
    | {f"__r{m}__" for m in ("lt", "le", "gt", "ge", "eq", "ne")}
)


def table_dunders() -> set[str]:
    return {name for spec in OPERATORS.values() for name in (spec.dunder, spec.reflected) if name is not None}


#: Written by hand on the handle: ``pow()`` takes a third argument, the modulo.
POW = {"__pow__", "__rpow__"}


def test_every_table_entry_is_installed_on_the_handle() -> None:
    installed = {name for name in vars(SymbolicData) if name in ALL_OPERATOR_DUNDERS}
    assert installed == table_dunders()
    for spec in OPERATORS.values():
        for name in (spec.dunder, spec.reflected):
            if name is None:
                continue
            method = vars(SymbolicData)[name]
            assert method.__name__ == name
            if name in POW:
                assert list(inspect.signature(method).parameters) == ["self", "other", "modulo"]
            else:
                assert method.__qualname__ == name  # made from the table, not written by hand
                assert len(inspect.signature(method).parameters) == spec.arity
    # No in-place forms: ``x += 1`` records ``x + 1`` and rebinds the name.
    assert not {f"__i{m}__" for m in _METHODS} & set(vars(SymbolicData))
    x = symgraph.CustomInput(2)
    y = x
    y += 3
    assert y is not x and isinstance(y.op, Operator) and y.op.symbol == "+"


def test_equality_is_recorded_pending_and_hashing_keeps_identity() -> None:
    assert {spec.symbol for spec in OPERATORS.values() if spec.equality} == {"==", "!="}
    x, y = symgraph.CustomInput(2), symgraph.CustomInput(2)
    comparisons = (x == x, x == y, x != y, x != x, x == 2, 2 != x)  # noqa: SIM300 - the reflected form is the point
    assert [c.v for c in comparisons] == [True, True, False, False, True, False]
    # Pending until used: a comparison made by a list search that then failed leaves nothing.
    assert x.children == () and y.children == ()
    model = symgraph.SymbolicModel((x, y), comparisons)
    assert model(1, 2) == model.interpret(1, 2) == (True, False, True, False, False, True)
    assert SymbolicData.__hash__ is object.__hash__
    assert {x: 1, y: 2}[x] == 1 and len({x, y, x}) == 2


def stub_declarations() -> dict[str, int]:
    source = Path(inspect.getfile(symgraph._symbolic)).read_text()
    (cls,) = [n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == "SymbolicData"]
    blocks = [
        n for n in cls.body if isinstance(n, ast.If) and isinstance(n.test, ast.Name) and n.test.id == "TYPE_CHECKING"
    ]
    (block,) = blocks
    assert not block.orelse
    stubs: dict[str, int] = {}
    for node in block.body:
        assert isinstance(node, ast.FunctionDef), ast.dump(node)
        assert node.name not in stubs
        assert isinstance(node.returns, ast.Name) and node.returns.id == "SymbolicData"
        stubs[node.name] = len(node.args.args)
    return stubs


def test_the_type_checking_stubs_name_exactly_the_table_s_dunders() -> None:
    stubs = stub_declarations()
    assert set(stubs) == table_dunders() - POW
    for spec in OPERATORS.values():
        if spec.dunder not in POW:
            assert stubs[spec.dunder] == spec.arity
            if spec.reflected is not None:
                assert stubs[spec.reflected] == 2


# -- recording and replay -------------------------------------------------------------------------


def recorded(y: Any, symbol: str, operands: tuple[Any, ...]) -> Operator:
    op = y.op
    assert type(op) is Operator and op.symbol == symbol and op.spec is OPERATORS[symbol]
    assert len(op.operands) == len(operands)
    for template, expected in zip(op.operands, operands, strict=True):
        if isinstance(expected, Ref):
            assert type(template) is Ref and template.index == expected.index
        else:
            assert type(template) is Const and template.value is expected
    return op


@pytest.mark.parametrize(("symbol", "example", "new"), binary_params(), ids=binary_ids())
def test_a_binary_operator_replays_like_python(symbol: str, example: Any, new: Any) -> None:
    eager, spec = EAGER_BINARY[symbol], OPERATORS[symbol]
    a, b = example
    a2, b2 = new
    apply = eager

    # Symbolic on the left: x op b.
    x = symgraph.CustomInput(a)
    y = apply(x, b)
    recorded(y, symbol, (Ref(0), b))
    same(y.v, eager(a, b))
    model = check_replay(x, y, (a2,), eager(a2, b))
    assert model.plan.steps[0].name == "LambdaOpLayer_1"

    # Symbolic on the right: b op x, through the reflected method (or the mirrored comparison).
    x = symgraph.CustomInput(a)
    y = apply(b, x)
    if spec.reflected is None:
        recorded(y, MIRRORED[symbol], (Ref(0), b))
    else:
        recorded(y, symbol, (b, Ref(0)))
    same(y.v, eager(b, a))
    model = check_replay(x, y, (a2,), eager(b, a2))
    assert model.plan.steps[0].name == "LambdaOpLayer_1"

    # Both symbolic: named after the operator, and written with the table's template.
    x, z = symgraph.CustomInput(a), symgraph.CustomInput(b)
    y = apply(x, z)
    recorded(y, symbol, (Ref(0), Ref(1)))
    model = check_replay((x, z), y, (a2, b2), eager(a2, b2))
    assert model.plan.steps[0].name == f"{spec.name}OpLayer_1"
    lines = model.source.splitlines()
    assert lines[1] == f"    v1 = {spec.template.format('v0', 'v1')}", model.source


@pytest.mark.parametrize(
    ("symbol", "value"),
    [(symbol, value) for symbol, values in UNARY_CASES.items() for value in values],
    ids=[f"{symbol} {type(value).__name__}" for symbol, values in UNARY_CASES.items() for value in values],
)
def test_a_unary_operator_replays_like_python(symbol: str, value: Any) -> None:
    eager, spec = EAGER_UNARY[symbol], OPERATORS[symbol]
    x = symgraph.CustomInput(value)
    y = eager(x)
    recorded(y, symbol, (Ref(0),))
    same(y.v, eager(value))
    new = type(value)(not value) if type(value) is bool else value * 3 - 1
    model = check_replay(x, y, (new,), eager(new))
    assert model.plan.steps[0].name == f"{spec.name}OpLayer_1"
    assert model.source.splitlines()[1] == f"    v0 = {spec.template.format('v0')}"


def test_display_names_come_from_the_table() -> None:
    for spec in OPERATORS.values():
        operands = [Ref(0)] if spec.arity == 1 else [Ref(0), Ref(1)]
        assert Operator(spec.symbol, operands).display_name([]) == spec.name + "OpLayer"
        if spec.arity == 2:
            assert Operator(spec.symbol, [Ref(0), Const(1)]).display_name([]) == "LambdaOpLayer"
            assert Operator(spec.symbol, [Const(1), Ref(0)]).display_name([]) == "LambdaOpLayer"
    x, z = symgraph.CustomInput(3), symgraph.CustomInput(4)
    model = symgraph.SymbolicModel((x, z), (x + z, x + 1, 2 * z, -x, abs(z), x + z))
    names = [step.name for step in model.plan.steps]
    assert names == [
        "AddOpLayer_1",
        "LambdaOpLayer_1",
        "LambdaOpLayer_2",
        "NegOpLayer_1",
        "AbsOpLayer_1",
        "AddOpLayer_2",
    ]


def test_codegen_writes_each_operator_s_template() -> None:
    for spec in OPERATORS.values():
        op = Operator(spec.symbol, [Ref(0)] if spec.arity == 1 else [Ref(0), Const(2)])
        expression = emitter_for(op)(op, ["v3"], EmitContext(ConstantPool(), CodegenPolicy()))
        assert expression == spec.template.format("v3", "2")
        # The template is the operator's own text, with nothing but the operands around it.
        ast.parse(expression, mode="eval")
        if spec.arity == 2 and spec.symbol != "divmod":  # divmod() is the one builtin call
            assert expression == f"v3 {spec.symbol} 2"


# -- the registry -----------------------------------------------------------------------------------


class Meters(float):
    pass


class SymbolicMeters(SymbolicData):
    __slots__ = ()


class MetersBackend(Backend):
    name = "meters"
    types = (Meters,)
    symbolic_class = SymbolicMeters


def test_snapshot_and_restore_undo_and_redo_a_registration() -> None:
    saved = snapshot_registry()
    backend, other = MetersBackend(), MetersBackend()
    try:
        assert backend_for(Meters) is None
        register_backend(backend)
        with_backend = snapshot_registry()
        assert loaded_backends()[0] is backend and backend_for(Meters) is backend
        assert type(symgraph.CustomInput(Meters(2.0))) is SymbolicMeters
        register_backend(other)
        assert backend_for(Meters) is other
        restore_registry(saved)
        assert loaded_backends() == saved.backends and backend not in loaded_backends()
        assert backend_for(Meters) is None  # the type cache was cleared too
        assert type(symgraph.CustomInput(Meters(2.0))) is not SymbolicMeters
        restore_registry(with_backend)  # a registration comes back
        assert loaded_backends() == with_backend.backends and backend_for(Meters) is backend
        assert type(symgraph.CustomInput(Meters(2.0))) is SymbolicMeters
    finally:
        restore_registry(saved)
    assert loaded_backends() == saved.backends
    with pytest.raises(TypeError, match="RegistrySnapshot"):
        restore_registry(saved.backends)  # type: ignore[arg-type]


def symgraph_imports(module: str) -> set[str]:
    """The ``symgraph`` modules that ``module``'s source imports at runtime, anywhere in it.

    Imports under ``if TYPE_CHECKING:`` are for type checkers only and are skipped.
    """
    source = Path(inspect.getfile(sys.modules[module])).read_text()
    found: set[str] = set()
    stack: list[ast.AST] = [ast.parse(source)]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import"
            found.add(node.module or "")
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        stack.extend(ast.iter_child_nodes(node))
    return {name for name in found if name == "symgraph" or name.startswith("symgraph.")}


def test_the_registry_does_not_import_the_recording_machinery() -> None:
    # Everything the registry's source imports, followed through symgraph's modules.
    seen: set[str] = set()
    todo = ["symgraph._backends"]
    while todo:
        module = todo.pop()
        if module in seen or module not in sys.modules:
            continue
        seen.add(module)
        todo.extend(symgraph_imports(module))
    assert "symgraph._symbolic" not in seen and "symgraph._ops" not in seen
    assert seen <= {"symgraph._backends", "symgraph._errors", "symgraph._node"}, seen


def test_importing_the_registry_alone_loads_no_recording_module() -> None:
    # The package's __init__ imports everything, so the package is stubbed and the
    # registry module imported on its own.
    package = Path(inspect.getfile(symgraph)).parent
    script = textwrap.dedent(
        f"""
        import sys, types
        package = types.ModuleType("symgraph")
        package.__path__ = [{str(package)!r}]
        sys.modules["symgraph"] = package
        import symgraph._backends
        print(" ".join(sorted(m for m in sys.modules if m.startswith("symgraph."))))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    loaded = set(out.stdout.split())
    assert "symgraph._backends" in loaded
    assert "symgraph._symbolic" not in loaded, loaded
    assert all(re.fullmatch(r"symgraph\._(backends|errors|node)", m) for m in loaded), loaded
