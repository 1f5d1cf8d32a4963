"""Property test: replaying a recorded random program equals running it eagerly.

A program is plain data: a list of steps over 1..3 int or float inputs. Each step
expands into one or more *atomic* operations, every one of which is a Python
function that works the same on symbolic handles (where it records nodes) and on
plain values (where it computes). The program is recorded once on example values;
the operations that succeeded form a trace, and the trace is then evaluated eagerly
on fresh values. That direct evaluation is the oracle for the generated replay
function, the reference interpreter and every core executor, exceptions included.
"""

from __future__ import annotations

import copy
import io
import math
import operator
import struct
import tokenize
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, event, given, settings

import symgraph

# -- functions wrapped with add_to_graph (module level, so they are plain constants) --


def make_tuple(a: Any, b: Any) -> tuple[Any, Any]:
    return (a, b)


def combine(items: list[Any], scale: Any = 1) -> Any:
    return (items[0] + items[1]["k"]) * scale


# -- the operation table ----------------------------------------------------------

BINARY = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "&": operator.and_,
    "|": operator.or_,
    "^": operator.xor,
    ">>": operator.rshift,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
# Operators whose right operand must be a small constant to keep values bounded.
BOUNDED_RIGHT = {"**": operator.pow, "<<": operator.lshift}
UNARY = {"neg": operator.neg, "pos": operator.pos, "invert": operator.invert, "abs": abs}
# Length-preserving and length-changing constant indices of a pair.
INDICES: list[Any] = [0, 1, -1, -2, slice(None), slice(None, None, -1), slice(1, None), slice(None, 1), slice(5, None)]
CONSTANTS = st.one_of(st.integers(-3, 5), st.sampled_from([0.5, -2.5, 0.0, 3.0, -0.0]))
SMALL = st.integers(-2, 4)  # exponents and shift amounts (negative shifts raise ValueError)

# Bit growth of ints is tracked in units of ~1100 bits (an int from a float is at
# most 1024 bits); a step that could grow a value past this many units is not run.
GROWTH_BUDGET = 8

Call = Callable[..., Any]


@dataclass
class Entry:
    """A value of the program: a number or a tuple of numbers."""

    kind: str  # "num" or "tup"
    length: int | None  # for tuples: length, when it does not depend on the values
    growth: int  # upper bound of the int size, in units


@dataclass
class Atomic:
    """One recorded operation: ``fn(call, *operands)`` returns a tuple of results."""

    fn: Callable[..., tuple[Any, ...]]
    args: tuple[int, ...]  # pool positions of the operands
    outs: tuple[Entry, ...]


# -- strategies -------------------------------------------------------------------

# Counted back from the most recent candidate, modulo the number of candidates.
refs = st.integers(0, 1000)

step_strategy = st.one_of(
    st.tuples(st.just("binary"), st.sampled_from(sorted(BINARY)), refs, refs),
    st.tuples(st.just("const_right"), st.sampled_from(sorted(BINARY)), refs, CONSTANTS),
    st.tuples(st.just("const_left"), st.sampled_from(sorted(BINARY)), refs, CONSTANTS),
    st.tuples(st.just("bounded"), st.sampled_from(sorted(BOUNDED_RIGHT)), refs, SMALL),
    st.tuples(st.just("rpow"), st.sampled_from([2, -2, 0, 0.5, -1.5]), refs),
    st.tuples(st.just("unary"), st.sampled_from(sorted(UNARY)), refs),
    st.tuples(st.just("tuple"), refs, refs),
    st.tuples(st.just("index"), refs, st.sampled_from(range(len(INDICES)))),
    st.tuples(st.just("symindex"), refs, refs),
    st.tuples(st.just("symslice"), refs, refs),
    st.tuples(st.just("unpack"), refs),
    st.tuples(st.just("max"), refs, refs),
    st.tuples(st.just("floor"), refs),
    st.tuples(st.just("round"), refs),
    st.tuples(st.just("divmod"), refs, refs),
    st.tuples(st.just("combine"), refs, refs, refs),
)

special = st.sampled_from([0, 1, -1, 2, 0.0, -0.0, 1.0, math.inf, -math.inf, math.nan, 1e300, 2**20])
numbers = st.one_of(
    st.integers(-4, 4), st.integers(-(2**20), 2**20), st.floats(allow_nan=True, allow_infinity=True), special
)


@st.composite
def programs(draw: st.DrawFn) -> tuple[list[Any], list[Any], list[tuple[Any, ...]], list[int]]:
    n_inputs = draw(st.integers(1, 3))
    example = [draw(numbers) for _ in range(n_inputs)]
    # Fresh values are drawn independently, so an input may change between int and
    # float: operations valid at trace time may then raise at replay.
    fresh = [draw(numbers) for _ in range(n_inputs)]
    steps = draw(st.lists(step_strategy, min_size=1, max_size=15))
    outputs = draw(st.lists(refs, max_size=3))
    return example, fresh, steps, outputs


# -- expanding steps into atomic operations ----------------------------------------


def _pick(pool: list[Entry], ref: int, kind: str, length: int | None = None) -> int | None:
    candidates = [i for i, e in enumerate(pool) if e.kind == kind and (length is None or e.length == length)]
    return candidates[-1 - ref % len(candidates)] if candidates else None


def _num(growth: int) -> Entry:
    return Entry("num", None, growth)


def expand(
    step: tuple[Any, ...], pool: list[Entry]
) -> list[tuple[Callable[..., tuple[Any, ...]], list[int | str], tuple[Entry, ...]]]:
    """The atomic operations of ``step`` as ``(fn, operands, result entries)``.

    An operand ``"prev"`` stands for the first result of the previous atomic
    operation of the same step. An empty list means the step does not apply.
    """
    kind = step[0]
    nums = [i for i, e in enumerate(pool) if e.kind == "num"]

    def num(ref: int) -> int:
        return nums[-1 - ref % len(nums)]

    if kind == "binary":
        _, sym, r1, r2 = step
        a, b = num(r1), num(r2)
        fn = BINARY[sym]
        growth = pool[a].growth + pool[b].growth if sym == "*" else max(pool[a].growth, pool[b].growth)
        return [(lambda call, x, y, fn=fn: (fn(x, y),), [a, b], (_num(growth),))]
    if kind == "const_right":
        _, sym, r, c = step
        fn = BINARY[sym]
        return [(lambda call, x, fn=fn, c=c: (fn(x, c),), [num(r)], (_num(pool[num(r)].growth),))]
    if kind == "const_left":
        _, sym, r, c = step
        fn = BINARY[sym]
        return [(lambda call, x, fn=fn, c=c: (fn(c, x),), [num(r)], (_num(pool[num(r)].growth),))]
    if kind == "bounded":
        _, sym, r, k = step
        fn = BOUNDED_RIGHT[sym]
        growth = pool[num(r)].growth * (k if sym == "**" and k > 1 else 1)
        return [(lambda call, x, fn=fn, k=k: (fn(x, k),), [num(r)], (_num(growth),))]
    if kind == "rpow":
        # c ** (x % 5): the exponent is a recorded value, bounded by the first operation.
        _, c, r = step
        return [
            (lambda call, x: (x % 5,), [num(r)], (_num(1),)),
            (lambda call, m, c=c: (c**m,), ["prev"], (_num(1),)),
        ]
    if kind == "unary":
        _, name, r = step
        fn = UNARY[name]
        return [(lambda call, x, fn=fn: (fn(x),), [num(r)], (_num(pool[num(r)].growth),))]
    if kind == "tuple":
        _, r1, r2 = step
        a, b = num(r1), num(r2)
        entry = Entry("tup", 2, max(pool[a].growth, pool[b].growth))
        return [(lambda call, x, y: (call(make_tuple, x, y),), [a, b], (entry,))]
    if kind == "index":
        _, r, k = step
        t = _pick(pool, r, "tup")
        if t is None:
            return []
        index = INDICES[k]
        if isinstance(index, slice):
            length = None if pool[t].length is None else len(range(pool[t].length)[index])
            out = Entry("tup", length, pool[t].growth)
        else:
            out = _num(pool[t].growth)
        return [(lambda call, x, index=index: (x[index],), [t], (out,))]
    if kind in ("symindex", "symslice"):
        # t[i % 2] or t[i % 2:]: a symbolic, bounded index.
        _, r1, r2 = step
        t = _pick(pool, r1, "tup")
        if t is None:
            return []
        first = (lambda call, i: (i % 2,), [num(r2)], (_num(1),))
        if kind == "symindex":
            return [first, (lambda call, m, x: (x[m],), ["prev", t], (_num(pool[t].growth),))]
        return [first, (lambda call, m, x: (x[m:],), ["prev", t], (Entry("tup", None, pool[t].growth),))]
    if kind == "unpack":
        _, r = step
        t = _pick(pool, r, "tup", length=2)
        if t is None:
            return []

        def unpack(call: Call, x: Any) -> tuple[Any, ...]:
            p, q = x
            return (p, q)

        return [(unpack, [t], (_num(pool[t].growth), _num(pool[t].growth)))]
    if kind == "max":
        _, r1, r2 = step
        a, b = num(r1), num(r2)
        growth = max(pool[a].growth, pool[b].growth)
        return [(lambda call, x, y: (call(max, x, y),), [a, b], (_num(growth),))]
    if kind in ("floor", "round"):
        _, r = step
        fn = math.floor if kind == "floor" else round
        return [(lambda call, x, fn=fn: (call(fn, x),), [num(r)], (_num(pool[num(r)].growth),))]
    if kind == "divmod":
        _, r1, r2 = step
        a, b = num(r1), num(r2)
        entry = Entry("tup", 2, max(pool[a].growth, pool[b].growth))
        return [(lambda call, x, y: (call(divmod, x, y),), [a, b], (entry,))]
    assert kind == "combine", kind
    _, r1, r2, r3 = step
    a, b, c = num(r1), num(r2), num(r3)
    growth = max(pool[a].growth, pool[b].growth) + pool[c].growth
    return [(lambda call, x, y, z: (call(combine, [x, {"k": y}], scale=z),), [a, b, c], (_num(growth),))]


# -- recording, eager evaluation, comparison ---------------------------------------


def record(
    example: list[Any], steps: list[tuple[Any, ...]]
) -> tuple[list[Any], list[symgraph.SymbolicData], list[Atomic]]:
    """Record the program on the example values; return inputs, handles and trace."""
    inputs = [symgraph.CustomInput(v) for v in example]
    handles: list[symgraph.SymbolicData] = list(inputs)
    pool = [_num(1) for _ in example]
    trace: list[Atomic] = []
    for step in steps:
        prev: int | None = None
        for fn, operands, outs in expand(step, pool):
            if any(e.kind == "num" and e.growth > GROWTH_BUDGET for e in outs):
                break
            args = tuple(prev if o == "prev" else o for o in operands)
            assert all(isinstance(a, int) for a in args)
            parents = [handles[a] for a in args]  # type: ignore[index]
            before = [len(p.children) for p in parents]
            try:
                results = fn(symgraph.add_to_graph, *parents)
            except Exception:
                # A failed recording adds nothing to the graph; the program skips the step.
                assert [len(p.children) for p in parents] == before
                break
            assert len(results) == len(outs)
            for result in results:
                assert isinstance(result, symgraph.SymbolicData)
            prev = len(handles)
            handles.extend(results)
            pool.extend(outs)
            trace.append(Atomic(fn, args, outs))  # type: ignore[arg-type]
    return inputs, handles, trace


def evaluate(
    trace: list[Atomic], values: list[Any], needed: set[int] | None = None
) -> tuple[list[Any], Exception | None]:
    """Run the trace eagerly; stop at the first exception of a needed operation."""
    env = list(values)
    for atomic in trace:
        start = len(env)
        if needed is not None and not any(start + i in needed for i in range(len(atomic.outs))):
            env.extend([None] * len(atomic.outs))
            continue
        try:
            results = atomic.fn(lambda f, *a, **k: f(*a, **k), *(env[a] for a in atomic.args))
        except Exception as exc:
            return env, exc
        env.extend(results)
    return env, None


_FAILED = object()


def first_failures(trace: list[Atomic], values: list[Any], needed: set[int]) -> set[type[BaseException]]:
    """Exception types of the needed operations that fail although all their inputs were computed.

    Any eager evaluation of the program, in any order its dependencies allow,
    stops at one of these; so must a replay, whichever order it runs in.
    """
    env = list(values)
    failures: set[type[BaseException]] = set()
    for atomic in trace:
        start = len(env)
        width = len(atomic.outs)
        args = [env[a] for a in atomic.args]
        if not any(start + i in needed for i in range(width)) or any(a is _FAILED for a in args):
            env.extend([_FAILED] * width)
            continue
        try:
            env.extend(atomic.fn(lambda f, *a, **k: f(*a, **k), *args))
        except Exception as exc:
            failures.add(type(exc))
            env.extend([_FAILED] * width)
    return failures


def ancestors(trace: list[Atomic], n_inputs: int, outputs: list[int]) -> set[int]:
    """Pool positions the outputs depend on."""
    producer: dict[int, Atomic] = {}
    position = n_inputs
    for atomic in trace:
        for _ in atomic.outs:
            producer[position] = atomic
            position += 1
    needed: set[int] = set()
    stack = list(outputs)
    while stack:
        p = stack.pop()
        if p in needed:
            continue
        needed.add(p)
        if p in producer:
            stack.extend(producer[p].args)
    return needed


def same(a: Any, b: Any) -> bool:
    """Equal values of the same type; NaN equals NaN, floats compare bitwise otherwise."""
    if type(a) is not type(b):
        return False
    if isinstance(a, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, complex):
        return same(a.real, b.real) and same(a.imag, b.imag)
    return bool(a == b)


def assert_no_user_text(source: str) -> None:
    """The generated source holds only our names, literals of ints and operators."""
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        assert tok.type not in (tokenize.STRING, tokenize.COMMENT), tok
        if tok.type == tokenize.NAME:
            assert tok.string in ("def", "del", "return", "replay", "abs", "getattr", "None", "True", "False") or (
                tok.string[0] in "vc" and tok.string[1:].isdigit()
            ), tok


#: The executors that need no optional library; the property runs the program on each.
CORE_EXECUTORS = ("codegen", "interpreter")


def on_every_core_executor(model: symgraph.SymbolicModel) -> dict[str, symgraph.SymbolicModel]:
    """The model on each core executor: shallow copies switched in place, sharing the plan."""
    models = {}
    for name in CORE_EXECUTORS:
        if name == model.executor:
            models[name] = model
        else:
            models[name] = copy.copy(model)
            models[name].set_executor(name)
        assert models[name].executor == name
    return models


def outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "ok", fn()
    except Exception as exc:
        return "raised", exc


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_replay_equals_direct_evaluation(
    program: tuple[list[Any], list[Any], list[tuple[Any, ...]], list[int]],
) -> None:
    example, fresh, steps, output_refs = program
    inputs, handles, trace = record(example, steps)
    n_inputs = len(inputs)

    # Trace-time values are what eager evaluation gives on the example values.
    env, error = evaluate(trace, example)
    assert error is None, error
    assert len(env) == len(handles)
    for value, handle in zip(env, handles, strict=True):
        assert same(value, handle.v)

    # The last value is always an output, so that most programs have a non-trivial plan.
    outputs = [len(handles) - 1] + [len(handles) - 1 - r % len(handles) for r in output_refs]
    model = symgraph.SymbolicModel(inputs, tuple(handles[o] for o in outputs))
    assert_no_user_text(model.source)
    # Only the operations the outputs depend on are in the plan, plus one Elements
    # guard per unpacking whose elements are used.
    needed = ancestors(trace, n_inputs, outputs)
    recorded = [step for step in model.plan.steps if type(step.op) is not symgraph.plugin.Elements]
    assert len(recorded) == sum(1 for p in needed if p >= n_inputs)

    # Replaying the example values gives the recorded values.
    # Through outcome(): an exception raised from generated code would otherwise reach
    # hypothesis with a new file name per model, each counted as a distinct bug, and
    # a real failure would take minutes to report instead of seconds.
    models = on_every_core_executor(model)
    for run in models.values():
        on_example = outcome(lambda run=run: run(*example))
        assert on_example[0] == "ok", on_example[1]
        assert same(on_example[1], tuple(handles[o].v for o in outputs))

    env, error = evaluate(trace, fresh, needed)
    replayed = outcome(lambda: model(*fresh))
    interpreted = outcome(lambda: model.interpret(*fresh))
    executed = {
        name: replayed if run is model else outcome(lambda run=run: run(*fresh)) for name, run in models.items()
    }
    event(f"plan steps: {min(len(model.plan.steps), 10)}")
    if error is not None:
        event(f"replay raises {type(error).__name__}")
        assert replayed[0] == "raised", f"replay returned {replayed[1]!r}, direct evaluation raised {error!r}"
        assert interpreted[0] == "raised"
        assert type(interpreted[1]) is type(replayed[1]), (interpreted[1], replayed[1])
        for name, result in executed.items():
            # The core executors run the steps in the plan's order, so they stop where the replay does.
            assert result[0] == "raised", f"executor {name!r} returned {result[1]!r}, eager raised {error!r}"
            assert type(result[1]) is type(replayed[1]), (name, result[1], replayed[1])
        # Models run independent branches depth-first, not in recording order, so
        # when several operations would fail, the replay may stop at another one
        # than the eager run did; it must raise what that operation raises eagerly.
        possible = first_failures(trace, fresh, needed)
        assert type(error) in possible
        assert type(replayed[1]) in possible, (replayed[1], possible)
        if len(possible) == 1:
            event("one possible exception type")
    else:
        event("replay returns")
        expected = tuple(env[o] for o in outputs)
        assert replayed[0] == "ok", replayed[1]
        assert interpreted[0] == "ok", interpreted[1]
        assert same(replayed[1], expected)
        assert same(interpreted[1], expected)
        for name, result in executed.items():
            assert result[0] == "ok", (name, result[1])
            assert same(result[1], expected), (name, result[1], expected)


def test_oracle_helpers_can_fail() -> None:
    # The comparison and the source check reject what they should.
    assert same(float("nan"), float("nan"))
    assert not same(0.0, -0.0)
    assert not same(1, 1.0)
    assert not same(True, 1)
    assert not same((1, 2), (1, 3))
    assert same(complex(float("nan"), 1.0), complex(float("nan"), 1.0))
    assert_no_user_text("def replay(v0):\n    v1 = v0 + c0\n    return v1\n")
    for bad in ("def replay(v0):\n    return 'x'\n", "def replay(v0):\n    return os\n"):
        try:
            assert_no_user_text(bad)
        except AssertionError:
            continue
        raise AssertionError(f"accepted {bad!r}")


def test_failed_recording_adds_nothing_and_replay_raises_like_python() -> None:
    # A deterministic instance of the property's exception branches.
    a = symgraph.CustomInput(1.5)
    b = symgraph.CustomInput(0)
    for attempt in (
        lambda: ~a,
        lambda: a & 1,
        lambda: a / b,
        lambda: a << 1,
        lambda: symgraph.add_to_graph(divmod, a, b),
    ):
        before = (len(a.children), len(b.children))
        try:
            attempt()
        except (TypeError, ZeroDivisionError):
            pass
        else:
            raise AssertionError("recording should have failed on the example values")
        assert (len(a.children), len(b.children)) == before
    q = a // (b + 1)
    model = symgraph.SymbolicModel((a, b), q)
    assert model(7.0, 1) == 7.0 // 2
    for args, error in (((1.0, -1), ZeroDivisionError), ((1j, 1), TypeError), (("s", 1), TypeError)):
        for run in (model, model.interpret):
            try:
                run(*args)
            except error:
                continue
            raise AssertionError(f"{run} did not raise {error.__name__} for {args}")
