"""The ``dask`` executor: plans over plain Python objects run as dask task graphs.

Every test compares with the oracle: the same plain-Python pipeline run eagerly
(``call`` is a direct call) instead of recorded (``call`` is
``symgraph.add_to_graph`` on ``symgraph.CustomInput`` values).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import operator
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest

dask = pytest.importorskip("dask")

import symgraph  # noqa: E402

# ----------------------------------------------------------------------------- the plain-Python code


def direct(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The eager ``call``: what ``add_to_graph`` records, run at once."""
    return func(*args, **kwargs)


RECORD = symgraph.add_to_graph


@dataclasses.dataclass(frozen=True)
class Item:
    name: str
    price: int


class Basket:
    """A user class of this module (pickled by value on the workers)."""

    def __init__(self, items: list[Item]) -> None:
        self.items = list(items)

    def total(self) -> int:
        return sum(item.price for item in self.items)

    def names(self) -> list[str]:
        return sorted(item.name for item in self.items)

    def __eq__(self, other: object) -> bool:
        return type(other) is Basket and other.items == self.items

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Basket({self.items!r})"


class PipelineError(Exception):
    """The user's own exception type."""


def make_items(prices: dict[str, int], order: dict[str, int]) -> list[Item]:
    for name, count in order.items():
        if count < 0:
            raise PipelineError(f"negative count for {name!r}: {count}")
    return [Item(name, prices[name] * count) for name, count in sorted(order.items())]


def scale(values: list[int], factor: int) -> list[int]:
    return [v * factor for v in values]


def reverse(s: str) -> str:
    return s[::-1]


def stats(d: dict[str, int]) -> dict[str, Any]:
    return {"n": len(d), "keys": tuple(sorted(d))}


def shop(call: Callable[..., Any], order: Any, prices: Any, note: Any) -> dict[str, Any]:
    """Dicts, lists, strings, a dataclass and a user class; independent branches and a join."""
    items = call(make_items, prices, order)
    basket = call(Basket, items)
    label = note.upper() + ": " + call(", ".join, basket.names())
    doubled = call(functools.partial(scale, factor=2), call(list, prices.values()))
    reversed_note = call(reverse, note)
    return {
        "basket": basket,
        "total": basket.total(),
        "label": label,
        "first": items[0],
        "doubled": doubled,
        "stats": call(stats, order),
        "reversed": reversed_note,
        "both": call(tuple, [label, reversed_note]),
    }


SHOP_EXAMPLE = {"order": {"apple": 2, "pear": 1}, "prices": {"apple": 3, "pear": 5, "fig": 7}, "note": "monday"}
SHOP_DATA = [
    {"order": {"fig": 3}, "prices": {"fig": 4, "kiwi": 1}, "note": "tuesday"},
    {"order": {"kiwi": 1, "apple": 0, "fig": 2}, "prices": {"apple": 1, "fig": 2, "kiwi": 9}, "note": "ß"},
]


def shop_model(**model_options: Any) -> symgraph.SymbolicModel:
    """The shop pipeline recorded on ``SHOP_EXAMPLE``, taking its inputs by keyword."""
    inputs = {name: symgraph.CustomInput(value) for name, value in SHOP_EXAMPLE.items()}
    return symgraph.SymbolicModel(inputs, shop(RECORD, **inputs), **model_options)


def chain(call: Callable[..., Any], words: Any, n: Any) -> tuple[Any, ...]:
    """Positional inputs, a tuple of outputs, an input returned as it is, one output twice."""
    counts = call(lambda ws: {w: ws.count(w) for w in ws}, words)
    top = call(lambda c: max(sorted(c), key=c.__getitem__), counts)
    repeated = call(operator.mul, [top], n)
    return (counts, repeated, words, top, repeated)


CHAIN_EXAMPLE = (["a", "b", "a"], 2)
CHAIN_DATA = [(["x", "y", "y"], 3), (["solo"], 1)]

EXECUTORS: dict[str, tuple[str, dict[str, Any]]] = {
    "dask": ("dask", {}),
    "dask-sync": ("dask", {"scheduler": "sync"}),
    "dask-threads": ("dask", {"scheduler": "threads", "num_workers": 3}),
    "codegen": ("codegen", {}),
    "interpreter": ("interpreter", {}),
}
DASK_LOCAL = [name for name in EXECUTORS if name.startswith("dask")]


def assert_same(actual: Any, expected: Any) -> None:
    """Equal, and of the same types all the way down (so a class pickled by value must come back as itself)."""
    assert type(actual) is type(expected), (actual, expected)
    if isinstance(expected, dict):
        assert list(actual) == list(expected)
        for key in expected:
            assert_same(actual[key], expected[key])
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected, strict=True):
            assert_same(a, e)
    else:
        assert actual == expected


# ----------------------------------------------------------------------------- plain objects


@pytest.mark.parametrize("name", EXECUTORS)
def test_plain_object_pipeline_with_keyword_inputs_equals_eager(name):
    executor, options = EXECUTORS[name]
    model = shop_model(executor=executor, executor_options=options)
    assert model.executor == executor
    for data in [SHOP_EXAMPLE, *SHOP_DATA]:
        expected = shop(direct, **data)
        assert_same(model(**data), expected)
        assert_same(model.interpret(**data), expected)


@pytest.mark.parametrize("name", EXECUTORS)
def test_positional_inputs_and_tuple_outputs_equal_eager(name):
    executor, options = EXECUTORS[name]
    words, n = (symgraph.CustomInput(v) for v in CHAIN_EXAMPLE)
    model = symgraph.SymbolicModel((words, n), chain(RECORD, words, n), executor=executor, executor_options=options)
    for data in [CHAIN_EXAMPLE, *CHAIN_DATA]:
        out = model(*data)
        assert_same(out, chain(direct, *data))
        assert out[2] is data[0]  # an input returned as an output is the object passed in


def test_dask_equals_codegen_and_the_interpreter_on_one_model():
    model = shop_model()
    assert model.executor == "codegen"
    for data in SHOP_DATA:
        by_codegen = model(**data)
        results = {"codegen": by_codegen, "interpret": model.interpret(**data)}
        for name in DASK_LOCAL:
            executor, options = EXECUTORS[name]
            model.set_executor(executor, **options)
            assert model.executor == "dask" and model.executor_options == options
            results[name] = model(**data)
        model.set_executor("interpreter")
        results["interpreter"] = model(**data)
        model.set_executor("codegen")
        expected = shop(direct, **data)
        for result in results.values():
            assert_same(result, expected)
            assert_same(result, by_codegen)


def test_repeated_calls_reuse_the_runner_and_stay_independent():
    model = shop_model(executor="dask")
    outs = [model(**data) for data in SHOP_DATA * 3]
    for out, data in zip(outs, SHOP_DATA * 3, strict=True):
        assert_same(out, shop(direct, **data))


# ----------------------------------------------------------------------------- parallelism

BRANCHES = 4


def meet(barrier: threading.Barrier, i: int) -> tuple[int, int, int]:
    """Wait until every branch has arrived: only branches that run at the same time get past."""
    barrier.wait()
    return i * i, threading.get_ident(), os.getpid()


def branches(call: Callable[..., Any], x: Any, barrier: Any, n: int) -> dict[str, Any]:
    met = [call(meet, barrier, x + i) for i in range(n)]
    squares = [call(operator.itemgetter(0), m) for m in met]
    return {"sum": call(sum, squares), "met": call(list, met)}


def barrier_model(n: int, **model_options: Any) -> symgraph.SymbolicModel:
    # Recorded with a barrier of one party (the recording runs each call once, in turn).
    x, barrier = symgraph.CustomInput(1), symgraph.CustomInput(threading.Barrier(1))
    return symgraph.SymbolicModel((x, barrier), branches(RECORD, x, barrier, n), **model_options)


def test_independent_steps_run_concurrently_on_the_threaded_scheduler():
    model = barrier_model(BRANCHES, executor="dask", executor_options={"scheduler": "threads", "num_workers": BRANCHES})
    for x in (3, 10):
        # Run one at a time, the first wait would time out with BrokenBarrierError.
        out = model(x, threading.Barrier(BRANCHES, timeout=30))
        assert out["sum"] == branches(direct, x, threading.Barrier(1), BRANCHES)["sum"]
        assert len({ident for _, ident, _ in out["met"]}) == BRANCHES  # one thread per branch


def test_the_default_scheduler_is_dasks_thread_pool():
    parties = min(BRANCHES, dask.system.CPU_COUNT)
    if parties < 2:
        pytest.skip("dask's default thread pool has a single thread here")
    model = barrier_model(parties, executor="dask")
    out = model(5, threading.Barrier(parties, timeout=30))
    assert out["sum"] == branches(direct, 5, threading.Barrier(1), parties)["sum"]
    assert {pid for _, _, pid in out["met"]} == {os.getpid()}  # threads of this process, no cluster


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("name", DASK_LOCAL)
def test_a_failing_step_raises_the_users_exception(name):
    executor, options = EXECUTORS[name]
    model = shop_model(executor=executor, executor_options=options)
    bad = {**SHOP_DATA[0], "order": {"fig": -2}}
    with pytest.raises(PipelineError) as eager:
        shop(direct, **bad)
    with pytest.raises(PipelineError, match="negative count for 'fig': -2") as replayed:
        model(**bad)
    assert str(replayed.value) == str(eager.value)
    with pytest.raises(KeyError, match="kiwi"):  # a built-in exception, raised by the step as well
        model(**{**SHOP_DATA[0], "order": {"kiwi": 1}, "prices": {}})


def test_unknown_options_are_refused_by_name():
    with pytest.raises(TypeError, match=r"executor 'dask' takes no option 'workers'.*'scheduler', 'num_workers'"):
        shop_model(executor="dask", executor_options={"workers": 2})
    model = shop_model(executor="dask")
    with pytest.raises(TypeError, match="no option 'sheduler'"):
        model.set_executor("dask", sheduler="sync")
    assert model.executor == "dask" and model.executor_options == {}  # unchanged


@pytest.mark.parametrize("num_workers", [0, -1, 2.0, "2", True])
def test_num_workers_must_be_a_positive_int(num_workers):
    with pytest.raises(TypeError, match="num_workers must be a positive int"):
        shop_model(executor="dask", executor_options={"num_workers": num_workers})


@pytest.mark.parametrize("scheduler", ["bogus", 42, object()])
def test_an_unknown_scheduler_is_an_executor_error(scheduler):
    with pytest.raises(symgraph.ExecutorError, match="the 'dask' executor cannot use scheduler"):
        shop_model(executor="dask", executor_options={"scheduler": scheduler})
    model = shop_model()
    with pytest.raises(symgraph.ExecutorError):
        model.set_executor("dask", scheduler=scheduler)
    assert model.executor == "codegen"  # the model keeps running as before
    assert_same(model(**SHOP_DATA[0]), shop(direct, **SHOP_DATA[0]))


def test_the_distributed_scheduler_without_a_client_is_an_executor_error():
    distributed = pytest.importorskip("distributed")
    try:
        distributed.default_client()
    except ValueError:
        pass
    else:
        pytest.skip("a distributed client is active")
    with pytest.raises(symgraph.ExecutorError, match="no Client active"):
        shop_model(executor="dask", executor_options={"scheduler": "distributed"})


def test_without_dask_the_executor_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask", None)  # `import dask` now raises ImportError
    with pytest.raises(symgraph.ExecutorError, match=r"pip install 'symgraph-py\[dask\]'") as info:
        shop_model(executor="dask")
    assert isinstance(info.value.__cause__, ImportError)
    with pytest.warns(symgraph.ExecutorFallbackWarning, match=r"symgraph-py\[dask\]"):
        model = shop_model(executor="dask", executor_options={"fallback": "codegen"})
    assert model.executor == "codegen"
    assert_same(model(**SHOP_DATA[1]), shop(direct, **SHOP_DATA[1]))


def test_without_dask_in_a_fresh_process():
    code = (
        "import sys\n"
        "sys.modules['dask'] = None\n"
        "import symgraph\n"
        "x = symgraph.CustomInput([1])\n"
        "assert symgraph.SymbolicModel(x, x + [2])([0]) == [0, 2]\n"
        "try:\n"
        "    symgraph.SymbolicModel(x, x + [2], executor='dask')\n"
        "except symgraph.ExecutorError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert "pip install 'symgraph-py[dask]'" in out.stdout


# ----------------------------------------------------------------------------- values dask must not interpret


def tag(value: Any, constant: Any) -> tuple[Any, Any]:
    return (value, constant)


def looks_like_a_task(value: Any) -> tuple[Any, ...]:
    return (len, value)


# Values dask would read as tasks ((callable, args...)), as keys of the graph
# (the runner's slot and output keys, with and without a call's prefix), or as
# containers of them.
TRICKY = [
    (operator.add, 1, 2),
    (sum, [(len, "abc")]),
    "symgraph-slot-0",
    "symgraph-slot-1",
    "0-symgraph-slot-0",
    "1-symgraph-slot-1",
    "symgraph-outputs",
    ["symgraph-slot-0", (operator.neg, "symgraph-slot-1")],
    {"symgraph-slot-0": (operator.neg, 5), "symgraph-outputs": "symgraph-slot-0"},
    ("symgraph-slot-0",),
]
CONSTANTS = [(operator.add, 1, 2), "symgraph-slot-0", ["0-symgraph-slot-1"], {"k": (len, "symgraph-outputs")}]


def tricky_model(example: Any, **model_options: Any) -> symgraph.SymbolicModel:
    x = symgraph.CustomInput(example)
    outputs = {
        "same": x,
        "tagged": RECORD(list, [RECORD(tag, x, c) for c in CONSTANTS]),
        "task": RECORD(looks_like_a_task, x),
        "key": RECORD(operator.add, "symgraph-", RECORD(str, RECORD(len, [x]))),
    }
    return symgraph.SymbolicModel(x, outputs, **model_options)


def tricky_eager(value: Any) -> dict[str, Any]:
    return {
        "same": value,
        "tagged": [tag(value, c) for c in CONSTANTS],
        "task": looks_like_a_task(value),
        "key": "symgraph-" + str(len([value])),
    }


@pytest.mark.parametrize("name", DASK_LOCAL)
@pytest.mark.parametrize("value", TRICKY, ids=repr)
def test_values_that_look_like_tasks_or_keys_pass_through_untouched(name, value):
    executor, options = EXECUTORS[name]
    model = tricky_model(value, executor=executor, executor_options=options)
    for data in (value, *TRICKY[:2]):
        out = model(data)
        assert_same(out, tricky_eager(data))
        assert out["same"] is data and out["tagged"][0][0] is data  # not even copied


def test_a_dask_collection_as_an_input_stays_lazy():
    lazy = dask.delayed(sum)([1, 2])
    model = tricky_model(lazy, executor="dask")
    out = model(lazy)
    assert out["same"] is lazy and out["task"] == (len, lazy)


def test_keys_are_unique_across_processes():
    """Two processes (two clients of one cluster, say) must not name their tasks alike."""
    code = (
        "import json, dask, symgraph\n"
        "def record_keys(graph, keys, **kwargs):\n"
        "    print(json.dumps(sorted(map(str, graph))))\n"
        "    return dask.get(graph, keys)\n"
        "x = symgraph.CustomInput(1)\n"
        "model = symgraph.SymbolicModel(x, x + 1, executor='dask', executor_options={'scheduler': record_keys})\n"
        "assert model(41) == 42\n"
    )
    runs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    keys = []
    for run in runs:
        stdout, _ = run.communicate(timeout=120)
        assert run.returncode == 0
        keys.append(set(json.loads(stdout)))
    assert len(keys[0]) == len(keys[1]) == 3  # the input, the step, the outputs
    assert not keys[0] & keys[1]


# ----------------------------------------------------------------------------- copies


def test_pickled_and_copied_models_keep_the_dask_executor():
    model = shop_model(executor="dask", executor_options={"scheduler": "sync"})
    for clone in (pickle.loads(pickle.dumps(model)), copy.copy(model), copy.deepcopy(model)):
        assert clone.executor == "dask" and clone.executor_options == {"scheduler": "sync"}
        for data in SHOP_DATA:
            assert_same(clone(**data), shop(direct, **data))


# ----------------------------------------------------------------------------- code that leaves the process


def test_the_processes_scheduler_runs_this_modules_code():
    """Worker processes cannot import this test module: its functions and classes travel by value."""
    model = shop_model(executor="dask", executor_options={"scheduler": "processes", "num_workers": 2})
    data = SHOP_DATA[1]
    assert_same(model(**data), shop(direct, **data))


def test_a_pickled_step_loads_where_this_module_cannot_be_imported():
    """This module's code is stored by value, symgraph's own classes by reference."""
    from symgraph._dask import _Box

    model = shop_model()
    op = model.plan.steps[0].op  # make_items(prices, order)
    code = (
        "import pickle, sys\n"
        "box = pickle.loads(sys.stdin.buffer.read())\n"
        "assert not any(name.startswith('tests') for name in sys.modules)\n"
        "import symgraph.plugin\n"
        "assert isinstance(box.value, symgraph.plugin.Operation)  # the installed class, not a copy\n"
        "items = box.value.evaluate([{'fig': 2}, {'fig': 3}])\n"
        "print(type(items[0]).__module__, type(items[0]).__name__, items[0].price)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=pickle.dumps(_Box(op)),
        capture_output=True,
        check=True,
        timeout=120,
        cwd=os.path.dirname(os.__file__),  # nowhere near this module
    )
    assert out.stdout.decode().split() == [Item.__module__, "Item", "6"]


# ----------------------------------------------------------------------------- dask.distributed
# Last in the module: while the cluster's client is active, it is the default scheduler.

CLUSTER_TIMEOUT_S = 30
_stuck: list[str] = []  # set once the cluster stopped answering: later tests fail at once


@pytest.fixture
def client(dask_client):
    return dask_client


def on_cluster(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``func(*args, **kwargs)``, failing instead of hanging if the cluster never answers.

    A worker that cannot unpickle a task dies, and the scheduler then waits for
    workers forever: without a limit, a regression would hang the test run.
    """
    if _stuck:
        pytest.fail(_stuck[0])
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = func(*args, **kwargs)
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(CLUSTER_TIMEOUT_S)
    if thread.is_alive():
        _stuck.append(f"the cluster stopped answering: no answer in {CLUSTER_TIMEOUT_S} s (did its workers die?)")
        pytest.fail(_stuck[0])
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def where(_: Any) -> tuple[int, str | None]:
    """The process and the worker a step runs on (no worker while recording)."""
    import distributed

    try:
        return os.getpid(), distributed.get_worker().address
    except ValueError:
        return os.getpid(), None


def on_the_cluster(call: Callable[..., Any], x: Any) -> dict[str, Any]:
    """A module function, a lambda and a partial, on values of this module's classes."""
    basket = call(Basket, call(make_items, {"a": 2, "b": 3}, x))
    return {
        "module function": call(make_items, {"a": 2, "b": 3}, x),
        "lambda": call(lambda b: [item.name * item.price for item in b.items], basket),
        "partial": call(functools.partial(scale, factor=10), call(list, x.values())),
        "partial of a lambda": call(functools.partial(lambda b, k: b.total() + k, k=1), basket),
        "basket": basket,
    }


def test_a_model_runs_on_the_active_client_and_equals_eager(client):
    x = symgraph.CustomInput({"a": 1})
    outputs = on_the_cluster(RECORD, x)
    model = symgraph.SymbolicModel(x, {**outputs, "where": RECORD(where, x)}, executor="dask")
    workers = client.run(os.getpid)  # address -> pid
    assert os.getpid() not in workers.values()
    for data in ({"a": 1}, {"b": 2, "a": 3}):
        out = on_cluster(model, data)
        pid, address = out.pop("where")
        assert workers[address] == pid  # the step ran on a worker of the cluster
        assert_same(out, on_the_cluster(direct, data))


@pytest.mark.parametrize("how", ["client", "distributed"])
def test_the_cluster_named_as_scheduler(client, how):
    scheduler = client if how == "client" else how
    model = shop_model(executor="dask", executor_options={"scheduler": scheduler})
    for data in SHOP_DATA:
        assert_same(on_cluster(model, **data), shop(direct, **data))


def test_plain_object_pipelines_on_the_cluster(client):
    model = shop_model(executor="dask")
    for data in SHOP_DATA:
        assert_same(on_cluster(model, **data), shop(direct, **data))
    words, n = (symgraph.CustomInput(v) for v in CHAIN_EXAMPLE)
    positional = symgraph.SymbolicModel((words, n), chain(RECORD, words, n), executor="dask")
    for data in CHAIN_DATA:
        assert_same(on_cluster(positional, *data), chain(direct, *data))


def test_a_failing_step_on_the_cluster_raises_the_users_exception(client):
    model = shop_model(executor="dask")
    with pytest.raises(PipelineError, match="negative count for 'fig': -2"):
        on_cluster(model, **{**SHOP_DATA[0], "order": {"fig": -2}})
    assert_same(on_cluster(model, **SHOP_DATA[0]), shop(direct, **SHOP_DATA[0]))  # the cluster is fine afterwards


def test_a_model_inside_a_step_travels_with_its_lambda(client):
    # The step's box is cloudpickled, and with it the inner model, whose lambda
    # the standard pickler refuses: cloudpickle stores it by value.
    y = symgraph.CustomInput(2)
    inner = symgraph.SymbolicModel(y, RECORD(lambda v: [v] * 2, y))
    x = symgraph.CustomInput("ab")
    model = symgraph.SymbolicModel(x, RECORD(inner, RECORD(len, x)), executor="dask")
    with pytest.raises(pickle.PicklingError, match=r"step 'wrap\(<lambda>\)_1' uses .*<lambda>"):
        pickle.dumps(model)
    for data in ("", "xyz"):
        assert_same(on_cluster(model, data), [len(data)] * 2)


@pytest.mark.parametrize("value", TRICKY, ids=repr)
def test_tricky_values_pass_through_the_cluster(client, value):
    model = tricky_model(value, executor="dask")
    assert_same(on_cluster(model, value), tricky_eager(value))


class Ticket:
    """A value that pickles differently every time (its state holds a serial number), as some caches do."""

    serials = iter(range(10**9))

    def __init__(self, n: int) -> None:
        self.n = n

    def __reduce__(self) -> tuple[Any, ...]:
        return (Ticket, (self.n,), {"serial": next(Ticket.serials)})

    def __setstate__(self, state: dict[str, int]) -> None:
        pass

    def __eq__(self, other: object) -> bool:
        return type(other) is Ticket and other.n == self.n

    __hash__ = None  # type: ignore[assignment]


def punch(ticket: Ticket) -> Ticket:
    return Ticket(ticket.n + 1)


def test_values_that_pickle_differently_each_time_reach_the_cluster(client):
    # dask.distributed hashes a graph by pickling what has no dask token, and
    # refuses values whose pickles differ; boxes carry a token of their own.
    t = symgraph.CustomInput(Ticket(0))
    model = symgraph.SymbolicModel(t, {"same": t, "punched": RECORD(punch, t)}, executor="dask")
    assert pickle.dumps(Ticket(1)) != pickle.dumps(Ticket(1))
    assert_same(on_cluster(model, Ticket(1)), {"same": Ticket(1), "punched": Ticket(2)})


def test_concurrent_calls_on_the_cluster_get_their_own_results(client):
    words, n = (symgraph.CustomInput(v) for v in CHAIN_EXAMPLE)
    model = symgraph.SymbolicModel((words, n), chain(RECORD, words, n), executor="dask")
    inputs = [([f"w{i}", "z", f"w{i}"], i + 1) for i in range(6)]
    results: dict[int, Any] = {}

    def run(i: int) -> None:
        results[i] = model(*inputs[i])

    if _stuck:
        pytest.fail(_stuck[0])
    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(CLUSTER_TIMEOUT_S)
        assert not t.is_alive(), "no answer from the cluster"
    for i, data in enumerate(inputs):
        assert_same(results[i], chain(direct, *data))
