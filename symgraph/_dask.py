"""The ``dask`` executor: a plan over any Python objects runs as a dask task graph.

Each step becomes one task, so steps that do not depend on each other run in
parallel: on dask's threaded scheduler by default, on the active
``dask.distributed`` client when there is one, or on the scheduler named by the
``scheduler`` option. Every operation and input travels inside an opaque box, so
dask never mistakes a user's tuple or string for a task or a key. On a
distributed cluster the boxes are serialised with cloudpickle, which stores
lambdas and functions of ``__main__`` by value.

dask is imported only when a model asks for this executor.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from symgraph._errors import ExecutorError
from symgraph._executors import Runner, check_options
from symgraph._ops import Operation
from symgraph._plan import Plan
from symgraph._templates import Template

__all__ = ["dask_runner"]

_OPTIONS = ("scheduler", "num_workers")
_calls = itertools.count()


class _Box:
    """An object dask passes through untouched; pickled with cloudpickle."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __reduce__(self) -> tuple[Any, ...]:
        import cloudpickle  # type: ignore[import-untyped]

        return _unpickle_box, (cloudpickle.dumps(self.value),)


def _unpickle_box(data: bytes) -> _Box:
    import cloudpickle

    return _Box(cloudpickle.loads(data))


def _unbox(box: _Box) -> Any:
    return box.value


def _run_step(box: _Box, *values: Any) -> Any:
    op: Operation = box.value
    return op.evaluate(values)


def _outputs(box: _Box, *values: Any) -> Any:
    template: Template = box.value
    return template.evaluate(values)


class _DaskRunner:
    """Runs a plan as a task graph; the step tasks are built once, the inputs per call."""

    __slots__ = ("dask", "keys", "n_inputs", "num_workers", "scheduler", "tasks")

    def __init__(self, plan: Plan, dask: Any, scheduler: Any, num_workers: int | None) -> None:
        self.dask = dask
        self.scheduler = scheduler
        self.num_workers = num_workers
        self.n_inputs = len(plan.inputs)
        n_slots = self.n_inputs + len(plan.steps)
        self.keys = [f"symgraph-slot-{s}" for s in range(n_slots)] + ["symgraph-outputs"]
        # Tasks name their arguments by slot here; each call turns slots into that
        # call's keys.
        self.tasks: list[tuple[Any, _Box, tuple[int, ...]]] = [
            (_run_step, _Box(step.op), step.args) for step in plan.steps
        ]
        outputs = sorted(set(plan.outputs.refs()))
        positions = {slot: i for i, slot in enumerate(outputs)}
        template = plan.outputs.map(lambda ref: type(ref)(positions[ref.index]))
        self.tasks.append((_outputs, _Box(template), tuple(outputs)))

    def _get(self) -> tuple[Any, dict[str, Any]]:
        # Looked up at every call, so a distributed client started after the
        # model was built is used too.
        get = self.dask.base.get_scheduler(scheduler=self.scheduler)
        if get is None:
            get = self.dask.threaded.get
        local = get is self.dask.threaded.get or getattr(get, "__module__", "").startswith("dask.")
        extra = {"num_workers": self.num_workers} if self.num_workers is not None and local else {}
        return get, extra

    def __call__(self, *values: Any) -> Any:
        if len(values) != self.n_inputs:
            raise TypeError(f"the plan takes {self.n_inputs} input(s), got {len(values)}")
        get, extra = self._get()
        # Keys unique to this call: a distributed scheduler keeps results by key,
        # and two concurrent calls must not share them.
        prefix = f"{next(_calls)}-"
        keys = [prefix + key for key in self.keys]
        graph: dict[str, Any] = {keys[i]: (_unbox, _Box(value)) for i, value in enumerate(values)}
        for j, (fn, box, args) in enumerate(self.tasks):
            graph[keys[self.n_inputs + j]] = (fn, box, *(keys[s] for s in args))
        return get(graph, keys[-1], **extra)


def dask_runner(plan: Plan, options: Mapping[str, Any]) -> Runner:
    """A runner that computes ``plan`` as a dask task graph.

    Options:
        scheduler: What :func:`dask.compute` accepts as ``scheduler``: ``"threads"``,
            ``"processes"``, ``"sync"``, or a ``distributed.Client``. By default the
            active distributed client, else the threaded scheduler.
        num_workers: Worker count of a local scheduler.

    Raises:
        ExecutorError: dask is not installed, or the scheduler is unknown.
        TypeError: an option is unknown or malformed.
    """
    check_options("dask", options, _OPTIONS)
    num_workers = options.get("num_workers")
    if num_workers is not None and (type(num_workers) is not int or num_workers < 1):
        raise TypeError(f"executor 'dask': num_workers must be a positive int, got {num_workers!r}")
    try:
        import dask
        import dask.base
        import dask.threaded
    except ImportError as exc:
        raise ExecutorError("the 'dask' executor needs dask: pip install 'symgraph[dask]'") from exc
    scheduler = options.get("scheduler")
    if scheduler is not None:
        try:
            dask.base.get_scheduler(scheduler=scheduler)  # type: ignore[no-untyped-call]
        except Exception as exc:
            raise ExecutorError(f"the 'dask' executor cannot use scheduler {scheduler!r}: {exc}") from exc
    return _DaskRunner(plan, dask, scheduler, num_workers)
