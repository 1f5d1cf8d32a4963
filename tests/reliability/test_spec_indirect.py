"""Loaded models and methods that call what a string names (pandas' ``agg``, ``apply``, ``transform``).

A hostile spec could reach a writer through ``df.agg("to_csv", path)`` without
ever naming ``to_csv`` as a method: the guard checks the strings such methods get.
The oracle for the permitted cases is the same call made eagerly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import symgraph
from symgraph import GuardError, SpecError


def _method_spec(method: str, args: list[Any], *, split: bool) -> dict[str, Any]:
    """A core spec calling ``method(*args)`` on its input: one method step, or getattr then call."""
    if split:
        steps: list[dict[str, Any]] = [
            {"name": "m", "op": "getattr", "of": "x", "attr": method},
            {"name": "out", "op": "call", "func": {"$ref": "m"}, "args": args, "kwargs": {}},
        ]
    else:
        steps = [{"name": "out", "op": "method", "of": "x", "method": method, "args": args, "kwargs": {}}]
    return {
        "format": "symgraph.model",
        "version": 1,
        "model": "symgraph",
        "inputs": [{"name": "x", "check": None}],
        "input_keys": None,
        "steps": steps,
        "outputs": {"$ref": "out"},
        "options": {"check_inputs": False, "executor": "codegen", "executor_options": {}},
        "constants": {},
    }


@pytest.mark.parametrize("split", [False, True], ids=["method-step", "getattr-then-call"])
@pytest.mark.parametrize("executor", ["codegen", "interpreter"])
@pytest.mark.parametrize("method", ["agg", "aggregate", "apply", "transform", "pipe"])
def test_a_string_naming_a_writer_is_refused_at_run_time(
    method: str, split: bool, executor: str, tmp_path: Path
) -> None:
    target = tmp_path / "stolen.csv"
    spec = _method_spec(method, ["to_csv", str(target)], split=split)
    model = symgraph.SymbolicModel.from_spec(spec, executor=executor)
    frame = pd.DataFrame({"a": [1, 2]})
    with pytest.raises(GuardError, match=rf"calls {method} of a DataFrame with the string 'to_csv'"):
        model(frame)
    assert not target.exists()


def test_strings_inside_containers_are_checked(tmp_path: Path) -> None:
    model = symgraph.SymbolicModel.from_spec(_method_spec("agg", [["sum", "to_pickle"]], split=False))
    with pytest.raises(GuardError, match="to_pickle"):
        model(pd.DataFrame({"a": [1, 2]}))


@pytest.mark.parametrize("split", [False, True], ids=["method-step", "getattr-then-call"])
def test_permitted_strings_compute_what_pandas_computes(split: bool) -> None:
    frame = pd.DataFrame({"a": [1, 2, 4], "b": [0.5, 1.5, 2.5]})
    model = symgraph.SymbolicModel.from_spec(_method_spec("agg", [["sum", "max"]], split=split))
    pd.testing.assert_frame_equal(model(frame), frame.agg(["sum", "max"]))
    series = pd.Series(["x", "y"])
    mapped = symgraph.SymbolicModel.from_spec(_method_spec("map", [{"x": "to_csv"}], split=split))
    # A dict's values are data here, but a string in it is refused all the same: the
    # guard cannot tell a lookup table from a list of method names.
    with pytest.raises(GuardError, match="to_csv"):
        mapped(series)


@pytest.mark.parametrize("name", ["to_csv", "to_pickle", "to_parquet", "query", "to_sql"])
def test_pandas_writers_and_query_are_refused_when_loading(name: str) -> None:
    with pytest.raises(SpecError, match=rf"name '{name}' is refused when loading"):
        symgraph.SymbolicModel.from_spec(_method_spec(name, ["x"], split=False))


def test_a_recorded_model_still_runs_agg_with_any_string() -> None:
    # Only loaded models are guarded: a recorded one runs the user's own code.
    x = symgraph.CustomInput(pd.Series([1, 2, 3]))
    model = symgraph.SymbolicModel(x, x.agg("sum"))
    assert model(pd.Series([4, 5])) == 9


def test_keyword_arguments_named_like_the_guards_own_parameters() -> None:
    # s.to_frame(name=...) and df.assign(owner=...) reach call_method with those keywords.
    series = symgraph.CustomInput(pd.Series([1, 2]))
    frame = symgraph.CustomInput(pd.DataFrame({"a": [1, 2]}))
    model = symgraph.SymbolicModel([series, frame], [series.to_frame(name="total"), frame.assign(owner=1, name=2)])
    loaded = symgraph.SymbolicModel.from_spec(model.to_spec())
    new_series, new_frame = pd.Series([5, 6, 7]), pd.DataFrame({"a": [0]})
    got, want = loaded(new_series, new_frame), [new_series.to_frame(name="total"), new_frame.assign(owner=1, name=2)]
    for actual, expected in zip(got, want, strict=True):
        pd.testing.assert_frame_equal(actual, expected)
