"""Bugs a pandas user found by trying the plugin, each checked against the same pandas code run eagerly."""

from __future__ import annotations

import os
import pickle
import tempfile

import pandas as pd
import pytest
from symgraph_pandas.testing import assert_same

import symgraph
from symgraph.testing import models_on_each_executor

EXAMPLE = pd.DataFrame({"k": ["a", "b", "a"], "n": [1, 2, 3], "v": [1.0, 2.0, 3.0]})
NEW = pd.DataFrame({"k": ["b", "b", "c", "a"], "n": [0, 1, 2, 1], "v": [5.0, 6.0, 7.0, 8.0]})
SAME_LENGTH = pd.DataFrame({"k": ["c", "a", "c"], "n": [2, 0, 1], "v": [9.0, 8.0, 7.0]})


def _map_with_a_lookup(df):
    return df["k"].map(df.groupby("k")["v"].sum().get)


def _pipe_into_a_method(df):
    return df["v"].pipe(df["v"].add)


def _pipe_into_an_accessor_method(df):
    return df["n"].pipe(df["k"].str.repeat)


def _method_read_then_called(df):
    agg = df.groupby("k")["v"].agg
    return agg("sum")


@pytest.mark.parametrize(
    "program", [_map_with_a_lookup, _pipe_into_a_method, _pipe_into_an_accessor_method, _method_read_then_called]
)
def test_a_method_passed_uncalled_is_the_new_values_method_at_replay(program):
    # It used to be frozen into the step as an object holding the example's handle,
    # so the replay recorded on the example: a handle came back, or the lengths clashed.
    df = symgraph.CustomInput(EXAMPLE, custom_name="df")
    built = models_on_each_executor(df, program(df))
    for model in [*built, *pickle.loads(pickle.dumps(built))]:
        for new in (NEW, SAME_LENGTH, EXAMPLE):
            assert_same(model(new), program(new))


def test_a_method_called_at_once_is_still_one_step():
    df = symgraph.CustomInput(EXAMPLE, custom_name="df")
    model = symgraph.SymbolicModel(df, df.fillna(0).groupby("k")["v"].sum())
    assert [step.name for step in model.plan.steps] == [
        "wrap(fillna)_1",
        "wrap(groupby)_1",
        "SliceLayer_1",
        "wrap(sum)_1",
    ]
    assert_same(model(NEW), NEW.fillna(0).groupby("k")["v"].sum())


def test_a_model_with_an_uncalled_method_saves_and_loads():
    df = symgraph.CustomInput(EXAMPLE, custom_name="df")
    model = symgraph.SymbolicModel(df, _pipe_into_a_method(df))
    with tempfile.TemporaryDirectory() as folder:
        symgraph.save(model, os.path.join(folder, "model"))
        loaded = symgraph.load(os.path.join(folder, "model"))
    assert_same(loaded(NEW), _pipe_into_a_method(NEW))


def test_steps_are_located_at_the_users_line_not_in_the_plugin():
    df = symgraph.CustomInput(EXAMPLE, custom_name="df")
    line = test_steps_are_located_at_the_users_line_not_in_the_plugin.__code__.co_firstlineno + 3
    out = df.astype({"v": "int64"})["k"].str.upper()
    model = symgraph.SymbolicModel(df, out)
    wheres = {step.name: step.where for step in model.plan.steps}
    assert wheres["wrap(astype)_1"] == wheres["str.upper_1"] == f"{__file__}:{line}"
    with pytest.raises(pd.errors.IntCastingNaNError) as caught:
        model(NEW.assign(v=[1.0, float("nan"), 2.0, 3.0]))
    with pytest.raises(pd.errors.IntCastingNaNError) as eager:
        NEW.assign(v=[1.0, float("nan"), 2.0, 3.0]).astype({"v": "int64"})
    assert str(caught.value) == str(eager.value)
    assert caught.value.__notes__ == [
        f"symgraph: step 'wrap(astype)_1', recorded at {__file__}:{line}, failed while the model replayed"
    ]


def test_a_save_refusal_names_the_users_line():
    df = symgraph.CustomInput(EXAMPLE, custom_name="df")
    line = test_a_save_refusal_names_the_users_line.__code__.co_firstlineno + 3
    model = symgraph.SymbolicModel(df, df.query("v > 1"))
    with tempfile.TemporaryDirectory() as folder, pytest.raises(symgraph.SaveError) as caught:
        symgraph.save(model, os.path.join(folder, "model"))
    assert f"step 'wrap(query)_1' (recorded at {__file__}:{line})" in str(caught.value)


def test_a_loaded_model_passes_a_keyword_argument_called_name():
    s = symgraph.CustomInput(EXAMPLE["v"], custom_name="s")
    model = symgraph.SymbolicModel(s, s.to_frame(name="total"))
    with tempfile.TemporaryDirectory() as folder:
        symgraph.save(model, os.path.join(folder, "model"))
        loaded = symgraph.load(os.path.join(folder, "model"))
    assert_same(loaded(NEW["v"]), NEW["v"].to_frame(name="total"))
