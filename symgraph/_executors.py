"""Executors: the one seam through which a compiled plan runs.

An executor turns a plan into a *runner*, a callable that takes one value per
input slot and returns the outputs. Models never run a plan any other way:
they ask :func:`build_runner` for a runner when they are built, and call it.

Executors are found by name. The built-in ones are ``codegen`` (generated
straight-line Python, the default), ``interpreter`` (the reference interpreter)
and ``dask`` (a dask task graph); plugins add more at runtime with
:func:`register_executor` or through the ``symgraph.executors`` entry-point
group, whose executors are loaded the first time a model asks for them.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from typing import Any, Protocol, runtime_checkable

from symgraph._codegen import CodegenPolicy, generate
from symgraph._compile import compile_generated, step_codes
from symgraph._errors import ExecutorError, ExecutorFallbackWarning
from symgraph._failures import register_replay
from symgraph._interpreter import interpret
from symgraph._location import user_stacklevel
from symgraph._plan import Plan

__all__ = [
    "DEFAULT_EXECUTOR",
    "EXECUTOR_ENTRY_POINT_GROUP",
    "CodegenHost",
    "EvaluationHost",
    "Executor",
    "Runner",
    "available_executors",
    "build_runner",
    "check_options",
    "evaluation_plan",
    "executor_name",
    "options_dict",
    "register_executor",
    "resolve_executor",
]

EXECUTOR_ENTRY_POINT_GROUP = "symgraph.executors"
"""The entry-point group of executors: ``<name> = "<module>:<Executor object>"``."""
DEFAULT_EXECUTOR = "codegen"
"""The executor of models built without ``executor=``: the generated code."""

Runner = Callable[..., Any]
"""What an executor returns: ``runner(*values)``, one value per input slot."""
#: ``factory(plan, options, host)`` returns a runner.
ExecutorFactory = Callable[[Plan, Mapping[str, Any], Any], Runner]


class Executor:
    """A named way of running plans.

    Subclass it and implement :meth:`build`, or hand a plain factory function to
    :func:`register_executor`. An instance can also be passed to a model
    directly (``executor=MyExecutor()``); it must then pickle, for the model to.

    Args:
        name: The executor's name, as models report it.
        factory: ``factory(plan, options, host)`` returning a runner; leave it
            out when a subclass implements :meth:`build`.

    Example:
        >>> import symgraph
        >>> from symgraph.plugin import Executor, interpret
        >>> class Logged(Executor):
        ...     def build(self, plan, options, host):
        ...         return lambda *values: ("ran", interpret(plan, values))
        >>> x = symgraph.CustomInput(2)
        >>> model = symgraph.SymbolicModel(x, x * 5, executor=Logged("logged"))
        >>> model.executor, model(3)
        ('logged', ('ran', 15))
    """

    def __init__(self, name: str, factory: ExecutorFactory | None = None) -> None:
        if type(name) is not str or not name:
            raise TypeError(f"an executor needs a non-empty str name, got {name!r}")
        if factory is not None and not callable(factory):
            raise TypeError(f"executor {name!r}: the factory must be callable, got {type(factory).__name__}")
        self.name = name
        self._factory = factory

    def build(self, plan: Plan, options: Mapping[str, Any], host: Any) -> Runner:
        """A runner for ``plan``.

        Args:
            plan: The plan to run.
            options: The model's ``executor_options``; reject unknown ones with
                :func:`check_options`.
            host: The model asking, or ``None``. Backends pass their model, which
                may provide more (a torch model is a :class:`CodegenHost`).

        Raises:
            ExecutorError: the executor cannot run this plan here; say why.
        """
        if self._factory is None:
            raise NotImplementedError(f"executor {self.name!r} implements neither build() nor a factory")
        return self._factory(plan, options, host)

    def __repr__(self) -> str:
        return f"<symgraph executor {self.name!r}>"


@runtime_checkable
class CodegenHost(Protocol):
    """A model that steers code generation (the torch plugin's models are).

    Executors that generate code ask such a host for the policy to generate
    with; other hosts get the default :class:`~symgraph.plugin.CodegenPolicy`.
    """

    def codegen_policy(self, plan: Plan, options: Mapping[str, Any]) -> CodegenPolicy:
        """The policy for ``plan`` of this model; ``options`` may choose between variants."""
        ...


@runtime_checkable
class EvaluationHost(Protocol):
    """A model whose generated code reads some constants at call time (the torch plugin's do).

    Executors that evaluate operations one by one, rather than running
    generated code, run the plan this host returns instead, so that they see
    the same values: a torch model's parameters and buffers as ``.to()`` or
    ``functional_call`` left them, not as they were recorded.
    """

    def evaluation_plan(self, plan: Plan) -> Plan:
        """``plan`` with the constants that the host's generated code reads at call time read likewise."""
        ...


def evaluation_plan(host: Any, plan: Plan) -> Plan:
    """The plan to evaluate step by step for ``host``: its own, for an :class:`EvaluationHost`.

    Example:
        >>> import symgraph
        >>> from symgraph.plugin import build_plan
        >>> x = symgraph.CustomInput(1)
        >>> plan = build_plan(x, x + 1)[0]
        >>> evaluation_plan(None, plan) is plan
        True
    """
    return host.evaluation_plan(plan) if isinstance(host, EvaluationHost) else plan


def check_options(executor: str, options: Mapping[str, Any], allowed: Sequence[str]) -> None:
    """Refuse option names an executor does not take, naming the ones it does.

    Raises:
        TypeError: an option is not in ``allowed``.

    Example:
        >>> check_options("codegen", {"speed": 1}, ())
        Traceback (most recent call last):
        ...
        TypeError: executor 'codegen' takes no option 'speed' (it takes none)
    """
    for key in options:
        if key not in allowed:
            takes = ", ".join(map(repr, allowed)) if allowed else "none"
            raise TypeError(f"executor {executor!r} takes no option {key!r} (it takes {takes})")


def policy_for(host: Any, plan: Plan, options: Mapping[str, Any], executor: str) -> CodegenPolicy:
    """The code generation policy a host asks for; the default one, taking no options, for others."""
    if isinstance(host, CodegenHost):
        return host.codegen_policy(plan, options)
    check_options(executor, options, ())
    return CodegenPolicy()


def compile_plan(plan: Plan, policy: CodegenPolicy, *, bind: bool = True) -> Runner:
    """Generate and compile ``plan`` with ``policy``, binding the policy's leading values.

    With ``bind=False`` the function is returned as compiled, taking the leading
    values as its first arguments.

    Example:
        >>> import symgraph
        >>> from symgraph.plugin import CodegenPolicy, build_plan
        >>> x = symgraph.CustomInput(1)
        >>> compile_plan(build_plan(x, x + 1)[0], CodegenPolicy())(41)
        42
    """
    code = generate(plan, policy)
    function = compile_generated(code)
    for runs, first, end in step_codes(function, code):
        # Each piece's code maps only its own lines: a failure's frame is the piece's.
        steps = plan if (first, end) == (0, len(plan.steps)) else dataclasses.replace(plan, steps=plan.steps[first:end])
        register_replay(runs, steps, code.lines[first:end])
    if not bind:
        return function
    leading = policy.leading_values()
    # A partial is a C-level call; it adds next to nothing to a replay.
    return functools.partial(function, *leading) if leading else function


def _codegen(plan: Plan, options: Mapping[str, Any], host: Any) -> Runner:
    return compile_plan(plan, policy_for(host, plan, options, "codegen"))


class _Interpreted:
    """A runner that hands every call to the reference interpreter."""

    __slots__ = ("plan",)

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def __call__(self, *values: Any) -> Any:
        return interpret(self.plan, values)


def _interpreter(plan: Plan, options: Mapping[str, Any], host: Any) -> Runner:
    check_options("interpreter", options, ())
    return _Interpreted(evaluation_plan(host, plan))


def _dask(plan: Plan, options: Mapping[str, Any], host: Any) -> Runner:
    from symgraph._dask import dask_runner  # imports dask only when a model asks for it

    return dask_runner(evaluation_plan(host, plan), options)


_lock = threading.RLock()
_executors: dict[str, Executor] = {}
_entry_points: dict[str, metadata.EntryPoint] | None = None


def _declared() -> dict[str, metadata.EntryPoint]:
    global _entry_points
    if _entry_points is None:
        _entry_points = {ep.name: ep for ep in metadata.entry_points(group=EXECUTOR_ENTRY_POINT_GROUP)}
    return _entry_points


def _as_executor(name: str, factory: Any) -> Executor:
    if isinstance(factory, Executor):
        if factory.name != name:
            # A model reports its executor's name, and set_executor(model.executor)
            # must find the same executor again.
            raise ValueError(f"the executor {factory.name!r} cannot be registered as {name!r}: use its own name")
        return factory
    if not callable(factory):
        raise TypeError(
            f"executor {name!r} must be a symgraph.plugin.Executor or a factory(plan, options, host), "
            f"got {type(factory).__name__}"
        )
    return Executor(name, factory)


def executor_state() -> dict[str, Executor]:
    """The registered executors by name, for snapshots."""
    with _lock:
        return dict(_executors)


def set_executor_state(executors: Mapping[str, Executor]) -> None:
    """Put back what :func:`executor_state` returned."""
    with _lock:
        _executors.clear()
        _executors.update(executors)


def register_executor(name: str, factory: ExecutorFactory | Executor, *, replace: bool = False) -> None:
    """Register an executor under ``name``, for models to ask for with ``executor=name``.

    Args:
        name: A non-empty name.
        factory: ``factory(plan, options, host)`` returning a runner (a callable
            taking one value per input slot), or an :class:`Executor`.
        replace: Allow replacing an executor already registered under ``name``.

    Raises:
        TypeError: ``name`` or ``factory`` is malformed.
        ValueError: ``name`` is taken and ``replace`` is false.

    Example:
        >>> import symgraph
        >>> from symgraph.plugin import interpret
        >>> def traced(plan, options, host):
        ...     return lambda *values: interpret(plan, values)
        >>> symgraph.register_executor("traced-doc", traced)
        >>> x = symgraph.CustomInput([1])
        >>> symgraph.SymbolicModel(x, x + [2], executor="traced-doc")([0])
        [0, 2]
    """
    if type(name) is not str or not name:
        raise TypeError(f"register_executor() needs a non-empty str name, got {name!r}")
    executor = _as_executor(name, factory)
    with _lock:
        if name in _executors and not replace:
            raise ValueError(f"an executor named {name!r} is registered already; pass replace=True to replace it")
        _executors[name] = executor


def available_executors() -> tuple[str, ...]:
    """The names of every executor: registered ones and those installed plugins declare.

    Plugins are not imported to list their executors.

    Example:
        >>> import symgraph
        >>> {"codegen", "interpreter", "dask"} <= set(symgraph.available_executors())
        True
    """
    with _lock:
        return tuple(sorted({*_executors, *_declared()}))


def resolve_executor(executor: str | Executor) -> Executor:
    """The executor for a name (loading a plugin's on first use) or the object itself.

    Raises:
        ExecutorError: no executor has that name, or its plugin fails to load.
        TypeError: ``executor`` is neither a name nor an :class:`Executor`.
    """
    if isinstance(executor, Executor):
        return executor
    if type(executor) is not str:
        raise TypeError(f"executor must be a name or a symgraph.plugin.Executor, got {type(executor).__name__}")
    with _lock:
        found = _executors.get(executor)
        if found is not None:
            return found
        ep = _declared().get(executor)
        if ep is None:
            raise ExecutorError(
                f"unknown executor {executor!r}; available: {', '.join(available_executors())}. "
                "Plugins declare more in the 'symgraph.executors' entry-point group"
            )
        try:
            found = _as_executor(executor, ep.load())
        except Exception as exc:
            raise ExecutorError(f"could not load the executor {executor!r} ({ep.value}): {exc}") from exc
        _executors[executor] = found
        return found


def executor_name(executor: str | Executor) -> str:
    """The name a model reports for its executor."""
    return executor if isinstance(executor, str) else executor.name


def options_dict(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """A model's ``executor_options`` as a new dict; ``None`` is no options.

    Raises:
        TypeError: ``options`` is not a mapping (a list of pairs would otherwise
            become options, and an empty list pass as none).

    Example:
        >>> options_dict(None), options_dict({"fallback": "codegen"})
        ({}, {'fallback': 'codegen'})
    """
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(f"executor_options must be a dict, got {type(options).__name__}")
    return dict(options)


def build_runner(
    executor: str | Executor, options: Mapping[str, Any] | None, plan: Plan, host: Any = None
) -> tuple[Executor, Runner]:
    """The executor and its runner for ``plan``, honouring a requested fallback.

    ``options`` may hold ``"fallback"``: the executor to use, with a single
    :class:`~symgraph.ExecutorFallbackWarning` naming the reason, when the one
    asked for raises :class:`~symgraph.ExecutorError`. Without it, the error
    propagates: symgraph never falls back on its own.

    Raises:
        ExecutorError: the executor cannot run, and no fallback was asked for.
        TypeError: ``options`` is not a dict, or holds options the executor does not take.
    """
    options = options_dict(options)
    own = {k: v for k, v in options.items() if k != "fallback"}
    fallback = options.get("fallback")
    if fallback is not None and not isinstance(fallback, (str, Executor)):
        raise TypeError(f"executor_options['fallback'] must be an executor name, got {type(fallback).__name__}")
    try:
        chosen = resolve_executor(executor)
        return chosen, chosen.build(plan, own, host)
    except ExecutorError as exc:
        if fallback is None:
            raise
        warnings.warn(
            f"executor {executor_name(executor)!r} cannot run this model, so it runs on "
            f"{executor_name(fallback)!r} as executor_options['fallback'] asks: {exc}",
            ExecutorFallbackWarning,
            stacklevel=user_stacklevel(),
        )
        chosen = resolve_executor(fallback)
        return chosen, chosen.build(plan, {}, host)


for _name, _factory in (("codegen", _codegen), ("interpreter", _interpreter), ("dask", _dask)):
    register_executor(_name, _factory)
