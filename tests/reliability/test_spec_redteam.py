"""Red-team attacks on the loader of the symgraph format, by a hostile file author.

The promise under test: ``symgraph.load(path)`` and ``SymbolicModel.from_spec(spec)``
(core and torch) run no code but the callables that the spec names and the
allowlist permits. A spec must not run shell commands, read or write files,
import modules, unpickle or reach eval/exec, neither while loading nor when the
loaded model is called on an ordinary input.

Every test builds one hostile spec and asserts that it is refused: a
``SpecError`` at load, or the loaded model raising when it is called, and in
both cases the canary the payload would create (a file in ``tmp_path``, a
module that records its import) is absent. Payloads are harmless: they create
empty files or directories under ``tmp_path`` and nothing else. Attacks whose
effects outlive the test (they import numpy's test modules, whose import
reconfigures hypothesis, or crash the interpreter) run in one subprocess.

Tests of attacks that still work fail; that is intended. The valid twins at
the end check that the harness builds specs the loader accepts, so that a
refusal is the loader's and not a typo here.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

import symgraph
from symgraph import SpecError
from tests.reliability.spec_builders import (
    GETATTR,
    X,
    assert_defeated,
    attr,
    build,
    call,
    carry,
    core_spec,
    exec_code,
    index,
    layer,
    method,
    module_step,
    needs_numpy,
    needs_torch,
    obj,
    partial,
    ref,
    save_spec,
    symgraph_torch,
    torch,
    torch_spec,
)

# -- spec builders ---------------------------------------------------------------------


def via_builtins_exec(getter: str, canary: Path) -> list[dict[str, Any]]:
    """Steps that call the getattr held by step ``getter``: len.__self__ is builtins, whose exec runs code."""
    return [
        call("builtins_module", ref(getter), obj("builtins:len"), "__self__"),
        call("exec", ref(getter), ref("builtins_module"), "exec"),
        call("y", ref("exec"), exec_code(canary)),
    ]


# -- checks ------------------------------------------------------------------------------


def assert_refused_at_load(spec: dict[str, Any], via: Path | None = None) -> None:
    with pytest.raises(SpecError):
        build(spec, via)


# -- (1) code that runs while loading ------------------------------------------------------
# A layer's constructor arguments are decoded without the check that steps get
# (getattr in a $partial), and ConvBn2d calls qconfig.weight() in __init__: the
# spec's callable runs during load. functools.reduce, re-exported by a torch.ao
# module, composes getattr(getattr(len, "__self__"), "exec")(code).
REDUCE = obj("torch.ao.pruning.sparsifier.weight_norm_sparsifier:reduce")


def _qat_layer(weight: Any) -> dict[str, Any]:
    qconfig = {"$namedtuple": {"type": "torch.ao.quantization:QConfig", "items": [weight, weight]}}
    return torch_spec(
        {"l": layer("torch.ao.nn.intrinsic.qat:ConvBn2d", 1, 1, 1, qconfig=qconfig)}, module_step("y", "l", X)
    )


def _exec_at_load(canary: Path) -> dict[str, Any]:
    get_exec = partial(REDUCE, GETATTR, ["__self__", "exec"])
    return _qat_layer(partial(REDUCE, obj("operator:call"), [obj("builtins:len"), exec_code(canary)], get_exec))


@needs_torch
def test_a_layer_constructor_does_not_run_exec_while_loading(canary: Path, tmp_path: Path) -> None:
    assert_defeated(_exec_at_load(canary), canary, via=tmp_path / "saved")


@needs_torch
def test_a_layer_constructor_does_not_run_exec_in_from_spec(canary: Path) -> None:
    assert_defeated(_exec_at_load(canary), canary, call_model=False)


@needs_torch
def test_a_layer_constructor_does_not_import_a_module_while_loading(
    canary_module: tuple[str, Path], tmp_path: Path
) -> None:
    # numpy.lib.add_newdoc(place, ...) is __import__(place): public numpy API.
    name, imported = canary_module
    spec = _qat_layer(partial(obj("numpy.lib:add_newdoc"), name, "value", "doc"))
    assert_defeated(spec, imported, via=tmp_path / "saved")
    assert name not in sys.modules


@needs_torch
def test_a_layer_constructor_does_not_read_files_while_loading(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cr3t a\n1 2\n")
    # numpy.ma.mrecords.fromtextfile(path) reads the file: the layer would keep its records.
    spec = _qat_layer(partial(obj("numpy.ma.mrecords:fromtextfile"), str(secret)))
    assert_refused_at_load(spec)


@needs_torch
@pytest.mark.parametrize(
    "op",
    [
        partial(GETATTR, obj("builtins:len"), "__self__"),
        {"$slice": [GETATTR, None, None]},
        GETATTR,
    ],
    ids=["partial", "slice", "bare"],
)
def test_name_getters_in_layer_arguments_are_refused(op: Any) -> None:
    # LambdaOpLayer(op) calls op on its input: getattr(len, "__self__", x) is the
    # builtins module, whose getattr then reaches exec by a step of a safe name.
    spec = torch_spec({"l": layer("symgraph_torch.useful_layers:LambdaOpLayer", op)}, module_step("y", "l", X))
    assert_refused_at_load(spec)


def _nested(depth: int) -> dict[str, Any]:
    spec = torch_spec({"l": layer("torch.nn:ReLU")}, module_step("y", "l", X))
    for _ in range(depth):
        step = {"name": "y", "op": "nested_model", "layer": {"$layer": "m"}, "args": [X], "kwargs": {}}
        spec = torch_spec({"m": {"model": spec}}, step)
    return spec


@needs_torch
def test_models_nested_too_deeply_are_refused_with_spec_error() -> None:
    # JSON files stop at the parser's depth; a dict given to from_spec does not.
    with pytest.raises(SpecError):
        symgraph_torch.SymbolicModel.from_spec(_nested(400))


@needs_torch
def test_a_spec_that_contains_itself_is_refused_with_spec_error() -> None:
    spec = _nested(1)
    spec["torch"]["layers"]["m"]["model"] = spec
    with pytest.raises(SpecError):
        symgraph_torch.SymbolicModel.from_spec(spec)


@needs_numpy
def test_an_npy_dtype_with_a_huge_subarray_is_refused_with_spec_error(tmp_path: Path) -> None:
    # dtype_from_spec catches numpy's TypeError but not its ValueError.
    spec = core_spec(call("y", obj("operator:add"), X, {"$constant": "c0"}))
    spec["constants"] = {"c0": {"codec": "numpy", "file": "arrays/0.npy", "dtype": "(1000000000000,)i1", "shape": [1]}}
    folder = save_spec(spec, tmp_path / "saved")
    (folder / "arrays").mkdir()
    (folder / "arrays" / "0.npy").write_bytes(b"\x93NUMPY" + b"x" * 200)
    with pytest.raises(SpecError):
        symgraph.load(folder)


# -- (2) code that runs when the model is called -------------------------------------------
def test_getattr_hidden_in_a_slice_does_not_reach_exec(canary: Path, tmp_path: Path) -> None:
    # _holds_name_getter looks into lists, tuples, sets, dicts and partials, not a
    # slice: slice(getattr).start is getattr, called from a step with any name.
    spec = core_spec(
        call("s", obj("operator:getitem"), [{"$slice": [GETATTR, None, None]}, X], 0),
        attr("getter", "s", "start"),
        *via_builtins_exec("getter", canary),
    )
    assert_defeated(spec, canary, via=tmp_path / "saved")


@needs_torch
def test_getattr_hidden_in_a_named_tuple_does_not_reach_exec(canary: Path) -> None:
    # A named tuple's type is not tuple, so the same check does not look inside it.
    held = {"$namedtuple": {"type": "torch.ao.quantization:QConfig", "items": [GETATTR, None]}}
    spec = core_spec(
        call("t", obj("operator:getitem"), [held, X], 0),
        index("getter", "t", 0),
        *via_builtins_exec("getter", canary),
    )
    assert_defeated(spec, canary)


@needs_torch
@pytest.mark.parametrize(
    "layer_spec",
    [
        layer("symgraph_torch.useful_layers:GetAttr", "__globals__"),
        layer("symgraph_torch.useful_layers:MethodCall", "__getattribute__", "__globals__"),
    ],
    ids=["GetAttr", "MethodCall"],
)
def test_a_getattr_layer_does_not_reach_dunder_names(layer_spec: dict[str, Any], canary: Path, tmp_path: Path) -> None:
    # The layer's name is a constructor argument, never checked like a step's
    # attribute name: relu.__globals__["__builtins__"]["exec"](code).
    spec = torch_spec(
        {"g": layer_spec},
        carry("f", "torch.nn.functional:relu"),
        module_step("globals", "g", ref("f")),
        call("builtins_dict", obj("operator:getitem"), ref("globals"), "__builtins__"),
        call("exec", obj("operator:getitem"), ref("builtins_dict"), "exec"),
        call("y", ref("exec"), exec_code(canary)),
    )
    assert_defeated(spec, canary, via=tmp_path / "saved")


@needs_torch
def test_a_module_returned_by_torch_overrides_does_not_reach_os(canary: Path) -> None:
    # get_overridable_functions() is keyed by modules: torch, then torch.os.mkdir.
    spec = core_spec(
        carry("f", "torch.overrides:get_overridable_functions"),
        call("table", ref("f")),
        call("keys", obj("builtins:iter"), ref("table")),
        call("torch_module", obj("builtins:next"), ref("keys")),
        attr("os", "torch_module", "os"),
        method("y", "os", "mkdir", str(canary)),
    )
    assert_defeated(spec, canary)


@needs_torch
def test_find_spec_re_exported_by_torch_does_not_load_posix(canary: Path) -> None:
    # torch.cuda.amp.common imports importlib.util.find_spec: its loader loads posix.
    spec = core_spec(
        carry("find_spec", "torch.cuda.amp.common:find_spec"),
        call("module_spec", ref("find_spec"), "posix"),
        attr("loader", "module_spec", "loader"),
        method("posix", "loader", "load_module", "posix"),
        method("y", "posix", "mkdir", str(canary)),
    )
    assert_defeated(spec, canary)


@needs_torch
def test_torch_fx_re_exported_by_torch_ao_does_not_exec_generated_code(canary: Path) -> None:
    # torch.fx is denied by module, but torch.ao.quantization.fx.graph_module holds
    # its Graph and GraphModule; a placeholder's target is pasted into the code fx execs.
    spec = core_spec(
        carry("Graph", "torch.ao.quantization.fx.graph_module:Graph"),
        call("graph", ref("Graph")),
        method("arg", "graph", "placeholder", f"a={exec_code(canary)}"),
        method("out", "graph", "output", ref("arg")),
        carry("GraphModule", "torch.ao.quantization.fx.graph_module:GraphModule"),
        call("y", ref("GraphModule"), {}, ref("graph")),
    )
    assert_defeated(spec, canary)


@needs_numpy
def test_numpy_add_newdoc_does_not_import_a_module(canary_module: tuple[str, Path]) -> None:
    name, imported = canary_module
    spec = core_spec(call("y", obj("numpy.lib:add_newdoc"), name, "value", X))
    assert_defeated(spec, imported, arg="doc")
    assert name not in sys.modules


@needs_torch
def test_torchscript_is_not_compiled(canary: Path) -> None:
    # torch.jit is denied by module; torch.CompilationUnit is torch.jit's, at the top level.
    spec = core_spec(call("y", obj("torch:CompilationUnit"), X))
    assert_defeated(spec, canary, arg="def f(x: int) -> int:\n    return x + 1\n")


# -- (3) files read or written when the model is called ----------------------------------
@needs_torch
@pytest.mark.parametrize("how", ["method", "function"])
def test_the_profiler_event_list_does_not_write_files(how: str, canary: Path) -> None:
    write = (
        method("y", "events", "export_chrome_trace", str(canary))
        if how == "method"
        else call("y", obj("torch.autograd.profiler_util:EventList.export_chrome_trace"), ref("events"), str(canary))
    )
    spec = core_spec(
        call("none", obj("operator:mul"), X, 0),
        call("empty", obj("builtins:range"), ref("none")),
        call("events", obj("torch.autograd.profiler_util:EventList"), ref("empty")),
        write,
    )
    assert_defeated(spec, canary, arg=1)


@needs_numpy
@pytest.mark.parametrize("reader", ["openfile", "fromtextfile"])
def test_numpy_ma_mrecords_does_not_read_files(reader: str, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cr3t a b\n1 2 3\n")
    steps = [call("f", obj(f"numpy.ma.mrecords:{reader}"), X)]
    if reader == "openfile":
        steps.append(method("y", "f", "readline"))
    assert_defeated(core_spec(*steps), arg=str(secret))


@needs_torch
def test_the_compile_executor_takes_no_inductor_config_from_a_spec(canary: Path) -> None:
    # executor_options.options go to torch._inductor.config: trace.debug_dir writes
    # files where the spec says (and cpp.cxx picks the compiler binary inductor runs).
    spec = torch_spec({"l": layer("torch.nn:ReLU")}, module_step("y", "l", X))
    spec["options"] = {
        "check_inputs": False,
        "executor": "compile",
        "executor_options": {"backend": "inductor", "options": {"trace.enabled": True, "trace.debug_dir": str(canary)}},
    }
    assert_defeated(spec, canary, call_model=False)  # calling compiles for half a minute


# -- (4) names the allowlist must refuse -------------------------------------------------
REFUSED_REFERENCES = [
    # Re-exports: a permitted module holds what a denied module or the standard
    # library defines, and the allowlist decides by the module named in the spec.
    "torch.ao.quantization.fx.graph_module:Graph",
    "torch.ao.quantization.fx.graph_module:GraphModule",
    "torch.quantization.quantize_fx:prepare_fx",
    "torch:CompilationUnit",
    "torch.cuda.amp.common:find_spec",
    "torch.ao.pruning.sparsifier.weight_norm_sparsifier:reduce",
    "torch.xpu:cast",
    "torch.xpu:pointer",
    "torch.xpu:c_double",
    "torch.xpu:c_double.from_address",
    # Public functions that import, open files, or hand out modules.
    "numpy.lib:add_newdoc",
    "numpy.ma.mrecords:openfile",
    "numpy.ma.mrecords:fromtextfile",
    "torch.overrides:get_overridable_functions",
    "torch.autograd.profiler_util:EventList.export_chrome_trace",
    "torch.autograd.profiler_util:EventList.export_stacks",
    "torch.autograd.profiler_legacy:profile",
    # Hooks on every module of the process, run after the model is gone.
    "torch.nn.modules.module:register_module_forward_hook",
    "torch.nn.modules.module:register_module_forward_pre_hook",
    # Private names after the first part: file and pickle internals of storages.
    "torch:UntypedStorage._write_file",
    "torch:UntypedStorage._set_from_file",
    "torch:UntypedStorage._new_shared_filename_cpu",
    "torch:Tensor._reduce_ex_internal",
]

# Refused today; kept so that it stays so.
STILL_REFUSED = [
    "torch.nn:Module.__dict__",
    "numpy:ndarray.__reduce_ex__",
    "torch:Tensor.__reduce_ex__",
    "torch:UntypedStorage.from_file",
    "numpy.ma:MaskedArray.tofile",
    "numpy:str_.format",
    "numpy:str_.format_map",
    "numpy:ndarray.ctypes",
    "torch.utils.data:DataLoader",
    "torch.profiler:profile",
    "torch.autograd.profiler:profile",
    "torch.library:Library",
    "torch.fx:GraphModule",
    "torch.jit:script",
    "torch.cuda.memory:_dump_snapshot",
    "torch:ops.aten",
    "torch:classes.load_library",
    "numpy.lib:format.open_memmap",
    "numpy.core:_ufunc_reconstruct",
    "torch.nn:Module.register_forward_hook",
]


@pytest.mark.parametrize("reference", REFUSED_REFERENCES + STILL_REFUSED)
def test_dangerous_references_are_refused(reference: str) -> None:
    for spec in (
        core_spec(call("y", obj(reference), X)),
        core_spec(call("y", obj("builtins:map"), obj(reference), [X])),
    ):
        assert_refused_at_load(spec)


@pytest.mark.parametrize(
    "name",
    ["_share_filename_cpu_", "_write_file", "_reduce_ex_internal", "__array_interface__", "from_file", "format_map"],
)
@pytest.mark.parametrize("kind", ["getattr", "method"])
def test_internal_attribute_names_on_values_are_refused(name: str, kind: str) -> None:
    step = attr("y", "x", name) if kind == "getattr" else method("y", "x", name)
    assert_refused_at_load(core_spec(step))


@needs_torch
def test_dunder_call_of_getattr_with_a_dunder_name_is_refused() -> None:
    spec = torch_spec(
        {"l": layer("torch.nn:ReLU")},
        module_step("a", "l", X),
        {"name": "y", "op": "dunder_call", "func": GETATTR, "args": [ref("a"), "__class__"], "kwargs": {}},
    )
    assert_refused_at_load(spec)


# -- (5) attacks that outlive a test: in one subprocess ---------------------------------
# Naming numpy.conftest imports it, which loads a hypothesis profile for the whole
# process; test_ctypeslib's cdll needs it first. The last case crashes the interpreter.
_WORKER = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
import symgraph, symgraph_torch
from symgraph import SpecError
cases = json.loads(sys.stdin.read())
sys.path[:0] = cases.pop(0)
for case in cases:
    cls = symgraph_torch.SymbolicModel if case["spec"]["model"] == "torch" else symgraph.SymbolicModel
    try:
        model = cls.from_spec(case["spec"])
    except SpecError as exc:
        outcome = ["refused", str(exc)[:300]]
    except Exception as exc:
        outcome = ["load error", f"{type(exc).__name__}: {str(exc)[:300]}"]
    else:
        if not case["call"]:
            outcome = ["loaded", ""]
        else:
            try:
                outcome = ["returned", repr(model(case["arg"]))[:300]]
            except Exception as exc:
                outcome = ["raised", f"{type(exc).__name__}: {str(exc)[:300]}"]
    print(json.dumps([case["id"], *outcome]), flush=True)
"""


def _bytes(text: str) -> dict[str, str]:
    return {"$bytes": base64.b64encode(text.encode()).decode()}


def _isolated_cases(folder: Path, module: str) -> dict[str, tuple[dict[str, Any], bool, Any, list[str]]]:
    """id: (spec, call it, its argument, canaries: glob patterns in ``folder``)."""
    c = {name: folder / name for name in ("cdll", "path", "crash")}
    imported = folder / "IMPORTED"
    return {
        # ctypes.CDLL of numpy's own library: system is one index away.
        "test_ctypeslib-cdll-system": (
            core_spec(
                carry("pre", "numpy.conftest:Path"),
                carry("lib", "numpy.tests.test_ctypeslib:cdll"),
                index("system", "lib", "system"),
                call("y", ref("system"), _bytes(f"mkdir {c['cdll']}")),
            ),
            True,
            1.0,
            [c["cdll"].name],
        ),
        "test_io-Path-write_text": (
            core_spec(
                carry("Path", "numpy.lib.tests.test_io:Path"),
                call("p", ref("Path"), str(c["path"])),
                method("y", "p", "write_text", "written"),
            ),
            True,
            1.0,
            [c["path"].name],
        ),
        "test__datasource-mkstemp": (
            core_spec(call("y", obj("numpy.lib.tests.test__datasource:mkstemp"), "", "mkstemp", X)),
            True,
            str(folder),
            ["mkstemp*"],
        ),
        "test__datasource-mkdtemp-at-load": (
            _qat_layer(partial(obj("numpy.lib.tests.test__datasource:mkdtemp"), "", "mkdtemp", str(folder))),
            False,
            None,
            ["mkdtemp*"],
        ),
        # shutil.rmtree: only checked to be refused at load, never called.
        "test__datasource-rmtree": (
            core_spec(call("y", obj("numpy.lib.tests.test__datasource:rmtree"), X)),
            False,
            None,
            [],
        ),
        "mock-patch-imports": (
            core_spec(
                carry("patch", "numpy.tests.test_numpy_config:patch"),
                call("patcher", ref("patch"), f"{module}.value", 2),
                method("y", "patcher", "start"),
            ),
            True,
            1.0,
            [imported.name],
        ),
        "test_extending-spec_from_file_location": (
            core_spec(call("y", obj("numpy.random.tests.test_extending:spec_from_file_location"), "m", X)),
            False,
            None,
            [],
        ),
        "conftest-at-load": (core_spec(carry("y", "numpy.conftest:Path")), False, None, []),
        # Reading address 16 through ctypes: a segmentation fault.
        "xpu-ctypes-from_address": (
            core_spec(call("p", obj("torch.xpu:c_double.from_address"), X), attr("y", "p", "value")),
            True,
            16,
            [c["crash"].name],
        ),
    }


_ISOLATED_IDS = list(_isolated_cases(Path("."), "m"))


@pytest.fixture(scope="module")
def isolated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("isolated")
    module = f"redteam_canary_{uuid.uuid4().hex}"
    on_path = folder / "on_sys_path"
    on_path.mkdir()
    (on_path / f"{module}.py").write_text(f"open({str(folder / 'IMPORTED')!r}, 'w').close()\nvalue = 1\n")
    cases = _isolated_cases(folder, module)
    payload = [[str(on_path)]] + [
        {"id": key, "spec": spec, "call": called, "arg": arg} for key, (spec, called, arg, _) in cases.items()
    ]
    done = subprocess.run(
        [sys.executable, "-c", _WORKER],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        cwd=folder,
        timeout=300,
        check=False,
    )
    results = {}
    for line in done.stdout.splitlines():
        try:
            key, outcome, detail = json.loads(line)
        except ValueError:
            continue
        results[key] = (outcome, detail)
    return {
        "folder": folder,
        "cases": cases,
        "results": results,
        "returncode": done.returncode,
        "stderr": done.stderr[-2000:],
    }


@needs_torch
@pytest.mark.parametrize("case", _ISOLATED_IDS)
def test_attacks_through_test_modules_and_ctypes_are_refused(case: str, isolated: dict[str, Any]) -> None:
    spec, called, _, canaries = isolated["cases"][case]
    outcome, detail = isolated["results"].get(
        case, ("crashed", f"exit status {isolated['returncode']}: {isolated['stderr']}")
    )
    for pattern in canaries:
        made = list(isolated["folder"].glob(pattern))
        assert not made, f"{case}: the payload ran, it made {made} ({outcome}: {detail})"
    if called:
        assert outcome in ("refused", "raised"), f"{case}: {outcome}: {detail}"
    else:
        assert outcome == "refused", f"{case}: {outcome}: {detail}"


# -- valid twins: the harness builds specs the loader accepts -------------------------------
def test_twin_a_slice_constant_of_ints_loads_and_runs(tmp_path: Path) -> None:
    spec = core_spec(
        call("s", obj("operator:getitem"), [{"$slice": [1, None, None]}, X], 0),
        attr("start", "s", "start"),
        call("y", obj("operator:add"), ref("start"), X),
    )
    assert build(spec, tmp_path / "saved")(0.5) == 1 + 0.5


@needs_torch
def test_twin_a_named_tuple_constant_of_ints_loads_and_runs() -> None:
    # torch.ao is not permitted by default: the user allows the class.
    from torch.ao.quantization import QConfig

    held = {"$namedtuple": {"type": "torch.ao.quantization:QConfig", "items": [2, 3]}}
    spec = core_spec(call("t", obj("operator:getitem"), [held, X], 0), index("y", "t", 1))
    with pytest.raises(symgraph.SpecError, match=r"torch\.ao\.quantization:QConfig"):
        build(spec, None)
    assert build(spec, None, allow=[QConfig])(0.5) == 3


@needs_torch
def test_twin_getattr_and_method_layers_with_safe_names_run() -> None:
    data = torch.arange(6.0).reshape(2, 3)
    for layer_spec, expected in (
        (layer("symgraph_torch.useful_layers:GetAttr", "T"), data.T),
        (layer("symgraph_torch.useful_layers:MethodCall", "transpose", 0, 1), data.transpose(0, 1)),
    ):
        model = build(torch_spec({"g": layer_spec}, module_step("y", "g", X)), None)
        assert torch.equal(model(data), expected)


@needs_torch
def test_twin_a_qat_layer_with_an_allowed_qconfig_loads(tmp_path: Path) -> None:
    # The same layer, with a harmless callable, builds: the refusal above is of the payload.
    from torch.ao.nn.intrinsic.qat import ConvBn2d
    from torch.ao.quantization import QConfig

    spec = _qat_layer(partial(obj("torch.nn:Identity")))
    model = build(spec, None, allow=[ConvBn2d, QConfig])
    data = torch.ones(1, 1, 2, 2)
    assert model(data).shape == (1, 1, 2, 2)


@needs_torch
def test_twin_a_torch_layer_spec_loads_from_a_file(tmp_path: Path) -> None:
    spec = torch_spec({"l": layer("torch.nn:ReLU")}, module_step("y", "l", X))
    model = build(spec, tmp_path / "saved")
    data = torch.tensor([-1.0, 2.0])
    assert torch.equal(model(data), torch.relu(data))


@needs_torch
def test_a_layer_whose_constructor_would_not_end_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    # nn.RNN(1, 1, num_layers=10**9) has tiny weights, so no size check refuses it.
    import symgraph_torch._saving

    monkeypatch.setattr(symgraph_torch._saving, "MAX_TENSOR_CALLS", 500)
    spec = torch_spec({"r": layer("torch.nn:RNN", 1, 1, 10**6)}, module_step("y", "r", X))
    with pytest.raises(symgraph.SpecError, match="makes more than 500 tensors"):
        build(spec, None)
    # What real layers make stays far below the limit that loading uses.
    small = torch_spec({"r": layer("torch.nn:LSTM", 8, 8, 4)}, module_step("y", "r", X))
    monkeypatch.setattr(symgraph_torch._saving, "MAX_TENSOR_CALLS", 50_000)
    assert isinstance(build(small, None).r, torch.nn.LSTM)
