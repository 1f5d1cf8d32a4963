"""The torch side of executors: ``compile``, pytorch-symbolic's switch, switching, copying, fallback.

Every test compares a model with an oracle over the same layer objects: a
hand-written ``nn.Module`` calling them eagerly.
"""

from __future__ import annotations

import copy
import io
import pickle

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch._dynamo.testing import CompileCounter  # noqa: E402

import symgraph  # noqa: E402
from symgraph import ExecutorError, ExecutorFallbackWarning  # noqa: E402
from symgraph.plugin import restore_registry, snapshot_registry  # noqa: E402
from symgraph_torch import DetachedSymbolicModel, Input, SymbolicModel  # noqa: E402
from symgraph_torch._executors import COMPILE  # noqa: E402

BATCHES = (2, 3, 7)


class Oracle(nn.Module):
    """The model, written by hand over the same layers."""

    def __init__(self, first, second):
        super().__init__()
        self.first = first
        self.second = second

    def forward(self, x):
        return self.second(torch.tanh(self.first(x))) * 2


def build(**kwargs):
    torch.manual_seed(0)
    first, second = nn.Linear(4, 8), nn.Linear(8, 3)
    x = Input((4,))
    return SymbolicModel(x, second(first(x).tanh()) * 2, **kwargs), Oracle(first, second)


def data(batch=3, seed=1):
    return torch.rand(batch, 4, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(autouse=True)
def fresh_dynamo():
    # Compiled code is cached per code object and backend; a reset keeps one
    # test's compilations out of the next one's counts.
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


# -- the compile executor ------------------------------------------------------------------


def test_compile_one_graph_for_every_batch_size():
    counter = CompileCounter()
    model, oracle = build(executor="compile", executor_options={"backend": counter})
    assert model.executor == "compile"
    assert model.executor_options == {"backend": counter}
    for batch in BATCHES:
        torch.testing.assert_close(model(data(batch)), oracle(data(batch)), rtol=0, atol=0)
    # Plain torch.compile would compile twice (the second size makes it dynamic);
    # the executor marks the unknown batch dynamic up front.
    assert counter.frame_count == 1


def test_compile_dynamic_false_compiles_each_batch_size():
    counter = CompileCounter()
    model, oracle = build(executor="compile", executor_options={"backend": counter, "dynamic": False})
    for batch in BATCHES:
        torch.testing.assert_close(model(data(batch)), oracle(data(batch)), rtol=0, atol=0)
    assert counter.frame_count == len(BATCHES)


def test_compile_several_inputs_one_graph():
    torch.manual_seed(0)
    left, right = nn.Linear(4, 3), nn.Linear(5, 3)
    a, b = Input((4,)), Input((5,))
    counter = CompileCounter()
    model = SymbolicModel((a, b), left(a) + right(b), executor="compile", executor_options={"backend": counter})
    for batch in BATCHES:
        x, y = torch.rand(batch, 4), torch.rand(batch, 5)
        torch.testing.assert_close(model(x, y), left(x) + right(y), rtol=0, atol=0)
    assert counter.frame_count == 1


def test_compile_reads_parameters_at_every_call():
    counter = CompileCounter()
    model, oracle = build(executor="compile", executor_options={"backend": counter})
    model(data())
    with torch.no_grad():
        oracle.first.weight.mul_(-3)
    torch.testing.assert_close(model(data()), oracle(data()), rtol=0, atol=0)
    model.double()
    got = model(data().double())
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, oracle(data().double()), rtol=0, atol=0)


def test_compile_real_backend_and_gradients():
    # The default inductor backend took 26 s for a first compile of a two-layer
    # model on this 2-core CPU (5.6 s with a warm on-disk cache), so this runs the
    # AOT autograd pipeline without inductor's code generation instead.
    model, oracle = build(executor="compile", executor_options={"backend": "aot_eager"})
    x = data(5)
    got = model(x)
    got.sum().backward()
    grads = [p.grad.clone() for p in oracle.parameters()]
    oracle.zero_grad()
    expected = oracle(x)
    expected.sum().backward()
    torch.testing.assert_close(got, expected)
    for grad, p in zip(grads, oracle.parameters(), strict=True):
        torch.testing.assert_close(grad, p.grad)


def test_compile_options_reach_torch_compile(monkeypatch):
    seen = []
    real_compile = torch.compile
    counter = CompileCounter()

    def recording_compile(function, **options):
        seen.append(options)
        return real_compile(function, backend=counter)

    monkeypatch.setattr(torch, "compile", recording_compile)
    options = {"backend": "eager", "mode": "max-autotune", "fullgraph": True, "dynamic": True, "options": {}}
    model, oracle = build(executor="compile", executor_options=options)
    assert seen == [options]
    torch.testing.assert_close(model(data()), oracle(data()), rtol=0, atol=0)
    assert counter.frame_count == 1


def test_compile_mode_and_backend_are_validated_by_torch():
    with pytest.raises(RuntimeError, match="no-such-mode"):
        build(executor="compile", executor_options={"mode": "no-such-mode"})
    with pytest.raises(torch._dynamo.exc.InvalidBackend):
        build(executor="compile", executor_options={"backend": "no-such-backend"})


class Breaking(nn.Module):
    """A layer dynamo cannot trace in one graph; eagerly it adds one."""

    def forward(self, x):
        torch._dynamo.graph_break()
        return x + 1


def test_compile_fullgraph_reaches_dynamo():
    layer, breaking = nn.Linear(4, 4), Breaking()
    x = Input((4,))
    # The break comes before the layer: resuming after it with a non-leaf tensor
    # makes dynamo itself read .grad of that tensor, a UserWarning (torch 2.13).
    y = layer(breaking(x)).relu()
    counter = CompileCounter()
    model = SymbolicModel(x, y, executor="compile", executor_options={"backend": counter})
    torch.testing.assert_close(model(data()), layer(breaking(data())).relu(), rtol=0, atol=0)
    assert counter.frame_count == 2  # one graph on each side of the break

    strict = SymbolicModel(x, y, executor="compile", executor_options={"backend": CompileCounter(), "fullgraph": True})
    with pytest.raises(torch._dynamo.exc.Unsupported):
        strict(data())


def test_compile_unknown_option_is_named():
    with pytest.raises(TypeError, match="'speed'"):
        build(executor="compile", executor_options={"speed": 11})
    # The codegen executor's option is not one torch.compile takes.
    with pytest.raises(TypeError, match="'fast_paths'"):
        build(executor="compile", executor_options={"fast_paths": False})


def test_compile_refuses_a_core_model():
    layer = nn.Linear(4, 2)
    x = symgraph.CustomInput(torch.rand(1, 4))
    with pytest.raises(ExecutorError, match="symgraph_torch models") as info:
        symgraph.SymbolicModel(x, layer(x), executor="compile")
    assert "not a core symgraph.SymbolicModel" in str(info.value)
    assert "executor='codegen'" in str(info.value)
    with pytest.warns(ExecutorFallbackWarning, match="symgraph_torch models"):
        model = symgraph.SymbolicModel(x, layer(x), executor="compile", executor_options={"fallback": "codegen"})
    assert model.executor == "codegen"
    assert torch.equal(model(data(1)), layer(data(1)))


def test_compile_unsupported_here_is_an_executor_error(monkeypatch):
    from torch._dynamo import eval_frame

    def unsupported():
        raise RuntimeError("Python 3.99 not yet supported for torch.compile")

    monkeypatch.setattr(eval_frame, "check_if_dynamo_supported", unsupported)
    with pytest.raises(ExecutorError, match=r"needs torch\.compile.*Python 3\.99 not yet supported"):
        build(executor="compile")
    with pytest.warns(ExecutorFallbackWarning, match=r"Python 3\.99"):
        model, oracle = build(executor="compile", executor_options={"fallback": "interpreter"})
    assert model.executor == "interpreter"
    assert torch.equal(model(data()), oracle(data()))


def test_compile_executor_object_and_registration():
    assert "compile" in symgraph.available_executors()
    assert symgraph.plugin.resolve_executor("compile") is COMPILE
    counter = CompileCounter()
    model, oracle = build(executor=COMPILE, executor_options={"backend": counter})
    assert model.executor == "compile"
    torch.testing.assert_close(model(data()), oracle(data()), rtol=0, atol=0)


# -- nn.Module.compile() and pytorch-symbolic's switch ------------------------------------------


@pytest.mark.parametrize("executor", ["codegen", "compile"])
def test_module_compile_of_a_model(executor):
    options = {"backend": CompileCounter()} if executor == "compile" else {}
    model, oracle = build(executor=executor, executor_options=options)
    outer = CompileCounter()
    model.compile(backend=outer)
    for batch in BATCHES:
        torch.testing.assert_close(model(data(batch)), oracle(data(batch)), rtol=0, atol=0)
    assert outer.frame_count >= 1


@pytest.mark.parametrize(("switch", "executor"), [(False, "interpreter"), (True, "codegen")])
def test_enable_forward_codegen_selects_the_executor(switch, executor):
    model, oracle = build(enable_forward_codegen=switch)
    assert model.executor == executor
    assert torch.equal(model(data()), oracle(data()))


def test_enable_forward_codegen_and_executor_exclude_each_other():
    with pytest.raises(TypeError, match="not both"):
        build(executor="codegen", enable_forward_codegen=True)


# -- switching -----------------------------------------------------------------------------------


def test_set_executor_switches_in_place():
    model, oracle = build()
    expected = oracle(data())
    assert model.executor == "codegen"
    assert torch.equal(model(data()), expected)
    model.set_executor("interpreter")
    assert model.executor == "interpreter"
    assert torch.equal(model(data()), expected)
    counter = CompileCounter()
    model.set_executor("compile", backend=counter)
    assert (model.executor, model.executor_options) == ("compile", {"backend": counter})
    torch.testing.assert_close(model(data()), expected, rtol=0, atol=0)
    assert counter.frame_count == 1


def test_failed_set_executor_leaves_the_model_running():
    counter = CompileCounter()
    model, oracle = build(executor="compile", executor_options={"backend": counter})
    expected = oracle(data())
    torch.testing.assert_close(model(data()), expected, rtol=0, atol=0)
    with pytest.raises(ExecutorError, match="no-such-executor"):
        model.set_executor("no-such-executor")
    with pytest.raises(TypeError, match="'speed'"):
        model.set_executor("interpreter", speed=1)
    assert (model.executor, model.executor_options) == ("compile", {"backend": counter})
    torch.testing.assert_close(model(data()), expected, rtol=0, atol=0)
    assert counter.frame_count == 1  # the runner in use was kept, not rebuilt


# -- copying and saving --------------------------------------------------------------------------


def _pickle(model):
    return pickle.loads(pickle.dumps(model))


def _torch_save(model):
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


ROUND_TRIPS = {"pickle": _pickle, "torch.save": _torch_save, "deepcopy": copy.deepcopy, "copy": copy.copy}
CHOICES = [
    ("interpreter", {}),
    ("codegen", {"fast_paths": False}),
    ("compile", {"backend": "eager", "fullgraph": True}),
]


@pytest.mark.parametrize("round_trip", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
@pytest.mark.parametrize(("executor", "options"), CHOICES, ids=[c[0] for c in CHOICES])
def test_copies_keep_the_executor(round_trip, executor, options):
    model, oracle = build(executor=executor, executor_options=options)
    expected = oracle(data())
    clone = round_trip(model)
    assert clone is not model
    assert (clone.executor, clone.executor_options) == (executor, options)
    torch.testing.assert_close(clone(data()), expected, rtol=0, atol=0)
    # A copy runs its own layers; a shallow copy shares them with the model.
    shared = round_trip is copy.copy
    assert (clone.Linear_1 is oracle.first) == shared
    clone_oracle = Oracle(clone.Linear_1, clone.Linear_2)
    with torch.no_grad():
        clone.Linear_1.weight.mul_(-3)
    torch.testing.assert_close(clone(data()), clone_oracle(data()), rtol=0, atol=0)
    torch.testing.assert_close(model(data()), oracle(data()), rtol=0, atol=0)
    assert torch.equal(model(data()), oracle(data()) if shared else expected)


def test_detach_from_graph_keeps_the_executor():
    counter = CompileCounter()
    model, oracle = build(executor="compile", executor_options={"backend": counter})
    detached = model.detach_from_graph()
    assert isinstance(detached, DetachedSymbolicModel) and not isinstance(detached, SymbolicModel)
    assert (detached.executor, detached.executor_options) == ("compile", {"backend": counter})
    for batch in BATCHES:
        torch.testing.assert_close(detached(data(batch)), oracle(data(batch)), rtol=0, atol=0)
        torch.testing.assert_close(model(data(batch)), oracle(data(batch)), rtol=0, atol=0)
    assert counter.frame_count == 2  # one graph for each model's generated function

    interpreted = build(executor="interpreter")[0].detach_from_graph()
    assert interpreted.executor == "interpreter"


def test_interpreter_gradients_equal_the_eager_ones():
    model, oracle = build(executor="interpreter")
    x = data(5).requires_grad_()
    model(x).square().sum().backward()
    got = [p.grad.clone() for p in oracle.parameters()] + [x.grad.clone()]
    oracle.zero_grad()
    x.grad = None
    oracle(x).square().sum().backward()
    expected = [p.grad for p in oracle.parameters()] + [x.grad]
    for g, e in zip(got, expected, strict=True):
        assert torch.equal(g, e)


# -- fallback ------------------------------------------------------------------------------------

FAILING = "failing-for-test-torch-executors"


@pytest.fixture
def failing_executor():
    def refuse(plan, options, host):
        raise ExecutorError("this executor refuses every model")

    saved = snapshot_registry()
    symgraph.register_executor(FAILING, refuse)
    yield FAILING
    restore_registry(saved)


def test_fallback_warns_once_and_runs_on_codegen(failing_executor):
    with pytest.warns(ExecutorFallbackWarning, match="refuses every model") as caught:
        model, oracle = build(executor=failing_executor, executor_options={"fallback": "codegen"})
    assert len(caught) == 1
    assert failing_executor in str(caught[0].message)
    assert model.executor == "codegen"
    assert model.executor_options == {"fallback": "codegen"}
    assert torch.equal(model(data()), oracle(data()))


def test_without_fallback_the_error_propagates(failing_executor):
    with pytest.raises(ExecutorError, match="refuses every model"):
        build(executor=failing_executor)
    model, oracle = build()
    with pytest.raises(ExecutorError, match="refuses every model"):
        model.set_executor(failing_executor)
    assert model.executor == "codegen"
    assert torch.equal(model(data()), oracle(data()))


@pytest.mark.parametrize("executor", ["codegen", "interpreter", "dask"])
def test_every_executor_reads_the_model_tensors_at_call_time(executor):
    # A recorded tensor constant becomes a buffer; .double() replaces it and
    # functional_call swaps it for the call. Generated code reads the buffer from
    # the model, so the executors that evaluate steps one by one must too.
    if executor == "dask":
        pytest.importorskip("dask")
    torch.manual_seed(0)
    layer = nn.Linear(3, 3)
    scale = torch.tensor([1.0, 2.0, 3.0])
    x = Input((3,))
    model = SymbolicModel(
        x, layer(x) * scale, executor=executor, executor_options={"scheduler": "sync"} if executor == "dask" else None
    )
    model = model.double()
    batch = torch.randn(4, 3, dtype=torch.float64)
    expected = layer(batch) * scale.double()
    for result in (model(batch), model.interpret(batch)):
        assert result.dtype == torch.float64
        torch.testing.assert_close(result, expected, rtol=0, atol=0)
    swapped = {"constant_0": torch.full((3,), -1.0, dtype=torch.float64)}
    expected = layer(batch) * swapped["constant_0"]
    torch.testing.assert_close(torch.func.functional_call(model, swapped, (batch,)), expected, rtol=0, atol=0)
    assert torch.equal(model.constant_0, scale.double()), "functional_call puts the buffer back"


@pytest.mark.parametrize("options", [[("fallback", "codegen")], [], "fast"])
def test_executor_options_must_be_a_dict(options):
    # A list of pairs would otherwise turn into options, and an empty list pass as none.
    x = Input((3,))
    with pytest.raises(TypeError, match="executor_options must be a dict"):
        SymbolicModel(x, nn.Linear(3, 2)(x), executor_options=options)
