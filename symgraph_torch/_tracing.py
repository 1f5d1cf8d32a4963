"""Recording torch calls: module calls, torch functions and tensor methods.

Everything here records through :func:`symgraph.plugin.record`, so a call that fails on
the example values leaves nothing in the graph. Calls are evaluated on the
example values with random operations redirected to a private generator of the
recording thread (see :func:`private_randomness`), so that building a model
draws exactly the random numbers that building the same layers by hand would (a
``Dropout`` run at trace time would otherwise shift every later initialisation),
and never touches the random stream of another thread.

What a model could not replay faithfully is refused here, at record time, with a
:class:`~symgraph.TraceError` that names the step and the user's line: in-place
tensor operations (their effect on the example would not be replayed in order),
and tensors computed from parameters outside the graph (they would be frozen).
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch._C import _has_torch_function
from torch.nn.parameter import is_lazy
from torch.utils._python_dispatch import TorchDispatchMode

from symgraph import TraceError
from symgraph.plugin import (
    BINARY,
    ArgumentCollector,
    Call,
    Const,
    EmitContext,
    MethodCall,
    Operation,
    OperatorSpec,
    SymbolicData,
    Template,
    backend_for,
    describe,
    record,
    record_operator,
    register_emitter,
)

__all__ = [
    "NESTED_CALL",
    "ModuleCall",
    "NestedModelCall",
    "SymbolicTorchValue",
    "TorchRecording",
    "bound_call",
    "call_nested",
    "checked_operators",
    "install_module_call_hook",
    "private_randomness",
    "record_call",
    "record_torch_function",
    "refuse_derived_tensor",
    "rng_neutral",
    "uninstall_module_call_hook",
]


def rng_neutral(fn: Callable[[], Any]) -> Any:
    """Run ``fn()`` and put the global CPU (and initialised CUDA) RNG states back.

    Example:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> expected = torch.rand(2)
        >>> _ = torch.manual_seed(0)
        >>> _ = rng_neutral(lambda: torch.rand(3))
        >>> torch.equal(torch.rand(2), expected)
        True
    """
    cpu_state = torch.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        return fn()
    finally:
        torch.set_rng_state(cpu_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


# -- random operations at trace time ---------------------------------------------------
# Restoring the global generator after a trace-time call would also rewind the
# draws another thread made meanwhile. Instead, while a call runs on the example
# values, a dispatch mode (thread-local, like torch's mode stack) hands every
# seeded operation a generator private to the recording thread, and the global
# generators are never touched.
_private = threading.local()
_aten = torch.ops.aten
_SEEDED = torch.Tag.nondeterministic_seeded
# Per operator overload: how to run it on a private generator (None: it cannot be).
_redirects: dict[Any, Callable[[torch.Generator, tuple[Any, ...], dict[str, Any]], Any] | None] = {}


def _generator_for(device: torch.device) -> torch.Generator:
    generators: dict[torch.device, torch.Generator] | None = getattr(_private, "generators", None)
    if generators is None:
        generators = _private.generators = {}
    found = generators.get(device)
    if found is None:
        # Seeded once per thread and device: building the same models draws the
        # same example values, run after run.
        found = generators[device] = torch.Generator(device=device).manual_seed(0)
    return found


def _device_of(args: Sequence[Any], kwargs: dict[str, Any]) -> torch.device:
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor):
            return value.device
    device = kwargs.get("device")
    return torch.device(device) if device is not None else torch.get_default_device()


def _with_generator(overload: Any) -> Callable[[torch.Generator, tuple[Any, ...], dict[str, Any]], Any]:
    def run(generator: torch.Generator, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return overload(*args, **{**kwargs, "generator": generator})

    return run


def _dropout(generator: torch.Generator, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    bound = dict(zip(("input", "p", "train"), args, strict=False)) | kwargs
    source, p, train = bound["input"], float(bound["p"]), bound.get("train")
    if train is False or p == 0.0:
        return source.clone(), torch.ones_like(source, dtype=torch.bool)
    keep = torch.empty_like(source).bernoulli_(1.0 - p, generator=generator)
    return source * keep * (0.0 if p == 1.0 else 1.0 / (1.0 - p)), keep.bool()


def _redirect_for(func: Any) -> Callable[[torch.Generator, tuple[Any, ...], dict[str, Any]], Any] | None:
    names = [a.name for a in func._schema.arguments]
    if "generator" in names:
        return _with_generator(func)
    if func is _aten.native_dropout.default:
        return _dropout
    if func is _aten.rand_like.default:
        return lambda g, args, kwargs: torch.empty_like(*args, **kwargs).uniform_(generator=g)
    if func is _aten.randn_like.default:
        return lambda g, args, kwargs: torch.empty_like(*args, **kwargs).normal_(generator=g)
    # rand.default has a sibling rand.generator with the same arguments plus the generator.
    packet = func.overloadpacket
    for name in packet.overloads():
        sibling = getattr(packet, name)
        arguments = [a.name for a in sibling._schema.arguments]
        if "generator" in arguments and [a for a in arguments if a != "generator"] == names:
            return _with_generator(sibling)
    return None


class _PrivateRandomness(TorchDispatchMode):
    def __torch_dispatch__(
        self, func: Any, types: Sequence[type], args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if _SEEDED in func.tags and kwargs.get("generator") is None:
            device = _device_of(args, kwargs)
            if device.type != "meta":  # meta tensors draw nothing
                if func in _redirects:
                    redirect = _redirects[func]
                else:
                    redirect = _redirects[func] = _redirect_for(func)
                if redirect is not None:
                    return redirect(_generator_for(device), tuple(args), dict(kwargs))
                # A seeded kernel that takes no generator (a fused attention
                # kernel's dropout): it draws from the global generator, put back
                # afterwards, as the only way left.
                return rng_neutral(lambda: func(*args, **kwargs))
        return func(*args, **kwargs)


@contextlib.contextmanager
def private_randomness() -> Iterator[None]:
    """Within the block, random operations of this thread draw from a private generator.

    The global generators are neither used nor restored, so other threads' random
    streams are untouched. Trace-time evaluation runs in such a block.

    Example:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> expected = torch.rand(2)
        >>> _ = torch.manual_seed(0)
        >>> with private_randomness():
        ...     _ = torch.nn.functional.dropout(torch.ones(3), 0.5)
        >>> torch.equal(torch.rand(2), expected)
        True
    """
    with _PrivateRandomness():
        yield


class ModuleCall(Call):
    """A call of an ``nn.Module`` layer; its summary name is the layer's class name.

    Generated code calls the layer's ``_call_impl`` directly: that is what
    ``Module.__call__`` does, hooks included, one Python call shorter.

    Example:
        >>> import torch, symgraph_torch
        >>> x = symgraph_torch.Input((3,))
        >>> torch.nn.Linear(3, 2)(x).op
        ModuleCall(Linear(in_features=3, out_features=2, bias=True), (Ref(0),), {})
    """

    __slots__ = ()

    def __init__(self, func: Template, args: Sequence[Template], kwargs: Template) -> None:
        # Code generation and summaries use the layer itself, so it must be one.
        if not (isinstance(func, Const) and isinstance(func.value, nn.Module)):
            what = type(func.value if isinstance(func, Const) else func).__name__
            raise TypeError(f"{type(self).__name__} needs a Const holding an nn.Module, got {what}")
        super().__init__(func, args, kwargs)

    @property
    def layer(self) -> nn.Module:
        """The module being called."""
        assert isinstance(self.func, Const)
        return self.func.value  # type: ignore[no-any-return]

    def display_name(self, args: Sequence[Any]) -> str:
        return type(self.layer).__name__

    def __repr__(self) -> str:
        kwargs = self.kwargs.value if isinstance(self.kwargs, Const) else self.kwargs
        return f"{type(self).__name__}({self.layer!r}, {self.args!r}, {kwargs!r})"


class _NestedCall(threading.local):
    """The symbolic model :func:`call_nested` is calling now, on this thread."""

    model: Any = None


#: Set by :func:`call_nested` for the duration of a nested model's call; the
#: model's ``forward`` takes it (and clears it) to skip its input checks. A
#: thread-local attribute rather than a hidden keyword, so that ``forward`` can
#: have a real signature; ``torch.compile`` traces through it, which it does not
#: through a ``contextvars.ContextVar``.
NESTED_CALL = _NestedCall()


class _EagerOnly(threading.local):
    """Whether calls on this thread must run the models' code rather than replay graphs of their own.

    Set while a layer runs at trace time (a model called on symbolic inputs
    runs on their example values, which must not be captured) and while the
    ``cuda_graphs`` executor warms up or captures (the graph being captured
    holds the nested model's kernels).
    """

    active = False


EAGER_ONLY = _EagerOnly()


@contextlib.contextmanager
def eager_only() -> Iterator[None]:
    """Set :data:`EAGER_ONLY` for the block, restoring what it was after (blocks nest)."""
    before = EAGER_ONLY.active
    EAGER_ONLY.active = True
    try:
        yield
    finally:
        EAGER_ONLY.active = before


def call_nested(model: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a symbolic model used as a layer of an enclosing one, skipping its input checks.

    The model is called as ``model(...)`` is, hooks included: its ``forward``
    skips the checks when :data:`NESTED_CALL` names it. Whatever replaced it by
    module surgery (not a symbolic model) is called plainly.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from symgraph_torch import Input, SymbolicModel
        >>> x = Input((1, 4, 4))
        >>> inner = SymbolicModel(x, nn.Conv2d(1, 1, 3, padding=1)(x))
        >>> call_nested(inner, torch.rand(2, 1, 8, 8)).shape  # inner alone checks for 4x4
        torch.Size([2, 1, 8, 8])
    """
    if not getattr(model, "_symgraph_nested", False):
        return model(*args, **kwargs)
    # Restored whatever happens: a hook that raises before forward runs must not
    # leave the next direct call of this model unchecked.
    saved = NESTED_CALL.model
    NESTED_CALL.model = model
    try:
        return model(*args, **kwargs)
    finally:
        NESTED_CALL.model = saved


class NestedModelCall(ModuleCall):
    """A symbolic model used as a layer of another graph.

    Its own input checks are skipped (it is called through :func:`call_nested`):
    the shapes it receives were validated when the enclosing graph was
    recorded, by running it on them (a convolutional feature extractor built
    for 28x28 images may be reused on 64x64 ones), and the enclosing model
    checks its own inputs.

    Example:
        >>> from torch import nn
        >>> from symgraph_torch import Input, SymbolicModel
        >>> x = Input((1, 8, 8))
        >>> inner = SymbolicModel(x, nn.Conv2d(1, 2, 3, padding=1)(x))
        >>> inner(Input((1, 16, 16))).shape
        (None, 2, 16, 16)
    """

    __slots__ = ()

    def evaluate(self, args: Sequence[Any]) -> Any:
        call_args = [t.evaluate(args) for t in self.args]
        return call_nested(self.layer, *call_args, **self.kwargs.evaluate(args))


def _emit_module_call(op: ModuleCall, args: Sequence[str], ctx: EmitContext) -> str:
    # Without the torch model's policy (a core model running torch layers), a
    # layer is called as ``layer(...)`` would call it; the policy adds fast paths.
    parts = ctx.arguments(op.args, op.kwargs, args)
    if isinstance(op, NestedModelCall):
        return f"{ctx.pool.ref(call_nested)}({', '.join([ctx.pool.ref(op.layer), *parts])})"
    return f"{ctx.pool.ref(bound_call(op.layer))}({', '.join(parts)})"


def bound_call(layer: nn.Module) -> Callable[..., Any]:
    """What generated code calls to run ``layer`` exactly as ``layer(...)`` would.

    Example:
        >>> import torch
        >>> layer = torch.nn.ReLU()
        >>> bound_call(layer)(torch.tensor([-1.0, 2.0]))
        tensor([0., 2.])
    """
    # A layer compiled with ``module.compile()`` must go through ``__call__``, which
    # dispatches to the compiled version.
    if layer._compiled_call_impl is not None:
        return layer.__call__
    return layer._call_impl


register_emitter(ModuleCall, _emit_module_call)


# -- what is refused at record time ----------------------------------------------------
_LIBRARY = frozenset({"symgraph", "symgraph_numpy", "symgraph_torch", "torch"})


def _user_line() -> str:
    """``file:line`` of the innermost frame outside symgraph and torch (``F.relu`` is torch's)."""
    frame = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__")
        if not (isinstance(module, str) and module.partition(".")[0] in _LIBRARY):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back  # type: ignore[assignment]
    return "<unknown>"


def _step_name(func: Any) -> str:
    if isinstance(func, nn.Module):
        return f"the {type(func).__name__} layer"
    name = getattr(func, "__name__", None)
    return f"{name}()" if isinstance(name, str) else describe(func)


def _tensors_in(value: Any) -> Iterator[torch.Tensor]:
    # Constants are whole structures when nothing symbolic is inside ((c1, c2) is
    # one Const); a bounded, iterative walk over the builtin containers.
    stack = [value]
    budget = 10_000
    while stack and budget:
        budget -= 1
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            yield item
        elif type(item) in (list, tuple) or (isinstance(item, tuple) and hasattr(type(item), "_fields")):
            stack.extend(item)
        elif type(item) is dict:
            stack.extend(item.values())


def refuse_derived_tensor(tensor: Any, step: str) -> None:
    """Raise ``TraceError`` if ``tensor`` was computed from parameters outside the graph.

    Such a tensor (``pos_emb(torch.arange(n))``, ``emb.weight.T``) would be kept
    as a constant: frozen at its current value, its gradient graph kept alive and
    used up by the first ``backward()``, not moved or converted with the model's
    parameters. A parameter itself is fine: the model registers it and reads it
    at every call.

    Args:
        tensor: A constant about to be recorded.
        step: What is being recorded, for the message.

    Example:
        >>> import torch
        >>> weight = torch.nn.Parameter(torch.ones(2, 2))
        >>> refuse_derived_tensor(weight, "matmul")
        >>> refuse_derived_tensor(weight.T, "matmul")
        Traceback (most recent call last):
        ...
        symgraph.TraceError: matmul: a constant tensor argument of shape (2, 2) was computed from ...
    """
    if not isinstance(tensor, torch.Tensor) or isinstance(tensor, nn.Parameter):
        return
    base = tensor._base
    if tensor.grad_fn is None and not isinstance(base, nn.Parameter):
        return
    how = f"grad_fn={type(tensor.grad_fn).__name__}" if tensor.grad_fn is not None else "a view of a parameter"
    raise TraceError(
        f"{step}: a constant tensor argument of shape {tuple(tensor.shape)} was computed from parameters "
        f"outside the graph ({how}), at {_user_line()}. Recorded, it would keep today's value: training would "
        "not change it, a second backward() would fail, and .to()/.double() would not reach it. Compute it "
        "inside the graph instead: apply the layer to a symbolic value (pos_emb(torch.arange(x.size(1))) rather "
        "than pos_emb(torch.arange(n))), pass the Parameter itself (F.linear(h, emb.weight) rather than "
        "h @ emb.weight.T), or record your own function with symgraph.add_to_graph(fn, x); use .detach() "
        "for a deliberate constant"
    )


def _in_place_name(func: Any, kwargs: dict[str, Any]) -> str | None:
    name = getattr(func, "__name__", None)
    if not isinstance(name, str):
        return None
    if name.endswith("_") and not name.endswith("__"):
        return name
    if kwargs.get("inplace") is True:
        return f"{name}(..., inplace=True)"
    if kwargs.get("out") is not None:
        return f"{name}(..., out=...)"
    return None


def _refuse_in_place(func: Any, kwargs: dict[str, Any]) -> None:
    name = _in_place_name(func, kwargs)
    if name is None:
        return
    if name == "requires_grad_":
        # nn.Parameter(data) calls it: a layer was made with a symbolic size.
        raise TraceError(
            f"a symbolic tensor cannot become a parameter or require grad, at {_user_line()}. If a layer is "
            "being made with a size read from a symbolic tensor (nn.Linear(x.size(1), 10)), give it a number: "
            "x.shape[1] or x.features are plain ints where the size is known, while x.size(1) is symbolic so "
            "that torch.arange(x.size(1)) follows the input at replay"
        )
    if name.endswith("_"):
        spelling = f"h = h.{name[:-1]}(...) or torch.{name[:-1]}(h, ...)"
    else:
        spelling = "the call without inplace= or out="
    raise TraceError(
        f"{name} changes a tensor in place, at {_user_line()}: a model replays only the steps its outputs "
        f"need, in their order, so the change would be lost or made at another time than in your code. "
        f"Use the out-of-place form ({spelling}; F.relu(h) rather than F.relu_(h), h = h * m rather than "
        "h.mul_(m)). Layers such as nn.ReLU(inplace=True) are fine: their result is what is used"
    )


def checked_operators() -> dict[str, Callable[..., Any]]:
    """Operator methods for :class:`SymbolicTensor` that refuse operands computed from parameters.

    Each calls :class:`~symgraph.SymbolicData`'s own recording method after
    :func:`refuse_derived_tensor` has looked at the other operand.

    Example:
        >>> sorted(checked_operators())[:3]
        ['__add__', '__and__', '__divmod__']
    """
    methods: dict[str, Callable[..., Any]] = {}
    for spec in BINARY:
        for name in (spec.dunder, spec.reflected):
            if name is not None:
                methods[name] = _checked(name, spec.symbol)
    return methods


def _checked(name: str, symbol: str) -> Callable[..., Any]:
    base = getattr(SymbolicData, name)
    step = f"the {symbol} operator"

    def method(self: SymbolicData, other: Any, *rest: Any) -> Any:
        if isinstance(other, torch.Tensor):
            refuse_derived_tensor(other, step)
        return base(self, other, *rest)

    method.__name__ = method.__qualname__ = name
    return method


# -- symbolic values that are not tensors -------------------------------------------------
def _torch_value_class(value: Any) -> type[SymbolicData] | None:
    # Values a backend handles (a numpy array) keep their backend's class.
    return SymbolicTorchValue if backend_for(type(value)) is None else None


class TorchRecording:
    """Mixin of the handles torch dispatches to: torch functions given one are recorded, not run.

    Example:
        >>> issubclass(SymbolicTorchValue, TorchRecording)
        True
    """

    __slots__ = ()

    @classmethod
    def __torch_function__(
        cls, func: Any, types: Sequence[type], args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        """Record ``func`` instead of running it: torch calls this for any function given such a handle."""
        return record_torch_function(func, args, kwargs)

    @classmethod
    def symgraph_child_class_for(cls, value: Any) -> type[SymbolicData] | None:
        """The class of a value recorded from a torch handle: this one's if it is not a tensor.

        Sizes (``x.size(1)``, ``x.unbind(1)`` and what is computed from them) so
        keep torch's dispatch, and ``torch.arange(x.size(1))`` records too;
        tensors and other backends' values get their registry's class.
        """
        return None if isinstance(value, torch.Tensor) else _torch_value_class(value)


class SymbolicTorchValue(TorchRecording, SymbolicData):
    """A symbolic value that is not a tensor, recorded from torch: ``x.size(1)``, ``x.unbind(1)``.

    It records torch functions and tensor methods it is given, like a symbolic
    tensor does, so sizes read from symbolic tensors reach torch factories:
    ``torch.arange(x.size(1))``, ``torch.zeros((x.size(0), 4))``,
    ``token.expand((x.size(0), -1, -1))``. Values computed from it (``x.size(1) // 2``,
    ``x.size()[0]``) keep this class unless they are tensors.

    Example:
        >>> import torch, symgraph_torch
        >>> x = symgraph_torch.Input((5,))
        >>> positions = torch.arange(x.size(0) * 2)
        >>> model = symgraph_torch.SymbolicModel(x, positions)
        >>> model(torch.zeros(3, 5))
        tensor([0, 1, 2, 3, 4, 5])
    """

    __slots__ = ()


def _evaluate_at_trace_time(op: Operation, values: list[Any]) -> Any:
    # Running a layer at trace time must not change its state (BatchNorm would
    # count the example batch in its running statistics) nor any global RNG.
    saved: list[tuple[torch.Tensor, torch.Tensor]] = []
    hooks = []
    if isinstance(op, ModuleCall):
        for module in op.layer.modules():
            if any(b is not None and is_lazy(b) for b in module._buffers.values()):
                # A lazy module's buffers exist only once its first call made them:
                # they are saved then, by a pre-hook that runs after torch's own.
                hooks.append(module.register_forward_pre_hook(_save_materialised(saved)))
            else:
                saved.extend((b, b.clone()) for b in module._buffers.values() if b is not None)
    try:
        with _PrivateRandomness(), eager_only():
            return op.evaluate(values)
    finally:
        for hook in hooks:
            hook.remove()
        with torch.no_grad():
            for buffer, copy in saved:
                buffer.copy_(copy)


def _save_materialised(saved: list[tuple[torch.Tensor, torch.Tensor]]) -> Callable[..., None]:
    done = False

    def hook(module: nn.Module, args: Any) -> None:
        nonlocal done
        if not done:
            done = True
            saved.extend((b, b.clone()) for b in module._buffers.values() if b is not None and not is_lazy(b))

    return hook


def _record(op: Operation, collector: ArgumentCollector, custom_name: str | None) -> SymbolicData:
    parents = tuple(collector.parents)
    values = [p.value for p in parents]
    try:
        value = _evaluate_at_trace_time(op, values)
    except Exception as exc:
        exc.add_note(f"symgraph: recording {op.display_name(values)} failed on the example values; nothing was added")
        raise
    # The class of the result is the first parent's choice (TorchRecording's for
    # torch's handles), as for every recorded value.
    return record(op, parents, custom_name=custom_name, value=value)


def record_call(func: Any, args: Sequence[Any], kwargs: dict[str, Any], custom_name: str | None = None) -> SymbolicData:
    """Record ``func(*args, **kwargs)``; a module becomes a :class:`ModuleCall`.

    Raises:
        TraceError: a tensor argument was computed from parameters outside the
            graph (see :func:`refuse_derived_tensor`).

    Example:
        >>> import torch, symgraph_torch
        >>> x = symgraph_torch.Input((4,))
        >>> record_call(torch.nn.ReLU(), (x,), {}).op.display_name([])
        'ReLU'
    """
    collector = ArgumentCollector()
    templates = [collector.template(a) for a in args]
    kw = collector.template(kwargs)
    op: Operation
    if isinstance(func, nn.Module):
        cls = NestedModelCall if getattr(func, "_symgraph_nested", False) else ModuleCall
        op = cls(Const(func), templates, kw)
    elif args and isinstance(args[0], SymbolicData) and _is_tensor_method(func):
        # x.relu() is written as a method call on the value, as a hand-written
        # forward has it, so that what torch.fx traces with (proxies), and tensor
        # subclasses, get their own method at replay.
        op = MethodCall(func.__name__, templates[1:], kw)
    else:
        op = Call(Const(func), templates, kw)
    for template in (*templates, kw):
        for constant in template.constants():
            for tensor in _tensors_in(constant):
                refuse_derived_tensor(tensor, _step_name(func))
    return _record(op, collector, custom_name)


def _is_tensor_method(func: Any) -> bool:
    """Whether ``func`` is a method of ``torch.Tensor`` (``Tensor.relu``), as ``__torch_function__`` receives it.

    Example:
        >>> _is_tensor_method(torch.Tensor.relu), _is_tensor_method(torch.relu)
        (True, False)
    """
    name = getattr(func, "__name__", None)
    if type(name) is not str:
        return False
    if getattr(func, "__objclass__", None) is torch._C.TensorBase:
        return True
    return getattr(torch.Tensor, name, None) is func


class _Probe:
    """Stands where a symbolic tensor would, to see what torch sends for each operator."""

    class Sent(Exception):  # noqa: N818 - a message from the probe, not an error
        def __init__(self, func: Any, args: tuple[Any, ...]) -> None:
            self.func = func
            self.args = args

    @classmethod
    def __torch_function__(
        cls, func: Any, types: Sequence[type], args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        raise cls.Sent(func, tuple(args))


def _operator_calls() -> dict[Any, tuple[OperatorSpec, bool]]:
    """What ``__torch_function__`` receives when a real tensor meets a symbolic one in an operator.

    ``t + x`` reaches a symbolic ``x`` as a call of one of torch's own functions
    (``Tensor.add``, ``Tensor.__rsub__``, ...), which differ between torch
    versions. Rather than a list of names that drifts, each operator of the
    operator table is tried once, with the real tensor on either side, and the
    function torch sends is mapped to the operator, with whether its arguments
    come in the operator's order (``False``: swapped).
    """
    found: dict[Any, tuple[OperatorSpec, bool]] = {}
    tensor = torch.ones(1)
    for spec in BINARY:
        for operands in ((tensor, _Probe()), (_Probe(), tensor)):
            try:
                spec.fn(*operands)
            except _Probe.Sent as sent:
                if len(sent.args) == 2:
                    in_order = sent.args[0] is operands[0] and sent.args[1] is operands[1]
                    swapped = sent.args[0] is operands[1] and sent.args[1] is operands[0]
                    if in_order or swapped:
                        found.setdefault(sent.func, (spec, in_order))
            except Exception:
                continue
    return found


_OPERATOR_CALLS = _operator_calls()


def record_torch_function(func: Any, args: Sequence[Any], kwargs: dict[str, Any] | None) -> Any:
    """Record a torch function, tensor method or tensor operator on symbolic tensors.

    Example:
        >>> import torch, symgraph_torch
        >>> x = symgraph_torch.Input((4,))
        >>> torch.cat([x, x], dim=1).shape
        (None, 8)
    """
    kwargs = kwargs or {}
    _refuse_in_place(func, kwargs)
    if not kwargs and len(args) == 2:
        found = _OPERATOR_CALLS.get(func)
        if found is not None:
            spec, in_order = found
            operands = args if in_order else (args[1], args[0])
            for operand in operands:
                refuse_derived_tensor(operand, f"the {spec.symbol} operator")
            return record_operator(spec.symbol, *operands)
    return record_call(func, args, kwargs)


# -- making ``layer(x)`` record ------------------------------------------------------------
_original_call = nn.Module.__call__


_NOT_SYMBOLIC: Any = object()


def _holds_symbolic(values: Sequence[Any]) -> bool:
    """Whether a symbolic value is among ``values`` or inside their lists, tuples and dicts."""
    # Runs on every module call with real arguments: plain tensors are passed
    # over at once, and containers are walked iteratively with a bound.
    stack: list[Any] = []
    for value in values:
        if type(value) is torch.Tensor:
            continue
        if isinstance(value, SymbolicData):
            return True
        if isinstance(value, (list, tuple, dict)):
            stack.append(value)
    budget = 10_000
    while stack and budget:
        budget -= 1
        item = stack.pop()
        if isinstance(item, SymbolicData):
            return True
        if isinstance(item, (list, tuple)):
            stack.extend(v for v in item if type(v) is not torch.Tensor)
        elif isinstance(item, dict):
            stack.extend(v for v in item.values() if type(v) is not torch.Tensor)
    return False


def _record_if_symbolic(layer: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    # A symbolic value anywhere in the arguments (fpn([c3, c4, c5]), a
    # PackedSequence of symbolic tensors, a non-tensor symbolic value) makes the
    # call one recorded layer call: the layer is registered in the model and its
    # forward, with its own control flow, runs at every call.
    if _holds_symbolic(args) or (kwargs and _holds_symbolic(tuple(kwargs.values()))):
        kwargs = dict(kwargs)
        custom_name = kwargs.pop("custom_name", None)
        return record_call(layer, args, kwargs, custom_name)
    return _NOT_SYMBOLIC


def _may_be_symbolic(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    if not kwargs:
        for arg in args:
            if type(arg) is not _TENSOR:
                break
        else:
            return False  # plain tensors only: the common case
    return bool(
        _has_torch_function(args)
        or (kwargs and _has_torch_function(tuple(kwargs.values())))
        or _holds_symbolic(args)
        or (kwargs and _holds_symbolic(tuple(kwargs.values())))
    )


_TENSOR = torch.Tensor
_NO_ARGUMENT: Any = object()  # stands for "no first argument" in the module-call hook


def _call_with_symbolic_check(self: nn.Module, first: Any = _NO_ARGUMENT, /, *args: Any, **kwargs: Any) -> Any:
    # This replaces ``nn.Module.__call__`` for every module, so the common case must
    # cost next to nothing. One plain tensor as the only argument is recognised by
    # three tests written out here (a helper's call would cost more than they do),
    # and is passed on as a plain positional argument: that skips the tuple that
    # torch's own ``__call__`` packs and unpacks, which pays for the tests.
    # ``first`` is positional-only, so a keyword argument of any name still
    # reaches ``forward`` as it would without the hook.
    if args or kwargs or type(first) is not _TENSOR:
        given = args if first is _NO_ARGUMENT else (first, *args)
        if _may_be_symbolic(given, kwargs):
            recorded = _record_if_symbolic(self, given, kwargs)
            if recorded is not _NOT_SYMBOLIC:
                return recorded
        if self._compiled_call_impl is not None:
            return self._compiled_call_impl(*given, **kwargs)
        return self._call_impl(*given, **kwargs)
    if self._compiled_call_impl is not None:
        return self._compiled_call_impl(first)
    return self._call_impl(first)


def _delegating_call(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
    # Used when something else had already replaced ``nn.Module.__call__``.
    if _may_be_symbolic(args, kwargs):
        recorded = _record_if_symbolic(self, args, kwargs)
        if recorded is not _NOT_SYMBOLIC:
            return recorded
    return _original_call(self, *args, **kwargs)


def install_module_call_hook() -> None:
    """Make every ``nn.Module`` record a call when it receives a symbolic value.

    Done on import of :mod:`symgraph_torch`; calls with real tensors run as before.

    Example:
        >>> install_module_call_hook()
        >>> import torch
        >>> torch.nn.Module.__call__ is not torch.nn.Module._wrapped_call_impl
        True
    """
    wrapped = getattr(nn.Module, "_wrapped_call_impl", None)
    nn.Module.__call__ = _call_with_symbolic_check if _original_call is wrapped else _delegating_call  # type: ignore[method-assign]


def uninstall_module_call_hook() -> None:
    """Restore the ``nn.Module.__call__`` found on import (benchmarks compare both).

    Example:
        >>> import torch
        >>> uninstall_module_call_hook()
        >>> torch.nn.Module.__call__ is torch.nn.Module._wrapped_call_impl
        True
        >>> install_module_call_hook()
    """
    nn.Module.__call__ = _original_call  # type: ignore[method-assign]
