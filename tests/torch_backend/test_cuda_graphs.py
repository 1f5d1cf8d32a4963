"""The ``cuda_graphs`` executor on the CPU, through the fake device layer.

The fake layer records each captured callable and replays it eagerly into the
static outputs, so these tests check every decision the executor makes (keys,
buckets, padding, eviction, output ownership, fallbacks, strict mode,
invalidation) against the oracle: the same layer objects called eagerly.
"""

from __future__ import annotations

import copy
import warnings

import pytest

torch = pytest.importorskip("torch")
numpy = pytest.importorskip("numpy")

from torch import nn  # noqa: E402

import symgraph  # noqa: E402
from symgraph import ExecutorError, ExecutorFallbackWarning  # noqa: E402
from symgraph_torch import Input, SymbolicModel  # noqa: E402
from symgraph_torch.cuda_graphs import (  # noqa: E402
    CudaGraphsFallbackWarning,
    FakeDeviceLayer,
    capture_training_step,
)


def mlp(features: int = 4, hidden: int = 8, out: int = 3, *, dropout: float = 0.0) -> tuple[nn.Module, ...]:
    torch.manual_seed(0)
    return nn.Linear(features, hidden), nn.Dropout(dropout), nn.Linear(hidden, out)


def build(layers, *, features: int = 4, **options):  # type: ignore[no-untyped-def]
    """A cuda_graphs model over ``layers`` (Linear, Dropout, Linear) and the fake layer it runs on."""
    fake = options.pop("device_layer", None) or FakeDeviceLayer()
    x = Input((features,))
    first, drop, second = layers
    y = second(drop(first(x).relu()))
    model = SymbolicModel(x, y, executor="cuda_graphs", executor_options={"device_layer": fake, **options})
    return model, fake


def eager(layers, data):  # type: ignore[no-untyped-def]
    first, drop, second = layers
    return second(drop(first(data).relu()))


def parameter_pairs(layers, twin):  # type: ignore[no-untyped-def]
    """The parameters of two lists of layers, side by side."""
    for mine, theirs in zip(layers, twin, strict=True):
        yield from zip(mine.parameters(), theirs.parameters(), strict=True)


def fallbacks(model) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return model.executor_stats()["fallbacks"]  # type: ignore[no-any-return]


def keys(model) -> list:  # type: ignore[no-untyped-def]
    return list(model._program.runner._graphs)


# -- replay equals eager ------------------------------------------------------------------------
def test_replays_equal_eager_code_call_after_call():
    layers = mlp()
    model, fake = build(layers)
    with torch.no_grad():
        for seed in range(4):
            data = torch.rand(5, 4, generator=torch.Generator().manual_seed(seed))
            assert torch.equal(model(data), eager(layers, data))
    stats = model.executor_stats()
    assert (stats["graphs"], stats["captures"], stats["replays"], stats["eager_calls"]) == (1, 1, 4, 0)
    assert fake.captures == 1 and fake.graphs[0].replays == 4


def test_outputs_are_fresh_by_default_and_static_on_request():
    layers = mlp()
    fresh, _ = build(layers)
    static, _ = build(layers, outputs="static")
    a, b = torch.rand(2, 4), torch.rand(2, 4)
    with torch.no_grad():
        first, second = fresh(a), fresh(b)
        assert torch.equal(first, eager(layers, a)) and torch.equal(second, eager(layers, b))
        kept = static(a)
        assert torch.equal(kept, eager(layers, a))
        again = static(b)
    assert again is kept  # the graph's own output tensor ...
    assert torch.equal(kept, eager(layers, b))  # ... which the next call overwrote
    assert first.data_ptr() != second.data_ptr()


def test_a_dict_of_outputs_and_several_inputs_come_back_in_their_structure():
    torch.manual_seed(1)
    left, right = nn.Linear(3, 2), nn.Linear(5, 2)
    a, b = Input((3,)), Input((5,))
    outputs = {"sum": left(a) + right(b), "left": left(a)}
    fake = FakeDeviceLayer()
    model = SymbolicModel([a, b], outputs, executor="cuda_graphs", executor_options={"device_layer": fake})
    x, y = torch.rand(4, 3), torch.rand(4, 5)
    with torch.no_grad():
        got = model(x, y)
        assert list(got) == ["sum", "left"]
        assert torch.equal(got["sum"], left(x) + right(y)) and torch.equal(got["left"], left(x))


# -- keys ----------------------------------------------------------------------------------------
def test_each_shape_dtype_mode_and_grad_state_gets_its_own_graph():
    layers = mlp()
    model, _ = build(layers)
    data = torch.rand(3, 4)
    with torch.no_grad():
        model(data)
        model(data)  # same key: a replay
        model(torch.rand(6, 4))  # another batch size
        model.eval()
        assert torch.equal(model(data), eager(layers, data))  # eval mode is another key
    model.train()
    out = model(data)  # grad mode, parameters requiring grad: forward and backward captured
    assert out.requires_grad and torch.allclose(out, eager(layers, data))
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        auto = model(data)
        assert auto.dtype == torch.bfloat16 and torch.equal(auto, eager(layers, data))
    stats = model.executor_stats()
    assert (stats["graphs"], stats["captures"], stats["replays"]) == (5, 5, 6)


def test_inference_mode_is_part_of_the_key():
    # A graph captured under inference_mode has inference tensors as buffers,
    # which no later call outside it could write.
    layers = mlp()
    model, _ = build(layers)
    data = torch.rand(3, 4)
    with torch.inference_mode():
        assert torch.equal(model(data), eager(layers, data))
    with torch.no_grad():
        assert torch.equal(model(data), eager(layers, data))
    with torch.inference_mode():
        assert torch.equal(model(data), eager(layers, data))
    stats = model.executor_stats()
    assert (stats["graphs"], stats["replays"], stats["eager_calls"]) == (2, 3, 0)


def test_a_single_layer_put_in_eval_mode_is_part_of_the_key():
    layers = mlp(dropout=0.5)
    model, _ = build(layers)
    data = torch.rand(8, 4)
    with torch.no_grad():
        model.eval()
        model(data)
        layers[1].train()  # only the dropout: a graph captured in eval mode would skip it
        torch.manual_seed(5)
        got = model(data)
        torch.manual_seed(5)
        assert torch.equal(got, eager(layers, data))
    assert model.executor_stats()["graphs"] == 2


def test_scalar_inputs_are_keyed_by_value_and_other_objects_run_eagerly():
    torch.manual_seed(0)
    layer = nn.Linear(4, 4)
    x, k = Input((4,)), symgraph.CustomInput(2.0)
    fake = FakeDeviceLayer()
    model = SymbolicModel([x, k], layer(x) * k, executor="cuda_graphs", executor_options={"device_layer": fake})
    data = torch.rand(2, 4)
    with torch.no_grad():
        assert torch.equal(model(data, 2.0), layer(data) * 2.0)
        assert torch.equal(model(data, 3.0), layer(data) * 3.0)  # a new value is a new key, not a stale graph
        assert model.executor_stats()["graphs"] == 2
        with pytest.warns(CudaGraphsFallbackWarning, match="input 'Input_2' is a float64"):
            assert torch.equal(model(data, numpy.float64(4.0)), layer(data) * numpy.float64(4.0))
    assert fallbacks(model) == {
        "input 'Input_2' is a float64: a graph keys tensors and None, bool, int, float or str values only": 1
    }


def test_the_least_recently_used_graph_is_evicted_and_reset():
    layers = mlp()
    model, fake = build(layers, max_graphs=2)
    two, three, four = torch.rand(2, 4), torch.rand(3, 4), torch.rand(4, 4)
    with torch.no_grad():
        model(two)
        model(three)
        model(two)  # two is now the most recently used
        assert torch.equal(model(four), eager(layers, four))
        assert [k[0][0][0] for k in keys(model)] == [(2, 4), (4, 4)]
        assert fake.graphs[1].function is None  # the graph of three was reset
        assert torch.equal(model(three), eager(layers, three))  # and is captured again
    stats = model.executor_stats()
    assert (stats["graphs"], stats["evictions"], stats["captures"]) == (2, 2, 4)


# -- buckets ---------------------------------------------------------------------------------------
def test_buckets_pad_the_batch_and_slice_the_outputs_back():
    layers = mlp()
    model, fake = build(layers, buckets=[1, 8, 32])
    model.eval()
    with torch.no_grad():
        for batch in (5, 8, 1, 20, 3):
            data = torch.rand(batch, 4)
            out = model(data)
            assert out.shape == (batch, 3)
            assert torch.allclose(out, eager(layers, data), rtol=1e-6, atol=1e-7)
    # All three captured at the first call, the largest first.
    assert [g.outputs.shape[0] for g in fake.graphs] == [32, 8, 1]
    stats = model.executor_stats()
    assert (stats["graphs"], stats["captures"], stats["replays"], stats["eager_calls"]) == (3, 3, 5, 0)


def test_padding_leaves_no_rows_of_an_earlier_call_behind():
    torch.manual_seed(0)
    layer = nn.Linear(4, 4)
    x = Input((4,))
    fake = FakeDeviceLayer()
    model = SymbolicModel(
        x,
        layer(x).sum(1),
        executor="cuda_graphs",
        executor_options={"device_layer": fake, "buckets": [8], "outputs": "static"},
    ).eval()
    with torch.no_grad():
        model(torch.rand(7, 4))
        small = torch.rand(2, 4)
        assert torch.allclose(model(small), layer(small).sum(1))
    assert torch.equal(model._program.runner._graphs[next(iter(keys(model)))].inputs[0][2:], torch.zeros(6, 4))


def test_a_batch_above_the_largest_bucket_runs_eagerly_with_its_reason():
    layers = mlp()
    model, _ = build(layers, buckets=[2, 4])
    model.eval()
    data = torch.rand(9, 4)
    with torch.no_grad(), pytest.warns(CudaGraphsFallbackWarning, match="larger than the largest bucket"):
        assert torch.equal(model(data), eager(layers, data))
    assert fallbacks(model) == {"a batch of 9 is larger than the largest bucket (4)": 1}


def test_in_training_mode_calls_get_graphs_of_their_own_size_unless_declared_and_never_padded_batchnorm():
    layers = mlp()
    model, fake = build(layers, buckets=[8])
    data = torch.rand(3, 4)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")  # not a fallback: a graph of the call's own size
        assert torch.equal(model(data), eager(layers, data))
        exact = torch.rand(8, 4)
        assert torch.equal(model(exact), eager(layers, exact))  # a full bucket needs no padding
    assert [g.outputs.shape[0] for g in fake.graphs] == [3, 8]
    stats = model.executor_stats()
    assert (stats["graphs"], stats["eager_calls"]) == (2, 0)
    assert list(stats["unpadded"]) == [
        "the model is in training mode, where padding the batch to a bucket changes what random layers draw; "
        "call model.eval(), or pass batch_independent=True to pad anyway"
    ]

    declared, fake = build(layers, buckets=[8], batch_independent=True)
    with torch.no_grad():
        assert torch.allclose(declared(data), eager(layers, data))
    assert [g.outputs.shape[0] for g in fake.graphs] == [8]
    assert declared.executor_stats()["unpadded"] == {}

    torch.manual_seed(0)
    norm = nn.BatchNorm1d(4)
    x = Input((4,))
    fake = FakeDeviceLayer()
    bn = SymbolicModel(
        x,
        norm(x),
        executor="cuda_graphs",
        executor_options={"device_layer": fake, "buckets": [8], "batch_independent": True},
    )
    reference = copy.deepcopy(norm)
    with torch.no_grad():
        for _ in range(2):
            assert torch.equal(bn(data), reference(data))
    assert torch.equal(norm.running_mean, reference.running_mean)
    assert [g.outputs.shape[0] for g in fake.graphs] == [3]
    [reason] = bn.executor_stats()["unpadded"]
    assert "BatchNorm1d is in training mode: its batch statistics would count the padding" in reason


def test_a_model_that_mixes_the_batch_stops_being_padded():
    torch.manual_seed(0)
    layer = nn.Linear(4, 4)
    x = Input((4,))
    y = layer(x)
    centred = y - y.mean(0)  # every row depends on the whole batch
    fake = FakeDeviceLayer()
    model = SymbolicModel(
        x, centred, executor="cuda_graphs", executor_options={"device_layer": fake, "buckets": [4, 8]}
    ).eval()

    def oracle(data):  # type: ignore[no-untyped-def]
        out = layer(data)
        return out - out.mean(0)

    with torch.no_grad():
        data = torch.rand(3, 4)
        with pytest.warns(CudaGraphsFallbackWarning, match="padding the batch to a bucket changed the result"):
            assert torch.equal(model(data), oracle(data))
        again = torch.rand(5, 4)
        assert torch.allclose(model(again), oracle(again))  # exact shapes from now on
    assert all(k[0][0][0][0] in (3, 5) for k in keys(model))


# -- state and randomness ------------------------------------------------------------------------
def test_dropout_draws_the_same_numbers_as_eager_code():
    layers = mlp(dropout=0.5)
    model, _ = build(layers)
    data = torch.rand(16, 4)
    with torch.no_grad():
        torch.manual_seed(123)
        got = [model(data) for _ in range(4)]
        torch.manual_seed(123)
        expected = [eager(layers, data) for _ in range(4)]
    for a, b in zip(got, expected, strict=True):
        assert torch.equal(a, b)
    assert model.executor_stats()["replays"] == 4


def test_batchnorm_statistics_advance_once_per_call_as_in_eager_code():
    torch.manual_seed(0)
    norm = nn.BatchNorm1d(4)
    reference = copy.deepcopy(norm)
    x = Input((4,))
    model = SymbolicModel(x, norm(x), executor="cuda_graphs", executor_options={"device_layer": FakeDeviceLayer()})
    with torch.no_grad():
        for seed in range(3):
            data = torch.rand(6, 4, generator=torch.Generator().manual_seed(seed))
            assert torch.equal(model(data), reference(data))
    assert torch.equal(norm.running_mean, reference.running_mean)
    assert torch.equal(norm.running_var, reference.running_var)
    assert int(norm.num_batches_tracked) == 3


def test_gradients_through_a_graph_equal_eager_gradients():
    layers = mlp()
    twin = copy.deepcopy(layers)
    model, fake = build(layers)
    data = torch.rand(5, 4, requires_grad=True)
    same = data.detach().clone().requires_grad_(True)
    model(data).square().sum().backward()
    eager(twin, same).square().sum().backward()
    assert torch.allclose(data.grad, same.grad)
    assert all(torch.allclose(p.grad, q.grad) for p, q in parameter_pairs(layers, twin))
    assert fake.captures == 1


def test_padded_gradients_reach_the_unpadded_input():
    layers = mlp()
    model, _ = build(layers, buckets=[8])
    model.eval()
    data = torch.rand(3, 4, requires_grad=True)
    same = data.detach().clone().requires_grad_(True)
    out = model(data)
    assert out.shape == (3, 3)
    out.sum().backward()
    eager(layers, same).sum().backward()
    assert data.grad is not None and torch.allclose(data.grad, same.grad)


# -- fallbacks ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "called"),
    [
        (lambda x: x * x.sum().item(), "calls item"),
        (lambda x: x.nonzero().float(), "calls nonzero"),
        (lambda x: torch.unique(x), "calls unique"),
        (lambda x: x[x > 0.5], "indexes with a boolean mask"),
    ],
)
def test_a_syncing_step_is_named_and_every_call_runs_eagerly(make, called):
    x = Input((4,))
    fake = FakeDeviceLayer()
    model = SymbolicModel(x, make(x), executor="cuda_graphs", executor_options={"device_layer": fake})
    data = torch.rand(3, 4)
    with pytest.warns(CudaGraphsFallbackWarning, match=called):
        assert torch.equal(model(data), make(data))
    assert fake.captures == 0
    [reason] = fallbacks(model)
    assert "step 'wrap(" in reason or "step 'SliceLayer" in reason
    assert "test_cuda_graphs.py" in reason  # where the step was recorded
    with pytest.raises(ExecutorError, match=called):
        SymbolicModel(x, make(x), executor="cuda_graphs", executor_options={"device_layer": fake, "strict": True})


def test_a_hook_registered_after_capture_is_run_eagerly_until_removed():
    layers = mlp()
    model, _ = build(layers)
    data = torch.rand(2, 4)
    seen = []
    with torch.no_grad():
        model(data)
        handle = layers[0].register_forward_hook(lambda m, a, out: seen.append(out.shape))
        with pytest.warns(CudaGraphsFallbackWarning, match="Linear has forward_hooks"):
            assert torch.equal(model(data), eager(layers, data))
        assert len(seen) == 2  # the model's call and the oracle's
        handle.remove()
        model(data)
    stats = model.executor_stats()
    assert (stats["replays"], stats["eager_calls"]) == (2, 1)


def test_cpu_tensors_several_devices_and_sparse_inputs_are_named():
    layers = mlp()
    model, _ = build(layers, device_layer=FakeDeviceLayer("cuda"))
    data = torch.rand(2, 4)
    with torch.no_grad(), pytest.warns(CudaGraphsFallbackWarning, match="input 'Input_1' is on cpu, not on a CUDA"):
        assert torch.equal(model(data), eager(layers, data))

    second = layers[2].weight
    split = FakeDeviceLayer(device_of=lambda t: torch.device("cuda", 1 if t is second else 0))
    model, _ = build(layers, device_layer=split)
    with torch.no_grad(), pytest.warns(CudaGraphsFallbackWarning, match=r"several devices \(cuda:0, cuda:1\)"):
        model(data)

    torch.manual_seed(0)
    layer = nn.Linear(4, 2)
    x = Input((4,))
    model = SymbolicModel(x, layer(x), executor="cuda_graphs", executor_options={"device_layer": FakeDeviceLayer()})
    sparse = torch.eye(4)[:3].to_sparse()
    with torch.no_grad(), pytest.warns(CudaGraphsFallbackWarning, match="sparse_coo tensor"):
        assert torch.equal(model(sparse), layer(sparse))


def test_a_failed_capture_is_reset_synchronised_and_not_tried_again_for_its_key():
    layers = mlp()
    fake = FakeDeviceLayer()
    fake.capture_errors.append(RuntimeError("operation not permitted when stream is capturing"))
    model, _ = build(layers, device_layer=fake)
    data = torch.rand(2, 4)
    with torch.no_grad():
        with pytest.warns(CudaGraphsFallbackWarning, match="capture failed: RuntimeError: operation not permitted"):
            assert torch.equal(model(data), eager(layers, data))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # warned once per reason
            assert torch.equal(model(data), eager(layers, data))
        assert fake.graphs[0].function is None and fake.syncs == 1
        assert fake.captures == 0  # the key's reason is cached: no second attempt
        other = torch.rand(3, 4)
        assert torch.equal(model(other), eager(layers, other))  # another key captures
    stats = model.executor_stats()
    assert stats["eager_calls"] == 2 and stats["graphs"] == 1
    assert list(stats["fallbacks"].values()) == [2]


def test_strict_mode_raises_instead_of_running_eagerly():
    layers = mlp()
    fake = FakeDeviceLayer()
    model, _ = build(layers, device_layer=fake, strict=True, buckets=[4])
    model.eval()
    with torch.no_grad(), pytest.raises(ExecutorError, match=r"strict=True.*larger than the largest bucket"):
        model(torch.rand(5, 4))
    fake.capture_errors.append(RuntimeError("boom"))
    with torch.no_grad(), pytest.raises(ExecutorError, match="capture failed: RuntimeError: boom"):
        model(torch.rand(4, 4))


# -- invalidation ------------------------------------------------------------------------------
def test_moving_replacing_or_swapping_drops_the_graphs():
    layers = mlp()
    model, _ = build(layers)
    data = torch.rand(2, 4)
    with torch.no_grad():
        model(data)
        model.double()
        assert torch.equal(model(data.double()), eager(layers, data.double()))
        assert model.executor_stats()["invalidations"] == 1

        other = nn.Linear(8, 3).double()
        model.Linear_2 = other  # module surgery
        assert torch.equal(model(data.double()), other(layers[0](data.double()).relu()))
        assert model.executor_stats()["invalidations"] == 2

        layers[0].weight = nn.Parameter(torch.ones(8, 4, dtype=torch.float64))
        assert torch.equal(model(data.double()), other(layers[0](data.double()).relu()))
        layers[0].bias.data = torch.zeros(8, dtype=torch.float64)
        assert torch.equal(model(data.double()), other(layers[0](data.double()).relu()))
        assert model.executor_stats()["invalidations"] == 4

        model.load_state_dict({k: v + 1 for k, v in model.state_dict().items()})  # in place: no new graph
        assert torch.equal(model(data.double()), other(layers[0](data.double()).relu()))
    assert model.executor_stats()["invalidations"] == 4


def test_a_buffer_replaced_on_a_layer_drops_the_graphs():
    torch.manual_seed(0)
    norm = nn.BatchNorm1d(4).eval()
    x = Input((4,))
    model = SymbolicModel(x, norm(x), executor="cuda_graphs", executor_options={"device_layer": FakeDeviceLayer()})
    data = torch.rand(3, 4)
    with torch.no_grad():
        model(data)
        norm.running_mean = torch.full((4,), 0.5)
        assert torch.equal(model(data), norm(data))


# -- building ----------------------------------------------------------------------------------
def test_without_cuda_the_error_names_cuda():
    x = Input((4,))
    y = nn.Linear(4, 2)(x)
    with pytest.raises(ExecutorError, match=r"the 'cuda_graphs' executor needs a CUDA \(fake\) device: none"):
        SymbolicModel(
            x, y, executor="cuda_graphs", executor_options={"device_layer": FakeDeviceLayer(unavailable="none")}
        )
    if not torch.cuda.is_available():
        with pytest.raises(ExecutorError, match="needs a CUDA device"):
            SymbolicModel(x, y, executor="cuda_graphs")
        with pytest.raises(ExecutorError, match="needs a CUDA device"):
            SymbolicModel(x, y, enable_cuda_graphs=True)  # pytorch-symbolic 1.0's switch: not a TypeError
        with pytest.warns(ExecutorFallbackWarning, match="needs a CUDA device"):
            model = SymbolicModel(x, y, executor="cuda_graphs", executor_options={"fallback": "codegen"})
        assert model.executor == "codegen"


def test_enable_cuda_graphs_selects_the_executor_and_conflicts_are_refused():
    x = Input((4,))
    y = nn.Linear(4, 2)(x)
    fake = {"device_layer": FakeDeviceLayer()}
    assert SymbolicModel(x, y, enable_cuda_graphs=True, executor_options=fake).executor == "cuda_graphs"
    assert SymbolicModel(x, y, enable_cuda_graphs=False).executor == "codegen"
    with pytest.raises(TypeError, match="cannot be combined with executor='compile'"):
        SymbolicModel(x, y, enable_cuda_graphs=True, executor="compile")
    with pytest.raises(TypeError, match="enable_cuda_graphs must be a bool"):
        SymbolicModel(x, y, enable_cuda_graphs=1)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"bucket": [1]}, TypeError, "takes no option 'bucket'"),
        ({"buckets": 8}, TypeError, r"executor_options\['buckets'\] must be a non-empty list"),
        ({"buckets": [0, 8]}, TypeError, "ints of at least 1"),
        ({"buckets": [8, 8]}, ValueError, "repeats a size"),
        ({"buckets": [1, 2, 3], "max_graphs": 2}, ValueError, "smaller than the number of buckets"),
        ({"max_graphs": 0}, TypeError, "an int of at least 1"),
        ({"outputs": "views"}, TypeError, "'fresh' or 'static'"),
        ({"strict": 1}, TypeError, "must be a bool"),
        ({"device_layer": "cuda"}, TypeError, "DeviceLayer"),
    ],
)
def test_bad_options_are_refused_by_name(options, error, message):
    x = Input((4,))
    y = nn.Linear(4, 2)(x)
    with pytest.raises(error, match=message):
        SymbolicModel(x, y, executor="cuda_graphs", executor_options={"device_layer": FakeDeviceLayer(), **options})


def test_buckets_need_an_input_with_a_batch():
    x = Input((4,), batched=False)
    with pytest.raises(ValueError, match="no input of this model has one"):
        SymbolicModel(
            x, x * 2, executor="cuda_graphs", executor_options={"device_layer": FakeDeviceLayer(), "buckets": [2]}
        )


def test_models_nested_in_a_captured_model_run_their_code_during_capture():
    layers = mlp()
    inner, _ = build(layers)
    x = Input((4,))
    outer = SymbolicModel(x, inner(x) * 2, executor="cuda_graphs", executor_options={"device_layer": FakeDeviceLayer()})
    data = torch.rand(3, 4)
    with torch.no_grad():
        assert torch.equal(outer(data), eager(layers, data) * 2)
        assert torch.equal(outer(data), eager(layers, data) * 2)
    assert inner.executor_stats()["captures"] == 0  # its calls were part of the outer graph
    assert outer.executor_stats()["replays"] == 2


def test_set_executor_switches_to_and_from_cuda_graphs():
    layers = mlp()
    x = Input((4,))
    model = SymbolicModel(x, eager(layers, x))
    data = torch.rand(2, 4)
    model.set_executor("cuda_graphs", device_layer=FakeDeviceLayer())
    with torch.no_grad():
        assert torch.equal(model(data), eager(layers, data))
    assert model.executor == "cuda_graphs" and model.executor_stats()["replays"] == 1
    model.set_executor("codegen")
    assert model.executor_stats() == {"executor": "codegen"}


# -- training steps --------------------------------------------------------------------------
def capturable_sgd(params, lr: float = 0.1) -> torch.optim.SGD:  # type: ignore[no-untyped-def]
    """An SGD whose groups say capturable, with a tensor lr: what a captured step needs, on the CPU."""
    optimizer = torch.optim.SGD(params, lr=torch.tensor(lr), momentum=0.9)
    for group in optimizer.param_groups:
        group["capturable"] = True
    return optimizer


def train_eagerly(model, optimizer, batches, loss_fn):  # type: ignore[no-untyped-def]
    losses = []
    for batch in batches:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model, *batch)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
    return losses


def mse(model, x, y):  # type: ignore[no-untyped-def]
    return ((model(x) - y) ** 2).mean()


def symbolic_net(dropout: float = 0.0) -> SymbolicModel:
    torch.manual_seed(0)
    x = Input((4,))
    h = nn.Dropout(dropout)(nn.Linear(4, 8)(x).relu())
    return SymbolicModel(x, nn.Linear(8, 1)(h))


def batches(n: int, batch: int = 6) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(9)
    return [(torch.rand(batch, 4, generator=generator), torch.rand(batch, 1, generator=generator)) for _ in range(n)]


@pytest.mark.parametrize("capturable", [True, False], ids=["captured step", "graphed forward and backward"])
def test_a_training_step_trains_exactly_as_the_eager_loop(capturable):
    model, twin = symbolic_net(dropout=0.25), symbolic_net(dropout=0.25)
    if capturable:
        optimizer, reference = capturable_sgd(model.parameters()), capturable_sgd(twin.parameters())
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        reference = torch.optim.Adam(twin.parameters(), lr=0.01)
    step = capture_training_step(
        lambda x, y: mse(model, x, y), optimizer, model=model, warmup=2, device_layer=FakeDeviceLayer()
    )
    data = batches(6)
    torch.manual_seed(4)
    losses = [step(x, y) for x, y in data]
    torch.manual_seed(4)
    expected = train_eagerly(twin, reference, data, mse)
    for a, b in zip(losses, expected, strict=True):
        assert torch.equal(a, b)
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(p, q)
    stats = step.stats()
    if capturable:
        assert (stats["mode"], stats["eager_steps"], stats["captures"], stats["replays"]) == ("captured step", 2, 1, 4)
    else:
        assert stats["mode"] == "graphed forward and backward" and "capturable=False" in stats["mode_reason"]
        assert (stats["captures"], stats["replays"]) == (1, 6)


def test_a_training_step_on_another_shape_trains_eagerly_and_says_why():
    model, twin = symbolic_net(), symbolic_net()
    optimizer, reference = capturable_sgd(model.parameters()), capturable_sgd(twin.parameters())
    step = capture_training_step(
        lambda x, y: mse(model, x, y), optimizer, model=model, warmup=1, device_layer=FakeDeviceLayer()
    )
    data = [*batches(3), *batches(1, batch=2)]
    with pytest.warns(CudaGraphsFallbackWarning, match="shapes differ from those of the captured step"):
        losses = [step(x, y) for x, y in data]
    expected = train_eagerly(twin, reference, data, mse)
    assert all(torch.equal(a, b) for a, b in zip(losses, expected, strict=True))
    assert step.stats()["fallbacks"] == {"the batch's shapes differ from those of the captured step": 1}


def test_loading_optimizer_state_drops_the_captured_step():
    model, twin = symbolic_net(), symbolic_net()
    optimizer, reference = capturable_sgd(model.parameters()), capturable_sgd(twin.parameters())
    step = capture_training_step(
        lambda x, y: mse(model, x, y), optimizer, model=model, warmup=1, device_layer=FakeDeviceLayer()
    )
    data = batches(6)
    for x, y in data[:3]:
        step(x, y)
    train_eagerly(twin, reference, data[:3], mse)
    optimizer.load_state_dict(copy.deepcopy(reference.state_dict()))  # new state tensors: the graph's are stale
    model.load_state_dict(twin.state_dict())
    for x, y in data[3:]:
        step(x, y)
    train_eagerly(twin, reference, data[3:], mse)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), twin.parameters(), strict=True))
    assert step.stats()["invalidations"] == 1


def test_a_training_step_refuses_what_it_cannot_take():
    model = symbolic_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TypeError, match=r"optimizer must be a torch\.optim\.Optimizer"):
        capture_training_step(lambda x: x, "sgd", model=model, device_layer=FakeDeviceLayer())
    with pytest.raises(ExecutorError, match="needs a CUDA"):
        capture_training_step(lambda x: x, optimizer, model=model, device_layer=FakeDeviceLayer(unavailable="no"))
    step = capture_training_step(
        lambda x, y: mse(model, x, y), optimizer, model=model, strict=True, device_layer=FakeDeviceLayer("cuda")
    )
    with pytest.raises(ExecutorError, match=r"strict=True.*is on cpu"):
        step(*batches(1)[0])
    with torch.no_grad(), pytest.raises(RuntimeError, match="needs grad mode"):
        step(*batches(1)[0])


# -- calls that overlap -------------------------------------------------------------------------
def test_two_forwards_before_one_backward_do_not_share_the_graphs_activations():
    # A siamese network: model(a) and model(b), then one backward through both.
    layers = mlp()
    twin = copy.deepcopy(layers)
    model, _ = build(layers)
    a, b = torch.rand(4, 4), torch.rand(4, 4)
    model(a).sum().backward()  # captured, and its backward ran
    for layer in layers:
        layer.zero_grad()
    with pytest.warns(CudaGraphsFallbackWarning, match="backward has not run yet"):
        loss = (model(a) - model(b)).square().sum()
    loss.backward()
    (eager(twin, a) - eager(twin, b)).square().sum().backward()
    assert all(torch.allclose(p.grad, q.grad) for p, q in parameter_pairs(layers, twin))
    stats = model.executor_stats()
    assert (stats["replays"], stats["eager_calls"]) == (2, 1)
    del loss
    model(a)  # the graphs of earlier calls are freed: replays again
    dropped = model.executor_stats()
    assert (dropped["replays"], dropped["eager_calls"]) == (3, 1)


def test_a_call_on_another_stream_waits_for_the_previous_replay():
    layers = mlp()
    model, fake = build(layers)
    data = torch.rand(2, 4)
    with torch.no_grad():
        model(data)
        model(data)
        fake.stream = "side stream"
        assert torch.equal(model(data), eager(layers, data))
    assert fake.waits == [("side stream", "default stream")]


def test_calls_from_several_threads_each_get_their_own_answer():
    import threading

    layers = mlp()
    model, _ = build(layers)
    inputs = [torch.rand(3, 4) for _ in range(8)]
    with torch.no_grad():
        expected = [eager(layers, x) for x in inputs]
    failures: list[int] = []

    def work(i: int) -> None:
        with torch.no_grad():
            for _ in range(30):
                if not torch.equal(model(inputs[i]), expected[i]):
                    failures.append(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_graphs_captured_with_autograd_are_dropped_too():
    layers = mlp()
    model, fake = build(layers, max_graphs=1)
    model(torch.rand(2, 4))  # grad mode: forward and backward graphed
    model(torch.rand(3, 4))  # evicts it
    model.double()
    data = torch.rand(3, 4, dtype=torch.float64)
    assert torch.allclose(model(data), eager(layers, data))
    stats = model.executor_stats()
    assert (stats["evictions"], stats["invalidations"], stats["graphs"]) == (1, 1, 1)


def test_the_fallback_warning_points_at_the_callers_line():
    layers = mlp()
    model, _ = build(layers, device_layer=FakeDeviceLayer("cuda"))
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter("always")
        model(torch.rand(2, 4))
    assert [w.category for w in caught] == [CudaGraphsFallbackWarning]
    assert caught[0].filename == __file__


def test_a_generator_the_model_uses_is_registered_and_advances_as_in_eager_code():
    generator = torch.Generator().manual_seed(0)
    x = Input((4,))
    noisy = x + torch.bernoulli(x * 0 + 0.5, generator=generator)
    fake = FakeDeviceLayer()
    model = SymbolicModel(x, noisy, executor="cuda_graphs", executor_options={"device_layer": fake})
    data = torch.rand(3, 4)
    generator.manual_seed(42)
    with torch.no_grad():
        got = [model(data) for _ in range(3)]
    generator.manual_seed(42)
    expected = [data + torch.bernoulli(data * 0 + 0.5, generator=generator) for _ in range(3)]
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))
    assert fake.graphs[0].generators == [generator]
    with pytest.warns(CudaGraphsFallbackWarning, match="draws from its own torch.Generator"):
        model(data.requires_grad_())  # forward and backward: no way to register it


def test_a_copied_or_loaded_model_captures_graphs_of_its_own():
    import io

    layers = mlp()
    model, _ = build(layers)
    data = torch.rand(2, 4)
    with torch.no_grad():
        expected = model(data)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    clone = copy.deepcopy(model)
    with torch.no_grad():
        for other in (loaded, clone):
            assert torch.equal(other(data), expected)
            assert other.executor_stats()["captures"] == 1
            assert other._program.runner._options.layer is not model._program.runner._options.layer


def test_an_ordinary_training_loop_replays_every_call():
    layers = mlp(dropout=0.2)
    twin = copy.deepcopy(layers)
    model, _ = build(layers)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    reference = torch.optim.SGD([p for layer in twin for p in layer.parameters()], lr=0.1)
    for step, (x, y) in enumerate(batches(5, batch=4)):
        for opt, run in ((optimizer, model), (reference, lambda v: eager(twin, v))):
            torch.manual_seed(step)
            opt.zero_grad()
            loss = ((run(x) - y) ** 2).mean()  # the previous step's loss is still alive here
            loss.backward()
            opt.step()
    assert all(torch.equal(p, q) for p, q in parameter_pairs(layers, twin))
    stats = model.executor_stats()
    assert (stats["replays"], stats["eager_calls"]) == (5, 0)


def test_a_backward_after_its_activations_were_overwritten_raises():
    layers = mlp()
    model, _ = build(layers)
    x = torch.rand(2, 4)
    first = model(x).sum()
    first.backward(retain_graph=True)
    model(x * 2).sum().backward()  # replays the same graph
    with pytest.raises(RuntimeError, match="activations of an earlier call"):
        first.backward()


def test_setting_a_layer_attribute_drops_the_graphs():
    layers = mlp(dropout=0.5)
    model, _ = build(layers)
    data = torch.rand(16, 4)
    with torch.no_grad():
        model(data)
        layers[1].p = 0.0  # scheduled dropout: the graph captured p=0.5
        assert torch.equal(model(data), eager(layers, data))
    assert model.executor_stats()["invalidations"] == 1


def test_a_layer_that_sets_attributes_in_its_forward_runs_eagerly():
    class Remember(nn.Module):
        """Keeps its last output, as some user layers do for inspection."""

        def forward(self, x):  # type: ignore[no-untyped-def]
            self.last = x.detach()
            return x * 2

    torch.manual_seed(0)
    layer, remember = nn.Linear(4, 4), Remember()
    x = Input((4,))
    model = SymbolicModel(
        x, remember(layer(x)), executor="cuda_graphs", executor_options={"device_layer": FakeDeviceLayer()}
    )
    data = torch.rand(2, 4)
    with torch.no_grad(), pytest.warns(CudaGraphsFallbackWarning, match="Remember sets 'last' in its forward"):
        assert torch.equal(model(data), layer(data) * 2)
        assert torch.equal(remember.last, layer(data))
        other = torch.rand(2, 4)
        model(other)
    assert torch.equal(remember.last, layer(other))
    assert model.executor_stats()["graphs"] == 0


def test_changing_one_model_leaves_the_graphs_of_another():
    first, _ = build(mlp())
    second, _ = build(mlp())
    data = torch.rand(2, 4)
    with torch.no_grad():
        first(data)
        second(data)
        first.Linear_1 = nn.Linear(4, 8)
        first(data)
        second(data)
    assert (first.executor_stats()["invalidations"], second.executor_stats()["invalidations"]) == (1, 0)


def test_bitwise_integer_indices_are_captured_and_boolean_masks_of_any_origin_are_not():
    x = Input((4,), dtype=torch.long)
    fake = FakeDeviceLayer()
    bitwise = SymbolicModel(x, x[x & 1], executor="cuda_graphs", executor_options={"device_layer": fake})
    data = torch.tensor([[0, 1, 3, 2], [1, 2, 3, 0]])
    with torch.no_grad():
        assert torch.equal(bitwise(data), data[data & 1])
    assert bitwise.executor_stats()["replays"] == 1
    values, mask = Input((4,)), Input((4,), dtype=torch.bool)
    for masked in (values[mask], values[~(values > 0.5)]):
        model = SymbolicModel([values, mask], masked, executor="cuda_graphs", executor_options={"device_layer": fake})
        assert "indexes with a boolean mask" in model._program.runner._plan_reason


def test_optimizer_settings_a_captured_step_would_freeze_are_refused_or_watched():
    model = symbolic_net()
    cpu_lr = capturable_sgd(model.parameters())
    step = capture_training_step(
        lambda x, y: mse(model, x, y), cpu_lr, model=model, device_layer=FakeDeviceLayer("cuda")
    )
    assert "is a tensor on cpu, which a graph would read once" in step.stats()["mode_reason"]

    model, twin = symbolic_net(), symbolic_net()
    optimizer, reference = capturable_sgd(model.parameters()), capturable_sgd(twin.parameters())
    step = capture_training_step(
        lambda x, y: mse(model, x, y), optimizer, model=model, warmup=1, device_layer=FakeDeviceLayer()
    )
    data = batches(6)
    for k, (x, y) in enumerate(data):
        if k == 3:  # a momentum schedule: the captured kernels hold 0.9
            optimizer.param_groups[0]["momentum"] = reference.param_groups[0]["momentum"] = 0.5
        step(x, y)
        train_eagerly(twin, reference, [(x, y)], mse)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), twin.parameters(), strict=True))
    assert step.stats()["invalidations"] == 1


def test_a_training_step_looks_through_data_parallel_for_syncing_steps():
    x = Input((4,))
    model = SymbolicModel(x, nn.Linear(4, 1)(x) * x.sum().item())
    wrapped = nn.DataParallel(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    step = capture_training_step(
        lambda a, b: mse(wrapped, a, b), optimizer, model=wrapped, device_layer=FakeDeviceLayer()
    )
    with pytest.warns(CudaGraphsFallbackWarning, match="calls item"):
        step(*batches(1)[0])


def test_replays_equal_the_reference_interpreter():
    torch.manual_seed(0)
    x, scale = Input((3, 8, 8)), Input((1,))
    h = nn.Conv2d(3, 4, 3, padding=1)(x)
    h = nn.BatchNorm2d(4)(h).relu()
    pooled = h.mean((2, 3))
    gate = torch.sigmoid(nn.Linear(4, 4)(pooled))
    out = {"gated": pooled * gate * scale, "norm": pooled.norm(dim=1)}
    model = SymbolicModel(
        [x, scale], out, executor="cuda_graphs", executor_options={"device_layer": FakeDeviceLayer()}
    ).eval()
    with torch.no_grad():
        for batch in (2, 5, 2):
            a, b = torch.rand(batch, 3, 8, 8), torch.rand(batch, 1)
            got, expected = model(a, b), model.interpret(a, b)
            assert got.keys() == expected.keys()
            assert torch.equal(got["gated"], expected["gated"]) and torch.equal(got["norm"], expected["norm"])
    assert model.executor_stats()["replays"] == 3


def test_a_layer_that_sets_an_attribute_once_is_captured_after_its_first_call():
    class Cached(nn.Module):
        """Makes a constant at its first call and keeps it, as lazy layers do."""

        def forward(self, x):  # type: ignore[no-untyped-def]
            if not hasattr(self, "offset"):
                self.offset = torch.ones(x.shape[-1])
            return x + self.offset

    torch.manual_seed(0)
    layer = nn.Linear(4, 4)
    x = Input((4,))
    cached = Cached()
    model = SymbolicModel(
        x, cached(layer(x)), executor="cuda_graphs", executor_options={"device_layer": FakeDeviceLayer()}
    )
    del cached.offset  # recording ran it on the example: start as a fresh layer would
    data = torch.rand(2, 4)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            assert torch.equal(model(data), layer(data) + 1)
    stats = model.executor_stats()
    assert stats["eager_calls"] == 0 and stats["replays"] == 3


def test_a_device_layer_must_implement_every_device_call():
    from symgraph_torch.cuda_graphs import DeviceLayer

    class Partial(DeviceLayer):
        """A layer for some other device, half written."""

        def unavailable_reason(self):  # type: ignore[no-untyped-def]
            return None

    with pytest.raises(TypeError, match=r"abstract method.*capture"):
        Partial()  # type: ignore[abstract]
