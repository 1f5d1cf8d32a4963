"""Replaying numpy pipelines: structures, input checks, pickling, memory."""

from __future__ import annotations

import copy
import gc
import pickle
import tracemalloc
import weakref

import numpy as np
import pytest

import symgraph
import symgraph_numpy as snp
from tests.numpy_backend.conftest import assert_same

rng = np.random.default_rng(7)


def standardise(x, mean, std):
    return (x - mean) / std


def pipeline(x, w):
    z = standardise(x, x.mean(axis=0), x.std(axis=0) + 1e-9)
    projected = z @ w
    return {"scores": np.linalg.norm(projected, axis=1), "top": projected.max(axis=1), "z": z}


def test_several_inputs_and_dict_outputs_match_eager_numpy():
    x, w = snp.Input((None, 4)), snp.Input((4, 2))
    model = symgraph.SymbolicModel((x, w), pipeline(x, w))
    for n in (3, 10, 100):
        args = rng.random((n, 4)), rng.random((4, 2))
        assert_same(model(*args), pipeline(*args))
        assert_same(model.interpret(*args), pipeline(*args))


def test_dict_inputs_are_keyword_arguments():
    x, w = snp.Input((None, 4)), snp.Input((4, 2))
    model = symgraph.SymbolicModel({"x": x, "w": w}, [pipeline(x, w)["top"], x.sum()])
    a, b = rng.random((5, 4)), rng.random((4, 2))
    assert_same(model(w=b, x=a), [pipeline(a, b)["top"], a.sum()])
    with pytest.raises(TypeError, match="missing input"):
        model(x=a)


def test_input_checks_name_the_input_and_run_before_any_step():
    ran = []

    def spy(v):
        ran.append(1)
        return v

    x = snp.Input((None, 3), custom_name="features")
    w = snp.CustomInput(np.ones(3, dtype=np.int64))
    model = symgraph.SymbolicModel((x, w), symgraph.add_to_graph(spy, x) @ w)
    ok = rng.random((5, 3)), np.arange(3, dtype=np.uint8)  # sizes of a CustomInput may differ; uint counts as int
    assert_same(model(*ok), ok[0] @ ok[1])
    ran.clear()
    bad = [
        ((rng.random((5, 4)), np.ones(3, dtype=int)), r"features: expected shape \(None, 3\), got an array of shape"),
        ((rng.random(3), np.ones(3, dtype=int)), r"features: expected a 2-d array of shape \(None, 3\), got a 1-d"),
        ((rng.random((5, 3)) > 0.5, np.ones(3, dtype=int)), "features: expected floating-point data"),
        ((rng.random((5, 3)), np.ones(3)), r"Input_1: expected integer data \(recorded with dtype int64\)"),
        (([[1.0, 2.0, 3.0]], np.ones(3, dtype=int)), "features: expected an array .* got list"),
    ]
    for args, match in bad:
        with pytest.raises(ValueError, match=match):
            model(*args)
    assert ran == []
    single = rng.random((2, 3)).astype(np.float32), np.arange(3)  # float32 for float64 is the same kind
    assert_same(model(*single), single[0] @ single[1])


def test_checks_can_be_switched_off_for_duck_arrays():
    class Rows:
        """A minimal duck array: no numpy dtype, so the check refuses it."""

        def __init__(self, data):
            self.data = np.asarray(data)

        def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
            inputs = [i.data if isinstance(i, Rows) else i for i in inputs]
            return Rows(getattr(ufunc, method)(*inputs, **kwargs))

        def sum(self, axis=None):
            return Rows(self.data.sum(axis=axis))

    x = snp.Input((None, 2))
    model = symgraph.SymbolicModel(x, np.sin(x).sum(axis=1))
    duck = Rows([[0.5, 1.0], [2.0, 3.0]])
    with pytest.raises(ValueError, match="check_inputs=False"):
        model(duck)
    model.check_inputs = False
    np.testing.assert_array_equal(model(duck).data, np.sin(duck.data).sum(axis=1))
    unchecked = symgraph.SymbolicModel(x, np.sin(x).sum(axis=1), check_inputs=False)
    np.testing.assert_array_equal(unchecked(duck).data, np.sin(duck.data).sum(axis=1))


def test_summary_shows_unknown_sizes():
    x = snp.Input((None, 4))
    model = symgraph.SymbolicModel(x, pipeline(x, np.ones((4, 2)))["scores"])
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    table = lines[0]
    assert "(None, 4)" in table and "(None, 2)" in table and "(None,)" in table and "(4,)" in table
    assert "wrap(mean)_1" in table and "wrap(norm)_1" in table


def test_pickle_round_trip_with_importable_functions():
    x = snp.Input((None, 4))
    out = symgraph.add_to_graph(standardise, x, 0.5, 2.0)
    out = np.add.reduce(np.sin(out), axis=1) + np.linalg.norm(out, axis=1) + x.astype(np.float32).sum(axis=1)
    model = symgraph.SymbolicModel(x, out)
    clone = pickle.loads(pickle.dumps(model))
    d = rng.random((6, 4))
    assert_same(clone(d), model(d))
    with pytest.raises(ValueError, match="expected shape"):
        clone(rng.random((6, 5)))  # the checks survive too


def test_pickling_a_lambda_gives_a_clear_error_and_deepcopy_still_works():
    x = snp.Input((None, 4))
    model = symgraph.SymbolicModel(x, symgraph.add_to_graph(lambda v: v * 2, x).sum(axis=1))
    with pytest.raises(pickle.PicklingError, match=r"step 'wrap\(<lambda>\)_1' uses .*<lambda>.*module level"):
        pickle.dumps(model)
    d = rng.random((3, 4))
    assert_same(copy.deepcopy(model)(d), (d * 2).sum(axis=1))


_seen: list[weakref.ref] = []


def remember(v):
    _seen.append(weakref.ref(v))
    return v


def test_no_intermediate_array_survives_a_replay():
    x = snp.Input((None,))
    y = x
    for _ in range(10):
        y = symgraph.add_to_graph(remember, np.sin(symgraph.add_to_graph(remember, y * 1.5)) + 0.25)
    model = symgraph.SymbolicModel(x, y)
    _seen.clear()
    data = rng.random(1000)
    out = model(data)
    assert len(_seen) == 20
    # Reference counting alone frees them, no collection needed; the last one seen is the output.
    assert all(ref() is None for ref in _seen[:-1])
    assert _seen[-1]() is out


def _direct(x):
    for _ in range(25):
        x = np.abs(np.sin(x * 1.01 + 0.5))
    return x


def test_replay_holds_no_more_memory_than_direct_code():
    x = snp.Input((None,))
    model = symgraph.SymbolicModel(x, _direct(x))
    data = rng.random(65536)
    usage = {}
    for name, run in (("direct", _direct), ("replay", model)):
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            out = run(data)
            after, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        usage[name] = (after - before, peak - before)
        del out
    retained, peak = usage["replay"]
    # Afterwards only the output is held; at worst as many arrays were alive at once as in direct code.
    assert data.nbytes <= retained < data.nbytes + 4096
    assert peak <= usage["direct"][1] + 4096
