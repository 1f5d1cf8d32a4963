"""Faithful numpy pipelines: the same code run eagerly on the new input is the oracle.

Each section is one way a numpy model could silently compute something else than
the recorded code: a size reported as known that is not the same for every
input, probes that run the user's code again, sizes and dtypes that the example
decided, input checks that let through what ``Input`` declared against, the
number builtins, and randomness. The model must give what the eager code gives,
or raise a clear error that names the input (or step) and the line of the
recording that decided.
"""

from __future__ import annotations

import inspect
import math
import pickle
import re
from collections.abc import Callable
from typing import Any

import pytest

np = pytest.importorskip("numpy")

import symgraph  # noqa: E402
import symgraph_numpy as snp  # noqa: E402
from symgraph.testing import models_on_each_executor  # noqa: E402

models = models_on_each_executor


def here() -> str:
    """``file:line`` of the caller's next line: where a test reads a size."""
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return f"{__file__}:{frame.f_back.f_lineno + 1}"


def assert_same(actual: Any, expected: Any) -> None:
    if isinstance(expected, tuple):
        assert type(actual) is tuple and len(actual) == len(expected)
        for a, e in zip(actual, expected, strict=True):
            assert_same(a, e)
        return
    assert type(actual) is type(expected), (type(actual), type(expected))
    assert np.result_type(actual) == np.result_type(expected)
    np.testing.assert_array_equal(actual, expected)


def counts(x: Any) -> Any:
    return (np.abs(x[:, 0]) * 3).astype(np.int64) % 3


def arange(stop: Any) -> Any:
    """``np.arange(stop)``, recorded when ``stop`` is symbolic (numpy would need its value now)."""
    if isinstance(stop, symgraph.SymbolicData):
        return symgraph.add_to_graph(np.arange, stop)
    return np.arange(stop)


# -- 1. data-dependent sizes are unknown ----------------------------------------------------------

# name: (pipeline, its shape on snp.Input((None, 3)), two inputs on which eager sizes differ)
DATA_SIZED: dict[str, tuple[Callable[[Any], Any], tuple[int | None, ...]]] = {
    "mask_empty_on_every_probe": (lambda x: x[x[:, 0] > 1.5], (None, 3)),
    "mask_then_column_sums": (lambda x: x[x[:, 0] > 1.5].sum(axis=0), (3,)),
    "mask_then_row_sums": (lambda x: x[x[:, 0] > 1.5].sum(axis=1), (None,)),
    "mask_then_first_three": (lambda x: x[x[:, 0] > 1.5][:3], (None, 3)),
    "mask_columns": (lambda x: x[:, x[0] > 1.5], (None, None)),
    "unique": (lambda x: np.unique(x), (None,)),
    "unique_rows": (lambda x: np.unique(x, axis=0), (None, 3)),
    "unique_counts": (lambda x: np.unique(x, return_counts=True)[1], (None,)),
    "unique_values": (lambda x: np.unique_values(x), (None,)),
    "nonzero": (lambda x: np.nonzero(x > 1.5)[1], (None,)),
    "flatnonzero": (lambda x: np.flatnonzero(x > 1.5), (None,)),
    "argwhere": (lambda x: np.argwhere(x > 1.5), (None, 2)),
    "where_one_argument": (lambda x: np.where(x > 1.5)[0], (None,)),
    "extract": (lambda x: np.extract(x > 1.5, x), (None,)),
    "compress": (lambda x: np.compress(x[:, 0] > 1.5, x, axis=0), (None, 3)),
    "trim_zeros": (lambda x: np.trim_zeros(np.where(x[:, 0] > 1.5, x[:, 0], 0)), (None,)),
    "union1d": (lambda x: np.union1d(x[:, 0], x[:, 1]), (None,)),
    "intersect1d": (lambda x: np.intersect1d(x[:, 0], x[:, 1]), (None,)),
    "setdiff1d": (lambda x: np.setdiff1d(x[:, 0], x[:, 1]), (None,)),
    "setxor1d": (lambda x: np.setxor1d(x[:, 0], x[:, 1]), (None,)),
    "bincount": (lambda x: np.bincount(counts(x)), (None,)),
    "repeat_by_data": (lambda x: np.repeat(x, counts(x), axis=0), (None, 3)),
    "histogram_auto_bins": (lambda x: np.histogram(x, bins="auto")[0], (None,)),
    "histogram_recorded_bins": (lambda x: np.histogram(x, bins=counts(x)[0] + 2)[0], (None,)),
    "method_nonzero": (lambda x: (x > 1.5).nonzero()[0], (None,)),
    "method_compress": (lambda x: x.compress(x[:, 0] > 1.5, axis=0), (None, 3)),
    "method_repeat": (lambda x: x.repeat(counts(x), axis=0), (None, 3)),
    "slice_by_data": (lambda x: x[: counts(x)[0]], (None, 3)),
    "arange_by_data": (lambda x: arange(counts(x)[0]), (None,)),
    "static_histogram": (lambda x: np.histogram(x, bins=4, range=(0.0, 3.0))[0], (4,)),
    "static_where": (lambda x: np.where(x > 1.5, x, 0.0), (None, 3)),
}
FEW_PASS = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [1.6, 1.6, 2.7], [0.7, 0.1, 0.9]])
MANY_PASS = np.array([[1.7, 2.2, 1.6], [2.4, 1.6, 2.6], [1.6, 1.9, 2.0], [2.8, 2.1, 1.9]])
ALL_EQUAL = np.full((4, 3), 2.0)
DATASETS = (FEW_PASS, MANY_PASS, ALL_EQUAL)


@pytest.mark.parametrize("name", sorted(DATA_SIZED))
def test_data_dependent_sizes_are_unknown_and_what_follows_is_right(name):
    pipeline, expected_shape = DATA_SIZED[name]
    x = snp.Input((None, 3))  # example data in [0, 1]: every mask "> 1.5" is empty on the example and probes
    y = pipeline(x)
    assert y.shape == expected_shape
    for model in models(x, y):
        for data in (*DATASETS, FEW_PASS[:1], MANY_PASS[:0]):
            try:
                expected = pipeline(data)
            except Exception as error:  # the oracle
                with pytest.raises(type(error)):
                    model(data)
                continue
            got = model(data)
            assert_same(got, expected)
            for axis, size in enumerate(expected_shape):
                if size is not None:
                    assert got.shape[axis] == size


@pytest.mark.parametrize("name", sorted(n for n in DATA_SIZED if None in DATA_SIZED[n][1] and n != "static_where"))
def test_data_dependent_sizes_of_a_custom_input_are_unknown_too(name):
    pipeline, expected_shape = DATA_SIZED[name]
    x = snp.CustomInput(np.linspace(0.0, 1.0, 12).reshape(4, 3))
    y = pipeline(x)
    # The example's 4 rows are known (and now required); the data-dependent sizes are not.
    known_rows = name == "mask_columns"
    assert y.shape == ((4, None) if known_rows else expected_shape)
    eager_sizes = {np.shape(pipeline(data)) for data in DATASETS}
    assert len(eager_sizes) > 1  # the data decides: other sizes on other data of the same shape
    for model in models(x, y):
        for data in DATASETS:
            assert_same(model(data), pipeline(data))


def test_an_all_equal_example_does_not_fix_the_number_of_unique_values():
    x = snp.CustomInput(np.ones(5))
    y = np.unique(x)
    assert y.shape == (None,)
    for model in models(x, y):
        data = np.array([3.0, 1.0, 3.0, 2.0, 1.0])
        assert_same(model(data), np.unique(data))


@pytest.mark.parametrize(
    ("pipeline", "expected", "rows"),
    [
        (lambda x: x[:2], (None, 3), 1),  # 2 rows on the example and on a 4-row probe, 1 on one row
        (lambda x: x[:1], (None, 3), 0),  # 1 row, except on an empty input
        (lambda x: x[1:], (None, 3), 1),
        (lambda x: x[-2:], (None, 3), 1),
        (lambda x: x[: np.shape(x)[0] // 2 + 1], (None, 3), 1),
    ],
)
def test_sizes_that_agree_on_the_example_by_chance_are_unknown(pipeline, expected, rows):
    x = snp.Input((None, 3))
    y = pipeline(x)
    assert y.shape == expected
    example_rows = np.shape(pipeline(np.ones((2, 3))))[0]
    data = np.arange(rows * 3.0).reshape(rows, 3)
    assert np.shape(pipeline(data))[0] != example_rows  # eager: another size on this input
    for model in models(x, y):
        assert_same(model(data), pipeline(data))


def test_independent_unknown_sizes_do_not_cancel_out():
    x, y = snp.Input((None,)), snp.Input((None,))
    z = symgraph.add_to_graph(np.zeros, np.shape(x)[0] - np.shape(y)[0] + 3)
    assert z.shape == (None,)
    for model in models((x, y), z):
        assert_same(model(np.ones(5), np.ones(2)), np.zeros(6))


# -- 2. probes do not run the user's code again ---------------------------------------------------


def test_reading_shapes_and_building_models_never_rerun_a_wrapped_function():
    calls: list[int] = []

    def scale(a):
        calls.append(len(a))
        return a * 2.0

    x = snp.Input((None, 3))
    y = symgraph.add_to_graph(scale, x)
    assert calls == [2]  # the example, once
    assert y.shape == (None, None)  # unknowable without running it again
    assert (y + x).shape == (None, 3)  # broadcasting against x leaves 3 columns, or fails
    assert y.sum(axis=0).shape == (None,)
    built = models(x, y + x)
    for model in built:
        model.summary(print_fn=lambda text: None)
    assert calls == [2]
    data = np.ones((5, 3))
    for model in built:
        assert_same(model(data), scale(data) + data)
    assert calls == [2, 5, 5, 5, 5]


def test_probes_never_advance_a_recorded_random_generator():
    generator = np.random.default_rng(3)
    x = snp.Input((None, 3))
    noise = symgraph.add_to_graph(generator.normal, size=np.shape(x))
    after_recording = generator.bit_generator.state
    y = x + noise
    assert y.shape == (None, 3) and noise.shape == (None, None)
    model = symgraph.SymbolicModel(x, y)
    model.summary(print_fn=lambda text: None)
    assert generator.bit_generator.state == after_recording
    twin = np.random.default_rng(3)
    twin.normal(size=(2, 3))  # the draw made while recording
    data = np.ones((4, 3))
    assert_same(model(data), data + twin.normal(size=(4, 3)))


def test_probes_never_draw_from_numpys_global_random_state():
    np.random.seed(11)
    x = snp.Input((None, 2))
    noise = symgraph.add_to_graph(np.random.normal, size=np.shape(x))
    state = np.random.get_state()[1].copy()
    assert (x * noise).shape == (None, 2)
    symgraph.SymbolicModel(x, x * noise).summary(print_fn=lambda text: None)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_steps_with_impure_constants_or_user_subclasses_are_not_rerun():
    calls: list[int] = []

    def square(v):
        calls.append(1)
        return v * v

    x = snp.Input((None, 3))
    y = np.apply_along_axis(square, 1, x)  # numpy calls the user's function: not pure
    calls.clear()
    assert y.shape == (None, None)
    assert calls == []

    class Tracked(np.ndarray):
        def __add__(self, other):
            calls.append(1)
            return np.asarray(self) + other

    c = snp.CustomInput(np.zeros(3).view(Tracked))
    z = c + 1
    calls.clear()
    assert z.shape == (None,)
    assert calls == []


# -- 3. sizes and dtypes the example decided -------------------------------------------------------


def _refusal(model: Any, data: Any) -> str:
    with pytest.raises(symgraph.InputError) as info:
        model(data)
    return str(info.value)


def test_dividing_by_len_of_a_custom_input_requires_its_size():
    x = snp.CustomInput(np.arange(4.0), custom_name="prices")
    where = here()
    y = x / len(x)
    for model in models(x, y):
        same = np.arange(10.0, 14.0)
        assert_same(model(same), same / len(same))
        longer = np.arange(6.0)
        assert not np.array_equal(longer / len(longer), longer / 4)  # eager divides by 6, not 4
        message = _refusal(model, longer)
        assert message.startswith("prices: expected an array of shape (4,), the example's, got an array of shape (6,)")
        assert f"(len() at {where})" in message
        assert "snp.Input((None, ...))" in message and "np.shape(x)" in message


def test_unpacking_a_custom_input_requires_its_size():
    x = snp.CustomInput(np.arange(4.0))
    where = here()
    a, b, c, d = x
    for model in models(x, a - d):
        assert_same(model(np.arange(4.0) * 2), np.float64(-6.0))
        with pytest.raises(ValueError, match="too many values to unpack"):
            a6, b6, c6, d6 = np.arange(6.0)  # eager
        assert f"(iteration at {where})" in _refusal(model, np.arange(6.0))


@pytest.mark.parametrize(
    ("read", "what"),
    [
        (lambda x: x.shape[0], ".shape"),
        (lambda x: x.size, ".size"),
        (lambda x: (x * 2).shape[0], ".shape of a value computed from it"),
        (lambda x: len(x.T.T), "len() of a value computed from it"),
        (lambda x: len(np.sort(x)), "len() of a value computed from it"),
    ],
)
def test_every_read_of_a_size_is_guarded(read, what):
    x = snp.CustomInput(np.arange(4.0))
    size = read(x)
    where = f"{__file__}:{inspect.getsourcelines(read)[1]}"  # the line that read it: the lambda's
    y = x[:size] * size
    for model in models(x, y):
        assert_same(model(np.ones(4)), np.ones(4) * 4)
        assert f"({what} at {where})" in _refusal(model, np.ones(7))


def test_reading_a_dtype_requires_it_exactly():
    x = snp.CustomInput(np.arange(3.0))
    where = here()
    y = x + np.zeros(3, dtype=x.dtype)
    for model in models(x, y):
        single = np.ones(3, dtype=np.float32)
        assert (single + np.zeros(3, dtype=single.dtype)).dtype == np.float32  # eager: float32
        message = _refusal(model, single)
        assert message.startswith("Input_1: expected dtype float64 exactly, got dtype float32")
        assert f"(.dtype at {where})" in message and "np.result_type(x)" in message
        assert_same(model(np.ones(3)), np.ones(3))


def test_reading_the_dtype_of_a_derived_value_or_an_input_is_guarded_too():
    x = snp.Input((None, 2), custom_name="rows")
    where = here()
    total = np.zeros(2, dtype=x.sum(axis=0).dtype)
    model = symgraph.SymbolicModel(x, x.sum(axis=0) + total)
    message = _refusal(model, np.ones((3, 2), dtype=np.float32))
    assert message.startswith("rows: expected dtype float64 exactly")
    assert f"(.dtype of a value computed from it at {where})" in message
    assert_same(model(np.ones((3, 2))), np.full(2, 3.0))


def test_unknown_input_sizes_stay_free_when_read():
    x = snp.Input((None, 3))
    assert x.shape == (None, 3) and x.size is None and (x.T @ x).shape == (3, 3)
    y = x * x.shape[1]
    for model in models(x, y):
        for rows in (1, 5):
            data = np.ones((rows, 3), dtype=np.float32)
            assert_same(model(data), data * 3)


def test_summaries_and_probes_do_not_count_as_reads():
    x = snp.CustomInput(np.arange(4.0))
    y = x[x > 1.0] * 2
    for model in models(x, y):
        model.summary(print_fn=lambda text: None)
        assert model.plan.steps[-1].description == "(None,)"
        data = np.arange(9.0, dtype=np.float32)
        assert_same(model(data), data[data > 1.0] * 2)
    assert (x.node.meta or {}).get("reads") is None


def test_a_required_shape_accepts_dask_arrays_of_that_shape():
    da = pytest.importorskip("dask.array")
    x = snp.CustomInput(np.arange(4.0))
    model = symgraph.SymbolicModel(x, x / len(x))
    data = np.arange(4.0) + 1
    np.testing.assert_array_equal(model(da.from_array(data, chunks=2)).compute(), data / 4)
    with pytest.raises(symgraph.InputError, match="the example's"):
        model(da.from_array(np.ones(6), chunks=2))


# -- 4. input checks cover what Input declares -----------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "given", "pipeline", "message"),
    [
        (
            "datetime64[D]",
            np.array(["2024-03-01T00:00:00"], dtype="datetime64[s]"),
            lambda x: x + 1,
            "when: expected datetime64[D] data (unit D), got dtype datetime64[s]: datetimes in another unit",
        ),
        (
            "timedelta64[h]",
            np.array([2], dtype="timedelta64[m]"),
            lambda x: x + 1,
            "when: expected timedelta64[h] data (unit h), got dtype timedelta64[m]: timedeltas in another unit",
        ),
        (
            np.dtype([("a", "f8"), ("b", "i4")]),
            np.array([(1.5, 2)], dtype=[("b", "f8"), ("a", "i4")]),
            lambda x: x["a"] * 2,
            "when: expected a structured array with fields ('a', 'b') (recorded with dtype "
            "[('a', '<f8'), ('b', '<i4')]), got fields ('b', 'a')",
        ),
        (
            np.dtype([("a", "f8"), ("b", "i4")]),
            np.array([(3, 2)], dtype=[("a", "i8"), ("b", "i4")]),
            lambda x: x["a"] // 2,
            "when: expected a structured array with fields ('a', 'b') (recorded with dtype "
            "[('a', '<f8'), ('b', '<i4')]), got field 'a' of dtype int64, where float64 was recorded",
        ),
        (
            "U4",
            np.array([b"ab", b"cd"]),
            lambda x: x == "ab",
            "when: expected unicode string data (recorded with dtype <U4), got dtype |S2",
        ),
    ],
)
def test_input_checks_refuse_what_the_declared_dtype_rules_out(declared, given, pipeline, message):
    x = snp.Input((None,), dtype=declared, custom_name="when")
    conforming = given.astype(declared)
    try:
        eager_given = pipeline(given)
    except Exception:  # eager code raising inside numpy differs too
        eager_given = None
    eager_conforming = pipeline(conforming)
    assert eager_given is None or not (
        np.result_type(eager_given) == np.result_type(eager_conforming)
        and np.array_equal(np.asarray(eager_given).view(np.uint8), np.asarray(eager_conforming).view(np.uint8))
    )
    for model in models(x, pipeline(x)):
        assert_same(model(conforming), eager_conforming)
        assert _refusal(model, given).startswith(message)


def test_custom_inputs_check_units_and_fields_too():
    x = snp.CustomInput(np.array(["2024-01-01"], dtype="datetime64[D]"))
    model = symgraph.SymbolicModel(x, x + 1)
    assert "expected datetime64[D] data" in _refusal(model, np.array(["2024-01-01"], dtype="datetime64[ms]"))
    assert_same(model(np.array(["2024-02-01"], dtype="datetime64[D]")), np.array(["2024-02-02"], "datetime64[D]"))


# -- 5. round, divmod, math.floor/ceil/trunc, pow with a modulus ------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda x: round(x, 1),
        lambda x: round(x),
        lambda x: math.floor(x),
        lambda x: pow(x.astype(np.int64), 2, 5),
    ],
)
def test_number_builtins_that_numpy_arrays_refuse_are_refused_while_recording(call):
    data = np.array([1.25, 2.5, -3.75])
    with pytest.raises(TypeError) as eager:
        call(data)
    x = snp.CustomInput(data)
    with pytest.raises(TypeError) as recorded:
        call(x)
    assert str(recorded.value) == str(eager.value)


@pytest.mark.parametrize(
    "call",
    [
        lambda x: round(x.sum(), 1),
        lambda x: round(x.sum()),
        lambda x: math.floor(x.sum()),
        lambda x: math.ceil(x.max()),
        lambda x: math.trunc(x.min()),
        lambda x: divmod(x, 2.0),
        lambda x: divmod(7.0, x),
        lambda x: divmod(x.sum(), 3.0),
        lambda x: round(x[0], 3),
    ],
)
def test_number_builtins_replay_like_eager_numpy(call):
    x = snp.CustomInput(np.array([1.25, 2.5, -3.75]))
    y = call(x)
    for model in models(x, y):
        for data in (np.array([0.125, -2.5, 9.75]), np.array([3.0, 1.5, 2.25])):
            assert_same(model(data), call(data))


def test_divmod_keeps_shapes_and_replays_on_dask():
    da = pytest.importorskip("dask.array")
    x = snp.Input((None,))
    quotient, remainder = divmod(x, 2.0)
    assert quotient.shape == remainder.shape == (None,)
    model = symgraph.SymbolicModel(x, (quotient, remainder))
    data = np.array([1.25, 2.5, -3.75, 8.0])
    lazy = model(da.from_array(data, chunks=2))
    eager = divmod(da.from_array(data, chunks=2), 2.0)
    for got, expected in zip(lazy, eager, strict=True):
        assert isinstance(got, da.Array)
        np.testing.assert_array_equal(got.compute(), expected.compute())
    rounded = symgraph.SymbolicModel(x, round(x.sum(), 1))
    with pytest.raises(TypeError, match="__round__"):
        round(da.from_array(data, chunks=2).sum(), 1)  # eager on dask
    with pytest.raises(TypeError, match="__round__"):
        rounded(da.from_array(data, chunks=2))


# -- 6. randomness ---------------------------------------------------------------------------------


def test_a_draw_while_recording_is_a_constant():
    np.random.seed(5)
    x = snp.Input((None, 3))
    model = symgraph.SymbolicModel(x, x + np.random.normal(size=3))
    data = np.zeros((2, 3))
    first, second = model(data), model(data)
    np.testing.assert_array_equal(first, second)  # the same "noise" at every call
    assert not np.array_equal(data + np.random.normal(size=3), data + np.random.normal(size=3))  # eager


def test_a_recorded_generator_draws_at_every_call_and_pickled_copies_repeat_each_other():
    generator = np.random.default_rng(8)
    x = snp.Input((None, 2))
    model = symgraph.SymbolicModel(x, x + symgraph.add_to_graph(generator.normal, size=np.shape(x)))
    data = np.zeros((3, 2))
    first, second = model(data), model(data)
    assert not np.array_equal(first, second)
    twin = np.random.default_rng(8)
    twin.normal(size=(2, 2))  # recording's draw
    np.testing.assert_array_equal(first, twin.normal(size=(3, 2)))
    np.testing.assert_array_equal(second, twin.normal(size=(3, 2)))
    copies = [pickle.loads(pickle.dumps(model)) for _ in range(2)]
    draws = [copy(data) for copy in copies]
    np.testing.assert_array_equal(draws[0], draws[1])  # every copy replays the same draws
    np.testing.assert_array_equal(draws[0], twin.normal(size=(3, 2)))


def test_location_in_messages_is_this_file():
    # The messages above name this file: user_location skips symgraph's own frames.
    x = snp.CustomInput(np.arange(2.0))
    len(x)
    reads = x.node.meta["reads"]
    assert re.fullmatch(rf"len\(\) at {re.escape(__file__)}:\d+", reads["shape"])
