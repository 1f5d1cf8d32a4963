"""The symgraph spec: a model as plain JSON data, and a model built back from it.

A spec is a dict of JSON values (``docs/spec-format.md`` describes it in full)::

    {"format": "symgraph.model", "version": 1, "model": "symgraph",
     "inputs": [{"name": "x", "check": null}], "input_keys": null,
     "steps": [{"name": "y", "op": "operator", "symbol": "+", "operands": [{"$ref": "x"}, 1]}],
     "outputs": {"$ref": "y"}, "options": {...}, "constants": {}}

Values are JSON as they are where JSON has them (numbers, strings, lists, dicts
with str keys); anything else is an object with one ``$``-key, such as
``{"$tuple": [1, 2]}`` or ``{"$object": "numpy:mean"}``. Steps refer to inputs
and earlier steps by name, with ``{"$ref": "name"}``.

Loading treats the spec as hostile. Every part is checked against the schema
and rebuilt through the constructors that recording uses, so a loaded operation
is validated like a recorded one. Names are data: refs are looked up in a dict,
and no name or key ever becomes code (code generation names every value by its
slot). Functions and classes are resolved only through an
:class:`~symgraph._allowlist.Allowlist`.

What a backend adds (how to store its operations, input checks, values and
models) is registered here: :func:`register_op_codec`,
:func:`register_check_codec`, :func:`register_value_codec`,
:func:`register_constant_codec` and :func:`register_model_codec`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from symgraph._allowlist import NAME_GETTERS, Allowlist, attribute_name_permitted
from symgraph._errors import SpecError, SymgraphError
from symgraph._guards import LoadedGetAttr, LoadedMethodCall, read_attribute
from symgraph._ops import Call, Elements, GetAttr, MethodCall, Operation, Operator, Slice, Unpack
from symgraph._plan import InputSpec, Plan, Step
from symgraph._spec_codecs import (
    _CHECK_BY_KIND,
    _CHECK_BY_TYPE,
    _OP_BY_KIND,
    _OP_BY_TYPE,
    DecodeContext,
    EncodeContext,
    OpCodec,
    load_backend,
    model_codec_for_kind,
    model_codec_for_type,
    register_op_codec,
)
from symgraph._spec_values import (
    RefResolver,
    decode_template,
    decode_value,
    encode_template,
    encode_value,
    expect_type,
    list_of,
    object_fields,
)
from symgraph._templates import (
    Const,
    Ref,
)
from symgraph._text import describe, escape

__all__ = [
    "FORMAT",
    "VERSION",
    "check_manifest",
    "decode_model",
    "encode_model",
    "model_to_spec",
    "spec_to_model",
]

#: The value of a spec's ``"format"`` field.
FORMAT = "symgraph.model"
#: The spec version this symgraph writes, and the newest it reads.
VERSION = 1


# -- operations ----------------------------------------------------------------------
def _check_name(name: str, path: str) -> None:
    if not attribute_name_permitted(name):
        raise SpecError(
            f"{path}: the attribute or method name {escape(name)!r} is refused when loading: private and "
            "dunder names (but operators'), the attributes of frames, code and generators, and names that "
            "reach files, pickles or code are never looked up from a spec"
        )


# Builtins that read an attribute named by a string: allowed only as the function
# a step calls, with a constant name that is checked. Anywhere else (map(getattr,
# ...), a partial of it, a key= argument) the name would come from data. Loading
# never decodes them as values; saving refuses them here, with the step's name.
_NAME_GETTERS = (*NAME_GETTERS, read_attribute)


def _holds_name_getter(value: Any) -> bool:
    stack = [value]
    budget = 100_000  # constants are JSON-sized; a bound keeps a hostile one from stalling
    while stack and budget:
        budget -= 1
        item = stack.pop()
        if any(item is f for f in _NAME_GETTERS):
            return True
        if isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        elif type(item) is slice:
            stack.extend((item.start, item.stop, item.step))
        elif type(item) is dict:
            stack.extend(item.keys())
            stack.extend(item.values())
        elif type(item) is functools.partial:
            stack.extend((item.func, *item.args, *item.keywords.values()))
    return bool(stack)


def _check_op(op: Operation, path: str) -> None:
    """Refuse what a hostile spec could reach through names resolved at run time."""
    if isinstance(op, (GetAttr, MethodCall)):
        _check_name(op.name, path)
    if isinstance(op, Call) and not isinstance(op.func, (Const, Ref)):
        raise SpecError(f"{path}.func: a call step's function is a function or the $ref of a step, not a structure")
    if isinstance(op, Call) and isinstance(op.func, Const) and not callable(op.func.value):
        raise SpecError(f"{path}.func: a call step's function must be callable, got {escape(describe(op.func.value))}")
    templates = list(op.templates())
    if isinstance(op, Call) and isinstance(op.func, Const) and any(op.func.value is f for f in _NAME_GETTERS):
        name = op.args[1] if len(op.args) > 1 else None
        if not (isinstance(name, Const) and type(name.value) is str):
            raise SpecError(f"{path}: getattr and hasattr may only be called with a constant str name")
        _check_name(name.value, path)
        templates.remove(op.func)
    if any(_holds_name_getter(value) for template in templates for value in template.constants()):
        raise SpecError(f"{path}: getattr and hasattr may only be the function a step calls, with a constant name")


def _field_refs(op: Operation, codec: OpCodec) -> list[int]:
    """The parents the op's fields refer to, in the order decoding meets them."""
    refs: list[int] = []
    for attribute, _, kind in codec.fields:
        value = getattr(op, attribute)
        for template in (value,) if kind == "template" else value if kind == "templates" else ():
            refs += template.refs()
    return refs


def _encode_field(value: Any, kind: str, names: Sequence[str], ctx: EncodeContext) -> Any:
    if kind == "template":
        return encode_template(value, names, ctx)
    if kind == "templates":
        return [encode_template(t, names, ctx) for t in value]
    return value


# A loaded model reads attributes through read_attribute, which checks the value too.
_NAME_GETTER_REFERENCES = {"builtins:getattr": read_attribute, "builtins:hasattr": hasattr}


def _name_getter(j: Any) -> Any:
    if type(j) is dict and list(j) == ["$object"] and type(j["$object"]) is str:
        return _NAME_GETTER_REFERENCES.get(j["$object"])
    return None


def _decode_field(j: Any, kind: str, ctx: DecodeContext, path: str, refs: RefResolver) -> Any:
    if kind == "template":
        return decode_template(j, ctx, path, refs, 0)
    if kind == "templates":
        return tuple(decode_template(v, ctx, f"{path}[{i}]", refs, 0) for i, v in enumerate(list_of(j, path)))
    expected = {"str": str, "int": int, "bool": bool}[kind]
    if type(j) is not expected:
        raise SpecError(f"{path}: expected {kind}, got {escape(describe(j))}")
    return j


for _codec in (
    OpCodec("operator", Operator, (("symbol", "symbol", "str"), ("operands", "operands", "templates"))),
    OpCodec("getattr", GetAttr, (("name", "attr", "str"),), subject=True),
    # Registered last for its kind: what loading builds (see symgraph._guards).
    OpCodec("getattr", LoadedGetAttr, (("name", "attr", "str"),), subject=True),
    OpCodec("index", Slice, (("index", "index", "template"),), subject=True),
    OpCodec(
        "call", Call, (("func", "func", "template"), ("args", "args", "templates"), ("kwargs", "kwargs", "template"))
    ),
    OpCodec(
        "method",
        MethodCall,
        (("name", "method", "str"), ("args", "args", "templates"), ("kwargs", "kwargs", "template")),
        subject=True,
    ),
    # Registered last for its kind: what loading builds (see symgraph._guards).
    OpCodec(
        "method",
        LoadedMethodCall,
        (("name", "method", "str"), ("args", "args", "templates"), ("kwargs", "kwargs", "template")),
        subject=True,
    ),
    OpCodec("unpack", Unpack, (("index", "index", "int"), ("by_index", "by_index", "bool")), subject=True),
    OpCodec(
        "elements",
        Elements,
        (("length", "length", "int"), ("exact", "exact", "bool"), ("where", "loop_at", "str")),
        subject=True,
    ),
):
    register_op_codec(_codec)


# -- plans ---------------------------------------------------------------------------
def _unique_names(plan: Plan) -> list[str]:
    names: list[str] = []
    taken: set[str] = set()
    for name in [*(s.name for s in plan.inputs), *(s.name for s in plan.steps)]:
        unique, k = name, 1
        while unique in taken:
            k += 1
            unique = f"{name}#{k}"
        taken.add(unique)
        names.append(unique)
    return names


def _encode_check(check: Any, ctx: EncodeContext) -> Any:
    if check is None:
        return None
    codec = _CHECK_BY_TYPE.get(type(check))
    if codec is None:
        raise ctx.refuse(
            f"has an input check of type {type(check).__qualname__}, which no backend stores; "
            "its backend must register a check codec for it (symgraph.plugin.register_check_codec)"
        )
    return {"kind": codec.kind, **codec.encode(check, ctx)}


def _where(step: Step) -> str:
    return f"step {escape(step.name)!r}" + (f" (recorded at {escape(step.where)})" if step.where else "")


def _encode_plan(plan: Plan, ctx: EncodeContext) -> dict[str, Any]:
    names = _unique_names(plan)
    inputs = []
    for i, spec in enumerate(plan.inputs):
        ctx.where = f"input {escape(spec.name)!r}"
        entry: dict[str, Any] = {"name": names[i]}
        if names[i] != spec.name:
            entry["display"] = spec.name
        entry["description"] = spec.description
        entry["check"] = _encode_check(spec.check, ctx)
        inputs.append(entry)
    n = len(plan.inputs)
    steps = []
    for j, step in enumerate(plan.steps):
        ctx.where = _where(step)
        op = step.op
        codec = _OP_BY_TYPE.get(type(op))
        if codec is None:
            raise ctx.refuse(
                f"is a {type(op).__qualname__} operation, which no backend stores; register an op codec "
                "for it (symgraph.plugin.register_op_codec), or save the model with pickle"
            )
        try:
            _check_op(op, "it")
        except SpecError as exc:
            # Refused now rather than by whoever loads the file, maybe elsewhere, later.
            raise ctx.refuse(
                f"uses what loading refuses: {str(exc).removeprefix('it: ')}. Record it another way (a function "
                "defined at the top level of a module, called with symgraph.add_to_graph), or save the model "
                "with pickle"
            ) from None
        parents = [names[a] for a in step.args]
        used = {r for t in op.templates() for r in t.refs()} | ({0} if codec.subject else set())
        if used != set(range(len(parents))):
            raise ctx.refuse(f"has parents its {codec.kind!r} codec cannot store")
        entry = {"name": names[n + j]}
        if names[n + j] != step.name:
            entry["display"] = step.name
        entry["op"] = codec.kind
        if codec.subject:
            entry["of"] = parents[0]
        for attribute, key, kind in codec.fields:
            entry[key] = _encode_field(getattr(op, attribute), kind, parents, ctx)
        natural = list(dict.fromkeys([*([0] if codec.subject else []), *_field_refs(op, codec)]))
        if natural != list(range(len(parents))):
            # Loading takes parents in order of first use; this step's differ, and summaries show them.
            entry["parents"] = parents
        if step.description:
            entry["description"] = step.description
        if step.where:
            entry["where"] = step.where
        steps.append(entry)
    ctx.where = "the outputs"
    return {
        "inputs": inputs,
        "input_keys": list(plan.input_keys) if plan.input_keys is not None else None,
        "steps": steps,
        "outputs": encode_template(plan.outputs, names, ctx),
    }


def _decode_plan(spec: Mapping[str, Any], ctx: DecodeContext, path: str) -> Plan:
    slots: dict[str, int] = {}
    inputs: list[InputSpec] = []
    for i, entry in enumerate(list_of(spec["inputs"], f"{path}inputs")):
        where = f"{path}inputs[{i}]"
        fields = object_fields(entry, where, {"name"}, {"display", "description", "check"})
        name = _name(fields["name"], f"{where}.name", slots)
        display = expect_type(fields.get("display", name), str, f"{where}.display", "a str")
        description = expect_type(fields.get("description", ""), str, f"{where}.description", "a str")
        check = _decode_check(fields.get("check"), display, ctx, f"{where}.check")
        slots[name] = i
        inputs.append(InputSpec(display, description, check))
    if not inputs:
        raise SpecError(f"{path}inputs: a model needs at least one input")
    keys = spec.get("input_keys")
    if keys is not None:
        if type(keys) is not list or len(keys) != len(inputs) or not all(type(k) is str for k in keys):
            raise SpecError(f"{path}input_keys: expected null or one str per input")
        if len(set(keys)) != len(keys):
            raise SpecError(f"{path}input_keys: the keys must differ")
    steps: list[Step] = []
    for j, entry in enumerate(list_of(spec["steps"], f"{path}steps")):
        where = f"{path}steps[{j}]"
        if type(entry) is not dict:
            raise SpecError(f"{where}: expected an object, got {escape(describe(entry))}")
        kind = entry.get("op")
        codec = _OP_BY_KIND.get(kind) if type(kind) is str else None
        if codec is None:
            raise SpecError(
                f"{where}.op: {escape(repr(kind))} is not a known operation (known: {', '.join(sorted(_OP_BY_KIND))})"
            )
        required = {"name", "op", *(key for _, key, _ in codec.fields)} | ({"of"} if codec.subject else set())
        fields = object_fields(entry, where, required, {"display", "description", "where", "parents"})
        name = _name(fields["name"], f"{where}.name", slots)
        parents = _Parents(slots)
        ref = parents.ref
        order = fields.get("parents")
        if order is not None:
            if type(order) is not list or len(set(map(repr, order))) != len(order):
                raise SpecError(f"{where}.parents: expected a list of distinct names")
            for k, name_ in enumerate(order):
                ref(name_, f"{where}.parents[{k}]")

        if codec.subject:
            ref(fields["of"], f"{where}.of")
        values: dict[str, Any] = {}
        for attribute, key, kind_ in codec.fields:  # in order: parents are numbered by first use
            getter = _name_getter(fields[key]) if codec.op_type is Call and attribute == "func" else None
            # getattr is never a value, only the function of a call step, whose name _check_op checks.
            values[attribute] = (
                Const(getter) if getter else _decode_field(fields[key], kind_, ctx, f"{where}.{key}", ref)
            )
        try:
            op = codec.op_type(*(values[a] for a in codec.op_type.payload))
        except SpecError:
            raise
        except (TypeError, ValueError, KeyError) as exc:
            raise SpecError(f"{where}: {escape(str(exc))}") from None
        _check_op(op, where)
        if not parents.slots:
            raise SpecError(f"{where}: a step must use an input or an earlier step")
        if order is not None and len(parents.slots) != len(order):
            raise SpecError(f"{where}.parents: the step uses inputs or steps that its parents do not list")
        used = {r for t in op.templates() for r in t.refs()} | ({0} if codec.subject else set())
        if used != set(range(len(parents.slots))):
            raise SpecError(f"{where}.parents: every parent must be used by the step")
        display = expect_type(fields.get("display", name), str, f"{where}.display", "a str")
        description = expect_type(fields.get("description", ""), str, f"{where}.description", "a str")
        location = expect_type(fields.get("where", ""), str, f"{where}.where", "a str")
        slots[name] = len(inputs) + j
        steps.append(Step(op, tuple(parents.slots), display, description, location))

    def output_ref(target: Any, at: str) -> int:
        slot = slots.get(target) if type(target) is str else None
        if slot is None:
            raise SpecError(f"{at}: {escape(repr(target))} is not an input or a step")
        return slot

    outputs = decode_template(spec["outputs"], ctx, f"{path}outputs", output_ref, 0)
    if not outputs.refs():
        raise SpecError(f"{path}outputs: a model needs at least one output that refers to an input or a step")
    return Plan(tuple(inputs), tuple(keys) if keys is not None else None, tuple(steps), outputs)


class _Parents:
    """The parents of one step being decoded, in order of first reference."""

    def __init__(self, slots: Mapping[str, int]) -> None:
        self.known = slots
        self.slots: list[int] = []
        self.positions: dict[int, int] = {}

    def ref(self, target: Any, at: str) -> int:
        slot = self.known.get(target) if type(target) is str else None
        if slot is None:
            raise SpecError(f"{at}: {escape(repr(target))} is not an input or an earlier step")
        if slot not in self.positions:
            self.positions[slot] = len(self.slots)
            self.slots.append(slot)
        return self.positions[slot]


def _name(name: Any, path: str, taken: Mapping[str, int]) -> str:
    if type(name) is not str or not name:
        raise SpecError(f"{path}: expected a non-empty str, got {escape(describe(name))}")
    if name in taken:
        raise SpecError(f"{path}: the name {escape(name)!r} is used twice; inputs and steps need distinct names")
    return name


def _decode_check(j: Any, name: str, ctx: DecodeContext, path: str) -> Callable[[Any], None] | None:
    if j is None:
        return None
    if type(j) is not dict or type(j.get("kind")) is not str:
        raise SpecError(f"{path}: expected null or an object with a 'kind'")
    codec = _CHECK_BY_KIND.get(j["kind"])
    if codec is None and "." in j["kind"]:
        load_backend(j["kind"].split(".")[0])
        codec = _CHECK_BY_KIND.get(j["kind"])
    if codec is None:
        raise SpecError(f"{path}.kind: {escape(repr(j['kind']))} is not a known input check")
    fields = {k: v for k, v in j.items() if k != "kind"}
    try:
        return codec.decode(fields, name, ctx, path)
    except SpecError:
        raise
    except (TypeError, ValueError, KeyError, OverflowError, RuntimeError) as exc:
        raise SpecError(f"{path}: {escape(str(exc))}") from None


# -- models --------------------------------------------------------------------------
def _encode_options(model: Any, ctx: EncodeContext) -> dict[str, Any]:
    executor, options = model._executor_choice
    name = executor if type(executor) is str else getattr(executor, "name", None)
    if type(name) is not str:
        raise ctx.refuse("runs on an executor object that has no registered name; set_executor() one by name first")
    ctx.where = "the executor options"
    return {
        "check_inputs": bool(model.check_inputs),
        "executor": name,
        "executor_options": encode_value(dict(options), ctx),
    }


# The executors a spec may choose by itself: the core's, which compile nothing but
# the straight-line Python generated from the checked plan.
_LOADED_EXECUTORS = ("codegen", "interpreter")
# The executor options a spec may set: plain choices, no configuration of compilers.
_LOADED_OPTIONS: dict[str, tuple[type, ...]] = {"fallback": (str,), "fast_paths": (bool,)}


def _decode_options(j: Any, ctx: DecodeContext, path: str) -> dict[str, Any]:
    fields = object_fields(j, path, {"check_inputs", "executor", "executor_options"})
    options = decode_value(fields["executor_options"], ctx, f"{path}.executor_options")
    if type(options) is not dict or not all(type(k) is str for k in options):
        raise SpecError(f"{path}.executor_options: expected an object")
    unsafe = sorted(k for k, v in options.items() if type(v) not in _LOADED_OPTIONS.get(k, ()))
    if unsafe:
        # Executors' options configure compilers (torch.compile's reach inductor's
        # config: directories to write, the compiler to run): not taken from a file.
        raise SpecError(
            f"{path}.executor_options: the options {', '.join(map(repr, unsafe))} are not loaded from a file, "
            f"only {', '.join(sorted(_LOADED_OPTIONS))}; set them after loading: model.set_executor(name, ...)"
        )
    return {
        "check_inputs": expect_type(fields["check_inputs"], bool, f"{path}.check_inputs", "true or false"),
        "executor": expect_type(fields["executor"], str, f"{path}.executor", "an executor's name"),
        "executor_options": options,
    }


def encode_model(model: Any, ctx: EncodeContext) -> dict[str, Any]:
    """``model`` as a spec, with its constants collected on ``ctx`` (the spec has no manifest yet).

    Nested models (a torch model used as a layer) are encoded with the
    enclosing model's context, so that all constants land in one manifest.

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput(1)
        >>> encode_model(symgraph.SymbolicModel(x, -x), EncodeContext())["steps"][0]["symbol"]
        'neg'
    """
    codec = model_codec_for_type(type(model))
    plan, section = codec.encode(model, ctx)
    spec: dict[str, Any] = {"format": FORMAT, "version": VERSION, "model": codec.kind}
    spec.update(_encode_plan(plan, ctx))
    spec["options"] = _encode_options(model, ctx)
    if section:
        spec[codec.kind] = section
    return spec


def model_to_spec(model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The spec of ``model`` and the constants its ``{"$constant": key}`` values refer to.

    Raises:
        SaveError: the model holds something the format cannot store.

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput(2)
        >>> spec, constants = model_to_spec(symgraph.SymbolicModel(x, x * 3))
        >>> spec["steps"][0]["op"], spec["steps"][0]["operands"], constants
        ('operator', [{'$ref': 'Input_1'}, 3], {})
    """
    ctx = EncodeContext()
    spec = encode_model(model, ctx)
    spec["constants"] = ctx.manifest
    return spec, ctx.constants


_TOP_KEYS = {"format", "version", "model", "inputs", "steps", "outputs"}
# What a person writing a spec may leave out: no dict inputs, the default options.
_DEFAULT_OPTIONS = {"check_inputs": True, "executor": "codegen", "executor_options": {}}


def _check_header(spec: Any, where: str) -> None:
    if type(spec) is not dict:
        raise SpecError(f"{where}: expected an object, got {escape(describe(spec))}")
    if spec.get("format") != FORMAT:
        raise SpecError(f"{where}: 'format' must be {FORMAT!r}, got {escape(repr(spec.get('format')))}")
    version = spec.get("version")
    if type(version) is not int or version < 1:
        raise SpecError(f"{where}: 'version' must be a positive int, got {escape(repr(version))}")
    if version > VERSION:
        raise SpecError(f"{where}: version {version} is newer than this symgraph reads ({VERSION}); upgrade symgraph")


def decode_model(spec: Any, ctx: DecodeContext, path: str = "") -> Any:
    """Build the model ``spec`` describes, reading constants and names through ``ctx``.

    Raises:
        SpecError: the spec is malformed or names something not permitted.

    Example:
        >>> import symgraph
        >>> from symgraph.plugin import Allowlist
        >>> x = symgraph.CustomInput(1)
        >>> spec = symgraph.SymbolicModel(x, -x).to_spec()
        >>> decode_model(spec, DecodeContext(Allowlist(), None, {}))(5)
        -5
    """
    where = path.rstrip(".") or "spec"
    _check_header(spec, where)
    kind = spec.get("model")
    if type(kind) is not str:
        raise SpecError(f"{where}: 'model' must name the model kind, got {escape(repr(kind))}")
    codec = model_codec_for_kind(kind)
    optional: set[str] = {kind, "input_keys", "options", *({"constants"} if path == "" else ())}
    object_fields(spec, where, _TOP_KEYS, optional)
    section = spec.get(kind, {})
    if type(section) is not dict:
        raise SpecError(f"{path}{kind}: expected an object")
    build = codec.decode(section, ctx, f"{path}{kind}")
    plan = _decode_plan(spec, ctx, path)
    options = _decode_options(spec.get("options", _DEFAULT_OPTIONS), ctx, f"{path}options")
    if path == "" and ctx.executor is not None:
        options["executor"] = ctx.executor
    elif options["executor"] not in _LOADED_EXECUTORS:
        # A plugin executor compiles (torch.compile runs inductor and a C++ compiler)
        # or captures: chosen by whoever loads the model, not by the file.
        raise SpecError(
            f"{path}options.executor: the spec asks for the executor {escape(repr(options['executor']))}; loading "
            f"takes only {' or '.join(map(repr, _LOADED_EXECUTORS))} from a file. Choose it when loading: "
            f"symgraph.load(path, executor={escape(repr(options['executor']))})"
        )
    try:
        return build(plan, options)
    except SymgraphError:
        raise  # an executor that cannot run here, say: its own error says why
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        raise SpecError(f"{where}: the model cannot be built: {escape(str(exc), 500)}") from None


def check_manifest(manifest: Any, *, with_files: bool = False) -> dict[str, dict[str, dict[str, Any]]]:
    """The entries of ``spec["constants"]``, validated, grouped by codec: ``{codec: {key: entry}}``.

    Args:
        manifest: The manifest.
        with_files: Each entry must name its file too (a saved model's).

    Raises:
        SpecError: it is not an object of entries with a ``codec`` (and a ``file``).

    Example:
        >>> check_manifest({"c0": {"codec": "numpy", "dtype": "<f8", "shape": [3]}})
        {'numpy': {'c0': {'codec': 'numpy', 'dtype': '<f8', 'shape': [3]}}}
    """
    if type(manifest) is not dict:
        raise SpecError("spec.constants: expected an object of constant entries")
    groups: dict[str, dict[str, dict[str, Any]]] = {}
    for key, entry in manifest.items():
        if type(entry) is not dict or type(entry.get("codec")) is not str:
            raise SpecError(f"spec.constants[{escape(repr(key))}]: expected an object with a 'codec'")
        if with_files and type(entry.get("file")) is not str:
            raise SpecError(f"spec.constants[{escape(repr(key))}]: expected the 'file' that holds it")
        groups.setdefault(entry["codec"], {})[key] = entry
    return groups


def spec_to_model(
    spec: Any,
    constants: Mapping[str, Any] | None = None,
    allow: Iterable[Any] = (),
    *,
    kind: str | None = None,
    copy_constants: bool = True,
    executor: str | None = None,
) -> Any:
    """Build a model from ``spec``; ``constants`` holds the values of its ``$constant`` entries.

    Args:
        spec: The spec, as :func:`model_to_spec` or a person wrote it.
        constants: The constants by key, or ``None``.
        allow: Functions, classes or modules to permit beyond the default ones.
        kind: The model kind the caller builds (``from_spec`` of a model class); ``None``: any.
        copy_constants: Copy the constants, which belong to the caller; ``load``
            passes ``False`` for those it has just read.
        executor: The executor the model runs on, instead of the spec's; a spec
            may only choose ``"codegen"`` or ``"interpreter"`` by itself.

    Raises:
        SpecError: the spec is malformed, is of another kind, or names something not permitted.

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput("a b")
        >>> spec = symgraph.SymbolicModel(x, x.split()).to_spec()
        >>> spec_to_model(spec)("c d e")
        ['c', 'd', 'e']
    """
    if type(spec) is not dict:
        raise SpecError(f"spec: expected a dict, got {escape(describe(spec))}")
    manifest = spec.get("constants", {})
    check_manifest(manifest)
    if constants is not None and not isinstance(constants, Mapping):
        raise TypeError(f"constants must be a mapping of key to value, got {type(constants).__name__}")
    _check_header(spec, "spec")
    if kind is not None and spec.get("model") != kind:
        raise SpecError(
            f"spec: this is a {escape(repr(spec.get('model')))} model, and this class builds {kind!r} models; "
            "use symgraph.load, or the from_spec of that model class"
        )
    ctx = DecodeContext(Allowlist(allow), constants, manifest)
    ctx.copy_constants = copy_constants
    ctx.executor = executor
    return decode_model(spec, ctx)
