"""``SymbolicModel``: a recorded graph of layers as a real ``nn.Module``."""

from __future__ import annotations

import dataclasses
import keyword
import types
import unicodedata
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn
from torch.fx import _symbolic_trace as _fx_tracing

from symgraph import MissingGraphError
from symgraph._failures import note_failed_step
from symgraph.plugin import (
    DEFAULT_EXECUTOR,
    Executor,
    ExecutorChoice,
    Plan,
    Program,
    Step,
    SymbolicData,
    WeakGraph,
    build_plan,
    escape,
    extend_outputs,
    format_summary,
    generate,
)
from symgraph_torch import config
from symgraph_torch._policy import (
    ModelSources,
    TorchCodegenPolicy,
    distinct_modules,
    distinct_tensors,
    live_plan,
    plan_constants,
    read_module,
)
from symgraph_torch._tensor import SymbolicTensor, anchor_in_plan
from symgraph_torch._tracing import NESTED_CALL, ModuleCall

__all__ = ["DetachedSymbolicModel", "MissingGraphError", "SymbolicModel", "optimize_module_calls"]

# Set by optimize_module_calls() with no arguments: models built afterwards call
# their layers' forward directly.
_optimize_new_models = False


# Attributes a model sets on itself, beyond those its class defines: a layer of
# that name would be shadowed by them, or shadow them.
_RESERVED = frozenset(
    {
        "_graph",
        "_program",
        "_executor_choice",
        "_plan",
        "_tensor_names",
        "_layer_names",
        "_input_shape",
        "_output_shape",
        "_direct_calls",
        "_custom_names",
        "check_inputs",
    }
)


# What a group made for dotted names has as attributes (an instance: nn.Module
# sets ``training`` and its dicts per instance); ModuleList's include nn.Module's.
_GROUP = nn.ModuleList()


@dataclasses.dataclass
class _Registration:
    """What registering a plan adds to a model: made by ``_prepare``, applied by ``_commit``."""

    layer_names: list[str]
    tensor_names: list[str]
    layers: list[tuple[str, nn.Module]] = dataclasses.field(default_factory=list)
    tensors: list[tuple[str, torch.Tensor]] = dataclasses.field(default_factory=list)


def _where(step: Step) -> str:
    return f"recorded at {step.where}" if step.where else "where it was recorded is not known"


def _layer_owners(
    plan: Plan, custom_names: Sequence[str | None] | None, registered: Mapping[int, str]
) -> dict[int, str]:
    """The name each layer called in ``plan`` is registered under, by ``id`` of the layer.

    A layer called several times is one submodule, so it gets one name: the
    custom name of whichever call has one, else the name of its first call. A
    model shows every custom name it was given, or refuses to build.

    Args:
        plan: The plan.
        custom_names: The user's ``custom_name`` of each step, or ``None`` when not known.
        registered: The names of the layers the model holds already, by ``id``.

    Raises:
        ValueError: a layer's calls have two different custom names, or a new
            call gives a layer the model holds already a custom name it is not
            registered under.
    """
    owners: dict[int, str] = {}
    named: dict[int, tuple[str, Step]] = {}
    for j, step in enumerate(plan.steps):
        op = step.op
        if not isinstance(op, ModuleCall):
            continue
        key = id(op.layer)
        owners.setdefault(key, step.name)
        custom = custom_names[j] if custom_names is not None else None
        if custom is None:
            continue
        first, first_step = named.setdefault(key, (custom, step))
        if first != custom:
            raise ValueError(
                f"the {type(op.layer).__name__} layer is called with two different custom names: "
                f"{escape(first)!r} ({_where(first_step)}) and {escape(custom)!r} ({_where(step)}). A layer "
                "called several times is one submodule of the model, registered under one name; give "
                "custom_name on one of its calls only, or the same name on each"
            )
    for key, (custom, step) in named.items():
        existing = registered.get(key)
        if existing is not None and existing != custom:
            raise ValueError(
                f"the {type(step.op.layer).__name__} layer is registered in this model as {escape(existing)!r}, "  # type: ignore[attr-defined]
                f"but a new call gives it the custom name {escape(custom)!r} ({_where(step)}); a layer has one "
                f"name in a model. Record the new call without custom_name, or with custom_name={escape(existing)!r}"
            )
        owners[key] = custom
    return owners


def _shape_structure(structure: Any) -> Any:
    """``structure`` (a value, or a flat list, tuple or dict of them) with tensors replaced by shapes."""

    def shape(value: Any) -> Any:
        return value.shape if isinstance(value, SymbolicTensor) else None

    if isinstance(structure, dict):
        return {k: shape(v) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)):
        return tuple(shape(v) for v in structure)
    return shape(structure)


# -- the signature of forward ----------------------------------------------------------
def _is_parameter_name(name: object) -> bool:
    """Whether ``name`` can name a parameter of ``forward`` that callers can write as a keyword.

    Python source normalises identifiers (NFKC): a key that is not normalised
    could be passed with ``**{key: ...}`` but never written as ``key=...``.
    """
    return (
        type(name) is str
        and name.isidentifier()
        and not keyword.iskeyword(name)
        and unicodedata.normalize("NFKC", name) == name
    )


def _signature_of(plan: Plan) -> tuple[str, tuple[str, ...], tuple[str, ...]] | None:
    """``(self name, positional parameters, keyword-only parameters)`` of ``forward`` for ``plan``.

    Positional inputs are named by their input's name (``Input_1``) where that
    is a parameter name, and ``input_<position>`` otherwise; dict inputs become
    keyword-only parameters named by their keys. ``None`` (the generic
    ``forward(*args, **kwargs)``) when a key is not a parameter name.
    """
    keys = plan.input_keys
    if keys is not None:
        if not all(_is_parameter_name(k) for k in keys):
            return None
        self_name = "self"
        while self_name in keys:
            self_name += "_"
        return self_name, (), tuple(keys)
    wanted = [spec.name for spec in plan.inputs]
    valid = {n for n in wanted if _is_parameter_name(n) and n != "self"}
    names: list[str] = []
    for position, name in enumerate(wanted, 1):
        if name not in valid or name in names:
            name = f"input_{position}"
            while name in valid or name in names:
                name += "_"
        names.append(name)
    return "self", tuple(names), ()


def _forward_template(self):  # type: ignore[no-untyped-def]
    # Its code object is copied with the parameters of each signature; it reads
    # them by name from locals(), so its bytecode is the same for all of them.
    return _forward_by_name(self, locals())


def _forward_by_name(model: DetachedSymbolicModel, frame: dict[str, Any]) -> Any:
    return model._replay([frame[name] for name in type(model)._symgraph_parameters])


_FORWARD_DOC = """Run the generated code on real tensors.

        It takes one parameter per input: the input's name for positional inputs,
        and the keys, as keywords, for dict inputs. With ``check_inputs`` on, the
        inputs' shapes are checked first.
        """

# Per-signature subclasses, shared by the models of one signature and
# collected with the last of them.
_SIGNATURE_CLASSES: weakref.WeakValueDictionary[tuple[Any, ...], type] = weakref.WeakValueDictionary()


def _signature_class(base: type, signature: tuple[str, tuple[str, ...], tuple[str, ...]]) -> type:
    """The subclass of ``base`` whose ``forward`` has ``signature``, made without any source text.

    ``torch.fx`` reads ``type(model).forward``, so the signature must be the class's.
    """
    key = (base, *signature)
    cls = _SIGNATURE_CLASSES.get(key)
    if cls is not None:
        return cls
    self_name, positional, keywords = signature
    varnames = (self_name, *positional, *keywords)
    qualname = f"{base.__qualname__}.forward"
    code = _forward_template.__code__.replace(
        co_argcount=1 + len(positional),
        co_posonlyargcount=0,
        co_kwonlyargcount=len(keywords),
        co_nlocals=len(varnames),
        co_varnames=varnames,
        co_name="forward",
        co_qualname=qualname,
    )
    forward = types.FunctionType(code, _forward_template.__globals__, "forward")
    forward.__qualname__ = qualname
    forward.__module__ = base.__module__
    forward.__doc__ = _FORWARD_DOC
    namespace = {
        "forward": forward,
        "_symgraph_parameters": (*positional, *keywords),
        "_symgraph_signature_base": base,
        "__module__": base.__module__,
        "__qualname__": base.__qualname__,
        "__doc__": base.__doc__,
    }
    cls = type(base)(base.__name__, (base,), namespace)
    _SIGNATURE_CLASSES[key] = cls
    return cls


def _restore_model(base: type[DetachedSymbolicModel]) -> Any:
    """An empty model of ``base`` for unpickling; ``__setstate__`` gives it its signature."""
    return base.__new__(base)


class DetachedSymbolicModel(ExecutorChoice, nn.Module):
    """A model's layers and generated ``forward``, without any link to the graph.

    :class:`SymbolicModel` derives from it. Made directly by
    :meth:`SymbolicModel.detach_from_graph`.

    Args:
        plan: The plan to run.
        check_inputs: Check the number and shapes of inputs on every call.
        shapes: ``(input_shape, output_shape)`` to report.
        executor: How ``forward`` runs the plan (see :class:`SymbolicModel`).
        executor_options: The executor's options.
        direct_calls: Call layers' ``forward`` directly (see
            :func:`optimize_module_calls`); by default as that function set it.
        custom_names: For each step of ``plan``, the ``custom_name`` the user
            gave it, or ``None``. A shared layer is then registered under the
            custom name of whichever call has one, and two different custom
            names for one layer are refused. Without it, a shared layer is
            named after its first call.

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
    # Set on the per-signature subclass: the names of forward's parameters, in order.
    _symgraph_parameters: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        plan: Plan,
        *,
        check_inputs: bool = True,
        shapes: tuple[Any, Any] = (None, None),
        executor: str | Executor = DEFAULT_EXECUTOR,
        executor_options: Mapping[str, Any] | None = None,
        direct_calls: bool | None = None,
        custom_names: Sequence[str | None] | None = None,
    ) -> None:
        if custom_names is not None:
            custom_names = tuple(custom_names)
            if len(custom_names) != len(plan.steps) or not all(n is None or type(n) is str for n in custom_names):
                raise ValueError(
                    f"custom_names must give a str or None for each of the plan's {len(plan.steps)} steps, "
                    f"got {len(custom_names)} entries"
                )
        super().__init__()
        self.check_inputs = check_inputs
        self._input_shape, self._output_shape = shapes
        self._direct_calls = _optimize_new_models if direct_calls is None else direct_calls
        self._plan = plan
        self._tensor_names: list[str] = []
        self._layer_names: list[str] = []
        self._custom_names = custom_names
        self._commit(self._prepare(plan, custom_names))
        self._switch(plan, executor, executor_options)
        self._take_signature()

    # -- building --------------------------------------------------------------------
    def _prepare(self, plan: Plan, custom_names: Sequence[str | None] | None = None) -> _Registration:
        """Names for the plan's new layers and tensor constants, checked, without changing the model.

        Args:
            plan: The plan to register.
            custom_names: The user's ``custom_name`` of each step, or ``None`` (see
                :class:`DetachedSymbolicModel`).

        Raises:
            ValueError: a layer name is invalid, taken, or clashes with an attribute;
                or a shared layer was given two different custom names.
        """
        # Checks made with the graph may follow a layer of another model on the same input.
        anchor_in_plan(plan)
        registration = _Registration(list(self._layer_names), list(self._tensor_names))
        # Layers and tensors are matched to their names by walk order (see _policy);
        # a plan grown by add_output walks the old steps first, so only the tail is new.
        modules = distinct_modules(plan)
        layers = modules[len(self._layer_names) :]
        owners = _layer_owners(plan, custom_names, dict(zip(map(id, modules), self._layer_names, strict=False)))
        for layer in layers:
            owner = owners.get(id(layer))
            if owner is None:  # a module passed as an argument: named after the step using it
                step_name = next(plan.steps[j].name for j, v in plan_constants(plan) if v is layer)
                name = f"{type(layer).__name__}_in_{step_name}"
            else:
                name = owner
            self._check_layer_name(name, registration)
            registration.layers.append((name, layer))
            registration.layer_names.append(name)
        taken = set(registration.layer_names)
        for tensor in distinct_tensors(plan)[len(self._tensor_names) :]:
            name = self._free_name("param" if isinstance(tensor, nn.Parameter) else "constant", taken)
            taken.add(name)
            registration.tensors.append((name, tensor))
            registration.tensor_names.append(name)
        return registration

    def _check_layer_name(self, name: str, registration: _Registration) -> None:
        parts = name.split(".")
        if not all(parts):
            raise ValueError(
                f"layer name {escape(name)!r} cannot name a submodule: it is empty or has an empty part "
                "between dots; pick another custom_name"
            )
        # The layers and the groups of layers (``layer1`` of ``layer1.0.conv1``) there
        # will be once the pending layers are added too.
        layers = {*self._layer_names, *(n for n, _ in registration.layers)}
        groups = {".".join(n.split(".")[:k]) for n in layers for k in range(1, n.count(".") + 1)}
        if name in layers:
            raise ValueError(
                f"two different layers are named {escape(name)!r}; give each a distinct custom_name (names of "
                "layers in one model must be unique)"
            )
        if name in groups:
            raise ValueError(
                f"layer name {escape(name)!r} already names a group of layers ({escape(name)}.<name>); "
                "pick another custom_name"
            )
        for k in range(1, len(parts)):
            prefix = ".".join(parts[:k])
            if prefix in layers:
                raise ValueError(
                    f"layer name {escape(name)!r} puts a layer inside the layer {escape(prefix)!r}; "
                    "pick another custom_name"
                )
        if parts[0] not in groups and self._is_reserved(parts[0]):
            which = "" if len(parts) == 1 else f" (its first part {escape(parts[0])!r})"
            raise ValueError(
                f"layer name {escape(name)!r}{which} clashes with an attribute of SymbolicModel; "
                "pick another custom_name"
            )
        for part in parts[1:]:
            # Parts below the first one name attributes of the groups made for them
            # (nn.Module or nn.ModuleList, whose attributes include nn.Module's).
            if hasattr(_GROUP, part):
                raise ValueError(
                    f"layer name {escape(name)!r} clashes with an attribute of the nn.Module groups made for "
                    f"dotted names ({escape(part)!r}); pick another custom_name"
                )

    def _is_reserved(self, name: str) -> bool:
        # Class attributes (forward, inputs, training, ...), what the model sets on
        # itself, and the model's own tensors would be shadowed or would shadow.
        return (
            name in _RESERVED
            or hasattr(type(self), name)
            or name in self.__dict__
            or name in self._parameters
            or name in self._buffers
        )

    def _commit(self, registration: _Registration) -> None:
        """Register what :meth:`_prepare` made; checked already, so nothing here fails half-way."""
        for name, layer in registration.layers:
            parent: nn.Module = self
            parts = name.split(".")
            for k in range(1, len(parts)):
                child = parent._modules.get(parts[k - 1])
                if child is None:
                    # Groups only hold names, for state_dict keys such as layer1.0.conv1.weight:
                    # a ModuleList where the parts below are numbers (torchvision's Sequential
                    # blocks), so that model.layer1[0] works.
                    child = nn.ModuleList() if parts[k].isdigit() else nn.Module()
                    parent.add_module(parts[k - 1], child)
                parent = child
            parent.add_module(parts[-1], layer)
        for name, tensor in registration.tensors:
            if isinstance(tensor, nn.Parameter):
                self.register_parameter(name, tensor)
            else:
                # Constants are part of the code, not of the state: left out of state_dict.
                self.register_buffer(name, tensor, persistent=False)
        self._layer_names = registration.layer_names
        self._tensor_names = registration.tensor_names

    def _free_name(self, base: str, taken: set[str]) -> str:
        k = 0
        while self._is_reserved(f"{base}_{k}") or f"{base}_{k}" in self._modules or f"{base}_{k}" in taken:
            k += 1
        return f"{base}_{k}"

    def codegen_policy(self, plan: Plan, options: Mapping[str, Any]) -> TorchCodegenPolicy:
        """The code generation policy for a plan of this model (see :mod:`symgraph_torch._policy`).

        Args:
            plan: The model's plan, or the plan it is about to run.
            options: ``{"fast_paths": False}`` leaves out the layers' fast paths.
        """
        fast_paths = TorchCodegenPolicy.options("codegen", options)
        return TorchCodegenPolicy(plan, self._sources(plan), direct=self._direct_calls, fast_paths=fast_paths)

    def evaluation_plan(self, plan: Plan) -> Plan:
        """``plan`` with its tensor constants and layers read from this model at every evaluation.

        The reference interpreter runs it, so ``model.interpret``, the
        ``interpreter`` executor and the generated code see the same tensors
        and the same layers (after ``model.Linear_1 = other``, say).
        """
        return live_plan(plan, self._sources(plan))

    def _sources(self, plan: Plan) -> ModelSources:
        return ModelSources(
            self._parameters, self._buffers, self._tensor_names_of(plan), self._modules, self._layer_paths_of(plan)
        )

    def _layer_paths_of(self, plan: Plan) -> dict[int, tuple[str, ...]]:
        # By walk order, as tensors: the plan keeps the recorded layers, which
        # surgery may have replaced in the model since.
        modules = distinct_modules(plan)
        return {id(m): tuple(name.split(".")) for m, name in zip(modules, self._layer_names, strict=True)}

    def _call_aliases(self) -> dict[str, str]:
        """The names of a shared layer's later calls, each with the name the layer is registered under.

        pytorch-symbolic registered a layer once per call (``Linear_1`` and
        ``Linear_2`` for a Siamese encoder), so its state dicts hold the shared
        weights under each call's name.
        """
        paths = self._layer_paths_of(self._plan)
        aliases: dict[str, str] = {}
        for step in self._plan.steps:
            if isinstance(step.op, ModuleCall):
                registered = ".".join(paths[id(step.op.layer)])
                if step.name != registered:
                    aliases[step.name] = registered
        return aliases

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # Before the keys are matched: a state dict saved by pytorch-symbolic holds
        # a shared layer's weights once per call. Each alias key is folded into the
        # registered one, which it must equal when both are there (``load_state_dict``
        # hands each module its own copy of the dict, so the caller's is untouched).
        # This runs before the layers load theirs, so a refusal changes no weight.
        for alias, registered in self._call_aliases().items():
            start = f"{prefix}{alias}."
            for key in [k for k in state_dict if k.startswith(start)]:
                value = state_dict.pop(key)
                target = f"{prefix}{registered}.{key[len(start) :]}"
                if target not in state_dict:
                    state_dict[target] = value
                elif not (
                    isinstance(value, torch.Tensor)
                    and isinstance(state_dict[target], torch.Tensor)
                    and torch.equal(value, state_dict[target])  # False for other shapes
                ):
                    raise RuntimeError(
                        f"Error(s) in loading state_dict for {type(self).__name__}: {key!r} and {target!r} hold "
                        f"different values, but both name the weights of one layer, shared by the calls "
                        f"{alias!r} and {registered!r} (a layer called several times is one submodule); nothing "
                        "was loaded"
                    )
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def _tensor_names_of(self, plan: Plan) -> dict[int, tuple[bool, str]]:
        # Match the plan's tensor constants to their names by walk order, which
        # survives pickling (the tensors are new objects then) and .to() (the
        # buffers are new objects then; the plan keeps the originals).
        tensors = distinct_tensors(plan)
        return {id(t): (isinstance(t, nn.Parameter), name) for t, name in zip(tensors, self._tensor_names, strict=True)}

    def _program_for(self, plan: Plan, executor: str | Executor, options: Mapping[str, Any]) -> Program:
        # The model is the executors' host: code generation asks it for its policy.
        return Program(plan, executor, options, host=self)

    # -- calling -----------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Run the generated code on real tensors.

        Models replace this with a ``forward`` that has one parameter per input
        (see :func:`_signature_of`); this generic one remains for dict inputs
        whose keys cannot be parameter names, and for subclasses' ``super()`` calls.
        """
        return self._replay(self._program.bind(args, kwargs))

    def _replay(self, values: Sequence[Any]) -> Any:
        program = self._program
        check = self.check_inputs
        if NESTED_CALL.model is self:
            # call_nested is calling this model from an enclosing replay.
            NESTED_CALL.model = None
            check = False
        # Under jit or fx tracing the inputs are tracers, whose shapes cannot be compared.
        if check and program.checks and torch._C._get_tracing_state() is None and not _fx_tracing._is_fx_tracing_flag:
            program.check(values)
        try:
            return program.runner(*values)
        except KeyError as exc:
            note_failed_step(exc)
            # The generated code reads layers as modules[name]: a deleted layer
            # fails as self.<name> fails in a hand-written forward, naming it.
            missing = self._missing_layer(exc)
            if missing is None:
                raise
            raise missing from exc
        except Exception as exc:
            note_failed_step(exc)
            raise

    def _take_signature(self) -> None:
        """Become the subclass whose ``forward`` has the plan's signature, unless forward was overridden."""
        cls = type(self)
        base = cls.__dict__.get("_symgraph_signature_base", cls)
        if getattr(base, "forward", None) is not DetachedSymbolicModel.forward:
            return  # a subclass's own forward
        signature = _signature_of(self._plan)
        self.__class__ = base if signature is None else _signature_class(base, signature)

    def __reduce_ex__(self, protocol: Any) -> Any:
        # The per-signature class cannot be found by name: unpickle as its base,
        # whose __setstate__ takes the signature again.
        base = type(self).__dict__.get("_symgraph_signature_base")
        if base is None:
            return super().__reduce_ex__(protocol)
        return (_restore_model, (base,), self.__getstate__())

    def _missing_layer(self, exc: KeyError) -> AttributeError | None:
        for name in self._layer_names:
            try:
                read_module(self._modules, tuple(name.split(".")))
            except AttributeError as error:
                if exc.args and exc.args[0] in name.split("."):
                    return error
        return None

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
        return self._program.interpret_call(args, kwargs, check=self.check_inputs, host=self)

    def __prepare_scriptable__(self) -> nn.Module:
        # torch.jit.script calls this on every module it is about to compile,
        # nested ones included; TorchScript cannot compile generated Python.
        raise TypeError(
            f"torch.jit.script cannot compile a {type(self).__name__}: its forward is generated Python "
            "that TorchScript does not support; use torch.jit.trace(model, example_inputs) or "
            "torch.export.export(model, example_inputs) instead"
        )

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
        """The Python source code generation makes for ``forward`` (what the ``codegen`` executor runs).

        With the ``codegen`` executor, its options apply (``fast_paths=False`` shows
        the source without fast paths); with another executor, the defaults.

        Example:
            >>> from torch import nn
            >>> from symgraph_torch import Input, SymbolicModel
            >>> x = Input((4,))
            >>> model = SymbolicModel(x, nn.ReLU()(x))
            >>> model.set_executor("codegen", fast_paths=False)
            >>> print(model.source, end="")
            def replay(params, buffers, modules, v0):
                v0 = modules[c0](v0)
                return v0
        """
        options = self.executor_options if self.executor == "codegen" else {}
        return generate(self._plan, self.codegen_policy(self._plan, options)).source

    def summary(self, print_fn: Callable[[str], Any] = print) -> None:
        """Print a Keras-like table: layers, output shapes, parameter counts, parents.

        Outputs are marked with ``*``. Parameters shared by several layers are
        counted once in the totals.

        Args:
            print_fn: Receives the table as one string.
        """
        print_fn(format_summary(self._plan, show_params=True, output_header="Output shape"))

    # -- copying and saving ------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        # Generated code is rebuilt from the plan; the graph itself is never saved.
        state = dict(super().__getstate__())
        state.pop("_program", None)
        if "_graph" in state:
            state["_graph"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._program = self._rebuild(self._plan)
        self._take_signature()


class SymbolicModel(DetachedSymbolicModel):
    """A model made of the layers recorded between symbolic inputs and outputs.

    It is a real ``nn.Module``: layers are registered as submodules, named by
    their class with a counter (``Linear_1``) or by their ``custom_name`` (a
    layer called several times is named by the call that has one);
    ``parameters()``, ``state_dict()``, ``.to()``, ``train()``/``eval()``,
    pickling, ``torch.save`` and ``torch.compile`` work as for any module.
    ``forward`` runs straight-line Python generated once from the graph, or
    the plan through another executor (``executor="compile"`` for
    ``torch.compile``, ``"interpreter"`` for the reference interpreter).

    The model does not keep the trace-time graph (or its example tensors) alive:
    :attr:`inputs`, :attr:`outputs` and :meth:`add_output` work while the user
    still holds the symbolic values.

    The generated code reads each layer from the model at every call, as
    ``self.Linear_1`` in a hand-written ``forward`` does, and calls it as
    ``layer(x)`` does, so hooks, ``layer.compile()`` and module surgery
    (``model.Linear_1 = other``, ``quantize_dynamic``, wrapping a layer) take
    effect at once. Common layers (``Linear``, convolutions, normalizations,
    activations, ``Dropout``, pooling, ``Flatten``, ``Embedding``) have a fast
    path: the generated code checks, at every call, that the model still holds
    the recorded layer and that it has no hooks, is not compiled, parametrized
    or patched, and then runs its forward's body on its tensors directly;
    otherwise it calls the layer normally. A dotted ``custom_name`` (``"layer1.0.conv1"``) puts the layer in
    nested groups (``nn.Module``, or ``nn.ModuleList`` where the next part is a
    number), as checkpoints of hand-written models expect.

    Args:
        inputs: A symbolic tensor, a list or tuple of them, or a dict (the model
            then takes keyword arguments).
        outputs: A symbolic value, or a list, tuple or dict of them.
        check_inputs: Check on every call that the number of inputs is right and
            that each input's shape matches its ``Input`` in every dimension but
            the batch, before any layer runs. Turn it off with
            ``check_inputs=False``, or later with ``model.check_inputs = False``.
        executor: How ``forward`` runs: ``"codegen"`` (the default), ``"compile"``
            (``torch.compile`` over the generated code; options ``backend``,
            ``mode``, ``fullgraph``, ``dynamic``, ``options``), ``"cuda_graphs"``
            (CUDA graph replay; see :mod:`symgraph_torch.cuda_graphs`), ``"interpreter"``,
            or any executor from :func:`symgraph.available_executors`.
        executor_options: The executor's options.
        enable_forward_codegen: pytorch-symbolic's switch: ``False`` selects the
            ``interpreter`` executor, ``True`` the ``codegen`` one. Without it
            (and without ``executor=``), ``symgraph_torch.config.CODEGEN_BY_DEFAULT``
            chooses, as in pytorch-symbolic.
        enable_cuda_graphs: pytorch-symbolic 1.0's switch: ``True`` selects the
            ``cuda_graphs`` executor (see :mod:`symgraph_torch.cuda_graphs`).

    Raises:
        GraphError: an output depends on a value that is not among the inputs.
        ValueError: two different layers share a name, a layer called several
            times was given two different custom names (a layer is one
            submodule, with one name), or a name clashes with an attribute of
            the model (``forward``, ``inputs``, ``training``...).
        ExecutorError: the executor cannot run this model.

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

    def __init__(
        self,
        inputs: Any,
        outputs: Any,
        *,
        check_inputs: bool = True,
        executor: str | Executor | None = None,
        executor_options: Mapping[str, Any] | None = None,
        enable_forward_codegen: bool | None = None,
        enable_cuda_graphs: bool | None = None,
    ) -> None:
        if enable_forward_codegen is not None:
            if type(enable_forward_codegen) is not bool:
                raise TypeError(f"enable_forward_codegen must be a bool, got {type(enable_forward_codegen).__name__}")
            if executor is not None:
                raise TypeError("pass either executor= or enable_forward_codegen=, not both")
            executor = "codegen" if enable_forward_codegen else "interpreter"
        if enable_cuda_graphs is not None:
            if type(enable_cuda_graphs) is not bool:
                raise TypeError(f"enable_cuda_graphs must be a bool, got {type(enable_cuda_graphs).__name__}")
            if enable_cuda_graphs:
                if executor is not None and executor != "cuda_graphs":
                    raise TypeError(
                        f"enable_cuda_graphs=True asks for the 'cuda_graphs' executor; it cannot be combined "
                        f"with executor={executor!r}"
                        + (" (which enable_forward_codegen chose)" if enable_forward_codegen is not None else "")
                    )
                executor = "cuda_graphs"
        plan, nodes = build_plan(inputs, outputs)
        super().__init__(
            plan,
            check_inputs=check_inputs,
            shapes=(_shape_structure(inputs), _shape_structure(outputs)),
            executor=(DEFAULT_EXECUTOR if config.CODEGEN_BY_DEFAULT else "interpreter")
            if executor is None
            else executor,
            executor_options=executor_options,
            custom_names=_custom_names_of(plan, nodes),
        )
        self._graph: WeakGraph | None = WeakGraph(inputs, outputs)

    def __copy__(self) -> SymbolicModel:
        # Like nn.Module's shallow copy (shared layers and parameters), keeping the
        # graph and the generated code, which take the model as an argument.
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    def _graph_or_raise(self, what: str) -> WeakGraph:
        if self._graph is None:
            raise MissingGraphError(f"{what}: this model was copied, unpickled or loaded from a file and has no graph")
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
        new = extend_outputs(outputs, output, key)
        plan, nodes = build_plan(inputs, new)
        custom_names = _custom_names_of(plan, nodes)
        # Everything is built before anything is assigned: a failure leaves the
        # model as it was, its summary, forward and submodules agreeing.
        registration = self._prepare(plan, custom_names)
        saved = self._layer_names, self._tensor_names
        # The program is made with the new names, which it reads at call time only.
        self._layer_names, self._tensor_names = registration.layer_names, registration.tensor_names
        try:
            program = self._rebuild(plan)
        finally:
            self._layer_names, self._tensor_names = saved
        graph = WeakGraph(inputs, new)
        shape = _shape_structure(new)
        self._commit(registration)
        self._plan, self._program, self._graph, self._output_shape = plan, program, graph, shape
        self._custom_names = custom_names

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
        executor, options = self._executor_choice
        detached = DetachedSymbolicModel(
            self._plan,
            check_inputs=self.check_inputs,
            shapes=(self._input_shape, self._output_shape),
            executor=executor,
            executor_options=options,
            direct_calls=self._direct_calls,
            # Absent from models pickled before it was kept.
            custom_names=getattr(self, "_custom_names", None),
        )
        # The layers the model holds now, which module surgery may have changed.
        for name in detached._modules:
            detached._modules[name] = self._modules.get(name)
        detached.train(self.training)
        return detached


def _custom_names_of(plan: Plan, nodes: Sequence[Any]) -> tuple[str | None, ...]:
    """The ``custom_name`` of each step of ``plan``, from the nodes :func:`build_plan` returned with it."""
    return tuple(node.custom_name for node in nodes[len(plan.inputs) :])


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
        model._program = model._rebuild(model._plan)
