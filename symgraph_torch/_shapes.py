"""Shapes a model gives for other input sizes, found without computing anything.

The model's steps run on PyTorch's ``meta`` device: its parameters and buffers
are swapped for meta tensors of the same shapes and dtypes with
:func:`torch.func.functional_call` (no weight is copied; a buffer of one number,
a counter that a layer reads as a number, for a copy), and the inputs are
meta tensors, so every step works out its output's shape and dtype and
allocates nothing. A symbolic model is called as a call calls it (its hooks and
a subclass's ``forward`` run), and its plan runs through the reference
interpreter, whatever its executor, after its inputs are checked as a call does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils import _pytree

from symgraph.plugin import Step, evaluation_plan, interpret
from symgraph_torch._model import DetachedSymbolicModel
from symgraph_torch._tensor import ShapeCheck

__all__ = ["infer_shapes", "infer_step_shapes"]

_DATA_NOTE = (
    "symgraph: infer_shapes runs the steps on meta tensors, which hold no data; "
    "a step that needs data (.item(), nonzero, a boolean mask) cannot run there"
)
_DEVICE_NOTE = (
    "symgraph: infer_shapes swaps the model's parameters and buffers for meta tensors; "
    "a tensor a layer keeps in a plain attribute stays where it is: register it with register_buffer"
)


def _meta_hint(exc: Exception) -> str | None:
    """A note on why a step failed on the meta device where it would run on real tensors, if it can be told."""
    message = str(exc)
    if isinstance(exc, NotImplementedError):
        return _DATA_NOTE
    if "meta" in message and "device" in message:
        return _DEVICE_NOTE
    if "meta" in message:
        return _DATA_NOTE
    return None


def infer_shapes(model: nn.Module, /, *inputs: Any, **keyword_inputs: Any) -> Any:
    """The shapes ``model`` returns for inputs of the given shapes, computed on the ``meta`` device.

    Nothing is computed and no memory is allocated for data or weights: the
    steps run on meta tensors, which have shapes and dtypes only. It answers what
    ``model(*real_inputs)`` would return shapes of, or raises what that call
    would raise for sizes it cannot take, with a note naming the step.

    Args:
        model: A ``SymbolicModel`` (or detached one), or any other ``nn.Module``.
        *inputs: One per model input, as the model is called: a shape (a tuple of
            ints or a ``torch.Size``) or a tensor, whose shape and dtype are taken
            (its data is not read). A shape gets the dtype the model expects for
            that input, ``torch.get_default_dtype()`` for a module that is not
            symbolic. Inputs that are not tensors are passed as they are.
        **keyword_inputs: The same, for a model built with a dict of inputs.

    Returns:
        The model's output with every tensor replaced by its ``torch.Size``, in
        the structure the model returns; other values as computed.

    Raises:
        symgraph.InputError: An input does not fit the model's input check.
        Exception: Whatever the step that cannot take these sizes raises on the
            meta device (a ``RuntimeError`` for a shape mismatch), with a note
            naming the step.

    Only what depends on sizes and dtypes is found: meta tensors hold no values,
    so an error that depends on them (an index out of range, in an embedding
    lookup of ``torch.arange(n)`` say) is not raised here, while the real call
    raises it. The model's parameters are swapped in place for the duration of
    the call, as ``torch.func.functional_call`` does: do not call the same model
    from another thread meanwhile.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from symgraph_torch import Input, SymbolicModel
        >>> images = Input((3, None, None))
        >>> x = nn.Conv2d(3, 8, 3, stride=2)(images)
        >>> model = SymbolicModel(images, nn.Flatten()(x))
        >>> infer_shapes(model, (5, 3, 64, 48))
        torch.Size([5, 5704])
        >>> model(torch.rand(5, 3, 64, 48)).shape
        torch.Size([5, 5704])
    """
    return _run(model, inputs, keyword_inputs, None)


def infer_step_shapes(model: DetachedSymbolicModel, /, *inputs: Any, **keyword_inputs: Any) -> dict[str, Any]:
    """The shape of every row of ``model.summary()`` for inputs of the given shapes, on the ``meta`` device.

    Like :func:`infer_shapes`, but for every input and every step, keyed by its
    name in the summary, in the summary's order: what the summary's "Output
    shape" column would show for this call, with the batch and every other size
    known. Values that are not tensors are given as computed.

    Args:
        model: A ``SymbolicModel`` or ``DetachedSymbolicModel``.
        *inputs: As for :func:`infer_shapes`.
        **keyword_inputs: As for :func:`infer_shapes`.

    Returns:
        A dict from row name to the ``torch.Size`` of that row's output (for a
        layer that returns several tensors, its output with each replaced by
        its ``torch.Size``).

    Raises:
        TypeError: ``model`` is not a symbolic model.
        symgraph.InputError: An input does not fit the model's input check.
        Exception: As for :func:`infer_shapes`.

    Example:
        >>> from torch import nn
        >>> from symgraph_torch import Input, SymbolicModel
        >>> tokens = Input((None, 4))
        >>> model = SymbolicModel(tokens, nn.Linear(4, 2)(tokens).sum(1))
        >>> infer_step_shapes(model, (3, 10, 4))
        {'Input_1': torch.Size([3, 10, 4]), 'Linear_1': torch.Size([3, 10, 2]), 'wrap(sum)_1': torch.Size([3, 2])}
    """
    if not isinstance(model, DetachedSymbolicModel):
        raise TypeError(
            f"infer_step_shapes needs a SymbolicModel, got {type(model).__name__}; infer_shapes takes any nn.Module"
        )
    rows: dict[str, Any] = {}
    _run(model, inputs, keyword_inputs, rows)
    return rows


def _run(model: nn.Module, inputs: Sequence[Any], keyword_inputs: dict[str, Any], rows: dict[str, Any] | None) -> Any:
    if not isinstance(model, nn.Module):
        raise TypeError(f"infer_shapes needs an nn.Module, got {type(model).__name__}")
    # One name per tensor: functional_call gives tied weights (one tensor under several names) the same one.
    state = {name: _stand_in(tensor) for name, tensor in model.named_parameters()}
    state.update((name, _stand_in(tensor, buffer=True)) for name, tensor in model.named_buffers())
    if isinstance(model, DetachedSymbolicModel):
        args, kwargs = _meta_arguments(model, inputs, keyword_inputs)
        # The model is called as the real call calls it, so that its hooks and a
        # subclass's own forward run; only the plan's run is replaced, for this call.
        vars(model)["_replay"] = _PlanOnMeta(model, rows)
        try:
            with torch.no_grad():
                result = torch.func.functional_call(model, state, args, kwargs)
        finally:
            del vars(model)["_replay"]
    else:
        dtype = torch.get_default_dtype()
        args = tuple(_meta_value(value, dtype) for value in inputs)
        kwargs = {key: _meta_value(value, dtype) for key, value in keyword_inputs.items()}
        with torch.no_grad():
            result = torch.func.functional_call(model, state, args, kwargs)
    return _shapes_of(result)


def _stand_in(tensor: torch.Tensor, buffer: bool = False) -> torch.Tensor:
    """What a parameter or buffer is swapped for: a meta tensor, or a copy of a buffer holding one number.

    A one-number buffer is a counter that layers read as a number, such as
    ``BatchNorm``'s ``num_batches_tracked`` with ``momentum=None``; a meta tensor
    has no number to read. The copy is on the CPU, whose one-number tensors
    combine with tensors of any device, and the model's own buffer is not changed.
    """
    if buffer and tensor.ndim == 0:
        return tensor.detach().to("cpu", copy=True)
    return torch.empty_like(tensor, device="meta")


def _meta_arguments(
    model: DetachedSymbolicModel, inputs: Sequence[Any], keyword_inputs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The call's arguments with shapes and tensors made meta tensors, each of the dtype its input expects.

    Arguments that match no input are left as they are, for the call to refuse as the real call does.
    """
    specs = model.plan.inputs
    names = getattr(type(model), "_symgraph_parameters", None) or model.plan.input_keys or ()
    position = {name: i for i, name in enumerate(names)}

    def dtype_of(index: int | None) -> torch.dtype | None:
        return _expected_dtype(specs[index].check) if index is not None and index < len(specs) else None

    args = tuple(_meta_value(value, dtype_of(i)) for i, value in enumerate(inputs))
    kwargs = {key: _meta_value(value, dtype_of(position.get(key))) for key, value in keyword_inputs.items()}
    return args, kwargs


class _PlanOnMeta:
    """The model's ``_replay`` for one call: checks the inputs as a call does, then runs the plan's steps.

    The steps run through the reference interpreter, whatever the model's executor.
    """

    def __init__(self, model: DetachedSymbolicModel, rows: dict[str, Any] | None) -> None:
        self.model = model
        self.rows = rows

    def __call__(self, values: Sequence[Any]) -> Any:
        model = self.model
        if model.check_inputs:
            # Against the swapped parameters: the input check follows their (meta) device.
            model._program.check(values)
        plan = evaluation_plan(model, model.plan)
        rows = self.rows
        on_step = None
        if rows is not None:
            for spec, value in zip(plan.inputs, values, strict=True):
                rows[spec.name] = _shapes_of(value)

            def on_step(step: Step, value: Any) -> None:
                if not step.op.is_guard:
                    rows[step.name] = _shapes_of(value)

        try:
            return interpret(plan, values, on_step=on_step)
        except Exception as exc:
            hint = _meta_hint(exc)
            if hint is not None:
                exc.add_note(hint)
            raise


def _expected_dtype(check: Callable[[Any], None] | None) -> torch.dtype | None:
    """The dtype a model input expects now (after ``model.double()``, say); ``None`` if it is not a tensor input."""
    if not isinstance(check, ShapeCheck):
        return None
    expected = check.dtype
    if expected is None:
        return torch.get_default_dtype()
    anchor = check._anchor_tensor()
    converted = anchor is not None and anchor.dtype is not check.anchor_dtype
    if converted and anchor is not None and expected.is_floating_point and anchor.dtype.is_floating_point:
        return anchor.dtype  # converted in place (model.double()), as the input check follows it
    return expected


def _meta_value(value: Any, dtype: torch.dtype | None) -> Any:
    """A meta tensor for a shape or a tensor; anything else as it is."""
    if isinstance(value, torch.Tensor):
        return torch.empty_like(value, device="meta")
    if dtype is not None and _is_shape(value):
        return torch.empty(tuple(value), dtype=dtype, device="meta")
    return value


def _is_shape(value: Any) -> bool:
    return isinstance(value, (tuple, list, torch.Size)) and all(type(size) is int and size >= 0 for size in value)


def _shape_of(value: Any) -> Any:
    return value.shape if isinstance(value, torch.Tensor) else value


def _shapes_of(result: Any) -> Any:
    return _pytree.tree_map(_shape_of, result)
