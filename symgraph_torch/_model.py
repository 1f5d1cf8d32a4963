"""``SymbolicModel``: a recorded graph of layers as a real ``nn.Module``."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

import symgraph
from symgraph import ArgumentCollector, ConstantPool, GraphError, Node, Plan, Program, SymbolicData, Template
from symgraph_torch._inline import inline_layer_call, inlining_allowed
from symgraph_torch._tensor import SymbolicTensor
from symgraph_torch._tracing import SKIP_INPUT_CHECKS, ModuleCall, bound_call

__all__ = ["DetachedSymbolicModel", "MissingGraphError", "SymbolicModel", "optimize_module_calls"]

# Set by optimize_module_calls() with no arguments: models built afterwards call
# their layers' forward directly.
_optimize_new_models = False


def _tensor_items(value: Any) -> Iterator[torch.Tensor]:
    """Tensors held by a constant, directly or one container level down."""
    if isinstance(value, torch.Tensor):
        yield value
    elif type(value) in (list, tuple, dict):
        yield from (
            item for item in (value.values() if type(value) is dict else value) if isinstance(item, torch.Tensor)
        )


def _constants(plan: Plan) -> Iterator[tuple[int, Any]]:
    """``(step index, constant)`` for every constant the plan's operations hold."""
    for j, step in enumerate(plan.steps):
        for template in step.op.templates():
            for value in template.constants():
                yield j, value


def _distinct_tensors(plan: Plan) -> list[torch.Tensor]:
    """The tensor constants of a plan, each once, in walk order."""
    seen: dict[int, torch.Tensor] = {}
    for _, value in _constants(plan):
        if not isinstance(value, nn.Module):
            for tensor in _tensor_items(value):
                seen.setdefault(id(tensor), tensor)
    return list(seen.values())


class _TorchPool(ConstantPool):
    """Reaches tensor constants through the model, so ``.to()`` and ``functional_call`` see them."""

    def __init__(self, tensor_attrs: dict[int, str], direct: bool, inline: bool = False) -> None:
        # id of a plan tensor -> expression reading it from the model
        super().__init__()
        self.tensor_attrs = tensor_attrs
        self.direct = direct
        self.inline = inline
        self.inlined = False
        self.callers: dict[int, str] = {}

    def inline_call(self, layer: nn.Module, args: list[str]) -> str | None:
        """The layer's fast path with its guard (see ``_inline``), when inlining is on."""
        if not self.inline:
            return None
        expression = inline_layer_call(layer, args, super().ref)
        self.inlined = self.inlined or expression is not None
        return expression

    def ref(self, value: Any) -> str:
        if self.tensor_attrs:
            if isinstance(value, torch.Tensor):
                expression = self.tensor_attrs.get(id(value))
                if expression is not None:
                    return expression
            elif type(value) in (list, tuple, dict) and any(id(t) in self.tensor_attrs for t in _tensor_items(value)):
                return self._container(value)
        return super().ref(value)

    def _container(self, value: Any) -> str:
        if type(value) is dict:
            return "{" + ", ".join(f"{super().ref(k)}: {self.ref(v)}" for k, v in value.items()) + "}"
        items = [self.ref(v) for v in value]
        if type(value) is list:
            return "[" + ", ".join(items) + "]"
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"

    def module_caller(self, layer: nn.Module) -> str:
        name = self.callers.get(id(layer))
        if name is None:
            fn: Callable[..., Any]
            fn = layer.forward if self.direct and not _has_hooks(layer) else bound_call(layer)
            name = self.callers[id(layer)] = super().ref(fn)
        return name


def _has_hooks(layer: nn.Module) -> bool:
    from torch.nn.modules import module as torch_module

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


def _shape_structure(structure: Any) -> Any:
    """``structure`` (a value, or a flat list, tuple or dict of them) with tensors replaced by shapes."""

    def shape(value: Any) -> Any:
        return value.shape if isinstance(value, SymbolicTensor) else None

    if isinstance(structure, dict):
        return {k: shape(v) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)):
        return tuple(shape(v) for v in structure)
    return shape(structure)


class DetachedSymbolicModel(nn.Module):
    """A model's layers and generated ``forward``, without any link to the graph.

    :class:`SymbolicModel` derives from it. Made directly by
    :meth:`SymbolicModel.detach_from_graph`.

    Args:
        plan: The plan to run.
        check_inputs: Check the number and shapes of inputs on every call.
        shapes: ``(input_shape, output_shape)`` to report.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from symgraph_torch import Input, SymbolicModel
        >>> x = Input((4,))
        >>> detached = SymbolicModel(x, nn.Linear(4, 2)(x)).detach_from_graph()
        >>> detached(torch.ones(3, 4)).shape
        torch.Size([3, 2])
    """

    # Calls of a model from an enclosing graph are recorded as NestedModelCall.
    _symgraph_nested = True

    def __init__(self, plan: Plan, *, check_inputs: bool = True, shapes: tuple[Any, Any] = (None, None)) -> None:
        super().__init__()
        self.check_inputs = check_inputs
        self._input_shape, self._output_shape = shapes
        self._direct_calls = _optimize_new_models
        self._plan = plan
        self._tensor_names: list[str] = []
        self._register(plan)
        self._compile()

    # -- building --------------------------------------------------------------------
    def _register(self, plan: Plan) -> None:
        """Register the plan's layers as submodules and its tensor constants as parameters or buffers."""
        registered = {id(m) for m in self._modules.values()}
        for j, value in _constants(plan):
            if isinstance(value, nn.Module) and id(value) not in registered:
                step = plan.steps[j]
                is_layer = isinstance(step.op, ModuleCall) and step.op.layer is value
                name = step.name if is_layer else f"{type(value).__name__}_in_{step.name}"
                self._add_layer(name, value)
                registered.add(id(value))
        # Tensors are matched to their names by walk order (see _compile); a plan
        # grown by add_output walks the old steps first, so only the tail is new.
        for tensor in _distinct_tensors(plan)[len(self._tensor_names) :]:
            name = self._free_name("param" if isinstance(tensor, nn.Parameter) else "constant")
            if isinstance(tensor, nn.Parameter):
                self.register_parameter(name, tensor)
            else:
                # Constants are part of the code, not of the state: left out of state_dict.
                self.register_buffer(name, tensor, persistent=False)
            self._tensor_names.append(name)

    def _add_layer(self, name: str, layer: nn.Module) -> None:
        if "." in name or not name:
            raise ValueError(f"layer name {name!r} cannot name a submodule: it is empty or contains '.'")
        if name in self._modules:
            raise ValueError(
                f"two different layers are named {name!r}; give each a distinct custom_name (names of "
                "layers in one model must be unique)"
            )
        if hasattr(self, name):
            raise ValueError(
                f"layer name {name!r} clashes with an attribute of SymbolicModel; pick another custom_name"
            )
        self.add_module(name, layer)

    def _free_name(self, base: str) -> str:
        k = 0
        while hasattr(self, f"{base}_{k}") or f"{base}_{k}" in self._modules:
            k += 1
        return f"{base}_{k}"

    def _compile(self) -> None:
        # Match the plan's tensor constants to their attribute names by walk order,
        # which survives pickling (the tensors are new objects then) and .to() (the
        # buffers are new objects then; the plan keeps the originals).
        tensors = _distinct_tensors(self._plan)
        # Read straight from the module's dicts: attribute lookup would go through
        # nn.Module.__getattr__ on every call. The names are ours (param_k, constant_k).
        attrs = {
            id(t): f"self.{'_parameters' if isinstance(t, nn.Parameter) else '_buffers'}[{name!r}]"
            for t, name in zip(tensors, self._tensor_names, strict=True)
        }
        # Two versions of forward: one with the layers' fast paths, each guarded, and
        # one calling every layer normally, for calls made while the global state
        # (global hooks, jit tracing) rules the fast paths out.
        pool = _TorchPool(attrs, self._direct_calls, inline=True)
        self._program = Program(self._plan, pool=pool, leading=("self",))
        self._normal_program = self._program
        if pool.inlined:
            normal = _TorchPool(attrs, self._direct_calls)
            self._normal_program = Program(self._plan, pool=normal, leading=("self",))

    # -- calling -----------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Run the generated code on real tensors.

        Inputs are given in the order (or with the keys) the model was built with.
        With ``check_inputs`` on, their number and shapes are checked first.
        """
        program = self._program
        check = self.check_inputs
        if kwargs and SKIP_INPUT_CHECKS in kwargs:
            check = not kwargs.pop(SKIP_INPUT_CHECKS)
        values = program.bind(args, kwargs)
        tracing = torch._C._get_tracing_state() is not None
        if check and program.checks and not tracing:
            program.check(values)
        # Under jit.trace the normal path keeps every layer a submodule call in the trace.
        if program is not self._normal_program and (tracing or not inlining_allowed()):
            program = self._normal_program
        return program.replay(self, *values)

    def interpret(self, *args: Any, **kwargs: Any) -> Any:
        """Run through symgraph's reference interpreter instead of the generated code.

        Example:
            >>> import torch
            >>> from torch import nn
            >>> from symgraph_torch import Input, SymbolicModel
            >>> x = Input((4,))
            >>> model = SymbolicModel(x, nn.Linear(4, 2)(x).relu())
            >>> data = torch.rand(3, 4)
            >>> torch.equal(model.interpret(data), model(data))
            True
        """
        return self._program.interpret_call(args, kwargs, check=self.check_inputs)

    # -- inspection ----------------------------------------------------------------------
    @property
    def input_shape(self) -> Any:
        """Shape of the input (``None`` for an unknown batch); a tuple or dict of them for several."""
        return self._input_shape

    @property
    def output_shape(self) -> Any:
        """Shape of the output, in the structure the outputs were given."""
        return self._output_shape

    @property
    def plan(self) -> Plan:
        """The flat plan the model runs."""
        return self._plan

    @property
    def source(self) -> str:
        """The generated Python source of ``forward``'s replay function."""
        return self._program.code.source

    def summary(self, print_fn: Callable[[str], Any] = print) -> None:
        """Print a Keras-like table: layers, output shapes, parameter counts, parents.

        Outputs are marked with ``*``. Parameters shared by several layers are
        counted once in the totals.

        Args:
            print_fn: Receives the table as one string.
        """
        print_fn(symgraph.format_summary(self._plan, show_params=True, output_header="Output shape"))

    # -- copying and saving ------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        # Generated code is rebuilt from the plan; the graph itself is never saved.
        state = dict(super().__getstate__())
        state.pop("_program", None)
        state.pop("_normal_program", None)
        if "_graph" in state:
            state["_graph"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._compile()


class MissingGraphError(GraphError, AttributeError):
    """The graph a model was built from is gone (or was never copied with the model).

    It is an ``AttributeError`` too, so tools that probe a module's attributes
    with ``hasattr`` (``torch.jit.trace`` does) skip ``inputs`` and ``outputs``.

    Example:
        >>> from torch import nn
        >>> from symgraph_torch import Input, SymbolicModel
        >>> x = Input((2,))
        >>> model = SymbolicModel(x, nn.Linear(2, 2)(x))
        >>> del x
        >>> import gc; _ = gc.collect()  # the graph is a web of cycles
        >>> hasattr(model, "inputs")
        False
    """


class _WeakGraph:
    """The inputs and outputs a model was built from, held without keeping the graph alive."""

    __slots__ = ("input_nodes", "input_template", "output_nodes", "output_template")

    def __init__(self, inputs: Any, outputs: Any) -> None:
        self.input_template, self.input_nodes = self._split(inputs)
        self.output_template, self.output_nodes = self._split(outputs)

    @staticmethod
    def _split(structure: Any) -> tuple[Template, list[weakref.ref[Node]]]:
        collector = ArgumentCollector()
        template = collector.template(structure)
        return template, [weakref.ref(n) for n in collector.parents]

    @staticmethod
    def _join(template: Template, refs: list[weakref.ref[Node]], what: str) -> Any:
        handles = []
        for ref in refs:
            node = ref()
            if node is None:
                raise MissingGraphError(
                    f"{what}: the graph this model was built from no longer exists (a model does not keep the "
                    "trace-time graph alive); keep references to its inputs and outputs to use it"
                )
            handles.append(node.handle)
        return template.evaluate(handles)

    def inputs(self, what: str) -> Any:
        return self._join(self.input_template, self.input_nodes, what)

    def outputs(self, what: str) -> Any:
        return self._join(self.output_template, self.output_nodes, what)


class SymbolicModel(DetachedSymbolicModel):
    """A model made of the layers recorded between symbolic inputs and outputs.

    It is a real ``nn.Module``: layers are registered as submodules, named by
    their class with a counter (``Linear_1``) or by their ``custom_name``;
    ``parameters()``, ``state_dict()``, ``.to()``, ``train()``/``eval()``,
    pickling, ``torch.save`` and ``torch.compile`` work as for any module.
    ``forward`` runs straight-line Python generated once from the graph.

    The model does not keep the trace-time graph (or its example tensors) alive:
    :attr:`inputs`, :attr:`outputs` and :meth:`add_output` work while the user
    still holds the symbolic values.

    Layers are called through ``_call_impl``, as ``Module.__call__`` does, so
    their hooks run. ``nn.Linear`` layers have a fast path: the generated code
    checks, at every call, that the layer has no hooks, is not compiled,
    parametrized or patched, and then calls ``F.linear`` on its parameters
    directly; otherwise it calls the layer normally. A layer of another type
    compiled with ``layer.compile()`` after the model was built keeps running
    uncompiled in it; compile the whole model instead.

    Args:
        inputs: A symbolic tensor, a list or tuple of them, or a dict (the model
            then takes keyword arguments).
        outputs: A symbolic value, or a list, tuple or dict of them.
        check_inputs: Check on every call that the number of inputs is right and
            that each input's shape matches its ``Input`` in every dimension but
            the batch, before any layer runs. Turn it off with
            ``check_inputs=False``, or later with ``model.check_inputs = False``.

    Raises:
        GraphError: an output depends on a value that is not among the inputs.
        ValueError: two different layers share a name.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from symgraph_torch import Input, SymbolicModel
        >>> inputs = Input(shape=(28 * 28,))
        >>> outputs = nn.Linear(inputs.features, 10)(inputs)
        >>> model = SymbolicModel(inputs, outputs)
        >>> model(torch.rand(5, 784)).shape
        torch.Size([5, 10])
        >>> [name for name, _ in model.named_children()]
        ['Linear_1']
    """

    def __init__(self, inputs: Any, outputs: Any, *, check_inputs: bool = True) -> None:
        plan, _ = symgraph.build_plan(inputs, outputs)
        super().__init__(plan, check_inputs=check_inputs, shapes=(_shape_structure(inputs), _shape_structure(outputs)))
        self._graph: _WeakGraph | None = _WeakGraph(inputs, outputs)

    def __copy__(self) -> SymbolicModel:
        # Like nn.Module's shallow copy (shared layers and parameters), keeping the
        # graph and the generated code, which take the model as an argument.
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    def _graph_or_raise(self, what: str) -> _WeakGraph:
        if self._graph is None:
            raise MissingGraphError(f"{what}: this model was copied or unpickled and has no graph")
        return self._graph

    def __getattr__(self, name: str) -> Any:
        # Reached for ``inputs``/``outputs`` only when their property raised; keep
        # that message instead of nn.Module's generic "no attribute".
        if name in ("inputs", "outputs"):
            return getattr(SymbolicModel, name).fget(self)  # raises the property's own error again
        return super().__getattr__(name)

    @property
    def inputs(self) -> Any:
        """The symbolic inputs, in the structure they were given."""
        return self._graph_or_raise("inputs").inputs("inputs")

    @property
    def outputs(self) -> Any:
        """The symbolic outputs, in the structure they were given."""
        return self._graph_or_raise("outputs").outputs("outputs")

    def add_output(self, output: SymbolicData, key: str | None = None) -> None:
        """Also return ``output``, a value between the inputs and the outputs or beyond.

        Args:
            output: A symbolic value computed from the model's inputs.
            key: The new entry's key, when the outputs are a dict.

        Example:
            >>> import torch
            >>> from torch import nn
            >>> from symgraph_torch import Input, SymbolicModel
            >>> x = Input((4,))
            >>> hidden = nn.Linear(4, 8)(x)
            >>> model = SymbolicModel(x, nn.Linear(8, 1)(hidden))
            >>> model.add_output(hidden)
            >>> [t.shape for t in model(torch.rand(2, 4))]
            [torch.Size([2, 1]), torch.Size([2, 8])]
        """
        graph = self._graph_or_raise("add_output")
        inputs = graph.inputs("add_output")
        outputs = graph.outputs("add_output")
        new = symgraph.extend_outputs(outputs, output, key)
        plan, _ = symgraph.build_plan(inputs, new)
        self._plan = plan
        self._register(plan)
        self._compile()
        self._graph = _WeakGraph(inputs, new)
        self._output_shape = _shape_structure(new)

    def detach_from_graph(self) -> DetachedSymbolicModel:
        """A standalone module with the same layers (shared, not copied) and the same ``forward``.

        It keeps no reference to the symbolic graph, so it can outlive it, be
        pickled or sent elsewhere; it cannot grow new outputs.

        Example:
            >>> import torch
            >>> from torch import nn
            >>> from symgraph_torch import Input, SymbolicModel
            >>> x = Input((4,))
            >>> model = SymbolicModel(x, nn.Linear(4, 2)(x))
            >>> detached = model.detach_from_graph()
            >>> detached.Linear_1 is model.Linear_1
            True
        """
        detached = DetachedSymbolicModel(
            self._plan, check_inputs=self.check_inputs, shapes=(self._input_shape, self._output_shape)
        )
        detached._direct_calls = self._direct_calls
        detached._compile()
        detached.train(self.training)
        return detached


def optimize_module_calls(*models: DetachedSymbolicModel) -> None:
    """Call layers' ``forward`` directly, skipping ``nn.Module.__call__``.

    This removes the per-layer cost of torch's hook machinery, which matters for
    models of many small layers on the CPU. Hooks registered on a layer before
    this call keep the layer on the normal path; hooks registered afterwards are
    not run, so call this once the model is set up.

    Args:
        *models: The models to optimise now. With none, every model built from now
            on is optimised.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from symgraph_torch import Input, SymbolicModel, optimize_module_calls
        >>> x = Input((4,))
        >>> model = SymbolicModel(x, nn.Linear(4, 2)(x))
        >>> data = torch.rand(3, 4)
        >>> before = model(data)
        >>> optimize_module_calls(model)
        >>> torch.equal(model(data), before)
        True
    """
    global _optimize_new_models
    if not models:
        _optimize_new_models = True
        return
    for model in models:
        if not isinstance(model, DetachedSymbolicModel):
            raise TypeError(f"optimize_module_calls() expects SymbolicModel instances, got {type(model).__name__}")
        model._direct_calls = True
        model._compile()
