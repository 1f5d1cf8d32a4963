"""What pandas users expect of the plugin, each checked against the same pandas code run eagerly."""

from __future__ import annotations

import operator
import pickle
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import symgraph_pandas
from symgraph_pandas import AccessorCall, SymbolicPandas
from symgraph_pandas.testing import assert_same

import symgraph
from symgraph.plugin import Call, MethodCall, Slice
from symgraph.testing import models_on_each_executor

EXAMPLE = pd.DataFrame({"g": ["x", "y", "x"], "a": [1, 2, 3], "b": [0.5, 1.5, 2.5]})
NEW = pd.DataFrame({"g": ["y", "y", "z", "x"], "a": [4, 0, 9, 2], "b": [2.0, 8.0, 1.0, 4.0]})


def models(inputs, outputs):
    return [
        *models_on_each_executor(inputs, outputs),
        *pickle.loads(pickle.dumps(models_on_each_executor(inputs, outputs))),
    ]


def steps(model):
    return [(step.name, type(step.op)) for step in model.plan.steps]


# -- the package under test is the installed one -----------------------------------------------
def test_the_tests_use_the_installed_package_registered_by_its_entry_point():
    assert "site-packages" in Path(symgraph_pandas.__file__).parts
    assert "examples" not in Path(symgraph_pandas.__file__).parts
    (entry,) = [ep for ep in metadata.entry_points(group="symgraph.backends") if ep.name == "pandas"]
    assert entry.value == "symgraph_pandas._backend:BACKEND"
    assert symgraph.plugin.backend_for(pd.DataFrame) is entry.load() is symgraph_pandas.BACKEND
    assert isinstance(symgraph.CustomInput(EXAMPLE), SymbolicPandas)


# -- comparisons are elementwise and recorded ----------------------------------------------------
@pytest.mark.parametrize("symbol", ["==", "!=", "<", "<=", ">", ">="])
def test_comparisons_are_recorded_masks_that_filter_new_frames(symbol):
    compare = {
        "==": operator.eq,
        "!=": operator.ne,
        "<": operator.lt,
        "<=": operator.le,
        ">": operator.gt,
        ">=": operator.ge,
    }[symbol]

    def program(df):
        by_constant = df[compare(df["a"], 2)]
        by_column = df[compare(df["a"], df["b"])]
        by_text = df[compare(df["g"], "x")] if symbol in ("==", "!=") else df[compare(df["g"], "y")]
        return by_constant, by_column, by_text

    df = symgraph.CustomInput(EXAMPLE)
    outputs = program(df)
    assert all(isinstance(out, SymbolicPandas) for out in outputs)
    for model in models(df, outputs):
        for got, want in zip(model(NEW), program(NEW), strict=True):
            pd.testing.assert_frame_equal(got, want)


def test_a_mask_is_not_frozen_to_the_example_answer():
    df = symgraph.CustomInput(pd.DataFrame({"g": ["x", "x"], "v": [1, 2]}))  # every row is "x" here
    model = symgraph.SymbolicModel(df, df[df["g"] == "x"]["v"].sum())
    assert model(pd.DataFrame({"g": ["y", "x", "y"], "v": [10, 20, 30]})) == 20


def test_operations_with_real_pandas_values_on_the_left_are_recorded():
    s = symgraph.CustomInput(pd.Series([1.0, 2.0, 3.0]))
    weights = pd.Series([10.0, 20.0, 30.0])
    outputs = (weights * s, weights == s, weights - s > 0, np.array([1.0, 2.0, 3.0]) + s)
    for model in models(s, outputs):
        new = pd.Series([20.0, 2.0, 0.0])
        expected = (weights * new, weights == new, weights - new > 0, np.array([1.0, 2.0, 3.0]) + new)
        for got, want in zip(model(new), expected, strict=True):
            assert_same(got, want)


def test_handles_still_hash_by_identity():
    df = symgraph.CustomInput(EXAMPLE)
    column = df["a"]
    assert {column: 1}[column] == 1 and hash(column) == object.__hash__(column)
    assert column in {column} and df["a"] not in {column}


# -- numpy ufuncs ---------------------------------------------------------------------------------
def test_numpy_ufuncs_on_frames_and_series_are_recorded_calls():
    df = symgraph.CustomInput(EXAMPLE[["a", "b"]])
    s = df["b"]

    def program(frame, series):
        return np.log(frame), np.add(series, 1), np.maximum(series, frame["a"]), np.add.reduce(frame, axis=1)

    outputs = program(df, s)
    model = symgraph.SymbolicModel(df, outputs)
    calls = [step.op.func.value for step in model.plan.steps if isinstance(step.op, Call)]
    assert calls == [np.log, np.add, np.maximum, np.add.reduce]
    for model in models(df, outputs):
        new = NEW[["a", "b"]] + 1  # log of positive numbers only
        for got, want in zip(model(new), program(new, new["b"]), strict=True):
            assert_same(got, want)


def test_ufunc_out_and_numpy_conversion_are_refused():
    s = symgraph.CustomInput(pd.Series([1.0, 2.0]))
    with pytest.raises(symgraph.TraceError, match="out="):
        np.log(s, out=np.zeros(2))
    with pytest.raises(symgraph.TraceError, match="to_numpy"):
        np.asarray(s)
    with pytest.raises(symgraph.TraceError, match="add_to_graph\\(len, x\\)"):
        len(s)
    assert s.children == ()


# -- one step per method --------------------------------------------------------------------------
def test_methods_and_accessor_members_are_one_step_each():
    frame = pd.DataFrame({"g": ["x", "y"], "v": [1.0, None], "when": pd.to_datetime(["2024-01-05", "2025-03-01"])})
    df = symgraph.CustomInput(frame, custom_name="df")

    def program(d):
        return {
            "groups": d.groupby("g")["v"].sum(),
            "filled": d.fillna({"v": 0}),
            "assigned": d.assign(w=d["v"] * 2),
            "upper": d["g"].str.upper(),
            "year": d["when"].dt.year,
            "rolled": d["v"].rolling(2, min_periods=1).mean(),
        }

    model = symgraph.SymbolicModel(df, program(df))
    assert steps(model) == [
        ("wrap(groupby)_1", MethodCall),
        ("SliceLayer_1", Slice),
        ("wrap(sum)_1", MethodCall),
        ("wrap(fillna)_1", MethodCall),
        ("SliceLayer_2", Slice),
        ("LambdaOpLayer_1", symgraph.plugin.Operator),
        ("wrap(assign)_1", MethodCall),
        ("SliceLayer_3", Slice),
        ("str.upper_1", AccessorCall),
        ("SliceLayer_4", Slice),
        ("dt.year_1", AccessorCall),
        ("SliceLayer_5", Slice),
        ("wrap(rolling)_1", MethodCall),
        ("wrap(mean)_1", MethodCall),
    ]
    lines = symgraph.format_summary(model.plan).splitlines()
    assert any("str.upper_1" in line and "Series['g': str]" in line for line in lines)
    new = pd.DataFrame({"g": ["b", "a", "b"], "v": [None, 2.0, 3.0], "when": pd.to_datetime(["2020-01-01"] * 3)})
    for m in models(df, program(df)):
        got = m(new)
        for key, want in program(new).items():
            assert_same(got[key], want)


def test_accessors_fail_as_pandas_does_and_record_nothing():
    s = symgraph.CustomInput(pd.Series([1, 2]))
    with pytest.raises(AttributeError, match=r"\.str accessor"):
        s.str  # noqa: B018
    text = symgraph.CustomInput(pd.Series(["a"]))
    with pytest.raises(AttributeError, match="no member 'nope'"):
        text.str.nope  # noqa: B018
    with pytest.raises(symgraph.TraceError, match=r"x\.str\.get"):
        text.str[0]
    assert s.children == () and text.children == ()


@pytest.mark.parametrize(
    ("accessor", "name", "error"),
    [
        ("os", "upper", ValueError),
        ("str", "__class__", ValueError),
        ("str", "format", ValueError),
        ("str", "a.b", ValueError),
    ],
)
def test_accessor_steps_refuse_names_a_model_may_not_record(accessor, name, error):
    with pytest.raises(error):
        AccessorCall(accessor, name, True, (), symgraph.plugin.Const({}))


def test_in_place_changes_are_refused_and_record_nothing(tmp_path):
    df = symgraph.CustomInput(EXAMPLE.copy())
    with pytest.raises(symgraph.TraceError, match=r"df\.assign"):
        df["c"] = 1
    with pytest.raises(symgraph.TraceError, match="inplace=True"):
        df.fillna(0, inplace=True)
    with pytest.raises(symgraph.TraceError, match="in place"):
        df.insert(0, "c", 1)
    with pytest.raises(symgraph.TraceError, match="returned None"):
        df.to_csv(tmp_path / "out.csv")
    assert df.children == ()
    pd.testing.assert_frame_equal(df.v, EXAMPLE)


# -- summaries -------------------------------------------------------------------------------------
def test_summaries_show_columns_and_dtypes_in_a_bounded_width():
    wide = pd.DataFrame({f"column_{i}": np.arange(3) for i in range(200)})
    df = symgraph.CustomInput(wide, custom_name="wide")
    model = symgraph.SymbolicModel(df, (df * 2.0).sum(axis=1))
    lines = symgraph.format_summary(model.plan).splitlines()
    assert max(map(len, lines)) < 130, max(lines, key=len)
    assert "'column_0': int64" in lines[3] and "... 197 more" in lines[3]
    assert "'column_0': float64" in lines[4]
    assert "Series[float64]" in lines[5]


# -- input checks ---------------------------------------------------------------------------------
CALLS: list[int] = []


def _count(frame):
    CALLS.append(1)
    return frame


def test_inputs_are_checked_before_any_step_runs():
    df = symgraph.CustomInput(pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]}), custom_name="orders")
    counted = symgraph.add_to_graph(_count, df)
    model = symgraph.SymbolicModel(df, counted["a"] * counted["b"])
    for m in (model, pickle.loads(pickle.dumps(model))):
        CALLS.clear()
        with pytest.raises(symgraph.InputError, match=r"input 'orders' expects a DataFrame with column 'b' \(float\)"):
            m(pd.DataFrame({"a": [1]}))
        with pytest.raises(
            symgraph.InputError,
            match=r"input 'orders': column 'b' must hold float values \(the example's dtype was float64\), got str",
        ):
            m(pd.DataFrame({"a": [1], "b": ["1.5"]}))
        with pytest.raises(symgraph.InputError, match="expects a pandas DataFrame"):
            m(pd.Series([1]))
        with pytest.raises(symgraph.InputError, match="column 'a' must hold integer"):
            m.interpret(pd.DataFrame({"a": [1.0], "b": [2.0]}))
        assert CALLS == []
    # Extra columns and another order pass, and the result is what pandas computes.
    new = pd.DataFrame({"note": ["n", "m"], "b": [2.0, 4.0], "a": [3, 5]})
    pd.testing.assert_series_equal(model(new), new["a"] * new["b"])
    # Nullable and narrower dtypes of the same kind pass too.
    nullable = pd.DataFrame({"a": pd.array([1, None], dtype="Int32"), "b": np.array([1.0, 2.0], dtype="float32")})
    pd.testing.assert_series_equal(model(nullable), nullable["a"] * nullable["b"])


def test_series_inputs_are_checked_by_kind():
    s = symgraph.CustomInput(pd.Series(["a", "b"], name="tag"), custom_name="tags")
    model = symgraph.SymbolicModel(s, s.str.len())
    with pytest.raises(symgraph.InputError, match="input 'tags' expects a Series of string values"):
        model(pd.Series([1, 2]))
    pd.testing.assert_series_equal(model(pd.Series(["abc"], dtype=object)), pd.Series(["abc"], dtype=object).str.len())


# -- saving ----------------------------------------------------------------------------------------
def test_pipelines_save_and_load_without_pickle(tmp_path):
    df = symgraph.CustomInput(EXAMPLE, custom_name="df")

    def program(d):
        kept = d[(d["g"] != "y") & (np.log(d["b"]) > -1)]
        return kept.assign(tag=kept["g"].str.upper()).groupby("tag")["a"].sum()

    model = symgraph.SymbolicModel(df, program(df))
    loaded = symgraph.load(symgraph.save(model, tmp_path / "model.zip"))
    pd.testing.assert_series_equal(loaded(NEW), program(NEW))
    assert [step.name for step in loaded.plan.steps] == [step.name for step in model.plan.steps]
    with pytest.raises(symgraph.InputError, match="column 'b'"):
        loaded(NEW[["g", "a"]])


def test_saving_refuses_what_it_cannot_store_naming_it(tmp_path):
    df = symgraph.CustomInput(EXAMPLE, custom_name="df")
    with_constant = symgraph.SymbolicModel(df, df["a"] + pd.Series([1, 2, 3]))
    with pytest.raises(symgraph.SaveError, match="Series"):
        symgraph.save(with_constant, tmp_path / "constant.zip")
    tuples = symgraph.CustomInput(pd.DataFrame({("a", "x"): [1]}), custom_name="multi")
    with pytest.raises(symgraph.SaveError, match=r"column label \('a', 'x'\)"):
        symgraph.save(symgraph.SymbolicModel(tuples, tuples * 2), tmp_path / "multi.zip")
    assert list(tmp_path.iterdir()) == []


def test_loading_refuses_malformed_checks(tmp_path):
    df = symgraph.CustomInput(EXAMPLE, custom_name="df")
    spec = symgraph.SymbolicModel(df, df["a"] * 2).to_spec()
    spec["inputs"][0]["check"]["columns"][0] = ["g", "string"]
    with pytest.raises(symgraph.SpecError, match=r"columns\[0\]: expected \[label, kind, dtype\]"):
        symgraph.SymbolicModel.from_spec(spec)
