"""Hostile strings and objects at every place a user value enters a model.

Names (custom names, attribute and method names, dict keys of inputs, outputs and
call arguments, keyword names), operation payloads built directly, and the text
shown by summaries and drawings are fuzzed with strings that hold newlines,
terminal escapes, line separators, quotes, backslashes and Python code, with
``str`` subclasses whose ``__str__``/``__repr__``/``__hash__``/``__eq__`` raise or
lie, and with objects whose dunder methods raise or lie.

Every case has an oracle: either recording or building refuses with a clear
``TypeError``/``ValueError``/symgraph error (allowed only for hostile objects:
a plain ``str`` name must always work), or the model, on the codegen and the
interpreter executors, answers exactly what the same code answers eagerly on the
same new value (raising the same exception type when the eager code raises).
Every model built is also checked for what it shows: the generated source holds
only names the constant pool made; the summary has no raw control characters and
exactly one line per row; ``to_networkx`` labels are clean. Code smuggled in
through a name would create a sentinel file in the working directory; it must
never exist.
"""

from __future__ import annotations

import operator
from collections import namedtuple
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, assume, event, example, given, settings

import symgraph
from symgraph.plugin import (
    BINARY,
    OPERATORS,
    UNARY,
    Call,
    Const,
    DictT,
    GetAttr,
    ListT,
    MethodCall,
    NamedTupleT,
    Operator,
    Ref,
    Slice,
    SliceT,
    TupleT,
    Unpack,
    describe,
    escape,
    record,
)

# Hypothesis runs every example inside one call of the test function, so the
# function-scoped ``sentinel`` and ``checks`` fixtures are shared by the examples
# of a test, which is what they are for.
FUZZ = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# -- hostile text ---------------------------------------------------------------------------

# Each creates ./SENTINEL if it is ever pasted into generated code or evaluated.
CODE = [
    "__import__('os').system('touch SENTINEL')",
    "\"); open('SENTINEL','w') #",
    "'); open('SENTINEL','w') #",
    "0]; open('SENTINEL', 'w') #",
    "x)\n    open('SENTINEL', 'w')\n    (x",
    "\n    open('SENTINEL', 'w')\n",
    "{open('SENTINEL','w')}",
    "c0 = open('SENTINEL','w')",
    "v0; open('SENTINEL','w')",
]
SHORT = [
    "",
    " ",
    "a",
    "\n",
    "\r",
    "\t",
    "\x00",
    "\x07",
    "\x1b[2J",
    "\x1b[31m",
    "\x1b]0;title\x07",
    "\x7f",
    "\x85",
    "\x0b",
    "\x0c",
    "\x1c",
    "\u2028",
    "\u2029",
    "'",
    '"',
    "\\",
    "'''",
    '"""',
    "{0}",
    "%s",
    "*",
    "=" * 10,
    "_" * 10,
    "v0",
    "c0",
    "replay",
    "getattr",
    "self",
    "None",
    "True",
    "def",
    "return",
    "lambda",
    "é",
    "\U0001f600",
    "\ud800",
]
TEXTS = [
    *CODE,
    *SHORT,
    "row\n2*   forged   int   1",
    "over\rwrite",
    "\x1b[2J\x1b[H",
    "x" * 10_000,
    "\n" * 1_000,
    "\\n\\x1b",
    "\\'); open('SENTINEL','w') #",
]

texts = st.one_of(
    st.sampled_from(TEXTS),
    st.text(max_size=12),
    st.lists(st.sampled_from(SHORT + CODE), min_size=2, max_size=4).map("".join),
)


class Hostile(Exception):
    """Raised by a hostile dunder method: symgraph's own work must never call one."""


class Reported:
    """How hypothesis shows a hostile object in a failure report, without calling its ``__repr__``."""

    __slots__ = ()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        if isinstance(self, str):
            text = ascii(str.__str__(self))
        elif isinstance(self, int):
            text = int.__repr__(self)
        else:
            text = ""
        printer.text(f"{type(self).__name__}({text})")


def show(value: object) -> str:
    """Text of ``value`` for assertion messages, never running its own ``__repr__``."""
    return describe(value, limit=300)


FORGED = "'\n2*   forged   int   1\x1b[2J'); open('SENTINEL','w') #"


class RaisingText(Reported):
    """Text conversions that raise, naming the class."""

    __slots__ = ()

    def __repr__(self) -> str:
        raise Hostile(f"{type(self).__name__}.__repr__")

    def __str__(self) -> str:
        raise Hostile(f"{type(self).__name__}.__str__")

    def __format__(self, spec: str) -> str:
        raise Hostile(f"{type(self).__name__}.__format__")


class RaisingStr(RaisingText, str):
    """A str whose text conversions raise."""

    __slots__ = ()


class LyingText(Reported):
    """Text conversions that print code and forged summary rows."""

    __slots__ = ()

    def __repr__(self) -> str:
        return FORGED

    def __str__(self) -> str:
        return FORGED

    def __format__(self, spec: str) -> str:
        return FORGED


class RaisingCompare(Reported):
    """Hashing and comparisons that raise, naming the class."""

    __slots__ = ()

    def __hash__(self) -> int:
        raise Hostile(f"{type(self).__name__}.__hash__")

    def __eq__(self, other: object) -> bool:
        raise Hostile(f"{type(self).__name__}.__eq__")

    def __ne__(self, other: object) -> bool:
        raise Hostile(f"{type(self).__name__}.__ne__")


class LyingCompare(Reported):
    """Equal to everything, with one hash for all."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return True

    def __ne__(self, other: object) -> bool:
        return False

    def __hash__(self) -> int:
        return 0


class LyingStr(LyingText, str):
    """A str that prints itself as code and forged summary rows."""

    __slots__ = ()


class RaisingHashStr(RaisingCompare, str):
    """A str that cannot be hashed or compared."""

    __slots__ = ()


class LyingEqStr(LyingCompare, str):
    """A str equal to everything, with one hash for all."""

    __slots__ = ()


class RaisingRepr(RaisingText):
    """An object whose text conversions raise."""


class LyingRepr(LyingText):
    """An object that prints itself as code and forged rows."""


class RaisingHash(RaisingCompare):
    """An object that cannot be hashed or compared."""


class LyingEq(LyingCompare):
    """An object equal to everything, with one hash for all."""


class LyingInt(LyingText, int):
    """An int whose ``__index__`` and text conversions lie."""

    __slots__ = ()

    def __index__(self) -> int:
        return int(self) + 1


STR_SUBCLASSES = (RaisingStr, LyingStr, RaisingHashStr, LyingEqStr)
HASHABLE_STR_SUBCLASSES = (RaisingStr, LyingStr, LyingEqStr)


def _subclassed(classes: Sequence[type[str]]) -> st.SearchStrategy[str]:
    return st.builds(lambda cls, text: cls(text), st.sampled_from(classes), texts)


names = st.one_of(texts, _subclassed(STR_SUBCLASSES))
# Dict keys and keyword names must at least hash: the user's own dict would fail first.
hashable_names = st.one_of(texts, _subclassed(HASHABLE_STR_SUBCLASSES))
hostile_objects = st.one_of(
    st.builds(RaisingRepr),
    st.builds(LyingRepr),
    st.builds(RaisingHash),
    st.builds(LyingEq),
    st.builds(LyingInt, st.integers(-3, 3)),
    names,
)
hashable_keys = st.one_of(
    hashable_names,
    st.integers(-(2**70), 2**70),
    st.builds(RaisingRepr),
    st.builds(LyingRepr),
    st.builds(LyingEq),
    st.builds(LyingInt, st.integers(-3, 3)),
    st.none(),
    st.floats(allow_nan=False),
)
constants = st.one_of(
    hostile_objects,
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.none(),
    st.booleans(),
    st.binary(max_size=8),
)


def plain(name: object) -> object:
    """The text of a str (subclass) without running its methods; other objects as they are."""
    return str.__str__(name) if isinstance(name, str) else name


def exact(*values: object) -> bool:
    """Whether every value is an exact str, int or None: names the library must accept."""
    return all(type(v) in (str, int, type(None)) for v in values)


# -- values that show what they were given ----------------------------------------------------


class AttrBag:
    """Answers every attribute, whatever its name, with data built from the name and its tag."""

    __slots__ = ("tag",)

    def __init__(self, tag: str) -> None:
        object.__setattr__(self, "tag", tag)

    def __getattribute__(self, name: str) -> Any:
        return ("attr", object.__getattribute__(self, "tag"), plain(name))


def _answer(tag: str, name: object, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    return ("method", tag, plain(name), args, tuple(kwargs.items()))


class MethodBag:
    """Has every method, whatever its name; a call returns what it was given."""

    __slots__ = ("tag",)

    def __init__(self, tag: str) -> None:
        object.__setattr__(self, "tag", tag)

    def __getattribute__(self, name: str) -> Any:
        tag = object.__getattribute__(self, "tag")
        return lambda *args, **kwargs: _answer(tag, name, *args, **kwargs)


class Probe:
    """Every operator and indexing return what they were given, with the probe's tag."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def __getitem__(self, key: Any) -> tuple[Any, ...]:
        return ("getitem", self.tag, key)

    __hash__ = object.__hash__


def _probe_method(dunder: str, arity: int) -> Callable[..., Any]:
    if arity == 1:
        return lambda self: (dunder, self.tag)
    return lambda self, other: (dunder, self.tag, other)


for _spec in (*BINARY, *UNARY):
    setattr(Probe, _spec.dunder, _probe_method(_spec.dunder, _spec.arity))


def collect(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
    """Returns what it was called with."""
    return ("call", args, tuple(kwargs.items()))


def items(mapping: dict[Any, Any]) -> list[tuple[Any, Any]]:
    """The dict's items, in order."""
    return list(mapping.items())


Point = namedtuple("Point", "a b")

# -- the oracle ---------------------------------------------------------------------------------

REFUSALS = (TypeError, ValueError, symgraph.SymgraphError)
_ATOMS = (int, str, bytes, bool, type(None), complex)


def same(a: Any, b: Any) -> bool:
    """Structural equality that never runs a hostile object's ``__eq__``: those compare by identity."""
    ta = type(a)
    if ta is not type(b):
        return False
    if ta is list or ta is tuple or (issubclass(ta, tuple) and hasattr(ta, "_fields")):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if ta is dict:
        return len(a) == len(b) and all(
            same(ka, kb) and same(va, vb) for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True)
        )
    if ta is slice:
        return same((a.start, a.stop, a.step), (b.start, b.stop, b.step))
    if ta in _ATOMS:
        return bool(a == b)
    if ta is float:
        return bool(a == b or (a != a and b != b))
    if issubclass(ta, str):
        return a is b or str.__eq__(a, b)
    if issubclass(ta, int):
        return a is b or int.__eq__(a, b)
    fields = getattr(ta, "_same_fields", None)
    if fields is not None:
        return all(same(getattr(a, f), getattr(b, f)) for f in fields)
    return a is b


@dataclass
class Outcome:
    """A value, or the exception that computing it raised."""

    value: Any = None
    error: BaseException | None = None


def outcome(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Outcome:
    """Run ``fn``, catching any exception."""
    try:
        return Outcome(value=fn(*args, **kwargs))
    except Exception as exc:
        return Outcome(error=exc)


def assert_same_outcome(got: Outcome, want: Outcome, what: str) -> None:
    """Equal values, or exceptions of the eager one's type."""
    if want.error is not None:
        assert got.error is not None, f"{what}: returned {show(got.value)}; eager raised {type(want.error).__name__}"
        assert isinstance(got.error, type(want.error)), (
            f"{what}: raised {type(got.error).__name__}: {got.error}; eager raised {type(want.error).__name__}"
        )
    else:
        assert got.error is None, f"{what}: raised {type(got.error).__name__}: {got.error}"
        assert same(got.value, want.value), f"{what}: {show(got.value)} != eager {show(want.value)}"


def raised_by_library(exc: BaseException) -> bool:
    """Whether symgraph raised ``exc`` itself, rather than Python's call machinery or the user's code."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    module = tb.tb_frame.f_globals.get("__name__", "")
    return isinstance(module, str) and module.partition(".")[0] in ("symgraph", "symgraph_numpy", "symgraph_torch")


def check_notes(exc: BaseException, checks: Any) -> None:
    """The notes symgraph adds to an exception are clean text."""
    for note in getattr(exc, "__notes__", ()):
        checks.text(note, f"note on {type(exc).__name__}")


def check_case(
    checks: Any,
    sentinel: Any,
    build: Callable[[symgraph.SymbolicData], Any],
    eager: Callable[[Any], Any],
    example: Any,
    new: Sequence[Any],
    *,
    refusable: bool,
    inputs: Callable[[symgraph.SymbolicData], Any] = lambda x: x,
    call: Callable[[Callable[..., Any], Any], Any] = lambda fn, value: fn(value),
    input_name: str | None = None,
) -> tuple[symgraph.SymbolicModel | None, list[str]]:
    """Record ``build`` on ``example``; the model equals ``eager`` on the example and each new value.

    Args:
        build: The user's code on the symbolic input; returns the outputs.
        eager: The same code on a real value.
        refusable: Whether a hostile value is involved, which recording or
            building may refuse with a clear error.
        inputs: The model's inputs from the symbolic input.
        call: ``call(model_or_interpret, value)`` calls a model on ``value``.
        input_name: The input's custom name.

    Returns:
        The model (``None`` when refused or when eager evaluation raised) and its summary rows.
    """
    want = outcome(eager, example)
    try:
        x = symgraph.CustomInput(example, custom_name=input_name)
        out = build(x)
        model = symgraph.SymbolicModel(inputs(x), out)
        interpreted = symgraph.SymbolicModel(inputs(x), out, executor="interpreter")
    except Exception as exc:
        assert not sentinel.exists()
        if want.error is not None and isinstance(exc, type(want.error)):
            check_notes(exc, checks)  # the eager code's own error, with symgraph's note
            return None, []
        if not (refusable and isinstance(exc, REFUSALS)):
            raise AssertionError(
                f"recording raised {type(exc).__name__} where eager evaluation "
                f"{'raised ' + type(want.error).__name__ if want.error else 'succeeded'}"
            ) from exc
        if raised_by_library(exc):  # Python's own messages (bad keyword names, say) are not symgraph's
            checks.text(str(exc), f"message of the refusal {type(exc).__name__}")
        check_notes(exc, checks)
        return None, []
    assert want.error is None, f"recording succeeded where eager evaluation raised {type(want.error).__name__}"
    for value in (example, *new):
        expected = outcome(eager, value)
        assert_same_outcome(outcome(call, model, value), expected, "codegen replay")
        assert_same_outcome(outcome(call, model.interpret, value), expected, "model.interpret")
        assert_same_outcome(outcome(call, interpreted, value), expected, "interpreter executor")
    rows = checks.model(model)
    assert not sentinel.exists()
    return model, rows


def shows(rows: list[str], row: int, name: object) -> None:
    """Summary row ``row`` shows the start of ``name``, escaped."""
    shown = escape(name)[:20]
    assert shown in rows[row], f"row {row + 1} does not show {shown!r}: {rows[row]!r}"


# -- names ------------------------------------------------------------------------------------


@FUZZ
@example(input_name="row\n2*   forged   int   1", step_name="\x1b[2J\u2028", value=1)
@example(input_name="\ud800", step_name="x" * 10_000, value=1)
@example(input_name=LyingStr("a"), step_name=RaisingStr("b"), value=1)
@given(input_name=names, step_name=names, value=st.integers(-(2**70), 2**70))
def test_custom_names(input_name: str, step_name: str, value: int, checks: Any, sentinel: Any) -> None:
    model, rows = check_case(
        checks,
        sentinel,
        lambda x: symgraph.add_to_graph(abs, x, custom_name=step_name) + 1,
        lambda v: abs(v) + 1,
        value,
        [-7, 2**80],
        refusable=not exact(input_name, step_name),
        input_name=input_name,
    )
    if model is not None:
        shows(rows, 0, input_name)
        shows(rows, 1, step_name)


@FUZZ
@example(name="a\nb\x1b[2J")
@example(name=RaisingStr("n"))
@example(name=LyingStr("n"))
@given(name=names)
def test_error_naming_a_custom_named_missing_input(name: str, checks: Any, sentinel: Any) -> None:
    x = symgraph.CustomInput(1)
    try:
        other = symgraph.CustomInput(2, custom_name=name)
    except REFUSALS as exc:
        assert not exact(name), f"the plain str custom name {name!a} was refused: {exc}"
        checks.text(str(exc), "refusal message")
        return
    with pytest.raises(symgraph.GraphError) as info:
        symgraph.SymbolicModel(x, x + other)
    message = str(info.value)
    checks.text(message, "GraphError message")
    assert "missing input" in message
    assert not sentinel.exists()


@FUZZ
@example(name=CODE[0])
@example(name=RaisingHashStr("real"))
@example(name=LyingStr("real"))
@given(name=names)
def test_attribute_names_through_add_to_graph(name: str, checks: Any, sentinel: Any) -> None:
    check_case(
        checks,
        sentinel,
        lambda x: symgraph.add_to_graph(getattr, x, name),
        lambda bag: getattr(bag, name),
        AttrBag("example"),
        [AttrBag("new")],
        refusable=not exact(name),
    )


@FUZZ
@example(name=CODE[1])
@example(name=RaisingStr("_private"))
@example(name=LyingStr("_private"))
@example(name="_a\nb")
@given(name=names)
def test_attribute_names_on_a_handle(name: str, checks: Any, sentinel: Any) -> None:
    handle_type = type(symgraph.CustomInput(AttrBag("probe")))
    text = plain(name)
    assert isinstance(text, str)
    assume(not hasattr(handle_type, text))  # the handle's own names are documented not to record
    if text.startswith("_"):
        x = symgraph.CustomInput(AttrBag("example"))
        with pytest.raises(AttributeError) as info:
            getattr(x, name)
        checks.text(str(info.value), "AttributeError message for a private name")
        assert not x.children
        return
    check_case(
        checks,
        sentinel,
        lambda x: getattr(x, name),
        lambda bag: getattr(bag, name),
        AttrBag("example"),
        [AttrBag("new")],
        refusable=not exact(name),
    )


@FUZZ
@example(name=CODE[1], arg=RaisingRepr())
@example(name=RaisingStr("m"), arg=1)
@given(name=names, arg=constants)
def test_method_names(name: str, arg: Any, checks: Any, sentinel: Any) -> None:
    try:
        op = MethodCall(name, [Const(arg)], Const({}))
    except REFUSALS as exc:
        assert type(name) is not str, f"MethodCall refused the plain str name {name!a}: {exc}"
        checks.text(str(exc), "MethodCall refusal")
        return
    assert type(name) is str, f"MethodCall accepted a {type(name).__name__} name"
    check_case(
        checks,
        sentinel,
        lambda x: record(op, (x.node,)),
        lambda bag: getattr(bag, name)(arg),
        MethodBag("example"),
        [MethodBag("new")],
        refusable=False,
    )


@FUZZ
@example(key="self", value=1)
@example(key="a\nb", value=1)
@example(key=LyingEqStr("k"), value=1)
@example(key=RaisingStr("k"), value=1)
@given(key=hashable_names, value=st.integers(-5, 5))
def test_dict_input_keys(key: str, value: int, checks: Any, sentinel: Any) -> None:
    model, rows = check_case(
        checks,
        sentinel,
        lambda x: x * 2,
        lambda v: v * 2,
        value,
        [7, -(2**80)],
        refusable=not exact(key),
        inputs=lambda x: {key: x},
        call=lambda fn, v: fn(**{key: v}),
    )
    if model is None:
        return
    shows(rows, 0, key)
    # Wrong calls name the inputs in their message; the key is the user's text.
    bad_calls: list[Callable[[], Any]] = [
        lambda: model(),
        lambda: model(1),
        lambda: model(**{key: 1}, zz_extra_input=2),
    ]
    for bad_call in bad_calls:
        with pytest.raises(TypeError) as info:
            bad_call()
        checks.text(str(info.value), "message of a wrong call")


@FUZZ
@example(keys=["a\nb", 1, None])
@example(keys=[RaisingStr("k"), RaisingRepr(), LyingEq()])
@given(keys=st.lists(hashable_keys, min_size=1, max_size=3))
def test_dict_output_keys(keys: list[Any], checks: Any, sentinel: Any) -> None:
    def build(x: Any) -> dict[Any, Any]:
        return {k: x + i for i, k in enumerate(keys)}

    def eager(v: int) -> dict[Any, Any]:
        return {k: v + i for i, k in enumerate(keys)}

    check_case(checks, sentinel, build, eager, 3, [-4, 2**75], refusable=not exact(*keys))


@FUZZ
@example(keys=["k\n", RaisingRepr()], const=RaisingRepr())
@given(keys=st.lists(hashable_keys, min_size=1, max_size=3), const=constants)
def test_dict_keys_in_call_arguments(keys: list[Any], const: Any, checks: Any, sentinel: Any) -> None:
    def build(x: Any) -> Any:
        nested = {k: (x if i % 2 == 0 else [const, x]) for i, k in enumerate(keys)}
        return symgraph.add_to_graph(items, nested), symgraph.add_to_graph(collect, x, options=nested)

    def eager(v: Any) -> Any:
        nested = {k: (v if i % 2 == 0 else [const, v]) for i, k in enumerate(keys)}
        return items(nested), collect(v, options=nested)

    check_case(checks, sentinel, build, eager, 3, [-4], refusable=not exact(*keys))


@FUZZ
@example(kw=["a\nb", "self", CODE[0]], symbolic=True, const=RaisingRepr())
@example(kw=[LyingStr("k")], symbolic=False, const=1)
@given(kw=st.lists(hashable_names, min_size=1, max_size=3), symbolic=st.booleans(), const=constants)
def test_keyword_names(kw: list[str], symbolic: bool, const: Any, checks: Any, sentinel: Any) -> None:
    # add_to_graph's own parameters are not free keyword names.
    assume(not any(plain(k) in ("func", "custom_name") for k in kw))

    def build(x: Any) -> Any:
        return symgraph.add_to_graph(collect, x, **{k: (x if symbolic else const) for k in kw})

    def eager(v: Any) -> Any:
        return collect(v, **{k: (v if symbolic else const) for k in kw})

    check_case(checks, sentinel, build, eager, 3, [11], refusable=not exact(*kw))


@FUZZ
@example(const=RaisingRepr(), index=RaisingHash())
@example(const=LyingInt(2), index=LyingRepr())
@given(const=constants, index=constants)
def test_hostile_constants_as_operands_and_indices(const: Any, index: Any, checks: Any, sentinel: Any) -> None:
    def build(p: Any) -> Any:
        return p + const, p[index], p[const:index], -p

    def eager(p: Any) -> Any:
        return p + const, p[index], p[const:index], -p

    check_case(checks, sentinel, build, eager, Probe("example"), [Probe("new")], refusable=False)


# -- what summaries and drawings show ---------------------------------------------------------


def _named_function(name: str) -> Callable[[Any], Any]:
    def function(v: Any) -> Any:
        return ("f", v)

    function.__name__ = function.__qualname__ = name
    return function


def _named_class(name: str) -> type:
    def init(self: Any, v: Any = None) -> None:
        self.v = v

    def call(self: Any, v: Any) -> Any:
        return ("called", v)

    def hostile_repr(self: Any) -> str:
        raise Hostile("__repr__ of a named class")

    namespace = {"__init__": init, "__call__": call, "__repr__": hostile_repr, "__str__": hostile_repr}
    return type(name, (), {**namespace, "_same_fields": ("v",)})


@FUZZ
@example(fn_name="\x1b[2J", cls_name="row\n2*  forged")
@given(fn_name=texts, cls_name=texts)
def test_hostile_display_names(fn_name: str, cls_name: str, checks: Any, sentinel: Any) -> None:
    # Function, class and callable names are the user's text too: they name steps
    # ("wrap(name)") and describe values (the output column).
    function = _named_function(fn_name)
    try:
        cls = _named_class(cls_name)
    except (ValueError, UnicodeEncodeError):  # NUL and lone surrogates cannot name a class
        assume(False)
        raise
    layer = cls()

    def build(x: Any) -> Any:
        made = symgraph.add_to_graph(cls, x)
        return symgraph.add_to_graph(function, x), made, symgraph.add_to_graph(layer, made)

    def eager(v: Any) -> Any:
        made = cls(v)
        return function(v), made, layer(made)

    model, _ = check_case(checks, sentinel, build, eager, cls(1), [cls(2)], refusable=False)
    assert model is not None


# -- operation payloads built directly ----------------------------------------------------------

# A template description: ("ref", i) | ("const", obj) | ("junk", obj) | ("list"|"tuple"|"slice", [desc])
# | ("point", [desc]) | ("dict", [key], [desc]). "junk" is a non-template where a template belongs.
Desc = tuple[Any, ...]

leaves = st.one_of(
    st.just(("ref", 0)),
    st.tuples(st.just("const"), constants),
    st.tuples(st.just("ref"), st.one_of(st.integers(-2, 2), st.builds(LyingInt, st.integers(0, 1)), names)),
    st.tuples(st.just("junk"), constants),
)
descs = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.tuples(st.sampled_from(["list", "tuple"]), st.lists(inner, max_size=3)),
        st.tuples(st.just("slice"), st.lists(inner, min_size=2, max_size=4)),
        st.tuples(st.just("point"), st.lists(inner, min_size=2, max_size=2)),
        st.lists(st.tuples(st.one_of(hashable_keys, st.builds(RaisingHash)), inner), max_size=3).map(
            lambda pairs: ("dict", [k for k, _ in pairs], [d for _, d in pairs])
        ),
    ),
    max_leaves=6,
)

valid_descs = st.recursive(
    st.one_of(st.just(("ref", 0)), st.tuples(st.just("const"), constants)),
    lambda inner: st.one_of(
        st.tuples(st.sampled_from(["list", "tuple"]), st.lists(inner, max_size=3)),
        st.tuples(st.just("slice"), st.lists(inner, min_size=3, max_size=3)),
        st.lists(st.tuples(hashable_keys, inner), max_size=3).map(
            lambda pairs: ("dict", [k for k, _ in pairs], [d for _, d in pairs])
        ),
    ),
    max_leaves=4,
)


def valid(desc: Desc) -> bool:
    """Whether the documented constructors accept ``desc``."""
    kind = desc[0]
    if kind == "ref":
        return type(desc[1]) is int and desc[1] >= 0
    if kind == "const":
        return True
    if kind == "junk":
        return False
    if kind == "dict":
        return all(valid(d) for d in desc[2])
    if kind == "slice" and len(desc[1]) != 3:
        return False
    return all(valid(d) for d in desc[1])


def build_template(desc: Desc) -> Any:
    """The template ``desc`` describes, built through the public constructors (may raise)."""
    kind = desc[0]
    if kind == "ref":
        return Ref(desc[1])
    if kind == "const":
        return Const(desc[1])
    if kind == "junk":
        return desc[1]
    if kind == "dict":
        return DictT(desc[1], [build_template(d) for d in desc[2]])
    children = [build_template(d) for d in desc[1]]
    if kind == "point":
        return NamedTupleT(Point, children)
    return {"list": ListT, "tuple": TupleT, "slice": SliceT}[kind](children)


def reference(desc: Desc, args: Sequence[Any]) -> Any:
    """The value ``desc`` stands for, computed without the library."""
    kind = desc[0]
    if kind == "ref":
        return args[desc[1]]
    if kind == "const":
        return desc[1]
    if kind == "dict":
        return {k: reference(d, args) for k, d in zip(desc[1], desc[2], strict=True)}
    values = [reference(d, args) for d in desc[1]]
    if kind == "list":
        return values
    if kind == "tuple":
        return tuple(values)
    if kind == "slice":
        return slice(*values)
    return Point(*values)


def built(make: Callable[[], Any], ok: bool, what: str, checks: Any) -> Any:
    """``make()`` if ``ok`` (it must succeed); otherwise check it refuses clearly and return ``None``."""
    if ok:
        return make()
    with pytest.raises(REFUSALS) as info:
        make()
    checks.text(str(info.value), f"refusal of {what}")
    return None


kwargs_descs = st.one_of(
    st.just(("constdict", [])),
    st.tuples(st.just("constdict"), st.lists(st.tuples(texts, constants), min_size=1, max_size=2)),
    st.tuples(st.just("constdict"), st.lists(st.tuples(hashable_names, constants), max_size=2)),
    st.lists(st.tuples(texts, descs), min_size=1, max_size=2).map(
        lambda pairs: ("dict", [k for k, _ in pairs], [d for _, d in pairs])
    ),
    st.tuples(st.just("const"), constants),
    st.lists(st.tuples(hashable_names, descs), max_size=2).map(
        lambda pairs: ("dict", [k for k, _ in pairs], [d for _, d in pairs])
    ),
    st.tuples(st.just("junk"), constants),
)


def kwargs_template(desc: Desc) -> tuple[Any, bool, Callable[[Sequence[Any]], dict[Any, Any]]]:
    """A kwargs payload, whether it is valid (a Const dict or DictT with exact str keys), and its reference."""
    if desc[0] == "constdict":
        mapping = dict(desc[1])
        return Const(mapping), all(type(k) is str for k in mapping), lambda args: mapping
    if desc[0] == "dict":
        ok = all(type(k) is str for k in desc[1])
        if not valid(desc):
            return desc, False, lambda args: {}
        return build_template(desc), ok, lambda args: reference(desc, args)
    if desc[0] == "const":
        value = desc[1]
        ok = type(value) is dict and all(type(k) is str for k in value)
        return Const(value), ok, lambda args: value
    return desc[1], False, lambda args: {}


@FUZZ
@given(
    kind=st.sampled_from(["getattr", "slice", "call", "method", "unpack"]),
    name=names,
    args=st.lists(st.one_of(valid_descs, descs), max_size=3),
    kwargs=kwargs_descs,
    index=st.one_of(st.integers(-2, 4), st.builds(LyingInt, st.integers(0, 2)), st.booleans(), names),
    by_index=st.one_of(st.booleans(), st.integers(0, 1), st.none()),
)
def test_operation_payloads(
    kind: str,
    name: Any,
    args: list[Desc],
    kwargs: Desc,
    index: Any,
    by_index: Any,
    checks: Any,
    sentinel: Any,
) -> None:
    templates_ok = all(valid(d) for d in args)

    def templates() -> list[Any]:
        return [build_template(d) for d in args]

    def values(parents: Sequence[Any]) -> list[Any]:
        return [reference(d, parents) for d in args]

    example: Any = Probe("example")
    new: list[Any] = [Probe("new")]
    op: Any
    if kind == "getattr":
        op = built(lambda: GetAttr(name), type(name) is str, "GetAttr", checks)
        example, new = AttrBag("example"), [AttrBag("new")]

        def eager(v: Any) -> Any:
            return getattr(v, name)

    elif kind == "slice":
        desc = args[0] if args else ("ref", 0)
        op = built(lambda: Slice(build_template(desc)), valid(desc), "Slice", checks)

        def eager(v: Any) -> Any:
            return v[reference(desc, [v])]

    elif kind in ("call", "method"):
        kw_template, kw_ok, kw_reference = kwargs_template(kwargs)
        if kind == "call":
            op = built(lambda: Call(Const(collect), templates(), kw_template), templates_ok and kw_ok, "Call", checks)

            def eager(v: Any) -> Any:
                return collect(*values([v]), **kw_reference([v]))

        else:
            example, new = MethodBag("example"), [MethodBag("new")]
            ok = type(name) is str and templates_ok and kw_ok
            op = built(lambda: MethodCall(name, templates(), kw_template), ok, "MethodCall", checks)

            def eager(v: Any) -> Any:
                return getattr(v, name)(*values([v]), **kw_reference([v]))

    else:
        example, new = ("a", "b", "c"), [("x", "y", "z"), ("only",)]
        ok = type(index) is int and index >= 0 and type(by_index) is bool
        op = built(lambda: Unpack(index, by_index), ok, "Unpack", checks)

        def eager(v: Any) -> Any:
            return v[index] if by_index else list(v)[index]

    event(f"{kind}: {'built' if op is not None else 'refused'}")
    if op is None:
        return
    # Once built, an operation is valid: recording it may fail only as the eager code does.
    check_case(checks, sentinel, lambda x: record(op, (x.node,)), eager, example, new, refusable=False)


@FUZZ
@given(hostile=st.integers(0, 3), data=st.data())
def test_operator_payloads(hostile: int, data: st.DataObject, checks: Any, sentinel: Any) -> None:
    # One part in four is hostile (the symbol, the operand count or the operands),
    # so that most cases build and replay.
    symbols = names if hostile == 1 else st.sampled_from(sorted(OPERATORS))
    symbol = data.draw(symbols, label="symbol")
    spec = OPERATORS.get(symbol) if type(symbol) is str else None
    n_extra = spec.arity - 1 if spec is not None else 1
    if hostile == 2:
        n_extra = data.draw(st.integers(0, 2), label="operand count")
    operands = descs if hostile == 3 else valid_descs
    extra = data.draw(st.lists(operands, min_size=n_extra, max_size=n_extra), label="operands")
    # Operand 0 is the probe, so the probe's own operator method computes the answer.
    ok = spec is not None and len(extra) == spec.arity - 1 and all(valid(d) for d in extra)
    op = built(lambda: Operator(symbol, [Ref(0), *[build_template(d) for d in extra]]), ok, "Operator", checks)
    event(f"operator: {'built' if op is not None else 'refused'}")
    if op is None:
        return

    def eager(p: Any) -> Any:
        return OPERATORS[symbol].fn(p, *[reference(d, [p]) for d in extra])

    check_case(
        checks, sentinel, lambda x: record(op, (x.node,)), eager, Probe("example"), [Probe("new")], refusable=False
    )


def test_summary_and_drawing_of_every_hostile_name(checks: Any, sentinel: Any) -> None:
    # One model carries every hostile text at once, as input, step and output key.
    hostile = [t for t in TEXTS if t]
    x = symgraph.CustomInput(2, custom_name=hostile[0])
    outputs = {}
    for i, name in enumerate(hostile):
        outputs[name] = symgraph.add_to_graph(operator.add, x, i, custom_name=name)
    model = symgraph.SymbolicModel(x, outputs)
    assert model(5) == {name: 5 + i for i, name in enumerate(hostile)}
    rows = checks.model(model)
    for i, name in enumerate(hostile):
        shows(rows, i + 1, name)
    assert not sentinel.exists()


# Text that the font has no glyph for (emoji, say) is drawn as boxes, with a warning.
@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")
def test_drawing_to_networkx_labels(checks: Any, sentinel: Any) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    nx = pytest.importorskip("networkx")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # "$" starts matplotlib's mathtext: that is the label syntax the user chose by
    # drawing with these names, not something the exported data should mangle.
    hostile = [t for t in TEXTS if t and "$" not in t]
    x = symgraph.CustomInput(2, custom_name="\x1b[2J")
    y = x
    for name in hostile:
        y = symgraph.add_to_graph(operator.add, y, 1, custom_name=name)
    model = symgraph.SymbolicModel(x, y)
    graph = symgraph.to_networkx(model)
    figure = plt.figure()
    try:
        labels = {n: f"{data['name']}\n{data['output']}" for n, data in graph.nodes(data=True)}
        nx.draw_networkx(graph, ax=figure.gca(), labels=labels)
        figure.canvas.draw()
    finally:
        plt.close(figure)
    checks.networkx(model)
    assert not sentinel.exists()


@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")
def test_drawing_with_draw_graph(sentinel: Any) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    pytest.importorskip("networkx")
    graph_algorithms = pytest.importorskip("symgraph_torch.graph_algorithms")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # draw_graph makes the labels itself, from custom names and display names, so
    # no name the user gave may break the drawing: not even mathtext.
    hostile = [t for t in TEXTS if t] + ["$\\undefinedcommand{x}$", "$x^2$", "50$", "$"]
    x = symgraph.CustomInput(2)
    y = x
    for name in hostile:
        y = symgraph.add_to_graph(operator.add, y, 1, custom_name=name)
    y = symgraph.add_to_graph(_named_function("$\\frac{$\n"), y)
    model = symgraph.SymbolicModel(x, y)
    plt.close("all")
    figure = graph_algorithms.draw_graph(model=model, figsize=(4, 4))
    try:
        figure.canvas.draw()
    finally:
        plt.close(figure)
    assert not sentinel.exists()
