"""The device layer of the ``cuda_graphs`` executor: every CUDA call it makes, behind one interface.

The executor never calls ``torch.cuda`` itself. It asks a :class:`DeviceLayer`
for streams, graphs, memory pools, capture and replay, generator registration
and graphed callables. :class:`CudaDeviceLayer` makes the real calls;
:class:`FakeDeviceLayer` stands in on machines without a GPU. The fake records
each captured callable and replays it eagerly into the static outputs, so every
decision the executor makes (keys, buckets, padding, eviction, fallbacks,
invalidation) can be tested on the CPU.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch.utils import _pytree as pytree

from symgraph_torch._tracing import eager_only

__all__ = ["CudaDeviceLayer", "DeviceLayer", "FakeDeviceLayer", "FakeGraph"]


class DeviceLayer(abc.ABC):
    """What the ``cuda_graphs`` executor needs from a device; subclass it for another one.

    Every method has the meaning of the ``torch.cuda`` call that
    :class:`CudaDeviceLayer` makes for it; a subclass implements all but
    :meth:`device_of`.

    Example:
        >>> from symgraph_torch.cuda_graphs import CudaDeviceLayer, DeviceLayer
        >>> issubclass(CudaDeviceLayer, DeviceLayer)
        True
    """

    #: The device's name in messages.
    name = "CUDA"

    @abc.abstractmethod
    def unavailable_reason(self) -> str | None:
        """Why graphs cannot be captured in this process, or ``None`` when they can."""

    @abc.abstractmethod
    def is_device_tensor(self, tensor: torch.Tensor) -> bool:
        """Whether ``tensor`` lives on the device (and can be read by a captured graph)."""

    def device_of(self, tensor: torch.Tensor) -> torch.device:
        """The device ``tensor`` lives on."""
        return tensor.device

    @abc.abstractmethod
    def new_stream(self, device: torch.device) -> Any:
        """A side stream on ``device``, for warm-up and capture."""

    @abc.abstractmethod
    def side_stream(self, stream: Any) -> contextlib.AbstractContextManager[None]:
        """Run the block on ``stream``, ordered after the current stream's work and before its next."""

    @abc.abstractmethod
    def default_generator(self, device: torch.device) -> torch.Generator:
        """The generator that random operations on ``device`` use when given none."""

    @abc.abstractmethod
    def current_stream(self, device: torch.device) -> Any:
        """The stream work on ``device`` goes to now (comparable with ``==``)."""

    @abc.abstractmethod
    def wait_stream(self, stream: Any, other: Any) -> None:
        """Make work queued on ``stream`` from now on wait for the work queued on ``other`` so far."""

    @abc.abstractmethod
    def new_pool(self, device: torch.device) -> Any:
        """A memory pool handle that several graphs can share."""

    @abc.abstractmethod
    def new_graph(self) -> Any:
        """An empty graph."""

    @abc.abstractmethod
    def register_generator(self, graph: Any, generator: torch.Generator) -> None:
        """Make replays of ``graph`` advance ``generator`` as eager calls would."""

    @abc.abstractmethod
    def capture(
        self, graph: Any, function: Callable[[], Any], pool: Any, stream: Any, preserve: Sequence[torch.Tensor] = ()
    ) -> Any:
        """Capture ``function()`` into ``graph`` on ``stream`` with memory from ``pool``; return its outputs.

        The outputs are static: every replay rewrites them. A capture runs no
        kernels, so the tensors in ``preserve`` (the model's buffers and
        parameters) keep their values; a layer that runs the function to
        capture it must put them back.
        """

    @abc.abstractmethod
    def replay(self, graph: Any) -> None:
        """Run ``graph`` once."""

    @abc.abstractmethod
    def reset(self, graph: Any) -> None:
        """Free ``graph`` (after a failed capture, or when it is evicted)."""

    @abc.abstractmethod
    def synchronize(self, device: torch.device | None) -> None:
        """Wait for all work on ``device``."""

    @abc.abstractmethod
    def make_graphed_callables(
        self, module: torch.nn.Module, sample_args: tuple[torch.Tensor, ...], pool: Any, warmup: int
    ) -> Callable[..., Any]:
        """``module`` with its forward and backward captured (``torch.cuda.make_graphed_callables``)."""

    @abc.abstractmethod
    def pool_bytes(self, pool: Any) -> int:
        """The bytes the device holds for ``pool``."""


class CudaDeviceLayer(DeviceLayer):
    """The device layer that calls ``torch.cuda``.

    Example:
        >>> import torch
        >>> from symgraph_torch.cuda_graphs import CudaDeviceLayer
        >>> layer = CudaDeviceLayer()
        >>> (layer.unavailable_reason() is None) == torch.cuda.is_available()
        True
    """

    def unavailable_reason(self) -> str | None:
        if not torch.cuda.is_available():
            built = torch.version.cuda
            if built is None:
                return f"this torch ({torch.__version__}) is built without CUDA"
            return f"CUDA is not available: torch {torch.__version__} (CUDA {built}) finds no CUDA device"
        return None

    def is_device_tensor(self, tensor: torch.Tensor) -> bool:
        return tensor.is_cuda

    def new_stream(self, device: torch.device) -> Any:
        return torch.cuda.Stream(device=device)

    @contextlib.contextmanager
    def side_stream(self, stream: Any) -> Iterator[None]:
        current = torch.cuda.current_stream(stream.device)
        stream.wait_stream(current)
        try:
            with torch.cuda.stream(stream):
                yield
        finally:
            current.wait_stream(stream)

    def default_generator(self, device: torch.device) -> torch.Generator:
        index = torch.cuda.current_device() if device.index is None else device.index
        return torch.cuda.default_generators[index]

    def current_stream(self, device: torch.device) -> Any:
        return torch.cuda.current_stream(device)

    def wait_stream(self, stream: Any, other: Any) -> None:
        stream.wait_stream(other)

    def new_pool(self, device: torch.device) -> Any:
        return torch.cuda.graph_pool_handle()

    def new_graph(self) -> Any:
        return torch.cuda.CUDAGraph()

    def register_generator(self, graph: Any, generator: torch.Generator) -> None:
        if generator is self.default_generator(generator.device):
            return  # captures register the default generator themselves
        register = getattr(graph, "register_generator_state", None)
        if register is None:
            raise RuntimeError(
                f"torch {torch.__version__} cannot register a torch.Generator with a CUDA graph "
                "(CUDAGraph.register_generator_state is missing)"
            )
        register(generator)

    def capture(
        self, graph: Any, function: Callable[[], Any], pool: Any, stream: Any, preserve: Sequence[torch.Tensor] = ()
    ) -> Any:
        with torch.cuda.graph(graph, pool=pool, stream=stream):
            return function()

    def replay(self, graph: Any) -> None:
        graph.replay()

    def reset(self, graph: Any) -> None:
        graph.reset()

    def synchronize(self, device: torch.device | None) -> None:
        torch.cuda.synchronize(device)

    def make_graphed_callables(
        self, module: torch.nn.Module, sample_args: tuple[torch.Tensor, ...], pool: Any, warmup: int
    ) -> Callable[..., Any]:
        graphed: Callable[..., Any] = torch.cuda.make_graphed_callables(
            module, sample_args, num_warmup_iters=warmup, allow_unused_input=True, pool=pool
        )
        return graphed

    def pool_bytes(self, pool: Any) -> int:
        total = 0
        for segment in torch.cuda.memory_snapshot():
            if tuple(segment.get("segment_pool_id", ())) == tuple(pool):
                total += int(segment["total_size"])
        return total


class FakeGraph:
    """What :class:`FakeDeviceLayer` keeps for a graph: the captured callable and its static outputs.

    Attributes:
        function: The callable captured, run again by every replay; ``None`` once reset.
        outputs: The static outputs that replays rewrite in place.
        replays: How many times the graph was replayed.
        generators: The generators registered with it.
    """

    def __init__(self) -> None:
        self.function: Callable[[], Any] | None = None
        self.outputs: Any = None
        self.replays = 0
        self.generators: list[torch.Generator] = []


class FakeDeviceLayer(DeviceLayer):
    """A device layer for tests on machines without a GPU.

    Tensors of ``device_type`` (the CPU, by default) count as device tensors.
    A capture runs the callable once for its outputs, undoing what that run
    changed in ``preserve`` and in the random generators (a real capture runs
    no kernels), and keeps the
    callable; a replay runs it again and copies its results into the outputs
    of the capture, as a real replay rewrites them. Graphed callables are the
    module itself.

    Args:
        device_type: The device type that counts as the accelerator.
        unavailable: A reason to report from :meth:`unavailable_reason`.
        device_of: Maps a tensor to the device to report for it (to simulate
            several devices on one machine).

    Attributes:
        capture_errors: Exceptions to raise from the next captures, first first.
        graphs: Every graph made, in order.
        captures: How many captures succeeded.
        pools: How many pools were made.
        syncs: How many times :meth:`synchronize` was called.
        stream: What :meth:`current_stream` returns (set it to simulate another stream).
        waits: ``(stream, other)`` for every :meth:`wait_stream` call.

    Example:
        >>> import torch
        >>> from symgraph_torch.cuda_graphs import FakeDeviceLayer
        >>> layer = FakeDeviceLayer()
        >>> graph, buffer = layer.new_graph(), torch.zeros(2)
        >>> out = layer.capture(graph, lambda: buffer * 2, layer.new_pool(buffer.device), None)
        >>> buffer.copy_(torch.tensor([1.0, 2.0]))
        tensor([1., 2.])
        >>> layer.replay(graph)
        >>> out
        tensor([2., 4.])
    """

    name = "CUDA (fake)"

    def __init__(
        self,
        device_type: str = "cpu",
        *,
        unavailable: str | None = None,
        device_of: Callable[[torch.Tensor], torch.device] | None = None,
    ) -> None:
        self.device_type = device_type
        self.unavailable = unavailable
        self._device_of = device_of
        self.capture_errors: list[BaseException] = []
        self.graphs: list[FakeGraph] = []
        self.captures = 0
        self.pools = 0
        self.syncs = 0
        self.stream: Any = "default stream"
        self.waits: list[tuple[Any, Any]] = []

    def __getstate__(self) -> dict[str, Any]:
        # A copy or a loaded model starts with no graphs: they hold callables of this process.
        return {"device_type": self.device_type, "unavailable": self.unavailable, "_device_of": self._device_of}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["device_type"], unavailable=state["unavailable"], device_of=state["_device_of"])  # type: ignore[misc]

    def unavailable_reason(self) -> str | None:
        return self.unavailable

    def is_device_tensor(self, tensor: torch.Tensor) -> bool:
        return tensor.device.type == self.device_type

    def device_of(self, tensor: torch.Tensor) -> torch.device:
        return tensor.device if self._device_of is None else self._device_of(tensor)

    def new_stream(self, device: torch.device) -> Any:
        return ("stream", device)

    @contextlib.contextmanager
    def side_stream(self, stream: Any) -> Iterator[None]:
        yield

    def default_generator(self, device: torch.device) -> torch.Generator:
        return torch.default_generator

    def current_stream(self, device: torch.device) -> Any:
        return self.stream

    def wait_stream(self, stream: Any, other: Any) -> None:
        self.waits.append((stream, other))

    def new_pool(self, device: torch.device) -> Any:
        self.pools += 1
        return ("pool", self.pools)

    def new_graph(self) -> FakeGraph:
        graph = FakeGraph()
        self.graphs.append(graph)
        return graph

    def register_generator(self, graph: Any, generator: torch.Generator) -> None:
        graph.generators.append(generator)

    def capture(
        self, graph: Any, function: Callable[[], Any], pool: Any, stream: Any, preserve: Sequence[torch.Tensor] = ()
    ) -> Any:
        if self.capture_errors:
            raise self.capture_errors.pop(0)
        saved = [t.detach().clone() for t in preserve]
        generators = [torch.default_generator, *graph.generators]
        states = [g.get_state() for g in generators]
        try:
            outputs = function()
        finally:
            with torch.no_grad():
                for tensor, value in zip(preserve, saved, strict=True):
                    tensor.copy_(value)
            for generator, state in zip(generators, states, strict=True):
                generator.set_state(state)
        graph.function, graph.outputs = function, outputs
        self.captures += 1
        return outputs

    def replay(self, graph: Any) -> None:
        if graph.function is None:
            raise RuntimeError("replay of a graph that was reset or never captured")
        # A real replay runs no Python: nested models must not see a call of their own.
        with eager_only():
            fresh = pytree.tree_leaves(graph.function())
        with torch.no_grad():
            for static, value in zip(pytree.tree_leaves(graph.outputs), fresh, strict=True):
                if isinstance(static, torch.Tensor):
                    static.copy_(value)
        graph.replays += 1

    def reset(self, graph: Any) -> None:
        graph.function = graph.outputs = None

    def synchronize(self, device: torch.device | None) -> None:
        self.syncs += 1

    def make_graphed_callables(
        self, module: torch.nn.Module, sample_args: tuple[torch.Tensor, ...], pool: Any, warmup: int
    ) -> Callable[..., Any]:
        if self.capture_errors:
            raise self.capture_errors.pop(0)
        self.captures += 1

        def graphed(*args: Any) -> Any:
            with eager_only():
                return module(*args)

        return graphed

    def pool_bytes(self, pool: Any) -> int:
        total = 0
        for graph in self.graphs:
            for leaf in pytree.tree_leaves(graph.outputs):
                if isinstance(leaf, torch.Tensor):
                    total += leaf.untyped_storage().nbytes()
        return total
