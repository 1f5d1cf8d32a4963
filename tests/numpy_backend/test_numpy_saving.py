"""Saving numpy pipelines in the symgraph format and loading them back, without pickle.

The oracle is the original model and the same pipeline run eagerly on new random
inputs: the loaded model must give the same values of the same types and dtypes,
from a directory, from a zip, in this process with pickle disabled, and in a fresh
process that imports only symgraph and numpy.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import symgraph
import symgraph_numpy
from symgraph import InputError, SaveError, SymbolicModel
from tests.numpy_backend.conftest import assert_same

ROOT = Path(__file__).resolve().parents[2]

# Constants the pipeline holds: an array, a fancy index, numpy scalars, dtypes, datetimes.
WEIGHT = np.random.default_rng(11).normal(size=(4, 3))
BIAS = np.array([0.25, -0.5, 1.0], dtype=np.float32)
INDEX = np.array([2, 0, 1, 2, 2])
THRESHOLD = np.float32(0.125)
ZERO = np.float32(0)
MINIMUM = np.int64(3)
START = np.datetime64("2024-02-29T12:00:00", "s")
STEP = np.timedelta64(90, "m")
SMALL = np.dtype("uint8")


def pipeline(x: Any, counts: Any, stamps: Any) -> dict[str, Any]:
    z = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-6)
    h = np.clip(z @ WEIGHT + BIAS, -1.5, 1.5).astype(np.float32)
    mask = h > THRESHOLD
    picked = np.where(mask, h, ZERO)
    later = stamps + STEP
    return {
        "h": h,
        "total": h.sum(axis=1, dtype=np.float64),
        "mean": counts.mean(dtype=np.float32),
        "cumsum": counts.cumsum(dtype=np.int32),
        "prod": np.prod(counts % 5 + 1, dtype=np.int64),
        "fancy": picked[:, INDEX],
        "masked": h[mask],
        "big": counts[counts > MINIMUM],
        "nonzero": np.count_nonzero(mask, axis=0),
        "small": counts.astype(SMALL),
        "later": later,
        "after": later > START,
        "minutes": (later - START).astype("timedelta64[m]"),
        "top": h.max(),
        "argmax": picked.argmax(axis=1),
        "scaled": x[::2, 1:3] * np.float64(2.5),
    }


def new_inputs(seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 9))
    stamps = START + rng.integers(-10_000, 10_000, size=int(rng.integers(1, 5))).astype("timedelta64[s]")
    return {"x": rng.normal(size=(n, 4)), "counts": rng.integers(0, 9, size=n + 2), "stamps": stamps}


def build() -> SymbolicModel:
    example = new_inputs(0)
    inputs = {name: symgraph.CustomInput(value) for name, value in example.items()}
    return SymbolicModel(inputs, pipeline(**inputs))


@pytest.fixture
def model() -> SymbolicModel:
    return build()


@pytest.fixture
def no_pickle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any unpickling, and any numpy.load, fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("loading a saved model unpickled or called numpy.load")

    for name in ("loads", "load", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(np, "load", refuse)


def test_the_pipeline_records_what_eager_numpy_computes(model: SymbolicModel) -> None:
    # The oracle of the tests below: the original model is faithful.
    for seed in (1, 2):
        data = new_inputs(seed)
        assert_same(model(**data), pipeline(**data))


@pytest.mark.parametrize("name", ["saved", "saved.zip"])
def test_saved_pipelines_load_and_match(model: SymbolicModel, tmp_path: Path, name: str, no_pickle: None) -> None:
    path = symgraph.save(model, tmp_path / name)
    if name.endswith(".zip"):
        assert path.is_file()
    else:
        names = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
        assert "spec.json" in names and any(n.startswith("arrays/") and n.endswith(".npy") for n in names)
    loaded = symgraph.load(path)
    assert type(loaded) is SymbolicModel
    for seed in (3, 4, 5):
        data = new_inputs(seed)
        expected = pipeline(**data)
        assert_same(loaded(**data), expected)
        assert_same(loaded.interpret(**data), expected)
        assert_same(loaded(**data), model(**data))


def test_to_spec_through_json_and_its_constants(model: SymbolicModel, no_pickle: None) -> None:
    spec = json.loads(json.dumps(model.to_spec(), allow_nan=False))
    constants = model.spec_constants()
    # The arrays are stored as files (constants), the scalars and dtypes inline.
    assert set(constants) == set(spec["constants"])
    for key, value in constants.items():
        assert type(value) is np.ndarray
        assert spec["constants"][key] == {"codec": "numpy", "dtype": value.dtype.str, "shape": list(value.shape)}
    assert any(np.array_equal(v, WEIGHT) for v in constants.values())
    assert any(np.array_equal(v, INDEX) for v in constants.values())
    loaded = SymbolicModel.from_spec(spec, constants)
    for seed in (6, 7):
        data = new_inputs(seed)
        assert_same(loaded(**data), pipeline(**data))


@pytest.mark.parametrize("name", ["saved", "saved.zip"])
def test_the_input_check_survives(model: SymbolicModel, tmp_path: Path, name: str) -> None:
    loaded = symgraph.load(symgraph.save(model, tmp_path / name))
    assert loaded.check_inputs is True
    good = new_inputs(8)
    wrong = [
        ("x", good["x"][0]),  # one axis too few
        ("x", good["x"][None]),  # one too many
        ("counts", good["counts"].astype(np.float64)),  # another dtype kind
        ("stamps", good["stamps"].astype("datetime64[ms]")),  # another datetime unit
    ]
    for key, value in wrong:
        data = {**good, key: value}
        with pytest.raises(InputError, match=key) as original:
            model(**data)
        with pytest.raises(InputError, match=key) as reloaded:
            loaded(**data)
        assert str(reloaded.value) == str(original.value)


def test_an_exact_shape_check_survives(tmp_path: Path) -> None:
    x = symgraph.CustomInput(np.zeros((2, 3)))
    model = SymbolicModel(x, x.reshape(x.shape[0] * x.shape[1]) * 2)
    loaded = symgraph.load(symgraph.save(model, tmp_path / "exact.zip"))
    good = np.arange(6.0).reshape(2, 3)
    assert_same(loaded(good), model(good))
    for bad in (np.zeros((3, 2)), np.zeros((2, 4))):
        with pytest.raises(InputError) as original:
            model(bad)
        with pytest.raises(InputError) as reloaded:
            loaded(bad)
        assert str(reloaded.value) == str(original.value)


def test_check_inputs_off_survives(tmp_path: Path) -> None:
    x = symgraph.CustomInput(np.zeros((2, 3)))
    model = SymbolicModel(x, x.sum(axis=-1), check_inputs=False)
    loaded = symgraph.load(symgraph.save(model, tmp_path / "off"))
    assert loaded.check_inputs is False
    flat = np.arange(4.0)
    assert_same(loaded(flat), model(flat))


@pytest.mark.parametrize("where", ["constant", "input"])
def test_object_arrays_are_refused(where: str, tmp_path: Path) -> None:
    if where == "constant":
        x = symgraph.CustomInput(np.zeros(2))
        model = SymbolicModel(x, x * np.array([1, 2], dtype=object))
        assert model(np.array([3.0, 4.0])).tolist() == [3.0, 8.0]
    else:
        x = symgraph.CustomInput(np.array([1, "a"], dtype=object))
        model = SymbolicModel(x, x[::-1])
        assert model(np.array([3, "b"], dtype=object)).tolist() == ["b", 3]
    with pytest.raises(SaveError, match="object") as info:
        model.to_spec()
    assert str(info.value).startswith("cannot save this model in the symgraph format")
    for name in ("m", "m.zip"):
        with pytest.raises(SaveError):
            symgraph.save(model, tmp_path / name)
        assert not (tmp_path / name).exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "constant",
    [
        np.arange(6, dtype=np.int16).reshape(2, 3),
        np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        np.arange(18.0).reshape(3, 6)[::2, ::-2],
        np.array([[True, False, True]]),
        np.array([[1 + 2j, -3j, 0]], dtype=np.complex64),
        np.array([["2024-01-01", "2025-06-30", "NaT"]], dtype="datetime64[D]"),
        np.array([[-5, 0, 7]], dtype="timedelta64[ms]"),
        np.array([[b"ab", b"c", b""]]),
        np.array([["x", "y\u00e9", ""]]),
        np.full((2, 3), np.nan, dtype=np.float16),
        np.array([[2**63, 0, 1]], dtype=np.uint64),
        np.zeros((0, 3), dtype=">f4"),
    ],
    ids=[
        "int16",
        "fortran",
        "strided",
        "bool",
        "complex",
        "datetime",
        "timedelta",
        "bytes",
        "unicode",
        "nan-f16",
        "uint64",
        "empty-big-endian",
    ],
)
def test_array_constants_of_many_dtypes_round_trip(constant: Any, tmp_path: Path, no_pickle: None) -> None:
    def stack(v: Any) -> Any:
        return np.concatenate([constant, v[None, :]])

    x = symgraph.CustomInput(np.zeros(3, dtype=constant.dtype))
    model = SymbolicModel(x, stack(x))
    flat = constant.reshape(-1)[::-1]
    value = flat[:3].copy() if flat.size >= 3 else np.ones(3, dtype=constant.dtype)
    for name in ("c", "c.zip"):
        loaded = symgraph.load(symgraph.save(model, tmp_path / name))
        assert_same(loaded(value), stack(value))
        assert_same(loaded(value), model(value))


def test_a_fresh_process_loads_and_runs_the_saved_model(model: SymbolicModel, tmp_path: Path) -> None:
    symgraph.save(model, tmp_path / "model.zip")
    data = new_inputs(9)
    for key, value in data.items():
        np.save(tmp_path / f"in_{key}.npy", value, allow_pickle=False)
    code = textwrap.dedent(
        """
        import json, sys
        from pathlib import Path
        import numpy as np
        import symgraph

        folder = Path(sys.argv[1])
        model = symgraph.load(folder / "model.zip")
        inputs = {k: np.load(folder / f"in_{k}.npy", allow_pickle=False) for k in ("x", "counts", "stamps")}
        out = model(**inputs)
        kinds = {}
        for key, value in out.items():
            np.save(folder / f"out_{key}.npy", np.asarray(value), allow_pickle=False)
            kinds[key] = type(value).__name__
        print(json.dumps({"kinds": kinds, "torch": "torch" in sys.modules, "pickle_used": False}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    expected = model(**data)
    assert set(report["kinds"]) == set(expected)
    for key, value in expected.items():
        got = np.load(tmp_path / f"out_{key}.npy", allow_pickle=False)
        assert report["kinds"][key] == type(value).__name__
        assert got.dtype == np.asarray(value).dtype
        np.testing.assert_array_equal(got, value)
    assert_same(model(**data), pipeline(**data))
    assert report["torch"] is False, "loading a numpy model imported torch"


def test_ufunc_methods_round_trip(tmp_path):
    x = symgraph_numpy.Input((None, 3))
    model = symgraph.SymbolicModel(
        x,
        {
            "reduce": np.add.reduce(x, axis=1),
            "accumulate": np.maximum.accumulate(x, axis=0),
            "outer": np.multiply.outer(x[0], x[1]),
        },
    )
    loaded = symgraph.load(symgraph.save(model, tmp_path / "m.zip"))
    data = np.random.default_rng(3).normal(size=(4, 3))
    eager = {
        "reduce": np.add.reduce(data, axis=1),
        "accumulate": np.maximum.accumulate(data, axis=0),
        "outer": np.multiply.outer(data[0], data[1]),
    }
    assert_same(loaded(data), eager)
    assert_same(model(data), eager)
