"""Operation and template payloads: validated when built, never pasted into generated code.

Every operation class and template class is built with hostile payloads (``int``
and ``str`` subclasses whose ``__format__``/``__repr__``/``__str__``/``__index__``
run code, strings that are code, negative positions, non-templates), directly and
from tampered pickles loaded through an allowlisting unpickler; each is refused
when it is built, and none of the hostile code ever runs. In the other direction,
the source generated for valid operations holds nothing but names the constant
pool made, the function's parameters, two builtins and exact-int/None/bool literals.
"""

from __future__ import annotations

import ast
import contextlib
import copyreg
import difflib
import io
import pickle
import re
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import symgraph
from symgraph._ops import nth
from symgraph._templates import MAX_DEPTH
from symgraph.plugin import (
    OPERATORS,
    ArgumentCollector,
    Call,
    CodegenPolicy,
    Const,
    DictT,
    Elements,
    GeneratedCode,
    GetAttr,
    InputSpec,
    ListT,
    MethodCall,
    NamedTupleT,
    Operation,
    Operator,
    OperatorSpec,
    Placeholder,
    Plan,
    Program,
    Ref,
    Slice,
    SliceT,
    Step,
    SymbolicData,
    Template,
    TupleT,
    Unpack,
    build_plan,
    compile_generated,
    generate,
)

# -- hostile objects -----------------------------------------------------------------------

_SENTINEL: list[Path] = []
_FAKE_MODULE = "_symgraph_hostile_payloads"


def _touch() -> None:
    for path in _SENTINEL:
        path.touch()


def _code() -> str:
    """A payload that, pasted into the source, would create the sentinel."""
    target = _SENTINEL[0] if _SENTINEL else Path("SENTINEL")
    return f"0]; __import__('os').system('touch {target}') #"


class _SpellsCode:
    """Formats and prints itself as code; mixed into int and str subclasses."""

    __slots__ = ()

    def __format__(self, spec: str) -> str:
        _touch()
        return _code()

    def __repr__(self) -> str:
        _touch()
        return _code()

    def __str__(self) -> str:
        _touch()
        return _code()


class HostileInt(_SpellsCode, int):
    """An int that formats, prints and indexes itself as code."""

    __slots__ = ()
    __module__ = _FAKE_MODULE

    def __index__(self) -> int:
        _touch()
        return 0


class HostileStr(_SpellsCode, str):
    """A str that formats and prints itself as code."""

    __slots__ = ()
    __module__ = _FAKE_MODULE


class LyingStr(HostileStr):
    """Carries code but compares and hashes like the table key ``"+"``."""

    __slots__ = ()
    __module__ = _FAKE_MODULE

    def __eq__(self, other: object) -> bool:
        return True

    def __ne__(self, other: object) -> bool:
        return False

    def __hash__(self) -> int:
        return hash("+")


def hostile_strings(sentinel: Path) -> list[str]:
    """Exact strs that are code; they are fine as pooled constants and names looked up at runtime."""
    run = f"__import__('os').system('touch {sentinel}')"
    touch = f"__import__('pathlib').Path({str(sentinel)!r}).touch()"
    return [
        f"0]; {run} #",
        f"real) or {touch} or (0",
        f"x\n    {touch}\n    #",
        f"{{0}} + {touch} or {{1}}",
        f"__class__.__init__.__globals__['__builtins__']['exec']({touch!r})",
    ]


@pytest.fixture(autouse=True)
def sentinel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The file hostile code would create; every test ends with it absent."""
    path = tmp_path / "SENTINEL"
    _SENTINEL[:] = [path]
    module = types.ModuleType(_FAKE_MODULE)
    module.HostileInt, module.HostileStr, module.LyingStr = HostileInt, HostileStr, LyingStr  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, _FAKE_MODULE, module)
    yield path
    _SENTINEL.clear()
    assert not path.exists(), "hostile code ran"


def test_the_hostile_objects_do_run_code_when_formatted(sentinel: Path) -> None:
    # The probe itself works: formatting the int runs its code.
    assert f"{HostileInt(3)}" == _code()
    assert sentinel.exists()
    sentinel.unlink()


# -- construction refuses hostile payloads ---------------------------------------------------


def hostile_constructions() -> list[tuple[str, Callable[[], Any], type[Exception]]]:
    code = _code()
    ok = Const({})
    cases: list[tuple[str, Callable[[], Any], type[Exception]]] = [
        # Unpack: an exact, non-negative int and a bool.
        ("Unpack hostile int", lambda: Unpack(HostileInt(1)), TypeError),
        ("Unpack code string", lambda: Unpack(code), TypeError),  # type: ignore[arg-type]
        ("Unpack bool index", lambda: Unpack(True), TypeError),
        ("Unpack float index", lambda: Unpack(1.0), TypeError),  # type: ignore[arg-type]
        ("Unpack negative", lambda: Unpack(-1), ValueError),
        ("Unpack by_index str", lambda: Unpack(0, code), TypeError),  # type: ignore[arg-type]
        ("Unpack by_index int", lambda: Unpack(0, 1), TypeError),  # type: ignore[arg-type]
        # Elements: an exact, non-negative int, a bool, and a str shown only in messages.
        ("Elements hostile int", lambda: Elements(HostileInt(1), True, "f.py:1"), TypeError),
        ("Elements negative", lambda: Elements(-1, True, "f.py:1"), TypeError),
        ("Elements exact int", lambda: Elements(1, 1, "f.py:1"), TypeError),  # type: ignore[arg-type]
        ("Elements where hostile str", lambda: Elements(1, True, HostileStr("x")), TypeError),
        ("Elements where int", lambda: Elements(1, True, 5), TypeError),  # type: ignore[arg-type]
        # Placeholder: no payload at all.
        ("Placeholder with an argument", lambda: Placeholder(code), TypeError),  # type: ignore[call-arg]
        # Operator: an exact str key of the table, with its arity, and templates.
        ("Operator hostile str", lambda: Operator(HostileStr("+"), [Ref(0), Const(1)]), ValueError),
        ("Operator lying str", lambda: Operator(LyingStr(code), [Ref(0), Const(1)]), ValueError),
        ("Operator code symbol", lambda: Operator(code, [Ref(0), Const(1)]), ValueError),
        ("Operator + 1;", lambda: Operator("+ 1; x", [Ref(0), Const(1)]), ValueError),
        ("Operator int symbol", lambda: Operator(1, [Ref(0), Const(1)]), ValueError),  # type: ignore[arg-type]
        ("Operator dunder name", lambda: Operator("__add__", [Ref(0), Const(1)]), ValueError),
        ("Operator wrong arity", lambda: Operator("neg", [Ref(0), Const(1)]), ValueError),
        ("Operator binary with one", lambda: Operator("+", [Ref(0)]), ValueError),
        ("Operator plain operand", lambda: Operator("+", [Ref(0), 1]), TypeError),  # type: ignore[list-item]
        ("Operator hostile operand", lambda: Operator("+", [Ref(0), HostileInt(1)]), TypeError),  # type: ignore[list-item]
        ("Operator str operands", lambda: Operator("+", "ab"), TypeError),  # type: ignore[arg-type]
        # GetAttr and MethodCall: exact str names.
        ("GetAttr hostile str", lambda: GetAttr(HostileStr("real")), TypeError),
        ("GetAttr lying str", lambda: GetAttr(LyingStr("real")), TypeError),
        ("GetAttr int", lambda: GetAttr(HostileInt(0)), TypeError),  # type: ignore[arg-type]
        ("GetAttr bytes", lambda: GetAttr(b"real"), TypeError),  # type: ignore[arg-type]
        ("MethodCall hostile str", lambda: MethodCall(HostileStr("count"), [], ok), TypeError),
        ("MethodCall int name", lambda: MethodCall(3, [], ok), TypeError),  # type: ignore[arg-type]
        ("MethodCall plain argument", lambda: MethodCall("count", [1], ok), TypeError),  # type: ignore[list-item]
        ("MethodCall plain kwargs", lambda: MethodCall("count", [], {}), TypeError),  # type: ignore[arg-type]
        ("MethodCall int key", lambda: MethodCall("count", [], Const({1: 2})), TypeError),
        ("MethodCall hostile key", lambda: MethodCall("count", [], Const({HostileStr("k"): 2})), TypeError),
        ("MethodCall DictT int key", lambda: MethodCall("count", [], DictT([1], [Ref(0)])), TypeError),
        ("MethodCall non-dict kwargs", lambda: MethodCall("count", [], Const([("k", 1)])), TypeError),
        ("MethodCall ListT kwargs", lambda: MethodCall("count", [], ListT([Ref(0)])), TypeError),
        # Call: templates for the callable and the arguments, str-keyed kwargs.
        ("Call plain callable", lambda: Call(len, [Ref(0)], ok), TypeError),  # type: ignore[arg-type]
        ("Call plain argument", lambda: Call(Const(len), [0], ok), TypeError),  # type: ignore[list-item]
        ("Call code argument", lambda: Call(Const(len), [code], ok), TypeError),  # type: ignore[list-item]
        ("Call int key", lambda: Call(Const(len), [], Const({0: 1})), TypeError),
        ("Call DictT hostile key", lambda: Call(Const(len), [], DictT([HostileStr("k")], [Ref(0)])), TypeError),
        ("Call None kwargs", lambda: Call(Const(len), [], Const(None)), TypeError),
        ("Call plain kwargs", lambda: Call(Const(len), [], None), TypeError),  # type: ignore[arg-type]
        # Slice: a template.
        ("Slice int", lambda: Slice(1), TypeError),  # type: ignore[arg-type]
        ("Slice hostile int", lambda: Slice(HostileInt(1)), TypeError),  # type: ignore[arg-type]
        ("Slice slice", lambda: Slice(slice(1, 2)), TypeError),  # type: ignore[arg-type]
        ("Slice code", lambda: Slice(code), TypeError),  # type: ignore[arg-type]
        # Templates.
        ("Ref hostile int", lambda: Ref(HostileInt(0)), TypeError),
        ("Ref code string", lambda: Ref(code), TypeError),  # type: ignore[arg-type]
        ("Ref bool", lambda: Ref(False), TypeError),
        ("Ref negative", lambda: Ref(-1), ValueError),
        ("ListT plain item", lambda: ListT([Ref(0), 1]), TypeError),  # type: ignore[list-item]
        ("ListT str items", lambda: ListT("ab"), TypeError),  # type: ignore[arg-type]
        ("TupleT hostile item", lambda: TupleT([HostileInt(0)]), TypeError),  # type: ignore[list-item]
        ("NamedTupleT list class", lambda: NamedTupleT(list, [Ref(0)]), TypeError),
        ("NamedTupleT str class", lambda: NamedTupleT("Point", [Ref(0)]), TypeError),  # type: ignore[arg-type]
        ("NamedTupleT tuple instance", lambda: NamedTupleT((1, 2), [Ref(0)]), TypeError),  # type: ignore[arg-type]
        ("NamedTupleT hostile str class", lambda: NamedTupleT(HostileStr, [Ref(0)]), TypeError),
        ("NamedTupleT plain item", lambda: NamedTupleT(difflib.Match, [Ref(0), 1, 2]), TypeError),  # type: ignore[list-item]
        ("SliceT two items", lambda: SliceT([Ref(0), Const(None)]), ValueError),
        ("SliceT four items", lambda: SliceT([Ref(0), Const(None), Const(None), Const(None)]), ValueError),
        ("SliceT none", lambda: SliceT([]), ValueError),
        ("SliceT plain item", lambda: SliceT([Ref(0), None, None]), TypeError),  # type: ignore[list-item]
        ("DictT more keys", lambda: DictT(["a", "b"], [Ref(0)]), ValueError),
        ("DictT more values", lambda: DictT(["a"], [Ref(0), Ref(1)]), ValueError),
        ("DictT plain value", lambda: DictT(["a"], [0]), TypeError),  # type: ignore[list-item]
    ]
    return cases


@pytest.mark.parametrize("index", range(len(hostile_constructions())))
def test_hostile_payloads_are_refused_at_construction(index: int, sentinel: Path) -> None:
    label, build, error = hostile_constructions()[index]
    with pytest.raises(error) as info:
        build()
    message = str(info.value)
    assert message and "\n" not in message, label
    assert not sentinel.exists(), label


def test_every_operation_and_template_class_is_covered() -> None:
    labels = " ".join(label for label, _, _ in hostile_constructions())
    operations = [name for name in symgraph.plugin.__all__ if _is_subclass(getattr(symgraph.plugin, name), Operation)]
    templates = [name for name in symgraph.plugin.__all__ if _is_subclass(getattr(symgraph.plugin, name), Template)]
    assert sorted(operations) == [
        "Call",
        "Elements",
        "GetAttr",
        "MethodCall",
        "Operator",
        "Placeholder",
        "Slice",
        "Unpack",
    ]
    assert sorted(templates) == ["Const", "DictT", "ListT", "NamedTupleT", "Ref", "SliceT", "TupleT"]
    for name in [*operations, *templates]:
        if name != "Const":  # any value is a constant: Const's safety is the pool's (tested below)
            assert re.search(rf"\b{name}\b", labels), name


def _is_subclass(obj: object, base: type) -> bool:
    return isinstance(obj, type) and issubclass(obj, base) and obj is not base


def test_an_operator_holds_the_table_s_own_symbol() -> None:
    symbol = "".join(["+"])  # an equal str that is not the table's object
    op = Operator(symbol, [Ref(0), Const(1)])
    assert op.symbol is OPERATORS["+"].symbol and op.spec is OPERATORS["+"]


def test_valid_hostile_text_becomes_pooled_constants(sentinel: Path) -> None:
    # Exact strs are valid names and keys; they reach the code only as c<k> names.
    for text in hostile_strings(sentinel):
        ops: list[Operation] = [
            GetAttr(text),
            MethodCall(text, [Const(text)], Const({text: text})),
            Call(Const(text), [Const(text)], DictT([text], [Ref(0)])),
            Slice(Const(text)),
            Slice(DictT([text, HostileStr(text)], [Ref(0), Const(HostileInt(2))])),
            Operator("+", [Ref(0), Const(text)]),
            Operator("+", [Const(HostileStr(text)), Ref(0)]),
            Operator("-", [Ref(0), Const(HostileInt(7))]),
        ]
        for op in ops:
            code = generate(one_step_plan(op))
            assert text not in code.source and "__import__" not in code.source
            assert_only_pool_names(code)
            replay = compile_generated(code)
            # The ops above are nonsense for an int; what matters is that nothing ran.
            with contextlib.suppress(TypeError, AttributeError, KeyError):
                replay(5)
    assert not sentinel.exists()


def test_hostile_constants_are_never_formatted_or_printed(sentinel: Path) -> None:
    x = symgraph.CustomInput(5)
    y = (x + HostileInt(3)) * HostileInt(2)
    s = symgraph.CustomInput("ab")
    t = s + HostileStr("cd")
    d = symgraph.add_to_graph(dict, {HostileStr("k"): y, HostileInt(4): t})
    # (Output keys are not used here: build_plan writes their repr into error labels.)
    model = symgraph.SymbolicModel((x, s), {"d": d, "t": t})
    assert_only_pool_names(generate(model.plan))
    expected = {"d": {"k": 8, 4: "xcd"}, "t": "xcd"}
    assert model(1, "x") == expected
    assert model.interpret(1, "x") == expected
    assert not sentinel.exists()


# -- the generated source holds only our names -----------------------------------------------

_ALLOWED_NODES = (
    ast.Module,
    ast.FunctionDef,
    ast.arguments,
    ast.arg,
    ast.Assign,
    ast.Delete,
    ast.Return,
    ast.Name,
    ast.Load,
    ast.Store,
    ast.Del,
    ast.Constant,
    ast.Call,
    ast.keyword,
    ast.Subscript,
    ast.BinOp,
    ast.UnaryOp,
    ast.Compare,
    ast.List,
    ast.Tuple,
    ast.Dict,
    ast.operator,
    ast.unaryop,
    ast.cmpop,
)
#: The builtins the emitters write: GetAttr and MethodCall use ``getattr``, the table's ``abs``.
_EMITTED_BUILTINS = frozenset({"getattr", "abs"})


def assert_only_pool_names(code: GeneratedCode) -> None:
    """Every name is the pool's, a variable, a parameter or an emitted builtin; literals are ints, None, bools."""
    tree = ast.parse(code.source)
    (function,) = tree.body
    assert isinstance(function, ast.FunctionDef) and function.name == "replay"
    assert not function.decorator_list and function.returns is None
    arguments = function.args
    assert not (arguments.posonlyargs or arguments.kwonlyargs or arguments.vararg or arguments.kwarg)
    assert not (arguments.defaults or arguments.kw_defaults)
    params = [a.arg for a in arguments.args]
    leading = list(code.leading)
    assert params[: len(leading)] == leading
    assert all(re.fullmatch(r"v\d+", p) for p in params[len(leading) :]), params
    assert all(re.fullmatch(r"c\d+", name) for name in code.namespace), list(code.namespace)
    *steps, last = function.body
    assert isinstance(last, ast.Return)
    for statement in steps:
        if isinstance(statement, ast.Assign):
            (target,) = statement.targets
            assert isinstance(target, ast.Name) and re.fullmatch(r"v\d+", target.id)
        else:
            assert isinstance(statement, ast.Delete), ast.dump(statement)
            assert all(isinstance(t, ast.Name) and re.fullmatch(r"v\d+", t.id) for t in statement.targets)
    for node in ast.walk(tree):
        assert isinstance(node, _ALLOWED_NODES), ast.dump(node)
        if isinstance(node, ast.Name):
            name = node.id
            if re.fullmatch(r"c\d+", name):
                assert name in code.namespace, name
            else:
                assert name in _EMITTED_BUILTINS or name in leading or re.fullmatch(r"v\d+", name), name
        elif isinstance(node, ast.Constant):
            # No string, bytes or float literal at all: negative ints are USub of a literal.
            assert type(node.value) in (int, bool, type(None)), ast.dump(node)
            assert type(node.value) is not int or node.value >= 0
        elif isinstance(node, ast.keyword):
            assert node.arg is None  # keyword arguments are always passed as **mapping
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
            assert type(node.operand.value) is int


def one_step_plan(op: Operation, n_inputs: int = 1) -> Plan:
    """A plan whose one step applies ``op`` to the inputs, returning its result."""
    inputs = tuple(InputSpec(f"in{i}", "object", None) for i in range(n_inputs))
    return Plan(inputs, None, (Step(op, tuple(range(n_inputs)), "step", "object"),), Ref(n_inputs))


def direct_call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return func(*args, **kwargs)


def symbolic_method(obj: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    collector = ArgumentCollector(obj)
    op = MethodCall(name, [collector.template(a) for a in args], collector.template(kwargs))
    return collector.record(op)


def direct_method(obj: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    return getattr(obj, name)(*args, **kwargs)


#: A named tuple from the standard library, so that pickle finds it by name.
Match = difflib.Match


def everything(call: Callable[..., Any], method: Callable[..., Any], x: Any, n: Any, s: Any) -> dict[str, Any]:
    """One of each operation and template: ``x`` a list of ints, ``n`` an int, ``s`` a 2-element set."""
    first, second = x[:2]  # Unpack by index, after an Elements guard
    low, high = s  # a set: read into a tuple by the guard, then indexed
    total = first * n + second - low
    by_iteration = symgraph.plugin.record(Unpack(1, False), (s.node,)) if isinstance(s, SymbolicData) else nth(s, 1)
    total = first * n + second - low
    arithmetic = ((-total) ** 2 % 7, +n, ~n, abs(n - 10), 10 - n, (-2) ** n, n // 3 / 2, n << 2 >> 1)
    bits = (n & 6, 3 | n, n ^ high, n < 3, n >= 2, n > 2, n > high, n >= 0)
    groups = {"arithmetic": arithmetic, "bits": bits, "slices": (x[1:n], x[::-1], x[-1], x[n - 5], x[: n - 3 : 2])}
    return {
        **{f"{group} {i}": value for group, values in groups.items() for i, value in enumerate(values)},
        "attr": n.real,
        "call": call(max, [first, second, n], key=None),
        "divmod": call(divmod, total, n),
        "named": call(Match, first, second, size=n),
        "as tuple": call(tuple, Match(first, n, 3)),
        "dict": call(dict, {"k": n, 3: first}, extra=high),
        "pairs": call(sorted, [(n, 1), (first, -2)]),
        "method": method(x, "count", first),
        "method kw": method(x, "index", second, 0),
        "sorted": call(sorted, s, reverse=True),
        "by iteration": by_iteration,
    }


def everything_model() -> tuple[symgraph.SymbolicModel, Callable[..., Any]]:
    x = symgraph.CustomInput([4, 5, 6, 7])
    n = symgraph.CustomInput(6)
    s = symgraph.CustomInput({3, 9})
    model = symgraph.SymbolicModel((x, n, s), everything(symgraph.add_to_graph, symbolic_method, x, n, s))
    return model, lambda *args: everything(direct_call, direct_method, *args)


NEW_DATA = [([1, 2, 3, 4, 5], 7, {2, 8}), ([9, 8, 7], 5, {4, 7}), ([3, 3, 1, 0, 2, 6], 6, {1, 5})]


def test_the_generated_source_holds_only_pool_names() -> None:
    model, direct = everything_model()
    kinds = {type(step.op) for step in model.plan.steps}
    assert kinds == {Operator, GetAttr, Slice, Call, MethodCall, Unpack, Elements}
    templates = {type(t) for step in model.plan.steps for root in step.op.templates() for t in _walk(root)}
    assert templates == {Ref, Const, ListT, TupleT, NamedTupleT, SliceT, DictT}
    assert {step.op.by_index for step in model.plan.steps if isinstance(step.op, Unpack)} == {True, False}
    code = generate(model.plan)
    assert_only_pool_names(code)
    assert code.source == model.source
    for data in NEW_DATA:
        assert model(*data) == direct(*data)
        assert model.interpret(*data) == direct(*data)


def _walk(template: Template) -> Iterator[Template]:
    stack = [template]
    while stack:
        t = stack.pop()
        yield t
        stack.extend(t.children())


def collect(*args: Any, **kwargs: Any) -> Any:
    return args, kwargs


def test_what_the_emitters_write() -> None:
    x = symgraph.CustomInput([4, 5, 6])
    a = record_one(Unpack(0), x)
    i = symgraph.CustomInput(1)
    s = symgraph.CustomInput({1, 2})
    low = record_one(Unpack(0, False), s)
    kwargs_dict = record_one(MethodCall("count", [Ref(1)], DictT(["k"], [Ref(1)])), x, i, value=0)
    cases = [
        ("getattr(v0, c0)", [x], record_one(GetAttr("count"), x)),
        (
            "getattr(v0, c0)(v1, **c1)",
            [x, i],
            record_one(MethodCall("count", [Ref(1)], Const({"k": 1})), x, i, value=0),
        ),
        ("getattr(v0, c0)(v1, **{c1: v1})", [x, i], kwargs_dict),
        ("getattr(v0, c0)(v1)", [x, i], record_one(MethodCall("count", [Ref(1)], Const({})), x, i)),
        ("v0[c0(v1, None, (-1))]", [x, i], x[i::-1]),
        ("v0[c0]", [x], x[::2]),
        ("v0[(-1)]", [x], x[-1]),
        ("v0[0]", [x], a),
        ("c0(v0, 0)", [s], low),
        (
            "c0(v0, (-3), [v0, c1], (v0,), {c2: v0})",
            [i],
            symgraph.add_to_graph(collect, i, -3, [i, 1.5], (i,), {"a": i}),
        ),
        ("c0(v0, **c1)", [i], symgraph.add_to_graph(collect, i, k=2)),
        ("c0(c1(v0, 0, 0))", [i], symgraph.add_to_graph(collect, Match(i, 0, 0))),
        ("v0 + c0", [i], i + 1.5),
        ("abs(v0)", [i], abs(i)),
        ("-v0", [i], -i),
        ("~v0", [i], ~i),
        ("True - v0", [i], True - i),
        ("v0 < None", [i], record_one(Operator("<", [Ref(0), Const(None)]), i, value=False)),
    ]
    for expected, inputs, y in cases:
        code = generate(build_plan(inputs, y)[0])
        assert_only_pool_names(code)
        (line,) = code.source.splitlines()[1:-1]
        assert line.split(" = ", 1)[1] == expected, (expected, code.source)


def record_one(op: Operation, *parents: Any, value: Any = None) -> Any:
    kwargs = {} if value is None else {"value": value}
    return symgraph.plugin.record(op, tuple(p.node for p in parents), **kwargs)


def test_leading_parameters_are_the_only_other_names() -> None:
    class Scaled(CodegenPolicy):
        leading = ("scale",)

        def constant(self, value: Any, ctx: Any) -> str | None:
            return "scale" if value == 10.0 else None

        def leading_values(self) -> tuple[Any, ...]:
            return (10.0,)

    x = symgraph.CustomInput(2.0)
    code = generate(build_plan(x, (x * 10.0, x + 1.5))[0], Scaled())
    assert_only_pool_names(code)
    assert compile_generated(code)(10.0, 3.0) == (30.0, 4.5)
    for bad in ("v1", "c0", "replay", "a b", "x)", ""):

        class Bad(CodegenPolicy):
            leading = (bad,)

        with pytest.raises(ValueError, match="leading parameter"):
            generate(build_plan(x, x + 1)[0], Bad())


# -- pickles ------------------------------------------------------------------------------------

#: What a careful loader of symgraph models allows: these classes and functions, by
#: exact module and name. A prefix rule ("symgraph.*") would also let a protocol-4
#: pickle reach dotted names such as ``symgraph._pickling.pickle.loads``.
ALLOWED = {
    "symgraph._model": {"SymbolicModel"},
    "symgraph._plan": {"Plan", "Step", "InputSpec"},
    "symgraph._ops": {"Placeholder", "Operator", "GetAttr", "Slice", "Call", "MethodCall", "Unpack", "Elements"},
    "symgraph._templates": {"Ref", "Const", "ListT", "TupleT", "NamedTupleT", "SliceT", "DictT"},
    # Present only so that the tampered pickles below can name it: it still cannot get in.
    "symgraph._operators": {"OperatorSpec"},
    "builtins": {"slice", "max", "divmod", "tuple", "dict", "sorted", "len", "print", "set", "frozenset", "list"},
    "difflib": {"Match"},
    _FAKE_MODULE: {"HostileInt", "HostileStr", "LyingStr"},
}


class AllowlistUnpickler(pickle.Unpickler):
    """Loads only the names in :data:`ALLOWED`."""

    found: list[tuple[str, str]]

    def find_class(self, module: str, name: str) -> Any:
        checked = "builtins" if module == "__builtin__" else module  # how protocol 2 spells it
        if "." in name or name not in ALLOWED.get(checked, ()):
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed")
        return super().find_class(module, name)


def allowlisted_loads(data: bytes) -> Any:
    return AllowlistUnpickler(io.BytesIO(data)).load()


def test_the_allowlist_refuses_dotted_and_unknown_names() -> None:
    # Protocol 4 looks names up attribute by attribute: an allowed module's globals
    # reach everything it imports, here an unrestricted pickle.loads.
    dotted = b"\x80\x04\x8c\x12symgraph._pickling\x8c\x0cpickle.loads\x93C\x02N.\x85R."
    assert pickle.loads(dotted) is None
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        allowlisted_loads(dotted)
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        allowlisted_loads(b"\x80\x04\x8c\x02os\x8c\x06system\x93.")


@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_a_pickled_model_loads_and_replays(protocol: int) -> None:
    model, direct = everything_model()
    data = pickle.dumps(model, protocol=protocol)
    for loaded in (pickle.loads(data), allowlisted_loads(data)):
        assert loaded.source == model.source
        assert_only_pool_names(generate(loaded.plan))
        for args in NEW_DATA:
            assert loaded(*args) == direct(*args)
            assert loaded.interpret(*args) == direct(*args)
    plan = allowlisted_loads(pickle.dumps(model.plan, protocol=protocol))
    assert Program(plan).runner(*NEW_DATA[0]) == direct(*NEW_DATA[0])


class TamperingPickler(pickle.Pickler):
    """Pickles ``obj`` with some of the objects inside it replaced by hand-written reductions."""

    def __init__(self, file: io.BytesIO, replacements: dict[int, tuple[Any, ...]], protocol: int) -> None:
        super().__init__(file, protocol=protocol)
        self.replacements = replacements

    def reducer_override(self, obj: Any) -> Any:
        return self.replacements.get(id(obj), NotImplemented)


def tampered(obj: Any, replacements: dict[int, tuple[Any, ...]], protocol: int = 4) -> bytes:
    buffer = io.BytesIO()
    TamperingPickler(buffer, replacements, protocol).dump(obj)
    return buffer.getvalue()


def forged(cls: type, state: dict[str, Any]) -> tuple[Any, ...]:
    """The reduction of an instance made without its constructor: ``NEWOBJ`` then ``BUILD``."""
    return (copyreg.__newobj__, (cls,), (None, state))


def forged_spec(sentinel: Path) -> OperatorSpec:
    """An operator table entry whose source text is code, made the way pickle would load one."""
    spec = object.__new__(OperatorSpec)
    touch = f"__import__('pathlib').Path({str(sentinel)!r}).touch()"
    fields = dict(vars(OPERATORS["+"]), template=f"({touch} or {{0}}) + {{1}}", fn=None)
    for key, value in fields.items():
        object.__setattr__(spec, key, value)
    return spec


def sample_model() -> tuple[symgraph.SymbolicModel, dict[str, Any]]:
    """A model with one fresh (unshared) object of each kind, to be swapped in its pickle."""
    x = symgraph.CustomInput([1, 2, 3])
    n = symgraph.CustomInput(2)
    _, second, _ = x
    ref = Ref(0)
    items = Const([1, 2])
    parts = {
        "Unpack": second,
        "Operator": record_one(Operator("*", [ref, Const(3)]), n),
        "GetAttr": record_one(GetAttr("real"), n),
        "Slice": x[n:],
        "Call": symgraph.add_to_graph(len, x),
        "MethodCall": record_one(MethodCall("count", [Ref(1)], Const({})), x, n),
        "TupleT": symgraph.add_to_graph(max, (n, 1)),
        "ListT": record_one(Call(Const(sorted), [ListT([ref, Const(0)])], Const({})), n),
        "NamedTupleT": symgraph.add_to_graph(tuple, Match(n, 1, 2)),
        "DictT": symgraph.add_to_graph(dict, {"k": n}),
        "Const": record_one(Call(Const(len), [items], Const({})), n),
    }
    model = symgraph.SymbolicModel((x, n), parts)
    targets: dict[str, Any] = {name: handle.op for name, handle in parts.items()}
    sliced = parts["Slice"].op.index
    call_args = {name: parts[name].op.args[0] for name in ("TupleT", "NamedTupleT", "DictT")}
    targets.update({"SliceT": sliced, "Ref": ref, "ListT": parts["ListT"].op.args[0], "Const": items, **call_args})
    return model, targets


def tampered_cases(sentinel: Path) -> list[tuple[str, str, tuple[Any, ...], type[Exception]]]:
    """``(label, target kind, replacement reduction, error at load)``."""
    code = _code()
    touch = f"__import__('pathlib').Path({str(sentinel)!r}).touch()"
    r0, one = Ref(0), Const(1)
    return [
        ("Unpack with a code string", "Unpack", (Unpack, (code, True)), TypeError),
        ("Unpack with a hostile int", "Unpack", (Unpack, (HostileInt(1), True)), TypeError),
        ("Unpack with a bool", "Unpack", (Unpack, (True, True)), TypeError),
        ("Unpack with a negative index", "Unpack", (Unpack, (-1, True)), ValueError),
        ("Unpack with a str by_index", "Unpack", (Unpack, (1, code)), TypeError),
        ("Unpack from forged state", "Unpack", forged(Unpack, {"index": code, "by_index": True}), TypeError),
        ("Operator with a bogus symbol", "Operator", (Operator, (f"+ {touch} +", (r0, one))), ValueError),
        ("Operator with a hostile str", "Operator", (Operator, (HostileStr("*"), (r0, one))), ValueError),
        ("Operator with a lying str", "Operator", (Operator, (LyingStr(code), (r0, one))), ValueError),
        ("Operator with plain operands", "Operator", (Operator, ("*", (0, 3))), TypeError),
        (
            "Operator from forged state",
            "Operator",
            forged(Operator, {"symbol": "+", "operands": (r0, one), "spec": forged_spec(sentinel), "fn": None}),
            TypeError,
        ),
        ("Placeholder with a payload", "Unpack", (Placeholder, (code,)), TypeError),
        ("GetAttr with an int", "GetAttr", (GetAttr, (3,)), TypeError),
        ("GetAttr with a hostile str", "GetAttr", (GetAttr, (HostileStr("real"),)), TypeError),
        ("GetAttr from forged state", "GetAttr", forged(GetAttr, {"name": 3}), TypeError),
        ("Slice with a plain index", "Slice", (Slice, (1,)), TypeError),
        ("Call with a plain callable", "Call", (Call, (len, (r0,), Const({}))), TypeError),
        ("Call with int kwargs keys", "Call", (Call, (Const(len), (r0,), Const({1: 2}))), TypeError),
        ("MethodCall with a hostile name", "MethodCall", (MethodCall, (HostileStr("count"), (), Const({}))), TypeError),
        ("MethodCall with an int kwarg key", "MethodCall", (MethodCall, ("count", (), DictT([1], [r0]))), TypeError),
        ("Ref with a hostile int", "Ref", (Ref, (HostileInt(0),)), TypeError),
        ("Ref with a code string", "Ref", (Ref, (code,)), TypeError),
        ("Ref with a negative index", "Ref", (Ref, (-1,)), ValueError),
        ("Ref from forged state", "Ref", forged(Ref, {"index": code}), TypeError),
        ("Const from forged state", "Const", forged(Const, {"value": [1, 2]}), TypeError),
        ("ListT with a plain item", "ListT", (ListT, ((r0, 0),)), TypeError),
        ("TupleT from forged state", "TupleT", forged(TupleT, {"items": (code,)}), TypeError),
        ("NamedTupleT with a list class", "NamedTupleT", (NamedTupleT, (list, (r0, one, one))), TypeError),
        ("SliceT of two items", "SliceT", (SliceT, ((r0, Const(None)),)), ValueError),
        ("DictT with a missing value", "DictT", (DictT, (("k", "j"), (r0,))), ValueError),
        ("DictT from forged state", "DictT", forged(DictT, {"keys": ("k",), "values": (code,)}), TypeError),
    ]


@pytest.mark.parametrize("index", range(len(tampered_cases(Path("SENTINEL")))))
def test_a_tampered_pickle_is_refused_at_load(index: int, sentinel: Path) -> None:
    label, kind, reduction, error = tampered_cases(sentinel)[index]
    model, targets = sample_model()
    model(*sample_inputs())  # the untampered model runs
    data = tampered(model, {id(targets[kind]): reduction})
    assert data != pickle.dumps(model, protocol=4), label
    with pytest.raises(error):
        loaded = allowlisted_loads(data)
        # Not reached. A load that succeeds fails the test, after running the model
        # to show whether the hostile code would have run.
        with contextlib.suppress(Exception):
            loaded(*sample_inputs())
        pytest.fail(f"{label}: the tampered pickle loaded")
    assert not sentinel.exists(), label


def sample_inputs() -> tuple[Any, ...]:
    return ([4, 5, 6], 1)


def test_every_class_has_a_tampered_pickle_case() -> None:
    kinds = {label.split()[0] for label, _, _, _ in tampered_cases(Path("SENTINEL"))}
    assert kinds >= {"Unpack", "Operator", "Placeholder", "GetAttr", "Slice", "Call", "MethodCall"}
    assert kinds >= {"Ref", "Const", "ListT", "TupleT", "NamedTupleT", "SliceT", "DictT"}


def test_a_forged_operator_table_entry_never_reaches_the_source(sentinel: Path) -> None:
    # An Operator made without its constructor holds a forged table entry: it is
    # refused when loaded, and code generation writes the table's text whatever
    # an operation holds.
    op = object.__new__(Operator)
    for key, value in {"symbol": "+", "operands": (Ref(0), Const(1)), "spec": forged_spec(sentinel)}.items():
        object.__setattr__(op, key, value)
    code = generate(one_step_plan(op))
    assert "__import__" not in code.source and "v0 = v0 + 1" in code.source
    assert compile_generated(code)(2) == 3
    with pytest.raises(TypeError, match="rebuilt through its constructor"):
        op.__setstate__((None, {"symbol": "+"}))
    assert not sentinel.exists()


def test_an_operation_made_without_its_constructor_holds_nothing() -> None:
    # NEWOBJ alone, without BUILD, leaves every slot empty: generating code fails
    # on the first read, before anything is written.
    model, targets = sample_model()
    data = tampered(model, {id(targets["Unpack"]): (copyreg.__newobj__, (Unpack,))})
    with pytest.raises(AttributeError):
        allowlisted_loads(data)


def test_copies_still_go_through_the_constructors() -> None:
    import copy

    model, direct = everything_model()
    for op in (step.op for step in model.plan.steps):
        clone = copy.deepcopy(op)
        assert type(clone) is type(op) and repr(clone) == repr(op)
        assert repr(copy.copy(op)) == repr(op)
    clone = copy.deepcopy(model)
    assert clone(*NEW_DATA[1]) == direct(*NEW_DATA[1])


# -- Template.map -------------------------------------------------------------------------------


def test_map_shares_every_ref_free_part() -> None:
    free_list = ListT([Const(1), Const("a")])
    free_dict = DictT(["k"], [Const(2)])
    free_slice = SliceT([Const(1), Const(None), Const(2)])
    inner = TupleT([Ref(1), free_list])
    t = TupleT([Ref(0), free_list, free_dict, inner, NamedTupleT(Match, [Const(0), Ref(2), free_slice])])
    mapped = t.map(lambda r: Ref(r.index + 10))
    assert isinstance(mapped, TupleT) and mapped is not t
    assert mapped.items[1] is free_list and mapped.items[2] is free_dict
    assert mapped.items[3] is not inner and mapped.items[3].items[1] is free_list  # type: ignore[attr-defined]
    named = mapped.items[4]
    assert isinstance(named, NamedTupleT) and named.cls is Match
    assert named.items[0] is t.items[4].items[0] and named.items[2] is free_slice  # type: ignore[attr-defined]
    assert mapped.refs() == [10, 11, 12]
    assert mapped.constants() == t.constants()
    # Nothing changes: the very same template comes back, and Ref-free ones too.
    assert t.map(lambda r: r) is t
    for free in (free_list, free_dict, free_slice, Const(5)):
        assert free.map(lambda r: pytest.fail("no Ref to map")) is free
    keyed = DictT(["a", "b"], [Ref(0), free_list]).map(lambda r: Ref(3))
    assert isinstance(keyed, DictT) and keyed.keys == ("a", "b") and keyed.values[1] is free_list


def test_map_replaces_a_ref_root() -> None:
    replacement = Const("x")
    assert Ref(4).map(lambda r: replacement) is replacement


def deep_template(depth: int) -> Template:
    t: Template = Ref(0)
    kinds: list[Callable[[Template], Template]] = [
        lambda c: ListT([c, Const(1)]),
        lambda c: TupleT([Const(2), c]),
        lambda c: DictT(["k"], [c]),
        lambda c: NamedTupleT(Match, [c, Const(0), Const(0)]),
        lambda c: SliceT([Const(None), c, Const(None)]),
    ]
    for level in range(depth):
        t = kinds[level % len(kinds)](t)
    return t


def depth_of(t: Template) -> int:
    depth = 0
    while t.children():
        t = next(c for c in t.children() if c.refs())
        depth += 1
    return depth


def test_map_handles_deep_nesting() -> None:
    t = deep_template(MAX_DEPTH - 1)
    mapped = t.map(lambda r: Ref(r.index + 1))
    assert depth_of(mapped) == MAX_DEPTH - 1 and mapped.refs() == [1]
    assert mapped.constants() == t.constants()
    # The emitted expression is within what the parser accepts and rebuilds the structure.
    code = generate(Plan((InputSpec("x", "int", None),), None, (), t))
    assert_only_pool_names(code)
    assert compile_generated(code)(7) == t.evaluate([7])


def _stack_depth() -> int:
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1  # type: ignore[assignment]
    return depth


def test_map_and_walks_are_iterative() -> None:
    t = deep_template(MAX_DEPTH - 1)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(_stack_depth() + 40)  # far fewer frames than the template is deep
    try:
        mapped = t.map(lambda r: Ref(r.index + 2))
        refs, constants = mapped.refs(), mapped.constants()
    finally:
        sys.setrecursionlimit(limit)
    assert refs == [2] and constants == t.constants() and depth_of(mapped) == MAX_DEPTH - 1
