"""Code generation: a plan becomes the source of straight-line Python functions.

Nothing the user wrote is ever pasted into the source. Names in the source are
ours (``v3``, ``c0``, ``replay``; ``replay_2`` and ``live`` in pieces); every
user object, including attribute names, dict keys and custom names, reaches the
code only as a constant looked up by one of those names. Operator text comes
from the operator table, and the few literals written directly (exact ints,
``None``, bools) are validated by type.

Three parts are kept apart:

* the :class:`ConstantPool` names constants, and nothing else;
* a :class:`CodegenPolicy`, provided by a backend or an executor, decides how
  the code reaches some values (a model's parameters, say) and may take over
  how some operations are written (fast paths for layers);
* emitters, one per operation type, write each step's expression, asking the
  :class:`EmitContext` for names.

Executing the source is not done here (see :mod:`symgraph._compile`).

Variables are reused once their value has no later use, and deleted when they
are not reused at once, so replay releases each intermediate as early as
hand-written code would.

A plan of more than :data:`PIECE_STEPS` steps is written in pieces, since
compiling one function takes more than linear time in its length. Each piece is
a function running up to that many steps, taking the policy's leading
parameters and the list ``live``. ``replay`` keeps its signature: it runs the
prologue, moves the inputs into ``live`` and calls the pieces in turn; the last
piece returns the outputs. A value needed past the piece that made it waits in
``live`` at an index of its own: that piece stores it there at its end, the
pieces that use it read it at their start, and the last of them takes it out,
so that its variable is the only reference left and the value is released at
its last use, as in one function. Values are handed over in a list rather than
as arguments because a caller's variables would hold every argument until the
piece returned. A piece reads only the values it uses and stores only those it
makes, so a wide graph costs no more per piece than a chain.
"""

from __future__ import annotations

import builtins
import functools
import keyword
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar

from symgraph._operators import operator_spec
from symgraph._ops import Call, Elements, GetAttr, MethodCall, Operation, Operator, Slice, Unpack, nth
from symgraph._plan import Plan
from symgraph._templates import Const, DictT, ListT, NamedTupleT, Ref, SliceT, Template, TupleT

__all__ = [
    "FUNCTION_NAME",
    "LIVE_NAME",
    "PIECE_STEPS",
    "CodegenPolicy",
    "ConstantPool",
    "EmitContext",
    "Emitter",
    "GeneratedCode",
    "emit_template",
    "generate",
    "register_emitter",
]

FUNCTION_NAME = "replay"
#: The list in which values wait between pieces.
LIVE_NAME = "live"
#: The most steps in one generated function; a longer plan is written in pieces
#: of this many. Compiling one function takes more than linear time in its
#: length (a million-step chain took twice as long per step as a 100,000-step
#: one, and 2 GiB), while pieces of 2,000 to 16,000 steps, each compiled on its
#: own, took the same time per step at either length; pieces of 1,000 steps or
#: fewer were slower (each function has a cost of its own). Tests lower it to
#: exercise pieces on small plans.
PIECE_STEPS = 2000
# Ints up to this size are written as literals; bigger ones are pool names.
_LITERAL_INT = 10**18

OpT = TypeVar("OpT", bound=Operation)


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
        if tp is int and -_LITERAL_INT <= value <= _LITERAL_INT:
            # Integer reprs are digits only; negative ones are wrapped so that
            # ``(-2) ** v`` keeps its meaning. Huge ones are pool names: Python
            # refuses to print an int of more than 4300 digits.
            return repr(value) if value >= 0 else f"({value!r})"
        name = self._by_id.get(id(value))
        if name is None:
            name = self._by_id[id(value)] = f"c{len(self.namespace)}"
            self.namespace[name] = value
        return name


class CodegenPolicy:
    """How generated code reaches values and writes steps, beyond the defaults.

    The default policy adds nothing: every constant is a pool name and every
    operation is written by its registered emitter. A backend subclasses it to
    read some constants through leading parameters (the torch plugin reads a
    model's parameters from the model at every call, so ``.to()`` and
    ``functional_call`` are seen), or to write some operations its own way.

    Attributes:
        leading: Names of extra parameters of the replay function, before the
            inputs. They are the backend's own identifiers, never user input,
            and must not look like ``v<k>``/``c<k>``.

    Example:
        >>> import symgraph
        >>> from symgraph.plugin import CodegenPolicy, build_plan, generate
        >>> class Scaled(CodegenPolicy):
        ...     leading = ("scale",)
        ...     def constant(self, value, ctx):
        ...         return "scale" if value == 10 else None
        ...     def leading_values(self):
        ...         return (10,)
        >>> x = symgraph.CustomInput(2.0)
        >>> print(generate(build_plan(x, x * 10.0)[0], Scaled()).source, end="")
        def replay(scale, v0):
            v0 = v0 * scale
            return v0
    """

    leading: tuple[str, ...] = ()

    def constant(self, value: Any, ctx: EmitContext) -> str | None:
        """An expression for constant ``value``, or ``None`` for the pool's name."""
        return None

    def emit(self, op: Operation, args: Sequence[str], ctx: EmitContext) -> str | None:
        """An expression for ``op``, or ``None`` to use its registered emitter."""
        return None

    def leading_values(self) -> tuple[Any, ...]:
        """The values bound to :attr:`leading` when the code runs."""
        return ()

    def prologue(self, ctx: EmitContext, params: Sequence[str]) -> list[str]:
        """Lines run before the first step, indented one level; ``params`` are the function's parameters.

        They may use only ``params`` and names from ``ctx``; the torch plugin uses
        it to switch to a version without fast paths while global hooks are set.
        """
        return []


class EmitContext:
    """What an emitter writes with: the constant pool, the policy, and the step's name.

    ``step`` is the display name of the step being written (``""`` outside a
    step); a guard names it in its error.

    Example:
        >>> ctx = EmitContext(ConstantPool(), CodegenPolicy())
        >>> ctx.ref("text"), ctx.template(ListT([Ref(0), Const(2)]), ["v7"])
        ('c0', '[v7, 2]')
    """

    __slots__ = ("policy", "pool", "step")

    def __init__(self, pool: ConstantPool, policy: CodegenPolicy) -> None:
        self.pool = pool
        self.policy = policy
        self.step = ""

    def ref(self, value: Any) -> str:
        """An expression for a constant: the policy's, else a pool name or literal."""
        expression = self.policy.constant(value, self)
        return expression if expression is not None else self.pool.ref(value)

    def template(self, t: Template, names: Sequence[str]) -> str:
        """Python expression that rebuilds template ``t`` (see :func:`emit_template`)."""
        return emit_template(t, names, self)

    def arguments(self, args: Sequence[Template], kwargs: Template, names: Sequence[str]) -> list[str]:
        """The argument list of a call: positional expressions, then ``**kwargs`` when there are any."""
        parts = [emit_template(t, names, self) for t in args]
        if isinstance(kwargs, DictT) or (isinstance(kwargs, Const) and kwargs.value):
            parts.append("**" + emit_template(kwargs, names, self))
        return parts


Emitter: TypeAlias = Callable[[OpT, Sequence[str], EmitContext], str]
"""An emitter for operations of type ``OpT``: ``emitter(op, arg_names, ctx)`` returns a Python expression."""

_EMITTERS: dict[type, Emitter[Any]] = {}


def register_emitter(op_type: type[OpT], emitter: Emitter[OpT]) -> None:
    """Teach code generation a new operation type.

    Args:
        op_type: The :class:`~symgraph.plugin.Operation` subclass; subclasses of
            it use the same emitter unless they register their own.
        emitter: ``emitter(op, arg_names, ctx)`` returns a Python expression. It
            may use ``arg_names`` (variables of the op's parents, in order),
            ``ctx.ref(obj)`` for constants and ``ctx.template(t, arg_names)``,
            and nothing taken from user input.

    Example:
        >>> import symgraph
        >>> from symgraph.plugin import Operation, record, register_emitter
        >>> class Double(Operation):
        ...     def evaluate(self, args):
        ...         return args[0] * 2
        >>> register_emitter(Double, lambda op, args, ctx: f"{args[0]} * 2")
        >>> x = symgraph.CustomInput(5)
        >>> symgraph.SymbolicModel(x, record(Double(), (x.node,)))(21)
        42
    """
    if not (isinstance(op_type, type) and issubclass(op_type, Operation)):
        raise TypeError(f"register_emitter() needs an Operation subclass, got {op_type!r}")
    if not callable(emitter):
        raise TypeError(f"register_emitter() needs a callable emitter, got {type(emitter).__name__}")
    _EMITTERS[op_type] = emitter


def emit_template(t: Template, names: Sequence[str], ctx: EmitContext) -> str:
    """Python expression that rebuilds template ``t``.

    Example:
        >>> emit_template(ListT([Ref(0), Const(1)]), ["v4"], EmitContext(ConstantPool(), CodegenPolicy()))
        '[v4, 1]'
    """
    if isinstance(t, Ref):
        return names[t.index]
    if isinstance(t, Const):
        return ctx.ref(t.value)
    if isinstance(t, DictT):
        pairs = ", ".join(
            f"{ctx.pool.ref(k)}: {emit_template(v, names, ctx)}" for k, v in zip(t.keys, t.values, strict=True)
        )
        return "{" + pairs + "}"
    if not isinstance(t, (ListT, TupleT, NamedTupleT, SliceT)):
        raise TypeError(f"no code for template type {type(t).__name__}")
    items = [emit_template(item, names, ctx) for item in t.items]
    if isinstance(t, ListT):
        return "[" + ", ".join(items) + "]"
    if isinstance(t, TupleT):
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    head = ctx.pool.ref(t.cls) if isinstance(t, NamedTupleT) else ctx.pool.ref(slice)
    return f"{head}({', '.join(items)})"


def _emit_operator(op: Operator, args: Sequence[str], ctx: EmitContext) -> str:
    # The text is looked up in the table here, not read from the operation's state.
    spec = operator_spec(op.symbol, len(op.operands))
    return spec.template.format(*(emit_template(t, args, ctx) for t in op.operands))


def _emit_getattr(op: GetAttr, args: Sequence[str], ctx: EmitContext) -> str:
    return f"getattr({args[0]}, {ctx.pool.ref(op.name)})"


def _emit_slice(op: Slice, args: Sequence[str], ctx: EmitContext) -> str:
    return f"{args[0]}[{emit_template(op.index, args, ctx)}]"


def _emit_call(op: Call, args: Sequence[str], ctx: EmitContext) -> str:
    return f"{emit_template(op.func, args, ctx)}({', '.join(ctx.arguments(op.args, op.kwargs, args))})"


def _emit_method_call(op: MethodCall, args: Sequence[str], ctx: EmitContext) -> str:
    # The name is a constant, never pasted in as ``.name``: it came from the user.
    return f"getattr({args[0]}, {ctx.pool.ref(op.name)})({', '.join(ctx.arguments(op.args, op.kwargs, args))})"


def _emit_unpack(op: Unpack, args: Sequence[str], ctx: EmitContext) -> str:
    # The index is an exact int (Unpack validates it), written by the pool as digits.
    if op.by_index:
        return f"{args[0]}[{ctx.pool.ref(op.index)}]"
    return f"{ctx.pool.ref(nth)}({args[0]}, {ctx.pool.ref(op.index)})"


def _emit_elements(op: Elements, args: Sequence[str], ctx: EmitContext) -> str:
    # One call per loop, not per element: the check and the conversion to a
    # sequence are done once, and each element is then a plain index.
    return f"{ctx.pool.ref(functools.partial(op.check, step=ctx.step))}({args[0]})"


register_emitter(Operator, _emit_operator)
register_emitter(Elements, _emit_elements)
register_emitter(GetAttr, _emit_getattr)
register_emitter(Slice, _emit_slice)
register_emitter(Call, _emit_call)
register_emitter(MethodCall, _emit_method_call)
register_emitter(Unpack, _emit_unpack)


def emitter_for(op: Operation) -> Emitter[Any]:
    """The emitter registered for ``op``'s type or its closest base class.

    Raises:
        TypeError: none is registered.
    """
    for cls in type(op).__mro__:
        emitter = _EMITTERS.get(cls)
        if emitter is not None:
            return emitter
    raise TypeError(
        f"no code emitter is registered for operation type {type(op).__name__}; see symgraph.plugin.register_emitter"
    )


@dataclass(frozen=True)
class GeneratedCode:
    """The generated source of a replay function and the constants it refers to.

    Attributes:
        source: Python source defining ``replay``.
        namespace: The constants, by the names the source uses.
        lines: For each step, the 1-based source line that runs it.
        leading: The policy's leading parameter names, before the inputs.
        pieces: For a plan written in pieces, each piece's function name with
            the first and the end step it runs (``range(first, end)``); empty
            when ``source`` is one function.
    """

    source: str
    namespace: Mapping[str, Any] = field(repr=False)
    lines: tuple[int, ...] = field(repr=False)
    leading: tuple[str, ...] = ()
    pieces: tuple[tuple[str, int, int], ...] = field(default=(), repr=False)


def _check_leading(names: Sequence[str]) -> None:
    for name in names:
        if (
            type(name) is not str
            or not name.isidentifier()
            or keyword.iskeyword(name)
            # A builtin's name would change what the emitters' getattr(), abs() or slice() call.
            or hasattr(builtins, name)
            or (name[0] in "vc" and name[1:].isdigit())
            or name in (FUNCTION_NAME, LIVE_NAME)
            or name.startswith(f"{FUNCTION_NAME}_")  # the pieces' names
        ):
            raise ValueError(f"leading parameter name {name!r} is not a free identifier")


class _Writer:
    """Writes steps one at a time, naming their variables as hand-written code would.

    A variable is reused once its value has no later use; when the assignment does
    not overwrite a dead value, a ``del`` releases it. The same naming runs across
    pieces: a value live at a piece boundary keeps its name, so no piece can
    write over it.
    """

    def __init__(self, plan: Plan, policy: CodegenPolicy, ctx: EmitContext, last_use: list[int], keep: set[int]):
        self.plan, self.policy, self.ctx = plan, policy, ctx
        self.last_use, self.keep = last_use, keep
        self.n_inputs = n_inputs = len(plan.inputs)
        self.name_of: list[str] = [f"v{i}" for i in range(n_inputs)] + [""] * len(plan.steps)
        # An unused input's variable can be reused at once.
        self.free = [f"v{s}" for s in range(n_inputs) if last_use[s] < 0 and s not in keep]
        self.n_names = n_inputs

    def step(self, j: int, indent: str, release: bool) -> list[str]:
        """The lines of step ``j``: its assignment, then a ``del`` of dead values when ``release``."""
        step = self.plan.steps[j]
        args = [self.name_of[s] for s in step.args]
        ctx = self.ctx
        ctx.step = step.name
        expr = self.policy.emit(step.op, args, ctx)
        if expr is None:
            expr = emitter_for(step.op)(step.op, args, ctx)
        last_use, keep = self.last_use, self.keep
        dead = [self.name_of[s] for s in dict.fromkeys(step.args) if last_use[s] == j and s not in keep]
        self.free.extend(dead)
        if self.free:
            target = self.free.pop()
        else:
            target = f"v{self.n_names}"
            self.n_names += 1
        self.name_of[self.n_inputs + j] = target
        lines = [f"{indent}{target} = {expr}"]
        # A dead value that the assignment did not overwrite would otherwise stay
        # alive until its name is reused, or until the function returns.
        released = [name for name in dead if name != target]
        if released and release:
            lines.append(f"{indent}del {', '.join(released)}")
        return lines


def generate(plan: Plan, policy: CodegenPolicy | None = None) -> GeneratedCode:
    """Generate the replay function's source for ``plan``.

    A plan of at most :data:`PIECE_STEPS` steps is one function, ``replay``. A
    longer one is written in pieces (see :data:`PIECE_STEPS`); ``replay`` keeps
    its parameters, and ``lines`` still gives the line of every step.

    Args:
        plan: The plan.
        policy: How constants are reached and steps written, beyond the defaults.

    Example:
        >>> import symgraph
        >>> from symgraph.plugin import build_plan
        >>> x = symgraph.CustomInput(2)
        >>> print(generate(build_plan(x, abs(x * 3) - 1)[0]).source, end="")
        def replay(v0):
            v0 = v0 * 3
            v0 = abs(v0)
            v0 = v0 - 1
            return v0
    """
    if not isinstance(plan, Plan):
        raise TypeError(f"generate() needs a Plan, got {type(plan).__name__}")
    policy = policy if policy is not None else CodegenPolicy()
    leading = tuple(policy.leading)
    _check_leading(leading)
    ctx = EmitContext(ConstantPool(), policy)
    n_inputs = len(plan.inputs)
    n_steps = len(plan.steps)
    keep = plan.output_slots()
    last_use = [-1] * (n_inputs + n_steps)
    for j, step in enumerate(plan.steps):
        for s in step.args:
            last_use[s] = j
    writer = _Writer(plan, policy, ctx, last_use, keep)
    param_names = [*leading, *(f"v{i}" for i in range(n_inputs))]
    prologue = policy.prologue(ctx, param_names)
    piece_steps = PIECE_STEPS
    if n_steps > piece_steps:
        return _generate_pieces(plan, writer, leading, param_names, prologue, piece_steps)
    body: list[str] = [f"    {line}" for line in prologue]
    lines: list[int] = []
    for j in range(n_steps):
        lines.append(len(body) + 2)
        body.extend(writer.step(j, "    ", release=j < n_steps - 1))
    result = emit_template(plan.outputs, writer.name_of, ctx)
    source = "\n".join([f"def {FUNCTION_NAME}({', '.join(param_names)}):", *body, f"    return {result}", ""])
    return GeneratedCode(source, ctx.pool.namespace, tuple(lines), leading)


def _generate_pieces(
    plan: Plan,
    writer: _Writer,
    leading: tuple[str, ...],
    param_names: list[str],
    prologue: list[str],
    size: int,
) -> GeneratedCode:
    """The source of a plan longer than ``size`` steps, as pieces of ``size`` steps (see :data:`PIECE_STEPS`)."""
    n_inputs, n_steps = writer.n_inputs, len(plan.steps)
    last_use, keep, name_of = writer.last_use, writer.keep, writer.name_of
    n_pieces = -(-n_steps // size)
    # The last piece a slot's value is needed in (the return counts as a use in
    # the last piece); -1 for a value that is never needed.
    needed_until = [(n_pieces - 1 if s in keep else (u // size if u >= 0 else -1)) for s, u in enumerate(last_use)]
    # Values needed past the piece that makes them wait in ``live``, one index
    # each; an index is free again once the last piece that needs its value has
    # taken it out, so a value lives no longer than in one function.
    index_of: dict[int, int] = {}
    free_indices: list[int] = []
    n_indices = 0

    def spill(slot: int) -> str:
        nonlocal n_indices
        if free_indices:
            index = free_indices.pop()
        else:
            index = n_indices
            n_indices += 1
        index_of[slot] = index
        return f"{LIVE_NAME}[{index}]"

    inputs = [s for s in range(n_inputs) if needed_until[s] >= 0]
    for s in inputs:
        spill(s)
    piece_params = ", ".join([*leading, LIVE_NAME])
    text: list[str] = []  # the pieces' lines, after replay's
    relative: list[int] = []  # each step's index in ``text``
    pieces: list[tuple[str, int, int]] = []
    indent = "    "
    for m in range(n_pieces):
        start, stop = m * size, min((m + 1) * size, n_steps)
        name = f"{FUNCTION_NAME}_{m + 1}"
        pieces.append((name, start, stop))
        text.append(f"def {name}({piece_params}):")
        # Values from before the piece, in the order it first uses them.
        outside = n_inputs + start
        used = [s for j in range(start, stop) for s in plan.steps[j].args if s < outside]
        if m == n_pieces - 1:
            used.extend(s for s in plan.outputs.refs() if s < outside)
        taken: list[int] = []
        for s in dict.fromkeys(used):
            cell = f"{LIVE_NAME}[{index_of[s]}]"
            if needed_until[s] == m:
                # Taken out: the piece's variable is then the only reference, and
                # its ``del`` releases the value as one function would.
                text.append(f"{indent}{name_of[s]}, {cell} = {cell}, None")
                taken.append(index_of.pop(s))
            else:
                text.append(f"{indent}{name_of[s]} = {cell}")
        free_indices.extend(reversed(taken))
        for j in range(start, stop):
            relative.append(len(text))
            # The piece's return releases what its last step leaves dead.
            text.extend(writer.step(j, indent, release=j < stop - 1))
        if m == n_pieces - 1:
            text.append(f"{indent}return {emit_template(plan.outputs, name_of, writer.ctx)}")
        else:
            for s in range(n_inputs + start, n_inputs + stop):
                if needed_until[s] > m:
                    text.append(f"{indent}{spill(s)} = {name_of[s]}")
    head = [f"def {FUNCTION_NAME}({', '.join(param_names)}):"]
    head.extend(f"{indent}{line}" for line in prologue)
    padding = n_indices - len(inputs)
    items = "[" + ", ".join(name_of[s] for s in inputs) + "]"
    head.append(f"{indent}{LIVE_NAME} = {items}" + (f" + [None] * {padding}" if padding else ""))
    if n_inputs:
        # The pieces hold the inputs from here on, and release each after its last use.
        head.append(f"{indent}del {', '.join(param_names[len(leading) :])}")
    calls = [f"{name}({piece_params})" for name, _, _ in pieces]
    head.extend(f"{indent}{call}" for call in calls[:-1])
    head.append(f"{indent}return {calls[-1]}")
    source = "\n".join([*head, *text, ""])
    offset = len(head) + 1
    return GeneratedCode(source, writer.ctx.pool.namespace, tuple(offset + i for i in relative), leading, tuple(pieces))
