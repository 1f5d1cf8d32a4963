"""The ``cuda_graphs`` executor on a real CUDA device: replays, randomness, training and memory.

Skipped where torch finds no CUDA device; ``pytest -m cuda`` runs them on a GPU
machine (``benchmarks/run_gpu.sh`` does). The oracle is always the same layer
objects called eagerly on the same device.
"""

from __future__ import annotations

import copy
import warnings

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import symgraph  # noqa: E402
from symgraph_torch import Input, SymbolicModel  # noqa: E402
from symgraph_torch.cuda_graphs import CudaGraphsFallbackWarning, capture_training_step  # noqa: E402

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (torch finds none)"),
]

DEVICE = "cuda"


def convnet(dropout: float = 0.0) -> tuple[SymbolicModel, nn.Module]:
    """A small conv net as a cuda_graphs model, and the same layers in nn.Sequential (the oracle)."""
    torch.manual_seed(0)
    layers = [
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(16, 10),
    ]
    oracle = nn.Sequential(*layers).to(DEVICE)
    x = Input((3, 16, 16))
    y = x
    for layer in layers:
        y = layer(y)
    model = SymbolicModel(x, y, executor="cuda_graphs").to(DEVICE)
    return model, oracle


def test_replays_equal_eager_code():
    model, oracle = convnet()
    model.eval()
    with torch.no_grad():
        for seed in range(5):
            data = torch.rand(4, 3, 16, 16, device=DEVICE, generator=torch.Generator(DEVICE).manual_seed(seed))
            assert torch.allclose(model(data), oracle(data), rtol=1e-5, atol=1e-6)
    stats = model.executor_stats()
    assert (stats["graphs"], stats["replays"], stats["eager_calls"]) == (1, 5, 0)


def test_buckets_replay_equal_eager_code_and_memory_stays_bounded():
    model, oracle = convnet()
    model.set_executor("cuda_graphs", buckets=[1, 8, 32])
    model.eval()
    with torch.no_grad():
        for batch in (5, 32, 1, 7, 20):
            data = torch.rand(batch, 3, 16, 16, device=DEVICE)
            assert torch.allclose(model(data), oracle(data), rtol=1e-4, atol=1e-5)
        torch.cuda.synchronize()
        allocated = torch.cuda.memory_allocated()
        for _ in range(50):
            for batch in (3, 8, 30):
                model(torch.rand(batch, 3, 16, 16, device=DEVICE))
        torch.cuda.synchronize()
        # Fresh outputs are freed by the caller; the graphs allocate nothing per replay.
        assert torch.cuda.memory_allocated() <= allocated + 1024 * 1024
    stats = model.executor_stats()
    assert stats["graphs"] == 3 and stats["eager_calls"] == 0

    largest_only, _ = convnet()
    largest_only.set_executor("cuda_graphs", buckets=[32])
    largest_only.eval()
    with torch.no_grad():
        largest_only(torch.rand(3, 3, 16, 16, device=DEVICE))
    shared, alone = stats["pool_bytes"], largest_only.executor_stats()["pool_bytes"]
    assert alone > 0 and shared <= 2 * alone  # the smaller buckets reused the largest one's blocks


def test_dropout_is_bitwise_equal_to_eager_code_on_the_same_seed():
    model, oracle = convnet(dropout=0.5)
    data = torch.rand(8, 3, 16, 16, device=DEVICE)
    with torch.no_grad():
        model(data)  # capture first: the capture must not move the generator
        torch.manual_seed(7)
        got = [model(data) for _ in range(4)]
        torch.manual_seed(7)
        expected = [oracle(data) for _ in range(4)]
    for a, b in zip(got, expected, strict=True):
        assert torch.equal(a, b)


def train_eagerly(model, optimizer, batches):  # type: ignore[no-untyped-def]
    for x, y in batches:
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


def batches(n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator(DEVICE).manual_seed(3)
    return [
        (
            torch.rand(8, 3, 16, 16, device=DEVICE, generator=generator),
            torch.randint(0, 10, (8,), device=DEVICE, generator=generator),
        )
        for _ in range(n)
    ]


@pytest.mark.parametrize("capturable", [True, False], ids=["captured step", "graphed forward and backward"])
def test_a_captured_training_step_trains_as_eager_code(capturable):
    model, oracle = convnet(dropout=0.25)
    model.set_executor("codegen")
    twin = copy.deepcopy(oracle)

    def adam(params):  # type: ignore[no-untyped-def]
        if capturable:
            return torch.optim.Adam(params, lr=torch.tensor(1e-3, device=DEVICE), capturable=True)
        return torch.optim.Adam(params, lr=1e-3)

    optimizer, reference = adam(model.parameters()), adam(twin.parameters())
    step = capture_training_step(
        lambda x, y: nn.functional.cross_entropy(model(x), y), optimizer, model=model, warmup=3
    )
    data = batches(10)
    torch.manual_seed(11)
    for x, y in data:
        step(x, y)
    torch.manual_seed(11)
    train_eagerly(twin, reference, data)
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.allclose(p, q, rtol=1e-5, atol=1e-6)
    stats = step.stats()
    assert stats["replays"] > 0 and stats["fallbacks"] == {}
    assert stats["mode"] == ("captured step" if capturable else "graphed forward and backward")


def test_gradients_through_graphed_forward_and_backward_equal_eager_ones():
    model, oracle = convnet()
    twin = copy.deepcopy(oracle)
    x = torch.rand(4, 3, 16, 16, device=DEVICE)
    for _ in range(2):  # the second call replays
        model.zero_grad()
        twin.zero_grad()
        model(x).square().sum().backward()
        twin(x).square().sum().backward()
        for p, q in zip(model.parameters(), twin.parameters(), strict=True):
            assert torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-5)
    assert model.executor_stats()["replays"] == 2


def test_a_capture_that_fails_falls_back_and_leaves_the_device_usable():
    torch.manual_seed(0)
    layer = nn.Linear(4, 4).to(DEVICE)
    x = Input((4,))
    y = layer(x)
    # float() of a tensor syncs; the plan check does not know this callable, the capture finds out.
    scale = symgraph.add_to_graph(float, y.max())
    model = SymbolicModel(x, y * scale, executor="cuda_graphs")
    data = torch.rand(3, 4, device=DEVICE)
    with torch.no_grad(), pytest.warns(CudaGraphsFallbackWarning, match="capture failed"):
        got = model(data)
    expected = layer(data) * float(layer(data).max())
    assert torch.allclose(got, expected)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.allclose(model(data), expected)  # cached: not captured again
    follow_up, oracle = convnet()
    follow_up.eval()
    with torch.no_grad():
        probe = torch.rand(2, 3, 16, 16, device=DEVICE)
        assert torch.allclose(follow_up(probe), oracle(probe), rtol=1e-5, atol=1e-6)


def test_moving_the_model_drops_its_graphs():
    model, oracle = convnet()
    model.eval()
    data = torch.rand(4, 3, 16, 16, device=DEVICE)
    with torch.no_grad():
        model(data)
        model.double()
        oracle.double()
        assert torch.allclose(model(data.double()), oracle(data.double()))
    assert model.executor_stats()["invalidations"] == 1


def test_cpu_tensors_run_eagerly_with_the_reason():
    torch.manual_seed(0)
    layer = nn.Linear(4, 2)
    x = Input((4,))
    model = SymbolicModel(x, layer(x), executor="cuda_graphs")
    data = torch.rand(3, 4)
    with torch.no_grad(), pytest.warns(CudaGraphsFallbackWarning, match="is on cpu"):
        assert torch.equal(model(data), layer(data))
