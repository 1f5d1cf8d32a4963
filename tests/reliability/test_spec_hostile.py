"""The loader of the symgraph format treats every spec and every file as hostile.

(a) Hostile specs: each names something that would run code, read files or
unpickle, or breaks the schema; building a model from it must raise
``SpecError``, never another exception, and never run anything. Payloads that
ran would create ``SENTINEL`` in the working directory (the ``sentinel`` fixture).
(b) Hostile files: lying zip headers, oversized or truncated files, escaping
file names, symlinks, ``.npy`` headers claiming huge or object arrays, and
manifests that disagree with their files; ``symgraph.load`` must raise
``SpecError`` before it allocates or unpickles anything.
(c) Fuzzing: random mutations of valid specs build a model or raise
``SpecError``, and random bytes as ``spec.json`` or as a zip raise ``SpecError``.

Every hostile case has a valid twin that is checked to load and to answer like
eager code, so a refusal is the loader's, not a typo in the test.
"""

from __future__ import annotations

import copy
import importlib
import io
import json
import math
import os
import struct
import sys
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, event, given, settings

import symgraph
import symgraph._saving
import symgraph._spec_codecs
from symgraph import SpecError, SymbolicModel

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

TOUCH = "touch SENTINEL"
OPEN = "open('SENTINEL', 'w').close()"


# -- a valid spec, and its eager twin ---------------------------------------------------
def base_spec() -> dict[str, Any]:
    """A valid spec that uses every op kind; see :func:`base_eager`."""
    return {
        "format": "symgraph.model",
        "version": 1,
        "model": "symgraph",
        "inputs": [{"name": "x", "description": "list", "check": None}, {"name": "s", "display": "text"}],
        "input_keys": None,
        "steps": [
            {
                "name": "ordered",
                "op": "call",
                "func": {"$object": "builtins:sorted"},
                "args": [{"$ref": "x"}],
                "kwargs": {"reverse": True},
            },
            {"name": "top", "op": "index", "of": "ordered", "index": 0},
            {"name": "loud", "op": "method", "of": "s", "method": "upper", "args": [], "kwargs": {}},
            {"name": "real", "op": "getattr", "of": "top", "attr": "real"},
            {"name": "plus", "op": "operator", "symbol": "+", "operands": [{"$ref": "real"}, 1]},
            {"name": "items", "op": "elements", "of": "x", "length": 2, "exact": True, "loop_at": "here"},
            {"name": "second", "op": "unpack", "of": "items", "index": 1, "by_index": True},
            {
                "name": "root",
                "op": "call",
                "func": {"$object": "math:sqrt"},
                "args": [{"$ref": "second"}],
                "kwargs": {},
                "description": "a float",
                "where": "spec:1",
            },
        ],
        "outputs": {"$tuple": [{"$ref": "plus"}, {"$ref": "loud"}, {"$ref": "root"}]},
        "options": {"check_inputs": True, "executor": "codegen", "executor_options": {}},
        "constants": {},
    }


def base_eager(x: list[int], s: str) -> tuple[Any, ...]:
    assert len(x) == 2
    return (sorted(x, reverse=True)[0].real + 1, s.upper(), math.sqrt(x[1]))


BASE_DATA = [([4, 9], "ab"), ([16, 1], "")]


def step_spec(*steps: dict[str, Any], output: str | None = None) -> dict[str, Any]:
    """A spec of one input ``x`` and ``steps``; the output is the last step."""
    spec = base_spec()
    spec["inputs"] = [{"name": "x"}]
    spec["steps"] = list(steps)
    spec["outputs"] = {"$ref": output or steps[-1]["name"]}
    return spec


def call_step(func: Any, *args: Any, name: str = "y", **kwargs: Any) -> dict[str, Any]:
    return {"name": name, "op": "call", "func": func, "args": list(args), "kwargs": kwargs}


X = {"$ref": "x"}


def refused(spec: Any, *, match: str | None = None, **kwargs: Any) -> SpecError:
    """Building from ``spec`` raises SpecError (any other exception fails the test)."""
    with pytest.raises(SpecError, match=match) as info:
        SymbolicModel.from_spec(spec, **kwargs)
    return info.value


def write_spec(path: Path, data: bytes | str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "spec.json").write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def test_the_base_spec_is_valid(tmp_path: Path) -> None:
    model = SymbolicModel.from_spec(base_spec())
    loaded = symgraph.load(write_spec(tmp_path / "m", json.dumps(base_spec())))
    for data in BASE_DATA:
        assert model(*data) == loaded(*data) == base_eager(*data)


# -- (a) names that would run code --------------------------------------------------
DANGEROUS = [
    "os:system",
    "os:popen",
    "os:remove",
    "posix:system",
    "builtins:eval",
    "builtins:exec",
    "builtins:open",
    "builtins:compile",
    "builtins:__import__",
    "builtins:globals",
    "builtins:vars",
    "builtins:breakpoint",
    "builtins:input",
    "builtins:print",
    "builtins:type",
    "builtins:object",
    "builtins:setattr",
    "builtins:delattr",
    "builtins:len.__self__",
    "builtins:object.__subclasses__",
    "subprocess:run",
    "subprocess:Popen",
    "subprocess:check_output",
    "pickle:loads",
    "pickle:load",
    "pickle:Unpickler",
    "_pickle:loads",
    "marshal:loads",
    "importlib:import_module",
    "ctypes:CDLL",
    "shutil:rmtree",
    "io:open",
    "pathlib:Path",
    "code:interact",
    "functools:partial",
    "numpy:load",
    "numpy:save",
    "numpy:savez",
    "numpy:fromfile",
    "numpy:loadtxt",
    "numpy:genfromtxt",
    "numpy:memmap",
    "numpy:DataSource",
    "numpy.lib.format:read_array",
    "numpy.lib.format:open_memmap",
    "numpy.lib.npyio:load",
    "numpy.lib._npyio_impl:load",
    "numpy.ctypeslib:load_library",
    "numpy.testing:assert_equal",
    "numpy.f2py:compile",
    "numpy.rec:fromfile",
    "numpy:ndarray.tofile",
    "numpy:ndarray.dump",
    "numpy:mean.__globals__",
    "numpy._core.multiarray:_reconstruct",
    "torch:load",
    "torch:save",
    "torch.hub:load",
    "torch.jit:load",
    "torch.serialization:load",
    "torch.package:PackageImporter",
    "torch.utils.cpp_extension:load",
    "torch.ops:load_library",
    "torch._C:_jit_pass_lint",
    "torch:from_file",
    "operator:attrgetter",
    "operator:methodcaller",
    "math:__loader__",
    "math:sqrt.__self__",
]

MALFORMED_REFERENCES = [
    "numpy.mean",
    "numpy:",
    ":mean",
    "numpy:mean:x",
    "numpy..linalg:norm",
    "numpy: mean",
    "numpy:mean ",
    "nump\u0443:mean",
    "numpy:mean\n",
    "",
    5,
    None,
    ["numpy", "mean"],
    {"module": "numpy"},
    "math:no_such_function",
    "numpy.ndarray.tofile",
]


def _placements(reference: Any) -> dict[str, dict[str, Any]]:
    """Specs naming ``reference`` as a callee, an argument, a keyword, a partial, a named tuple type, an output."""
    obj = {"$object": reference}
    return {
        "func": step_spec(call_step(obj, X, TOUCH)),
        "arg": step_spec(call_step({"$object": "builtins:map"}, obj, X)),
        "kwarg": step_spec(call_step({"$object": "builtins:sorted"}, X, key=obj)),
        "partial": step_spec(
            call_step({"$partial": {"func": obj, "args": [TOUCH], "kwargs": {}}}, X),
        ),
        "namedtuple": step_spec(
            call_step({"$object": "builtins:len"}, {"$namedtuple": {"type": reference, "items": [X]}}),
        ),
        "output": {**step_spec(call_step({"$object": "builtins:len"}, X)), "outputs": [{"$ref": "y"}, obj]},
        "executor_option": {
            **step_spec(call_step({"$object": "builtins:len"}, X)),
            "options": {"check_inputs": True, "executor": "codegen", "executor_options": {"fallback": obj}},
        },
    }


PLACES = list(_placements(None))


@pytest.mark.parametrize("place", PLACES)
def test_placements_work_with_an_allowed_object(place: str) -> None:
    # The valid twin of every placement below: only the named object is hostile there.
    data = [-3, 2]
    if place == "func":
        spec = _placements("builtins:sorted")[place]
        spec["steps"][0]["args"] = [X]
        assert SymbolicModel.from_spec(spec)(data) == sorted(data)
    elif place == "arg":
        spec = _placements("builtins:abs")[place]
        assert list(SymbolicModel.from_spec(spec)(data)) == list(map(abs, data))
    elif place == "kwarg":
        spec = _placements("builtins:abs")[place]
        assert SymbolicModel.from_spec(spec)(data) == sorted(data, key=abs)
    elif place == "partial":
        spec = _placements("builtins:max")[place]
        spec["steps"][0]["func"]["$partial"]["args"] = [[0]]
        assert SymbolicModel.from_spec(spec)(data) == max([0], data)
    elif place == "namedtuple":
        # A named tuple class the loader permits by default: none in builtins, math or operator.
        refused(_placements("builtins:tuple")[place], match="not a named tuple class")
    elif place == "output":
        spec = _placements("math:sqrt")[place]
        assert SymbolicModel.from_spec(spec)(data) == [len(data), math.sqrt]
    else:
        # A function is not an executor's name: the option is decoded, then refused.
        refused(_placements("math:sqrt")[place], match="fallback")


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("reference", DANGEROUS)
def test_dangerous_objects_are_refused(reference: str, place: str, sentinel: Path) -> None:
    modules = set(sys.modules)
    error = refused(_placements(reference)[place])
    assert reference in str(error)
    # Refused by name: loading imported nothing new (torch, subprocess, ...).
    assert set(sys.modules) - modules == set()


@pytest.mark.parametrize("reference", DANGEROUS)
def test_dangerous_objects_name_how_to_allow_them(reference: str) -> None:
    message = str(refused(_placements(reference)["func"]))
    assert "allow=" in message


@pytest.mark.parametrize("reference", MALFORMED_REFERENCES, ids=repr)
def test_malformed_references_are_refused(reference: Any) -> None:
    refused(_placements(reference)["func"])


@pytest.mark.parametrize(
    "reference",
    [
        # numpy 2 keeps numpy.lib.format in numpy.lib._format_impl: the same functions
        # (open_memmap opens any path for reading or writing) under their real module's name.
        "numpy.lib._format_impl:read_array",
        "numpy.lib._format_impl:open_memmap",
        "numpy.lib._format_impl:write_array",
        "numpy._core.records:fromfile",
        # A qualified name that walks through a module a numpy module imported.
        "numpy._core._methods:os.spawnlp",
        "numpy._core._methods:os.execv",
        "numpy._core.records:os.remove",
        "numpy._core.records:os.putenv",
        "numpy._core.numeric:sys.modules",
        "numpy.lib._format_impl:io.FileIO",
        "numpy.lib._utils_impl:os.system",
    ],
)
def test_numpy_internals_that_reach_files_or_processes_are_refused(reference: str, sentinel: Path) -> None:
    pytest.importorskip("numpy")
    for place in ("func", "arg"):
        refused(_placements(reference)[place])


def test_a_walk_from_sys_modules_to_a_process_is_refused(sentinel: Path) -> None:
    # sys.modules -> os -> spawnlp, in three steps a hand-written spec can hold.
    pytest.importorskip("numpy")
    spec = step_spec(
        call_step(
            {"$object": "builtins:max"}, [{"$object": "numpy._core.numeric:sys.modules"}], name="mods", default=X
        ),
        {"name": "os", "op": "index", "of": "mods", "index": "os"},
        {"name": "spawn", "op": "getattr", "of": "os", "attr": "spawnlp"},
        call_step({"$ref": "spawn"}, 0, "touch", "touch", "SENTINEL", name="y"),
    )
    refused(spec)


GETATTR = {"$object": "builtins:getattr"}


def _getattr_escapes(name: str) -> dict[str, dict[str, Any]]:
    """Specs that reach ``getattr(x, name)`` without a direct call of getattr."""
    return {
        "direct": step_spec(call_step(GETATTR, X, name)),
        "operator.call": step_spec(call_step({"$object": "operator:call"}, GETATTR, X, name)),
        "partial": step_spec(call_step({"$partial": {"func": GETATTR, "args": [], "kwargs": {}}}, X, name)),
        "partial-bound-name": step_spec(
            call_step(
                {"$object": "builtins:map"}, {"$partial": {"func": GETATTR, "args": [], "kwargs": {}}}, [X], [name]
            )
        ),
        "map": step_spec(
            call_step({"$object": "builtins:map"}, GETATTR, [X], [name], name="m"),
            call_step({"$object": "builtins:next"}, {"$ref": "m"}),
        ),
    }


def test_getattr_with_a_safe_name_works() -> None:
    model = SymbolicModel.from_spec(step_spec(call_step(GETATTR, X, "real")))
    assert model(3) == 3
    model = SymbolicModel.from_spec(step_spec(call_step({"$object": "builtins:hasattr"}, X, "imag")))
    assert model(3) is True


@pytest.mark.parametrize("route", list(_getattr_escapes("real")))
@pytest.mark.parametrize("name", ["__class__", "__globals__", "__self__", "__subclasses__", "__dict__", "__reduce__"])
def test_getattr_of_dunder_names_is_refused(name: str, route: str, sentinel: Path) -> None:
    refused(_getattr_escapes(name)[route])


@pytest.mark.parametrize(
    "args",
    [
        [X, {"$ref": "x"}],
        [X],
        [X, {"$tuple": ["__class__"]}],
        [X, ["__class__"]],
        [X, "tofile"],
        [X, "dump"],
        [X, "system"],
    ],
    ids=repr,
)
def test_getattr_needs_a_constant_safe_name(args: list[Any]) -> None:
    refused(step_spec(call_step(GETATTR, *args)))


@pytest.mark.parametrize("route", ["operator.call", "partial"])
def test_the_dunder_code_execution_chain_is_refused(route: str, sentinel: Path) -> None:
    # builtins.len.__self__ is the builtins module, whose exec runs code: three steps
    # from a spec to running OPEN, if getattr can be reached as a value.
    length = {"$object": "builtins:len"}
    if route == "operator.call":
        via = {"$object": "operator:call"}
        lead: list[Any] = [GETATTR]
    else:
        via = {"$partial": {"func": GETATTR, "args": [], "kwargs": {}}}
        lead = []
    spec = step_spec(
        call_step(via, *lead, length, "__self__", X, name="module"),
        call_step(via, *lead, {"$ref": "module"}, "exec", name="run"),
        call_step({"$ref": "run"}, OPEN, name="y"),
    )
    refused(spec)


HOSTILE_ATTRIBUTES = [
    "__globals__",
    "__class__",
    "__subclasses__",
    "__dict__",
    "__init__",
    "__builtins__",
    "__reduce__",
    "__reduce_ex__",
    "__getattribute__",
    "__setattr__",
    "__code__",
    "__closure__",
    "__self__",
    "__module__",
    "tofile",
    "dump",
    "dumps",
    "load",
    "loads",
    "save",
    "system",
    "popen",
    "eval",
    "exec",
    "open",
    "read",
    "write",
    "register_forward_hook",
]


@pytest.mark.parametrize("name", HOSTILE_ATTRIBUTES)
@pytest.mark.parametrize("kind", ["getattr", "method"])
def test_hostile_attribute_and_method_names_are_refused(name: str, kind: str) -> None:
    if kind == "getattr":
        step = {"name": "y", "op": "getattr", "of": "x", "attr": name}
    else:
        step = {"name": "y", "op": "method", "of": "x", "method": name, "args": [TOUCH], "kwargs": {}}
    error = refused(step_spec(step))
    assert name in str(error)


@pytest.mark.parametrize("kind", ["getattr", "method"])
def test_attribute_and_operator_dunder_method_names_work(kind: str) -> None:
    if kind == "getattr":
        spec = step_spec({"name": "y", "op": "getattr", "of": "x", "attr": "imag"})
        assert SymbolicModel.from_spec(spec)(2 + 5j) == 5.0
    else:
        spec = step_spec({"name": "y", "op": "method", "of": "x", "method": "__add__", "args": [3], "kwargs": {}})
        assert SymbolicModel.from_spec(spec)(4) == 7


def test_a_helper_function_with_side_effects_is_refused_without_allow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"spec_canary_{uuid.uuid4().hex}"
    folder = tmp_path / "helpers"
    folder.mkdir()
    imported, called = tmp_path / "IMPORTED", tmp_path / "CALLED"
    (folder / f"{name}.py").write_text(
        "import pathlib\n"
        f"pathlib.Path({str(imported)!r}).write_text('imported')\n"
        "def canary(value):\n"
        f"    pathlib.Path({str(called)!r}).write_text('called')\n"
        "    return value\n"
    )
    monkeypatch.syspath_prepend(str(folder))
    spec = step_spec(call_step({"$object": f"{name}:canary"}, X))
    try:
        message = str(refused(spec))
        assert f"{name}:canary" in message and "allow=" in message
        assert name not in sys.modules and not imported.exists() and not called.exists()
        # Imported by the user now: still refused, and never called.
        module = importlib.import_module(name)
        assert imported.exists()
        refused(spec)
        refused(spec, allow=[math])
        assert not called.exists()
        # The positive control: allowed, it loads and runs.
        model = SymbolicModel.from_spec(spec, allow=[module.canary])
        assert not called.exists()
        assert model(5) == 5 and called.read_text() == "called"
    finally:
        sys.modules.pop(name, None)


# -- (a) the schema ---------------------------------------------------------------------
def _set(spec: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    target: Any = spec
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return spec


def _delete(spec: dict[str, Any], path: tuple[Any, ...]) -> dict[str, Any]:
    target: Any = spec
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return spec


STR_WRONG = [1, None, [], {}, True, 1.5]
INT_WRONG = ["1", 1.5, None, True, [], {}]
BOOL_WRONG = [1, 0, "true", None, []]
LIST_WRONG = [{}, "x", 1, None, True]
DICT_WRONG = [[], "x", 1, None, True]

STEP = {name: i for i, name in enumerate(s["name"] for s in base_spec()["steps"])}

WRONG_TYPES: list[tuple[tuple[Any, ...], Any]] = [
    *((("format",), v) for v in [*STR_WRONG, "symgraph.modelx", "", "SYMGRAPH.MODEL"]),
    *((("version",), v) for v in [*INT_WRONG, 0, -1, 2, 10**30, "one"]),
    *((("model",), v) for v in [*STR_WRONG, "nope", "", "../symgraph", "symgraph\x00"]),
    *((("inputs",), v) for v in [*LIST_WRONG, [], [1], ["x"], [None]]),
    *((("input_keys",), v) for v in ["x", {}, 1, True, ["a"], [1, 2], ["s", "s"], ["a", None]]),
    *((("steps",), v) for v in [*LIST_WRONG, [1], ["x"], [None], [[]]]),
    *((("outputs",), v) for v in [1, "x", None, [], {}, {"$ref": 1}, {"$ref": None}, [1, 2], {"$tuple": []}]),
    *((("options",), v) for v in DICT_WRONG),
    *((("constants",), v) for v in [[], "x", 1, True, {"k": 1}, {"k": {}}, {"k": {"codec": 1}}]),
    *((("inputs", 0, "name"), v) for v in [*STR_WRONG, ""]),
    *((("inputs", 1, "display"), v) for v in STR_WRONG),
    *((("inputs", 0, "description"), v) for v in STR_WRONG),
    *((("inputs", 0, "check"), v) for v in ["x", 1, [], {}, True, {"kind": 1}, {"kind": "nope"}, {"kind": "x.y"}]),
    *((("inputs", 0), v) for v in [1, "x", [], None, {}]),
    *((("steps", 0), v) for v in [1, "x", [], None, {}]),
    *((("steps", STEP[s], "name"), v) for s in ("ordered", "root") for v in [*STR_WRONG, ""]),
    *((("steps", STEP[s], "display"), v) for s in ("ordered", "loud") for v in STR_WRONG),
    *((("steps", STEP[s], "description"), v) for s in ("top", "root") for v in STR_WRONG),
    *((("steps", STEP[s], "where"), v) for s in ("plus", "root") for v in STR_WRONG),
    *((("steps", STEP[s], "op"), v) for s in ("ordered", "top") for v in [*STR_WRONG, "nope", "", "exec", "CALL"]),
    *((("steps", STEP[s], "of"), v) for s in ("top", "loud", "real", "items") for v in [*STR_WRONG, "nope", ""]),
    *((("steps", STEP["ordered"], "func"), v) for v in [{"$ref": "nope"}, {"$nope": 1}, {"$object": 1}]),
    # Recording refuses to call what is not callable; so must loading.
    *(
        (("steps", STEP["ordered"], "func"), v)
        for v in [None, 1, -1, 1.5, True, "sorted", [1], {"$tuple": []}, {"$bytes": ""}, {"$ellipsis": None}]
    ),
    *((("steps", STEP[s], "args"), v) for s in ("ordered", "loud") for v in LIST_WRONG),
    *((("steps", STEP[s], "kwargs"), v) for s in ("ordered", "loud") for v in ["x", [], 1, None, True]),
    *((("steps", STEP["ordered"], "kwargs"), v) for v in [{"$tuple": []}, {"$dict": [[1, 2]]}, {"$ref": "x"}]),
    *((("steps", STEP["plus"], "symbol"), v) for v in [*STR_WRONG, "nope", "", "**x", "__add__", "add"]),
    *((("steps", STEP["plus"], "operands"), v) for v in [*LIST_WRONG, [], [{"$ref": "real"}], [1, 2, 3, 4]]),
    *((("steps", STEP["real"], "attr"), v) for v in STR_WRONG),
    *((("steps", STEP["loud"], "method"), v) for v in STR_WRONG),
    *((("steps", STEP["second"], "index"), v) for v in [*INT_WRONG, -1]),
    *((("steps", STEP["second"], "by_index"), v) for v in BOOL_WRONG),
    *((("steps", STEP["items"], "length"), v) for v in [*INT_WRONG, -1]),
    *((("steps", STEP["items"], "exact"), v) for v in BOOL_WRONG),
    *((("steps", STEP["items"], "loop_at"), v) for v in STR_WRONG),
    *((("options", "check_inputs"), v) for v in BOOL_WRONG),
    *((("options", "executor"), v) for v in STR_WRONG),
    *((("options", "executor_options"), v) for v in [*DICT_WRONG, {"bogus": 1}, {"fallback": 1}, {"$tuple": []}]),
]


@pytest.mark.parametrize(("path", "value"), WRONG_TYPES, ids=[f"{p}={v!r}" for p, v in WRONG_TYPES])
def test_wrong_types_and_values_of_every_field_are_refused(path: tuple[Any, ...], value: Any) -> None:
    refused(_set(base_spec(), path, value))


_OPTIONAL = {"display", "description", "where", "check"}
# A person writing a spec may leave out the input keys (positional inputs) and the options.
_OPTIONAL_TOP = {"constants", "input_keys", "options"}
REQUIRED = [
    *((key,) for key in base_spec() if key not in _OPTIONAL_TOP),
    ("inputs", 0, "name"),
    *(("steps", i, key) for i, step in enumerate(base_spec()["steps"]) for key in step if key not in _OPTIONAL),
    *(("options", key) for key in base_spec()["options"]),
]


@pytest.mark.parametrize("path", REQUIRED, ids=str)
def test_missing_keys_are_refused(path: tuple[Any, ...]) -> None:
    refused(_delete(base_spec(), path))


def test_optional_keys_may_be_left_out() -> None:
    spec = base_spec()
    for key in _OPTIONAL_TOP:
        del spec[key]
    for step in spec["steps"]:
        for key in _OPTIONAL:
            step.pop(key, None)
    model = SymbolicModel.from_spec(spec)
    assert (model.executor, model.executor_options, model.check_inputs) == ("codegen", {}, True)
    for data in BASE_DATA:
        assert model(*data) == base_eager(*data)


@pytest.mark.parametrize("name", ["nope", "", "codegen ", "../codegen"])
def test_an_unknown_executor_is_refused_with_a_symgraph_error(name: str) -> None:
    # The loader passes an executor's own error on (ExecutorError: which executors exist).
    spec = _set(base_spec(), ("options", "executor"), name)
    with pytest.raises((SpecError, symgraph.ExecutorError)):
        SymbolicModel.from_spec(spec)


UNKNOWN_KEYS: list[tuple[tuple[Any, ...], Any]] = [
    ((), {"exec": "x"}),
    ((), {"Format": "symgraph.model"}),
    (("inputs", 0), {"default": 1}),
    (("steps", 0), {"code": TOUCH}),
    (("steps", 1), {"of2": "x"}),
    (("options",), {"pickle": True}),
]


@pytest.mark.parametrize(("path", "extra"), UNKNOWN_KEYS, ids=str)
def test_unknown_keys_are_refused(path: tuple[Any, ...], extra: dict[str, Any]) -> None:
    spec = base_spec()
    target: Any = spec
    for key in path:
        target = target[key]
    target.update(extra)
    refused(spec)


@pytest.mark.parametrize(
    "value",
    [
        {"$tuple": [], "x": 1},
        {"$ref": "x", "$tuple": []},
        {"$eval": TOUCH},
        {"$pickle": "gASVAAAAAAAAAAA="},
        {"$layer": "x"},
        {"$numpy.nope": 1},
        {"$": 1},
        {"$float": "NaN"},
        {"$float": 1.5},
        {"$float": []},
        {"$float": {}},
        {"$complex": [{"$float": []}, 1]},
        {"$complex": [{"$float": "nan", "x": 1}, 1]},
        {"$complex": [1]},
        {"$complex": ["a", "b"]},
        {"$bytes": "not base64!"},
        {"$bytes": 1},
        {"$ellipsis": 1},
        {"$set": [[1]]},
        {"$set": "x"},
        {"$frozenset": [{}]},
        {"$range": [1, 2]},
        {"$range": [1, 2, 0]},
        {"$range": [1.5, 2, 1]},
        {"$slice": [1, 2]},
        {"$dict": [[[1], 2]]},
        {"$dict": [[1]]},
        {"$dict": "x"},
        {"$partial": {"func": {"$object": "math:sqrt"}, "args": []}},
        {"$partial": {"func": 1, "args": [], "kwargs": {}}},
        {"$partial": {"func": {"$object": "math:sqrt"}, "args": [], "kwargs": {}, "extra": 1}},
        {"$partial": {"func": {"$object": "math:sqrt"}, "args": {}, "kwargs": {}}},
        {"$namedtuple": {"type": "builtins:tuple", "items": []}},
        {"$namedtuple": {"type": "math:sqrt", "items": []}},
        {"$namedtuple": {"type": "os:stat_result", "items": []}},
        {"$constant": "c0"},
        {"$constant": 1},
    ],
    ids=repr,
)
def test_malformed_tagged_values_are_refused(value: Any) -> None:
    refused(step_spec(call_step({"$object": "builtins:max"}, X, value)))


def test_refs_outside_steps_and_outputs_are_refused() -> None:
    spec = base_spec()
    spec["options"]["executor_options"] = {"fallback": {"$ref": "x"}}
    refused(spec, match="ref")
    spec = base_spec()
    spec["steps"][0]["func"] = {"$partial": {"func": {"$object": "builtins:max"}, "args": [X], "kwargs": {}}}
    refused(spec, match="ref")


@pytest.mark.parametrize(
    "spec",
    [
        # A ref to a later step, to itself, and a cycle of two.
        step_spec(
            {"name": "a", "op": "operator", "symbol": "+", "operands": [X, {"$ref": "b"}]},
            {"name": "b", "op": "operator", "symbol": "+", "operands": [X, 1]},
        ),
        step_spec({"name": "a", "op": "operator", "symbol": "+", "operands": [X, {"$ref": "a"}]}),
        step_spec(
            {"name": "a", "op": "operator", "symbol": "+", "operands": [{"$ref": "b"}, 1]},
            {"name": "b", "op": "operator", "symbol": "+", "operands": [{"$ref": "a"}, 1]},
        ),
        step_spec({"name": "a", "op": "getattr", "of": "a", "attr": "real"}),
        step_spec(
            {"name": "a", "op": "getattr", "of": "b", "attr": "real"},
            {"name": "b", "op": "getattr", "of": "x", "attr": "real"},
        ),
        step_spec({"name": "a", "op": "operator", "symbol": "+", "operands": [X, {"$ref": "nope"}]}),
        step_spec({"name": "a", "op": "operator", "symbol": "+", "operands": [X, {"$ref": "X"}]}),
        {**step_spec({"name": "a", "op": "operator", "symbol": "+", "operands": [X, 1]}), "outputs": {"$ref": "b"}},
        {**step_spec({"name": "a", "op": "operator", "symbol": "+", "operands": [X, 1]}), "outputs": [1, 2]},
        {**step_spec({"name": "a", "op": "operator", "symbol": "+", "operands": [X, 1]}), "outputs": {"$tuple": [1]}},
        # Duplicate names: two steps, a step and an input, two inputs.
        step_spec(
            {"name": "a", "op": "operator", "symbol": "+", "operands": [X, 1]},
            {"name": "a", "op": "operator", "symbol": "+", "operands": [X, 2]},
        ),
        step_spec({"name": "x", "op": "operator", "symbol": "+", "operands": [X, 1]}),
        {
            **step_spec({"name": "a", "op": "operator", "symbol": "+", "operands": [X, 1]}),
            "inputs": [{"name": "x"}] * 2,
        },
        # Steps that use no input or earlier step.
        step_spec({"name": "a", "op": "call", "func": {"$object": "builtins:len"}, "args": [[1]], "kwargs": {}}),
        step_spec({"name": "a", "op": "operator", "symbol": "+", "operands": [1, 2]}),
        step_spec(
            {"name": "a", "op": "call", "func": {"$object": "builtins:print"}, "args": [TOUCH], "kwargs": {}},
            {"name": "b", "op": "operator", "symbol": "+", "operands": [X, 1]},
        ),
        # No inputs, or input keys that do not match.
        {**step_spec({"name": "a", "op": "operator", "symbol": "+", "operands": [X, 1]}), "inputs": []},
        {**step_spec({"name": "a", "op": "operator", "symbol": "+", "operands": [X, 1]}), "input_keys": ["a", "b"]},
        # The wrong arity of an operator.
        step_spec({"name": "a", "op": "operator", "symbol": "neg", "operands": [X, 1]}),
        step_spec({"name": "a", "op": "operator", "symbol": "+", "operands": [X]}),
    ],
    ids=[
        "ref-to-later-step",
        "ref-to-itself",
        "cycle",
        "of-itself",
        "of-later-step",
        "unknown-ref",
        "ref-of-another-case",
        "output-unknown",
        "output-without-ref",
        "output-tuple-without-ref",
        "duplicate-steps",
        "step-named-like-input",
        "duplicate-inputs",
        "call-without-parents",
        "operator-without-parents",
        "print-without-parents",
        "no-inputs",
        "input-keys-mismatch",
        "unary-with-two-operands",
        "binary-with-one-operand",
    ],
)
def test_broken_graphs_are_refused(spec: dict[str, Any], sentinel: Path) -> None:
    refused(spec)


def test_a_spec_of_another_model_class_is_refused() -> None:
    spec = base_spec()
    spec["model"] = "no_such_backend"
    refused(spec, match="no_such_backend")
    refused([base_spec()])
    refused("spec")
    refused(None)
    with pytest.raises(TypeError):
        SymbolicModel.from_spec(base_spec(), allow="numpy")


def test_values_nested_too_deeply_are_refused() -> None:
    deep: Any = 1
    for _ in range(1000):
        deep = [deep]
    refused(step_spec(call_step({"$object": "builtins:max"}, X, deep)))
    deep = 1
    for _ in range(1000):
        deep = {"$tuple": [deep]}
    refused(step_spec(call_step({"$object": "builtins:max"}, X, deep)))
    deep = 1
    for _ in range(1000):
        deep = {"k": deep}
    refused({**base_spec(), "outputs": [{"$ref": "x"}, deep]})


# -- (a) spec.json as text ---------------------------------------------------------------
def _json_cases() -> dict[str, bytes]:
    valid = json.dumps(base_spec())
    deep = '{"$tuple": [' * 1000 + "1" + "]}" * 1000
    return {
        "deep-lists-1000": valid.replace('"reverse": true', '"reverse": ' + "[" * 1000 + "]" * 1000).encode(),
        "deep-lists-100000": valid.replace('"reverse": true', '"reverse": ' + "[" * 100_000 + "]" * 100_000).encode(),
        "deep-dicts-1000": valid.replace(
            '"reverse": true', '"reverse": ' + '{"a": ' * 1000 + "1" + "}" * 1000
        ).encode(),
        "deep-tuples": valid.replace('"reverse": true', '"reverse": ' + deep).encode(),
        "duplicate-top-key": valid.replace('"version": 1,', '"version": 1, "version": 1,').encode(),
        "duplicate-step-key": valid.replace('"op": "index",', '"op": "index", "op": "getattr",').encode(),
        "duplicate-output-key": json.dumps({**base_spec(), "outputs": {"a": {"$ref": "x"}}})
        .replace('"a": {"$ref": "x"}', '"a": {"$ref": "x"}, "a": {"$ref": "s"}')
        .encode(),
        "NaN": valid.replace('"reverse": true', '"reverse": NaN').encode(),
        "Infinity": valid.replace('"reverse": true', '"reverse": Infinity').encode(),
        "-Infinity": valid.replace(
            '"operands": [{"$ref": "real"}, 1]', '"operands": [{"$ref": "real"}, -Infinity]'
        ).encode(),
        "huge-int": valid.replace('"reverse": true', '"reverse": ' + "9" * 10_000).encode(),
        "huge-version": valid.replace('"version": 1', '"version": ' + "9" * 40).encode(),
        "huge-exponent": valid.replace('"reverse": true', '"reverse": 1e999999').encode(),
        "not-utf8": valid.encode("utf-16"),
        "latin1": valid.replace("ordered", "ordéred").encode("latin-1"),
        "bom": b"\xef\xbb\xbf" + valid.encode(),
        "trailing-garbage": valid.encode() + b" {}",
        "truncated": valid.encode()[: len(valid) // 2],
        "empty": b"",
        "list": b"[]",
        "null": b"null",
        "number": b"1",
        "comment": b"// hi\n" + valid.encode(),
        "single-quotes": valid.replace('"', "'").encode(),
    }


JSON_CASES = _json_cases()


@pytest.mark.parametrize("case", list(JSON_CASES))
def test_hostile_spec_json_is_refused(case: str, tmp_path: Path, sentinel: Path) -> None:
    path = write_spec(tmp_path / "m", JSON_CASES[case])
    with pytest.raises(SpecError):
        symgraph.load(path)
    with pytest.raises(SpecError):
        symgraph.load(_zip_of(tmp_path / "m.zip", {"spec.json": JSON_CASES[case]}))


def test_any_text_in_names_loads(tmp_path: Path, checks: Any) -> None:
    # The twin of the text cases: names are data, whatever they hold.
    name = "\u00f6rd\u00e9red \u2028 \ud800 \x1b[2J\n'); open('SENTINEL','w') #"
    spec = json.dumps(base_spec()).replace('"ordered"', json.dumps(name))
    model = symgraph.load(write_spec(tmp_path / "m", spec))
    assert model.plan.steps[0].name == name
    checks.source(model.source)
    printed: list[str] = []
    model.summary(print_fn=printed.append)
    for line in printed[0].split("\n"):
        checks.text(line, "summary line")
    for data in BASE_DATA:
        assert model(*data) == base_eager(*data)


# -- (b) hostile files ------------------------------------------------------------------
def _zip_of(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def craft_zip(members: list[tuple[str, bytes, int | None, int]]) -> bytes:
    """A stored zip, written by hand so that headers can lie.

    Each member is ``(name, data, declared size or None, method)``; a declared
    size of 2**32 or more is written in a zip64 extra field.
    """
    out = bytearray()
    central = bytearray()
    for name, data, declared, method in members:
        raw = name.encode()
        if method == zipfile.ZIP_DEFLATED:
            compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
            stored = compressor.compress(data) + compressor.flush()
        else:
            stored = data
        size = len(data) if declared is None else declared
        csize = len(stored) if declared is None or method == zipfile.ZIP_DEFLATED else declared
        crc = zlib.crc32(data)
        offset = len(out)
        big = max(size, csize) >= 0xFFFFFFFF
        extra = struct.pack("<HHQQ", 1, 16, size, csize) if big else b""
        s32, c32 = (0xFFFFFFFF, 0xFFFFFFFF) if big else (size, csize)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, method, 0, 0, crc, c32, s32, len(raw), len(extra))
        out += raw + extra + stored
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            45,
            45,
            0,
            method,
            0,
            0,
            crc,
            c32,
            s32,
            len(raw),
            len(extra),
            0,
            0,
            0,
            0,
            offset,
        )
        central += raw + extra
    cd_offset = len(out)
    out += central
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), cd_offset, 0)
    return bytes(out)


@pytest.fixture
def np() -> Any:
    return pytest.importorskip("numpy")


def _numpy_model(np: Any) -> tuple[SymbolicModel, Callable[[Any], Any]]:
    weight = np.arange(12.0).reshape(3, 4)
    offset = np.array([1, 2, 3, 4], dtype=np.int32)

    def pipeline(x: Any) -> Any:
        return x @ weight + offset

    x = symgraph.CustomInput(np.zeros((2, 3)))
    return SymbolicModel(x, pipeline(x)), pipeline


@pytest.fixture
def saved(np: Any, tmp_path: Path) -> dict[str, Any]:
    """A saved numpy model, its files, its spec, and its eager pipeline."""
    model, pipeline = _numpy_model(np)
    path = symgraph.save(model, tmp_path / "good")
    files = {p.relative_to(path).as_posix(): p.read_bytes() for p in path.rglob("*") if p.is_file()}
    spec = json.loads(files["spec.json"])
    assert set(files) == {"spec.json", "arrays/0.npy", "arrays/1.npy"}
    return {"model": model, "pipeline": pipeline, "files": files, "spec": spec, "np": np}


def _check_loads(model: Any, saved: dict[str, Any]) -> None:
    np = saved["np"]
    data = np.random.default_rng(0).normal(size=(5, 3))
    expected = saved["pipeline"](data)
    got = model(data)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def _write(folder: Path, files: dict[str, bytes], as_zip: bool) -> Path:
    if as_zip:
        return _zip_of(folder.with_suffix(".zip"), files)
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


@pytest.mark.parametrize("as_zip", [False, True], ids=["dir", "zip"])
def test_the_saved_files_load(saved: dict[str, Any], tmp_path: Path, as_zip: bool) -> None:
    _check_loads(symgraph.load(_write(tmp_path / "copy", saved["files"], as_zip)), saved)
    crafted = tmp_path / "crafted.zip"
    crafted.write_bytes(craft_zip([(n, d, None, zipfile.ZIP_STORED) for n, d in saved["files"].items()]))
    _check_loads(symgraph.load(crafted), saved)


def _with_spec(saved: dict[str, Any], change: Callable[[dict[str, Any]], Any]) -> dict[str, bytes]:
    spec = copy.deepcopy(saved["spec"])
    change(spec)
    return {**saved["files"], "spec.json": json.dumps(spec).encode()}


def _npy(np: Any, array: Any, **kwargs: Any) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, **kwargs)
    return buffer.getvalue()


def _npy_header(np: Any, descr: str, shape: tuple[int, ...], data: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue() + data


HUGE = 10**15 // 8  # float64 elements in 10**15 bytes


def _hostile_files(saved: dict[str, Any]) -> dict[str, dict[str, bytes]]:
    np = saved["np"]
    files = saved["files"]
    good = files["arrays/0.npy"]

    def entry(key: str, **fields: Any) -> Callable[[dict[str, Any]], None]:
        return lambda spec: spec["constants"][key].update(fields)

    return {
        "file-dotdot": _with_spec(saved, entry("c0", file="../good/arrays/0.npy")),
        "file-dotdot-inner": _with_spec(saved, entry("c0", file="arrays/../arrays/0.npy")),
        "file-absolute": _with_spec(saved, entry("c0", file=str(Path(os.sep, "etc", "passwd")))),
        "file-backslash": _with_spec(saved, entry("c0", file="arrays\\0.npy")),
        "file-deep": _with_spec(saved, entry("c0", file="a/b/c.npy")),
        "file-empty": _with_spec(saved, entry("c0", file="")),
        "file-missing": _with_spec(saved, entry("c0", file="arrays/9.npy")),
        "file-not-str": _with_spec(saved, entry("c0", file=1)),
        "file-spec-itself": _with_spec(saved, entry("c0", file="spec.json")),
        "codec-unknown": _with_spec(saved, entry("c0", codec="pickle")),
        "codec-not-str": _with_spec(saved, entry("c0", codec=None)),
        "entry-not-dict": _with_spec(saved, lambda s: s["constants"].update(c0="arrays/0.npy")),
        "entry-missing": _with_spec(saved, lambda s: s["constants"].pop("c0")),
        "constants-list": _with_spec(saved, lambda s: s.update(constants=[])),
        "manifest-huge-shape": _with_spec(saved, entry("c0", shape=[HUGE])),
        "manifest-huge-ndim": _with_spec(saved, entry("c0", shape=[1] * 100)),
        "manifest-negative-shape": _with_spec(saved, entry("c0", shape=[-3, -4])),
        "manifest-shape-not-list": _with_spec(saved, entry("c0", shape="3,4")),
        "manifest-shape-mismatch": _with_spec(saved, entry("c0", shape=[4, 3])),
        "manifest-shape-smaller": _with_spec(saved, entry("c0", shape=[2, 4])),
        "manifest-dtype-mismatch": _with_spec(saved, entry("c0", dtype="<i8")),
        "manifest-dtype-object": _with_spec(saved, entry("c0", dtype="|O")),
        "manifest-dtype-structured": _with_spec(saved, entry("c0", dtype=[["a", "<f8"]])),
        "manifest-dtype-bogus": _with_spec(saved, entry("c0", dtype="not a dtype")),
        "manifest-dtype-long": _with_spec(saved, entry("c0", dtype="<f8" + " " * 100)),
        "header-huge-shape": {**files, "arrays/0.npy": _npy_header(np, "<f8", (HUGE,), good[128:])},
        "header-huge-both": _with_spec(saved, entry("c0", shape=[HUGE]))
        | {"arrays/0.npy": _npy_header(np, "<f8", (HUGE,), good[128:])},
        "header-shape-mismatch": {**files, "arrays/0.npy": _npy_header(np, "<f8", (4, 3), good[128:])},
        "header-dtype-mismatch": {**files, "arrays/0.npy": _npy_header(np, "<i8", (3, 4), good[128:])},
        "header-dtype-object": {
            **files,
            "arrays/0.npy": _npy(np, np.array([None] * 12, dtype=object).reshape(3, 4), allow_pickle=True),
        },
        "object-npy-and-manifest": _with_spec(saved, entry("c0", dtype="|O"))
        | {"arrays/0.npy": _npy(np, np.array([print] * 12, dtype=object).reshape(3, 4), allow_pickle=True)},
        "header-fortran-garbage": {**files, "arrays/0.npy": good.replace(b"False", b"'yes'")},
        "header-too-long": {**files, "arrays/0.npy": good[:8] + b"\xff\xff" + b" " * 70_000},
        "header-code": {**files, "arrays/0.npy": good.replace(b"'<f8'", b"__import__('os').system('touch SENTINEL')")},
        "bad-magic": {**files, "arrays/0.npy": b"\x93NUMPX" + good[6:]},
        "npy-version-9": {**files, "arrays/0.npy": good[:6] + b"\x09\x00" + good[8:]},
        "truncated-npy-data": {**files, "arrays/0.npy": good[:-8]},
        "truncated-npy-header": {**files, "arrays/0.npy": good[:40]},
        "empty-npy": {**files, "arrays/0.npy": b""},
        "padded-npy": {**files, "arrays/0.npy": good + b"\x00" * 8},
        "truncated-spec": {**files, "spec.json": files["spec.json"][:-10]},
        "no-spec": {k: v for k, v in files.items() if k != "spec.json"},
    }


HOSTILE_FILE_CASES = [
    "file-dotdot",
    "file-dotdot-inner",
    "file-absolute",
    "file-backslash",
    "file-deep",
    "file-empty",
    "file-missing",
    "file-not-str",
    "file-spec-itself",
    "codec-unknown",
    "codec-not-str",
    "entry-not-dict",
    "entry-missing",
    "constants-list",
    "manifest-huge-shape",
    "manifest-huge-ndim",
    "manifest-negative-shape",
    "manifest-shape-not-list",
    "manifest-shape-mismatch",
    "manifest-shape-smaller",
    "manifest-dtype-mismatch",
    "manifest-dtype-object",
    "manifest-dtype-structured",
    "manifest-dtype-bogus",
    "manifest-dtype-long",
    "header-huge-shape",
    "header-huge-both",
    "header-shape-mismatch",
    "header-dtype-mismatch",
    "header-dtype-object",
    "object-npy-and-manifest",
    "header-fortran-garbage",
    "header-too-long",
    "header-code",
    "bad-magic",
    "npy-version-9",
    "truncated-npy-data",
    "truncated-npy-header",
    "empty-npy",
    "padded-npy",
    "truncated-spec",
    "no-spec",
]


@pytest.fixture
def no_pickle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unpickling anything fails the test."""
    import pickle

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("loading unpickled")

    for name in ("loads", "load", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)


@pytest.mark.parametrize("as_zip", [False, True], ids=["dir", "zip"])
@pytest.mark.parametrize("case", HOSTILE_FILE_CASES)
def test_hostile_files_are_refused(
    saved: dict[str, Any], tmp_path: Path, case: str, as_zip: bool, no_pickle: None, sentinel: Path
) -> None:
    files = _hostile_files(saved)[case]
    path = _write(tmp_path / "hostile", files, as_zip)
    with pytest.raises(SpecError):
        symgraph.load(path)


def test_constants_given_to_from_spec_are_checked(saved: dict[str, Any]) -> None:
    np = saved["np"]
    spec = copy.deepcopy(saved["spec"])
    constants = saved["model"].spec_constants()
    _check_loads(SymbolicModel.from_spec(spec, constants), saved)
    for key, wrong in [
        ("c0", np.zeros((4, 3))),
        ("c0", np.zeros((3, 4), dtype=np.float32)),
        ("c0", [[0.0] * 4] * 3),
        ("c1", np.zeros((3, 4))),
    ]:
        refused(spec, constants={**constants, key: wrong})
    refused(spec, constants={})
    refused(spec)
    with pytest.raises(TypeError):
        SymbolicModel.from_spec(spec, [1, 2])


def test_a_huge_npy_is_refused_before_it_is_allocated(
    saved: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The manifest and the header agree on 10**15 bytes that the file does not hold:
    # loading must refuse from the sizes alone, before it makes any array.
    np = saved["np"]
    files = _hostile_files(saved)["header-huge-both"]
    paths = [_write(tmp_path / "huge", files, False), _write(tmp_path / "huge", files, True)]

    def no_arrays(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("loading made an array from a file that lies about its size")

    for name in ("frombuffer", "empty", "zeros", "fromfile", "ndarray"):
        monkeypatch.setattr(np, name, no_arrays)
    for path in paths:
        with pytest.raises(SpecError, match=r"0\.npy"):
            symgraph.load(path)


def test_symlinked_files_in_a_directory_are_refused(saved: dict[str, Any], tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("spec.json", "arrays/0.npy"):
        path = _write(tmp_path / f"link-{name.replace('/', '-')}", saved["files"], False)
        target = outside / name.replace("/", "-")
        target.write_bytes(saved["files"][name])
        (path / name).unlink()
        try:
            (path / name).symlink_to(target)
        except OSError:
            pytest.skip("symlinks are not available here")
        with pytest.raises(SpecError):
            symgraph.load(path)


def test_a_symlinked_directory_inside_a_save_is_refused(saved: dict[str, Any], tmp_path: Path) -> None:
    path = _write(tmp_path / "linked", saved["files"], False)
    outside = tmp_path / "outside-arrays"
    (path / "arrays").rename(outside)
    (path / "arrays").symlink_to(outside, target_is_directory=True)
    # The twin: the same files, moved back, load.
    with pytest.raises(SpecError):
        symgraph.load(path)
    (path / "arrays").unlink()
    outside.rename(path / "arrays")
    _check_loads(symgraph.load(path), saved)


def test_a_spec_larger_than_the_limit_is_refused(
    saved: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "m", saved["files"], False)
    zipped = _write(tmp_path / "m", saved["files"], True)
    size = len(saved["files"]["spec.json"])
    monkeypatch.setattr(symgraph._saving, "MAX_SPEC_BYTES", size)
    _check_loads(symgraph.load(path), saved)
    monkeypatch.setattr(symgraph._saving, "MAX_SPEC_BYTES", size - 1)
    for target in (path, zipped):
        with pytest.raises(SpecError, match=r"spec\.json"):
            symgraph.load(target)


def test_files_larger_than_max_bytes_are_refused(saved: dict[str, Any], tmp_path: Path) -> None:
    path = _write(tmp_path / "m", saved["files"], False)
    largest = max(len(d) for d in saved["files"].values())
    _check_loads(symgraph.load(path, max_bytes=largest), saved)
    for target in (path, _write(tmp_path / "m", saved["files"], True)):
        with pytest.raises(SpecError):
            symgraph.load(target, max_bytes=len(saved["files"]["arrays/0.npy"]) - 1)
    for bad in (0, -1, 1.5, "10", None):
        with pytest.raises(TypeError):
            symgraph.load(path, max_bytes=bad)


@pytest.mark.parametrize(
    ("member", "declared", "method"),
    [
        ("spec.json", 10, zipfile.ZIP_STORED),
        ("spec.json", 2**27, zipfile.ZIP_STORED),
        ("spec.json", 2**30, zipfile.ZIP_STORED),
        ("spec.json", 2**40, zipfile.ZIP_STORED),
        ("spec.json", 10, zipfile.ZIP_DEFLATED),
        ("arrays/0.npy", 10, zipfile.ZIP_STORED),
        ("arrays/0.npy", 2**31, zipfile.ZIP_STORED),
        ("arrays/0.npy", 2**39, zipfile.ZIP_STORED),
        ("arrays/0.npy", 10, zipfile.ZIP_DEFLATED),
        ("arrays/0.npy", 2**39, zipfile.ZIP_DEFLATED),
    ],
)
def test_zip_headers_that_lie_about_sizes_are_refused(
    saved: dict[str, Any], tmp_path: Path, member: str, declared: int, method: int
) -> None:
    files = dict(saved["files"])
    if member != "spec.json" and declared > len(files[member]):
        # The manifest agrees with the lie, so that only the file's bytes can tell.
        elements = (declared - 128) // 8
        files = _with_spec(saved, lambda s: s["constants"]["c0"].update(shape=[elements]))
        files[member] = _npy_header(saved["np"], "<f8", (elements,), files[member][128:])
    members = [
        (n, d, declared if n == member else None, method if n == member else zipfile.ZIP_STORED)
        for n, d in files.items()
    ]
    path = tmp_path / "lying.zip"
    path.write_bytes(craft_zip(members))
    with pytest.raises(SpecError):
        symgraph.load(path)


def test_a_zip_bomb_member_is_refused(saved: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 64 MiB of spaces compress to a few KiB; with a limit of 1 MiB, loading stops early.
    monkeypatch.setattr(symgraph._saving, "MAX_SPEC_BYTES", 2**20)
    spec = saved["files"]["spec.json"] + b" " * 2**26
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in {**saved["files"], "spec.json": spec}.items():
            archive.writestr(name, data)
    with pytest.raises(SpecError, match=r"spec\.json"):
        symgraph.load(path)


@pytest.mark.parametrize(
    "make",
    [
        lambda p, files: p.write_bytes(b""),
        lambda p, files: p.write_bytes(b"PK\x05\x06" + b"\x00" * 18),
        lambda p, files: p.write_bytes(b"not a zip at all"),
        lambda p, files: p.write_bytes(_zip_bytes(files)[:-30]),
        lambda p, files: p.write_bytes(_zip_bytes(files)[: len(_zip_bytes(files)) // 2]),
        lambda p, files: p.write_bytes(_zip_bytes(files).replace(b"spec.json", b"spec.jsoN")),
        lambda p, files: p.write_bytes(_zip_bytes({k: v for k, v in files.items() if k != "arrays/0.npy"})),
        lambda p, files: p.write_bytes(_corrupt_crc(_zip_bytes(files))),
    ],
    ids=["empty", "no-members", "garbage", "truncated-end", "truncated-half", "renamed-spec", "missing-array", "crc"],
)
def test_broken_zip_files_are_refused(saved: dict[str, Any], tmp_path: Path, make: Callable[..., Any]) -> None:
    path = tmp_path / "broken.zip"
    make(path, saved["files"])
    with pytest.raises(SpecError):
        symgraph.load(path)


def _zip_bytes(files: dict[str, bytes]) -> bytes:
    return craft_zip([(n, d, None, zipfile.ZIP_STORED) for n, d in files.items()])


def _corrupt_crc(data: bytes) -> bytes:
    # Flip one byte of the first member's data (spec.json comes last in the dict).
    at = data.index(b"\x93NUMPY") + 200
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


def test_a_path_that_is_neither_is_refused(tmp_path: Path) -> None:
    for path in (tmp_path / "missing", tmp_path / "missing.zip"):
        with pytest.raises(SpecError):
            symgraph.load(path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpecError):
        symgraph.load(tmp_path / "empty")


# -- (c) fuzzing ------------------------------------------------------------------------
def _fuzz_models() -> list[tuple[dict[str, Any], tuple[Any, ...]]]:
    """Specs of small core models and a call's arguments for each."""
    from symgraph import CustomInput, add_to_graph

    out = []
    x, n = CustomInput([3, 1, 2]), CustomInput(2)
    first, *rest = x
    model = SymbolicModel(
        (x, n), {"s": add_to_graph(sorted, x, reverse=True)[:n], "f": first + n, "r": rest[0] * 2, "c": x.count(n)}
    )
    out.append((model.to_spec(), ([4, 5, 6], 1)))
    s = CustomInput("a,b")
    model = SymbolicModel(s, [s.split(","), s.upper()[1:], add_to_graph(len, s) > 2, s == "x"])
    out.append((model.to_spec(), ("q,r,s",)))
    d, k = CustomInput({"k": 1.5}), CustomInput("k")
    model = SymbolicModel({"d": d, "k": k}, (d.get(k, (1, {2}, b"x", None)), -d[k], add_to_graph(math.floor, d[k])))
    out.append((model.to_spec(), ({"k": 2.5}, "k")))
    return out


FUZZ_MODELS = _fuzz_models()

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-8, 8),
    st.floats(allow_nan=False, allow_infinity=False, width=16),
    st.text(alphabet="abcxyz$_.:019 ", max_size=8),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet="abc$_", max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
# Every tag the core reads, the numpy ones, and two it does not know.
TAGS = [*sorted(symgraph._spec_codecs.BUILTIN_TAGS), "$numpy.dtype", "$numpy.scalar", "$layer", "$x"]
OBJECTS = [
    "os:system",
    "builtins:eval",
    "builtins:getattr",
    "builtins:len",
    "math:sqrt",
    "numpy:load",
    "pickle:loads",
    "builtins:sorted",
    "operator:attrgetter",
    "subprocess:run",
]
tagged = st.builds(
    lambda tag, payload: {tag: payload},
    st.sampled_from(TAGS),
    st.one_of(json_values, st.sampled_from(OBJECTS), st.sampled_from(["x", "s", "d", "k", "Input_1"])),
)
random_json = st.one_of(json_values, tagged)


def _locations(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _locations(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _locations(item, (*path, i))


_VALUE_KEYS = {"operands", "args", "kwargs", "index", "func", "outputs"}


def _mutate(spec: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    for _ in range(data.draw(st.sampled_from([1, 1, 1, 2, 4]), label="mutations")):
        # Deepest first: Hypothesis favours the first items, and leaves are where most
        # mutations leave a spec that still builds.
        places = sorted((p for p in _locations(spec) if p), key=len, reverse=True)
        # Half the mutations change the values a step computes with, which a spec
        # may hold many of; the others may hit any part of the schema.
        values = [p for p in places if any(k in _VALUE_KEYS for k in p if isinstance(k, str))]
        on_values = bool(values) and data.draw(st.booleans(), label="on values")
        path = data.draw(st.sampled_from(values if on_values else places), label="path")
        parent: Any = spec
        for key in path[:-1]:
            parent = parent[key]
        last = path[-1]
        actions = (
            ["replace", "same-type", "same-type", "swap-ref", "tag"]
            if on_values
            else ["delete", "replace", "retype", "swap-ref", "tag", "duplicate"]
        )
        action = data.draw(st.sampled_from(actions), label="action")
        if action == "delete":
            del parent[last]
        elif action == "replace":
            parent[last] = data.draw(random_json, label="value")
        elif action == "same-type":
            old = parent[last]
            strategy = {
                bool: st.booleans(),
                int: st.integers(-8, 8),
                float: st.floats(-8, 8, width=16),
                str: st.text(alphabet="abx,. ", max_size=4),
                list: st.permutations(old) if isinstance(old, list) else st.nothing(),
            }.get(type(old), random_json)
            parent[last] = data.draw(strategy, label="value")
        elif action == "retype":
            old = parent[last]
            parent[last] = {str: lambda v: [v], int: str, bool: int, list: lambda v: {"$tuple": v}}.get(
                type(old), lambda v: [v]
            )(old)
        elif action == "swap-ref":
            names = [e["name"] for e in spec.get("inputs", []) if isinstance(e, dict) and "name" in e]
            names += [e.get("name") for e in spec.get("steps", []) if isinstance(e, dict)]
            parent[last] = {"$ref": data.draw(st.sampled_from([*names, "nope"]))}
        elif action == "tag":
            parent[last] = {data.draw(st.sampled_from(TAGS)): parent[last]}
        elif isinstance(parent, list):
            parent.insert(last, copy.deepcopy(parent[last]))
        else:
            parent[last] = [parent[last], copy.deepcopy(parent[last])]
    return spec


@FUZZ
@given(data=st.data())
def test_mutated_specs_build_or_raise_spec_error(data: st.DataObject, sentinel: Path) -> None:
    spec, args = data.draw(st.sampled_from(FUZZ_MODELS), label="model")
    mutated = _mutate(spec, data)
    try:
        model = SymbolicModel.from_spec(mutated)
    except SpecError:
        event("refused")
        return
    event("built")
    try:
        if isinstance(args[0], dict):
            model(d=args[0], k=args[1])
        else:
            model(*args)
    except Exception:
        pass  # a model may fail on its input; what matters is that the process is intact


@FUZZ
@given(data=st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
def test_random_bytes_as_spec_json_raise_spec_error(data: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = write_spec(tmp_path_factory.mktemp("rand"), data)
    with pytest.raises(SpecError):
        symgraph.load(path)


@FUZZ
@given(
    raw=st.binary(max_size=400),
    members=st.dictionaries(
        st.sampled_from(["spec.json", "arrays/0.npy", "arrays/1.npy", "../x", "/abs", "a/b/c"]),
        st.binary(max_size=200) | st.sampled_from([b"{}", b"[]", json.dumps(base_spec()).encode()]),
        max_size=3,
    ),
)
def test_random_zip_contents_raise_spec_error(
    raw: bytes, members: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("zips")
    (folder / "raw.zip").write_bytes(raw)
    with pytest.raises(SpecError):
        symgraph.load(folder / "raw.zip")
    spec = members.get("spec.json")
    if spec == json.dumps(base_spec()).encode():
        # A valid spec with no constants loads: the twin of the refusals.
        model = symgraph.load(_zip_of(folder / "members.zip", members))
        assert model(*BASE_DATA[0]) == base_eager(*BASE_DATA[0])
        return
    with pytest.raises(SpecError):
        symgraph.load(_zip_of(folder / "members.zip", members))


def test_a_call_of_a_structure_is_refused_before_code_is_generated() -> None:
    # Found by the fuzzer: a list holding a ref as a call's function would have been
    # generated as `[v3](v1)`, which Python compiles with a SyntaxWarning.
    x, n = symgraph.CustomInput([1, 2, 1]), symgraph.CustomInput(1)
    spec = SymbolicModel((x, n), x.count(n)).to_spec()
    assert SymbolicModel.from_spec(spec)([3, 3], 3) == 2
    spec["steps"][1]["func"] = [{"$ref": spec["steps"][0]["name"]}]
    with pytest.raises(SpecError, match=r"steps\[1\]\.func: a call step's function"):
        SymbolicModel.from_spec(spec)
