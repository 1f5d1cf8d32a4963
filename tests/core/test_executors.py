"""The executor seam: built-in and user executors, entry points, errors, fallback, copies.

Every result is checked against the oracle: the same Python code run eagerly.
Each program below is a function of ``call`` and its inputs; recorded, ``call``
is :func:`symgraph.add_to_graph` and the inputs are ``CustomInput`` handles;
eagerly, ``call`` calls directly and the inputs are plain values.
"""

from __future__ import annotations

import copy
import gc
import importlib.util
import os
import pickle
import subprocess
import sys
import textwrap
import warnings
import weakref
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pytest

import symgraph
import symgraph.plugin
from symgraph import CustomInput, ExecutorError, ExecutorFallbackWarning, SymbolicModel, add_to_graph
from symgraph import _executors as executors_module
from symgraph.plugin import Executor, Plan, check_options, interpret

# ----------------------------------------------------------------------------- programs and the oracle


def eager_call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return func(*args, **kwargs)


def nest(prices: dict[str, int], count: int) -> dict[str, Any]:
    return {"items": sorted(prices.items()), "count": [count, (count, count * 2)]}


def sets_program(call, a, b):
    return ((a | b) - {1}, a & b, call(sorted, a ^ b))


def strings_program(call, s, sep):
    parts = s.split(sep)
    return {
        "upper": s.upper(),
        "parts": parts,
        "joined": sep.join(call(sorted, parts, reverse=True)),
        "n": call(len, s),
    }


def dicts_program(call, prices, count):
    total = call(sum, prices.values()) * count
    return [total, prices["apple"], call(nest, prices, count)]  # the last output is a nested value


def numbers_program(call, a, b):
    return (a * 3 + b, a // (b + 1), -a, abs(b) ** 2, call(divmod, a, b + 10), a / 4 > b)


@dataclass(frozen=True)
class Case:
    """A program, the example values it is recorded on, and fresh values to replay it on."""

    name: str
    fn: Callable[..., Any]
    example: tuple[Any, ...] | dict[str, Any]  # a dict: the model takes keyword arguments
    fresh: list[Any]

    def record(self, **model_kwargs: Any) -> tuple[SymbolicModel, Any, Any]:
        """The model, with its symbolic inputs and outputs (keep them to keep the graph)."""
        if isinstance(self.example, dict):
            inputs: Any = {k: CustomInput(v) for k, v in self.example.items()}
            outputs = self.fn(add_to_graph, **inputs)
        else:
            inputs = tuple(CustomInput(v) for v in self.example)
            outputs = self.fn(add_to_graph, *inputs)
        return SymbolicModel(inputs, outputs, **model_kwargs), inputs, outputs

    def apply(self, fn: Callable[..., Any], values: Any) -> Any:
        return fn(**values) if isinstance(values, dict) else fn(*values)

    def eager(self, values: Any) -> Any:
        return self.apply(lambda *a, **k: self.fn(eager_call, *a, **k), values)

    def values(self) -> list[Any]:
        return [self.example, *self.fresh]


CASES = [
    Case("sets", sets_program, ({1, 2, 3}, {3, 4}), [({1, 5}, {5, 6}), (set(), {1}), ({"a", 1}, {"a"})]),
    Case("strings", strings_program, ("b,a,c", ","), [("x-y-z", "-"), ("", ";"), ("one two", " ")]),
    Case(
        "dicts",
        dicts_program,
        {"prices": {"apple": 3, "pear": 5}, "count": 2},
        [{"prices": {"apple": 1, "fig": 4}, "count": 3}, {"count": -1, "prices": {"apple": 0}}],
    ),
    Case("numbers", numbers_program, (7, 2), [(10, 3), (-4, 0), (2.5, -3), (True, 5)]),
]
CASE_IDS = [case.name for case in CASES]


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def assert_matches_eager(model: SymbolicModel, case: Case) -> None:
    for values in case.values():
        got, expected = case.apply(model, values), case.eager(values)
        assert same(got, expected), (case.name, values, got, expected)


# ----------------------------------------------------------------------------- executors for the tests


#: Runs per executor name, counted by CountingRunner.
RUNS: Counter[str] = Counter()


class CountingRunner:
    """Interprets the plan and counts its runs (module level, so it pickles)."""

    def __init__(self, name: str, plan: Plan) -> None:
        self.name, self.plan = name, plan

    def __call__(self, *values: Any) -> Any:
        RUNS[self.name] += 1
        return interpret(self.plan, values)


class CountingExecutor(Executor):
    """An Executor subclass that pickles; it takes one option, ``level``."""

    def build(self, plan: Plan, options: Mapping[str, Any], host: Any) -> CountingRunner:
        check_options(self.name, options, ("level",))
        return CountingRunner(self.name, plan)


def counting_factory(plan: Plan, options: Mapping[str, Any], host: Any) -> CountingRunner:
    check_options("counted", options, ("level",))
    return CountingRunner("counted", plan)


#: Picklable executor objects: a subclass with build(), and a plain factory.
PICKLABLE_EXECUTORS = [CountingExecutor("subclassed"), Executor("counted", counting_factory)]


def executor_id(executor: str | Executor) -> str:
    return executor if isinstance(executor, str) else f"object-{executor.name}"


def no_gpu(plan: Plan, options: Mapping[str, Any], host: Any) -> Any:
    raise ExecutorError("no GPU here")


@dataclass
class Spy:
    """A factory that records what it is given and counts the runs of its runners."""

    builds: list[tuple[Plan, dict[str, Any], Any]] = field(default_factory=list)
    calls: int = 0
    fail_when: Callable[[Plan], bool] | None = None

    def __call__(self, plan: Plan, options: Mapping[str, Any], host: Any) -> Callable[..., Any]:
        if self.fail_when is not None and self.fail_when(plan):
            raise ExecutorError("the spy refuses this plan")
        self.builds.append((plan, dict(options), host))

        def runner(*values: Any) -> Any:
            self.calls += 1
            return interpret(plan, values)

        return runner


@pytest.fixture
def registry():
    """Executors registered (or loaded from entry points) inside a test are forgotten after it."""
    saved = dict(executors_module._executors)
    saved_entry_points = executors_module._entry_points
    yield executors_module._executors
    with executors_module._lock:
        executors_module._executors.clear()
        executors_module._executors.update(saved)
        executors_module._entry_points = saved_entry_points


# ----------------------------------------------------------------------------- 1. executors give the eager result


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("name", ["codegen", "interpreter"])
def test_builtin_executors_match_eager(case, name):
    model, _, _ = case.record(executor=name)
    assert model.executor == name
    assert model.executor_options == {}
    assert f"executor {name!r}" in repr(model)
    assert_matches_eager(model, case)


def test_codegen_is_the_default():
    x = CustomInput(2)
    model = SymbolicModel(x, x * 21)
    assert model.executor == symgraph.plugin.DEFAULT_EXECUTOR == "codegen"
    assert model(2) == 42


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_a_registered_executor_runs_every_call(registry, case):
    spy = Spy()
    symgraph.register_executor("spy", spy)
    assert "spy" in symgraph.available_executors()
    model, _, _ = case.record(executor="spy")
    assert model.executor == "spy"
    assert len(spy.builds) == 1 and spy.builds[0][0] is model.plan
    assert_matches_eager(model, case)
    assert spy.calls == len(case.values())  # every call went through the spy's runner


@pytest.mark.parametrize("executor", PICKLABLE_EXECUTORS, ids=executor_id)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_executor_objects_are_accepted_without_registration(case, executor):
    before = RUNS[executor.name]
    model, _, _ = case.record(executor=executor)
    assert model.executor == executor.name
    assert executor.name not in symgraph.available_executors()  # passing an object registers nothing
    assert_matches_eager(model, case)
    assert RUNS[executor.name] - before == len(case.values())


def test_available_executors_lists_builtins_and_registrations_sorted(registry):
    names = symgraph.available_executors()
    assert {"codegen", "interpreter", "dask"} <= set(names)
    assert list(names) == sorted(names)
    symgraph.register_executor("aaa-first", Spy())
    assert "aaa-first" in symgraph.available_executors()


def test_dask_executor_runs_or_says_it_needs_dask():
    case = CASES[0]
    try:
        import dask  # noqa: F401
    except ImportError:  # blocked in the no-backend tier
        has_dask = False
    else:
        has_dask = True
    if not has_dask:
        with pytest.raises(ExecutorError, match="needs dask"):
            case.record(executor="dask")
        with pytest.warns(ExecutorFallbackWarning, match="needs dask") as record:
            model, _, _ = case.record(executor="dask", executor_options={"fallback": "codegen"})
        assert len(record) == 1
        assert model.executor == "codegen"
    else:
        model, _, _ = case.record(executor="dask", executor_options={"scheduler": "sync"})
        assert model.executor == "dask"
    assert_matches_eager(model, case)


# ----------------------------------------------------------------------------- 2. register_executor


def test_the_factory_gets_the_plan_the_options_without_fallback_and_the_host(registry):
    spy = Spy()
    symgraph.register_executor("spy", spy)
    x = CustomInput(3)
    options = {"level": 2, "fallback": "codegen"}
    model = SymbolicModel(x, x + 1, executor="spy", executor_options=options)
    plan, got_options, host = spy.builds[0]
    assert plan is model.plan
    assert got_options == {"level": 2}
    assert host is None  # a plain SymbolicModel asks as no host; backends pass their model
    assert model.executor_options == options
    model.executor_options["level"] = 99  # a copy
    assert model.executor_options == options
    options["level"] = 98  # the model copied what it was given
    assert model.executor_options == {"level": 2, "fallback": "codegen"}
    assert model(4) == 5

    # Backends pass their model through Program.
    host_object = object()
    program = symgraph.plugin.Program(model.plan, "spy", {"level": 1}, host=host_object)
    assert spy.builds[-1][1:] == ({"level": 1}, host_object)
    assert program.executor.name == "spy" and program.runner(10) == 11


def test_duplicate_names_need_replace(registry):
    first, second = Spy(), Spy()
    symgraph.register_executor("dup", first)
    with pytest.raises(ValueError, match=r"'dup'.*replace=True"):
        symgraph.register_executor("dup", second)
    for builtin in ("codegen", "interpreter", "dask"):
        with pytest.raises(ValueError, match=builtin):
            symgraph.register_executor(builtin, second)
    x = CustomInput([1])
    old = SymbolicModel(x, x + [2], executor="dup")
    symgraph.register_executor("dup", second, replace=True)
    new = SymbolicModel(x, x + [3], executor="dup")
    assert old([0]) == [0, 2] and new([0]) == [0, 3]
    assert (first.calls, second.calls) == (1, 1)  # a built model keeps the runner it was built with


@pytest.mark.parametrize("name", ["", None, 3, b"bytes", ("codegen",)])
def test_bad_names_are_type_errors(registry, name):
    with pytest.raises(TypeError, match="name"):
        symgraph.register_executor(name, Spy())
    with pytest.raises(TypeError, match="name"):
        symgraph.register_executor(name, Executor("well-named", Spy()))
    with pytest.raises(TypeError, match="name"):
        Executor(name)
    assert name not in executors_module._executors
    assert "well-named" not in executors_module._executors


@pytest.mark.parametrize("factory", [None, 3, "codegen", [Spy()]])
def test_bad_factories_are_type_errors(registry, factory):
    with pytest.raises(TypeError, match="'bad'"):
        symgraph.register_executor("bad", factory)
    assert "bad" not in symgraph.available_executors()
    if factory is not None:
        with pytest.raises(TypeError, match="callable"):
            Executor("bad", factory)


def test_an_executor_without_build_or_factory_fails_loudly():
    x = CustomInput(1)
    with pytest.raises(NotImplementedError, match="'bare'"):
        SymbolicModel(x, x + 1, executor=Executor("bare"))


# ----------------------------------------------------------------------------- 3. entry points

TINY_EXECUTOR = '''
"""A tiny executor plugin: interprets plans and counts what it does."""

import sys

from symgraph.plugin import check_options, interpret

sys.tiny_executor_imports = getattr(sys, "tiny_executor_imports", 0) + 1  # the import marker
BUILDS = []
RUNS = []


def factory(plan, options, host):
    check_options("tiny", options, ("flavour",))
    BUILDS.append(dict(options))

    def runner(*values):
        RUNS.append(values)
        return interpret(plan, values)

    return runner
'''

TINY_PYPROJECT = """
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "tiny-symgraph-executor"
version = "0.1"

[project.entry-points."symgraph.executors"]
tiny = "tiny_executor:factory"
broken = "tiny_broken_executor:factory"

[tool.setuptools]
py-modules = ["tiny_executor", "tiny_broken_executor"]
"""

TINY_CHECK = """
import sys

import symgraph

BACKENDS = {"torch", "numpy", "dask", "symgraph_torch", "symgraph_numpy"}


def program(call, a, s):
    return (a | {3}, s.split(","), call(sorted, a))


def eager(f, *args, **kwargs):
    return f(*args, **kwargs)


names = symgraph.available_executors()
assert {"tiny", "broken", "codegen"} <= set(names), names
# Listing imported neither plugin.
assert "tiny_executor" not in sys.modules and "tiny_broken_executor" not in sys.modules
assert not hasattr(sys, "tiny_executor_imports")
assert not BACKENDS & {m.partition(".")[0] for m in sys.modules}, sorted(sys.modules)

a, s = symgraph.CustomInput({1, 2}), symgraph.CustomInput("x,y")
model = symgraph.SymbolicModel((a, s), program(symgraph.add_to_graph, a, s), executor="tiny",
                               executor_options={"flavour": "plain"})
assert sys.tiny_executor_imports == 1
assert model.executor == "tiny"
import tiny_executor

assert tiny_executor.BUILDS == [{"flavour": "plain"}], tiny_executor.BUILDS
for values in [({1, 2}, "x,y"), ({5}, "p,q,r"), (set(), "")]:
    got = model(*values)
    assert got == program(eager, *values), (got, values)
    assert model.interpret(*values) == got
assert len(tiny_executor.RUNS) == 3

# Loaded once: a second model does not import it again.
again = symgraph.SymbolicModel(a, a - {1}, executor="tiny")
assert again({1, 7}) == {7} and sys.tiny_executor_imports == 1 and len(tiny_executor.BUILDS) == 2
try:
    symgraph.SymbolicModel(a, a - {1}, executor="tiny", executor_options={"spicy": True})
except TypeError as exc:
    assert "'spicy'" in str(exc), exc
else:
    raise AssertionError("the plugin's option check did not run")

# A plugin that fails to import names itself, every time it is asked for.
for _ in range(2):
    try:
        symgraph.SymbolicModel(a, a - {1}, executor="broken")
    except symgraph.ExecutorError as exc:
        message = str(exc)
        assert "'broken'" in message and "tiny_broken_executor:factory" in message, message
        assert "needs a library that is not here" in message, message
    else:
        raise AssertionError("a broken entry point built a model")
assert "broken" in symgraph.available_executors()
print("ok")
"""


@pytest.fixture(scope="module")
def tiny_site(tmp_path_factory):
    """A site directory with the tiny executor distribution installed by pip, offline."""
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("building the tiny plugin needs setuptools")
    root = tmp_path_factory.mktemp("tiny_plugin")
    package = root / "pkg"
    package.mkdir()
    (package / "pyproject.toml").write_text(TINY_PYPROJECT)
    (package / "tiny_executor.py").write_text(TINY_EXECUTOR)
    (package / "tiny_broken_executor.py").write_text(
        'raise ImportError("tiny_broken_executor needs a library that is not here")\n'
    )
    site = root / "site"
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index"]
    command += ["--no-cache-dir", "--disable-pip-version-check", "-q", "--target", str(site), str(package)]
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=root, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return site


def test_an_installed_plugin_is_listed_without_import_and_loads_on_first_use(tiny_site, tmp_path):
    script = tmp_path / "check.py"
    script.write_text(textwrap.dedent(TINY_CHECK))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tiny_site), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "ok"


def test_entry_points_in_process_load_lazily_and_broken_ones_can_fall_back(registry, monkeypatch):
    group = symgraph.plugin.EXECUTOR_ENTRY_POINT_GROUP
    plugin = type(sys)("fake_executor_plugin")
    plugin.EXECUTOR = CountingExecutor("from-entry-point")
    monkeypatch.setitem(sys.modules, "fake_executor_plugin", plugin)
    declared = {
        "from-entry-point": metadata.EntryPoint("from-entry-point", "fake_executor_plugin:EXECUTOR", group),
        "missing-plugin": metadata.EntryPoint("missing-plugin", "no_such_module_xyz:factory", group),
    }
    monkeypatch.setattr(executors_module, "_entry_points", declared)
    assert {"from-entry-point", "missing-plugin"} <= set(symgraph.available_executors())
    assert "from-entry-point" not in registry  # declared, not loaded

    case = CASES[3]
    model, _, _ = case.record(executor="from-entry-point")
    assert registry["from-entry-point"] is plugin.EXECUTOR  # loaded once, then kept
    assert_matches_eager(model, case)

    with pytest.raises(ExecutorError, match=r"'missing-plugin' \(no_such_module_xyz:factory\)"):
        case.record(executor="missing-plugin")
    with pytest.warns(ExecutorFallbackWarning, match="no_such_module_xyz") as record:
        model, _, _ = case.record(executor="missing-plugin", executor_options={"fallback": "interpreter"})
    assert len(record) == 1 and model.executor == "interpreter"
    assert_matches_eager(model, case)


# ----------------------------------------------------------------------------- 4. errors at model build


@pytest.fixture
def spied_graph():
    """A graph whose recorded function counts its calls; building a model must not call it."""
    calls: list[int] = []

    def spy(v):
        calls.append(v)
        return v * 2

    x = CustomInput(1)
    y = add_to_graph(spy, x)
    calls.clear()
    return x, y, calls


def test_an_unknown_executor_lists_the_available_ones(registry, spied_graph):
    x, y, calls = spied_graph
    symgraph.register_executor("mine", Spy())
    model = None
    with pytest.raises(ExecutorError, match="unknown executor 'warp-drive'") as info:
        model = SymbolicModel(x, y, executor="warp-drive")
    for name in ("codegen", "interpreter", "dask", "mine"):
        assert name in str(info.value)
    assert "symgraph.executors" in str(info.value)
    assert model is None and calls == []


@pytest.mark.parametrize("name", ["codegen", "interpreter"])
def test_unknown_options_are_type_errors_naming_them(spied_graph, name):
    x, y, calls = spied_graph
    with pytest.raises(TypeError, match=rf"executor '{name}' takes no option 'turbo'"):
        SymbolicModel(x, y, executor=name, executor_options={"turbo": True})
    model = SymbolicModel(x, y, executor=name)
    with pytest.raises(TypeError, match="'turbo'"):
        model.set_executor(name, turbo=True)
    assert calls == []
    assert model(5) == 10 and calls == [5]


@pytest.mark.parametrize("options", [[("fallback", "interpreter")], "fast", 5, ["level"], (), frozenset()])
def test_executor_options_must_be_a_dict(spied_graph, options):
    x, y, calls = spied_graph
    with pytest.raises(TypeError, match="executor_options must be a dict"):
        SymbolicModel(x, y, executor_options=options)
    assert calls == []


@pytest.mark.parametrize("executor", [None, 3, ["codegen"], symgraph.plugin.interpret, Spy()])
def test_executor_of_a_wrong_type_is_a_type_error(spied_graph, executor):
    x, y, calls = spied_graph
    with pytest.raises(TypeError, match=r"executor must be a name or a symgraph\.plugin\.Executor"):
        SymbolicModel(x, y, executor=executor)
    with pytest.raises(TypeError, match="executor must be a name"):  # even with a fallback asked for
        SymbolicModel(x, y, executor=executor, executor_options={"fallback": "codegen"})
    assert calls == []


def test_a_malformed_fallback_is_a_type_error(spied_graph):
    x, y, calls = spied_graph
    with pytest.raises(TypeError, match=r"executor_options\['fallback'\]"):
        SymbolicModel(x, y, executor_options={"fallback": 3})
    assert calls == []


# ----------------------------------------------------------------------------- 5. fallback


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_fallback_warns_once_and_runs_on_the_fallback(registry, case):
    symgraph.register_executor("gpu", no_gpu)
    with pytest.warns(ExecutorFallbackWarning) as record:
        model, _, _ = case.record(executor="gpu", executor_options={"fallback": "interpreter"})
    assert len(record) == 1
    message = str(record[0].message)
    assert "'gpu'" in message and "'interpreter'" in message and "no GPU here" in message
    assert model.executor == "interpreter"
    assert model.executor_options == {"fallback": "interpreter"}
    assert_matches_eager(model, case)


def test_without_fallback_the_executor_error_propagates(registry):
    symgraph.register_executor("gpu", no_gpu)
    x = CustomInput(2)
    model = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ExecutorError, match="no GPU here"):
            model = SymbolicModel(x, x + 1, executor="gpu", executor_options={"device": 0})
    assert model is None and caught == []


def test_the_fallback_is_built_without_the_options_meant_for_the_first_choice(registry):
    symgraph.register_executor("gpu", no_gpu)
    spy = Spy()
    symgraph.register_executor("spy", spy)
    x = CustomInput({1})
    options = {"device": "cuda:0", "fallback": "spy"}
    with pytest.warns(ExecutorFallbackWarning, match="'gpu'.*'spy'.*no GPU here"):
        model = SymbolicModel(x, x | {2}, executor="gpu", executor_options=options)
    assert spy.builds[0][1] == {}
    assert model.executor == "spy" and model.executor_options == options
    assert model({3}) == {2, 3} and spy.calls == 1
    # codegen takes no options; the fallback still builds.
    with pytest.warns(ExecutorFallbackWarning):
        model = SymbolicModel(x, x | {2}, executor="gpu", executor_options={**options, "fallback": "codegen"})
    assert model.executor == "codegen" and model({3}) == {2, 3}


def test_a_fallback_that_is_not_needed_does_not_warn(registry):
    spy = Spy()
    symgraph.register_executor("spy", spy)
    x = CustomInput("ab")
    model = SymbolicModel(x, x * 2, executor="spy", executor_options={"fallback": "interpreter"})
    assert model.executor == "spy" and model("xy") == "xyxy" and spy.calls == 1


def test_an_unknown_executor_can_fall_back(registry):
    x = CustomInput(5)
    with pytest.warns(ExecutorFallbackWarning, match="unknown executor 'not-installed'") as record:
        model = SymbolicModel(x, x - 1, executor="not-installed", executor_options={"fallback": "codegen"})
    assert len(record) == 1 and model.executor == "codegen" and model(1) == 0


def test_a_failing_fallback_raises_its_own_error(registry):
    symgraph.register_executor("gpu", no_gpu)
    x = CustomInput(5)
    with pytest.warns(ExecutorFallbackWarning), pytest.raises(ExecutorError, match="unknown executor 'nope'"):
        SymbolicModel(x, x - 1, executor="gpu", executor_options={"fallback": "nope"})


def _raises(exc: BaseException) -> Callable[..., Any]:
    def factory(plan, options, host):
        raise exc

    return factory


@pytest.mark.parametrize(
    "exc", [RuntimeError("driver crashed"), ValueError("bad plan"), KeyError("slot"), ImportError("cupy")]
)
def test_other_exceptions_are_not_swallowed_by_the_fallback(registry, exc):
    symgraph.register_executor("flaky", _raises(exc))
    x = CustomInput(5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(type(exc)) as info:
            SymbolicModel(x, x - 1, executor="flaky", executor_options={"fallback": "codegen"})
        # An unknown option is a mistake to fix, not a reason to fall back.
        with pytest.raises(TypeError, match="'turbo'"):
            SymbolicModel(x, x - 1, executor="interpreter", executor_options={"turbo": 1, "fallback": "codegen"})
    assert type(info.value) is type(exc) and info.value is exc
    assert caught == []


# ----------------------------------------------------------------------------- 6. set_executor and add_output


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_set_executor_switches_in_place(registry, case):
    spy = Spy()
    symgraph.register_executor("spy", spy)
    model, _, _ = case.record()
    assert model.executor == "codegen"
    model.set_executor("interpreter")
    assert model.executor == "interpreter" and model.executor_options == {}
    assert_matches_eager(model, case)
    model.set_executor("spy", level=2)
    assert model.executor == "spy" and model.executor_options == {"level": 2}
    assert spy.builds[-1][:2] == (model.plan, {"level": 2})
    assert_matches_eager(model, case)
    assert spy.calls == len(case.values())
    model.set_executor(PICKLABLE_EXECUTORS[0])
    assert model.executor == PICKLABLE_EXECUTORS[0].name
    assert_matches_eager(model, case)


def test_a_failing_switch_leaves_the_old_executor_running(registry):
    spy = Spy()
    symgraph.register_executor("spy", spy)
    symgraph.register_executor("gpu", no_gpu)
    case = CASES[0]
    model, _, _ = case.record(executor="spy", executor_options={"level": 1})
    failures: list[tuple[tuple[Any, ...], dict[str, Any], type[BaseException]]] = [
        (("no-such-executor",), {}, ExecutorError),
        (("gpu",), {}, ExecutorError),
        (("codegen",), {"bogus": 1}, TypeError),
        ((3,), {}, TypeError),
        (("gpu",), {"fallback": 3}, TypeError),
        (("flaky",), {}, ExecutorError),  # not registered yet
    ]
    symgraph.register_executor("crashing", _raises(RuntimeError("driver crashed")))
    failures.append((("crashing",), {"fallback": "codegen"}, RuntimeError))
    for args, options, error in failures:
        with pytest.raises(error):
            model.set_executor(*args, **options)
        assert model.executor == "spy" and model.executor_options == {"level": 1}
    calls = spy.calls
    assert_matches_eager(model, case)
    assert spy.calls == calls + len(case.values())  # still the spy's runner


def test_set_executor_can_fall_back(registry):
    symgraph.register_executor("gpu", no_gpu)
    x = CustomInput([1])
    model = SymbolicModel(x, x * 2)
    with pytest.warns(ExecutorFallbackWarning, match="'gpu'.*'interpreter'.*no GPU here") as record:
        model.set_executor("gpu", fallback="interpreter")
    assert len(record) == 1
    assert model.executor == "interpreter" and model.executor_options == {"fallback": "interpreter"}
    assert model([3]) == [3, 3]


def test_add_output_keeps_the_executor_and_its_options(registry):
    spy = Spy()
    symgraph.register_executor("spy", spy)
    a, b = CustomInput({1, 2}), CustomInput({2, 3})
    union = a | b
    model = SymbolicModel((a, b), union, executor="spy", executor_options={"level": 3})
    model.add_output(a & b)
    assert model.executor == "spy" and model.executor_options == {"level": 3}
    assert len(spy.builds) == 2
    assert spy.builds[-1][:2] == (model.plan, {"level": 3})
    assert model({1}, {1, 4}) == ({1, 4}, {1}) == ({1} | {1, 4}, {1} & {1, 4})
    assert spy.calls == 1
    # After a switch, add_output keeps the new choice.
    model.set_executor("interpreter")
    model.add_output(a - b)
    assert model.executor == "interpreter"
    assert model({1, 5}, {5}) == ({1, 5}, {5}, {1})
    assert spy.calls == 1


def test_add_output_that_the_executor_refuses_leaves_the_model_as_it_was(registry):
    spy = Spy(fail_when=lambda plan: len(plan.output_slots()) > 1)
    symgraph.register_executor("spy", spy)
    x = CustomInput("ab")
    upper = x.upper()
    model = SymbolicModel(x, upper, executor="spy")
    with pytest.raises(ExecutorError, match="refuses"):
        model.add_output(x * 2)
    assert model.executor == "spy" and model("cd") == "CD"
    assert model.outputs is upper  # the graph link is unchanged too


# ----------------------------------------------------------------------------- 7. pickles and copies


def _pickled(model):
    return pickle.loads(pickle.dumps(model))


CLONERS = {"pickle": _pickled, "copy": copy.copy, "deepcopy": copy.deepcopy}


@pytest.mark.parametrize("clone", list(CLONERS.values()), ids=list(CLONERS))
@pytest.mark.parametrize(
    ("executor", "options"),
    [("interpreter", {}), ("codegen", {}), ("registered", {"level": 1}), ("registered", {"fallback": "codegen"})],
)
def test_copies_keep_the_executor_and_its_options(registry, clone, executor, options):
    symgraph.register_executor("registered", CountingExecutor("registered"))
    case = CASES[1]
    model, _, _ = case.record(executor=executor, executor_options=options)
    twin = clone(model)
    assert twin.executor == model.executor == executor
    assert twin.executor_options == options
    before = RUNS["registered"]
    assert_matches_eager(twin, case)
    if executor == "registered":
        assert RUNS["registered"] - before == len(case.values())


@pytest.mark.parametrize("clone", list(CLONERS.values()), ids=list(CLONERS))
@pytest.mark.parametrize("executor", PICKLABLE_EXECUTORS, ids=executor_id)
def test_copies_keep_an_executor_object(clone, executor):
    case = CASES[3]
    model, _, _ = case.record(executor=executor, executor_options={"level": 4})
    twin = clone(model)
    assert twin.executor == executor.name and twin.executor_options == {"level": 4}
    before = RUNS[executor.name]
    assert_matches_eager(twin, case)
    assert RUNS[executor.name] - before == len(case.values())
    assert pickle.loads(pickle.dumps(twin)).executor == executor.name  # and again


def test_a_loaded_model_tries_the_executor_it_asked_for_again(registry):
    # The choice is what is kept, not the fallback: where the executor can run, a loaded model uses it.
    symgraph.register_executor("gpu", no_gpu)
    x = CustomInput(4)
    with pytest.warns(ExecutorFallbackWarning):
        model = SymbolicModel(x, x * x, executor="gpu", executor_options={"fallback": "interpreter"})
    data = pickle.dumps(model)
    with pytest.warns(ExecutorFallbackWarning) as record:
        still_failing = pickle.loads(data)
    assert len(record) == 1 and still_failing.executor == "interpreter" and still_failing(3) == 9
    assert copy.copy(model).executor == "interpreter"  # a shallow copy shares the runner: no rebuild, no warning
    spy = Spy()
    symgraph.register_executor("gpu", spy, replace=True)
    loaded = pickle.loads(data)
    assert loaded.executor == "gpu" and loaded(5) == 25 and spy.calls == 1
    assert spy.builds[0][1] == {}


# ----------------------------------------------------------------------------- 8. the graph is held weakly


@pytest.mark.parametrize("executor", ["codegen", "interpreter"])
def test_the_model_holds_its_graph_weakly(executor):
    a, b = CustomInput({1, 2}), CustomInput({2})
    union, common = a | b, a & b
    model = SymbolicModel({"a": a, "b": b}, {"union": union, "common": common}, executor=executor)
    assert model.inputs["a"] is a and model.inputs["b"] is b
    assert model.outputs["union"] is union and model.outputs["common"] is common
    assert hasattr(model, "inputs")
    probe = weakref.ref(union.node)
    del a, b, union, common
    gc.collect()
    assert probe() is None
    for attribute in ("inputs", "outputs"):
        with pytest.raises(symgraph.MissingGraphError, match="no longer exists"):
            getattr(model, attribute)
        with pytest.raises(AttributeError):
            getattr(model, attribute)
        assert not hasattr(model, attribute)
    with pytest.raises(symgraph.MissingGraphError):
        model.add_output(CustomInput(1))
    assert model.executor == executor
    for a_value, b_value in [({1, 2}, {2}), ({"x"}, set())]:
        assert model(a=a_value, b=b_value) == {"union": a_value | b_value, "common": a_value & b_value}


class Payload(dict):
    """A dict that weakrefs can follow."""


@pytest.mark.parametrize("executor", ["codegen", "interpreter", *PICKLABLE_EXECUTORS], ids=executor_id)
def test_a_model_does_not_keep_a_large_example_value_alive(executor):
    example = Payload(data=bytes(1_000_000), label="big")
    probe = weakref.ref(example)
    x = CustomInput(example)
    head = x["data"][:4]
    model = SymbolicModel(x, (head, x["label"].upper()), executor=executor)
    del example, x, head
    gc.collect()
    assert probe() is None, gc.get_referrers(probe())
    assert model({"data": b"abcdefg", "label": "small"}) == (b"abcd", "SMALL")


# ----------------------------------------------------------------------------- 9. interpret equals the runner


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("executor", ["codegen", "interpreter", "registered", *PICKLABLE_EXECUTORS], ids=executor_id)
def test_interpret_equals_the_runner_for_every_executor(registry, case, executor):
    symgraph.register_executor("registered", CountingExecutor("registered"))
    model, _, _ = case.record(executor=executor)
    for values in case.values():
        through_runner = case.apply(model, values)
        through_interpreter = case.apply(model.interpret, values)
        assert same(through_interpreter, through_runner)
        assert same(through_runner, case.eager(values))
