"""The suite's cases as pytest-benchmark tests, one representative size each.

Run: ``.venv/bin/python -m pytest benchmarks -p no:cacheprovider --benchmark-only``

The project's plain ``pytest`` run does not collect this directory (its
``testpaths`` leave ``benchmarks/`` out). Every test checks its variant's output
against the case's baseline, as ``python -m benchmarks`` does before timing
(seeded alike before each compared call in train mode, where dropout is random),
and tests of one case and size share a pytest-benchmark group, so that the
variants are compared side by side. pytest-benchmark times variants one after
the other, not interleaved: for ratios on this noisy machine, use
``python -m benchmarks`` (paired per-round ratios). The module-call test runs
in one process, hook installed against hook uninstalled; the suite's
``module_call`` case compares against a fresh process instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")

from benchmarks import (  # noqa: E402
    _call_worker,
    _harness,
    build_scaling,
    dask_pipeline,
    mlp,
    numpy_replay,
    torch_forward,
    toy_resnet,
)

MODES = _harness.GRAD_MODES
TRAIN_MODES = _harness.TRAIN_MODES
DEEP_LINEAR_DEPTH = 1000
RESNET_PX = 32
RESNET_BN_PX = 16
NUMPY_SHAPE = (8,)
CHAIN_NODES = 10_000


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    _harness.set_torch_threads()
    yield
    torch.set_num_threads(threads)


def variant_or_skip(models: dict[str, Any], variant: str) -> Any:
    if variant not in models:
        pytest.skip(_harness.PYTORCH_SYMBOLIC_MISSING)
    return models[variant]


def time_forward(
    benchmark: Any, group: str, models: dict[str, Any], baseline: str, variant: str, x: Any, grad: bool
) -> None:
    """Time one variant's forward pass and check its output against the baseline's."""
    model = variant_or_skip(models, variant)
    benchmark.group = group
    with torch.set_grad_enabled(grad):
        expected = models[baseline](x)
        out = benchmark(model, x)
    assert torch.equal(out, expected)


def time_forward_in_mode(
    benchmark: Any, group: str, models: dict[str, Any], baseline: str, variant: str, x: Any, mode: str
) -> None:
    """Time one variant's forward pass in a mode of ``TRAIN_MODES``, after checking its output against the baseline's.

    The modules are put in the mode first (the variants share their layers); in
    train mode both compared calls are seeded alike, so that dropout draws the
    same masks.
    """
    model = variant_or_skip(models, variant)
    training, grad = TRAIN_MODES[mode]
    _harness.set_training(models, training)
    benchmark.group = group
    with torch.set_grad_enabled(grad):
        seed = _harness.CHECK_SEED if training else None
        _harness.check_same_outputs({baseline: models[baseline], variant: model}, baseline, x, [grad], seed=seed)
        benchmark(model, x)


# deep_linear ------------------------------------------------------------------


@pytest.fixture(scope="module")
def deep_linear() -> tuple[dict[str, Callable[[Any], Any]], Any]:
    return torch_forward.build_models(DEEP_LINEAR_DEPTH)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", list(torch_forward.LEGEND))
def test_deep_linear(benchmark: Any, deep_linear: tuple[dict[str, Any], Any], variant: str, mode: str) -> None:
    models, x = deep_linear
    group = f"deep_linear: {DEEP_LINEAR_DEPTH} x Linear(4, 4), {mode}"
    time_forward(benchmark, group, models, torch_forward.LOOPING, variant, x, MODES[mode])


# toy_resnet -------------------------------------------------------------------


@pytest.fixture(scope="module")
def resnet() -> tuple[dict[str, Callable[[Any], Any]], Any]:
    return toy_resnet.build_models(RESNET_PX)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", list(toy_resnet.LEGEND))
def test_toy_resnet(benchmark: Any, resnet: tuple[dict[str, Any], Any], variant: str, mode: str) -> None:
    models, x = resnet
    group = f"toy_resnet: {RESNET_PX} px, batch {toy_resnet.BATCH}, {mode}"
    time_forward(benchmark, group, models, toy_resnet.HAND_WRITTEN, variant, x, MODES[mode])


# toy_resnet_bn ----------------------------------------------------------------


@pytest.fixture(scope="module")
def resnet_bn() -> tuple[dict[str, dict[str, Callable[[Any], Any]]], Any]:
    return toy_resnet.build_bn_models(RESNET_BN_PX)


@pytest.mark.parametrize("mode", TRAIN_MODES)
@pytest.mark.parametrize("variant", list(toy_resnet.BN_LEGEND))
def test_toy_resnet_bn(benchmark: Any, resnet_bn: tuple[dict[str, Any], Any], variant: str, mode: str) -> None:
    per_mode, x = resnet_bn
    group = f"toy_resnet_bn: {RESNET_BN_PX} px, batch {toy_resnet.BATCH}, {mode}"
    time_forward_in_mode(benchmark, group, per_mode[mode], toy_resnet.HAND_WRITTEN, variant, x, mode)


# mlp --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlp_models() -> tuple[dict[str, dict[str, Callable[[Any], Any]]], Any]:
    return mlp.build_models()


@pytest.mark.parametrize("mode", TRAIN_MODES)
@pytest.mark.parametrize("variant", list(mlp.LEGEND))
def test_mlp(benchmark: Any, mlp_models: tuple[dict[str, Any], Any], variant: str, mode: str) -> None:
    per_mode, x = mlp_models
    group = f"mlp: {mlp.BLOCKS} blocks of width {mlp.WIDTH}, batch {mlp.BATCH}, {mode}"
    time_forward_in_mode(benchmark, group, per_mode[mode], mlp.HAND_WRITTEN, variant, x, mode)


# module_call ------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("hooked", [False, True], ids=["torch __call__", "symgraph_torch hook"])
def test_module_call(benchmark: Any, hooked: bool, mode: str) -> None:
    from symgraph_torch._tracing import install_module_call_hook, uninstall_module_call_hook

    modules, x = _call_worker.modules()
    linear = modules["Linear(4, 4)"]
    benchmark.group = f"module_call: Linear(4, 4), {mode}"
    with torch.set_grad_enabled(MODES[mode]):
        expected = linear.forward(x)
        if not hooked:
            uninstall_module_call_hook()
        try:
            out = benchmark(linear, x)
        finally:
            install_module_call_hook()
    assert torch.equal(out, expected)


# numpy ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def numpy_variants() -> tuple[dict[str, Callable[[Any], Any]], Any]:
    data = np.random.default_rng(1).random(NUMPY_SHAPE)
    return numpy_replay.build_variants(NUMPY_SHAPE, data), data


@pytest.mark.parametrize("variant", list(numpy_replay.LEGEND))
def test_numpy(benchmark: Any, numpy_variants: tuple[dict[str, Any], Any], variant: str) -> None:
    variants, data = numpy_variants
    func = variant_or_skip(variants, variant)
    benchmark.group = f"numpy: {len(numpy_replay.STEPS)} elementwise steps, shape {NUMPY_SHAPE}"
    out = benchmark(func, data)
    np.testing.assert_array_equal(out, variants[numpy_replay.DIRECT](data))


# build_scaling and conv_build -------------------------------------------------


def test_build_chain(benchmark: Any) -> None:
    benchmark.group = f"build_scaling: chain of {CHAIN_NODES:,} nodes, record + model"
    model = benchmark.pedantic(build_scaling.build_chain, args=(CHAIN_NODES,), rounds=5, warmup_rounds=1)
    assert model(1) == CHAIN_NODES + 1


@pytest.fixture(scope="module")
def conv() -> tuple[dict[str, Callable[[Any], Any]], Any, Any]:
    return build_scaling.conv_setup()


@pytest.mark.parametrize("variant", [build_scaling.EAGER, build_scaling.SYMGRAPH, build_scaling.PYTORCH_SYMBOLIC])
def test_conv_build(benchmark: Any, conv: tuple[dict[str, Any], Any, Any], variant: str) -> None:
    builders, example, expected = conv
    build = variant_or_skip(builders, variant)
    benchmark.group = f"conv_build: {build_scaling.CONV_LAYERS} x Conv2d(64, 64, 3), {build_scaling.CONV_PX} px"
    arg = example if variant == build_scaling.EAGER else None
    result = benchmark.pedantic(build, args=(arg,), rounds=3, iterations=1)
    with torch.no_grad():
        out = result if variant == build_scaling.EAGER else result(example)
    assert torch.equal(out, expected)


# dask_pipeline ----------------------------------------------------------------

DASK_WAIT_S = dask_pipeline.WAITS_S[0]


@pytest.fixture(scope="module")
def dask_variants() -> dict[str, Callable[[Any], Any]]:
    pytest.importorskip("dask")
    return dask_pipeline.build_variants(DASK_WAIT_S)


@pytest.mark.parametrize("variant", list(dask_pipeline.LEGEND))
def test_dask_pipeline(benchmark: Any, dask_variants: dict[str, Any], variant: str) -> None:
    benchmark.group = f"dask_pipeline: {dask_pipeline.label(DASK_WAIT_S)}"
    out = benchmark.pedantic(dask_variants[variant], args=(5,), rounds=5, warmup_rounds=1)
    assert out == dask_pipeline.pipeline(dask_pipeline.direct, 5, 0.0)
