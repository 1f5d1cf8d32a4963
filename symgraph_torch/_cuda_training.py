"""Training steps in CUDA graphs: forward, loss, backward and optimizer step, replayed as one graph.

:func:`capture_training_step` wraps ``loss_fn`` (which calls the model and
returns a scalar loss) and an optimizer into a callable that performs one
training step per call, as this eager loop does::

    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(*batch)
    loss.backward()
    optimizer.step()

It captures the whole step when the optimizer can be captured (every param
group ``capturable=True``, with a tensor learning rate, so that a scheduler's
in-place changes reach the graph). Otherwise the forward and backward are
captured (``torch.cuda.make_graphed_callables``) and the optimizer steps
eagerly; the reason is in :meth:`CapturedTrainingStep.stats`.

The first ``warmup`` calls run eagerly on a side stream (they are real training
steps, so nothing is trained twice); the next call captures and replays. A batch
whose shapes differ from the captured one (a last, smaller batch) trains eagerly.
Replacing or moving the model's parameters, or loading the optimizer's state,
drops the captured step; it is captured again after another warm-up.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from symgraph_torch.cuda_graphs import FakeDeviceLayer, capture_training_step
    >>> model = nn.Linear(3, 1)
    >>> # On a GPU, Adam(..., lr=torch.tensor(0.01), capturable=True) lets the whole step be captured.
    >>> optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    >>> step = capture_training_step(lambda x, y: ((model(x) - y) ** 2).mean(), optimizer, model=model,
    ...                              device_layer=FakeDeviceLayer())
    >>> x, y = torch.rand(8, 3), torch.rand(8, 1)
    >>> losses = [step(x, y) for _ in range(3)]
    >>> step.stats()["mode"]
    'graphed forward and backward'
    >>> step.stats()["mode_reason"]
    'param group 0 of Adam has capturable=False; build it with Adam(..., capturable=True)'
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from symgraph import ExecutorError
from symgraph_torch._cuda_device import CudaDeviceLayer, DeviceLayer
from symgraph_torch._cuda_graphs import (
    _GLOBAL_HOOKS,
    _HASHABLE_SCALARS,
    _HOOK_DICTS,
    Fallbacks,
    _autocast_state,
    _plan_reason,
    _Preserved,
    hooks_reason,
    placement_reason,
)
from symgraph_torch._tracing import eager_only

__all__ = ["CapturedTrainingStep", "capture_training_step"]

_CAPTURED = "captured step"
_GRAPHED = "graphed forward and backward"
# How many batch shapes the graphed forward-and-backward mode keeps graphs for.
_MAX_GRAPHED = 8


def _optimizer_reason(optimizer: torch.optim.Optimizer, layer: DeviceLayer) -> str | None:
    name = type(optimizer).__name__
    for i, group in enumerate(optimizer.param_groups):
        if "capturable" not in group:
            return f"torch.optim.{name} cannot be captured (it takes no capturable=True)"
        if not group["capturable"]:
            return f"param group {i} of {name} has capturable=False; build it with {name}(..., capturable=True)"
        lr = group["lr"]
        if not isinstance(lr, torch.Tensor):
            return (
                f"param group {i} of {name} has a float learning rate, which a graph would keep fixed "
                f"when a scheduler changes it; build it with lr=torch.tensor({lr!r}, device='cuda')"
            )
        if not layer.is_device_tensor(lr):
            # A tensor on the CPU reaches the kernels as a number, fixed at capture.
            return (
                f"the learning rate of param group {i} of {name} is a tensor on {lr.device}, which a graph "
                f"would read once; put it on the device: lr=torch.tensor({lr.item()!r}, device='cuda')"
            )
    return None


def _hyperparameters(optimizer: torch.optim.Optimizer) -> list[Any]:
    """The optimizer's settings that a captured step holds as numbers: a change must drop the graph.

    Tensors (a tensor learning rate) are read by the graph at every replay; every
    other setting (momentum, betas that a one-cycle scheduler moves, weight decay)
    was a number in the captured kernels.
    """
    return [
        sorted((k, v) for k, v in group.items() if k != "params" and not isinstance(v, torch.Tensor))
        for group in optimizer.param_groups
    ]


class _Loss(nn.Module):
    """``loss_fn`` as a module, for ``make_graphed_callables``, which needs the model's parameters."""

    def __init__(self, model: nn.Module, loss_fn: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.model = model
        self._loss_fn = loss_fn

    def forward(self, *batch: Any) -> torch.Tensor:
        return self._loss_fn(*batch)


class CapturedTrainingStep:
    """One training step per call, replayed from a CUDA graph; made by :func:`capture_training_step`.

    Args:
        loss_fn: ``loss_fn(*batch)`` runs the model and returns a scalar loss.
        optimizer: The optimizer of the model's parameters.
        model: The model (its parameters, buffers and layers are watched).
        warmup: Eager steps before the capture.
        strict: Raise :class:`~symgraph.ExecutorError` rather than train eagerly.
        device_layer: The device layer (a :class:`FakeDeviceLayer` in CPU tests).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from symgraph_torch.cuda_graphs import CapturedTrainingStep, FakeDeviceLayer
        >>> model = nn.Linear(2, 1)
        >>> sgd = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> step = CapturedTrainingStep(lambda x: model(x).sum(), sgd, model=model,
        ...                             device_layer=FakeDeviceLayer())
        >>> _ = step(torch.ones(4, 2))
        >>> step.stats()["mode"]
        'graphed forward and backward'
    """

    def __init__(
        self,
        loss_fn: Callable[..., torch.Tensor],
        optimizer: torch.optim.Optimizer,
        *,
        model: nn.Module,
        warmup: int = 3,
        strict: bool = False,
        device_layer: DeviceLayer | None = None,
    ) -> None:
        if not callable(loss_fn):
            raise TypeError(f"capture_training_step: loss_fn must be callable, got {type(loss_fn).__name__}")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"capture_training_step: optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        if not isinstance(model, nn.Module):
            raise TypeError(f"capture_training_step: model must be an nn.Module, got {type(model).__name__}")
        if type(warmup) is not int or warmup < 1:
            raise TypeError(f"capture_training_step: warmup must be an int of at least 1, got {warmup!r}")
        if type(strict) is not bool:
            raise TypeError(f"capture_training_step: strict must be a bool, got {strict!r}")
        layer = CudaDeviceLayer() if device_layer is None else device_layer
        if not isinstance(layer, DeviceLayer):
            raise TypeError(f"capture_training_step: device_layer must be a DeviceLayer, got {layer!r}")
        unavailable = layer.unavailable_reason()
        if unavailable is not None:
            raise ExecutorError(f"capture_training_step needs a {layer.name} device: {unavailable}")
        self._loss_fn, self._optimizer, self._model = loss_fn, optimizer, model
        self._warmup, self._layer = warmup, layer
        inner: Any = model
        while not hasattr(inner, "plan") and isinstance(getattr(inner, "module", None), nn.Module):
            inner = inner.module  # DistributedDataParallel, DataParallel: the model they wrap
        plan = getattr(inner, "plan", None)
        self._model_reason = _plan_reason(plan) if plan is not None and hasattr(plan, "steps") else None
        self._mode_reason = _optimizer_reason(optimizer, layer)
        self.mode = _GRAPHED if self._mode_reason is not None else _CAPTURED
        self._counts = {"captures": 0, "replays": 0, "eager_steps": 0, "invalidations": 0}
        self._fallbacks = Fallbacks("capture_training_step", strict=strict)
        self._pool: Any = None
        self._stream: Any = None
        self._reset()

    # -- what the step reads ----------------------------------------------------------------
    def _reset(self) -> None:
        self._key: Any = None
        self._seen = 0
        self._graph: Any = None
        self._static: list[Any] = []
        self._static_loss: torch.Tensor | None = None
        self._graphed: collections.OrderedDict[Any, Callable[..., Any]] = collections.OrderedDict()
        self._pointers = self._current_pointers()

    def _current_pointers(self, parameters: list[nn.Parameter] | None = None) -> list[Any]:
        model, optimizer = self._model, self._optimizer
        if parameters is None:
            parameters = list(model.parameters())
        pointers: list[Any] = [id(p) for p in parameters]
        pointers.extend(p.data_ptr() for p in parameters)
        pointers.extend(b.data_ptr() for b in model.buffers())
        if self.mode != _CAPTURED:
            return pointers  # the optimizer steps eagerly: its state is not in any graph
        pointers.append(_hyperparameters(optimizer))
        for group in optimizer.param_groups:
            pointers.append(len(group["params"]))
            lr = group["lr"]
            pointers.append(lr.data_ptr() if isinstance(lr, torch.Tensor) else ("lr", lr))
        for state in optimizer.state.values():
            pointers.extend(v.data_ptr() for v in state.values() if isinstance(v, torch.Tensor))
        return pointers

    def _state(self) -> list[torch.Tensor]:
        tensors = [*self._model.parameters(), *self._model.buffers()]
        for state in self._optimizer.state.values():
            tensors.extend(v for v in state.values() if isinstance(v, torch.Tensor))
        return tensors

    def _reason(self, batch: tuple[Any, ...], parameters: list[tuple[str, nn.Parameter]]) -> str | None:
        if self._model_reason is not None:
            return self._model_reason
        modules = list(self._model.modules())
        if any(_GLOBAL_HOOKS) or any(getattr(m, name, None) for m in modules for name in _HOOK_DICTS):
            return hooks_reason(modules)
        named: list[tuple[str, Any]] = [(f"batch[{i}]", v) for i, v in enumerate(batch)]
        named.extend((f"parameter {name!r}", p) for name, p in parameters)
        return placement_reason(self._layer, named)[0]

    def _key_of(self, batch: tuple[Any, ...]) -> Any:
        parts: list[Any] = []
        for i, value in enumerate(batch):
            if isinstance(value, torch.Tensor):
                parts.append((value.shape, value.stride(), value.dtype, value.device, value.requires_grad))
            elif type(value) in _HASHABLE_SCALARS:
                parts.append((type(value), value))
            else:
                return f"batch[{i}] is a {type(value).__name__}: a graph keys tensors and plain scalars only"
        training = tuple(m.training for m in self._model.modules())
        return (tuple(parts), training, _autocast_state())

    # -- the call -------------------------------------------------------------------------------
    def __call__(self, *batch: Any) -> torch.Tensor:
        """One training step on ``batch``; returns the loss, detached."""
        if not torch.is_grad_enabled():
            raise RuntimeError("a training step needs grad mode; it was called under torch.no_grad()")
        parameters = list(self._model.named_parameters())  # one walk of the model for every check below
        captured = self._graph is not None or bool(self._graphed)
        if captured and self._current_pointers([p for _, p in parameters]) != self._pointers:
            self._counts["invalidations"] += 1
            if self._graph is not None:
                self._layer.reset(self._graph)
            self._reset()
        key = self._key_of(batch)
        reason = key if type(key) is str else self._reason(batch, parameters)
        if reason is not None:
            return self._eager(batch, reason)
        if self.mode == _GRAPHED:
            return self._graphed_step(key, batch)
        if self._graph is not None:
            if key != self._key:
                return self._eager(batch, "the batch's shapes differ from those of the captured step")
            return self._replay(batch)
        if self._key is not None and key != self._key:
            self._seen = 0  # warm up on the shapes that will be captured
        self._key = key
        if self._seen < self._warmup:
            self._seen += 1
            # Real steps; the model runs its code, as it will in the capture.
            with self._layer.side_stream(self._side_stream(batch)), eager_only():
                return self._eager(batch, None)
        return self._capture(batch)

    def _side_stream(self, batch: tuple[Any, ...]) -> Any:
        if self._stream is None:
            device = next(iter(self._model.parameters())).device
            self._stream = self._layer.new_stream(device)
            self._pool = self._layer.new_pool(device)
        return self._stream

    def _step(self, *batch: Any) -> torch.Tensor:
        self._optimizer.zero_grad(set_to_none=True)
        loss = self._loss_fn(*batch)
        loss.backward()
        self._optimizer.step()
        return loss

    def _eager(self, batch: tuple[Any, ...], reason: str | None) -> torch.Tensor:
        if reason is not None:
            self._fallbacks.note(reason)
        self._counts["eager_steps"] += 1
        return self._step(*batch).detach()

    def _capture(self, batch: tuple[Any, ...]) -> torch.Tensor:
        layer = self._layer
        stream = self._side_stream(batch)
        static = [v.detach().clone() if isinstance(v, torch.Tensor) else v for v in batch]
        graph = layer.new_graph()
        device = next(iter(self._model.parameters())).device
        try:
            with layer.side_stream(stream), eager_only():
                loss = layer.capture(graph, lambda: self._step(*static), self._pool, stream, self._state())
        except Exception as exc:
            layer.reset(graph)
            layer.synchronize(device)
            # A step that cannot be captured is still trained; later ones use graphed forward and backward.
            self.mode, self._mode_reason = _GRAPHED, f"capture failed: {type(exc).__name__}: {exc}"
            self._pointers = self._current_pointers()
            return self._eager(batch, self._mode_reason)
        self._counts["captures"] += 1
        self._graph, self._static, self._static_loss = graph, static, loss
        # Capturing created the optimizer's state tensors the graph now reads.
        self._pointers = self._current_pointers()
        return self._replay(batch)

    def _replay(self, batch: tuple[Any, ...]) -> torch.Tensor:
        with torch.no_grad():
            for buffer, value in zip(self._static, batch, strict=True):
                if isinstance(buffer, torch.Tensor):
                    buffer.copy_(value)
        self._layer.replay(self._graph)
        self._counts["replays"] += 1
        assert self._static_loss is not None
        return self._static_loss.detach().clone()

    def _graphed_step(self, key: Any, batch: tuple[Any, ...]) -> torch.Tensor:
        graphed = self._graphed.get(key)
        if graphed is None:
            tensors = tuple(v.detach().clone().requires_grad_(v.requires_grad) for v in batch)
            if len(tensors) != len(batch):  # pragma: no cover - keys refuse non-tensors here
                raise TypeError("graphed training steps take tensors only")
            device = next(iter(self._model.parameters())).device
            generators = [self._layer.default_generator(device)]
            try:
                with (
                    self._layer.side_stream(self._side_stream(batch)),
                    _Preserved(list(self._model.buffers()), generators),
                    eager_only(),
                ):
                    graphed = self._layer.make_graphed_callables(
                        _Loss(self._model, self._loss_fn), tensors, self._pool, self._warmup
                    )
            except Exception as exc:
                self._layer.synchronize(device)
                return self._eager(batch, f"capture failed: {type(exc).__name__}: {exc}")
            self._counts["captures"] += 1
            self._graphed[key] = graphed
            self._pointers = self._current_pointers()
            while len(self._graphed) > _MAX_GRAPHED:
                self._graphed.popitem(last=False)
        self._graphed.move_to_end(key)
        self._optimizer.zero_grad(set_to_none=True)
        loss = graphed(*batch)
        loss.backward()
        self._optimizer.step()
        self._counts["replays"] += 1
        detached: torch.Tensor = loss.detach().clone()
        return detached

    def stats(self) -> dict[str, Any]:
        """The mode (``captured step`` or ``graphed forward and backward``) and why, with counts and fallbacks.

        Example:
            >>> import torch
            >>> from torch import nn
            >>> from symgraph_torch.cuda_graphs import FakeDeviceLayer, capture_training_step
            >>> model = nn.Linear(2, 1)
            >>> step = capture_training_step(lambda x: model(x).sum(), torch.optim.SGD(model.parameters()),
            ...                              model=model, device_layer=FakeDeviceLayer())
            >>> step.stats()["mode_reason"]
            'torch.optim.SGD cannot be captured (it takes no capturable=True)'
        """
        pool = 0 if self._pool is None else self._layer.pool_bytes(self._pool)
        return {
            "mode": self.mode,
            "mode_reason": self._mode_reason,
            **self._counts,
            "fallbacks": dict(self._fallbacks.counts),
            "pool_bytes": pool,
        }


def capture_training_step(
    loss_fn: Callable[..., torch.Tensor],
    optimizer: torch.optim.Optimizer,
    *,
    model: nn.Module,
    warmup: int = 3,
    strict: bool = False,
    device_layer: DeviceLayer | None = None,
) -> CapturedTrainingStep:
    """A callable that trains one step per call, from a CUDA graph (see :class:`CapturedTrainingStep`).

    Args:
        loss_fn: ``loss_fn(*batch)`` runs the model and returns a scalar loss.
        optimizer: The optimizer; ``capturable=True`` with a tensor ``lr`` lets
            the whole step be captured.
        model: The model ``loss_fn`` runs.
        warmup: Eager steps before the capture (PyTorch asks for 11 under DDP).
        strict: Raise :class:`~symgraph.ExecutorError` instead of training eagerly.
        device_layer: The device layer; ``None`` for CUDA.

    Raises:
        ExecutorError: CUDA is not available.
        TypeError: an argument is of the wrong type.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from symgraph_torch.cuda_graphs import FakeDeviceLayer, capture_training_step
        >>> model = nn.Linear(2, 1)
        >>> capture_training_step(lambda x: model(x).sum(), torch.optim.SGD(model.parameters()), model=model,
        ...                       device_layer=FakeDeviceLayer(unavailable="no device found"))
        Traceback (most recent call last):
        ...
        symgraph.ExecutorError: capture_training_step needs a CUDA (fake) device: no device found
    """
    return CapturedTrainingStep(
        loss_fn, optimizer, model=model, warmup=warmup, strict=strict, device_layer=device_layer
    )
