"""Third red-team round on the loader of the symgraph format, after the second round's fixes.

The promise under test: ``symgraph.load(path)`` and ``SymbolicModel.from_spec(spec)``
run no code but the callables that the spec names and the allowlist permits, and
a spec cannot change process-wide state, neither while loading nor when the
loaded model is called on ordinary inputs.

This round enumerates every name of :data:`symgraph._allowlist.PUBLIC_MODULES`
that the allowlist resolves, and follows one permitted attribute name from each.
The second round refused *naming* numpy's class-level arrays
(``numpy.polynomial:Polynomial.domain``), but a step may still read the same
array at run time from the class, which is a permitted callable: attribute
names are checked, the values they return are not. Tests of attacks that still
work fail; that is intended. The tests after them keep what held.
"""

from __future__ import annotations

import importlib
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from symgraph import SpecError
from symgraph._allowlist import PUBLIC_MODULES, Allowlist, attribute_name_permitted
from tests.reliability.spec_builders import (
    X,
    assert_state_kept,
    attr,
    build,
    call,
    const,
    core_spec,
    method,
    needs_torch,
    obj,
    ref,
    run_model,
)

numpy = pytest.importorskip("numpy")


# -- spec builders ---------------------------------------------------------------------


# -- checks ------------------------------------------------------------------------------


# -- (1) class-level arrays read at run time -----------------------------------------------
# Naming numpy.polynomial:Polynomial.domain is refused (round 2), but the class is a
# permitted callable and "domain" a permitted attribute name: a getattr step hands
# out the very array, shared by every Polynomial made afterwards in the process.
_POLYNOMIAL_CLASSES = ["Polynomial", "Chebyshev", "Legendre", "Hermite", "HermiteE", "Laguerre"]


def _class_array_steps(cls: str, name: str) -> list[dict[str, Any]]:
    return [
        const("cls", obj(f"numpy.polynomial:{cls}")),
        attr("shared", "cls", name),
        call("y", obj("operator:setitem"), ref("shared"), 0, X),
    ]


def _class_array(cls: str, name: str) -> tuple[Callable[[], Any], Callable[[Any], None]]:
    owner = getattr(numpy.polynomial, cls)

    def read() -> Any:
        # What a new object of the class gets, anywhere in the process.
        return getattr(owner([0.0, 1.0]), name).tolist()

    def restore(saved: Any) -> None:
        getattr(owner, name)[:] = saved

    return read, restore


@pytest.mark.parametrize("name", ["domain", "window"])
@pytest.mark.parametrize("cls", _POLYNOMIAL_CLASSES)
def test_a_class_level_polynomial_array_is_not_changed_through_a_getattr_step(cls: str, name: str) -> None:
    read, restore = _class_array(cls, name)
    assert_state_kept(core_spec(*_class_array_steps(cls, name)), 5.0, read, restore)


def test_a_class_level_polynomial_domain_is_not_changed_by_a_loaded_file(tmp_path: Path) -> None:
    read, restore = _class_array("Polynomial", "domain")
    steps = [
        const("cls", obj("numpy.polynomial:Polynomial")),
        attr("shared", "cls", "domain"),
        method("y", "shared", "fill", X),
    ]
    assert_state_kept(core_spec(*steps), 3.0, read, restore, via=tmp_path / "saved")


def test_a_class_level_polynomial_domain_does_not_change_other_code_s_results() -> None:
    # The harm, with an oracle: evaluating a polynomial made after the model ran.
    expected = numpy.polynomial.Polynomial([0.0, 1.0])(0.5)
    _, restore = _class_array("Polynomial", "domain")
    saved = numpy.polynomial.Polynomial.domain.tolist()
    try:
        try:
            model = build(core_spec(*_class_array_steps("Polynomial", "domain")))
        except SpecError:
            return
        run_model(model, 0.0)
        assert numpy.polynomial.Polynomial([0.0, 1.0])(0.5) == expected, "a later Polynomial evaluates differently"
    finally:
        restore(saved)


@needs_torch
def test_a_named_tuple_class_s_field_defaults_are_not_changed() -> None:
    # A smaller case of the same hole: a class attribute that is a dict, shared by the process.
    import torch.nn.utils.rnn as rnn

    steps = [
        const("cls", obj("torch.nn.utils.rnn:PackedSequence")),
        attr("defaults", "cls", "_field_defaults"),
        call("y", obj("operator:setitem"), ref("defaults"), "data", X),
    ]
    assert_state_kept(
        core_spec(*steps),
        "HACKED",
        lambda: dict(rnn.PackedSequence._field_defaults),
        lambda saved: (rnn.PackedSequence._field_defaults.clear(), rnn.PackedSequence._field_defaults.update(saved)),
    )


# -- (2) what held --------------------------------------------------------------------------
def _accepted() -> dict[str, Any]:
    """Every name of the public modules that the default allowlist resolves."""
    allowlist = Allowlist()
    found: dict[str, Any] = {}
    for module_name in sorted(PUBLIC_MODULES):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue  # numpy.emath and the like, on versions without them
        for name in dir(module):
            try:
                found[f"{module_name}:{name}"] = allowlist.resolve(f"{module_name}:{name}", "the test")
            except SpecError:
                continue
    return found


_REACHES_CODE = (types.ModuleType, types.FrameType, types.CodeType, types.TracebackType)


def test_no_permitted_name_hands_out_a_module_or_frame_through_one_attribute() -> None:
    accepted = _accepted()
    assert "numpy:mean" in accepted and "numpy:load" not in accepted  # the scan sees the allowlist
    reached = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for reference, value in accepted.items():
            for name in dir(value):
                if not attribute_name_permitted(name):
                    continue
                try:
                    found = getattr(value, name)
                except Exception:
                    continue
                if isinstance(found, _REACHES_CODE) or (type(found) is dict and "__builtins__" in found):
                    reached.append(f"{reference}.{name}")
    assert reached == []


def test_the_generator_of_numpy_printoptions_does_not_change_the_print_options() -> None:
    # printoptions() is a context manager whose .gen runs set_printoptions when sent to.
    steps = [call("cm", obj("numpy:printoptions"), precision=X), attr("g", "cm", "gen"), method("y", "g", "send", None)]
    assert_state_kept(
        core_spec(*steps),
        1,
        lambda: (numpy.get_printoptions()["precision"], repr(numpy.array([1.23456]))),
        lambda saved: numpy.set_printoptions(precision=saved[0]),
    )


def test_a_model_cannot_name_the_class_level_array_itself() -> None:
    with pytest.raises(SpecError):
        build(core_spec(call("y", obj("operator:setitem"), obj("numpy.polynomial:Polynomial.domain"), 0, X)))


# -- valid twin: the harness builds specs the loader accepts ---------------------------------
def test_twin_a_class_attribute_read_at_run_time_loads_and_runs() -> None:
    spec = core_spec(const("cls", obj("numpy.polynomial:Polynomial")), attr("y", "cls", "basis_name"))
    assert build(spec)(1.0) == numpy.polynomial.Polynomial.basis_name
