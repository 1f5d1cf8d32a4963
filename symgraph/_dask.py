"""The ``dask`` executor: a plan over any Python objects runs as a dask task graph.

Each step becomes one task, so steps that do not depend on each other run in
parallel: on dask's threaded scheduler by default, on the active
``dask.distributed`` client when there is one, or on the scheduler named by the
``scheduler`` option. Every operation and input travels inside an opaque box, so
dask never mistakes a user's tuple or string for a task or a key, and never
pickles a value just to hash it. Task keys carry a random token per call, so
that calls from any number of threads, processes or clients of one cluster
never share a key.

Boxes that leave the process (to a ``dask.distributed`` cluster or the
``processes`` scheduler) are serialised with cloudpickle, which stores lambdas,
nested functions and whatever ``__main__`` defines by value: their code travels
with them. symgraph adds one rule. A function or class is stored by reference
(its module and name, imported again on the worker) only when its module comes
with Python or from an installed distribution: the standard library, a
site-packages folder, or the package folders of an editable install. Those of
any other module are stored by value too, since a worker may be unable to
import them: a test module (pytest's ``importlib`` mode imports it under a name
no worker can import), a module next to a script or in the working directory,
a module made at runtime. So a model built in a test module or a notebook runs
on a cluster whose workers have only the installed packages, and the instances,
results and exceptions of such classes come back to the caller as the caller's
own classes (cloudpickle tracks classes it stores by value).

dask is imported only when a model asks for this executor.
"""

from __future__ import annotations

import functools
import io
import json
import os
import sys
import sysconfig
import threading
import types
import uuid
from collections.abc import Mapping
from importlib import metadata
from typing import Any
from urllib.parse import unquote, urlparse

from symgraph._errors import ExecutorError
from symgraph._executors import Runner, check_options
from symgraph._ops import Operation
from symgraph._plan import Plan
from symgraph._templates import Template

__all__ = ["dask_runner"]

_OPTIONS = ("scheduler", "num_workers")


# ----------------------------------------------------------------------------- what workers can import


def _inside(path: str, folders: tuple[str, ...]) -> bool:
    return any(path == folder or path.startswith(folder + os.sep) for folder in folders)


@functools.cache
def _install_folders() -> tuple[str, ...]:
    """The standard library's and the site-packages folders of this interpreter."""
    paths = sysconfig.get_paths()
    names = ("stdlib", "platstdlib", "purelib", "platlib")
    return tuple(sorted({os.path.realpath(paths[name]) for name in names if paths.get(name)}))


@functools.cache
def _editable_projects() -> dict[str, tuple[str, ...]]:
    """Top-level package name -> project folders of the editable installs (``pip install -e``) providing it."""
    found: dict[str, set[str]] = {}
    for dist in metadata.distributions():
        try:
            info = json.loads(dist.read_text("direct_url.json") or "{}")
            editable = isinstance(info, dict) and bool((info.get("dir_info") or {}).get("editable"))
            url = str(info.get("url", "")) if editable else ""
        except (OSError, ValueError, AttributeError):
            continue
        if not url.startswith("file:"):
            continue
        project = os.path.realpath(unquote(urlparse(url).path))
        # The distribution's own packages only: other modules in the project folder
        # (its tests, say) are not made importable by the install.
        tops = (dist.read_text("top_level.txt") or "").split()
        if not tops:
            tops = [str(dist.metadata["Name"] or "").replace("-", "_").replace(".", "_").lower()]
        for top in tops:
            found.setdefault(top, set()).add(project)
    return {top: tuple(sorted(projects)) for top, projects in found.items()}


@functools.cache
def _importable_everywhere(name: str, path: str | None) -> bool:
    """Whether a worker with this environment's packages can import the module ``name`` (at ``path``)."""
    top = name.partition(".")[0]
    if name == "__main__":
        return False
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return True
    if path is None:  # made at runtime, or a namespace package
        return False
    path = os.path.realpath(path)
    return _inside(path, _install_folders()) or _inside(path, _editable_projects().get(top, ()))


def _needs_value(module: types.ModuleType) -> bool:
    path = getattr(module, "__file__", None)
    return not _importable_everywhere(module.__name__, path if isinstance(path, str) else None)


@functools.cache
def _pickler() -> Any:
    """A cloudpickle pickler that stores by value what workers may be unable to import (see the module doc)."""
    import cloudpickle  # type: ignore[import-untyped]

    class Pickler(cloudpickle.Pickler):  # type: ignore[misc]
        def __init__(self, file: Any, added: list[types.ModuleType]) -> None:
            super().__init__(file)
            self.added = added
            self.checked: set[str] = set()

        def reducer_override(self, obj: Any) -> Any:
            if isinstance(obj, (type, types.FunctionType)):
                name = getattr(obj, "__module__", None)
                if isinstance(name, str) and name not in self.checked:
                    self.checked.add(name)
                    module = sys.modules.get(name)
                    if (
                        module is not None
                        and name not in cloudpickle.list_registry_pickle_by_value()
                        and _needs_value(module)
                    ):
                        cloudpickle.register_pickle_by_value(module)
                        self.added.append(module)
            return super().reducer_override(obj)

    return Pickler


# cloudpickle keeps the modules it pickles by value in one global registry; a
# module is registered for the length of one dump, and dumps take turns.
_pickling = threading.RLock()


def _dumps(value: Any) -> bytes:
    import cloudpickle

    with _pickling:
        added: list[types.ModuleType] = []
        buffer = io.BytesIO()
        try:
            _pickler()(buffer, added).dump(value)
        finally:
            for module in added:
                cloudpickle.unregister_pickle_by_value(module)
        return buffer.getvalue()


class _Box:
    """An object dask passes through untouched; pickled with cloudpickle."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __reduce__(self) -> tuple[Any, ...]:
        return _unpickle_box, (_dumps(self.value),)

    def __dask_tokenize__(self) -> tuple[str, int]:
        # dask.distributed hashes a graph before sending it, by pickling whatever
        # has no token, and refuses values that do not pickle the same twice. The
        # keys are unique to each call already, so the graph's hash is too.
        return ("symgraph-box", id(self))


def _unpickle_box(data: bytes) -> _Box:
    import cloudpickle

    return _Box(cloudpickle.loads(data))


def _unbox(box: _Box) -> Any:
    return box.value


def _run_step(box: _Box, *values: Any) -> Any:
    op: Operation
    op, name = box.value
    return op.evaluate_step(values, name)


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
        # Completed per call by a token. Keys that start with the same words share a
        # task prefix on a distributed scheduler, which keeps one, with its timings,
        # per prefix for good.
        self.keys = [f"symgraph-slot-{s}-" for s in range(n_slots)] + ["symgraph-outputs-"]
        # Tasks name their arguments by slot here; each call turns slots into that
        # call's keys.
        self.tasks: list[tuple[Any, _Box, tuple[int, ...]]] = [
            (_run_step, _Box((step.op, step.name)), step.args) for step in plan.steps
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
        extra: dict[str, Any] = {"num_workers": self.num_workers} if self.num_workers is not None and local else {}
        processes = sys.modules.get("dask.multiprocessing")
        if processes is not None and get is processes.get:
            # Step results travel between the worker processes unboxed, pickled by
            # dask's own cloudpickle: by reference, even for classes of modules the
            # workers cannot import. The rule of the boxes applies to them too.
            extra["func_dumps"] = _dumps
        return get, extra

    def __call__(self, *values: Any) -> Any:
        if len(values) != self.n_inputs:
            raise TypeError(f"the plan takes {self.n_inputs} input(s), got {len(values)}")
        get, extra = self._get()
        # Keys unique to this call: a distributed scheduler keeps results by key,
        # and no two calls, whichever process or client makes them, may share one.
        token = uuid.uuid4().hex
        keys = [key + token for key in self.keys]
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
        raise ExecutorError("the 'dask' executor needs dask: pip install 'symgraph-py[dask]'") from exc
    scheduler = options.get("scheduler")
    if scheduler is not None:
        try:
            dask.base.get_scheduler(scheduler=scheduler)  # type: ignore[no-untyped-call]
        except Exception as exc:
            raise ExecutorError(f"the 'dask' executor cannot use scheduler {scheduler!r}: {exc}") from exc
    return _DaskRunner(plan, dask, scheduler, num_workers)
