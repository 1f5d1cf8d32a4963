"""One rank of the DistributedDataParallel tests in ``test_ddp.py``, run as its own process.

``python _ddp_worker.py MODE RANK WORLD_SIZE DIRECTORY`` joins a process group
through a file store in ``DIRECTORY``, loads the pickled model and the global
batches the test wrote there, trains its share of every batch and saves what it
ends with to ``DIRECTORY/rank<RANK>.pt``. ``MODE`` is ``cpu`` (gloo, SGD, eager)
or ``cuda`` (nccl, capturable Adam, an eager run and a captured run from the same
weights). The test module imports the model and the data from here too, so the
processes and the single-process reference train the same thing. The model
travels pickled, as it does to the processes that ``torch.multiprocessing``
spawns.

It is started by path with ``subprocess`` rather than by ``multiprocessing``:
``--import-mode=importlib`` gives test modules names that a spawned interpreter
cannot import, and a script run by path needs only the installed packages.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

#: Features, channels and sizes of the model and its data.
CHANNELS, SIDE, CLASSES = 2, 6, 3
#: How many samples each global batch holds; every rank takes an equal slice.
GLOBAL_BATCH = 16
#: What the CUDA run asks of ``capture_training_step``: PyTorch wants 11 eager DDP iterations before a capture.
CUDA_WARMUP, CUDA_STEPS = 11, 20


def build_model() -> nn.Module:
    """A small conv net with no dropout and no batch norm, so that a step is a pure function of its batch."""
    from symgraph_torch import Input, SymbolicModel

    inputs = Input((CHANNELS, SIDE, SIDE))
    x = nn.Conv2d(inputs.C, 4, 3)(inputs)(nn.Tanh())
    x = nn.Flatten()(x)
    x = nn.Linear(x.features, 8)(x)(nn.Tanh())
    model: nn.Module = SymbolicModel(inputs, nn.Linear(x.features, CLASSES)(x))
    return model


def make_batches(steps: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``steps`` global batches of inputs and regression targets, on the CPU."""
    generator = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(GLOBAL_BATCH, CHANNELS, SIDE, SIDE, generator=generator),
            torch.randn(GLOBAL_BATCH, CLASSES, generator=generator),
        )
        for _ in range(steps)
    ]


def shard(batch: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """The slice of a global batch that ``rank`` trains on."""
    size = batch.shape[0] // world_size
    return batch[rank * size : (rank + 1) * size]


def loss_of(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The mean squared error: a mean over the batch, so that DDP's average of rank gradients is the full-batch one."""
    return nn.functional.mse_loss(model(x), y)


def sgd(params: Any) -> torch.optim.Optimizer:
    """The optimizer of the CPU test, for the processes and the reference alike."""
    return torch.optim.SGD(params, lr=0.1, momentum=0.9)


def train_eagerly(
    model: nn.Module, optimizer: torch.optim.Optimizer, batches: list[tuple[torch.Tensor, torch.Tensor]]
) -> list[float]:
    """One plain training step per batch; returns the losses."""
    losses = []
    for x, y in batches:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_of(model, x, y)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        losses.append(loss.item())
    return losses


def cpu_parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's parameters by name, detached and copied to the CPU."""
    return {name: p.detach().cpu().clone() for name, p in model.named_parameters()}


def load_model(directory: Path) -> nn.Module:
    """The model that :func:`save_model` saved in ``directory``, with its initial weights."""
    # The test wrote the file a moment ago: unpickling it trusts nothing from elsewhere.
    model: nn.Module = torch.load(directory / "model.pt", weights_only=False)
    return model


def save_model(model: nn.Module, directory: Path) -> None:
    """Pickle the whole model, graph and weights, for the ranks to load."""
    torch.save(model, directory / "model.pt")


def _run_cpu(rank: int, world_size: int, directory: Path) -> dict[str, Any]:
    from torch.nn.parallel import DistributedDataParallel

    model = load_model(directory)
    ddp = DistributedDataParallel(model)
    batches = [
        (shard(x, rank, world_size), shard(y, rank, world_size))
        for x, y in torch.load(directory / "batches.pt", weights_only=True)
    ]
    losses = train_eagerly(ddp, sgd(ddp.parameters()), batches)
    return {"params": cpu_parameters(model), "losses": losses}


def _on_side_stream(make: Any) -> Any:
    # PyTorch's rule for DDP under CUDA graphs: construct it on a side stream.
    stream = torch.cuda.Stream()  # type: ignore[no-untyped-call]
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        made = make()
    torch.cuda.current_stream().wait_stream(stream)
    return made


def _run_cuda(rank: int, world_size: int, directory: Path) -> dict[str, Any]:
    from torch.nn.parallel import DistributedDataParallel

    from symgraph_torch.cuda_graphs import capture_training_step

    device = torch.device("cuda", rank)
    batches = [
        (shard(x, rank, world_size).to(device), shard(y, rank, world_size).to(device))
        for x, y in torch.load(directory / "batches.pt", weights_only=True)
    ]

    def ddp_model() -> tuple[nn.Module, Any, torch.optim.Optimizer]:
        model = load_model(directory).to(device)
        ddp = _on_side_stream(lambda: DistributedDataParallel(model, device_ids=[rank]))
        # A tensor learning rate and capturable=True let the optimizer step be captured with the rest.
        adam = torch.optim.Adam(ddp.parameters(), lr=torch.tensor(1e-3, device=device), capturable=True)
        return model, ddp, adam

    # The reference: the same DDP training, eager, from the same weights, on the same shards.
    eager_model, eager_ddp, eager_adam = ddp_model()
    eager_losses = train_eagerly(eager_ddp, eager_adam, batches)
    eager_params = cpu_parameters(eager_model)
    del eager_model, eager_ddp, eager_adam
    torch.cuda.synchronize(device)

    model, ddp, adam = ddp_model()
    step = capture_training_step(lambda x, y: loss_of(ddp, x, y), adam, model=ddp, warmup=CUDA_WARMUP)
    losses = [float(step(x, y)) for x, y in batches]
    torch.cuda.synchronize(device)
    return {
        "params": cpu_parameters(model),
        "losses": losses,
        "eager_params": eager_params,
        "eager_losses": eager_losses,
        "stats": step.stats(),
    }


def main(argv: list[str]) -> None:
    """Run one rank: ``argv`` is ``[MODE, RANK, WORLD_SIZE, DIRECTORY]``."""
    mode, rank, world_size, directory = argv[0], int(argv[1]), int(argv[2]), Path(argv[3])
    # The test checks results, not this process's warnings (gloo and nccl print some of their own).
    warnings.simplefilter("ignore")
    torch.manual_seed(0)
    import torch.distributed as dist

    if mode == "cpu":
        # Two processes share the machine: one thread each keeps them from fighting over cores.
        torch.set_num_threads(1)
        backend = "gloo"
    elif mode == "cuda":
        # PyTorch's rules for capturing NCCL collectives: no async error handling, set before the group exists.
        os.environ["TORCH_NCCL_ASYNC_ERROR_HANDLING"] = "0"
        torch.cuda.set_device(rank)
        backend = "nccl"
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    dist.init_process_group(backend, init_method=f"file://{directory / 'store'}", rank=rank, world_size=world_size)
    try:
        result = _run_cpu(rank, world_size, directory) if mode == "cpu" else _run_cuda(rank, world_size, directory)
    finally:
        dist.destroy_process_group()
    torch.save(result, directory / f"rank{rank}.pt")


if __name__ == "__main__":
    main(sys.argv[1:])
    # Leave without finalizing the interpreter. Gloo's worker threads may still be dropping the last
    # collective's work object then; its destructor takes the GIL, which a finalizing interpreter
    # refuses by ending the thread, and the C++ runtime aborts the process (about one run in thirty).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
