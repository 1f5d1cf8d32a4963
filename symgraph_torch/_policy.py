"""How generated code runs a torch model: the plugin's code generation policy.

* Tensor constants (a model's parameters and buffers) are read from the model's
  ``_parameters`` and ``_buffers`` dicts at every call, which the replay takes as
  leading arguments: ``.to()``, ``load_state_dict`` and
  ``torch.func.functional_call`` change the entries of those dicts in place, and
  the generated code sees what they put there.
* Layers are called through ``_call_impl``, as ``Module.__call__`` does, or their
  ``forward`` directly after :func:`~symgraph_torch.optimize_module_calls`.
* With fast paths on, ``nn.Linear`` calls are written as ``F.linear`` on the
  layer's parameters behind a guard (see :mod:`symgraph_torch._inline`), and a
  prologue sends the whole call down a version without fast paths while global
  hooks, a patched ``Linear.forward`` or ``torch.jit.trace`` are active.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.modules import module as torch_module

from symgraph.plugin import CodegenPolicy, Const, EmitContext, Operation, Plan, Template, check_options, compile_plan
from symgraph_torch._inline import inline_layer_call, inlining_allowed
from symgraph_torch._tracing import SKIP_INPUT_CHECKS, ModuleCall, NestedModelCall, bound_call

__all__ = ["LiveConstant", "TorchCodegenPolicy", "distinct_tensors", "live_plan", "plan_constants", "tensor_items"]

_PARAMS, _BUFFERS = "params", "buffers"


def tensor_items(value: Any) -> Iterator[torch.Tensor]:
    """Tensors held by a constant, directly or one container level down.

    Example:
        >>> import torch
        >>> t = torch.zeros(1)
        >>> [x is t for x in tensor_items({"a": t, "b": 2})]
        [True]
    """
    if isinstance(value, torch.Tensor):
        yield value
    elif type(value) in (list, tuple, dict):
        yield from (
            item for item in (value.values() if type(value) is dict else value) if isinstance(item, torch.Tensor)
        )


def plan_constants(plan: Plan) -> Iterator[tuple[int, Any]]:
    """``(step index, constant)`` for every constant the plan's operations hold."""
    for j, step in enumerate(plan.steps):
        for template in step.op.templates():
            for value in template.constants():
                yield j, value


def distinct_tensors(plan: Plan) -> list[torch.Tensor]:
    """The tensor constants of a plan, each once, in walk order."""
    seen: dict[int, torch.Tensor] = {}
    for _, value in plan_constants(plan):
        if not isinstance(value, nn.Module):
            for tensor in tensor_items(value):
                seen.setdefault(id(tensor), tensor)
    return list(seen.values())


class LiveConstant(Template):
    """A recorded constant whose tensors are read from the model's dicts at every evaluation.

    The reference interpreter (and any executor that evaluates operations one by
    one) runs plans whose tensor constants are these, so it sees what generated
    code sees: the tensors ``.to()``, ``load_state_dict`` or ``functional_call``
    put in the model's ``_parameters`` and ``_buffers``.

    Args:
        value: The recorded constant: a tensor, or a list, tuple or dict holding some.
        sources: For each tensor in it (by ``id``), the dict and the key to read.
    """

    __slots__ = ("sources", "value")

    def __init__(self, value: Any, sources: Mapping[int, tuple[dict[str, Any], str]]) -> None:
        self.value = value
        self.sources = sources

    def _read(self, item: Any) -> Any:
        source = self.sources.get(id(item)) if isinstance(item, torch.Tensor) else None
        return item if source is None else source[0][source[1]]

    def evaluate(self, values: Sequence[Any]) -> Any:
        value = self.value
        if type(value) is dict:
            return {k: self._read(v) for k, v in value.items()}
        if type(value) in (list, tuple):
            return type(value)(self._read(v) for v in value)
        return self._read(value)

    def __repr__(self) -> str:
        return f"LiveConstant({self.value!r})"


def live_plan(
    plan: Plan, parameters: dict[str, Any], buffers: dict[str, Any], names: Mapping[int, tuple[bool, str]]
) -> Plan:
    """``plan`` with every constant that holds a model tensor turned into a :class:`LiveConstant`."""
    if not names:
        return plan
    sources = {key: (parameters if is_param else buffers, name) for key, (is_param, name) in names.items()}

    def live(const: Const) -> Template:
        found = any(id(t) in sources for t in tensor_items(const.value))
        return LiveConstant(const.value, sources) if found else const

    steps = tuple(
        dataclasses.replace(step, op=step.op.map_templates(lambda t: t.map(const=live))) for step in plan.steps
    )
    return dataclasses.replace(plan, steps=steps)


def _has_hooks(layer: nn.Module) -> bool:
    return bool(
        layer._forward_hooks
        or layer._forward_pre_hooks
        or layer._backward_hooks
        or layer._backward_pre_hooks
        or layer._compiled_call_impl is not None
        or torch_module._global_forward_hooks
        or torch_module._global_forward_pre_hooks
        or torch_module._global_backward_hooks
        or torch_module._global_backward_pre_hooks
    )


def fast_paths_blocked() -> bool:
    """Whether this call must take the version without fast paths (global hooks, jit tracing).

    Example:
        >>> fast_paths_blocked()
        False
    """
    return torch._C._get_tracing_state() is not None or not inlining_allowed()


def _no_kwargs(op: ModuleCall) -> bool:
    return isinstance(op.kwargs, Const) and not op.kwargs.value


def has_fast_paths(plan: Plan) -> bool:
    """Whether some step of ``plan`` has a fast path."""
    return any(
        isinstance(step.op, ModuleCall)
        and type(step.op.layer) is nn.Linear
        and len(step.op.args) == 1
        and _no_kwargs(step.op)
        for step in plan.steps
    )


class TorchCodegenPolicy(CodegenPolicy):
    """The torch model's code generation policy (see the module docstring).

    Args:
        plan: The plan being generated, for the version without fast paths.
        parameters: The model's ``_parameters`` dict.
        buffers: The model's ``_buffers`` dict.
        names: For each tensor constant of the plan (by ``id``), whether it is
            a parameter and its name in the model.
        direct: Call layers' ``forward`` directly (``optimize_module_calls``).
        fast_paths: Write ``nn.Linear`` calls as guarded ``F.linear`` calls.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from symgraph_torch import Input, SymbolicModel
        >>> x = Input((4,))
        >>> model = SymbolicModel(x, nn.Linear(4, 2)(x) * torch.ones(2))
        >>> print(model.source.splitlines()[0])
        def replay(params, buffers, v0):
    """

    leading = (_PARAMS, _BUFFERS)

    def __init__(
        self,
        plan: Plan,
        parameters: dict[str, Any],
        buffers: dict[str, Any],
        names: Mapping[int, tuple[bool, str]],
        *,
        direct: bool,
        fast_paths: bool,
    ) -> None:
        self.plan = plan
        self.parameters = parameters
        self.buffers = buffers
        self.names = names
        self.direct = direct
        self.fast_paths = fast_paths and has_fast_paths(plan)
        self._callers: dict[int, str] = {}

    @classmethod
    def options(cls, executor: str, options: Mapping[str, Any]) -> bool:
        """Validate the options a code-generating executor passes on; returns ``fast_paths``."""
        check_options(executor, options, ("fast_paths",))
        fast = options.get("fast_paths", True)
        if type(fast) is not bool:
            raise TypeError(f"executor {executor!r}: fast_paths must be a bool, got {type(fast).__name__}")
        return fast

    def leading_values(self) -> tuple[Any, ...]:
        return (self.parameters, self.buffers)

    def constant(self, value: Any, ctx: EmitContext) -> str | None:
        if not self.names:
            return None
        if isinstance(value, torch.Tensor):
            found = self.names.get(id(value))
            if found is None:
                return None
            is_param, name = found
            # The names are ours (param_k, constant_k), so they may be written as literals.
            return f"{_PARAMS if is_param else _BUFFERS}[{name!r}]"
        if type(value) in (list, tuple, dict) and any(id(t) in self.names for t in tensor_items(value)):
            if type(value) is dict:
                return "{" + ", ".join(f"{ctx.pool.ref(k)}: {ctx.ref(v)}" for k, v in value.items()) + "}"
            items = [ctx.ref(v) for v in value]
            if type(value) is list:
                return "[" + ", ".join(items) + "]"
            return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
        return None

    def emit(self, op: Operation, args: Sequence[str], ctx: EmitContext) -> str | None:
        if not isinstance(op, ModuleCall):
            return None
        layer = op.layer
        parts = [ctx.template(t, args) for t in op.args]
        if self.fast_paths and _no_kwargs(op):
            fast = inline_layer_call(layer, parts, ctx.pool.ref)
            if fast is not None:
                return fast
        parts = ctx.arguments(op.args, op.kwargs, args)
        if isinstance(op, NestedModelCall):
            parts.append(f"{SKIP_INPUT_CHECKS}=True")
        return f"{self._caller(layer, ctx)}({', '.join(parts)})"

    def _caller(self, layer: nn.Module, ctx: EmitContext) -> str:
        name = self._callers.get(id(layer))
        if name is None:
            fn: Callable[..., Any]
            fn = layer.forward if self.direct and not _has_hooks(layer) else bound_call(layer)
            name = self._callers[id(layer)] = ctx.pool.ref(fn)
        return name

    def prologue(self, ctx: EmitContext, params: Sequence[str]) -> list[str]:
        if not self.fast_paths:
            return []
        normal = TorchCodegenPolicy(
            self.plan, self.parameters, self.buffers, self.names, direct=self.direct, fast_paths=False
        )
        # The version without fast paths, as one compiled function; it takes the
        # same parameters, so the call passes them on unchanged.
        function = compile_plan(self.plan, normal, bind=False)
        return [
            f"if {ctx.pool.ref(fast_paths_blocked)}():",
            f"    return {ctx.pool.ref(function)}({', '.join(params)})",
        ]
