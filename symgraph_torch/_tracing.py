"""Recording torch calls: module calls, torch functions and tensor methods.

Everything here records through :func:`symgraph.plugin.record`, so a call that fails on
the example values leaves nothing in the graph. Calls are evaluated with the
random number generators saved and restored, so that building a model draws
exactly the random numbers that building the same layers by hand would (a
``Dropout`` run at trace time would otherwise shift every later initialisation).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch._C import _has_torch_function

from symgraph.plugin import (
    BINARY,
    ArgumentCollector,
    Call,
    Const,
    EmitContext,
    OperatorSpec,
    SymbolicData,
    Template,
    record,
    record_operator,
    register_emitter,
)

__all__ = [
    "SKIP_INPUT_CHECKS",
    "bound_call",
    "ModuleCall",
    "NestedModelCall",
    "install_module_call_hook",
    "record_call",
    "record_torch_function",
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


#: Keyword a symbolic model's ``forward`` takes from an enclosing model: skip the
#: input checks (see :class:`NestedModelCall`).
SKIP_INPUT_CHECKS = "_symgraph_skip_input_checks"


class NestedModelCall(ModuleCall):
    """A symbolic model used as a layer of another graph.

    Its own input checks are skipped: the shapes it receives were validated when
    the enclosing graph was recorded, by running it on them (a convolutional
    feature extractor built for 28x28 images may be reused on 64x64 ones), and
    the enclosing model checks its own inputs.

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
        return self.layer(*call_args, **self.kwargs.evaluate(args), **{SKIP_INPUT_CHECKS: True})


def _emit_module_call(op: ModuleCall, args: Sequence[str], ctx: EmitContext) -> str:
    # Without the torch model's policy (a core model running torch layers), a
    # layer is called as ``layer(...)`` would call it; the policy adds fast paths.
    parts = ctx.arguments(op.args, op.kwargs, args)
    if isinstance(op, NestedModelCall):
        parts.append(f"{SKIP_INPUT_CHECKS}=True")
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


def _evaluate_at_trace_time(op: Call, values: list[Any]) -> Any:
    # Running a layer at trace time must not change its state (BatchNorm would
    # count the example batch in its running statistics) nor the global RNG.
    buffers = list(op.layer.buffers()) if isinstance(op, ModuleCall) else []
    saved = [buffer.clone() for buffer in buffers]
    try:
        return rng_neutral(lambda: op.evaluate(values))
    finally:
        with torch.no_grad():
            for buffer, copy in zip(buffers, saved, strict=True):
                buffer.copy_(copy)


def _record(op: Call, collector: ArgumentCollector, custom_name: str | None) -> SymbolicData:
    parents = tuple(collector.parents)
    values = [p.value for p in parents]
    try:
        value = _evaluate_at_trace_time(op, values)
    except Exception as exc:
        exc.add_note(f"symgraph: recording {op.display_name(values)} failed on the example values; nothing was added")
        raise
    return record(op, parents, custom_name=custom_name, value=value)


def record_call(func: Any, args: Sequence[Any], kwargs: dict[str, Any], custom_name: str | None = None) -> SymbolicData:
    """Record ``func(*args, **kwargs)``; a module becomes a :class:`ModuleCall`.

    Example:
        >>> import torch, symgraph_torch
        >>> x = symgraph_torch.Input((4,))
        >>> record_call(torch.nn.ReLU(), (x,), {}).op.display_name([])
        'ReLU'
    """
    collector = ArgumentCollector()
    templates = [collector.template(a) for a in args]
    kw = collector.template(kwargs)
    cls: type[Call] = Call
    if isinstance(func, nn.Module):
        cls = NestedModelCall if getattr(func, "_symgraph_nested", False) else ModuleCall
    return _record(cls(Const(func), templates, kw), collector, custom_name)


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
    if not kwargs and len(args) == 2:
        found = _OPERATOR_CALLS.get(func)
        if found is not None:
            spec, in_order = found
            return record_operator(spec.symbol, *(args if in_order else (args[1], args[0])))
    return record_call(func, args, kwargs)


# -- making ``layer(x)`` record ------------------------------------------------------------
_original_call = nn.Module.__call__


_NOT_SYMBOLIC: Any = object()


def _record_if_symbolic(layer: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if any(isinstance(a, SymbolicData) for a in args) or any(isinstance(v, SymbolicData) for v in kwargs.values()):
        kwargs = dict(kwargs)
        custom_name = kwargs.pop("custom_name", None)
        return record_call(layer, args, kwargs, custom_name)
    return _NOT_SYMBOLIC


def _call_with_symbolic_check(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
    # This replaces ``nn.Module.__call__`` for every module, so the common case must
    # cost next to nothing: one C-level test that no argument defines
    # ``__torch_function__``, then exactly what torch's own ``__call__`` does.
    if _has_torch_function(args) or (kwargs and _has_torch_function(tuple(kwargs.values()))):
        recorded = _record_if_symbolic(self, args, kwargs)
        if recorded is not _NOT_SYMBOLIC:
            return recorded
    if self._compiled_call_impl is not None:
        return self._compiled_call_impl(*args, **kwargs)
    return self._call_impl(*args, **kwargs)


def _delegating_call(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
    # Used when something else had already replaced ``nn.Module.__call__``.
    if _has_torch_function(args) or (kwargs and _has_torch_function(tuple(kwargs.values()))):
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
