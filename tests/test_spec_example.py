"""The example spec of docs/spec-format.md: it loads, it computes what numpy computes, and it cannot drift.

The pipeline is the ```python block right before the page's first ```json block;
this module runs that very block, so the page's code, the page's JSON and
docs/spec-example.json are checked against one another and against the code.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("symgraph_numpy")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import symgraph  # noqa: E402
from tests.test_docs import fenced_blocks  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "spec-format.md"
EXAMPLE = ROOT / "docs" / "spec-example.json"


def _blocks() -> tuple[str, str]:
    """The page's pipeline code and its first ```json block."""
    blocks = fenced_blocks(PAGE.read_text(encoding="utf-8"))
    k = next(i for i, (language, *_) in enumerate(blocks) if language == "json")
    assert k > 0 and blocks[k - 1][0] == "python", "the example's ```json block follows the block that builds it"
    return blocks[k - 1][2], blocks[k][2]


def _pipeline() -> dict[str, Any]:
    """The namespace of the page's pipeline block, run as the docs test runs it."""
    code, _ = _blocks()
    namespace: dict[str, Any] = {"__name__": "docs_spec_format"}
    exec(compile(code, str(PAGE), "exec", dont_inherit=True), namespace)
    return namespace


def _without_where(j: Any) -> Any:
    if isinstance(j, dict):
        return {k: _without_where(v) for k, v in j.items() if k != "where"}
    if isinstance(j, list):
        return [_without_where(v) for v in j]
    return j


PIPELINE = _pipeline()
FEATURES = PIPELINE["sensor_features"]


def _example() -> Any:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


def _assert_same(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    assert isinstance(actual, dict) and list(actual) == list(expected)
    for key, value in expected.items():
        assert type(actual[key]) is type(value)
        assert actual[key].dtype == value.dtype and actual[key].shape == value.shape, key
        np.testing.assert_array_equal(actual[key], value)


@settings(max_examples=30, deadline=None)
@given(
    rows=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from([np.float64, np.float32]),
)
def test_the_example_computes_what_numpy_computes(rows: int, seed: int, dtype: Any) -> None:
    model = symgraph.SymbolicModel.from_spec(_example())
    data = np.random.default_rng(seed).uniform(-50.0, 400.0, size=(rows, 4)).astype(dtype)
    _assert_same(model(readings=data), FEATURES(data))


def test_the_example_loads_as_a_saved_model(tmp_path: Path) -> None:
    saved = tmp_path / "sensor"
    saved.mkdir()
    shutil.copyfile(EXAMPLE, saved / "spec.json")
    model = symgraph.load(saved)
    data = np.random.default_rng(7).uniform(-50.0, 400.0, size=(9, 4))
    _assert_same(model(readings=data), FEATURES(data))
    with pytest.raises(symgraph.InputError, match="readings"):
        model(readings=np.zeros((3, 5)))


def test_the_file_is_what_the_pipeline_records_today() -> None:
    spec = _without_where(PIPELINE["model"].to_spec())
    assert _example() == spec
    assert EXAMPLE.read_text(encoding="utf-8") == json.dumps(spec, indent=1, ensure_ascii=False) + "\n"


def test_the_page_shows_the_file() -> None:
    _, shown = _blocks()
    assert json.loads(shown) == _example()
    assert shown == EXAMPLE.read_text(encoding="utf-8")
