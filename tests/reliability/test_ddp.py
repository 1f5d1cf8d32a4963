"""A SymbolicModel trained with DistributedDataParallel, by separate processes.

On the CPU two gloo processes each train half of every global batch; they must
end with identical parameters, equal (to rounding) to one process training the
same model on the whole batches, since DDP averages the gradients of mean
losses. With CUDA, the step is captured by ``capture_training_step`` (NCCL
collectives inside the graph) and must train like the same DDP model run
eagerly.

Each rank is a process started from ``_ddp_worker.py`` by path; it loads the
pickled model and the batches the test saved in ``tmp_path`` and saves its
results there.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")

from tests.reliability._ddp_worker import (  # noqa: E402
    CUDA_STEPS,
    CUDA_WARMUP,
    build_model,
    cpu_parameters,
    make_batches,
    save_model,
    sgd,
    shard,
    train_eagerly,
)

WORKER = Path(__file__).with_name("_ddp_worker.py")
#: Seconds the ranks may take together before the test kills them (a lost rank would otherwise hang the others).
CPU_TIMEOUT_S, CUDA_TIMEOUT_S = 120, 300
CPU_STEPS = 4


def run_ranks(mode: str, world_size: int, directory: Path, timeout: float) -> list[dict[str, Any]]:
    """Start one worker per rank, wait for all of them, and return what each saved.

    A rank that fails stops the others at once (they would wait for it in their
    next collective until gloo's own half-hour timeout); so does a group that
    outlives ``timeout``. Either fails the test with every rank's output.
    """
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    logs = [directory / f"rank{rank}.log" for rank in range(world_size)]
    ranks = []
    for rank, log in enumerate(logs):
        # Output goes to files, not pipes, so that a chatty rank can never block on a full pipe.
        with log.open("w") as out:
            ranks.append(
                subprocess.Popen(
                    [sys.executable, str(WORKER), mode, str(rank), str(world_size), str(directory)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
            )
    deadline = time.monotonic() + timeout
    problem = None
    try:
        while problem is None:
            codes = [process.poll() for process in ranks]
            if None not in codes:
                break
            if any(code not in (None, 0) for code in codes):
                problem = "a rank failed"
            elif time.monotonic() > deadline:
                problem = f"the ranks did not finish within {timeout} s"
            else:
                time.sleep(0.02)
    finally:
        # Also on an interrupted test: no rank outlives it.
        for process in ranks:
            if process.poll() is None:
                process.kill()
            process.wait()
    if problem is None and any(process.returncode != 0 for process in ranks):
        problem = "a rank failed"
    if problem is not None:
        report = "\n".join(
            f"--- rank {r} (exit {process.returncode}):\n{log.read_text(errors='replace')[-3000:]}"
            for r, (process, log) in enumerate(zip(ranks, logs, strict=True))
        )
        pytest.fail(f"{mode} DDP run: {problem}:\n{report}")
    return [torch.load(directory / f"rank{rank}.pt", weights_only=True) for rank in range(world_size)]


def prepare(directory: Path, steps: int) -> tuple[Any, list[tuple[Any, Any]]]:
    """Build the model from a fixed seed; save it and the batches for the workers."""
    torch.manual_seed(1234)
    model = build_model()
    batches = make_batches(steps, seed=99)
    save_model(model, directory)
    torch.save(batches, directory / "batches.pt")
    return model, batches


def assert_same_parameters(got: dict[str, Any], expected: dict[str, Any], what: str, **tolerance: float) -> None:
    """The same parameter names, each ``allclose`` (or ``equal`` without a tolerance)."""
    assert got.keys() == expected.keys(), what
    for name, value in got.items():
        if tolerance:
            close = torch.allclose(value, expected[name], **tolerance)
            error = (value - expected[name]).abs().max().item()
            assert close, f"{what}: {name} differs by up to {error:.3g}"
        else:
            assert torch.equal(value, expected[name]), f"{what}: {name} differs"


def test_two_gloo_processes_train_like_one_process_on_the_whole_batch(tmp_path: Path) -> None:
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with the gloo backend is not available in this torch build")
    model, batches = prepare(tmp_path, CPU_STEPS)
    initial = cpu_parameters(model)
    alone = copy.deepcopy(model)

    ranks = run_ranks("cpu", 2, tmp_path, CPU_TIMEOUT_S)

    expected_losses = train_eagerly(model, sgd(model.parameters()), batches)
    expected = cpu_parameters(model)
    # Both ranks hold the same averaged gradient, so they stay bit for bit alike.
    assert_same_parameters(ranks[1]["params"], ranks[0]["params"], "rank 1 against rank 0")
    # Averaging two half-batch gradients rounds differently from one full-batch gradient: allclose, not equal.
    assert_same_parameters(ranks[0]["params"], expected, "DDP against one process", rtol=1e-5, atol=1e-6)
    mean_losses = [(a + b) / 2 for a, b in zip(ranks[0]["losses"], ranks[1]["losses"], strict=True)]
    assert mean_losses == pytest.approx(expected_losses, rel=1e-5, abs=1e-6)

    # The comparison means something: training moved the weights, and the ranks did not train alone.
    assert not any(torch.equal(initial[name], value) for name, value in expected.items())
    train_eagerly(alone, sgd(alone.parameters()), [(shard(x, 0, 2), shard(y, 0, 2)) for x, y in batches])
    alone_params = cpu_parameters(alone)
    assert not any(torch.allclose(alone_params[n], v, rtol=1e-5, atol=1e-6) for n, v in ranks[0]["params"].items())


@pytest.mark.cuda
def test_ddp_training_step_captured_in_a_cuda_graph_trains_like_eager_ddp(tmp_path: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device: torch.cuda.is_available() is False")
    if not dist.is_available() or not dist.is_nccl_available():
        pytest.skip("torch.distributed with the nccl backend is not available in this torch build")
    world_size = 2 if torch.cuda.device_count() >= 2 else 1
    model, _ = prepare(tmp_path, CUDA_STEPS)
    initial = cpu_parameters(model)

    ranks = run_ranks("cuda", world_size, tmp_path, CUDA_TIMEOUT_S)

    for rank, result in enumerate(ranks):
        stats = result["stats"]
        assert stats["mode"] == "captured step", stats
        assert stats["replays"] > 0, stats
        assert stats["replays"] == CUDA_STEPS - CUDA_WARMUP, stats
        assert stats["eager_steps"] == CUDA_WARMUP, stats
        assert stats["captures"] == 1 and stats["fallbacks"] == {}, stats
        what = f"rank {rank}: captured against eager DDP"
        assert_same_parameters(result["params"], result["eager_params"], what, rtol=1e-4, atol=1e-5)
        assert result["losses"] == pytest.approx(result["eager_losses"], rel=1e-4, abs=1e-5)
        assert not any(torch.equal(initial[name], value) for name, value in result["params"].items())
    for rank in range(1, world_size):
        assert_same_parameters(ranks[rank]["params"], ranks[0]["params"], f"rank {rank} against rank 0")
