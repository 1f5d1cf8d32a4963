"""Programs a pandas user writes, recorded once and compared with pandas itself on new frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import symgraph
from symgraph.testing import models_on_each_executor


def clean(orders):
    """A cleaning pipeline: tidy names, drop duplicates and bad rows, fill gaps, fix types."""
    tidy = orders.assign(customer=orders["customer"].str.strip().str.title())
    tidy = tidy.drop_duplicates(subset=["order_id"]).dropna(subset=["customer"])
    tidy = tidy.fillna({"quantity": 1}).astype({"quantity": "int64"})
    tidy = tidy[tidy["price"] > 0].rename(columns={"price": "unit_price"})
    return tidy.sort_values(["customer", "order_id"]).reset_index(drop=True)


def report(sales):
    """A groupby report: totals and shares per region and product, the best sellers first."""
    sales = sales.assign(revenue=sales["units"] * sales["price"])
    table = sales.groupby(["region", "product"], as_index=False).agg(
        units=("units", "sum"), revenue=("revenue", "sum"), orders=("units", "size")
    )
    table = table.assign(share=table["revenue"] / table.groupby("region")["revenue"].transform("sum"))
    return table.sort_values(["region", "revenue"], ascending=[True, False]).round({"share": 3})


def features(frame, call=lambda func, *args: func(*args)):
    """Feature engineering: logs, flags from comparisons, a clipped ratio and a numpy where.

    pandas functions such as the ``pd.DataFrame`` constructor do not record themselves: the
    recorded program calls them through ``symgraph.add_to_graph`` (``call``).
    """
    return call(
        pd.DataFrame,
        {
            "log_income": np.log1p(frame["income"]),
            "is_senior": frame["age"] >= 65,
            "not_city": frame["city"] != "Paris",
            "ratio": (frame["debt"] / frame["income"]).clip(upper=5.0),
            "band": np.where(frame["income"] > 50_000, "high", "low"),
            "young_rich": (frame["age"] < 30) & (frame["income"] > 80_000),
        },
    )


def _replays_like_pandas(program, example, new_frames, **recording):
    df = symgraph.CustomInput(example, custom_name="frame")
    for model in models_on_each_executor(df, program(df, **recording)):
        for new in new_frames:
            pd.testing.assert_frame_equal(model(new), program(new))


def test_a_cleaning_pipeline():
    example = pd.DataFrame(
        {
            "order_id": [1, 2, 2, 3],
            "customer": ["  ann ", "bob", "bob", None],
            "quantity": [2.0, None, None, 1.0],
            "price": [9.5, 3.0, 3.0, 4.0],
        }
    )
    new = pd.DataFrame(
        {
            "order_id": [7, 5, 6, 6, 9],
            "customer": ["zoe", " yann", "xu ", "xu ", "wim"],
            "quantity": [None, 4.0, 2.0, 2.0, 3.0],
            "price": [1.0, 2.5, -1.0, -1.0, 8.0],
        }
    )
    _replays_like_pandas(clean, example, [new, example.iloc[:2]])


def test_a_groupby_report():
    example = pd.DataFrame(
        {"region": ["n", "n", "s"], "product": ["a", "b", "a"], "units": [3, 1, 2], "price": [2.0, 5.0, 2.5]}
    )
    new = pd.DataFrame(
        {
            "region": ["e", "e", "e", "w", "w"],
            "product": ["c", "c", "d", "c", "d"],
            "units": [1, 4, 2, 7, 1],
            "price": [3.0, 3.0, 10.0, 1.5, 2.0],
        }
    )
    _replays_like_pandas(report, example, [new])


def test_feature_engineering_with_numpy_and_comparisons():
    example = pd.DataFrame(
        {"income": [30_000.0, 90_000.0], "age": [25, 70], "city": ["Paris", "Lyon"], "debt": [1_000.0, 0.0]}
    )
    new = pd.DataFrame(
        {
            "income": [120_000.0, 10_000.0, 60_000.0],
            "age": [22, 65, 40],
            "city": ["Lyon", "Paris", "Nice"],
            "debt": [5_000.0, 90_000.0, 0.0],
        }
    )
    _replays_like_pandas(features, example, [new], call=symgraph.add_to_graph)
    with pytest.raises(symgraph.TraceError, match="truth value"):
        features(symgraph.CustomInput(example))  # pd.DataFrame itself cannot take symbolic columns
