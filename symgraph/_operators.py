"""The operator table: the one place that says what each Python operator is.

Every use of an operator derives from :data:`OPERATORS`: the handle's dunder
methods and their reflected forms, the names shown in summaries, the Python
source that code generation writes, the evaluation function, and what backend
plugins map their own operator hooks to (the torch plugin's reflected calls,
its pytorch-symbolic compatibility handle). This is the role torch.fx's
``magic_methods`` table plays for its proxy and its code generation.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = ["BINARY", "OPERATORS", "UNARY", "OperatorSpec", "operator_spec"]


@dataclass(frozen=True)
class OperatorSpec:
    """One Python operator.

    Attributes:
        symbol: The table key: the operator's source text for binary operators
            (``"+"``), a word for unary ones (``"neg"``).
        arity: 1 or 2.
        fn: The function that evaluates it (``operator.add``).
        name: Base name in summaries (``"Add"``, shown as ``AddOpLayer``).
        dunder: The method Python calls (``"__add__"``).
        reflected: The reflected method (``"__radd__"``), or ``None`` for
            comparisons and unary operators.
        template: Python source with ``{0}`` and ``{1}`` for the operands.
            The operands code generation fills in are always atoms (names,
            literals, calls), so no parentheses are needed.
        equality: ``==`` or ``!=``. Handles record them like the others, but
            leave the node pending until it is used (Python's containers compare
            with ``==`` while searching); a compatibility handle that promises
            identity equality skips them.

    Example:
        >>> spec = OPERATORS["-"]
        >>> spec.dunder, spec.reflected, spec.template.format("v0", "1"), spec.fn(5, 2)
        ('__sub__', '__rsub__', 'v0 - 1', 3)
    """

    symbol: str
    arity: int
    fn: Callable[..., Any]
    name: str
    dunder: str
    reflected: str | None
    template: str
    equality: bool = False


def _binary(
    symbol: str, fn: Callable[[Any, Any], Any], name: str, method: str, *, reflected: bool = True
) -> OperatorSpec:
    return OperatorSpec(
        symbol, 2, fn, name, f"__{method}__", f"__r{method}__" if reflected else None, f"{{0}} {symbol} {{1}}"
    )


_TABLE = (
    _binary("+", operator.add, "Add", "add"),
    _binary("-", operator.sub, "Sub", "sub"),
    _binary("*", operator.mul, "Mul", "mul"),
    _binary("/", operator.truediv, "Div", "truediv"),
    _binary("//", operator.floordiv, "FloorDiv", "floordiv"),
    _binary("%", operator.mod, "Mod", "mod"),
    _binary("**", operator.pow, "Pow", "pow"),
    # divmod() is a builtin, not an operator, but Python dispatches it like one:
    # __divmod__, then the other operand's __rdivmod__.
    OperatorSpec("divmod", 2, divmod, "DivMod", "__divmod__", "__rdivmod__", "divmod({0}, {1})"),
    _binary("@", operator.matmul, "MatMul", "matmul"),
    _binary("&", operator.and_, "And", "and"),
    _binary("|", operator.or_, "Or", "or"),
    _binary("^", operator.xor, "Xor", "xor"),
    _binary("<<", operator.lshift, "LShift", "lshift"),
    _binary(">>", operator.rshift, "RShift", "rshift"),
    # Comparisons have no reflected method: Python swaps ``<`` for the other
    # operand's ``>`` itself.
    _binary("<", operator.lt, "Lt", "lt", reflected=False),
    _binary("<=", operator.le, "Le", "le", reflected=False),
    _binary(">", operator.gt, "Gt", "gt", reflected=False),
    _binary(">=", operator.ge, "Ge", "ge", reflected=False),
    OperatorSpec("==", 2, operator.eq, "Eq", "__eq__", None, "{0} == {1}", equality=True),
    OperatorSpec("!=", 2, operator.ne, "Ne", "__ne__", None, "{0} != {1}", equality=True),
    OperatorSpec("neg", 1, operator.neg, "Neg", "__neg__", None, "-{0}"),
    OperatorSpec("pos", 1, operator.pos, "Pos", "__pos__", None, "+{0}"),
    OperatorSpec("invert", 1, operator.invert, "Invert", "__invert__", None, "~{0}"),
    OperatorSpec("abs", 1, abs, "Abs", "__abs__", None, "abs({0})"),
)

OPERATORS: Mapping[str, OperatorSpec] = MappingProxyType({spec.symbol: spec for spec in _TABLE})
"""Every operator, by symbol."""
BINARY: tuple[OperatorSpec, ...] = tuple(spec for spec in _TABLE if spec.arity == 2)
"""The binary operators, in table order."""
UNARY: tuple[OperatorSpec, ...] = tuple(spec for spec in _TABLE if spec.arity == 1)
"""The unary operators, in table order."""


def operator_spec(symbol: object, arity: int) -> OperatorSpec:
    """The table entry for ``symbol`` with ``arity`` operands.

    Only an exact ``str`` is looked up: a ``str`` subclass could compare equal to
    a key while carrying other text.

    Raises:
        ValueError: there is no such operator.

    Example:
        >>> operator_spec("**", 2).name
        'Pow'
    """
    if type(symbol) is not str:
        # Named by type only: the repr of a str subclass is its own code.
        raise ValueError(f"unknown operator: the symbol must be an exact str, got {type(symbol).__name__}")
    spec = OPERATORS.get(symbol)
    if spec is None or spec.arity != arity:
        raise ValueError(f"unknown operator {symbol!r} for {arity} operand(s)")
    return spec
