"""The ``compile`` executor: ``torch.compile`` over a model's generated forward.

``SymbolicModel(inputs, outputs, executor="compile")`` generates the model's
straight-line forward as the ``codegen`` executor does, and hands that function
to ``torch.compile``; ``forward`` then calls the compiled function. Options
(``backend``, ``mode``, ``fullgraph``, ``dynamic``, ``options``) go to
``torch.compile`` unchanged.

Three choices shape the runner:

* The forward is generated without the layers' fast paths: dynamo traces
  layer calls itself, and the fast paths' guards would only add graph guards.
* The model's parameter and buffer dicts are passed to the compiled function at
  every call instead of being baked into it, so ``.to()``, ``load_state_dict``
  and ``torch.func.functional_call`` reach the compiled code as they reach the
  generated one.
* Dimension 0 of each input with an unknown batch (``Input(shape)`` without a
  batch size) is marked with ``torch._dynamo.maybe_mark_dynamic`` before each
  call, so a new batch size reuses the compiled graph instead of compiling
  another (batch sizes 0 and 1 still get their own, as torch specialises them).
  ``dynamic=False`` turns this off.

Compilation itself happens at the first call, as with any ``torch.compile``;
building the model only checks that ``torch.compile`` can run here.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from symgraph_torch import Input, SymbolicModel
    >>> x = Input((4,))
    >>> model = SymbolicModel(x, nn.Linear(4, 2)(x).relu(), executor="compile",
    ...                       executor_options={"backend": "eager"})
    >>> model.executor, model(torch.rand(3, 4)).shape
    ('compile', torch.Size([3, 2]))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from symgraph import ExecutorError
from symgraph.plugin import Executor, Plan, Runner, check_options, compile_plan
from symgraph_torch._model import DetachedSymbolicModel
from symgraph_torch._tensor import ShapeCheck

__all__ = ["COMPILE", "CompileExecutor"]

# The options the executor takes, all passed on to torch.compile.
_OPTIONS = ("backend", "mode", "fullgraph", "dynamic", "options")


def _unsupported_reason() -> str | None:
    """Why ``torch.compile`` cannot run in this process, or ``None`` when it can."""
    if not hasattr(torch, "compile"):
        return f"torch {torch.__version__} has no torch.compile (it needs torch 2.0 or later)"
    try:
        from torch._dynamo import eval_frame

        # The check torch.compile makes at the first call, made at build time and
        # with torch's own reason (the Python version, a free-threaded build, ...).
        check = getattr(eval_frame, "check_if_dynamo_supported", None)
        if check is not None:
            check()
        elif not eval_frame.is_dynamo_supported():
            return "torch._dynamo reports that it is not supported on this platform"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _public_name(cls: type) -> str:
    # symgraph.SymbolicModel rather than symgraph._model.SymbolicModel: the name users import.
    return f"{cls.__module__.partition('.')[0]}.{cls.__qualname__}"


def require_torch_host(executor: str, host: Any) -> DetachedSymbolicModel:
    """``host``, which must be a symgraph_torch model for ``executor`` (it needs the model's parameters and layers).

    Raises:
        ExecutorError: ``host`` is something else (a core model, or no model).

    Example:
        >>> require_torch_host("compile", None)
        Traceback (most recent call last):
        ...
        symgraph.ExecutorError: the 'compile' executor runs symgraph_torch models only, ...
    """
    if not isinstance(host, DetachedSymbolicModel):
        raise ExecutorError(
            f"the {executor!r} executor runs symgraph_torch models only, not "
            f"{'a core symgraph.SymbolicModel or Program' if host is None else _public_name(type(host))}: "
            "build the model with symgraph_torch.SymbolicModel (it needs the model's parameters and "
            "layers), or use executor='codegen'"
        )
    return host


def _free_batch_slots(plan: Plan) -> tuple[int, ...]:
    """The input slots whose dimension 0 is an unknown batch."""
    return tuple(
        i for i, spec in enumerate(plan.inputs) if isinstance(spec.check, ShapeCheck) and spec.check.free_batch
    )


def _runner(
    compiled: Callable[..., Any],
    leading: tuple[Any, ...],
    batch_slots: tuple[int, ...],
    mark: Callable[[Any, int], None],
    compiling: Callable[[], bool],
) -> Runner:
    if not batch_slots:

        def run(*values: Any) -> Any:
            return compiled(*leading, *values)

        return run

    def run_marked(*values: Any) -> Any:
        # Inside an enclosing compiled region (the model compiled again with
        # module.compile(), or nested in a compiled model) dynamo traces this
        # function, and refuses to trace the marking; the outer compile decides.
        if compiling():
            return compiled(*leading, *values)
        for i in batch_slots:
            value = values[i]
            # With check_inputs off anything can arrive here; marking is for tensors
            # that have a dimension 0, and anything else is left to the model to refuse.
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                mark(value, 0)
        return compiled(*leading, *values)

    return run_marked


class CompileExecutor(Executor):
    """Runs a symgraph_torch model's generated forward through ``torch.compile``.

    Registered as ``compile``; see :mod:`symgraph_torch._executors` for how it
    generates, compiles and calls.

    Args:
        name: The name models report (``compile`` for the registered instance).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from symgraph_torch import Input, SymbolicModel
        >>> from symgraph_torch._executors import COMPILE
        >>> x = Input((3,))
        >>> layer = nn.Linear(3, 3)
        >>> model = SymbolicModel(x, layer(x), executor=COMPILE, executor_options={"backend": "eager"})
        >>> data = torch.rand(2, 3)
        >>> torch.allclose(model(data), layer(data))
        True
    """

    def __init__(self, name: str = "compile") -> None:
        super().__init__(name)

    def build(self, plan: Plan, options: Mapping[str, Any], host: Any) -> Runner:
        """A runner calling ``torch.compile`` of the plan's generated code.

        Args:
            plan: The model's plan.
            options: ``backend``, ``mode``, ``fullgraph``, ``dynamic``, ``options``,
                passed to ``torch.compile``.
            host: The model; it must be a symgraph_torch model.

        Raises:
            TypeError: an option is not one ``torch.compile`` takes here.
            ExecutorError: ``host`` is not a symgraph_torch model, or
                ``torch.compile`` cannot run in this process.

        Example:
            >>> import symgraph
            >>> x = symgraph.CustomInput(1)
            >>> symgraph.SymbolicModel(x, x + 1, executor="compile")
            Traceback (most recent call last):
            ...
            symgraph.ExecutorError: the 'compile' executor runs symgraph_torch models only, ...
        """
        check_options(self.name, options, _OPTIONS)
        require_torch_host(self.name, host)
        reason = _unsupported_reason()
        if reason is not None:
            raise ExecutorError(f"the {self.name!r} executor needs torch.compile, which cannot run here: {reason}")
        policy = host.codegen_policy(plan, {"fast_paths": False})
        compiled = torch.compile(compile_plan(plan, policy, bind=False), **options)
        batch_slots = () if options.get("dynamic") is False else _free_batch_slots(plan)
        # Loaded already by the support check; imported here so importing symgraph_torch does not load dynamo.
        from torch._dynamo import maybe_mark_dynamic

        compiling: Callable[[], bool]
        if hasattr(torch, "compiler") and hasattr(torch.compiler, "is_compiling"):
            compiling = torch.compiler.is_compiling
        else:  # torch before 2.3
            from torch._dynamo import is_compiling as compiling
        return _runner(compiled, policy.leading_values(), batch_slots, maybe_mark_dynamic, compiling)


#: The registered ``compile`` executor (entry point ``symgraph.executors:compile``).
COMPILE = CompileExecutor("compile")
