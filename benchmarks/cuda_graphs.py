"""CUDA Graphs on a GPU: the ``cuda_graphs`` executor against eager PyTorch, symgraph's codegen and torch.compile.

Run: ``.venv/bin/python -m benchmarks.cuda_graphs [--rounds N] [--quick]``
(or as the ``cuda_graphs`` case of ``python -m benchmarks``). Without a CUDA
device the case is skipped, with a line saying why, and the exit status stays 0.

Rows, all float32 on one CUDA device:

* **toy ResNet inference** (the ``toy_resnet`` case's network and layers),
  batch 4, at 16, 32 and 64 px, eval mode under ``torch.no_grad()``: the
  hand-written module (baseline), ``symgraph_torch.SymbolicModel`` with the
  default ``codegen`` executor, the same with ``executor="cuda_graphs"``, and
  ``torch.compile(mode="reduce-overhead")`` of the hand-written module.
  Targets: ``cuda_graphs`` at most 0.4x the eager time at 16 px (2.5 times as
  fast) and at most 0.667x at 64 px (1.5 times).
* **toy ResNet training step**, same sizes: one eager step
  (``zero_grad(set_to_none=True)``, forward, cross entropy, backward, an
  ``Adam`` step with ``capturable=True`` and a tensor learning rate; baseline),
  ``capture_training_step`` of that same step, and the eager step around the
  module under ``torch.compile(mode="reduce-overhead")``. Reported, no target.
* **1000 x nn.Linear(4, 4)** in a chain, batch ``(4, 4)``, ``no_grad``: the
  ``deep_linear`` case's looping module (baseline), symgraph codegen (info) and
  ``cuda_graphs``. Target: at most 0.333x.
* **executor cost** (rows ``replay, ...`` and ``cost per call, ...``):
  ``model(x)`` with ``cuda_graphs`` against a raw ``torch.cuda.CUDAGraph`` of
  the same (codegen) forward, replayed by hand: copy the input into the static
  buffer, ``graph.replay()``, clone the output. A derived row takes, per
  round, the executor's fastest sample minus the raw replay's fastest sample
  of the same round (the two are interleaved) and divides it by a 20 us
  budget; target: at most 1 (the executor costs less than 20 us per call).
  The target is measured on a one-layer model, ``Linear(4, 4)`` on a
  ``(4, 4)`` batch: its device work (three tiny kernels)
  is shorter than the host's work per call, so the time per call is the
  host's and the executor's Python shows in full; on a model whose kernels
  take longer than their launch, the device hides the host's cost (the same
  pair on the toy ResNet at 16 px, for information, shows how much).

Timing: a sample synchronises the device, makes as many calls as last at least
10 ms, synchronises again and divides, so a time is the cost per call with the
device's work included. Rounds, passes and paired ratios are the harness's
(see ``benchmarks/_harness.py``).

Checks, before anything is timed: every inference variant's output is compared
with the hand-written module's by ``torch.allclose(rtol=1e-2, atol=1e-3)``
(graphs, codegen and torch.compile may run other kernels than eager code, and
convolutions run in TF32 by default); every training variant trains
``CHECK_STEPS`` steps from the same initial weights on the same batch, and its
losses are compared with the eager step's in the same way. The models run in
eval mode: the dropout is then off, so that steps compare (the network has no
batch norm, so eval mode changes nothing else). A ``cuda_graphs`` model or
captured step that does not replay is noted (with its fallback reasons) rather
than dropped; the notes end with every ``executor_stats()``. A torch.compile
variant that cannot be built here (no C compiler for triton, ...) is left out
with a note; set ``SYMGRAPH_BENCH_COMPILE=0`` to leave them all out (they take
most of the set-up time). A GPU run is scarce, so a row that fails to build or
to match its baseline is left out with an ERROR note (its traceback goes to
stderr) and the other rows still report; its target is then missing from the
list. ``benchmarks/run_gpu.sh`` runs this case, with the tests marked ``cuda``,
on a bare GPU machine.
"""

from __future__ import annotations

import functools
import math
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
import torch.nn.functional as F  # noqa: N812 - the name PyTorch's own docs use
from torch import nn

import symgraph_torch
from benchmarks import _harness
from benchmarks.torch_forward import Looping
from benchmarks.toy_resnet import BATCH, SIZES, ToyResNet, make_layers, record
from symgraph_torch.cuda_graphs import CudaDeviceLayer, DeviceLayer, FakeDeviceLayer, capture_training_step

CHAIN_DEPTH = 1000
MIN_SAMPLE_S = 0.01
#: Training steps compared before timing: the eager warm-up steps of a captured step, its capture and replays.
CHECK_STEPS = 6
RTOL, ATOL = 1e-2, 1e-3
LR = 1e-3
CLASSES = 10
BUDGET_S = 20e-6
WARMUP = 3
COMPILE_ENV = "SYMGRAPH_BENCH_COMPILE"

EAGER = "eager nn.Module"
CODEGEN = "symgraph codegen"
CUDA_GRAPHS = "symgraph cuda_graphs"
COMPILED = "torch.compile reduce-overhead"
EAGER_STEP = "eager step"
CAPTURED_STEP = "symgraph capture_training_step"
COMPILED_STEP = "torch.compile reduce-overhead, eager step"
LOOPING = "eager looping nn.Module"
CODEGEN_INFO = "symgraph codegen (info)"
RAW = "raw CUDAGraph replay"
BUDGET = "20 us budget"
COST = "cuda_graphs minus raw replay"

LEGEND = {
    EAGER: "baseline of the inference rows; the toy_resnet case's hand-written ToyResNet",
    CODEGEN: "symgraph_torch.SymbolicModel, default codegen executor",
    CUDA_GRAPHS: 'symgraph_torch.SymbolicModel(..., executor="cuda_graphs"), default options (fresh outputs)',
    COMPILED: 'torch.compile(hand-written module, mode="reduce-overhead", dynamic=False)',
    EAGER_STEP: "baseline of the training rows; zero_grad, forward, cross entropy, backward, "
    "Adam(capturable=True, lr=tensor) step",
    CAPTURED_STEP: "symgraph_torch.cuda_graphs.capture_training_step of the same step (the whole step in one graph)",
    COMPILED_STEP: 'the eager step around torch.compile(module, mode="reduce-overhead", dynamic=False)',
    LOOPING: "baseline of the chain row; the deep_linear case's looping module (nn.ModuleList and a for loop)",
    CODEGEN_INFO: "symgraph_torch.SymbolicModel, default codegen executor",
    RAW: "baseline of the replay rows; the codegen forward captured in a torch.cuda.CUDAGraph, "
    "called as static_input.copy_(x); graph.replay(); static_output.clone()",
    BUDGET: "baseline of the cost-per-call rows: a constant 20 us, so that a ratio of 1 is a cost of 20 us per call",
    COST: "per round: fastest symgraph cuda_graphs sample minus fastest raw CUDAGraph replay sample "
    "(ratio x 20 us = the executor's cost per call)",
}

#: Limits on the median paired ratios (a target whose row failed to build is left out, with the row's ERROR note).
TARGETS = (
    _harness.Target(f"{SIZES[0]} px, inference", CUDA_GRAPHS, 0.4),
    _harness.Target(f"{SIZES[-1]} px, inference", CUDA_GRAPHS, 0.667),
    _harness.Target(f"{CHAIN_DEPTH} x Linear(4, 4), inference", CUDA_GRAPHS, 0.333),
    _harness.Target("cost per call, Linear(4, 4)", COST, 1.0),
)

T = TypeVar("T")


@dataclass
class _Setup:
    """Where the case runs, and what it collects while its rows are built."""

    device: torch.device
    #: ``None``: the real CUDA device layer.
    device_layer: DeviceLayer | None
    with_compile: bool
    notes: list[str] = field(default_factory=list)
    #: Called when the case is done: one note each (executor statistics).
    stats: list[Callable[[], str]] = field(default_factory=list)
    #: The derived rows' sources, reset before every round.
    pairs: list[_FastestPair] = field(default_factory=list)

    @property
    def layer_option(self) -> dict[str, Any]:
        """``device_layer=`` for the executor's options and ``capture_training_step``; none for real CUDA."""
        return {} if self.device_layer is None else {"device_layer": self.device_layer}

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def timer(self, func: Callable[[Any], object], arg: Any, calls: int) -> _harness.Sample:
        """A sample of ``calls`` calls ``func(arg)``, the device synchronised before and after."""
        sync = self.sync

        def sample() -> float:
            sync()
            t0 = time.perf_counter_ns()
            for _ in range(calls):
                func(arg)
            sync()
            return (time.perf_counter_ns() - t0) / calls / 1e9

        return sample


class _FastestPair:
    """The fastest sample of two variants of a row in the current round, for a row derived from their difference.

    The harness keeps the fastest of a round's samples of every variant; this
    keeps the same for two variants of a row measured before the derived row,
    so that the difference is that of the round's paired samples.
    """

    def __init__(self, minuend: str, subtrahend: str) -> None:
        self.minuend, self.subtrahend = minuend, subtrahend
        self.best: dict[str, float] = {}

    def watch(self, variant: str, sample: _harness.Sample) -> _harness.Sample:
        def watched() -> float:
            seconds = sample()
            self.best[variant] = min(self.best.get(variant, math.inf), seconds)
            return seconds

        return watched

    def reset(self) -> None:
        self.best = {}

    def difference(self) -> float:
        return self.best[self.minuend] - self.best[self.subtrahend]


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def check_close(got: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    if got.shape != expected.shape:
        raise _harness.MismatchError(f"{what} has shape {tuple(got.shape)}, the baseline {tuple(expected.shape)}")
    if not torch.allclose(got, expected, rtol=RTOL, atol=ATOL):
        difference = (got - expected).abs().max().item()
        raise _harness.MismatchError(f"{what} differs from the baseline (max abs difference {difference:.3g})")


def timed_row(
    setup: _Setup, name: str, funcs: dict[str, Callable[[Any], object]], baseline: str, arg: Any, grad: bool
) -> _harness.Row:
    """A row of ``func(arg)`` calls under ``torch.set_grad_enabled(grad)``, calls per sample set here."""

    def in_mode(sample: _harness.Sample) -> _harness.Sample:
        def timed() -> float:
            with torch.set_grad_enabled(grad):
                return sample()

        return timed

    samples: dict[str, _harness.Sample] = {}
    calls: dict[str, int] = {}
    with torch.set_grad_enabled(grad):
        for variant, func in funcs.items():
            calls[variant] = _harness.calls_per_sample(func, arg, MIN_SAMPLE_S, setup.timer)
            samples[variant] = in_mode(setup.timer(func, arg, calls[variant]))
    return _harness.Row(name, list(funcs), baseline, samples, calls)


def note_replays(setup: _Setup, label: str, model: symgraph_torch.SymbolicModel) -> None:
    """Note a ``cuda_graphs`` model that ran eagerly, and note its statistics when the case is done."""
    stats = model.executor_stats()
    if stats["eager_calls"] or not stats["replays"]:
        setup.notes.append(f"WARNING: {label}: cuda_graphs did not replay every call: {stats}")
    setup.stats.append(lambda: f"{label}: executor_stats() at the end: {model.executor_stats()}")


def compile_module(module: nn.Module) -> Callable[..., Any]:
    compiled: Callable[..., Any] = torch.compile(module, mode="reduce-overhead", dynamic=False)
    return compiled


def optional_compiled(
    setup: _Setup, label: str, build: Callable[[], Callable[[Any], object]]
) -> Callable[[Any], object] | None:
    """A torch.compile variant, built and checked by ``build``, or ``None`` (with a note) if it cannot run here."""
    if not setup.with_compile:
        return None
    try:
        return build()
    except Exception as exc:
        setup.notes.append(f"{label}: the torch.compile variant is left out: {first_line(exc)}")
        return None


# ----------------------------------------------------------------------------- toy ResNet


def symgraph_resnet(layers: dict[str, nn.Module], px: int, **kwargs: Any) -> symgraph_torch.SymbolicModel:
    inputs = symgraph_torch.Input(shape=(3, px, px))
    outputs = record(layers, inputs, lambda layer, x: layer(x))
    return symgraph_torch.SymbolicModel(inputs, outputs, **kwargs).eval()


def raw_replay(setup: _Setup, model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> Callable[[Any], Any]:
    """``model``'s forward on ``x``'s shapes in one graph, called with no executor in between."""
    static_input = x.clone()
    layer = setup.device_layer
    with torch.no_grad():
        if layer is None:
            stream = torch.cuda.Stream(device=setup.device)  # type: ignore[no-untyped-call]
            stream.wait_stream(torch.cuda.current_stream(setup.device))
            with torch.cuda.stream(stream):
                for _ in range(WARMUP):
                    model(static_input)
            torch.cuda.current_stream(setup.device).wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_output = model(static_input)
            replay: Callable[[], None] = graph.replay
        else:  # the CPU dry run: the fake layer reruns the forward
            fake = layer.new_graph()
            static_output = layer.capture(fake, lambda: model(static_input), layer.new_pool(x.device), None)
            replay = functools.partial(layer.replay, fake)

    def call(value: torch.Tensor) -> torch.Tensor:
        static_input.copy_(value)
        replay()
        return static_output.clone()

    return call


@dataclass
class _Inference:
    row: _harness.Row
    #: The codegen and cuda_graphs models and their input, for the executor-cost rows.
    models: tuple[symgraph_torch.SymbolicModel, symgraph_torch.SymbolicModel, torch.Tensor]


def inference(setup: _Setup, px: int) -> _Inference:
    layers = make_layers(px)
    eager = ToyResNet(layers).eval()
    codegen = symgraph_resnet(layers, px)
    graphs = symgraph_resnet(layers, px, executor="cuda_graphs", executor_options=setup.layer_option)
    for model in (eager, codegen, graphs):
        model.to(setup.device)  # the layers are shared: the first call moves them, the others their own tensors
    torch.manual_seed(1)
    x = torch.rand(BATCH, 3, px, px).to(setup.device)
    models: dict[str, Callable[[Any], object]] = {EAGER: eager, CODEGEN: codegen, CUDA_GRAPHS: graphs}
    with torch.no_grad():
        expected = eager(x)
        check_close(codegen(x), expected, f"{CODEGEN}, {px} px")
        for _ in range(2):  # a capture, then a replay
            check_close(graphs(x), expected, f"{CUDA_GRAPHS}, {px} px")
    note_replays(setup, f"{px} px inference", graphs)

    def build_compiled() -> Callable[[Any], object]:
        compiled = compile_module(eager)
        with torch.no_grad():
            for _ in range(WARMUP):  # torch.compile records its graph after warm-up calls
                # Cloned at once: the next call of a reduce-overhead model overwrites its outputs.
                out = compiled(x).clone()
        check_close(out, expected, f"{COMPILED}, {px} px")
        return compiled

    compiled = optional_compiled(setup, f"{px} px inference", build_compiled)
    if compiled is not None:
        models[COMPILED] = compiled
    row = timed_row(setup, f"{px} px, inference", models, EAGER, x, grad=False)
    return _Inference(row, (codegen, graphs, x))


def make_optimizer(setup: _Setup, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    if setup.device.type == "cuda":
        return torch.optim.Adam(params, lr=torch.tensor(LR, device=setup.device), capturable=True)
    # The CPU dry run: capturable=True needs a device, so the fake captured step runs its optimizer eagerly.
    return torch.optim.Adam(params, lr=LR)


def train_step(
    model: Callable[[torch.Tensor], torch.Tensor], optimizer: torch.optim.Optimizer, batch: Sequence[torch.Tensor]
) -> torch.Tensor:
    x, y = batch
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()  # type: ignore[no-untyped-call]
    optimizer.step()
    return loss.detach()


def losses(step: Callable[[Any], torch.Tensor], batch: Any) -> torch.Tensor:
    return torch.stack([step(batch).clone() for _ in range(CHECK_STEPS)])


def training(setup: _Setup, px: int) -> _harness.Row:
    torch.manual_seed(1)
    batch = (
        torch.rand(BATCH, 3, px, px).to(setup.device),
        torch.randint(0, CLASSES, (BATCH,)).to(setup.device),
    )

    def fresh() -> tuple[nn.Module, torch.optim.Optimizer]:
        """The same initial weights for every variant (``make_layers`` seeds), in eval mode: no dropout."""
        model = ToyResNet(make_layers(px)).eval().to(setup.device)
        return model, make_optimizer(setup, model.parameters())

    eager, eager_optimizer = fresh()
    steps: dict[str, Callable[[Any], object]] = {EAGER_STEP: functools.partial(train_step, eager, eager_optimizer)}
    expected = losses(functools.partial(train_step, eager, eager_optimizer), batch)

    model, optimizer = fresh()
    captured = capture_training_step(
        lambda x, y: F.cross_entropy(model(x), y), optimizer, model=model, warmup=WARMUP, **setup.layer_option
    )
    check_close(losses(lambda b: captured(*b), batch), expected, f"{CAPTURED_STEP}, {px} px, losses")
    stats = captured.stats()
    if stats["mode"] != "captured step" or not stats["replays"]:
        setup.notes.append(f"WARNING: {px} px training: capture_training_step did not capture the whole step: {stats}")
    setup.stats.append(lambda: f"{px} px training: capture_training_step stats() at the end: {captured.stats()}")
    steps[CAPTURED_STEP] = lambda b: captured(*b)

    def build_compiled() -> Callable[[Any], object]:
        module, module_optimizer = fresh()
        compiled = compile_module(module)
        mark_step = getattr(torch.compiler, "cudagraph_mark_step_begin", None)

        def step(b: Any) -> torch.Tensor:
            if mark_step is not None:
                mark_step()  # a new training iteration: torch.compile may reuse the last one's graph memory
            return train_step(compiled, module_optimizer, b)

        check_close(losses(step, batch), expected, f"{COMPILED_STEP}, {px} px, losses")
        return step

    compiled_step = optional_compiled(setup, f"{px} px training", build_compiled)
    if compiled_step is not None:
        steps[COMPILED_STEP] = compiled_step
    return timed_row(setup, f"{px} px, training step", steps, EAGER_STEP, batch, grad=True)


# ----------------------------------------------------------------------------- chain and executor cost


def symgraph_chain(layers: Sequence[nn.Module], **kwargs: Any) -> symgraph_torch.SymbolicModel:
    x = symgraph_torch.Input((4,))
    h = x
    for layer in layers:
        h = layer(h)
    return symgraph_torch.SymbolicModel(x, h, **kwargs)


def chain(setup: _Setup) -> _harness.Row:
    torch.manual_seed(0)
    layers = [nn.Linear(4, 4) for _ in range(CHAIN_DEPTH)]
    looping = Looping(layers)
    codegen = symgraph_chain(layers)
    graphs = symgraph_chain(layers, executor="cuda_graphs", executor_options=setup.layer_option)
    for model in (looping, codegen, graphs):
        model.to(setup.device)
    x = torch.randn(4, 4).to(setup.device)
    with torch.no_grad():
        expected = looping(x)
        check_close(codegen(x), expected, f"{CODEGEN_INFO}, {CHAIN_DEPTH} layers")
        for _ in range(2):
            check_close(graphs(x), expected, f"{CUDA_GRAPHS}, {CHAIN_DEPTH} layers")
    note_replays(setup, f"{CHAIN_DEPTH} x Linear(4, 4)", graphs)
    models: dict[str, Callable[[Any], object]] = {LOOPING: looping, CODEGEN_INFO: codegen, CUDA_GRAPHS: graphs}
    return timed_row(setup, f"{CHAIN_DEPTH} x Linear(4, 4), inference", models, LOOPING, x, grad=False)


def cost_rows(
    setup: _Setup,
    label: str,
    codegen: symgraph_torch.SymbolicModel,
    graphs: symgraph_torch.SymbolicModel,
    x: torch.Tensor,
) -> list[_harness.Row]:
    """The raw replay against the executor on one model, and the derived row of their difference per call."""
    raw = raw_replay(setup, codegen, x)
    with torch.no_grad():
        expected = codegen(x)
        check_close(raw(x), expected, f"{RAW}, {label}")
        for _ in range(2):
            check_close(graphs(x), expected, f"{CUDA_GRAPHS}, {label}")
    row = timed_row(setup, f"replay, {label}", {RAW: raw, CUDA_GRAPHS: graphs}, RAW, x, grad=False)
    pair = _FastestPair(CUDA_GRAPHS, RAW)
    setup.pairs.append(pair)
    row.samples = {name: pair.watch(name, sample) for name, sample in row.samples.items()}
    derived = _harness.Row(
        f"cost per call, {label}",
        [BUDGET, COST],
        BUDGET,
        {BUDGET: lambda: BUDGET_S, COST: pair.difference},
    )
    return [row, derived]


def one_layer(setup: _Setup) -> list[_harness.Row]:
    torch.manual_seed(0)
    layer = nn.Linear(4, 4)
    codegen = symgraph_chain([layer])
    graphs = symgraph_chain([layer], executor="cuda_graphs", executor_options=setup.layer_option)
    for model in (codegen, graphs):
        model.to(setup.device)
    x = torch.randn(4, 4).to(setup.device)
    rows = cost_rows(setup, "Linear(4, 4)", codegen, graphs, x)
    note_replays(setup, "Linear(4, 4)", graphs)
    return rows


# ----------------------------------------------------------------------------- the case


def environment_note(setup: _Setup) -> str:
    if setup.device.type != "cuda":
        return (
            f"DRY RUN on {setup.device} with {type(setup.device_layer).__name__}: the logic of the case, not GPU times"
        )
    cudnn = torch.backends.cudnn.version()  # type: ignore[no-untyped-call]
    return (
        f"{torch.cuda.get_device_name(setup.device)}; torch {torch.__version__}, CUDA {torch.version.cuda}, "
        f"cuDNN {cudnn}; cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}, "
        f"matmul precision {torch.get_float32_matmul_precision()!r}, cudnn.benchmark={torch.backends.cudnn.benchmark}"
    )


def attempt(setup: _Setup, label: str, make: Callable[[], T]) -> T | None:
    """``make()``, or ``None`` with an ERROR note (and the traceback on stderr) if it fails.

    One GPU run is all a change may get: a row group that fails (a mismatch
    included) is left out with its reason, so that the others still report.
    """
    try:
        return make()
    except Exception as exc:
        traceback.print_exc()
        setup.notes.append(f"ERROR: {label} left out: {first_line(exc)}")
        return None


def build(
    quick: bool, device: torch.device, device_layer: DeviceLayer | None = None, with_compile: bool = True
) -> _harness.Case:
    """The case on ``device``; ``device="cpu"`` with a ``FakeDeviceLayer`` checks its logic without a GPU."""
    setup = _Setup(device, device_layer, with_compile)
    setup.notes.append(environment_note(setup))
    inferences = {px: attempt(setup, f"{px} px inference", functools.partial(inference, setup, px)) for px in SIZES}
    rows = [result.row for result in inferences.values() if result is not None]
    for px in SIZES:
        row = attempt(setup, f"{px} px training", functools.partial(training, setup, px))
        rows += [] if row is None else [row]
    row = attempt(setup, f"{CHAIN_DEPTH} x Linear(4, 4)", functools.partial(chain, setup))
    rows += [] if row is None else [row]
    rows += attempt(setup, "executor cost, Linear(4, 4)", functools.partial(one_layer, setup)) or []
    small = inferences[SIZES[0]]
    if small is not None:
        label = f"ResNet {SIZES[0]} px (info)"
        rows += attempt(setup, f"executor cost, {label}", lambda: cost_rows(setup, label, *small.models)) or []
    if not rows:
        raise RuntimeError(f"every row of the cuda_graphs case failed: {setup.notes[1:]}")
    setup.notes += [
        "Samples synchronise the device before and after a batch of calls: times are per call, device work included.",
        f"Outputs checked with torch.allclose(rtol={RTOL:g}, atol={ATOL:g}) against the baseline; training: the "
        f"losses of the first {CHECK_STEPS} steps from the same weights. All models in eval mode (dropout off).",
        "Training rows have no target. The executor-cost target is measured on Linear(4, 4), whose device work is "
        "shorter than the host's per call; on the toy ResNet the device hides part of the host's cost.",
    ]
    if not with_compile:
        setup.notes.append(f"torch.compile variants left out ({COMPILE_ENV}=0).")

    def before_round(_: int) -> None:
        for pair in setup.pairs:
            pair.reset()

    def close() -> None:
        setup.notes.extend(stat() for stat in setup.stats)

    return _harness.Case(
        name="cuda_graphs",
        title=f"cuda_graphs executor on a GPU: toy ResNet batch {BATCH}, {CHAIN_DEPTH} x Linear(4, 4), executor cost",
        rows=rows,
        legend={variant: text for variant, text in LEGEND.items() if any(variant in row.variants for row in rows)},
        rounds=15,
        quick_rounds=5,
        passes=2 if quick else 3,
        targets=[t for t in TARGETS if any(row.name == t.row for row in rows)],
        notes=setup.notes,
        unit="us",
        before_round=before_round,
        close=close,
    )


def case(quick: bool) -> _harness.Case:
    reason = CudaDeviceLayer().unavailable_reason()
    if reason is not None:
        raise _harness.CaseUnavailableError(f"no CUDA device is available ({reason})")
    device = torch.device("cuda", torch.cuda.current_device())
    return build(quick, device, with_compile=os.environ.get(COMPILE_ENV, "1") != "0")


class HostOnlyLayer(FakeDeviceLayer):
    """The fake device layer with replays that do nothing: what is left of a call is the host's work."""

    def replay(self, graph: Any) -> None:
        graph.replays += 1


def host_case(quick: bool) -> _harness.Case:
    """The executor's host cost per call, on the CPU, against the same hand-made replay: runs anywhere.

    Both sides of each pair replay a graph that does nothing (:class:`HostOnlyLayer`),
    so the difference is the executor's own work per call: checking what could
    have changed, keying the call, copying in, cloning out. A GPU host is
    usually faster than this one; the ``cuda_graphs`` case measures the same
    pair on real graphs.
    """
    setup = _Setup(torch.device("cpu"), HostOnlyLayer(), with_compile=False)
    setup.notes.append(
        "Replays do nothing (HostOnlyLayer): the difference is the executor's host work per call, on the CPU."
    )
    rows = one_layer(setup)
    layers = make_layers(SIZES[0])
    codegen = symgraph_resnet(layers, SIZES[0])
    graphs = symgraph_resnet(layers, SIZES[0], executor="cuda_graphs", executor_options=setup.layer_option)
    x = torch.randn(BATCH, 3, SIZES[0], SIZES[0])
    label = f"ResNet {SIZES[0]} px"
    rows += cost_rows(setup, label, codegen, graphs, x)

    def before_round(_: int) -> None:
        for pair in setup.pairs:
            pair.reset()

    return _harness.Case(
        name="cuda_graphs_host",
        title="cuda_graphs executor: its own host cost per call, replays that do nothing, on the CPU",
        rows=rows,
        legend={v: t for v, t in LEGEND.items() if any(v in row.variants for row in rows)},
        rounds=15,
        quick_rounds=5,
        passes=2 if quick else 3,
        targets=[
            _harness.Target("cost per call, Linear(4, 4)", COST, 1.0),
            _harness.Target(f"cost per call, {label}", COST, 1.0),
        ],
        notes=setup.notes,
        unit="us",
        before_round=before_round,
    )


CASES: _harness.CaseBuilders = {"cuda_graphs": case, "cuda_graphs_host": host_case}


if __name__ == "__main__":
    sys.exit(_harness.main(CASES, "python -m benchmarks.cuda_graphs", __doc__))
