"""Plain-Python models that ordinary code builds, saved and loaded: each case once failed.

The oracle is the same code run eagerly on new values.
"""

from __future__ import annotations

import zipfile

import pytest

import symgraph


def test_bound_methods_and_builtin_methods_round_trip(tmp_path):
    words = symgraph.CustomInput(["b", "A"])
    model = symgraph.SymbolicModel(
        words,
        [
            symgraph.add_to_graph(", ".join, words),
            symgraph.add_to_graph(sorted, words, key=str.lower),
            symgraph.add_to_graph(dict.fromkeys, words),
            symgraph.add_to_graph(int.from_bytes, symgraph.add_to_graph(str.encode, words[0]), "big"),
        ],
    )
    loaded = symgraph.load(symgraph.save(model, tmp_path / "m.zip"))
    new = ["Y", "x", "z"]
    eager = [", ".join(new), sorted(new, key=str.lower), dict.fromkeys(new), int.from_bytes(new[0].encode(), "big")]
    assert loaded(new) == eager == model(new)


def test_a_method_loading_would_refuse_is_refused_when_saving(tmp_path):
    template = symgraph.CustomInput("Hello {name}")
    model = symgraph.SymbolicModel(template, template.format(name="Ann"))
    with pytest.raises(symgraph.SaveError, match=r"step 'GetAttr_1'.*'format' is refused when loading"):
        symgraph.save(model, tmp_path / "m.zip")
    assert list(tmp_path.iterdir()) == []


def test_a_lone_surrogate_round_trips(tmp_path):
    name = symgraph.CustomInput("a")
    model = symgraph.SymbolicModel(name, name + "\udcff")  # os.fsdecode of a name that is not UTF-8
    loaded = symgraph.load(symgraph.save(model, tmp_path / "m.zip"))
    assert loaded("b") == "b\udcff" == model("b")


def test_overwrite_replaces_only_saved_models(tmp_path):
    x = symgraph.CustomInput(1)
    model = symgraph.SymbolicModel(x, x + 1)
    results = tmp_path / "results.csv"
    results.write_text("a,b\n")
    with pytest.raises(FileExistsError, match="not a saved model"):
        symgraph.save(model, results, overwrite=True)
    assert results.read_text() == "a,b\n"
    saved = symgraph.save(model, tmp_path / "m.zip")
    symgraph.save(symgraph.SymbolicModel(x, x * 10), saved, overwrite=True)
    assert symgraph.load(saved)(3) == 30


def test_a_zip_of_the_saved_directory_is_named_as_such(tmp_path):
    x = symgraph.CustomInput(1)
    folder = symgraph.save(symgraph.SymbolicModel(x, x + 1), tmp_path / "model")
    with zipfile.ZipFile(tmp_path / "wrapped.zip", "w") as archive:
        for file in folder.rglob("*"):
            archive.write(file, f"model/{file.relative_to(folder)}")
    with pytest.raises(symgraph.SpecError, match=r"model/spec\.json.*zip of the saved directory"):
        symgraph.load(tmp_path / "wrapped.zip")


def test_a_saved_model_loads_after_a_restart_importing_only_symgraph(tmp_path):
    import json
    import math
    import operator
    import subprocess
    import sys

    text = symgraph.CustomInput("b a b")
    scale = symgraph.CustomInput(2.0)
    words = text.split()
    counts = {"n": symgraph.add_to_graph(len, words), "first": words[0]}
    norm = symgraph.add_to_graph(math.hypot, scale, 3.0)
    model = symgraph.SymbolicModel(
        {"text": text, "scale": scale},
        {
            "counts": counts["n"],
            "first": counts["first"],
            "norm": norm,
            "sum": symgraph.add_to_graph(operator.add, scale, 1),
        },
    )
    saved = symgraph.save(model, tmp_path / "model.zip")
    code = (
        "import json, sys, symgraph\n"
        "assert not any(m in sys.modules for m in ('numpy', 'torch')), 'only symgraph is imported'\n"
        f"model = symgraph.load({str(saved)!r})\n"
        "print(json.dumps(model(text='c d c e', scale=4.0)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert (
        json.loads(done.stdout)
        == model(text="c d c e", scale=4.0)
        == {
            "counts": 4,
            "first": "c",
            "norm": math.hypot(4.0, 3.0),
            "sum": 5.0,
        }
    )
