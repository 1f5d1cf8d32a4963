"""Code generation: a plan becomes the source of one straight-line Python function.

Nothing the user wrote is ever pasted into the source. Names in the source are
ours (``v3``, ``c0``, ``replay``); every user object, including attribute names,
dict keys and custom names, reaches the code only as a constant looked up by one
of those names. Operator symbols come from a fixed table.

Variables are reused once their value has no later use, and deleted when they
are not reused at once, so replay releases each intermediate as early as
hand-written code would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from symgraph._ops import BINARY_OPERATORS, Call, GetAttr, MethodCall, Operation, Operator, Slice, Unpack, nth
from symgraph._plan import Plan
from symgraph._templates import Const, DictT, ListT, NamedTupleT, Ref, SliceT, Template, TupleT

__all__ = ["FUNCTION_NAME", "ConstantPool", "GeneratedCode", "emit_template", "generate", "register_emitter"]

FUNCTION_NAME = "replay"


class ConstantPool:
    """Names for constants referenced by generated code.

    Exact ints, ``None`` and bools are written as literals; everything else gets a
    name ``c<k>``, once per object.

    Example:
        >>> pool = ConstantPool()
        >>> pool.ref(3), pool.ref("key"), pool.ref("key"), pool.ref(-2)
        ('3', 'c0', 'c0', '(-2)')
        >>> pool.namespace
        {'c0': 'key'}
    """

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {}
        self._by_id: dict[int, str] = {}

    def ref(self, value: Any) -> str:
        """An expression that evaluates to ``value``."""
        tp = type(value)
        if value is None or tp is bool:
            return repr(value)
        if tp is int:
            # Integer reprs are digits only; negative ones are wrapped so that
            # ``(-2) ** v`` keeps its meaning.
            return repr(value) if value >= 0 else f"({value!r})"
        name = self._by_id.get(id(value))
        if name is None:
            name = self._by_id[id(value)] = f"c{len(self.namespace)}"
            self.namespace[name] = value
        return name


Emitter = Callable[[Operation, Sequence[str], ConstantPool], str]
_EMITTERS: dict[type, Emitter] = {}


def register_emitter(op_type: type, emitter: Emitter) -> None:
    """Teach code generation a new operation type.

    Args:
        op_type: The :class:`~symgraph.Operation` subclass.
        emitter: ``emitter(op, arg_names, pool)`` returns a Python expression; it
            may use ``arg_names`` (variables of the op's parents, in order) and
            names from ``pool.ref(obj)``, and nothing taken from user input.

    Example:
        >>> import symgraph
        >>> class Double(symgraph.Operation):
        ...     def evaluate(self, args):
        ...         return args[0] * 2
        >>> symgraph.register_emitter(Double, lambda op, args, pool: f"{args[0]} * 2")
        >>> x = symgraph.CustomInput(5)
        >>> y = symgraph.record(Double(), (x.node,))
        >>> symgraph.SymbolicModel(x, y)(21)
        42
    """
    _EMITTERS[op_type] = emitter


def emit_template(t: Template, names: Sequence[str], pool: ConstantPool) -> str:
    """Python expression that rebuilds template ``t``.

    Example:
        >>> from symgraph._templates import Const, ListT, Ref
        >>> emit_template(ListT([Ref(0), Const(1)]), ["v4"], ConstantPool())
        '[v4, 1]'
    """
    if isinstance(t, Ref):
        return names[t.index]
    if isinstance(t, Const):
        return pool.ref(t.value)
    if isinstance(t, DictT):
        pairs = ", ".join(
            f"{pool.ref(k)}: {emit_template(v, names, pool)}" for k, v in zip(t.keys, t.values, strict=True)
        )
        return "{" + pairs + "}"
    assert isinstance(t, (ListT, TupleT, NamedTupleT, SliceT)), t
    items = [emit_template(item, names, pool) for item in t.items]
    if isinstance(t, ListT):
        return "[" + ", ".join(items) + "]"
    if isinstance(t, TupleT):
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    head = pool.ref(t.cls) if isinstance(t, NamedTupleT) else pool.ref(slice)
    return f"{head}({', '.join(items)})"


def _emit_operator(op: Operation, args: Sequence[str], pool: ConstantPool) -> str:
    assert isinstance(op, Operator)
    operands = [emit_template(t, args, pool) for t in op.operands]
    if op.symbol in BINARY_OPERATORS:
        return f"{operands[0]} {op.symbol} {operands[1]}"
    if op.symbol == "abs":
        return f"abs({operands[0]})"
    return {"neg": "-", "pos": "+", "invert": "~"}[op.symbol] + operands[0]


def _emit_getattr(op: Operation, args: Sequence[str], pool: ConstantPool) -> str:
    assert isinstance(op, GetAttr)
    return f"getattr({args[0]}, {pool.ref(op.name)})"


def _emit_slice(op: Operation, args: Sequence[str], pool: ConstantPool) -> str:
    assert isinstance(op, Slice)
    return f"{args[0]}[{emit_template(op.index, args, pool)}]"


def _emit_arguments(op: Call | MethodCall, args: Sequence[str], pool: ConstantPool) -> str:
    parts = [emit_template(t, args, pool) for t in op.args]
    if isinstance(op.kwargs, DictT) or op.kwargs.value:
        parts.append("**" + emit_template(op.kwargs, args, pool))
    return ", ".join(parts)


def _emit_call(op: Operation, args: Sequence[str], pool: ConstantPool) -> str:
    assert isinstance(op, Call)
    return f"{emit_template(op.func, args, pool)}({_emit_arguments(op, args, pool)})"


def _emit_method_call(op: Operation, args: Sequence[str], pool: ConstantPool) -> str:
    assert isinstance(op, MethodCall)
    # The name is a constant, never pasted in as ``.name``: it came from the user.
    return f"getattr({args[0]}, {pool.ref(op.name)})({_emit_arguments(op, args, pool)})"


def _emit_unpack(op: Operation, args: Sequence[str], pool: ConstantPool) -> str:
    assert isinstance(op, Unpack)
    if op.by_index:
        return f"{args[0]}[{op.index}]"
    return f"{pool.ref(nth)}({args[0]}, {op.index})"


for _type, _emitter in (
    (Operator, _emit_operator),
    (GetAttr, _emit_getattr),
    (Slice, _emit_slice),
    (Call, _emit_call),
    (MethodCall, _emit_method_call),
    (Unpack, _emit_unpack),
):
    register_emitter(_type, _emitter)


def _emitter_for(op: Operation) -> Emitter:
    for cls in type(op).__mro__:
        emitter = _EMITTERS.get(cls)
        if emitter is not None:
            return emitter
    raise TypeError(
        f"no code emitter is registered for operation type {type(op).__name__}; see symgraph.register_emitter"
    )


@dataclass(frozen=True)
class GeneratedCode:
    """The generated source of a replay function and the constants it refers to.

    Attributes:
        source: Python source defining ``replay``.
        namespace: The constants, by the names the source uses.
        lines: For each step, the 1-based source line that runs it.
    """

    source: str
    namespace: dict[str, Any] = field(repr=False)
    lines: tuple[int, ...] = field(repr=False)


def generate(plan: Plan, *, pool: ConstantPool | None = None, leading: Sequence[str] = ()) -> GeneratedCode:
    """Generate the replay function's source for ``plan``.

    Args:
        plan: The plan.
        pool: The constant pool to fill; a backend passes a subclass to change how
            some constants are reached (through an attribute of the model, say).
        leading: Names of extra parameters placed before the inputs, for the
            pool's expressions to use. They are fixed by the backend, never taken
            from user input, and must be identifiers that are not ``v<k>``/``c<k>``.

    Example:
        >>> import symgraph
        >>> from symgraph._plan import build_plan
        >>> x = symgraph.CustomInput(2)
        >>> print(generate(build_plan(x, abs(x * 3) - 1)[0]).source, end="")
        def replay(v0):
            v0 = v0 * 3
            v0 = abs(v0)
            v0 = v0 - 1
            return v0
    """
    n_inputs = len(plan.inputs)
    n_slots = n_inputs + len(plan.steps)
    keep = plan.output_slots()
    last_use = [-1] * n_slots
    for j, step in enumerate(plan.steps):
        for s in step.args:
            last_use[s] = j

    for name in leading:
        if not name.isidentifier() or (name[0] in "vc" and name[1:].isdigit()) or name == FUNCTION_NAME:
            raise ValueError(f"leading parameter name {name!r} is not a free identifier")
    pool = pool if pool is not None else ConstantPool()
    name_of: list[str | None] = [f"v{i}" for i in range(n_inputs)] + [None] * len(plan.steps)
    free: list[str] = []
    n_names = n_inputs
    for s in range(n_inputs):
        if last_use[s] < 0 and s not in keep:
            free.append(f"v{s}")  # an unused input's variable can be reused at once

    body: list[str] = []
    lines: list[int] = []
    for j, step in enumerate(plan.steps):
        args = [name_of[s] for s in step.args]
        expr = _emitter_for(step.op)(step.op, args, pool)  # type: ignore[arg-type]
        dead = [name_of[s] for s in dict.fromkeys(step.args) if last_use[s] == j and s not in keep]
        free.extend(dead)  # type: ignore[arg-type]
        if free:
            target = free.pop()
        else:
            target = f"v{n_names}"
            n_names += 1
        name_of[n_inputs + j] = target
        lines.append(len(body) + 2)
        body.append(f"    {target} = {expr}")
        # A dead value that the assignment did not overwrite would otherwise stay
        # alive until its name is reused, or until the replay returns.
        released = [name for name in dead if name != target]
        if released and j < len(plan.steps) - 1:
            body.append(f"    del {', '.join(released)}")  # type: ignore[arg-type]
    result = emit_template(plan.outputs, name_of, pool)  # type: ignore[arg-type]
    params = ", ".join([*leading, *(f"v{i}" for i in range(n_inputs))])
    source = "\n".join([f"def {FUNCTION_NAME}({params}):", *body, f"    return {result}", ""])
    return GeneratedCode(source, pool.namespace, tuple(lines))
