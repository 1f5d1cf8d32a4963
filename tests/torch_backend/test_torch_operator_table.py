"""The torch plugin and the operator table: real tensors on either side, the compatibility handle.

A real tensor on the left of an operator reaches a symbolic tensor through
``__torch_function__``; every table operator must still record an ``Operator``
node that replays like eager torch. ``SymbolicObject`` records every table
operator as a method call, as pytorch-symbolic does. ``ModuleCall`` payloads are
validated like the core operations'.
"""

from __future__ import annotations

import copy
import io
import pickle
from collections.abc import Callable
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import symgraph  # noqa: E402
import symgraph_torch  # noqa: E402
from symgraph.plugin import BINARY, OPERATORS, UNARY, Call, Const, DictT, GetAttr, Operator, Ref  # noqa: E402
from symgraph.testing import EAGER_BINARY, EAGER_UNARY  # noqa: E402
from symgraph_torch import SymbolicObject  # noqa: E402
from symgraph_torch._tracing import ModuleCall, NestedModelCall  # noqa: E402

#: The same comparison with its operands swapped.
MIRRORED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
INTEGER_OPS = frozenset({"&", "|", "^", "<<", ">>"})


def operands_for(symbol: str) -> tuple[Callable[[], Any], torch.Tensor, Callable[[], torch.Tensor]]:
    """``(make a symbolic input, the real tensor, new data for the input)``; ints for bitwise and shifts."""
    if symbol in INTEGER_OPS:
        real = torch.tensor([1, 2, 3])
        return (
            lambda: symgraph_torch.Input((3,), dtype=torch.int64, min_value=0, max_value=4),
            real,
            lambda: torch.randint(0, 5, (4, 3)),
        )
    if symbol == "@":
        return lambda: symgraph_torch.Input((3, 3)), torch.rand(3, 3) + 1, lambda: torch.rand(2, 3, 3) + 1
    return (
        lambda: symgraph_torch.Input((3,), min_value=1.0, max_value=2.0),
        torch.tensor([1.5, 2.0, 3.0]),
        lambda: torch.rand(4, 3) + 1,
    )


def supported() -> list[str]:
    """The binary operators that real tensors support with each other."""
    found = []
    for spec in BINARY:
        _, real, new = operands_for(spec.symbol)
        try:
            EAGER_BINARY[spec.symbol](real, new())
        except (TypeError, RuntimeError):
            continue
        found.append(spec.symbol)
    return found


def test_the_cases_cover_the_table() -> None:
    assert set(EAGER_BINARY) == {spec.symbol for spec in BINARY}
    assert set(EAGER_UNARY) == {spec.symbol for spec in UNARY}
    # torch tensors support every binary operator but divmod(): torch.Tensor has no
    # __divmod__, and recording refuses it the same way (see below).
    assert set(supported()) == set(EAGER_BINARY) - {"divmod"}


def test_divmod_on_a_symbolic_tensor_fails_as_it_does_eagerly() -> None:
    make, real, _ = operands_for("divmod")
    x = make()
    with pytest.raises(TypeError) as eager:
        divmod(real, 2)
    with pytest.raises(TypeError) as recorded:
        divmod(x, 2)
    assert str(recorded.value) == str(eager.value)
    assert x.children == ()


def assert_records(y: Any, symbol: str, real: torch.Tensor) -> None:
    """``y`` is ``real op x`` as an Operator: in that order, or mirrored with the operands swapped."""
    op = y.op
    assert type(op) is Operator, op
    (first, second) = op.operands
    if op.symbol == symbol and type(first) is Const:
        assert first.value is real and type(second) is Ref and second.index == 0
    else:
        assert op.symbol == MIRRORED.get(symbol), (symbol, op)
        assert type(first) is Ref and first.index == 0 and type(second) is Const and second.value is real
    assert op.spec is OPERATORS[op.symbol]


def assert_same(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    assert torch.equal(actual, expected), (actual, expected)


@pytest.mark.parametrize("symbol", supported())
def test_a_real_tensor_on_the_left_records_the_table_operator(symbol: str) -> None:
    make, real, new = operands_for(symbol)
    eager = EAGER_BINARY[symbol]
    x = make()
    y = eager(real, x)
    assert isinstance(y, symgraph_torch.SymbolicTensor)
    assert_records(y, symbol, real)
    model = symgraph_torch.SymbolicModel(x, y)
    for _ in range(2):
        data = new()
        assert_same(model(data), eager(real, data))
    # The core model replays it too, through the interpreter and generated code.
    core = symgraph.SymbolicModel(x, y)
    data = new()
    assert_same(core(data), eager(real, data))
    assert_same(core.interpret(data), eager(real, data))


@pytest.mark.parametrize("symbol", supported())
def test_a_real_tensor_on_the_right_records_the_table_operator(symbol: str) -> None:
    make, real, new = operands_for(symbol)
    eager = EAGER_BINARY[symbol]
    x = make()
    y = eager(x, real)
    op = y.op
    assert type(op) is Operator and op.symbol == symbol
    assert type(op.operands[0]) is Ref and type(op.operands[1]) is Const and op.operands[1].value is real
    model = symgraph_torch.SymbolicModel(x, y)
    data = new()
    assert_same(model(data), eager(data, real))


def test_two_symbolic_tensors_record_the_operator_named_by_the_table() -> None:
    for symbol in supported():
        make, _, new = operands_for(symbol)
        x, z = make(), make()
        y = EAGER_BINARY[symbol](x, z)
        assert type(y.op) is Operator and y.op.symbol == symbol
        model = symgraph_torch.SymbolicModel((x, z), y)
        a, b = new(), new()
        assert_same(model(a, b), EAGER_BINARY[symbol](a, b))
        assert model.plan.steps[0].name == OPERATORS[symbol].name + "OpLayer_1"


# -- the pytorch-symbolic compatibility handle -----------------------------------------------------


class Mat:
    """Supports ``@`` only; ``a @ b`` is not ``b @ a``."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, v: int) -> None:
        self.v = v

    def __matmul__(self, other: Any) -> Any:
        return Mat(self.v * 10 + other.v) if isinstance(other, Mat) else NotImplemented

    def __rmatmul__(self, other: Any) -> Any:
        return Mat(other.v * 10 + self.v) if isinstance(other, Mat) else NotImplemented  # other @ self

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mat) and other.v == self.v


def test_symbolic_object_has_every_table_dunder_but_equality() -> None:
    names = vars(SymbolicObject)
    for spec in OPERATORS.values():
        for name in (spec.dunder, spec.reflected):
            if name is None:
                continue
            if spec.equality:
                # pytorch-symbolic's identity semantics, written on the class itself.
                assert names[name].__qualname__ == f"SymbolicObject.{name}"
            else:
                assert name in names and names[name].__name__ == name


def method_call_of(y: Any, dunder: str) -> None:
    """``y`` is a call of the ``dunder`` attribute of the input, as pytorch-symbolic records it."""
    assert isinstance(y, SymbolicObject)
    assert isinstance(y.op, Call) and type(y.op.func) is Ref
    (method,) = y.parents
    assert isinstance(method, SymbolicObject)
    assert type(method.op) is GetAttr and method.op.name == dunder


@pytest.mark.parametrize("spec", [s for s in BINARY if not s.equality], ids=lambda s: s.symbol)
def test_symbolic_object_records_operators_as_method_calls(spec: Any) -> None:
    eager = EAGER_BINARY[spec.symbol]
    a, b, new = (Mat(2), Mat(3), Mat(5)) if spec.symbol == "@" else (7, 3, 9)
    x = symgraph_torch.CustomInput(a)
    y = eager(x, b)
    method_call_of(y, spec.dunder)
    assert symgraph.SymbolicModel(x, y)(new) == eager(new, b)
    x = symgraph_torch.CustomInput(a)
    y = eager(b, x)
    # Python asks the right operand for the reflected method, or for the mirrored comparison.
    dunder = spec.reflected or OPERATORS[MIRRORED[spec.symbol]].dunder
    method_call_of(y, dunder)
    assert symgraph.SymbolicModel(x, y)(new) == eager(b, new)


@pytest.mark.parametrize("spec", [s for s in BINARY if not s.equality and s.symbol != "@"], ids=lambda s: s.symbol)
@pytest.mark.parametrize("executor", ["codegen", "interpreter"])
def test_a_method_that_declines_the_new_value_gives_the_operators_answer(spec: Any, executor: str) -> None:
    # Recorded on a float, replayed on an int: int.__add__(2.5) is NotImplemented,
    # and Python's operator then asks float.__radd__; so must the model.
    eager = EAGER_BINARY[spec.symbol]
    other = 2.5 if spec.symbol not in ("&", "|", "^", "<<", ">>") else True
    example = 1.5 if isinstance(other, float) else 6
    x = symgraph_torch.CustomInput(example)
    forward, reflected = eager(x, other), eager(other, x)
    model = symgraph.SymbolicModel(x, (forward, reflected), executor=executor)
    new = 3 if isinstance(other, float) else False
    assert model(new) == (eager(new, other), eager(other, new))


@pytest.mark.parametrize("spec", UNARY, ids=lambda s: s.symbol)
def test_symbolic_object_records_unary_operators_as_method_calls(spec: Any) -> None:
    x = symgraph_torch.CustomInput(-7)
    y = EAGER_UNARY[spec.symbol](x)
    method_call_of(y, spec.dunder)
    assert symgraph.SymbolicModel(x, y)(5) == EAGER_UNARY[spec.symbol](5)


def test_symbolic_object_keeps_identity_for_equality() -> None:
    x, z = symgraph_torch.CustomInput(3), symgraph_torch.CustomInput(3)
    assert (x == x) is True and (x == z) is False and (x != z) is True
    assert {x: 1}[x] == 1 and x.children == ()


# -- ModuleCall payloads ---------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [ModuleCall, NestedModelCall])
def test_module_call_payloads_are_validated(cls: type[ModuleCall]) -> None:
    layer = nn.ReLU()
    ok = Const({})
    bad: list[Callable[[], Any]] = [
        lambda: cls(Const(layer), [1], ok),  # a plain argument
        lambda: cls(Const(layer), [torch.ones(1)], ok),
        lambda: cls(Const(layer), "ab", ok),
        lambda: cls(Const(layer), [Ref(0)], {}),  # kwargs not a template
        lambda: cls(Const(layer), [Ref(0)], Const({1: 2})),  # a non-str keyword
        lambda: cls(Const(layer), [Ref(0)], DictT([3], [Ref(0)])),
        lambda: cls(Const(layer), [Ref(0)], Const([("k", 1)])),
        lambda: cls(layer, [Ref(0)], ok),  # the layer not a template
        lambda: cls(Ref(0), [Ref(1)], ok),  # the layer must be a constant module
        lambda: cls(Const(len), [Ref(0)], ok),
        lambda: cls(Const("0]; __import__('os').system('touch SENTINEL') #"), [Ref(0)], ok),
    ]
    for build in bad:
        with pytest.raises(TypeError):
            build()
    op = cls(Const(layer), [Ref(0)], DictT(["inplace"], [Ref(1)]))
    clone = copy.deepcopy(op)
    assert type(clone) is cls and type(clone.layer) is nn.ReLU


def test_a_tampered_module_call_is_refused_when_loaded() -> None:
    x = symgraph.CustomInput(torch.ones(2, 3))
    y = nn.ReLU()(x)
    assert type(y.op) is ModuleCall
    model = symgraph.SymbolicModel(x, y)
    restored = pickle.loads(pickle.dumps(model))
    assert_same(restored(torch.full((2, 3), -1.0)), torch.zeros(2, 3))

    class Tampering(pickle.Pickler):
        def reducer_override(self, obj: Any) -> Any:
            if obj is y.op:
                return (ModuleCall, (Const(len), obj.args, obj.kwargs))
            return NotImplemented

    buffer = io.BytesIO()
    Tampering(buffer, protocol=4).dump(model)
    with pytest.raises(TypeError, match=r"nn\.Module"):
        pickle.loads(buffer.getvalue())
