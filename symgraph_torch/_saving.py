"""How ``symgraph.save`` stores torch models: layers as constructor calls, tensors with safetensors.

A layer is stored as its class's import path and the constructor arguments,
read back from the module's attributes (``Conv2d`` keeps ``in_channels``,
``kernel_size``, ``padding``...), or given by a spec function registered with
:func:`register_layer_spec` for layers that do not keep them. Before a layer is
written, it is rebuilt from what was read, on the ``meta`` device, and
compared with the original: its class, every attribute, its submodules and
the names and shapes of its tensors. A layer that differs, or carries hooks
(pruning, parametrizations, weight norm), is refused with its name rather
than saved as another computation.

Every tensor (parameters, buffers, non-persistent ones too, and the graph's
tensor constants) goes to ``tensors.safetensors`` under the name
``model.named_parameters()`` and ``named_buffers()`` give it, so ``state_dict``
keys are unchanged; a tensor shared by two names (tied weights) is stored once
and shared again after loading. Loading builds the layers on the ``meta``
device and assigns the loaded tensors, so it neither initialises weights
it then overwrites nor draws from the global random generator.
"""

from __future__ import annotations

import collections
import inspect
import json
import math
import struct
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from symgraph import SaveError, SpecError
from symgraph._text import describe, escape
from symgraph.plugin import (
    CheckCodec,
    ConstantCodec,
    DecodeContext,
    EncodeContext,
    Files,
    ModelCodec,
    OpCodec,
    Plan,
    ValueCodec,
    attribute_name_permitted,
    decode_model,
    decode_value,
    encode_model,
    encode_value,
    register_allowed,
    register_check_codec,
    register_constant_codec,
    register_home_check,
    register_model_codec,
    register_op_codec,
    register_reference_home,
    register_value_codec,
)
from symgraph_torch import useful_layers
from symgraph_torch._compat import DunderCall
from symgraph_torch._model import DetachedSymbolicModel, SymbolicModel
from symgraph_torch._policy import distinct_modules, distinct_tensors, read_module
from symgraph_torch._tensor import ShapeCheck
from symgraph_torch._tracing import ModuleCall, NestedModelCall

__all__ = ["LayerSpec", "SafetensorsCodec", "register_layer_spec"]

#: ``fn(module) -> (args, kwargs)``: the constructor arguments that rebuild ``module``.
LayerSpec = Callable[[nn.Module], tuple[list[Any], dict[str, Any]]]

_LAYER_SPECS: dict[type, LayerSpec] = {}

# Attributes every nn.Module sets on itself; compared on their own terms, not as arguments.
_INTERNALS = frozenset(vars(nn.Module()))
_HOOKS = tuple(sorted(name for name in _INTERNALS if "hook" in name))
_SKIPPED_ARGUMENTS = frozenset({"device", "dtype"})

# Caches a layer derives from its parameters (the RNNs' flat weights), rebuilt after loading.
_DERIVED = frozenset({"_flat_weights", "_flat_weight_refs"})

# safetensors' names of the dtypes it stores.
_SAFETENSORS_DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}
_DTYPE_SIZES = {name: torch.empty(0, dtype=dtype).element_size() for dtype, name in _SAFETENSORS_DTYPES.items()}
_DTYPES_BY_NAME = {str(dtype).removeprefix("torch."): dtype for dtype in _SAFETENSORS_DTYPES}
# dtypes, layouts and memory formats, by the name torch exports them under.
_TORCH_CONSTANTS = {
    name: value
    for name in dir(torch)
    if not name.startswith("_")
    and isinstance(value := getattr(torch, name, None), (torch.dtype, torch.layout, torch.memory_format))
}
_TORCH_CONSTANT_NAMES = {value: name for name, value in sorted(_TORCH_CONSTANTS.items(), reverse=True)}
_TENSORS_FILE = "tensors.safetensors"
# The modules of torch's quantized layers, which keep packed weights that are not tensors.
_QUANTIZED = ("torch.ao.nn.quantized", "torch.nn.quantized", "torch.ao.nn.intrinsic.quantized")
#: The most models nested in one another that a spec may hold.
MAX_NESTING = 32
#: The most torch calls one layer's constructor may make while loading.
MAX_TENSOR_CALLS = 50_000
#: The most bytes of weights ``from_spec`` initialises for one layer when no constants are given.
MAX_FRESH_BYTES = 2**32
_MAX_HEADER = 100 * 2**20


def register_layer_spec(layer_type: type[nn.Module], spec: LayerSpec) -> None:
    """Tell ``symgraph.save`` how to read the constructor arguments of ``layer_type`` back from a layer.

    Needed for layers that do not keep their arguments as attributes of the
    same names. What ``spec`` returns is checked: the layer is rebuilt from it
    and compared with the original before anything is saved. Loading needs the
    class permitted (``symgraph.load(path, allow=[layer_type])``) unless it is
    torch's.

    Args:
        layer_type: The layer class (exactly this class, not its subclasses).
        spec: ``spec(layer) -> (args, kwargs)``, values the spec format stores
            (numbers, strings, tuples, torch dtypes, other layers).

    Example:
        >>> import torch, symgraph
        >>> from torch import nn
        >>> from symgraph_torch import Input, SymbolicModel, register_layer_spec
        >>> class Scale(nn.Module):
        ...     def __init__(self, factor):
        ...         super().__init__()
        ...         self.k = factor  # not kept under its argument's name
        ...     def forward(self, x):
        ...         return x * self.k
        >>> import sys, types  # Scale lives in a module of your project; here one made on the spot
        >>> sys.modules["my_layers"] = types.SimpleNamespace(Scale=Scale)
        >>> Scale.__module__ = "my_layers"
        >>> register_layer_spec(Scale, lambda layer: ([layer.k], {}))
        >>> x = Input((3,))
        >>> spec = SymbolicModel(x, Scale(2.0)(x)).to_spec()
        >>> spec["torch"]["layers"]["Scale_1"]["args"]
        [2.0]
    """
    if not (isinstance(layer_type, type) and issubclass(layer_type, nn.Module)):
        raise TypeError(f"register_layer_spec() needs an nn.Module class, got {describe(layer_type)}")
    if not callable(spec):
        raise TypeError(f"register_layer_spec() needs a callable spec, got {describe(spec)}")
    _LAYER_SPECS[layer_type] = spec


# -- tensors -------------------------------------------------------------------------
class SafetensorsCodec(ConstantCodec):
    """torch tensors, all in one ``tensors.safetensors`` file, read without pickle.

    Example:
        >>> SafetensorsCodec().describe(torch.zeros(2, 3))
        {'dtype': 'float32', 'shape': [2, 3]}
    """

    name = "torch"
    types = (torch.Tensor,)

    def describe(self, value: Any) -> dict[str, Any]:
        tensor: torch.Tensor = value
        if tensor.layout is not torch.strided or tensor.is_quantized or tensor.device.type == "meta":
            kind = "quantized" if tensor.is_quantized else str(tensor.layout).removeprefix("torch.")
            raise TypeError(
                f"a {kind} tensor on {tensor.device}, which safetensors does not store; save with torch.save"
            )
        if tensor.dtype not in _SAFETENSORS_DTYPES:
            raise TypeError(f"a {tensor.dtype} tensor, which safetensors does not store; save with torch.save")
        return {"dtype": str(tensor.dtype).removeprefix("torch."), "shape": list(tensor.shape)}

    def copy(self, value: Any) -> Any:
        return value.detach().clone()

    def check(self, value: Any, entry: Mapping[str, Any], where: str) -> None:
        if not isinstance(value, torch.Tensor):
            raise SpecError(f"{where}: expected a torch tensor, got {type(value).__name__}")
        super().check(value, entry, where)

    def write(self, values: Mapping[str, Any]) -> dict[str, tuple[str, bytes]]:
        from safetensors.torch import save

        # Copies: safetensors refuses tensors that share memory (views, tied weights
        # stored under one key each); each key gets its own contiguous CPU tensor.
        data = save({key: t.detach().to("cpu", copy=True).contiguous() for key, t in values.items()})
        return {key: (_TENSORS_FILE, data) for key in values}

    def read(self, entries: Mapping[str, Mapping[str, Any]], files: Files) -> dict[str, Any]:
        from safetensors.torch import load

        names = {entry["file"] for entry in entries.values()}
        out: dict[str, Any] = {}
        for name in sorted(names):
            size = files.size(name)
            data = files.read(name)
            header = _safetensors_header(data, size, name)
            for key, entry in entries.items():
                if entry["file"] != name:
                    continue
                where = f"spec.constants[{escape(repr(key))}]"
                found = header.get(key)
                if type(found) is not dict:
                    raise SpecError(f"{where}: {name} holds no tensor {escape(repr(key))}")
                dtype = _DTYPES_BY_NAME.get(entry.get("dtype"))  # type: ignore[arg-type]
                if (
                    dtype is None
                    or _SAFETENSORS_DTYPES[dtype] != found.get("dtype")
                    or found.get("shape") != entry.get("shape")
                ):
                    raise SpecError(
                        f"{where}: {name} holds a {escape(repr(found.get('dtype')))} tensor of shape "
                        f"{escape(repr(found.get('shape')))}, the spec says {escape(repr(entry.get('dtype')))} "
                        f"{escape(repr(entry.get('shape')))}"
                    )
            try:
                tensors = load(data)
            except Exception as exc:  # safetensors raises its own error types
                raise SpecError(f"{name} is not a valid safetensors file: {escape(str(exc))}") from None
            out.update({key: tensors[key] for key, entry in entries.items() if entry["file"] == name})
        return out


def _safetensors_header(data: bytes, size: int, name: str) -> dict[str, Any]:
    """The header of a safetensors file, each tensor's extent checked against the file."""
    if len(data) < 8:
        raise SpecError(f"{name} is not a safetensors file: it is too short")
    (length,) = struct.unpack("<Q", data[:8])
    if length > min(size - 8, _MAX_HEADER):
        raise SpecError(f"{name}: its header claims {length} bytes, the file has {size}")
    try:
        header = json.loads(data[8 : 8 + length])
    except (ValueError, RecursionError):
        raise SpecError(f"{name}: its header is not valid JSON") from None
    if type(header) is not dict:
        raise SpecError(f"{name}: its header is not an object")
    body = size - 8 - length
    for key, info in header.items():
        if key == "__metadata__":
            continue
        if type(info) is not dict:
            raise SpecError(f"{name}: the entry of {escape(repr(key))} is not an object")
        shape, offsets, dtype = info.get("shape"), info.get("data_offsets"), info.get("dtype")
        if (
            type(shape) is not list
            or not all(type(n) is int and n >= 0 for n in shape)
            or type(offsets) is not list
            or len(offsets) != 2
            or not all(type(n) is int for n in offsets)
            or dtype not in _DTYPE_SIZES
        ):
            raise SpecError(f"{name}: the entry of {escape(repr(key))} is malformed")
        start, end = offsets
        if not 0 <= start <= end <= body or end - start != math.prod(shape) * _DTYPE_SIZES[dtype]:
            raise SpecError(f"{name}: the tensor {escape(repr(key))} claims more bytes than the file holds")
    return header


# -- inline values -------------------------------------------------------------------
def _encode_torch_constant(value: Any, ctx: EncodeContext) -> str:
    name = _TORCH_CONSTANT_NAMES.get(value)
    if name is None:
        raise ctx.refuse(f"holds {value!r}, which torch does not export by name")
    return name


def _decode_torch_constant(payload: Any, ctx: DecodeContext, where: str) -> Any:
    if type(payload) is not str or payload not in _TORCH_CONSTANTS:
        raise SpecError(f"{where}: {escape(repr(payload))} is not a torch dtype, layout or memory format")
    return _TORCH_CONSTANTS[payload]


def _decode_device(payload: Any, ctx: DecodeContext, where: str) -> torch.device:
    if type(payload) is not str or len(payload) > 64:
        raise SpecError(f"{where}: expected a device such as 'cpu' or 'cuda:0'")
    try:
        return torch.device(payload)
    except RuntimeError:
        raise SpecError(f"{where}: {escape(repr(payload))} is not a torch device") from None


def _decode_size(payload: Any, ctx: DecodeContext, where: str) -> torch.Size:
    if type(payload) is not list or not all(type(n) is int and n >= 0 for n in payload):
        raise SpecError(f"{where}: expected a list of sizes")
    return torch.Size(payload)


# -- input checks ----------------------------------------------------------------------
def _encode_check(check: ShapeCheck, ctx: EncodeContext) -> dict[str, Any]:
    anchor: Any = None
    dtype = check.dtype
    if type(check.anchor) is tuple:
        module, parameter, _ = check.anchor
        path = ctx.state["torch.module_paths"].get(id(module))
        tensor = check._anchor_tensor()
        if path is not None:
            anchor = _current_anchor(ctx.state["torch.layers"][path[0]], path, parameter)
        if (
            tensor is not None
            and dtype is not None
            and tensor.dtype is not check.anchor_dtype
            and dtype.is_floating_point
            and tensor.dtype.is_floating_point
        ):
            dtype = tensor.dtype  # converted by model.double() since: what the model expects now
    elif check.anchor is not None:
        raise ctx.refuse("has an input check that follows a tensor of no layer, which the format cannot store")
    return {
        "shape": list(check.dims),
        # Any dtype torch names: an input need not be one safetensors stores.
        "dtype": _TORCH_CONSTANT_NAMES[dtype] if dtype is not None else None,
        "anchor": anchor,
    }


def _current_anchor(layer: nn.Module, path: tuple[str, str], parameter: str) -> dict[str, str] | None:
    """The anchor at ``path`` in the model's current ``layer``, which surgery may have replaced since.

    As :class:`ShapeCheck` does when its parameter has moved: the parameter of that
    name if the module is still there, else the layer's first floating parameter.
    """
    name, module_path = path
    try:
        module = layer.get_submodule(module_path)
    except AttributeError:
        module = None
    found = module._parameters.get(parameter) if module is not None else None
    if isinstance(found, torch.Tensor):
        return {"layer": name, "module": module_path, "parameter": parameter}
    for sub_path, sub in layer.named_modules():
        for key, tensor in sub._parameters.items():
            if tensor is not None and tensor.is_floating_point():
                return {"layer": name, "module": sub_path, "parameter": key}
    return None


def _decode_check(fields: dict[str, Any], name: str, ctx: DecodeContext, where: str) -> ShapeCheck:
    if set(fields) != {"shape", "dtype", "anchor"}:
        raise SpecError(f"{where}: a torch.tensor check has shape, dtype and anchor")
    shape = fields["shape"]
    if type(shape) is not list or len(shape) > 64 or not all(d is None or (type(d) is int and d >= 0) for d in shape):
        raise SpecError(f"{where}.shape: expected a list of sizes or nulls")
    dtype: torch.dtype | None = None
    if fields["dtype"] is not None:
        found = _TORCH_CONSTANTS.get(fields["dtype"]) if type(fields["dtype"]) is str else None
        if not isinstance(found, torch.dtype):
            raise SpecError(f"{where}.dtype: {escape(repr(fields['dtype']))} is not a torch dtype")
        dtype = found
    anchor: Any = None
    if fields["anchor"] is not None:
        spec = fields["anchor"]
        if type(spec) is not dict or set(spec) != {"layer", "module", "parameter"}:
            raise SpecError(f"{where}.anchor: expected null or an object with layer, module and parameter")
        layer = ctx.lookup("$layer", spec["layer"], f"{where}.anchor.layer")
        if type(spec["module"]) is not str or type(spec["parameter"]) is not str:
            raise SpecError(f"{where}.anchor: module and parameter are str")
        try:
            module = layer.get_submodule(spec["module"])
        except AttributeError:
            raise SpecError(
                f"{where}.anchor.module: the layer has no submodule {escape(repr(spec['module']))}"
            ) from None
        tensor = module._parameters.get(spec["parameter"])
        if not isinstance(tensor, torch.Tensor):
            raise SpecError(f"{where}.anchor.parameter: the module has no parameter {escape(repr(spec['parameter']))}")
        anchor = (module, spec["parameter"], tensor)
    return ShapeCheck(name, shape, dtype=dtype, anchor=anchor)


# -- layers ----------------------------------------------------------------------------
_SPEC_ADVICE = (
    "Register a spec function for its class (symgraph_torch.register_layer_spec), or save the model with torch.save"
)


def _refuse_layer(name: str, module: nn.Module, why: str, advice: str = _SPEC_ADVICE) -> SaveError:
    return SaveError(
        f"cannot save this model in the symgraph format: layer {escape(name)!r} "
        f"({type(module).__module__}.{type(module).__qualname__}) {why}. {advice}"
    )


def _read_arguments(module: nn.Module, name: str) -> tuple[list[Any], dict[str, Any]]:
    """The constructor arguments of ``module``, read back from its attributes of the same names."""
    spec = _LAYER_SPECS.get(type(module))
    if spec is not None:
        given = spec(module)
        if not (type(given) is tuple and len(given) == 2 and type(given[0]) is list and type(given[1]) is dict):
            raise TypeError(f"the layer spec of {type(module).__qualname__} must return (list, dict)")
        return given
    try:
        parameters = list(inspect.signature(type(module).__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        raise _refuse_layer(name, module, "has a constructor whose signature cannot be read") from None
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    missing = object()
    for parameter in parameters:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD) or parameter.name in _SKIPPED_ARGUMENTS:
            continue
        value = getattr(module, parameter.name, missing)
        if value is missing:
            if parameter.default is parameter.empty:
                raise _refuse_layer(name, module, f"keeps no attribute {parameter.name!r} for its constructor argument")
            continue  # the default; the comparison below says whether it was the one used
        if (isinstance(value, torch.Tensor) or value is None) and type(parameter.default) is bool:
            value = value is not None  # bias=True leaves a tensor named bias, bias=False None
        elif isinstance(value, torch.Tensor):
            raise _refuse_layer(name, module, f"keeps a tensor as its argument {parameter.name!r}")
        if parameter.kind is parameter.POSITIONAL_ONLY:
            args.append(value)
        else:
            kwargs[parameter.name] = value
    return args, kwargs


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, torch.Tensor) or callable(a):
        return False
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if type(a) is float and math.isnan(a):
        return math.isnan(b)
    try:
        return bool(a == b)
    except Exception:  # a value that cannot be compared is not known to be the same
        return False


def _compare(original: nn.Module, rebuilt: nn.Module, name: str) -> None:
    """Refuse, naming the layer, unless ``rebuilt`` is ``original`` but for its tensors' values."""
    stack: list[tuple[Any, Any, str]] = [(original, rebuilt, "")]
    while stack:
        a, b, path = stack.pop()
        where = f"{name}.{path}".rstrip(".")
        if type(a) is not type(b):
            raise _refuse_layer(
                name, original, f"is rebuilt with a {type(b).__qualname__} at {where!r}, not a {type(a).__qualname__}"
            )
        for hooks in _HOOKS:
            if getattr(a, hooks, None):
                raise _refuse_layer(
                    name,
                    original,
                    f"has {hooks.strip('_').replace('_', ' ')} at {where!r} (pruning, weight norm and "
                    "parametrizations add them), which the format does not store",
                )
        mine = {k: v for k, v in vars(a).items() if k not in _INTERNALS and k not in _DERIVED}
        theirs = {k: v for k, v in vars(b).items() if k not in _INTERNALS and k not in _DERIVED}
        for key in sorted(mine.keys() | theirs.keys()):
            if key not in mine or key not in theirs or not _same(mine[key], theirs[key]):
                shown = describe(mine.get(key, "<missing>"))
                again = describe(theirs.get(key, "<missing>"))
                raise _refuse_layer(
                    name,
                    original,
                    f"has {where}.{key} = {shown}, and rebuilding it from its constructor arguments gives {again}",
                )
        for kind in ("_parameters", "_buffers"):
            ours, other = getattr(a, kind), getattr(b, kind)
            if ours.keys() != other.keys() or any(
                (ours[k] is None) != (other[k] is None) or (ours[k] is not None and ours[k].shape != other[k].shape)
                for k in ours
            ):
                raise _refuse_layer(
                    name, original, f"has other {kind.strip('_')} at {where!r} than its constructor makes"
                )
        if a._non_persistent_buffers_set != b._non_persistent_buffers_set:
            raise _refuse_layer(
                name, original, f"has other non-persistent buffers at {where!r} than its constructor makes"
            )
        if a._modules.keys() != b._modules.keys():
            raise _refuse_layer(name, original, f"has other submodules at {where!r} than its constructor makes")
        stack.extend(
            (a._modules[k], b._modules[k], f"{path}.{k}".lstrip(".")) for k in a._modules if a._modules[k] is not None
        )


def _encode_layer(module: nn.Module, name: str, ctx: EncodeContext) -> dict[str, Any]:
    if isinstance(module, DetachedSymbolicModel):
        prefix = ctx.state.get("torch.prefix", "")
        ctx.state["torch.prefix"] = f"{prefix}{name}."
        try:
            # Its layer names are its own: a layer it shares with the enclosing model
            # has another name there.
            with ctx.names_scope():
                return {"model": encode_model(module, ctx)}
        finally:
            ctx.state["torch.prefix"] = prefix
    quantized = next((m for m in module.modules() if type(m).__module__.startswith(_QUANTIZED)), None)
    if quantized is not None:
        raise _refuse_layer(
            name,
            module,
            f"holds the quantized layer {type(quantized).__module__}.{type(quantized).__qualname__}, "
            "whose packed weights the format does not store",
            "Save the float model and quantize it after loading, or save the model with torch.save",
        )
    args, kwargs = _read_arguments(module, name)
    with torch.device("meta"):
        try:
            rebuilt = type(module)(*args, **kwargs)
        except Exception as exc:  # the arguments read back do not build the layer
            raise _refuse_layer(
                name, module, f"cannot be rebuilt from the arguments read back ({escape(str(exc))})"
            ) from None
    _compare(module, rebuilt, name)
    where, ctx.where = ctx.where, f"layer {escape(name)!r}"
    inside, ctx.state["torch.in_layer"] = ctx.state.get("torch.in_layer", False), True
    try:
        # A recorded layer that surgery wrapped (Sequential(model.Linear_1, ...)) is
        # an argument here, stored with its holder, not a reference to the model's layer.
        with ctx.names_scope(empty=True):
            return {
                "class": encode_value(type(module), ctx)["$object"],
                "args": [encode_value(v, ctx) for v in args],
                "kwargs": encode_value(kwargs, ctx),
            }
    finally:
        ctx.where = where
        ctx.state["torch.in_layer"] = inside


def _encode_module_value(module: nn.Module, ctx: EncodeContext) -> dict[str, Any]:
    # A layer given as another layer's constructor argument (Sequential's children):
    # its tensors are stored by the layer that holds it. Anywhere else its weights
    # would be lost.
    if not ctx.state.get("torch.in_layer"):
        raise ctx.refuse(
            f"holds the layer {type(module).__qualname__} outside a torch model; build the model with "
            "symgraph_torch.SymbolicModel, which stores its layers and their weights"
        )
    return _encode_layer(module, type(module).__name__, ctx)


def _encode_model(model: DetachedSymbolicModel, ctx: EncodeContext) -> tuple[Plan, dict[str, Any]]:
    plan = model._plan
    prefix = ctx.state.get("torch.prefix", "")
    recorded = distinct_modules(plan)
    layers: dict[str, Any] = {}
    paths: dict[int, tuple[str, str]] = {}
    current_layers: list[tuple[str, nn.Module]] = []
    for original, name in zip(recorded, model._layer_names, strict=True):
        current = read_module(model._modules, tuple(name.split(".")))
        ctx.name_object(original, {"$layer": name})
        current_layers.append((name, current))
        if not isinstance(current, nn.Module):
            raise SaveError(
                f"cannot save this model in the symgraph format: its layer {escape(name)!r} was replaced by "
                f"{describe(current)}, which is not an nn.Module"
            )
        for module_path, module in current.named_modules(remove_duplicate=False):
            paths.setdefault(id(module), (name, module_path))
        for module_path, module in original.named_modules(remove_duplicate=False):
            paths.setdefault(id(module), (name, module_path))
    tied: dict[str, str] = {}
    parameters: list[str] = []
    frozen: list[str] = []
    needs_grad: list[str] = []
    orders: dict[str, list[int]] = {}
    seen: dict[int, str] = ctx.state.setdefault("torch.seen", {})

    def store(key: str, tensor: torch.Tensor) -> None:
        full = prefix + key
        first = seen.get(id(tensor))
        if first is not None:
            tied[full] = first
            return
        seen[id(tensor)] = full
        ctx.add_constant(tensor, _CODEC, key=full)
        if isinstance(tensor, nn.Parameter) and not tensor.requires_grad:
            frozen.append(full)
        elif not isinstance(tensor, nn.Parameter) and tensor.requires_grad:
            needs_grad.append(full)
        order = _dim_order(tensor)
        if order is not None:
            orders[full] = order

    for name, current in current_layers:
        ctx.where = f"layer {escape(name)!r}"
        if not isinstance(current, DetachedSymbolicModel):
            for key, tensor in _named_tensors(current):
                store(f"{name}.{key}", tensor)
        layers[name] = _encode_layer(current, name, ctx)
    # After the layers: a nested model among them set its own meanwhile.
    ctx.state["torch.module_paths"] = paths
    ctx.state["torch.layers"] = dict(current_layers)
    ctx.where = "a tensor constant of the graph"
    for constant, name in zip(distinct_tensors(plan), model._tensor_names, strict=True):
        held = model._parameters.get(name) if name in model._parameters else model._buffers.get(name)
        assert held is not None
        store(name, held)
        if isinstance(held, nn.Parameter):
            parameters.append(seen[id(held)])
        ctx.name_object(constant, {"$constant": seen[id(held)]})
    ctx.where = "the model's shapes"
    section = {
        "layers": layers,
        "training": model.training,
        "direct_calls": model._direct_calls,
        "input_shape": encode_value(model._input_shape, ctx),
        "output_shape": encode_value(model._output_shape, ctx),
        "parameters": parameters,
        "frozen": frozen,
        "requires_grad": needs_grad,
        "dim_order": orders,
        # Every module in another train/eval mode than the model: a frozen
        # BatchNorm in a block that trains, a dropout left on for sampling.
        "modes": {path: m.training for path, m in model.named_modules() if path and m.training != model.training},
        "tied": tied,
    }
    return plan, section


def _named_tensors(module: nn.Module) -> list[tuple[str, torch.Tensor]]:
    tensors: list[tuple[str, torch.Tensor]] = list(module.named_parameters(remove_duplicate=False))
    tensors += module.named_buffers(remove_duplicate=False)
    return tensors


_CODEC = SafetensorsCodec()


# -- loading ---------------------------------------------------------------------------
def _str_list(value: Any, where: str) -> list[str]:
    if type(value) is not list or not all(type(v) is str for v in value):
        raise SpecError(f"{where}: expected a list of str")
    return value


def _decode_layer(spec: Any, name: str, ctx: DecodeContext, where: str) -> nn.Module:
    if type(spec) is not dict:
        raise SpecError(f"{where}: expected an object")
    if "model" in spec:
        if set(spec) != {"model"}:
            raise SpecError(f"{where}: a nested model's entry has 'model' only")
        prefix = ctx.state.get("torch.prefix", "")
        depth = ctx.state.get("torch.depth", 0)
        if depth >= MAX_NESTING:
            raise SpecError(f"{where}: models are nested more than {MAX_NESTING} deep")
        ctx.state["torch.prefix"], ctx.state["torch.depth"] = f"{prefix}{name}.", depth + 1
        try:
            nested = decode_model(spec["model"], ctx, f"{where}.model.")
        finally:
            ctx.state["torch.prefix"], ctx.state["torch.depth"] = prefix, depth
        if not isinstance(nested, DetachedSymbolicModel):
            raise SpecError(f"{where}.model: a nested model must be a torch model")
        return nested
    if set(spec) != {"class", "args", "kwargs"}:
        raise SpecError(f"{where}: a layer has 'class', 'args' and 'kwargs'")
    cls = ctx.allow.resolve(spec["class"], f"{where}.class")
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)) or issubclass(cls, DetachedSymbolicModel):
        raise SpecError(f"{where}.class: {escape(spec['class'])} is not an nn.Module layer class")
    if ctx.state.get("torch.in_layer"):
        # A layer's argument (Sequential's child): built where its holder is.
        return _construct_from(cls, spec, ctx, where, ctx.state.get("torch.device", "meta"))
    # On the meta device first, always: what a hostile spec asks for is never
    # allocated before its size is known.
    layer = _construct_from(cls, spec, ctx, where, "meta")
    if ctx.constants is None:
        size = sum(t.numel() * t.element_size() for _, t in _named_tensors(layer))
        if size > MAX_FRESH_BYTES:
            raise SpecError(
                f"{where}: the layer's weights take {size} bytes, more than the {MAX_FRESH_BYTES} that from_spec "
                "initialises without constants (symgraph_torch._saving.MAX_FRESH_BYTES)"
            )
        layer = _construct_from(cls, spec, ctx, where, "cpu")
    return layer


def _construct_from(cls: type, spec: dict[str, Any], ctx: DecodeContext, where: str, device: str) -> nn.Module:
    saved = ctx.state.get("torch.in_layer", False), ctx.state.get("torch.device", "meta")
    ctx.state["torch.in_layer"], ctx.state["torch.device"] = True, device
    try:
        args = decode_value(spec["args"], ctx, f"{where}.args")
        kwargs = decode_value(spec["kwargs"], ctx, f"{where}.kwargs")
    finally:
        ctx.state["torch.in_layer"], ctx.state["torch.device"] = saved
    if type(args) is not list or type(kwargs) is not dict or not all(type(k) is str for k in kwargs):
        raise SpecError(f"{where}: args must be a list and kwargs an object")
    return _construct(cls, args, kwargs, device, spec["class"], where)


class _Budget(TorchFunctionMode):
    """Stops a constructor after :data:`MAX_TENSOR_CALLS` torch calls.

    A spec can ask for ``nn.RNN(1, 1, num_layers=10**9)``: tiny weights, so no
    size check refuses it, but building it would not end, even on the meta device.
    """

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.calls += 1
        if self.calls > MAX_TENSOR_CALLS:
            raise _OverBudgetError
        return func(*args, **(kwargs or {}))


class _OverBudgetError(Exception):
    """Raised inside a constructor by :class:`_Budget`; turned into a SpecError outside it."""


def _construct(cls: type, args: list[Any], kwargs: dict[str, Any], device: str, name: str, where: str) -> nn.Module:
    try:
        with torch.device(device), _Budget():
            layer = cls(*args, **kwargs)
    except _OverBudgetError:
        raise SpecError(
            f"{where}: {escape(name)}(...) makes more than {MAX_TENSOR_CALLS} tensors; a layer that large is "
            "not built from a file"
        ) from None
    except Exception as exc:  # any failure of the constructor is a bad spec
        raise SpecError(f"{where}: {escape(name)}(...) failed: {escape(str(exc), 300)}") from None
    if not isinstance(layer, nn.Module):
        raise SpecError(f"{where}: {escape(name)}(...) did not make a layer")
    for module in layer.modules():
        # The pytorch-symbolic layers that read an attribute or call a method by name.
        names = [getattr(module, "name", None)] if isinstance(module, useful_layers.GetAttr) else []
        names += [getattr(module, "method_name", None)] if isinstance(module, useful_layers.MethodCall) else []
        if any(type(n) is not str or not attribute_name_permitted(n) for n in names):
            raise SpecError(f"{where}: the attribute or method name {escape(repr(names[0]))} is refused when loading")
    return layer


def _decode_module_value(payload: Any, ctx: DecodeContext, where: str) -> nn.Module:
    if not ctx.state.get("torch.in_layer"):
        raise SpecError(f"{where}: a $torch.module is only a layer's constructor argument")
    return _decode_layer(payload, "layer", ctx, where)


def _dim_order(tensor: torch.Tensor) -> list[int] | None:
    """The order of dimensions, outermost first, in which a dense tensor that is not contiguous is laid out.

    ``None`` for contiguous tensors and for those no permutation makes contiguous
    (views with gaps, which safetensors stores compacted). A model moved to
    ``channels_last`` has weights in order ``[0, 2, 3, 1]``; a transposed weight
    ``[1, 0]``. Kernels pick other algorithms for other layouts, so the layout is
    part of what the model computes.

    Example:
        >>> _dim_order(torch.zeros(2, 3).t()), _dim_order(torch.zeros(2, 3))
        ([1, 0], None)
    """
    if tensor.is_contiguous():
        return None
    order = sorted(range(tensor.dim()), key=lambda d: (-tensor.stride()[d], -tensor.shape[d]))
    return order if tensor.permute(order).is_contiguous() else None


def _in_dim_order(tensor: torch.Tensor, order: Any, where: str) -> torch.Tensor:
    if type(order) is not list or sorted(order) != list(range(tensor.dim())) or not all(type(d) is int for d in order):
        raise SpecError(f"{where}: expected a permutation of the tensor's {tensor.dim()} dimensions")
    inverse = sorted(range(len(order)), key=order.__getitem__)
    return tensor.permute(order).contiguous().permute(inverse)


def _own_tensors(ctx: DecodeContext) -> dict[str, Any]:
    """The constants by key, copied unless loading read them itself.

    A model built by ``from_spec`` does not share its tensors with the model
    they came from.
    """
    if ctx.constants is None:
        return {}
    if not ctx.copy_constants:
        return dict(ctx.constants)
    copies: dict[int, torch.Tensor] = {}
    out: dict[str, Any] = {}
    for key, value in ctx.constants.items():
        if isinstance(value, torch.Tensor):
            # Keyed by identity, so that tensors given twice (tied) stay one tensor.
            value = copies.setdefault(id(value), value.detach().clone())
        out[key] = value
    return out


def _tensor(key: str, parameter: bool, ctx: DecodeContext, where: str) -> Any:
    """The loaded tensor saved under ``key`` (or the key it is tied to), a Parameter if ``parameter``."""
    tensors: dict[str, Any] = ctx.state["torch.tensors"]
    target = ctx.state["torch.tied"].get(key, key)
    value = tensors.get(target)
    if value is None:
        raise SpecError(f"{where}: no tensor {escape(repr(key))} was saved")
    if parameter and not isinstance(value, nn.Parameter):
        # Made once and stored back, so that every name tied to it shares it.
        value = nn.Parameter(value, requires_grad=target not in ctx.state["torch.frozen"])
        tensors[target] = value
    return value


def _fill(layer: nn.Module, name: str, ctx: DecodeContext, where: str) -> None:
    """Give ``layer`` (built on the meta device) the loaded tensors, shapes checked, ties kept."""
    for module_path, module in layer.named_modules(remove_duplicate=False):
        stem = f"{name}.{module_path}." if module_path else f"{name}."
        for kind in ("_parameters", "_buffers"):
            table = getattr(module, kind)
            for key, tensor in list(table.items()):
                if tensor is None:
                    continue
                loaded = _tensor(stem + key, kind == "_parameters", ctx, where)
                if loaded.shape != tensor.shape:
                    raise SpecError(
                        f"{where}: {escape(stem + key)} has shape {tuple(loaded.shape)}, "
                        f"the layer needs {tuple(tensor.shape)}"
                    )
                table[key] = loaded
        if isinstance(module, nn.RNNBase):
            module._init_flat_weights()  # it keeps its own list of the (meta) weights it was built with


_SECTION_DEFAULTS: dict[str, Any] = {
    "training": True,
    "direct_calls": False,
    "input_shape": None,
    "output_shape": None,
    "parameters": [],
    "frozen": [],
    "requires_grad": [],
    "dim_order": {},
    "modes": {},
    "tied": {},
}
_SECTION = frozenset({"layers", *_SECTION_DEFAULTS})


def _decode_model(section: dict[str, Any], ctx: DecodeContext, path: str) -> Callable[[Plan, dict[str, Any]], Any]:
    if "layers" not in section or set(section) - _SECTION:
        raise SpecError(f"{path}: expected 'layers' and any of {', '.join(sorted(_SECTION - {'layers'}))}")
    # What a person writing a spec may leave out: no tied, frozen or graph parameters.
    section = {**_SECTION_DEFAULTS, **section}
    prefix = ctx.state.get("torch.prefix", "")
    for key in ("training", "direct_calls"):
        if type(section[key]) is not bool:
            raise SpecError(f"{path}.{key}: expected true or false")
    tied = section["tied"]
    if type(tied) is not dict or not all(type(v) is str for v in tied.values()):
        raise SpecError(f"{path}.tied: expected an object of str")
    layers_spec = section["layers"]
    if type(layers_spec) is not dict:
        raise SpecError(f"{path}.layers: expected an object")
    if "torch.tensors" not in ctx.state:
        # Shared by the nested models: their keys are below their layer's name.
        ctx.state["torch.tensors"] = _own_tensors(ctx)
        ctx.state["torch.tied"] = {}
        ctx.state["torch.frozen"] = set()
        if ctx.constants is not None:
            ctx.constants = ctx.state["torch.tensors"]
            ctx.copy_constants = False  # copied just now, once for all their names
    ctx.state["torch.tied"].update(tied)
    ctx.state["torch.frozen"].update(_str_list(section["frozen"], f"{path}.frozen"))
    orders = section["dim_order"]
    if type(orders) is not dict:
        raise SpecError(f"{path}.dim_order: expected an object of constant keys to dimension orders")
    tensors = ctx.state["torch.tensors"]
    for key, order in orders.items():
        tensor = tensors.get(key)
        if isinstance(tensor, torch.Tensor):
            tensors[key] = _in_dim_order(tensor, order, f"{path}.dim_order[{escape(repr(key))}]")
    for key in _str_list(section["requires_grad"], f"{path}.requires_grad"):
        if isinstance(tensors.get(key), torch.Tensor) and tensors[key].is_floating_point():
            tensors[key].requires_grad_(True)
    if ctx.constants is not None:
        for key in _str_list(section["parameters"], f"{path}.parameters"):
            _tensor(key, True, ctx, f"{path}.parameters")
    layers: dict[str, nn.Module] = {}
    for name, spec in layers_spec.items():
        where = f"{path}.layers[{escape(repr(name))}]"
        if not name:
            raise SpecError(f"{where}: a layer name is a non-empty str")
        layer = _decode_layer(spec, name, ctx, where)
        if ctx.constants is not None and not isinstance(layer, DetachedSymbolicModel):
            _fill(layer, prefix + name, ctx, where)
        layers[name] = layer
    ctx.set_names("$layer", layers)
    input_shape = decode_value(section["input_shape"], ctx, f"{path}.input_shape")
    output_shape = decode_value(section["output_shape"], ctx, f"{path}.output_shape")
    direct_calls = section["direct_calls"]
    training = section["training"]
    modes = section["modes"]
    if type(modes) is not dict or not all(type(v) is bool for v in modes.values()):
        raise SpecError(f"{path}.modes: expected an object of module paths to true or false")

    def build(plan: Plan, options: dict[str, Any]) -> SymbolicModel:
        names = {id(layer): name for name, layer in layers.items()}
        custom = [names.get(id(step.op.layer)) if isinstance(step.op, ModuleCall) else None for step in plan.steps]
        used = {id(m) for m in distinct_modules(plan)}
        unused = [name for name, layer in layers.items() if id(layer) not in used]
        if unused:
            raise SpecError(f"{path}.layers: {escape(repr(unused[0]))} is not used by any step")
        model = SymbolicModel.__new__(SymbolicModel)
        DetachedSymbolicModel.__init__(
            model,
            plan,
            check_inputs=options["check_inputs"],
            shapes=(input_shape, output_shape),
            executor=options["executor"],
            executor_options=options["executor_options"],
            direct_calls=direct_calls,
            custom_names=custom,
        )
        model._graph = None
        if sorted(model._layer_names) != sorted(layers):
            raise SpecError(
                f"{path}.layers: the steps register the layers {model._layer_names}, the spec lists {list(layers)}"
            )
        model.train(training)
        for module_path, mode in modes.items():
            try:
                model.get_submodule(module_path).train(mode)
            except AttributeError:
                raise SpecError(f"{path}.modes: the model has no module {escape(repr(module_path))}") from None
        return model

    return build


# -- what a spec may name of torch ---------------------------------------------------------
# The compiled modules of torch's operators; a compiled function of torch found
# in none of them is a binding (file writers, TorchScript, autocast settings) that
# torch re-exports under its own name.
_OP_MODULES = tuple(
    getattr(torch._C, name) for name in ("_VariableFunctions", "_nn", "_linalg", "_fft", "_special", "_nested")
)
# Compiled classes that are values a model computes with.
_VALUE_TYPES = frozenset(
    {torch.Size, torch.device, torch.dtype, torch.layout, torch.memory_format, torch.finfo, torch.iinfo}
)
# Tensors over a caller's buffer: over bytes, which Python shares between values,
# writing to the tensor changes them for the whole process.
_BUFFER_VIEWS = frozenset({"asarray", "from_numpy", "frombuffer"})


def _torch_computation(obj: Any) -> bool:
    """Whether a spec may name ``obj``, found in torch: an operator, a layer class, a value type.

    Example:
        >>> [_torch_computation(obj) for obj in (torch.cat, torch.nn.Linear, torch.PyTorchFileWriter)]
        [True, True, False]
    """
    name = getattr(obj, "__name__", None)
    if not isinstance(name, str) or name in _BUFFER_VIEWS:
        return False
    if isinstance(obj, type):
        return obj in _VALUE_TYPES or getattr(torch._C, name, None) is not obj
    if type(obj).__name__ == "builtin_function_or_method":
        return any(getattr(module, name, None) is obj for module in _OP_MODULES)
    return getattr(torch._C, name, None) is not obj


# -- registration ----------------------------------------------------------------------
def _sequential(module: nn.Module) -> tuple[list[Any], dict[str, Any]]:
    if all(k == str(i) for i, k in enumerate(module._modules)):
        return list(module._modules.values()), {}
    return [collections.OrderedDict(module._modules)], {}  # Sequential(OrderedDict(...)) keeps the names


def _module_list(module: nn.Module) -> tuple[list[Any], dict[str, Any]]:
    return [list(module._modules.values())], {}


def _module_dict(module: nn.Module) -> tuple[list[Any], dict[str, Any]]:
    return [dict(module._modules)], {}


def _multihead_attention(module: nn.Module) -> tuple[list[Any], dict[str, Any]]:
    m: Any = module
    return [m.embed_dim, m.num_heads], {
        "dropout": m.dropout,
        "bias": m.in_proj_bias is not None,
        "add_bias_kv": m.bias_k is not None,
        "add_zero_attn": m.add_zero_attn,
        "kdim": m.kdim,
        "vdim": m.vdim,
        "batch_first": m.batch_first,
    }


def _recurrent(module: nn.Module) -> tuple[list[Any], dict[str, Any]]:
    m: Any = module
    kwargs = {
        "input_size": m.input_size,
        "hidden_size": m.hidden_size,
        "num_layers": m.num_layers,
        "bias": m.bias,
        "batch_first": m.batch_first,
        "dropout": m.dropout,
        "bidirectional": m.bidirectional,
    }
    if isinstance(module, nn.LSTM):
        kwargs["proj_size"] = m.proj_size
    if isinstance(module, nn.RNN):
        kwargs["nonlinearity"] = m.nonlinearity
    return [], kwargs


def _transformer_layer(module: nn.Module) -> tuple[list[Any], dict[str, Any]]:
    m: Any = module
    return [m.self_attn.embed_dim, m.self_attn.num_heads], {
        "dim_feedforward": m.linear1.out_features,
        "dropout": m.dropout.p,
        "activation": m.activation,
        "layer_norm_eps": m.norm1.eps,
        "batch_first": m.self_attn.batch_first,
        "norm_first": m.norm_first,
        "bias": m.linear1.bias is not None,
    }


def _reshape(module: nn.Module) -> tuple[list[Any], dict[str, Any]]:
    return [tuple(module.shape)], {"batch_size_included": True}  # type: ignore[arg-type]


def _method_call(module: nn.Module) -> tuple[list[Any], dict[str, Any]]:
    m: Any = module
    return [m.method_name, *m.args], dict(m.kwds)


for _layer_type in (nn.RNN, nn.LSTM, nn.GRU):
    register_layer_spec(_layer_type, _recurrent)
register_layer_spec(nn.TransformerEncoderLayer, _transformer_layer)
register_layer_spec(useful_layers.ReshapeLayer, _reshape)
register_layer_spec(useful_layers.ViewCopyLayer, _reshape)
register_layer_spec(useful_layers.MethodCall, _method_call)
register_layer_spec(nn.Sequential, _sequential)
register_layer_spec(nn.ModuleList, _module_list)
register_layer_spec(nn.ModuleDict, _module_dict)
register_layer_spec(nn.MultiheadAttention, _multihead_attention)
register_constant_codec(_CODEC)
# The pytorch-symbolic layers a model may hold; GetAttr and MethodCall, which take
# names, are checked when loaded (_decode_layer).
for _layer in (
    useful_layers.LambdaOpLayer,
    useful_layers.NamedLambdaOpLayer,
    useful_layers.AddOpLayer,
    useful_layers.SubOpLayer,
    useful_layers.MulOpLayer,
    useful_layers.ModOpLayer,
    useful_layers.MatmulOpLayer,
    useful_layers.ConcatLayer,
    useful_layers.StackLayer,
    useful_layers.ReshapeLayer,
    useful_layers.ViewCopyLayer,
    useful_layers.CallbackLayer,
    useful_layers.AggregateLayer,
    useful_layers.SliceLayer,
    useful_layers.SliceLayerSymbolicIdx,
    useful_layers.MethodCall,
    useful_layers.UnpackLayer,
    useful_layers.GetAttr,
):
    register_allowed(_layer)
for _home in ("torch", "torch.nn.functional", "torch.linalg", "torch.fft", "torch.special"):
    register_reference_home(_home)
register_home_check("torch", _torch_computation)
register_value_codec(
    ValueCodec(
        "$torch", (torch.dtype, torch.layout, torch.memory_format), _encode_torch_constant, _decode_torch_constant
    )
)
register_value_codec(ValueCodec("$torch.device", (torch.device,), lambda v, ctx: str(v), _decode_device))
register_value_codec(ValueCodec("$torch.size", (torch.Size,), lambda v, ctx: list(v), _decode_size))
register_value_codec(ValueCodec("$torch.module", (nn.Module,), _encode_module_value, _decode_module_value))
register_check_codec(CheckCodec("torch.tensor", ShapeCheck, _encode_check, _decode_check))
for _kind, _type in (("module", ModuleCall), ("nested_model", NestedModelCall)):
    register_op_codec(
        OpCodec(
            _kind,
            _type,
            (("func", "layer", "template"), ("args", "args", "templates"), ("kwargs", "kwargs", "template")),
        )
    )
register_op_codec(
    OpCodec(
        "dunder_call",
        DunderCall,
        (("func", "func", "template"), ("args", "args", "templates"), ("kwargs", "kwargs", "template")),
    )
)
register_model_codec(ModelCodec("torch", DetachedSymbolicModel, _encode_model, _decode_model))
