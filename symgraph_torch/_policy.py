"""How generated code runs a torch model: the plugin's code generation policy.

* Tensor constants (a model's parameters and buffers) are read from the model's
  ``_parameters`` and ``_buffers`` dicts at every call, which the replay takes as
  leading arguments: ``.to()``, ``load_state_dict`` and
  ``torch.func.functional_call`` change the entries of those dicts in place, and
  the generated code sees what they put there.
* Layers are read from the model's ``_modules`` dict at every call (the third
  leading argument, ``modules``), as ``self.layer`` in a hand-written ``forward``
  reads them, so module surgery (``model.Linear_1 = other``,
  ``quantize_dynamic``, ``convert_sync_batchnorm``, wrapping a layer) takes
  effect. They are called as ``layer(...)`` is, or through their ``forward``
  directly after :func:`~symgraph_torch.optimize_module_calls`.
* With fast paths on, the calls of the layers in the fast-path table (Linear,
  convolutions, normalizations, activations, dropout, pooling, Flatten,
  Embedding) are written as their forward's body on the layer's tensors behind
  a guard (see :mod:`symgraph_torch._fast_paths`), and a prologue sends the
  whole call down a version without fast paths while global hooks, a patched
  class ``forward`` or ``__call__``, ``torch.jit.trace`` or ``torch.fx``
  tracing are active.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.modules import module as torch_module

from symgraph.plugin import (
    Call,
    CodegenPolicy,
    Const,
    EmitContext,
    Operation,
    Plan,
    Template,
    check_options,
    compile_plan,
)
from symgraph_torch._fast_paths import fast_path_call, global_guard, has_fast_path
from symgraph_torch._tracing import ModuleCall, NestedModelCall, bound_call, call_nested

__all__ = [
    "LiveConstant",
    "LiveModule",
    "ModelSources",
    "TorchCodegenPolicy",
    "call_nested",
    "distinct_modules",
    "distinct_tensors",
    "live_plan",
    "plan_constants",
    "tensor_items",
]

_PARAMS, _BUFFERS, _MODULES = "params", "buffers", "modules"


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


def distinct_modules(plan: Plan) -> list[nn.Module]:
    """The module constants of a plan (its layers, mostly), each once, in walk order."""
    seen: dict[int, nn.Module] = {}
    for _, value in plan_constants(plan):
        if isinstance(value, nn.Module):
            seen.setdefault(id(value), value)
    return list(seen.values())


def read_module(modules: dict[str, Any], path: tuple[str, ...]) -> Any:
    """The module at ``path`` below a model's ``_modules`` dict, read as attribute access would.

    Raises:
        AttributeError: a part of the path is no longer there (``del model.Linear_1``).

    Example:
        >>> from torch import nn
        >>> outer = nn.Module()
        >>> outer.block = nn.Module()
        >>> outer.block.relu = nn.ReLU()
        >>> read_module(outer._modules, ("block", "relu"))
        ReLU()
    """
    value: Any = None
    for k, part in enumerate(path):
        found = modules.get(part) if k == 0 else getattr(value, "_modules", {}).get(part)
        if found is None:
            # What self.<name> raises in a hand-written forward, with the full path.
            raise AttributeError(
                f"the model has no submodule {'.'.join(path)!r} any more: it was removed or set to None"
            )
        value = found
    return value


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


class LiveModule(Template):
    """A recorded module read from the model's ``_modules`` at every evaluation.

    The interpreter's counterpart of the generated code's ``modules[...]``: after
    ``model.Linear_1 = other``, both call ``other``.

    Args:
        modules: The model's ``_modules`` dict.
        path: The module's name in the model, split at dots.
        nested: A symbolic model called from the enclosing graph: it skips its
            input checks (see :class:`~symgraph_torch._tracing.NestedModelCall`).
    """

    __slots__ = ("modules", "nested", "path")

    def __init__(self, modules: dict[str, Any], path: tuple[str, ...], nested: bool = False) -> None:
        self.modules = modules
        self.path = path
        self.nested = nested

    def evaluate(self, values: Sequence[Any]) -> Any:
        module = read_module(self.modules, self.path)
        return functools.partial(call_nested, module) if self.nested else module

    def __repr__(self) -> str:
        return f"LiveModule({'.'.join(self.path)!r})"


@dataclasses.dataclass(frozen=True)
class ModelSources:
    """Where a model's generated code and its interpreter read tensors and layers at every call.

    Attributes:
        parameters: The model's ``_parameters`` dict.
        buffers: The model's ``_buffers`` dict.
        names: For each tensor constant of the plan (by ``id``), whether it is a
            parameter and its name in the model.
        modules: The model's ``_modules`` dict, or ``None`` to call layers as recorded.
        layer_paths: For each registered layer (by ``id``), its path among the submodules.

    Example:
        >>> ModelSources({}, {}, {}).modules is None
        True
    """

    parameters: dict[str, Any]
    buffers: dict[str, Any]
    names: Mapping[int, tuple[bool, str]]
    modules: dict[str, Any] | None = None
    layer_paths: Mapping[int, tuple[str, ...]] | None = None


def live_plan(plan: Plan, model: ModelSources) -> Plan:
    """``plan`` reading tensors and layers from the model, as its generated code does.

    Every constant that holds a model tensor becomes a :class:`LiveConstant`, and
    every registered module (and the layer of every module call) a :class:`LiveModule`.
    """
    parameters, buffers, names, modules = model.parameters, model.buffers, model.names, model.modules
    paths = model.layer_paths or {}
    if not names and not paths:
        return plan
    sources = {key: (parameters if is_param else buffers, name) for key, (is_param, name) in names.items()}

    def live(const: Const) -> Template:
        if modules is not None and isinstance(const.value, nn.Module) and id(const.value) in paths:
            return LiveModule(modules, paths[id(const.value)])
        found = any(id(t) in sources for t in tensor_items(const.value))
        return LiveConstant(const.value, sources) if found else const

    def live_op(op: Operation) -> Operation:
        if modules is not None and isinstance(op, ModuleCall) and id(op.layer) in paths:
            # ModuleCall holds its layer as a Const; a plain Call may hold any template.
            func = LiveModule(modules, paths[id(op.layer)], nested=isinstance(op, NestedModelCall))
            return Call(func, [t.map(const=live) for t in op.args], op.kwargs.map(const=live))
        return op.map_templates(lambda t: t.map(const=live))

    steps = tuple(dataclasses.replace(step, op=live_op(step.op)) for step in plan.steps)
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


def _no_kwargs(op: ModuleCall) -> bool:
    return isinstance(op.kwargs, Const) and not op.kwargs.value


def _has_fast_path(op: ModuleCall) -> bool:
    """Whether the call of a registered layer is written as its fast path."""
    return _no_kwargs(op) and has_fast_path(op.layer, len(op.args))


def fast_path_classes(plan: Plan, model: ModelSources) -> list[type[nn.Module]]:
    """The layer classes of ``plan``'s steps that generated code can run by a fast path, each once.

    Only the model's own layers have one: the code reads them from the model.

    Example:
        >>> from torch import nn
        >>> from symgraph_torch import Input, SymbolicModel
        >>> x = Input((4,))
        >>> model = SymbolicModel(x, nn.ReLU()(nn.Linear(4, 4)(x)))
        >>> [cls.__name__ for cls in fast_path_classes(model._plan, model._sources(model._plan))]
        ['Linear', 'ReLU']
    """
    paths = model.layer_paths or {}
    found: dict[type[nn.Module], None] = {}
    for step in plan.steps:
        op = step.op
        if isinstance(op, ModuleCall) and id(op.layer) in paths and _has_fast_path(op):
            found[type(op.layer)] = None
    return list(found) if model.modules is not None else []


class TorchCodegenPolicy(CodegenPolicy):
    """The torch model's code generation policy (see the module docstring).

    Args:
        plan: The plan being generated, for the version without fast paths.
        model: Where the code reads the model's tensors and layers.
        direct: Call layers' ``forward`` directly (``optimize_module_calls``).
        fast_paths: Write the calls of layers with a fast path (see
            :data:`~symgraph_torch._fast_paths.FAST_PATHS`) as their forward's body, behind guards.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from symgraph_torch import Input, SymbolicModel
        >>> x = Input((4,))
        >>> model = SymbolicModel(x, nn.Linear(4, 2)(x) * torch.ones(2))
        >>> print(model.source.splitlines()[0])
        def replay(params, buffers, modules, v0):
    """

    leading = (_PARAMS, _BUFFERS, _MODULES)

    def __init__(self, plan: Plan, model: ModelSources, *, direct: bool, fast_paths: bool) -> None:
        self.plan = plan
        self.model = model
        self.parameters = model.parameters
        self.buffers = model.buffers
        self.names = model.names
        self.modules: dict[str, Any] = {} if model.modules is None else model.modules
        self.layer_paths: Mapping[int, tuple[str, ...]] = model.layer_paths or {}
        self.direct = direct
        self.fast_classes = fast_path_classes(plan, model) if fast_paths else []
        self.fast_paths = bool(self.fast_classes)
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
        return (self.parameters, self.buffers, self.modules)

    def _module_expression(self, module: nn.Module, ctx: EmitContext) -> str | None:
        """``modules[...]`` reading ``module``'s current occupant of its name, or ``None`` if unregistered."""
        path = self.layer_paths.get(id(module))
        if path is None:
            return None
        # Names are the user's custom names: they reach the code as pool constants.
        expression = f"{_MODULES}[{ctx.pool.ref(path[0])}]"
        for part in path[1:]:
            expression += f"._modules[{ctx.pool.ref(part)}]"
        return expression

    def constant(self, value: Any, ctx: EmitContext) -> str | None:
        if isinstance(value, nn.Module):
            return self._module_expression(value, ctx)
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
        current = self._module_expression(layer, ctx)
        if current is None:  # not a layer of this model: called as recorded
            parts = ctx.arguments(op.args, op.kwargs, args)
            if isinstance(op, NestedModelCall):
                return f"{ctx.pool.ref(call_nested)}({', '.join([ctx.pool.ref(layer), *parts])})"
            return f"{self._caller(layer, ctx)}({', '.join(parts)})"
        if self.fast_paths and _has_fast_path(op):
            fast = fast_path_call(layer, [ctx.template(t, args) for t in op.args], ctx.pool.ref, current)
            if fast is not None:
                return fast
        parts = ctx.arguments(op.args, op.kwargs, args)
        if isinstance(op, NestedModelCall):
            return f"{ctx.pool.ref(call_nested)}({', '.join([current, *parts])})"
        if self.direct and not _has_hooks(layer):
            # optimize_module_calls: the forward of whatever holds the name now.
            return f"{current}.forward({', '.join(parts)})"
        return f"{current}({', '.join(parts)})"

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
        normal = TorchCodegenPolicy(self.plan, self.model, direct=self.direct, fast_paths=False)
        # The version without fast paths, as one compiled function; it takes the
        # same parameters, so the call passes them on unchanged.
        function = compile_plan(self.plan, normal, bind=False)
        return [
            f"if {global_guard(self.fast_classes, ctx.pool.ref)}:",
            f"    return {ctx.pool.ref(function)}({', '.join(params)})",
        ]
