"""Builders of hand-written specs for the tests that attack the loader."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import symgraph
from symgraph import SpecError

# The backends, where installed: the core attacks run without them.
try:
    import torch

    import symgraph_torch
except ImportError:
    torch = None
    symgraph_torch = None

try:
    import numpy
except ImportError:
    numpy = None

needs_torch = pytest.mark.skipif(torch is None, reason="needs torch")
needs_numpy = pytest.mark.skipif(numpy is None, reason="needs numpy")

X = {"$ref": "x"}
GETATTR = {"$object": "builtins:getattr"}


def obj(reference: str) -> dict[str, str]:
    return {"$object": reference}


def ref(name: str) -> dict[str, str]:
    return {"$ref": name}


def call(name: str, func: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"name": name, "op": "call", "func": func, "args": list(args), "kwargs": kwargs}


def method(name: str, of: str, method_name: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"name": name, "op": "method", "of": of, "method": method_name, "args": list(args), "kwargs": kwargs}


def attr(name: str, of: str, attribute: str) -> dict[str, Any]:
    return {"name": name, "op": "getattr", "of": of, "attr": attribute}


def index(name: str, of: str, key: Any) -> dict[str, Any]:
    return {"name": name, "op": "index", "of": of, "index": key}


def module_step(name: str, layer_name: str, *args: Any) -> dict[str, Any]:
    return {"name": name, "op": "module", "layer": {"$layer": layer_name}, "args": list(args), "kwargs": {}}


def const(name: str, value: Any) -> dict[str, Any]:
    """A step whose value is ``value``: ``[value, x][0]`` (a step must use an input)."""
    return call(name, obj("operator:getitem"), [value, X], 0)


def carry(name: str, reference: str) -> dict[str, Any]:
    """A step whose value is the object ``reference`` names: ``[obj, x][0]``."""
    return const(name, obj(reference))


def after(name: str, first: str, then: str) -> dict[str, Any]:
    """A step whose value is step ``then``, evaluated after step ``first``: ``[first, then][1]``."""
    return call(name, obj("operator:getitem"), [ref(first), ref(then)], 1)


def bound(owner: Any, name: str) -> dict[str, Any]:
    return {"$method": [owner, name]}


def partial(func: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"$partial": {"func": func, "args": list(args), "kwargs": kwargs}}


def layer(cls: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"class": cls, "args": list(args), "kwargs": kwargs}


def core_spec(*steps: dict[str, Any]) -> dict[str, Any]:
    """A core model of one unchecked input ``x``; the output is the last step."""
    return {
        "format": "symgraph.model",
        "version": 1,
        "model": "symgraph",
        "inputs": [{"name": "x"}],
        "steps": list(steps),
        "outputs": ref(steps[-1]["name"]),
    }


def torch_spec(layers: dict[str, Any], *steps: dict[str, Any]) -> dict[str, Any]:
    return {**core_spec(*steps), "model": "torch", "torch": {"layers": layers}}


def exec_code(canary: Path) -> str:
    return f"open({str(canary)!r}, 'w').close()"


def model_class(spec: dict[str, Any]) -> Any:
    if spec.get("model") == "torch":
        import symgraph_torch

        return symgraph_torch.SymbolicModel
    return symgraph.SymbolicModel


def save_spec(spec: dict[str, Any], folder: Path) -> Path:
    """``spec`` as a saved model's directory (no constants)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spec.json").write_text(json.dumps(spec))
    return folder


# -- checks ------------------------------------------------------------------------------
def build(spec: dict[str, Any], via: Path | None = None, allow: Any = ()) -> Any:
    """The model ``spec`` describes: from ``from_spec``, or from ``symgraph.load`` of a directory at ``via``."""
    # Warnings off: a warning turned into an error by the test settings would stop
    # a payload that runs in production, where warnings are only printed.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if via is not None:
            return symgraph.load(save_spec(spec, via), allow=allow)
        return model_class(spec).from_spec(spec, allow=allow)


def run_model(model: Any, arg: Any) -> tuple[bool, Any]:
    """``(True, result)`` when the model returns, ``(False, error)`` when it raises."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return True, model(arg)
        except Exception as exc:
            return False, exc


def assert_defeated(
    spec: dict[str, Any], *canaries: Path, arg: Any = 1.0, via: Path | None = None, call_model: bool = True
) -> None:
    """The attack does nothing: refused at load, or the model raises when called; no canary exists."""
    try:
        model = build(spec, via)
    except SpecError:
        for canary in canaries:
            assert not canary.exists(), f"refused, but only after the payload ran while loading: {canary}"
        return
    for canary in canaries:
        assert not canary.exists(), f"the payload ran while loading: {canary} was created"
    assert call_model, "loaded a spec that must be refused at load (calling it would run the payload)"
    returned, result = run_model(model, arg)
    for canary in canaries:
        assert not canary.exists(), f"the payload ran when the model was called: {canary} was created"
    assert not returned, f"the hostile model ran and returned {str(result)[:200]!r}"


def assert_state_kept(
    spec: dict[str, Any],
    arg: Any,
    read: Callable[[], Any],
    restore: Callable[[Any], None],
    via: Path | None = None,
) -> None:
    """Loading and calling the model leaves the process-wide state that ``read`` returns as it was."""
    before = read()
    try:
        try:
            model = build(spec, via)
        except SpecError:
            assert read() == before, "refused, but only after the state was changed while loading"
            return
        assert read() == before, "loading the spec changed process-wide state"
        returned, result = run_model(model, arg)
        now = read()
        assert now == before, (
            f"calling the loaded model changed process-wide state from {before!r} to {now!r} "
            f"(the model {'returned' if returned else 'raised'} {str(result)[:100]!r})"
        )
    finally:
        restore(before)
