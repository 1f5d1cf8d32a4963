"""Recording numpy with no wrappers: every case replays like eager numpy."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import symgraph
import symgraph.plugin
import symgraph_numpy as snp
from symgraph import TraceError
from tests.numpy_backend.conftest import assert_same, check_pipeline

rng = np.random.default_rng(42)


def data(*shape, dtype=np.float64):
    return (rng.standard_normal(shape) * 3).astype(dtype)


W = data(3, 2)

PIPELINES = {
    "ufunc": lambda x: np.sin(x) + np.exp(-np.abs(x)),
    "ufunc_two_inputs": lambda x: np.maximum(x, 0.5) - np.hypot(x, 2.0),
    "ufunc_reduce": lambda x: np.add.reduce(x),
    "ufunc_reduce_axis": lambda x: np.multiply.reduce(x, axis=1),
    "ufunc_accumulate": lambda x: np.add.accumulate(x, axis=0),
    "ufunc_outer": lambda x: np.subtract.outer(x[:, 0], x[:, 1]),
    "ufunc_reduceat": lambda x: np.add.reduceat(x, [0, 2], axis=1),
    "ufunc_keywords": lambda x: np.add(x, 1, dtype=np.float32),
    "concatenate": lambda x: np.concatenate([x, x * 2], axis=1),
    "stack": lambda x: np.stack([x, -x, x[::-1]]),
    "where": lambda x: np.where(x > 0, x, 0),
    "where_one_argument": lambda x: np.where(x > 0)[1],
    "einsum": lambda x: np.einsum("ij,jk->ik", x, W),
    "norm": lambda x: np.linalg.norm(x, axis=1),
    "matmul": lambda x: x @ W,
    "rmatmul": lambda x: W.T @ x.T,
    "methods": lambda x: x.reshape(-1, 1).sum(axis=1).astype(np.float32),
    "method_keywords": lambda x: x.mean(axis=0, keepdims=True) - x.std(axis=0, ddof=1),
    "transpose": lambda x: x.T[1:] * 2,
    "clip_round": lambda x: x.clip(-1, 1).round(2),
    "boolean_index": lambda x: x[x[:, 0] > 0],
    "boolean_mask_2d": lambda x: x[x > 1.0],
    "fancy_index": lambda x: x[np.argsort(x[:, 0])],
    "fancy_index_columns": lambda x: x[:, np.argmax(x, axis=1)],
    "fancy_pairs": lambda x: x[np.arange(4) % 2, 1],
    "elementwise_eq": lambda x: (x.round() == 0) | (x != x.max()),
    "array_on_left": lambda x: np.arange(3.0) - x,
    "comparisons": lambda x: (x > 0) & (x <= 2),
    "scalar_results": lambda x: x.sum() / x.size + np.float64(2) * x.max(),
    "shape_recorded": lambda x: x.reshape(np.shape(x)[0] * 3),
    "cumsum_diff_sort": lambda x: np.diff(np.sort(np.cumsum(x, axis=0), axis=1), axis=0),
    "linalg_solve": lambda x: np.linalg.solve(x.T @ x + np.eye(3), x.T @ np.ones(4)),
}


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_numpy_calls_replay_like_eager_numpy(name):
    x = snp.CustomInput(data(4, 3))
    check_pipeline(PIPELINES[name], (x,), (data(4, 3),), (data(4, 3),))


@pytest.mark.parametrize(
    "name", ["ufunc", "where", "einsum", "norm", "matmul", "methods", "boolean_index", "shape_recorded"]
)
def test_pipelines_on_an_unknown_batch_replay_on_any_batch(name):
    x = snp.Input((None, 3))
    check_pipeline(PIPELINES[name], (x,), (data(1, 3),), (data(7, 3),), (data(50, 3),))


def test_symbolic_arrays_have_static_shape_ndim_dtype_size_and_recorded_T():
    x = snp.Input((None, 3), dtype=np.float32)
    assert (x.shape, x.ndim, x.dtype, x.size) == ((None, 3), 2, np.dtype(np.float32), None)
    assert isinstance(x.T, snp.SymbolicArray) and x.T.shape == (3, None)
    c = snp.CustomInput(np.zeros((2, 5), dtype=np.int16))
    assert (c.shape, c.ndim, c.dtype, c.size, len(c)) == ((2, 5), 2, np.dtype(np.int16), 10, 2)
    assert type(symgraph.CustomInput(np.zeros(3))) is snp.SymbolicArray  # through the entry point too


@pytest.mark.parametrize(
    ("pipeline", "expected"),
    [
        (lambda x: x @ np.ones((3, 5)), (None, 5)),
        (lambda x: x.T, (3, None)),
        (lambda x: x.sum(axis=0), (3,)),
        (lambda x: x.sum(axis=1), (None,)),
        (lambda x: x[:2], (None, 3)),  # 2 rows on the example, 1 on a 1-row input
        (lambda x: x[:1], (None, 3)),  # 1 row, or none on an empty input
        (lambda x: x[x[:, 0] > 0.5], (None, 3)),  # data dependent
        (lambda x: np.concatenate([x, x]), (None, 3)),
        (lambda x: x.reshape(-1, 6), (None, 6)),
        (lambda x: np.outer(x[:, 0], np.ones(4)), (None, 4)),
        (lambda x: x.reshape(3, -1), (3, None)),
        (lambda x: x.reshape(3, 2), (None, None)),  # only works for 2 rows: fails on the probe
        (lambda x: x.mean(), ()),
    ],
)
def test_unknown_sizes_propagate_through_the_recorded_steps(pipeline, expected):
    x = snp.Input((None, 3))
    y = pipeline(x)
    assert y.shape == expected
    assert y.ndim == len(expected)


def test_fixed_inputs_have_fully_known_shapes_and_probe_nothing():
    x = snp.Input((4, 3), seed=1)
    y = np.linalg.norm(x @ np.ones((3, 2)), axis=1)
    assert x.node.meta == {"dims": (4, 3)} and y.shape == (4,)


def test_len_and_iteration_need_a_known_first_size():
    x = snp.Input((None, 3))
    with pytest.raises(TraceError, match=r"np\.shape\(x\)\[0\]"):
        len(x)
    with pytest.raises(TraceError, match="unknown"):
        list(x)
    rows = snp.Input((3, 2))
    a, b, c = rows
    model = symgraph.SymbolicModel(rows, a * 10 + c)
    d = data(3, 2)
    assert_same(model(d), d[0] * 10 + d[2])
    with pytest.raises(TypeError, match="0-d"):
        len(x.sum())


def test_reading_the_size_of_a_custom_input_requires_it_but_np_shape_records_it():
    x = snp.CustomInput(np.zeros((2, 3)))
    baked = symgraph.SymbolicModel(x, x.reshape(x.shape[0] * 3))
    y = snp.CustomInput(np.zeros((2, 3)))
    recorded = symgraph.SymbolicModel(y, y.reshape(np.shape(y)[0] * 3))
    d = data(5, 3)
    assert_same(recorded(d), d.reshape(15))
    same_shape = data(2, 3)
    assert_same(baked(same_shape), same_shape.reshape(6))
    # Eager code would make 15 elements; the model refuses rather than reshape to 6.
    with pytest.raises(symgraph.InputError, match=r"expected an array of shape \(2, 3\), the example's"):
        baked(d)


def test_array_constants_are_captured_once_and_not_recomputed():
    calls = []

    def make_offsets():
        calls.append(1)
        return np.arange(3.0)

    offsets = make_offsets()  # the constant is computed once, while recording
    x = snp.Input((None, 3))
    y = (x + offsets) * offsets - np.maximum(x, offsets)
    model = symgraph.SymbolicModel(x, y)
    namespace = symgraph.plugin.generate(model.plan).namespace
    assert sum(value is offsets for value in namespace.values()) == 1
    d = data(6, 3)
    for _ in range(3):
        assert_same(model(d), (d + offsets) * offsets - np.maximum(d, offsets))
    assert len(calls) == 1


def test_numpy_scalars_keep_recording_numpy_calls():
    x = snp.CustomInput(data(4))
    total = x.sum()
    assert isinstance(total, snp.SymbolicArray) and total.shape == () and total.dtype == np.float64
    model = symgraph.SymbolicModel(x, np.sqrt(np.abs(total)) + x)
    d = data(4)
    assert_same(model(d), np.sqrt(np.abs(d.sum())) + d)


def _count_nodes(handle):
    return len(handle.node.children)


@pytest.mark.parametrize(
    ("action", "error", "match"),
    [
        (lambda x: x.__setitem__(slice(None), 0), TraceError, r"np\.where"),
        (lambda x: np.add(x, 1, out=np.empty((2, 3))), TraceError, "out="),
        (lambda x: np.add.at(x, [0], 1), TraceError, "in place"),
        (lambda x: x.sort(), TraceError, r"np\.sort\(x\)"),
        (lambda x: x.fill(0), TraceError, "in place"),
        (lambda x: np.asarray(x), TraceError, "add_to_graph"),
        (lambda x: bool(x), TraceError, "truth value"),
        (lambda x: x @ np.ones((4, 4)), ValueError, "matmul"),
        (lambda x: np.concatenate([x, np.ones((2, 5))], axis=0), ValueError, "dimension"),
        (lambda x: x.reshape(7), ValueError, "reshape"),
        (lambda x: x.no_such_method(), AttributeError, "no_such_method"),
    ],
)
def test_bad_steps_raise_clearly_and_leave_no_node(action, error, match):
    x = snp.Input((None, 3))
    before = _count_nodes(x)
    with pytest.raises(error, match=match):
        action(x)
    # A failed attribute lookup adds nothing either: GetAttr never reached the graph.
    assert _count_nodes(x) == before


def test_ufunc_out_none_is_the_same_as_no_out():
    x = snp.CustomInput(data(3))
    model = symgraph.SymbolicModel(x, np.negative(x, out=None))
    d = data(3)
    assert_same(model(d), -d)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"shape": "3"}, TypeError, "shape must be a tuple"),
        ({"shape": (2, 1.5)}, TypeError, "shape must be a tuple"),
        ({"shape": (2, -1)}, ValueError, "negative"),
        ({"shape": (2,), "dtype": "no-such-type"}, TypeError, "dtype"),
        ({"shape": (2,), "min_value": 1, "max_value": 1}, ValueError, "min_value"),
    ],
)
def test_input_validates_its_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        snp.Input(**kwargs)


def test_input_examples_follow_dtype_and_bounds_without_touching_the_global_rng():
    np.random.seed(7)
    expected_next = np.random.random()
    np.random.seed(7)
    ints = snp.Input((None, 50), dtype=np.int32, min_value=3, max_value=5)
    flags = snp.Input((20,), dtype=bool)
    floats = snp.Input(100, dtype=np.float32, min_value=-2, max_value=-1)
    words = snp.Input((2,), dtype="U5")
    assert np.random.random() == expected_next
    assert ints.v.dtype == np.int32 and set(np.unique(ints.v)) <= {3, 4, 5} and ints.v.shape == (2, 50)
    assert flags.v.dtype == bool and floats.v.dtype == np.float32
    assert floats.v.min() >= -2 and floats.v.max() <= -1 and floats.shape == (100,)
    assert words.v.dtype == np.dtype("U5")
    assert snp.Input(None).shape == (None,)


def test_custom_input_refuses_symbolic_and_object_values():
    x = snp.CustomInput([1.0, 2.0])
    assert isinstance(x.v, np.ndarray)
    with pytest.raises(TypeError, match="already symbolic"):
        snp.CustomInput(x)
    with pytest.raises(TypeError, match=r"symgraph\.CustomInput"):
        snp.CustomInput({"a": 1})


def test_handles_hash_by_identity_while_equality_is_elementwise():
    x = snp.CustomInput(np.arange(3))
    assert {x: 1}[x] == 1
    assert isinstance(x == 1, snp.SymbolicArray)


def test_probing_shapes_does_not_show_its_own_warnings():
    # The probe with no rows warns "Mean of empty slice"; under filterwarnings=error this would raise.
    x = snp.Input((None, 3))
    assert x.mean(axis=0).shape == (3,)
    with pytest.warns(RuntimeWarning):
        np.zeros((0, 3)).mean(axis=0)


def test_recording_does_not_keep_replay_values_alive():
    x = snp.Input((None, 3))
    model = symgraph.SymbolicModel(x, np.abs(x) + 1)
    d = data(4, 3)
    out = model(d)
    ref = weakref.ref(out)
    del out
    gc.collect()
    assert ref() is None
