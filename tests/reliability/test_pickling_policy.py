"""Which pickler may store which functions of a model (issue 11, item 7).

The standard pickler stores functions by name: it refuses lambdas and local
functions, and those of ``__main__`` (another process's ``__main__`` is another
program). multiprocessing's children run the same ``__main__``, so it refuses
only the first two. cloudpickle stores them all by value, and dask falls back
to it. Every test compares a loaded model with the recorded code run eagerly,
or an error with its exact message.
"""

from __future__ import annotations

import copy
import functools
import io
import json
import operator
import pickle
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from multiprocessing.reduction import ForkingPickler
from typing import Any

import pytest

import symgraph
from symgraph._pickling import check_picklable, running_pickler

RECORD = symgraph.add_to_graph


def direct(func: Callable[..., Any], *args: Any) -> Any:
    """The eager ``call``: what ``add_to_graph`` records, run at once."""
    return func(*args)


def lambda_code(call: Callable[..., Any], x: Any) -> Any:
    return call(lambda v: v * 10 + 1, x) - 3


def local_code(call: Callable[..., Any], x: Any) -> Any:
    def shift(v: int) -> int:
        return v - 7

    return call(functools.partial(shift), call(abs, x))


def lambda_model() -> symgraph.SymbolicModel:
    x = symgraph.CustomInput(4)
    return symgraph.SymbolicModel(x, lambda_code(RECORD, x))


MAIN_SOURCE = """
def triple_of_main(v):
    return 3 * v


class ScaleOfMain:
    def __init__(self, k):
        self.k = k

    def __call__(self, v):
        return self.k * v
"""


@pytest.fixture
def of_main(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """A function and a class of ``__main__``, as a script defines them."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(MAIN_SOURCE, namespace)
    func, cls = namespace["triple_of_main"], namespace["ScaleOfMain"]
    assert func.__module__ == cls.__module__ == "__main__"
    monkeypatch.setattr(sys.modules["__main__"], "triple_of_main", func, raising=False)
    monkeypatch.setattr(sys.modules["__main__"], "ScaleOfMain", cls, raising=False)
    return func, cls


def main_code(call: Callable[..., Any], x: Any, func: Any, cls: Any) -> Any:
    return call(func, x) + call(cls(5), x) + call(isinstance, x, cls)


def main_model(func: Any, cls: Any) -> symgraph.SymbolicModel:
    x = symgraph.CustomInput(2)
    return symgraph.SymbolicModel(x, main_code(RECORD, x, func, cls))


VALUES = (-3, 0, 11)


def lambda_error(step: str, qualname: str, module: str) -> str:
    return (
        f"cannot pickle this model: step {step!r} uses {qualname}, which pickle can only store by an importable "
        f"name, and {module}.{qualname} is not one. Lambdas and functions or classes defined inside a function "
        "cannot be pickled; define them at module level (a functools.partial of such a function pickles too), "
        "or pickle the model with cloudpickle, which stores them by value"
    )


def main_error(where: str, name: str, kind: str) -> str:
    return (
        f"cannot pickle this model: {where} uses __main__.{name}, a {kind} of the __main__ module. pickle stores "
        "it by name, and another process that loads the pickle looks the name up in its own __main__ (another "
        "script), which lacks it or defines something else under that name. Move it into a module that the "
        "loading side can import, or pickle the model with cloudpickle, which stores it by value (multiprocessing "
        "needs neither, its child processes run this same __main__; dask.distributed falls back to cloudpickle)"
    )


# ----------------------------------------------------------------------------- the standard pickler


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_the_standard_pickler_refuses_a_lambda_naming_the_step(protocol):
    model = lambda_model()
    with pytest.raises(pickle.PicklingError) as info:
        pickle.dumps(model, protocol=protocol)
    assert str(info.value) == lambda_error("wrap(<lambda>)_1", "lambda_code.<locals>.<lambda>", __name__)
    x = symgraph.CustomInput(0)
    local = symgraph.SymbolicModel(x, local_code(RECORD, x))
    with pytest.raises(pickle.PicklingError) as info:
        pickle.Pickler(io.BytesIO(), protocol).dump([{"model": local}])  # wherever the model sits
    assert str(info.value) == lambda_error("partial_1", "local_code.<locals>.shift", __name__)


def test_the_standard_pickler_refuses_functions_and_classes_of_main(of_main):
    func, cls = of_main
    # pickle itself would store them, by a name that only this process resolves so.
    assert pickle.loads(pickle.dumps(func)) is func and pickle.loads(pickle.dumps(cls)) is cls
    x = symgraph.CustomInput(2)
    cases = {
        main_error("step 'wrap(triple_of_main)_1'", "triple_of_main", "function"): RECORD(func, x),
        main_error("step 'ScaleOfMain_1'", "ScaleOfMain", "class"): RECORD(cls(5), x),  # an instance
        main_error("step 'wrap(isinstance)_1'", "ScaleOfMain", "class"): RECORD(isinstance, x, cls),
        main_error("step 'partial_1'", "triple_of_main", "function"): RECORD(functools.partial(func), x),
    }
    for message, out in cases.items():
        model = symgraph.SymbolicModel(x, out)
        for dump in (pickle.dumps, lambda m: pickle._dumps(m)):  # the C pickler and the pure-Python one
            with pytest.raises(pickle.PicklingError) as info:
                dump(model)
            assert str(info.value) == message


def test_a_subclass_calling_the_base_getstate_is_checked_the_same():
    class Saved(symgraph.SymbolicModel):
        def __getstate__(self) -> dict[str, Any]:
            return dict(super().__getstate__(), saved=True)

        def __setstate__(self, state: dict[str, Any]) -> None:
            assert state.pop("saved")
            super().__setstate__(state)

    x = symgraph.CustomInput(4)
    model = Saved(x, lambda_code(RECORD, x))
    with pytest.raises(pickle.PicklingError, match=r"^cannot pickle this model: step 'wrap\(<lambda>\)_1'"):
        pickle.dumps(model)
    cloudpickle = pytest.importorskip("cloudpickle")
    clone = pickle.loads(cloudpickle.dumps(model))
    assert type(clone).__name__ == "Saved"
    assert [clone(v) for v in VALUES] == [lambda_code(direct, v) for v in VALUES]


def test_a_model_of_importable_functions_loads_in_a_fresh_process():
    def code(call: Callable[..., Any], x: Any) -> Any:
        total = call(functools.partial(operator.add, 10), call(sum, x))
        return {"sorted": call(sorted, x), "total": total, "joined": call(",".join, call(list, call(map, str, x)))}

    x = symgraph.CustomInput([3, 1, 2])
    model = symgraph.SymbolicModel(x, code(RECORD, x))
    value = [5, 4, 9, -1]
    loader = (
        "import json, pickle, sys\nprint(json.dumps(pickle.loads(sys.stdin.buffer.read())(json.loads(sys.argv[1]))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", loader, json.dumps(value)],
        input=pickle.dumps(model),
        capture_output=True,
        check=True,
        timeout=120,
    )
    assert json.loads(out.stdout) == code(direct, value)


def test_an_input_check_is_checked_too():
    x = symgraph.CustomInput(1)
    plan = symgraph.SymbolicModel(x, x + 1).plan
    with_check = [(lambda v: None), functools.partial(print)]
    for check, refused in zip(with_check, (True, False), strict=True):
        checked = type(plan)(
            (type(plan.inputs[0])(plan.inputs[0].name, plan.inputs[0].description, check),),
            plan.input_keys,
            plan.steps,
            plan.outputs,
        )
        if refused:
            with pytest.raises(pickle.PicklingError) as info:
                check_picklable(checked, "pickle")
            expected = lambda_error("x", "test_an_input_check_is_checked_too.<locals>.<lambda>", __name__)
            assert str(info.value) == expected.replace("step 'x'", f"the check of input {plan.inputs[0].name!r}")
        else:
            check_picklable(checked, "pickle")
        check_picklable(checked, "cloudpickle")
    with pytest.raises(ValueError, match="pickler must be one of pickle, multiprocessing, cloudpickle; got 'dill'"):
        check_picklable(plan, "dill")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- copies


def test_deep_copies_keep_lambdas_and_main_functions(of_main):
    func, cls = of_main
    for model, eager in ((lambda_model(), lambda v: lambda_code(direct, v)), (main_model(func, cls), None)):
        clone = copy.deepcopy(model)
        for v in VALUES:
            expected = eager(v) if eager else main_code(direct, v, func, cls)
            assert clone(v) == model(v) == expected


# ----------------------------------------------------------------------------- cloudpickle


@pytest.mark.parametrize("protocol", [1, 2, pickle.HIGHEST_PROTOCOL])
def test_cloudpickle_stores_lambdas_local_and_main_functions_by_value(monkeypatch, of_main, protocol):
    cloudpickle = pytest.importorskip("cloudpickle")
    func, cls = of_main
    x = symgraph.CustomInput(2)
    local = symgraph.SymbolicModel(x, local_code(RECORD, x))
    cases = [
        (lambda_model(), lambda v: lambda_code(direct, v)),
        (local, lambda v: local_code(direct, v)),
        (main_model(func, cls), lambda v: main_code(direct, v, func, cls)),
    ]
    for model, eager in cases:
        data = cloudpickle.dumps({"nested": [model]}, protocol=protocol)
        monkeypatch.delattr(sys.modules["__main__"], "triple_of_main")  # by value: the name is not needed
        clone = pickle.loads(data)["nested"][0]
        monkeypatch.setattr(sys.modules["__main__"], "triple_of_main", func, raising=False)
        assert clone.source == model.source
        assert [clone(v) for v in VALUES] == [eager(v) for v in VALUES]


def test_a_standard_pickle_taken_inside_a_cloudpickle_dump_is_checked():
    cloudpickle = pytest.importorskip("cloudpickle")

    class Frozen:
        """Holds its model as standard pickle bytes, made while cloudpickle pickles it."""

        def __init__(self, model: symgraph.SymbolicModel) -> None:
            self.model = model

        def __reduce__(self) -> tuple[Any, ...]:
            return (pickle.loads, (pickle.dumps(self.model),))

    with pytest.raises(pickle.PicklingError) as info:
        cloudpickle.dumps(Frozen(lambda_model()))
    assert str(info.value) == lambda_error("wrap(<lambda>)_1", "lambda_code.<locals>.<lambda>", __name__)


# ----------------------------------------------------------------------------- telling the picklers apart


class Probe:
    """Pickles to the name of the pickler that asked for it."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (str, (running_pickler(),))


def test_running_pickler_names_the_pickler():
    assert pickle.loads(pickle.dumps(Probe())) == "pickle"
    assert pickle.loads(pickle._dumps(Probe())) == "pickle"
    assert pickle.loads(ForkingPickler.dumps([Probe()]))[0] == "multiprocessing"
    cloudpickle = pytest.importorskip("cloudpickle")
    assert pickle.loads(cloudpickle.dumps({"k": Probe()}))["k"] == "cloudpickle"
    # A copy of cloudpickle inside another package (joblib.externals.cloudpickle) counts too.
    vendored: dict[str, Any] = {"__name__": "vendor.externals.cloudpickle.cloudpickle", "pickle": pickle}
    exec("def dump(obj):\n    return pickle.dumps(obj)\n", vendored)
    assert pickle.loads(vendored["dump"](Probe())) == "cloudpickle"
    assert running_pickler() == "pickle"  # called outside any pickling


def test_multiprocessing_stores_main_functions_but_refuses_lambdas(of_main):
    func, cls = of_main
    clone = pickle.loads(ForkingPickler.dumps(main_model(func, cls)))
    assert [clone(v) for v in VALUES] == [main_code(direct, v, func, cls) for v in VALUES]
    with pytest.raises(pickle.PicklingError) as info:
        ForkingPickler.dumps(lambda_model())
    assert str(info.value) == lambda_error("wrap(<lambda>)_1", "lambda_code.<locals>.<lambda>", __name__)


SCRIPT = """
import multiprocessing, pickle, sys, json
import symgraph


def quadruple(v):
    return 4 * v


x = symgraph.CustomInput(1)
model = symgraph.SymbolicModel(x, symgraph.add_to_graph(quadruple, x) + 1)

if __name__ == "__main__":
    values = json.loads(sys.argv[1])
    report = {}
    try:
        pickle.dumps(model)
    except pickle.PicklingError as error:
        report["pickle"] = str(error)
    with multiprocessing.get_context(sys.argv[2]).Pool(1) as pool:
        report["pool"] = pool.map(model, values)
    try:
        import cloudpickle
    except ImportError:
        pass
    else:
        report["cloudpickle"] = [pickle.loads(cloudpickle.dumps(model))(v) for v in values]
    print(json.dumps(report))
"""


def test_a_scripts_functions_reach_multiprocessing_children_but_not_a_plain_pickle(tmp_path):
    import multiprocessing

    method = "spawn" if "spawn" in multiprocessing.get_all_start_methods() else "fork"
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(SCRIPT), encoding="utf-8")
    values = [0, 5, -2]
    out = subprocess.run(
        [sys.executable, str(script), json.dumps(values), method],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        cwd=tmp_path,
    )
    report = json.loads(out.stdout)
    eager = [4 * v + 1 for v in values]
    assert report["pickle"] == main_error("step 'wrap(quadruple)_1'", "quadruple", "function")
    assert report["pool"] == eager  # the spawned child ran the script as its __main__
    if "cloudpickle" in report:
        assert report["cloudpickle"] == eager


# ----------------------------------------------------------------------------- dask


def test_dask_tokenizes_a_model_with_a_lambda():
    dask = pytest.importorskip("dask")
    tokenize = pytest.importorskip("dask.base").tokenize

    model, other = lambda_model(), lambda_model()
    x = symgraph.CustomInput(4)
    different = symgraph.SymbolicModel(x, RECORD(lambda v: v * 10 + 2, x) - 3)
    with dask.config.set({"tokenize.ensure-deterministic": True}):  # a failure would raise, not fall back
        token = tokenize(model)
        assert token == tokenize(model) == tokenize(other)
        assert tokenize(different) != token


CLUSTER_TIMEOUT_S = 30


@pytest.fixture
def client(dask_client: Any) -> Any:
    return dask_client


def within_limit(func: Callable[..., Any], *args: Any) -> Any:
    """``func(*args)``, failing instead of hanging if the cluster never answers."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = func(*args)
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(CLUSTER_TIMEOUT_S)
    assert not thread.is_alive(), f"the cluster gave no answer in {CLUSTER_TIMEOUT_S} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def test_a_model_with_a_lambda_runs_on_a_distributed_cluster(client, of_main):
    import os

    func, cls = of_main
    assert os.getpid() not in client.run(os.getpid).values()  # the worker is another process
    for model, eager in ((lambda_model(), lambda v: lambda_code(direct, v)), (main_model(func, cls), None)):
        for v in VALUES:
            expected = eager(v) if eager else main_code(direct, v, func, cls)
            assert client.submit(model, v).result(timeout=CLUSTER_TIMEOUT_S) == expected
    x = symgraph.CustomInput(4)
    on_cluster = symgraph.SymbolicModel(
        x, lambda_code(RECORD, x), executor="dask", executor_options={"scheduler": client}
    )
    for v in VALUES:
        assert within_limit(on_cluster, v) == lambda_code(direct, v)
