"""Long plans are generated in pieces of bounded size (issue 15, item 3).

The piece size is lowered in these tests, so that pieces appear on small plans.
Every result is checked against eager Python on the same values and against
the reference interpreter; the source is checked against the same plan written
as one function (the layout of every plan up to the piece size), which must
run the same statements with the same variables.
"""

from __future__ import annotations

import ast
import gc
import linecache
import pickle
import re
import traceback
import types
import weakref
from collections.abc import Callable
from typing import Any

import pytest

import symgraph
import symgraph._codegen
import symgraph.plugin
from symgraph._compile import step_codes
from symgraph._failures import step_note
from symgraph.plugin import CodegenPolicy, build_plan, compile_generated, compile_plan, generate

ONE_FUNCTION = 10**9


def direct_call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The eager counterpart of ``symgraph.add_to_graph``."""
    return func(*args, **kwargs)


def as_one_function(plan: symgraph.plugin.Plan, policy: CodegenPolicy | None = None) -> symgraph.plugin.GeneratedCode:
    """``plan`` generated as one function, whatever the piece size."""
    saved = symgraph._codegen.PIECE_STEPS
    symgraph._codegen.PIECE_STEPS = ONE_FUNCTION
    try:
        return generate(plan, policy)
    finally:
        symgraph._codegen.PIECE_STEPS = saved


def functions_of(source: str) -> list[ast.FunctionDef]:
    tree = ast.parse(source)
    assert all(isinstance(node, ast.FunctionDef) for node in tree.body)
    return [node for node in tree.body if isinstance(node, ast.FunctionDef)]


def step_text(code: symgraph.plugin.GeneratedCode, j: int) -> str:
    return code.source.splitlines()[code.lines[j] - 1].strip()


def check_layout(code: symgraph.plugin.GeneratedCode, plan: symgraph.plugin.Plan, size: int) -> None:
    """Pieces of ``size`` steps, each step on its line in its piece, written as one function writes it."""
    n = len(plan.steps)
    whole = as_one_function(plan)
    functions = functions_of(code.source)
    assert [f.name for f in functions] == ["replay", *(f"replay_{k + 1}" for k in range(-(-n // size)))]
    expected = [(f"replay_{k + 1}", a, min(a + size, n)) for k, a in enumerate(range(0, n, size))]
    assert list(code.pieces) == expected
    # The same statement, with the same variables, as in one function.
    assert [step_text(code, j) for j in range(n)] == [step_text(whole, j) for j in range(n)]
    for (name, first, end), function in zip(code.pieces, functions[1:], strict=True):
        assert function.name == name
        assert all(function.lineno < code.lines[j] <= function.end_lineno for j in range(first, end))
    # The same ``del`` lines, less those at the end of a piece, which returns.
    dels = [line.strip() for line in code.source.splitlines() if line.lstrip().startswith("del ")]
    whole_dels = [line.strip() for line in whole.source.splitlines() if line.lstrip().startswith("del ")]
    assert dels[0].startswith("del v") and set(dels[1:]) <= set(whole_dels)


# -- layout --------------------------------------------------------------------------------


def chain(x: Any, n: int) -> Any:
    for k in range(n):
        x = x * 2 - k if k % 3 else abs(x) + 1
    return x


def test_plans_up_to_the_piece_size_are_one_function(pieces: Callable[[int], None]) -> None:
    x = symgraph.CustomInput(3)
    plan = build_plan(x, chain(x, 6))[0]
    n = len(plan.steps)
    whole = as_one_function(plan)
    pieces(n)
    assert generate(plan).source == whole.source and generate(plan).lines == whole.lines
    assert generate(plan).pieces == ()
    assert [f.name for f in functions_of(whole.source)] == ["replay"]
    pieces(n - 1)
    code = generate(plan)
    check_layout(code, plan, n - 1)
    assert compile_generated(code)(5) == compile_generated(whole)(5) == chain(5, 6)


def test_long_plans_are_in_pieces_at_the_default_size() -> None:
    size = symgraph._codegen.PIECE_STEPS
    x = symgraph.CustomInput(0)
    y = x
    for _ in range(2 * size + 1):
        y = y + 1
    model = symgraph.SymbolicModel(x, y)
    code = generate(model.plan)
    assert [(first, end) for _, first, end in code.pieces] == [(0, size), (size, 2 * size), (2 * size, 2 * size + 1)]
    assert model(5) == model.interpret(5) == 2 * size + 6


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7])
@pytest.mark.parametrize("n", [8, 15, 21])
def test_chains_in_pieces_replay_as_python(pieces: Callable[[int], None], size: int, n: int) -> None:
    pieces(size)
    x = symgraph.CustomInput(3)
    model = symgraph.SymbolicModel(x, chain(x, n))
    check_layout(generate(model.plan), model.plan, size)
    for value in (0, 5, -7, 12):
        assert model(value) == model.interpret(value) == chain(value, n)


def test_every_piece_runs_its_steps_on_their_lines(pieces: Callable[[int], None]) -> None:
    """Each piece's code object reports the lines of its own steps: it was moved to where it is in the source."""
    pieces(4)
    x = symgraph.CustomInput(3)
    plan = build_plan(x, chain(x, 13))[0]
    code = generate(plan)
    replay = compile_generated(code)
    runs = step_codes(replay, code)
    assert [(c.co_name, first, end) for c, first, end in runs] == list(code.pieces)
    source = code.source.splitlines()
    for each, first, end in runs:
        reported = {line for _, _, line in each.co_lines() if line is not None}
        assert {code.lines[j] for j in range(first, end)} <= reported
        assert source[each.co_firstlineno - 1] == f"def {each.co_name}(live):"
        assert each.co_filename == replay.__code__.co_filename
    assert source[replay.__code__.co_firstlineno - 1] == "def replay(v0):"
    assert replay(4) == chain(4, 13)


def test_the_source_in_pieces_is_plain_python(pieces: Callable[[int], None]) -> None:
    """Run as one module, the shown source gives what the compiled pieces give."""
    pieces(3)
    x = symgraph.CustomInput(2)
    model = symgraph.SymbolicModel(x, chain(x, 11))
    code = generate(model.plan)
    namespace = dict(code.namespace)
    exec(compile(code.source, "<pieces>", "exec"), namespace)
    assert namespace["replay"](9) == model(9) == chain(9, 11)


#: The builtins the emitters write: GetAttr and MethodCall use ``getattr``, the table's ``abs``.
EMITTED_BUILTINS = {"getattr", "abs"}


def assert_only_our_names(code: symgraph.plugin.GeneratedCode) -> None:
    """Pieces add only the names ``live`` and ``replay_<k>``; literals stay ints, None and bools."""
    leading = set(code.leading)
    for node in ast.walk(ast.parse(code.source)):
        if isinstance(node, ast.Name):
            name = node.id
            assert (
                name in EMITTED_BUILTINS
                or name in leading
                or name == "live"
                or re.fullmatch(r"replay_\d+|v\d+", name)
                or (re.fullmatch(r"c\d+", name) and name in code.namespace)
            ), name
        elif isinstance(node, ast.arg):
            assert node.arg in leading or node.arg == "live" or re.fullmatch(r"v\d+", node.arg), node.arg
        elif isinstance(node, ast.Constant):
            assert type(node.value) in (int, bool, type(None)), ast.dump(node)
        elif isinstance(node, ast.FunctionDef):
            assert re.fullmatch(r"replay(_\d+)?", node.name), node.name
        elif isinstance(node, (ast.Lambda, ast.comprehension, ast.ClassDef, ast.Import, ast.ImportFrom)):
            raise AssertionError(ast.dump(node))


def strings(call: Any, text: Any) -> dict[str, Any]:
    parts = text.split("-")
    return {"n": call(len, parts), "up": text.upper(), "first": parts[0], "plus": text.replace("-", "+")}


def test_pieces_use_only_generated_names(pieces: Callable[[int], None]) -> None:
    pieces(2)
    text = symgraph.CustomInput("a-b")
    model = symgraph.SymbolicModel(text, strings(symgraph.add_to_graph, text))
    code = generate(model.plan)
    assert len(code.pieces) >= 2
    assert_only_our_names(code)
    for value in ("x-y-z", "-", "solo"):
        assert model(value) == model.interpret(value) == strings(direct_call, value)


# -- values across boundaries --------------------------------------------------------------


def wide(x: Any, y: Any, width: int) -> tuple[Any, ...]:
    """``width`` values made first and all used at the end, so each is live across every boundary."""
    early = [x * k + y for k in range(width)]
    total = early[0]
    for value in early[1:]:
        total = total + value
    return total, early[width // 2], early[-1] - early[0]


@pytest.mark.parametrize("size", [1, 4, 9])
def test_wide_graphs_hand_many_live_values_across_boundaries(pieces: Callable[[int], None], size: int) -> None:
    pieces(size)
    x, y = symgraph.CustomInput(1), symgraph.CustomInput(2)
    model = symgraph.SymbolicModel((x, y), wide(x, y, 24))
    check_layout(generate(model.plan), model.plan, size)
    for a, b in ((1, 2), (-3, 10), (7, 0)):
        assert model(a, b) == model.interpret(a, b) == wide(a, b, 24)


def test_a_piece_reads_only_the_values_it_uses(pieces: Callable[[int], None]) -> None:
    """Values waiting for a later piece are not handed through the pieces in between."""
    pieces(5)
    x = symgraph.CustomInput(1)
    early = [x + k for k in range(40)]  # 40 outputs made in the first 8 pieces
    tail = x
    for _ in range(60):  # 12 pieces of a chain that uses none of them
        tail = tail * 1
    model = symgraph.SymbolicModel(x, (*early, tail))
    code = generate(model.plan)
    bodies = {f.name: f for f in functions_of(code.source)}
    chained = 0
    for name, first, end in code.pieces[:-1]:
        if not all(step_text(code, j).endswith(" * 1") for j in range(first, end)):
            continue
        chained += 1
        reads = [
            s
            for s in bodies[name].body
            if isinstance(s, ast.Assign)
            and isinstance(s.value, (ast.Subscript, ast.Tuple))
            and "live[" in ast.unparse(s.value)
        ]
        assert len(reads) == 1, (name, [ast.unparse(s) for s in reads])  # the chain's one value
    assert chained >= 10
    for value in (0, 5):
        expected = (*(value + k for k in range(40)), value)
        assert model(value) == model.interpret(value) == expected
    # Freed indices of ``live`` are reused: far fewer than one per value.
    assert int(re.search(r"\[None\] \* (\d+)", code.source).group(1)) < 45


def test_outputs_inputs_and_unused_inputs_across_pieces(pieces: Callable[[int], None]) -> None:
    pieces(2)
    a, b, unused, passed = (symgraph.CustomInput(v) for v in (1, 2, 3, 4))

    def graph(call: Any, a: Any, b: Any, unused: Any, passed: Any) -> dict[str, Any]:
        s = a + b
        t = s * a
        u = call(divmod, t, 3)
        q, r = u
        return {"a": a, "passed": passed, "s": s, "t": t, "q": q, "r": r, "again": t, "last": q - r + b}

    model = symgraph.SymbolicModel([a, b, unused, passed], graph(symgraph.add_to_graph, a, b, unused, passed))
    code = generate(model.plan)
    assert len(code.pieces) >= 3
    check_layout(code, model.plan, 2)
    for values in ((1, 2, 3, 4), (10, -4, None, "kept"), (0, 0, object(), [1])):
        expected = graph(direct_call, *values)
        assert model(*values) == model.interpret(*values) == expected
        assert model(*values)["passed"] is values[3]  # an input returned as it came


def test_an_input_used_only_as_an_output(pieces: Callable[[int], None]) -> None:
    pieces(1)
    x, y = symgraph.CustomInput(1), symgraph.CustomInput(2)
    model = symgraph.SymbolicModel((x, y), (y, x + 1, x * 3, y))
    assert len(generate(model.plan).pieces) == 2
    marker = object()
    assert model(5, marker) == model.interpret(5, marker) == (marker, 6, 15, marker)


# -- errors --------------------------------------------------------------------------------


def fragile(value: int) -> int:
    if value < 0:
        raise ValueError(f"negative value {value}")
    return value * 10


def failing(call: Any, x: Any) -> Any:
    y = x
    for k in range(7):
        y = y + k
    y = call(fragile, y)  # step 7 of 15: in a middle piece
    for k in range(7):
        y = y * 2 - k
    return y


def test_an_error_in_a_middle_piece_names_its_step_and_shows_its_line(pieces: Callable[[int], None]) -> None:
    pieces(3)
    x = symgraph.CustomInput(1)  # fragile() succeeds while recording
    model = symgraph.SymbolicModel(x, failing(symgraph.add_to_graph, x))
    code = generate(model.plan)
    (j,) = [j for j, step in enumerate(model.plan.steps) if isinstance(step.op, symgraph.plugin.Call)]
    ((name, first, end),) = [p for p in code.pieces if p[1] <= j < p[2]]
    assert first > 0 and end < len(model.plan.steps)  # neither the first nor the last piece
    line = step_text(code, j)
    assert model(2) == failing(direct_call, 2)
    with pytest.raises(ValueError) as eager:
        failing(direct_call, -100)
    with pytest.raises(ValueError) as replayed:
        model(-100)
    assert str(replayed.value) == str(eager.value)
    step = model.plan.steps[j]
    assert replayed.value.__notes__ == [step_note(step)]
    assert repr(step.name) in replayed.value.__notes__[0] and "test_codegen_pieces.py" in step.where
    text = "".join(traceback.format_exception(replayed.value))
    assert f", line {code.lines[j]}, in {name}\n    {line}\n" in text
    assert text.index(f"in {name}") < text.index("in fragile")


@pytest.mark.parametrize("where", ["first", "last"])
def test_errors_in_the_first_and_last_pieces_are_noted(pieces: Callable[[int], None], where: str) -> None:
    pieces(2)
    x = symgraph.CustomInput(1)
    y = symgraph.add_to_graph(fragile, x) if where == "first" else x
    for k in range(5):
        y = y + k
    if where == "last":
        y = symgraph.add_to_graph(fragile, y)
    model = symgraph.SymbolicModel(x, y)
    code = generate(model.plan)
    j = 0 if where == "first" else len(model.plan.steps) - 1
    with pytest.raises(ValueError, match="negative value") as replayed:
        model(-50)
    assert replayed.value.__notes__ == [step_note(model.plan.steps[j])]
    name = code.pieces[0][0] if where == "first" else code.pieces[-1][0]
    assert f", line {code.lines[j]}, in {name}\n    {step_text(code, j)}\n" in "".join(
        traceback.format_exception(replayed.value)
    )


# -- leading parameters and prologue -------------------------------------------------------


class Scaled(CodegenPolicy):
    """Reads the constant 10 from a leading parameter; its prologue returns early without one."""

    leading = ("scale",)

    def constant(self, value: Any, ctx: Any) -> str | None:
        return "scale" if value == 10 and type(value) is int else None

    def leading_values(self) -> tuple[Any, ...]:
        return (10,)

    def prologue(self, ctx: Any, params: Any) -> list[str]:
        return [f"if {params[0]} is None:", f"    return {ctx.ref(('no scale', tuple(params)))}"]


def scaled(x: Any, scale: int = 10) -> Any:
    for k in range(6):
        x = x * scale + k
    return x


def test_leading_parameters_reach_every_piece_and_the_prologue_only_replay(pieces: Callable[[int], None]) -> None:
    pieces(2)
    x = symgraph.CustomInput(1)
    plan = build_plan(x, scaled(x))[0]
    code = generate(plan, Scaled())
    assert_only_our_names(code)
    functions = functions_of(code.source)
    assert [a.arg for a in functions[0].args.args] == ["scale", "v0"]
    assert all([a.arg for a in f.args.args] == ["scale", "live"] for f in functions[1:])
    assert code.source.count(" is None:") == 1 and "if scale is None:" in ast.unparse(functions[0])
    unbound = compile_plan(plan, Scaled(), bind=False)
    assert unbound(10, 3) == compile_plan(plan, Scaled())(3) == scaled(3)
    assert unbound(2, 3) == scaled(3, 2)  # read from the parameter in every piece
    assert unbound(None, 3) == ("no scale", ("scale", "v0"))


# -- lifetime of the source in linecache ---------------------------------------------------


def piece_codes(model: symgraph.SymbolicModel) -> dict[str, types.CodeType]:
    runner = model._program.runner
    names = [name for name, _, _ in generate(model.plan).pieces]
    return {"replay": runner.__code__, **{name: runner.__globals__[name].__code__ for name in names}}


def test_every_code_object_of_a_model_in_pieces_dies_with_it(
    pieces: Callable[[int], None], no_collection: None
) -> None:
    pieces(2)
    x = symgraph.CustomInput(1)
    y = chain(x, 9)
    del symgraph.SymbolicModel(x, y)._program  # one model first, for a name to reuse
    before = len(linecache.cache)
    for _ in range(30):
        model = symgraph.SymbolicModel(x, y)
        codes = [weakref.ref(c) for c in piece_codes(model).values()]
        assert len(codes) == 1 + len(generate(model.plan).pieces) > 3
        filename = model._program.runner.__code__.co_filename
        assert linecache.getlines(filename) == model.source.splitlines(keepends=True)
        del model
        assert all(c() is None for c in codes)
        assert linecache.getlines(filename) == []
    assert len(linecache.cache) == before


def test_a_piece_alone_keeps_the_lines(pieces: Callable[[int], None], no_collection: None) -> None:
    """The entry goes with the last code object of the source, whichever that is."""
    pieces(2)
    x = symgraph.CustomInput(1)
    model = symgraph.SymbolicModel(x, chain(x, 9))
    source = model.source.splitlines(keepends=True)
    codes = piece_codes(model)
    filename = codes["replay"].co_filename
    outer = weakref.ref(codes["replay"])
    middle = codes["replay_3"]
    others = [weakref.ref(c) for name, c in codes.items() if name != "replay_3"]
    del model, codes
    assert outer() is None and all(c() is None for c in others)
    assert linecache.getlines(filename) == source  # replay_3's code is alive
    assert linecache.getlines(filename)[middle.co_firstlineno - 1].startswith("def replay_3(")
    # A model built now cannot take the name of a source still shown.
    other = symgraph.SymbolicModel(x, chain(x, 4) + 1)
    assert other._program.runner.__code__.co_filename != filename
    del middle
    assert linecache.getlines(filename) == []
    del other


def test_a_traceback_into_a_piece_keeps_its_lines(pieces: Callable[[int], None]) -> None:
    pieces(3)
    x = symgraph.CustomInput(1)
    model = symgraph.SymbolicModel(x, failing(symgraph.add_to_graph, x))
    code = generate(model.plan)
    (j,) = [j for j, step in enumerate(model.plan.steps) if isinstance(step.op, symgraph.plugin.Call)]
    filename = model._program.runner.__code__.co_filename
    caught: list[BaseException] = []
    try:
        model(-100)
    except ValueError as exc:
        caught.append(exc)
    tb = caught[0].__traceback__
    while tb is not None and not re.fullmatch(r"replay_\d+", tb.tb_frame.f_code.co_name):
        tb = tb.tb_next
    assert tb is not None and tb.tb_frame.f_code.co_filename == filename
    expected = "".join(traceback.format_tb(tb))
    assert f", line {code.lines[j]}, in {tb.tb_frame.f_code.co_name}\n    {step_text(code, j)}\n" in expected
    caught.clear()
    del model
    gc.collect()
    others = [symgraph.SymbolicModel(x, chain(x, 9) + k) for k in range(5)]  # compiled while it is kept
    assert all(o._program.runner.__code__.co_filename != filename for o in others)
    assert "".join(traceback.format_tb(tb)) == expected
    del tb
    gc.collect()
    assert linecache.getlines(filename) == []
    del others


# -- backends and executors ----------------------------------------------------------------


def test_a_model_in_pieces_pickles(pieces: Callable[[int], None]) -> None:
    pieces(3)
    x, y = symgraph.CustomInput(1), symgraph.CustomInput(2)
    model = symgraph.SymbolicModel((x, y), wide(x, y, 7))
    loaded = pickle.loads(pickle.dumps(model))
    assert generate(loaded.plan).pieces
    assert loaded(4, 5) == model(4, 5) == wide(4, 5, 7)


def test_a_torch_model_with_fast_paths_in_pieces(pieces: Callable[[int], None]) -> None:
    torch = pytest.importorskip("torch")
    from torch import nn

    import symgraph_torch

    pieces(2)
    torch.manual_seed(0)
    layers = [nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 3)]

    def eager(t: Any) -> tuple[Any, Any]:
        h = t
        for layer in layers:
            h = layer(h)
        return h, h * 2 + t.sum()

    x = symgraph_torch.Input((4,))
    model = symgraph_torch.SymbolicModel(x, eager(x))
    code = generate(model._plan, model.codegen_policy(model._plan, {}))
    assert len(code.pieces) >= 3 and "_layer :=" in code.source  # the fast paths, in pieces
    replay, *rest = functions_of(code.source)
    leading = ["params", "buffers", "modules"]
    assert [a.arg for a in replay.args.args] == [*leading, "v0"]
    assert all([a.arg for a in f.args.args] == [*leading, "live"] for f in rest)
    # The prologue's switch to the version without fast paths is in replay only.
    assert isinstance(replay.body[0], ast.If) and not any(isinstance(s, ast.If) for f in rest for s in f.body)
    data = torch.rand(5, 4)
    for got, want in zip(model(data), eager(data), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    # A global hook sends calls to the version without fast paths.
    calls: list[str] = []
    handle = nn.modules.module.register_module_forward_hook(lambda m, i, o: calls.append(type(m).__name__))
    try:
        for got, want in zip(model(data), eager(data), strict=True):
            torch.testing.assert_close(got, want, rtol=0, atol=0)
    finally:
        handle.remove()
    assert calls.count("Linear") == 6  # three in the model's call, three in the oracle's


def test_torch_compile_of_a_model_in_pieces(pieces: Callable[[int], None]) -> None:
    torch = pytest.importorskip("torch")
    from torch import nn
    from torch._dynamo.testing import CompileCounter

    import symgraph_torch

    pieces(2)
    torch._dynamo.reset()
    try:
        torch.manual_seed(0)
        first, second = nn.Linear(4, 8), nn.Linear(8, 3)
        x = symgraph_torch.Input((4,))
        counter = CompileCounter()
        model = symgraph_torch.SymbolicModel(
            x, second(first(x).tanh()) * 2 + 1, executor="compile", executor_options={"backend": counter}
        )
        for batch in (2, 3, 7):
            data = torch.rand(batch, 4)
            torch.testing.assert_close(model(data), second(torch.tanh(first(data))) * 2 + 1, rtol=0, atol=0)
        assert counter.frame_count == 1  # dynamo traced through the pieces: one graph
    finally:
        torch._dynamo.reset()
