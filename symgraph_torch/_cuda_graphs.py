"""The ``cuda_graphs`` executor: a model's forward captured into CUDA graphs and replayed.

``SymbolicModel(inputs, outputs, executor="cuda_graphs")`` runs the generated
forward of the ``codegen`` executor, captured once per *key* and replayed after.

* **The key** of a call is each input's shape, strides, dtype, device and
  ``requires_grad`` (the value itself for ``None``, bool, int, float and str
  inputs), the ``training`` flag of every layer, grad mode, inference mode, the
  ``requires_grad`` flags of the parameters (under grad mode) and the autocast
  state. A call replays the graph of its key, gets one captured, or runs
  eagerly with a reason; it is never copied into a buffer of another shape.
* **Capture** happens on a side stream, after ``warmup`` runs there on the
  static input buffers; the buffers and random generators are put back as
  they were, so a captured model advances them exactly as the eager one. All
  the executor's graphs share one memory pool.
* **Shapes.** Without ``buckets``, one graph per key, at most ``max_graphs``
  (default 8, or the number of buckets if larger), least recently used evicted
  and reset. With ``buckets=[1, 8, 32]``
  the batch (dimension 0 of inputs without a fixed batch size) is padded up to
  the next bucket and the outputs sliced back; all buckets are captured at the
  first call, largest first, so that the smaller ones reuse its memory. Padding
  needs every layer in eval mode (or ``batch_independent=True``) and never
  applies to a BatchNorm in training mode (such calls get a graph of their own
  size, counted in ``executor_stats()["unpadded"]``); the first padded replay
  of each bucket is compared with eager code, and a model whose samples mix
  across the batch stops being padded.
* **Outputs** are fresh tensors; ``outputs="static"`` returns the graph's own
  output tensors, which the next call of the same key overwrites.
* **Autograd.** Under grad mode, when an input or a parameter requires grad,
  the forward and backward are captured together
  (``torch.cuda.make_graphed_callables``). Until a call's backward starts, a
  further call of its key runs eagerly rather than overwrite the activations
  that backward reads.
* **Fallbacks.** Syncing operations in the plan (``.item()``, ``nonzero``,
  ``unique``, boolean indexing, ...), module hooks, CPU or sparse tensors,
  tensors on several devices and captures that fail make the call run eagerly;
  the reason is cached per key, counted in :meth:`executor_stats`, and warned
  once per reason with :class:`CudaGraphsFallbackWarning`; ``strict=True``
  raises :class:`~symgraph.ExecutorError` instead.
* **Invalidation.** Replacing a layer, parameter or buffer of the model,
  setting any other attribute of one of its layers (``dropout.p = 0.1``), or
  moving its tensors (``.to()``, ``.half()``, ``.data = ...``) drops the
  model's graphs. A forward that sets attributes itself keeps the model eager.

Every device call goes through a :class:`~symgraph_torch.cuda_graphs.DeviceLayer`
(``device_layer=`` option), so all of this runs on the CPU with
:class:`~symgraph_torch.cuda_graphs.FakeDeviceLayer`.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from symgraph_torch import Input, SymbolicModel
    >>> from symgraph_torch.cuda_graphs import FakeDeviceLayer
    >>> x = Input((4,))
    >>> layer = nn.Linear(4, 2)
    >>> model = SymbolicModel(x, layer(x).relu(), executor="cuda_graphs",
    ...                       executor_options={"device_layer": FakeDeviceLayer()})
    >>> data = torch.rand(3, 4)
    >>> torch.equal(model(data), layer(data).relu()), model.executor_stats()["graphs"]
    (True, 1)
"""

from __future__ import annotations

import collections
import operator
import threading
import warnings
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.modules import module as _module_globals
from torch.utils import _pytree as pytree

from symgraph import ExecutorError
from symgraph.plugin import Call as CallOp
from symgraph.plugin import (
    Executor,
    MethodCall,
    Operator,
    Plan,
    Runner,
    Slice,
    check_options,
    compile_plan,
    user_stacklevel,
)
from symgraph_torch._cuda_device import CudaDeviceLayer, DeviceLayer
from symgraph_torch._executors import _free_batch_slots, require_torch_host
from symgraph_torch._model import DetachedSymbolicModel
from symgraph_torch._policy import plan_constants
from symgraph_torch._tensor import ShapeCheck
from symgraph_torch._tracing import EAGER_ONLY, eager_only

__all__ = ["CUDA_GRAPHS", "CudaGraphsExecutor", "CudaGraphsFallbackWarning"]

_OPTIONS = ("buckets", "max_graphs", "outputs", "strict", "batch_independent", "warmup", "device_layer")
_NAME = "cuda_graphs"
# How many refused keys (with their reasons) a model remembers.
_REFUSED_KEYS = 256


class CudaGraphsFallbackWarning(UserWarning):
    """A call of a ``cuda_graphs`` model ran eagerly instead of replaying a graph; the message says why.

    Issued once per model and reason.

    Example:
        >>> from symgraph_torch.cuda_graphs import CudaGraphsFallbackWarning
        >>> issubclass(CudaGraphsFallbackWarning, UserWarning)
        True
    """


class Fallbacks:
    """What runs eagerly and why: counts each reason, warns once per reason, or raises under ``strict``.

    Args:
        what: Who falls back, for messages (``the 'cuda_graphs' executor``).
        strict: Raise :class:`~symgraph.ExecutorError` instead.

    Example:
        >>> import warnings
        >>> fallbacks = Fallbacks("my executor", strict=False)
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     fallbacks.note("no device"); fallbacks.note("no device")
        >>> len(caught), dict(fallbacks.counts)
        (1, {'no device': 2})
    """

    def __init__(self, what: str, *, strict: bool) -> None:
        self.what, self.strict = what, strict
        self.counts: collections.Counter[str] = collections.Counter()
        self._warned: set[str] = set()

    def note(self, reason: str) -> None:
        """Count ``reason`` (warning the first time), or raise under ``strict``."""
        if self.strict:
            raise ExecutorError(f"{self.what} cannot replay this call (strict=True): {reason}")
        self.counts[reason] += 1
        if reason not in self._warned:
            self._warned.add(reason)
            warnings.warn(
                f"{self.what} runs this call eagerly: {reason}", CudaGraphsFallbackWarning, stacklevel=user_stacklevel()
            )


# -- options -----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Options:
    buckets: tuple[int, ...] | None
    max_graphs: int
    static_outputs: bool
    strict: bool
    batch_independent: bool
    warmup: int
    layer: DeviceLayer


def _option_error(name: str, expected: str, value: Any) -> TypeError:
    return TypeError(f"executor {_NAME!r}: executor_options[{name!r}] must be {expected}, got {value!r}")


def _positive_int(options: Mapping[str, Any], name: str, default: int) -> int:
    value = options.get(name, default)
    if type(value) is not int or value < 1:
        raise _option_error(name, "an int of at least 1", value)
    return value


def _flag(options: Mapping[str, Any], name: str) -> bool:
    value = options.get(name, False)
    if type(value) is not bool:
        raise _option_error(name, "a bool", value)
    return value


def _parse_options(options: Mapping[str, Any]) -> _Options:
    check_options(_NAME, options, _OPTIONS)
    buckets = options.get("buckets")
    if buckets is not None:
        if isinstance(buckets, (str, bytes)) or not isinstance(buckets, Sequence) or not buckets:
            raise _option_error("buckets", "a non-empty list of batch sizes", buckets)
        if any(type(b) is not int or b < 1 for b in buckets):
            raise _option_error("buckets", "a list of ints of at least 1", buckets)
        if len(set(buckets)) != len(buckets):
            raise ValueError(f"executor {_NAME!r}: executor_options['buckets'] repeats a size: {list(buckets)}")
        buckets = tuple(sorted(buckets))
    max_graphs = _positive_int(options, "max_graphs", max(8, len(buckets or ())))
    if buckets is not None and len(buckets) > max_graphs:
        raise ValueError(
            f"executor {_NAME!r}: executor_options['max_graphs'] ({max_graphs}) is smaller than the number "
            f"of buckets ({len(buckets)}); every bucket needs a graph"
        )
    outputs = options.get("outputs", "fresh")
    if outputs not in ("fresh", "static") or type(outputs) is not str:
        raise _option_error("outputs", "'fresh' or 'static'", outputs)
    layer = options.get("device_layer")
    if layer is None:
        layer = CudaDeviceLayer()
    elif not isinstance(layer, DeviceLayer):
        raise _option_error("device_layer", "a symgraph_torch.cuda_graphs.DeviceLayer", layer)
    return _Options(
        buckets=buckets,
        max_graphs=max_graphs,
        static_outputs=outputs == "static",
        strict=_flag(options, "strict"),
        batch_independent=_flag(options, "batch_independent"),
        warmup=_positive_int(options, "warmup", 3),
        layer=layer,
    )


# -- what a plan holds that cannot be captured ---------------------------------------------
# Operations that wait for the device (their result decides a size or a Python value).
_SYNCING = frozenset(
    {
        "item",
        "tolist",
        "nonzero",
        "argwhere",
        "unique",
        "unique_consecutive",
        "masked_select",
        "bincount",
        "numpy",
        "cpu",
        "__bool__",
        "__int__",
        "__float__",
        "__index__",
    }
)
# Operations whose result is boolean: indexing with it is boolean indexing, which syncs.
_COMPARISONS = frozenset({"<", "<=", ">", ">=", "==", "!="})
# Boolean when every operand is (on integers they are bitwise, and their result is an index).
_LOGICAL = frozenset({"invert", "&", "|", "^"})
_BOOLEAN_METHODS = frozenset(
    {
        "eq",
        "ne",
        "lt",
        "le",
        "gt",
        "ge",
        "isnan",
        "isinf",
        "isfinite",
        "isposinf",
        "isneginf",
        "logical_and",
        "logical_or",
        "logical_not",
        "logical_xor",
        "bool",
    }
)


def _where(step: Any) -> str:
    return f" (recorded at {step.where})" if step.where else ""


def _plan_reason(plan: Plan) -> str | None:
    """Why no call of ``plan`` can be captured, naming the step; ``None`` when calls can be."""
    boolean = {
        i for i, spec in enumerate(plan.inputs) if isinstance(spec.check, ShapeCheck) and spec.check.dtype == torch.bool
    }
    first = len(plan.inputs)
    for j, step in enumerate(plan.steps):
        op = step.op
        name: Any = None
        if isinstance(op, MethodCall):
            name = op.name
        elif isinstance(op, CallOp):
            name = getattr(op.func.value, "__name__", None) if hasattr(op.func, "value") else None
            if name == "where" and len(op.args) == 1:
                name = "nonzero"  # torch.where(condition) is nonzero(condition, as_tuple=True)
        if isinstance(name, str) and name in _SYNCING:
            return f"step {step.name!r}{_where(step)} calls {name}, which waits for the device"
        if isinstance(op, Slice) and any(step.args[r] in boolean for r in op.index.refs()):
            return f"step {step.name!r}{_where(step)} indexes with a boolean mask, which waits for the device"
        if isinstance(op, Operator):
            operands = [step.args[r] for t in op.operands for r in t.refs()]
            if op.symbol in _COMPARISONS or (op.symbol in _LOGICAL and all(slot in boolean for slot in operands)):
                boolean.add(first + j)
        elif isinstance(name, str) and name in _BOOLEAN_METHODS:
            boolean.add(first + j)
    for _, value in plan_constants(plan):
        if isinstance(value, torch.Tensor) and value.layout != torch.strided:
            return f"the model holds a {value.layout} tensor constant; graphs capture dense tensors only"
    return None


# -- watching models for what drops their graphs ----------------------------------------------
class _Watch:
    """Tells the runners watching a module when one of its attributes, layers, parameters or buffers is set."""

    def __init__(self) -> None:
        self.modules: weakref.WeakKeyDictionary[nn.Module, weakref.WeakSet[_Runner]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._installed = False

    def install(self) -> None:
        with self._lock:
            if self._installed:
                return
            # A graph reads what the layers held at capture: `model.Linear_1 = other`,
            # `layer.weight = nn.Parameter(...)`, `dropout.p = 0.1` or
            # `register_buffer(...)` must drop it. Nothing but global hooks and
            # nn.Module.__setattr__ sees all of them; installed by the first
            # cuda_graphs model, so that other programs are left alone.
            nn.modules.module.register_module_module_registration_hook(self._registered)
            nn.modules.module.register_module_parameter_registration_hook(self._registered)
            nn.modules.module.register_module_buffer_registration_hook(self._registered)
            setattr_ = nn.Module.__setattr__
            changed = self.changed

            def watched_setattr(module: nn.Module, name: str, value: Any) -> None:
                setattr_(module, name, value)
                if name != "training":  # part of every key, and set by every train() and eval()
                    changed(module, name)

            watched_setattr.__wrapped__ = setattr_  # type: ignore[attr-defined]
            watched_setattr.__name__ = watched_setattr.__qualname__ = "__setattr__"
            nn.Module.__setattr__ = watched_setattr  # type: ignore[method-assign,assignment]
            self._installed = True

    def watch(self, module: nn.Module, runner: _Runner) -> None:
        runners = self.modules.get(module)
        if runners is None:
            runners = self.modules[module] = weakref.WeakSet()
        runners.add(runner)

    def changed(self, module: nn.Module, name: str) -> None:
        runners = self.modules.get(module)
        if runners:
            for runner in list(runners):
                runner.touched(module, name)

    def _registered(self, module: nn.Module, name: str, value: Any) -> None:
        self.changed(module, name)


_WATCH = _Watch()

# torch's process-wide module hooks: while any is registered, no call is captured.
_GLOBAL_HOOKS = tuple(
    getattr(_module_globals, name)
    for name in (
        "_global_forward_hooks",
        "_global_forward_pre_hooks",
        "_global_backward_hooks",
        "_global_backward_pre_hooks",
    )
    if hasattr(_module_globals, name)
)
_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


_any_autocast: Callable[[], bool] = getattr(torch._C, "_is_any_autocast_enabled", lambda: True)


def hooks_reason(modules: Iterable[nn.Module]) -> str:
    """Why a replay cannot stand for a call while module hooks are registered (global or on ``modules``).

    Example:
        >>> from torch import nn
        >>> layer = nn.ReLU()
        >>> _ = layer.register_forward_hook(lambda *args: None)
        >>> hooks_reason([layer])
        'layer ReLU has forward_hooks, which a replay would not run'
    """
    if any(_GLOBAL_HOOKS):
        return "global module hooks are registered (register_module_forward_hook, ...), which a replay would not run"
    for module in modules:
        for name in _HOOK_DICTS:
            if getattr(module, name, None):
                return f"layer {type(module).__name__} has {name[1:]}, which a replay would not run"
    return "a layer has module hooks, which a replay would not run"


def placement_reason(layer: DeviceLayer, named: Iterable[tuple[str, Any]]) -> tuple[str | None, torch.device | None]:
    """``(None, device)`` when the tensors among ``named`` are dense and on one device of ``layer``; else why not.

    Example:
        >>> import torch
        >>> from symgraph_torch.cuda_graphs import FakeDeviceLayer
        >>> placement_reason(FakeDeviceLayer("cuda"), [("input 'x'", torch.zeros(1)), ("scale", 2.0)])
        ("input 'x' is on cpu, not on a CUDA (fake) device", None)
    """
    devices: set[torch.device] = set()
    for what, tensor in named:
        if not isinstance(tensor, torch.Tensor):
            continue
        if tensor.layout != torch.strided:
            return f"{what} is a {tensor.layout} tensor; graphs capture dense tensors only", None
        if not layer.is_device_tensor(tensor):
            return f"{what} is on {tensor.device}, not on a {layer.name} device", None
        devices.add(layer.device_of(tensor))
    if not devices:
        return f"no input, parameter or buffer is a tensor on a {layer.name} device", None
    if len(devices) > 1:
        return f"the tensors are on several devices ({', '.join(sorted(map(str, devices)))})", None
    return None, devices.pop()


def _autocast_state() -> tuple[Any, ...]:
    """Autocast per device type, and inference mode (whose tensors cannot be written outside it)."""
    if not _any_autocast():  # the common case, in one call rather than seven
        return (torch.is_inference_mode_enabled(),)
    state: list[Any] = [torch.is_inference_mode_enabled(), torch.is_autocast_cache_enabled()]
    if hasattr(torch, "get_autocast_dtype"):
        for device in ("cuda", "cpu"):
            state.append(torch.is_autocast_enabled(device))
            state.append(torch.get_autocast_dtype(device))
    else:  # torch before 2.4: one function per device type
        state.extend(
            (
                torch.is_autocast_enabled(),
                torch.get_autocast_gpu_dtype(),
                torch.is_autocast_cpu_enabled(),
                torch.get_autocast_cpu_dtype(),
            )
        )
    return tuple(state)


_HASHABLE_SCALARS = (type(None), bool, int, float, str)
_training = operator.attrgetter("training")
_requires_grad = operator.attrgetter("requires_grad")
_data_ptr = torch.Tensor.data_ptr


@dataclass
class _Graph:
    """One captured key: the graph (or graphed callable), its static inputs and outputs."""

    graph: Any
    inputs: list[Any]
    outputs: list[Any]
    spec: Any
    bucket: int | None
    device: torch.device
    graphed: Callable[..., Any] | None = None
    module: _GraphedForward | None = None
    verified: bool = False
    #: Graphed calls whose backward has not started yet (and whose autograd graph is alive).
    pending: int = 0
    #: Graphed forward replays so far.
    forwards: int = 0
    #: The output is one value, not a tree of them.
    single: bool = False

    def __post_init__(self) -> None:
        if self.spec is not None and len(self.outputs) == 1:
            marker = object()
            self.single = pytree.tree_unflatten([marker], self.spec) is marker


class _Preserved:
    """Puts tensors and generator states back as they were when the block began."""

    def __init__(self, tensors: Sequence[torch.Tensor], generators: Sequence[torch.Generator]) -> None:
        self.tensors, self.generators = tensors, generators

    def __enter__(self) -> None:
        self.saved = [t.detach().clone() for t in self.tensors]
        self.states = [g.get_state() for g in self.generators]

    def __exit__(self, *exc: Any) -> None:
        with torch.no_grad():
            for tensor, value in zip(self.tensors, self.saved, strict=True):
                tensor.copy_(value)
        for generator, state in zip(self.generators, self.states, strict=True):
            generator.set_state(state)


class _Pending(torch.autograd.Function):
    """Passes a graphed call's outputs through, and keeps its activations from being overwritten too early.

    The graph holds one set of activations: a second forward replay before the
    first one's backward would make that backward use the second call's. A call
    counts as pending until its backward starts (or its autograd graph is
    freed without one); while one is, the executor runs further calls eagerly.
    A backward that comes after another replay (``retain_graph=True``, then
    another call) raises rather than return wrong gradients.
    """

    @staticmethod
    def forward(ctx: Any, entry: _Graph, *outputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        entry.pending += 1
        entry.forwards += 1
        ctx.entry, ctx.forward_index = entry, entry.forwards
        token = ctx.token = [entry]
        weakref.finalize(ctx, _Pending.release, token)
        return tuple(o.view_as(o) for o in outputs)

    @staticmethod
    def release(token: list[Any]) -> None:
        if token:
            token.pop().pending -= 1

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> tuple[Any, ...]:
        if ctx.entry.forwards != ctx.forward_index:
            raise RuntimeError(
                "symgraph cuda_graphs: this backward needs the activations of an earlier call, which a later call "
                "of the same graph has overwritten (a second backward through a retained graph?); run that "
                "backward before calling the model again, or use executor='codegen' for this pattern"
            )
        _Pending.release(ctx.token)
        return (None, *grads)


class _GraphedForward(nn.Module):
    """The forward of one key as a module, for ``make_graphed_callables``: tensors in, tensor leaves out."""

    def __init__(self, host: nn.Module, run: Callable[..., Any], template: list[Any], slots: list[int]) -> None:
        super().__init__()
        self.host = host  # registered, so that make_graphed_callables finds its parameters
        self._run, self._template, self._slots = run, template, slots
        self.spec: Any = None
        self.constants: list[Any] = []

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        values = list(self._template)
        for slot, tensor in zip(self._slots, tensors, strict=True):
            values[slot] = tensor
        leaves, self.spec = pytree.tree_flatten(self._run(*values))
        self.constants = leaves
        return tuple(leaf for leaf in leaves if isinstance(leaf, torch.Tensor))


class _Runner:
    """The runner of one model: its graphs by key, its fallbacks and its statistics."""

    def __init__(self, plan: Plan, options: _Options, host: DetachedSymbolicModel) -> None:
        self._options = options
        self._layer = options.layer
        self._host = weakref.ref(host)
        self._eager = compile_plan(plan, host.codegen_policy(plan, {}))
        self._plan_reason = _plan_reason(plan)
        self._slots = tuple(range(len(plan.inputs)))
        self._names = tuple(spec.name for spec in plan.inputs)
        self._batch_slots = frozenset(_free_batch_slots(plan))
        self._generators = _generators_of(plan)
        self._output_batch, self._unpaddable = _batch_outputs(host.output_shape)
        if options.buckets is not None and not self._batch_slots:
            raise ValueError(
                f"executor {_NAME!r}: executor_options['buckets'] pads the batch, and no input of this "
                "model has one (every input was given a fixed batch size)"
            )
        self._graphs: collections.OrderedDict[Any, _Graph] = collections.OrderedDict()
        self._refused: collections.OrderedDict[Any, str] = collections.OrderedDict()
        self._pools: dict[torch.device, Any] = {}
        self._streams: dict[torch.device, Any] = {}
        self._stats = {"captures": 0, "replays": 0, "eager_calls": 0, "evictions": 0, "invalidations": 0}
        self._fallbacks = Fallbacks(f"the {_NAME!r} executor", strict=options.strict)
        self._unpadded: collections.Counter[str] = collections.Counter()
        self._lock = threading.RLock()
        self._last_stream: Any = None
        self._capturing = False
        self._side_effect: str | None = None
        self._watch(host)

    # -- what the model is made of now --------------------------------------------------
    def _watch(self, host: DetachedSymbolicModel) -> None:
        """Note the model's layers and tensors as they are now, to see later what changed."""
        _WATCH.install()
        layers = [m for m in host.modules() if m is not host]
        for module in (host, *layers):
            _WATCH.watch(module, self)
        self.stale = False
        self._modules = layers
        self._padding_reasons: dict[tuple[bool, ...], str | None] = {}  # they depend on the layers
        self._hook_dicts = [getattr(m, name) for m in layers for name in _HOOK_DICTS if hasattr(m, name)]
        self._parameters = list(host.parameters())
        self._buffer_dicts = [m._buffers for m in (host, *layers) if m._buffers]
        self._pointers = self._current_pointers()

    def _current_pointers(self) -> list[int]:
        pointers = list(map(_data_ptr, self._parameters))
        if self._buffer_dicts:  # most models have none: skip the generator
            pointers.extend(b.data_ptr() for d in self._buffer_dicts for b in d.values() if b is not None)
        return pointers

    def _buffers(self) -> list[torch.Tensor]:
        return [b for d in self._buffer_dicts for b in d.values() if b is not None]

    def touched(self, module: nn.Module, name: str) -> None:
        """Called when ``name`` of ``module`` (one of the model's) is set: the graphs may be stale."""
        if self._capturing:
            # Set by the forward itself: a replay would not set it again.
            self._side_effect = (
                f"layer {type(module).__name__} sets {name!r} in its forward, which a replay would not do"
            )
        else:
            self.stale = True

    def _changed(self) -> str | None:
        if self.stale:
            return "an attribute, layer, parameter or buffer of the model was set"
        if self._current_pointers() != self._pointers:
            return "a parameter or buffer of the model moved (.to(), .half(), .data = ...)"
        return None

    def invalidate(self, reason: str) -> None:
        """Drop every graph (and every cached refusal), because ``reason``."""
        for entry in self._graphs.values():
            self._drop(entry)
        if self._graphs:
            self._stats["invalidations"] += 1
        self._graphs.clear()
        self._refused.clear()
        host = self._host()
        if host is not None:
            self._watch(host)

    # -- the call ------------------------------------------------------------------
    def __call__(self, *values: Any) -> Any:
        if EAGER_ONLY.active:
            return self._eager(*values)
        if self._plan_reason is not None:
            return self._fallback(self._plan_reason, values)
        # The static buffers are shared by every call: one call at a time.
        with self._lock:
            return self._call(values)

    def _call(self, values: Sequence[Any]) -> Any:
        changed = self._changed()
        if changed is not None:
            self.invalidate(changed)
        if any(_GLOBAL_HOOKS) or any(self._hook_dicts):
            return self._fallback(hooks_reason(self._modules), values)
        key, batch, bucket = self._key(values)
        if type(key) is str:
            return self._fallback(key, values)
        if bucket is not None and batch != bucket:
            unpadded = self._padding_reason(key)
            if unpadded is not None:
                # Padding would change the answer: a graph of the call's own size instead.
                self._unpadded[unpadded] += 1
                key, bucket = self._rekey(key, batch), None
        entry: _Graph | str | None = self._graphs.get(key)
        if entry is None:
            refused = self._refused.get(key)
            if refused is not None:
                return self._fallback(refused, values)
            entry = self._capture_for(key, values, batch, bucket)
            if isinstance(entry, str):
                return self._fallback(entry, values)
        else:
            assert not isinstance(entry, str)
            self._graphs.move_to_end(key)
        if bucket is not None and batch != bucket and not entry.verified:
            return self._verify(key, entry, values, batch)
        return self._replay(entry, values, batch)

    def _key(self, values: Sequence[Any]) -> tuple[Any, int | None, int | None]:
        """``(key, batch, bucket)`` of a call; ``key`` is a reason when the call cannot have one."""
        buckets = self._options.buckets
        batch: int | None = None
        if buckets is not None:
            for slot in self._batch_slots:
                value = values[slot]
                if not isinstance(value, torch.Tensor) or value.dim() == 0:
                    continue
                size = value.shape[0]
                if batch is None:
                    batch = size
                elif batch != size:
                    return f"the batch inputs disagree on the batch size ({batch} and {size})", None, None
        bucket = None
        if batch is not None and buckets is not None:
            bucket = next((b for b in buckets if b >= batch), None)
            if bucket is None:
                return f"a batch of {batch} is larger than the largest bucket ({buckets[-1]})", None, None
        parts: list[Any] = []
        for slot, value in zip(self._slots, values, strict=True):
            if isinstance(value, torch.Tensor):
                if bucket is not None and slot in self._batch_slots and value.dim() > 0:
                    parts.append(((bucket, *value.shape[1:]), None, value.dtype, value.device, value.requires_grad))
                else:
                    parts.append((value.shape, value.stride(), value.dtype, value.device, value.requires_grad))
            elif type(value) in _HASHABLE_SCALARS:
                parts.append((type(value), value))
            else:
                return (
                    (
                        f"input {self._names[slot]!r} is a {type(value).__name__}: a graph keys tensors and "
                        "None, bool, int, float or str values only"
                    ),
                    None,
                    None,
                )
        grad = torch.is_grad_enabled()
        key = (
            tuple(parts),
            tuple(map(_training, self._modules)),
            grad,
            tuple(map(_requires_grad, self._parameters)) if grad else None,
            _autocast_state(),
        )
        return key, batch, bucket

    # -- capturing ---------------------------------------------------------------------
    def _device_reason(self, values: Sequence[Any]) -> tuple[str | None, torch.device | None]:
        named: list[tuple[str, Any]] = [(f"input {name!r}", v) for name, v in zip(self._names, values, strict=True)]
        host = self._host()
        if host is not None:
            named.extend((f"parameter {n!r}", p) for n, p in host.named_parameters())
            named.extend((f"buffer {n!r}", b) for n, b in host.named_buffers())
        return placement_reason(self._layer, named)

    def _padding_reason(self, key: Any) -> str | None:
        # It depends on the layers' modes alone: worked out once per mode, not at every padded call.
        training = key[1]
        try:
            return self._padding_reasons[training]
        except KeyError:
            reason = self._padding_reasons[training] = self._padding_reason_for(training)
            return reason

    def _padding_reason_for(self, training: tuple[bool, ...]) -> str | None:
        if self._unpaddable is not None:
            return self._unpaddable
        for module, flag in zip(self._modules, training, strict=True):
            if flag and isinstance(module, nn.modules.batchnorm._BatchNorm):
                return (
                    f"layer {type(module).__name__} is in training mode: its batch statistics would "
                    "count the padding, so the batch cannot be padded to a bucket"
                )
        if any(training) and not self._options.batch_independent:
            return (
                "the model is in training mode, where padding the batch to a bucket changes what "
                "random layers draw; call model.eval(), or pass batch_independent=True to pad anyway"
            )
        return None

    def _capture_for(self, key: Any, values: Sequence[Any], batch: int | None, bucket: int | None) -> _Graph | str:
        """The graph for ``key``, captured now (with the other buckets, largest first), or why not."""
        reason, device = self._device_reason(values)
        if reason is not None:
            self._refuse(key, reason)
            return reason
        assert device is not None
        buckets = self._options.buckets
        if bucket is None or buckets is None:
            wanted = [(key, bucket)]
        else:
            # Largest first: the smaller graphs then fit in the blocks the largest freed.
            wanted = [(self._rekey(key, b), b) for b in reversed(buckets)]
        found: _Graph | str = "not captured"
        for each, size in wanted:
            if each in self._graphs or each in self._refused:
                continue
            entry = self._capture(each, values, size, device)
            if each == key:
                found = entry
        return found

    def _rekey(self, key: Any, bucket: int | None) -> Any:
        parts = list(key[0])
        for slot in self._batch_slots:
            part = parts[slot]
            if type(part[0]) is tuple and part[1] is None:
                parts[slot] = ((bucket, *part[0][1:]), *part[1:])
        return (tuple(parts), *key[1:])

    def _capture(self, key: Any, values: Sequence[Any], bucket: int | None, device: torch.device) -> _Graph | str:
        layer = self._layer
        static: list[Any] = []
        for slot, value in zip(self._slots, values, strict=True):
            if not isinstance(value, torch.Tensor):
                static.append(value)
            elif bucket is not None and slot in self._batch_slots and value.dim() > 0:
                buffer = torch.zeros((bucket, *value.shape[1:]), dtype=value.dtype, device=value.device)
                rows = min(bucket, value.shape[0])
                buffer[:rows].copy_(value.detach()[:rows])
                static.append(buffer.requires_grad_(value.requires_grad))
            else:
                static.append(value.detach().clone().requires_grad_(value.requires_grad))
        if device not in self._pools:
            self._pools[device] = layer.new_pool(device)
            self._streams[device] = layer.new_stream(device)
        pool, stream = self._pools[device], self._streams[device]
        generators = [layer.default_generator(device), *self._generators]
        state = self._buffers()  # what a forward may change: BatchNorm statistics, counters
        autograd = key[2] and (any(key[3]) or any(isinstance(v, torch.Tensor) and v.requires_grad for v in static))
        if autograd and self._generators:
            # make_graphed_callables registers only the default generator: replays
            # would draw the same numbers from the model's own again and again.
            reason = (
                "the model draws from its own torch.Generator, which graphs of forward and backward "
                "cannot register; call it under torch.no_grad(), or draw from the default generator"
            )
            self._refuse(key, reason)
            return reason
        graph: Any = None
        try:
            with layer.side_stream(stream), _Preserved(state, generators):
                if autograd:
                    entry = self._capture_autograd(static, pool, bucket, device)
                else:
                    graph = layer.new_graph()
                    for generator in self._generators:
                        layer.register_generator(graph, generator)
                    with eager_only():
                        # Warm-up may set attributes once (lazy layers, caches); the capture must not.
                        for _ in range(self._options.warmup):
                            self._eager(*static)
                        self._capturing = True
                        outputs = layer.capture(graph, lambda: self._eager(*static), pool, stream, state)
                    leaves, spec = pytree.tree_flatten(outputs)
                    entry = _Graph(graph, static, leaves, spec, bucket, device)
        except Exception as exc:
            if graph is not None:
                layer.reset(graph)
            layer.synchronize(device)
            text = str(exc).strip()
            reason = f"capture failed: {type(exc).__name__}: {text.splitlines()[0] if text else ''}"
            self._refuse(key, reason)
            return reason
        finally:
            self._capturing = False
        if self._side_effect is not None:
            # Every call of this model would do it: no graph for any of them.
            self._drop(entry)
            self._plan_reason = self._side_effect
            return self._side_effect
        self._stats["captures"] += 1
        self._graphs[key] = entry
        while len(self._graphs) > self._options.max_graphs:
            _, evicted = self._graphs.popitem(last=False)
            self._drop(evicted)
            self._stats["evictions"] += 1
        return entry

    def _capture_autograd(self, static: list[Any], pool: Any, bucket: int | None, device: torch.device) -> _Graph:
        host = self._host()
        if host is None:  # pragma: no cover - the model calls its runner
            raise RuntimeError("the model is gone")
        slots = [i for i, v in enumerate(static) if isinstance(v, torch.Tensor)]
        module = _GraphedForward(host, self._eager, static, slots)
        # Not train(): that would set every layer of the model to the model's mode.
        module.training = host.training
        with eager_only():
            module(*(static[i] for i in slots))  # one warm-up of ours: it may set attributes once
            self._capturing = True
            graphed = self._layer.make_graphed_callables(
                module, tuple(static[i] for i in slots), pool, self._options.warmup
            )
        return _Graph(None, static, [], None, bucket, device, graphed=graphed, module=module)

    def _drop(self, entry: _Graph) -> None:
        """Free what ``entry`` holds on the device (a graphed callable's graphs go with its last reference)."""
        if entry.graph is not None:
            self._layer.reset(entry.graph)

    def _refuse(self, key: Any, reason: str) -> None:
        self._refused[key] = reason
        while len(self._refused) > _REFUSED_KEYS:
            self._refused.popitem(last=False)

    # -- replaying -----------------------------------------------------------------------
    def _replay(self, entry: _Graph, values: Sequence[Any], batch: int | None) -> Any:
        padded = entry.bucket is not None and batch != entry.bucket
        stream = self._layer.current_stream(entry.device)
        if stream != self._last_stream:
            # The previous call's replay and output copies may still run on another
            # stream: this call's writes to the static buffers must come after them.
            if self._last_stream is not None:
                self._layer.wait_stream(stream, self._last_stream)
            self._last_stream = stream
        if entry.graphed is not None:
            if entry.pending:
                # A second forward before the first one's backward would overwrite the
                # activations that backward reads.
                return self._fallback(
                    "a call's backward has not run yet (its graph holds that call's activations), "
                    "and this call would overwrite them",
                    values,
                )
            tensors = []
            for slot, value in enumerate(values):
                if isinstance(value, torch.Tensor):
                    if padded and slot in self._batch_slots and value.dim() > 0:
                        assert entry.bucket is not None and batch is not None
                        pad = value.new_zeros((entry.bucket - batch, *value.shape[1:]))
                        value = torch.cat((value, pad))
                    tensors.append(value)
            module = entry.module
            assert module is not None
            outputs = _Pending.apply(entry, *entry.graphed(*tensors))
            outputs = iter(outputs if isinstance(outputs, tuple) else (outputs,))
            # The leaves that are not tensors were fixed by the key; the capture noted them.
            leaves = [next(outputs) if isinstance(c, torch.Tensor) else c for c in module.constants]
            spec = module.spec
        else:
            # No autograd here (a call that needs it has the graphed path), so no no_grad() either.
            for slot in self._slots:
                buffer = entry.inputs[slot]
                if isinstance(buffer, torch.Tensor):
                    value = values[slot]
                    if padded and slot in self._batch_slots and buffer.dim() > 0:
                        buffer[:batch].copy_(value)
                        buffer[batch:].zero_()
                    else:
                        buffer.copy_(value)
            self._layer.replay(entry.graph)
            leaves, spec = entry.outputs, entry.spec
            self._stats["replays"] += 1
            if not padded and entry.single:
                # One tensor out, the common case: no tree to rebuild.
                out = leaves[0]
                return out if self._options.static_outputs or not isinstance(out, torch.Tensor) else out.clone()
        if entry.graphed is not None:
            self._stats["replays"] += 1
        if padded:
            leaves = [leaf[:batch] if cut else leaf for leaf, cut in zip(leaves, self._output_batch, strict=True)]
        if not self._options.static_outputs:
            leaves = [leaf.clone() if isinstance(leaf, torch.Tensor) else leaf for leaf in leaves]
        return pytree.tree_unflatten(leaves, spec)

    def _verify(self, key: Any, entry: _Graph, values: Sequence[Any], batch: int | None) -> Any:
        """The first padded replay of a bucket, compared with eager code: padding must not change the result."""
        result = self._replay(entry, values, batch)
        if any(key[1]):  # declared batch-independent in training mode: random layers draw differently
            entry.verified = True
            return result
        with torch.no_grad():
            expected = self._eager(*values)
        got, expected_leaves = pytree.tree_leaves(result), pytree.tree_leaves(expected)
        same = len(got) == len(expected_leaves) and all(_close(a, b) for a, b in zip(got, expected_leaves, strict=True))
        if same:
            entry.verified = True
            return result
        # Padding changed the answer: the model mixes samples across the batch. Stop padding it.
        self._stats["eager_calls"] += 1
        self._options = _replace_buckets(self._options)
        for stale in [k for k, e in self._graphs.items() if e.bucket is not None]:
            self._drop(self._graphs.pop(stale))
        self._fallback(
            "padding the batch to a bucket changed the result (the model mixes samples across the batch, "
            "as a mean over dimension 0 does); buckets are off for this model",
            values,
            run=False,
        )
        return expected

    # -- falling back ----------------------------------------------------------------------
    def _fallback(self, reason: str, values: Sequence[Any], *, run: bool = True) -> Any:
        self._fallbacks.note(reason)
        if not run:
            return None
        self._stats["eager_calls"] += 1
        return self._eager(*values)

    # -- statistics -------------------------------------------------------------------------
    def executor_stats(self) -> dict[str, Any]:
        """Graphs held and captured, replays, eager calls with their reasons, evictions, pool memory."""
        return {
            "executor": _NAME,
            "graphs": len(self._graphs),
            **self._stats,
            "fallbacks": dict(self._fallbacks.counts),
            "unpadded": dict(self._unpadded),
            "pool_bytes": sum(self._layer.pool_bytes(pool) for pool in self._pools.values()),
        }


def _generators_of(plan: Plan) -> list[torch.Generator]:
    """The ``torch.Generator`` objects the plan's steps are given, each once (``generator=g`` sits in a kwargs dict)."""
    found: dict[int, torch.Generator] = {}
    stack = [value for _, value in plan_constants(plan)]
    while stack:
        value = stack.pop()
        if isinstance(value, torch.Generator):
            found.setdefault(id(value), value)
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, (list, tuple)):
            stack.extend(value)
    return list(found.values())


def _batch_outputs(shapes: Any) -> tuple[list[bool], str | None]:
    """Which output leaves have the batch first, from the recorded output shapes; or why padding cannot be undone."""
    if isinstance(shapes, dict):
        items = list(shapes.items())
    elif isinstance(shapes, (list, tuple)) and (not shapes or not all(type(s) in (int, type(None)) for s in shapes)):
        items = list(enumerate(shapes))
    else:
        items = [("", shapes)]
    flags: list[bool] = []
    for name, shape in items:
        if shape is None:
            where = f" {name!r}" if name != "" else ""
            return [], f"output{where} is not a tensor, so padded rows could not be sliced off it"
        flags.append(len(shape) > 0 and shape[0] is None)
    return flags, None


def _replace_buckets(options: _Options) -> _Options:
    return _Options(**{**options.__dict__, "buckets": None})


def _close(a: Any, b: Any) -> bool:
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
        return bool(a == b) if not isinstance(a, torch.Tensor) and not isinstance(b, torch.Tensor) else False
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if not a.is_floating_point() and not a.is_complex():
        return torch.equal(a, b)
    # Another batch size may choose another kernel, so compare with a tolerance
    # that is loose for rounding and tight for a statistic over the batch.
    tolerance = 1e-4 if a.dtype in (torch.float32, torch.float64, torch.complex64, torch.complex128) else 1e-2
    return torch.allclose(a, b, rtol=tolerance, atol=tolerance, equal_nan=True)


class CudaGraphsExecutor(Executor):
    """Runs a symgraph_torch model by replaying CUDA graphs of its forward.

    Registered as ``cuda_graphs``; see :mod:`symgraph_torch._cuda_graphs` for
    keys, buckets, fallbacks and invalidation.

    Args:
        name: The name models report (``cuda_graphs`` for the registered instance).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from symgraph_torch import Input, SymbolicModel
        >>> from symgraph_torch.cuda_graphs import FakeDeviceLayer
        >>> x = Input((3,))
        >>> model = SymbolicModel(x, nn.Linear(3, 1)(x), executor="cuda_graphs",
        ...     executor_options={"buckets": [2, 8], "device_layer": FakeDeviceLayer()}).eval()
        >>> model(torch.rand(5, 3)).shape, model.executor_stats()["graphs"]
        (torch.Size([5, 1]), 2)
    """

    def __init__(self, name: str = _NAME) -> None:
        super().__init__(name)

    def build(self, plan: Plan, options: Mapping[str, Any], host: Any) -> Runner:
        """A runner replaying graphs of the plan's generated code.

        Args:
            plan: The model's plan.
            options: ``buckets``, ``max_graphs``, ``outputs``, ``strict``,
                ``batch_independent``, ``warmup`` and ``device_layer``.
            host: The model; it must be a symgraph_torch model.

        Raises:
            TypeError: an option is unknown or of the wrong type.
            ValueError: an option's value cannot work for this model.
            ExecutorError: ``host`` is not a symgraph_torch model, CUDA is not
                available, or (with ``strict=True``) the plan holds a step that
                cannot be captured.

        Example:
            >>> import symgraph
            >>> x = symgraph.CustomInput(1)
            >>> symgraph.SymbolicModel(x, x + 1, executor="cuda_graphs")
            Traceback (most recent call last):
            ...
            symgraph.ExecutorError: the 'cuda_graphs' executor runs symgraph_torch models only, ...
        """
        parsed = _parse_options(options)
        host = require_torch_host(self.name, host)
        unavailable = parsed.layer.unavailable_reason()
        if unavailable is not None:
            raise ExecutorError(
                f"the {self.name!r} executor needs a {parsed.layer.name} device: {unavailable}; "
                "executor_options={'fallback': 'codegen'} runs the model without graphs where there is none"
            )
        runner = _Runner(plan, parsed, host)
        if parsed.strict and runner._plan_reason is not None:
            raise ExecutorError(
                f"the {self.name!r} executor cannot capture this model (strict=True): {runner._plan_reason}"
            )
        return runner


CUDA_GRAPHS = CudaGraphsExecutor(_NAME)
"""The registered ``cuda_graphs`` executor (entry point ``symgraph.executors:cuda_graphs``)."""
