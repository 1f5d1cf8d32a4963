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

import base64
import dataclasses
import functools
import math
import threading
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from symgraph._allowlist import DENIED_ATTRIBUTES, INTROSPECTION_PREFIXES, Allowlist, reference_of
from symgraph._backends import backend_for
from symgraph._errors import SaveError, SpecError, SymgraphError
from symgraph._operators import OPERATORS
from symgraph._ops import Call, Elements, GetAttr, MethodCall, Operation, Operator, Slice, Unpack
from symgraph._plan import InputSpec, Plan, Step
from symgraph._templates import (
    Const,
    DictT,
    ListT,
    NamedTupleT,
    Ref,
    SliceT,
    Template,
    TupleT,
    shared_const,
    shared_ref,
)
from symgraph._text import describe, escape

__all__ = [
    "FORMAT",
    "VERSION",
    "CheckCodec",
    "ConstantCodec",
    "DecodeContext",
    "EncodeContext",
    "Files",
    "ModelCodec",
    "OpCodec",
    "ValueCodec",
    "constant_codec",
    "decode_model",
    "decode_value",
    "encode_model",
    "encode_value",
    "model_codec_for_kind",
    "model_codec_for_type",
    "model_to_spec",
    "register_check_codec",
    "register_constant_codec",
    "register_model_codec",
    "register_op_codec",
    "register_value_codec",
    "spec_to_model",
]

#: The value of a spec's ``"format"`` field.
FORMAT = "symgraph.model"
#: The spec version this symgraph writes, and the newest it reads.
VERSION = 1
# JSON nesting a spec may use; deeper values are refused when saving and loading
# (the parser's own limit would surface as a RecursionError).
MAX_DEPTH = 100

_OPERATOR_DUNDERS = frozenset(
    name for spec in OPERATORS.values() for name in (spec.dunder, spec.reflected) if name is not None
)

_LOCK = threading.Lock()


# -- codecs that backends register ---------------------------------------------------
@dataclasses.dataclass(frozen=True)
class OpCodec:
    """How one operation class is stored as a step.

    Attributes:
        kind: The step's ``"op"`` value, such as ``"call"``.
        op_type: The operation class; only exactly this class uses the codec.
        fields: ``(payload attribute, spec key, type)`` for each item of the
            class's ``payload``, where type is ``"template"``, ``"templates"``
            (a list of them), ``"str"``, ``"int"`` or ``"bool"``.
        subject: Parent 0 is the value the operation applies to (an attribute's
            owner, a method's object), stored as the step's ``"of"``; the other
            parents are the refs in its templates.

    Example:
        >>> from symgraph.plugin import GetAttr, OpCodec
        >>> OpCodec("getattr", GetAttr, (("name", "attr", "str"),), subject=True).kind
        'getattr'
    """

    kind: str
    op_type: type[Operation]
    fields: tuple[tuple[str, str, str], ...]
    subject: bool = False

    def __post_init__(self) -> None:
        attributes = tuple(f[0] for f in self.fields)
        if sorted(attributes) != sorted(self.op_type.payload):
            raise TypeError(
                f"OpCodec {self.kind!r}: fields must name each of {self.op_type.__name__}.payload "
                f"{self.op_type.payload}, got {attributes}"
            )
        for _, key, kind in self.fields:
            if kind not in ("template", "templates", "str", "int", "bool") or key in _STEP_KEYS:
                raise TypeError(f"OpCodec {self.kind!r}: field {key!r} has type {kind!r} or clashes with a step key")


@dataclasses.dataclass(frozen=True)
class CheckCodec:
    """How one input-check class is stored in an input's ``"check"``.

    Attributes:
        kind: The check's ``"kind"`` value, such as ``"torch.tensor"``.
        check_type: The check class.
        encode: ``encode(check, ctx)``: the check's fields, a dict of JSON values.
        decode: ``decode(fields, name, ctx, path)``: the check of the input
            called ``name``, validated.

    Example:
        >>> from symgraph.plugin import CheckCodec
        >>> CheckCodec("demo", object, lambda c, ctx: {}, lambda d, name, ctx, path: object()).kind
        'demo'
    """

    kind: str
    check_type: type
    encode: Callable[[Any, EncodeContext], dict[str, Any]]
    decode: Callable[[dict[str, Any], str, DecodeContext, str], Callable[[Any], None]]


@dataclasses.dataclass(frozen=True)
class ValueCodec:
    """How values of some types are stored inline in the spec, as ``{tag: payload}``.

    Attributes:
        tag: The ``$``-key, such as ``"$numpy.dtype"``.
        types: Types handled (subclasses too).
        encode: ``encode(value, ctx)``: a JSON payload.
        decode: ``decode(payload, ctx, path)``: the value, validated.

    Example:
        >>> import fractions
        >>> from symgraph.plugin import ValueCodec
        >>> codec = ValueCodec("$fraction", (fractions.Fraction,), lambda v, ctx: [v.numerator, v.denominator],
        ...                    lambda p, ctx, path: fractions.Fraction(*p))
        >>> codec.tag
        '$fraction'
    """

    tag: str
    types: tuple[type, ...]
    encode: Callable[[Any, EncodeContext], Any]
    decode: Callable[[Any, DecodeContext, str], Any]


class ConstantCodec:
    """Stores large constants (arrays, tensors) in files beside the spec.

    The spec holds ``{"$constant": key}`` where such a value was, and an entry
    ``spec["constants"][key]`` with the codec's name, the file, and what the
    codec needs to check the file before reading it (dtype, shape).

    Subclass it and register an instance with :func:`register_constant_codec`.

    Attributes:
        name: The entries' ``"codec"`` value.
        types: Types handled (subclasses too).

    Example:
        >>> from symgraph.plugin import ConstantCodec
        >>> ConstantCodec.name
        ''
    """

    name: str = ""
    types: tuple[type, ...] = ()

    def describe(self, value: Any) -> dict[str, Any]:
        """The manifest fields of ``value`` (its dtype and shape), JSON values.

        Raises:
            TypeError: the codec cannot store this value; the message says what
                it is, to follow "holds" ("an array of dtype object, ...").
        """
        raise NotImplementedError  # pragma: no cover - abstract

    def write(self, values: Mapping[str, Any]) -> dict[str, tuple[str, bytes]]:
        """Files for ``values``: ``{key: (file name, bytes)}``; keys may share a file."""
        raise NotImplementedError  # pragma: no cover - abstract

    def read(self, entries: Mapping[str, Mapping[str, Any]], files: Files) -> dict[str, Any]:
        """The values of ``entries`` (manifest entries by key), read from ``files``.

        Check each file's header against its size and the entry before reading
        the data, so that a hostile file cannot make loading allocate more than
        the file holds.

        Raises:
            SpecError: a file is missing, malformed, or does not match its entry.
        """
        raise NotImplementedError  # pragma: no cover - abstract

    def check(self, value: Any, entry: Mapping[str, Any], where: str) -> None:
        """Raise :class:`SpecError` if ``value`` does not match its manifest ``entry``."""
        described = self.describe(value)
        for field, expected in described.items():
            if entry.get(field) != expected:
                raise SpecError(
                    f"{where}: the constant has {field} {escape(repr(expected))}, the spec says "
                    f"{escape(repr(entry.get(field)))}"
                )


class Files(Protocol):
    """The files of a saved model, as constant codecs read them."""

    def size(self, name: str) -> int:
        """The size of file ``name``; raises :class:`SpecError` when it is missing."""

    def read(self, name: str, max_bytes: int | None = None) -> bytes:
        """The bytes of file ``name``, refused (:class:`SpecError`) when larger than the limit."""


@dataclasses.dataclass(frozen=True)
class ModelCodec:
    """How one model class is stored and rebuilt.

    Attributes:
        kind: The spec's ``"model"`` value, such as ``"torch"``.
        model_type: The model class (subclasses use it too).
        encode: ``encode(model, ctx)``: the plan to store and the kind's own
            section (a dict of JSON values, stored under ``spec[kind]``).
        decode: ``decode(section, ctx, path)``: registers what the plan's values
            refer to (layers) on ``ctx``, and returns ``build(plan, options)``,
            which makes the model.

    Example:
        >>> import symgraph
        >>> from symgraph.plugin import model_codec_for_kind
        >>> model_codec_for_kind("symgraph").model_type is symgraph.SymbolicModel
        True
    """

    kind: str
    model_type: type
    encode: Callable[[Any, EncodeContext], tuple[Plan, dict[str, Any]]]
    decode: Callable[[dict[str, Any], DecodeContext, str], Callable[[Plan, dict[str, Any]], Any]]


_OP_BY_TYPE: dict[type, OpCodec] = {}
_OP_BY_KIND: dict[str, OpCodec] = {}
_CHECK_BY_TYPE: dict[type, CheckCodec] = {}
_CHECK_BY_KIND: dict[str, CheckCodec] = {}
_VALUE_CODECS: list[ValueCodec] = []
_CONSTANT_CODECS: list[ConstantCodec] = []
_MODEL_CODECS: list[ModelCodec] = []


def register_op_codec(codec: OpCodec) -> None:
    """Store operations of ``codec.op_type`` as steps of kind ``codec.kind``.

    Example:
        >>> from symgraph.plugin import OpCodec, Unpack, register_op_codec
        >>> register_op_codec(OpCodec("unpack", Unpack, (("index", "index", "int"), ("by_index", "by_index", "bool")),
        ...                           subject=True))
    """
    if not isinstance(codec, OpCodec):
        raise TypeError(f"register_op_codec() needs an OpCodec, got {type(codec).__name__}")
    with _LOCK:
        _OP_BY_TYPE[codec.op_type] = codec
        _OP_BY_KIND[codec.kind] = codec


def register_check_codec(codec: CheckCodec) -> None:
    """Store input checks of ``codec.check_type``; see :class:`CheckCodec`."""
    if not isinstance(codec, CheckCodec):
        raise TypeError(f"register_check_codec() needs a CheckCodec, got {type(codec).__name__}")
    with _LOCK:
        _CHECK_BY_TYPE[codec.check_type] = codec
        _CHECK_BY_KIND[codec.kind] = codec


def register_value_codec(codec: ValueCodec) -> None:
    """Store values of ``codec.types`` inline as ``{codec.tag: payload}``; see :class:`ValueCodec`."""
    if not isinstance(codec, ValueCodec):
        raise TypeError(f"register_value_codec() needs a ValueCodec, got {type(codec).__name__}")
    if not codec.tag.startswith("$") or codec.tag in _TAGS:
        raise ValueError(f"a value codec's tag must start with '$' and not be a built-in one, got {codec.tag!r}")
    with _LOCK:
        _VALUE_CODECS[:] = [c for c in _VALUE_CODECS if c.tag != codec.tag] + [codec]


def register_constant_codec(codec: ConstantCodec) -> None:
    """Store values of ``codec.types`` in files beside the spec; see :class:`ConstantCodec`."""
    if not isinstance(codec, ConstantCodec):
        raise TypeError(f"register_constant_codec() needs a ConstantCodec, got {type(codec).__name__}")
    with _LOCK:
        _CONSTANT_CODECS[:] = [c for c in _CONSTANT_CODECS if c.name != codec.name] + [codec]


def register_model_codec(codec: ModelCodec) -> None:
    """Store models of ``codec.model_type`` with ``"model": codec.kind``; see :class:`ModelCodec`."""
    if not isinstance(codec, ModelCodec):
        raise TypeError(f"register_model_codec() needs a ModelCodec, got {type(codec).__name__}")
    with _LOCK:
        _MODEL_CODECS[:] = [c for c in _MODEL_CODECS if c.kind != codec.kind] + [codec]


def constant_codec(name: str) -> ConstantCodec | None:
    """The registered constant codec called ``name``, or ``None``."""
    return next((c for c in _CONSTANT_CODECS if c.name == name), None)


def _load_backend(kind: str) -> None:
    """Import the backend that registers ``kind``, through its entry point, if it has one."""
    from symgraph._backends import _available_entry_points

    entry = _available_entry_points().get(kind)
    if entry is not None:
        entry.load()


def model_codec_for_kind(kind: str) -> ModelCodec:
    """The codec for a spec's ``"model"`` value; a backend's is loaded through its entry point.

    Raises:
        SpecError: no installed backend stores models of that kind.
    """
    codec = next((c for c in reversed(_MODEL_CODECS) if c.kind == kind), None)
    if codec is None and type(kind) is str and kind.isidentifier():
        _load_backend(kind)
        codec = next((c for c in reversed(_MODEL_CODECS) if c.kind == kind), None)
    if codec is None:
        known = ", ".join(sorted(c.kind for c in _MODEL_CODECS))
        raise SpecError(
            f"spec: model kind {escape(repr(kind))} is not one this installation can load (known: {known}); "
            "install the backend that saved it"
        )
    return codec


def model_codec_for_type(model_type: type) -> ModelCodec:
    """The codec that stores models of ``model_type``: the one of its nearest registered base.

    Raises:
        SaveError: no codec stores that class.
    """
    for cls in model_type.__mro__:
        for codec in reversed(_MODEL_CODECS):
            if codec.model_type is cls:
                return codec
    raise SaveError(f"cannot save a {model_type.__name__} in the symgraph format: it is not a symgraph model")


# -- contexts ------------------------------------------------------------------------
class EncodeContext:
    """What encoding one model collects: constants for files, and names for shared objects.

    Attributes:
        constants: The constants to store in files, by key.
        manifest: Their manifest entries, by key (``spec["constants"]``).
        where: The part being encoded, for messages (``"step 'Linear_1'"``).

    Example:
        >>> ctx = EncodeContext()
        >>> encode_value((1, 2.5, None), ctx)
        {'$tuple': [1, 2.5, None]}
    """

    def __init__(self) -> None:
        self.constants: dict[str, Any] = {}
        self.manifest: dict[str, dict[str, Any]] = {}
        self.where = "the model"
        #: What a backend keeps while encoding (the model's module paths, say).
        self.state: dict[str, Any] = {}
        self._named: dict[int, tuple[Any, Any]] = {}
        self._by_id: dict[int, str] = {}

    def name_object(self, obj: Any, encoded: Any) -> None:
        """Encode ``obj`` (by identity) as ``encoded``, a layer's ``{"$layer": name}`` say."""
        self._named[id(obj)] = (obj, encoded)

    def named(self, obj: Any) -> Any:
        """What :meth:`name_object` gave for ``obj``, or ``None``."""
        found = self._named.get(id(obj))
        return found[1] if found is not None and found[0] is obj else None

    def add_constant(self, value: Any, codec: ConstantCodec, key: str | None = None) -> dict[str, str]:
        """Store ``value`` in a file; returns the ``{"$constant": key}`` that refers to it.

        The same object is stored once, under the first key it got.
        """
        existing = self._by_id.get(id(value))
        if existing is not None and self.constants[existing] is value:
            return {"$constant": existing}
        if key is None:
            key = f"c{len(self.constants)}"
            while key in self.constants:
                key += "_"
        if key in self.constants:
            raise SaveError(f"cannot save this model: two constants are both named {escape(key)!r}")
        try:
            described = codec.describe(value)
        except TypeError as exc:
            raise self.refuse(f"holds {exc}") from None
        self.constants[key] = value
        self._by_id[id(value)] = key
        self.manifest[key] = {"codec": codec.name, **described}
        return {"$constant": key}

    def refuse(self, what: str) -> SaveError:
        """The error for something in :attr:`where` the format cannot store."""
        return SaveError(f"cannot save this model in the symgraph format: {self.where} {what}")


class DecodeContext:
    """What decoding one spec uses: the allowlist, the constants, and names registered by models.

    Attributes:
        allow: Which functions and classes the spec may name.
        constants: The constants by key, or ``None`` when none were given.
        manifest: ``spec["constants"]``, validated.

    Example:
        >>> ctx = DecodeContext(Allowlist(), None, {})
        >>> decode_value({"$object": "math:sqrt"}, ctx, "spec")(9.0)
        3.0
    """

    def __init__(
        self, allow: Allowlist, constants: Mapping[str, Any] | None, manifest: Mapping[str, Mapping[str, Any]]
    ) -> None:
        self.allow = allow
        self.constants = constants
        self.manifest = manifest
        #: What a backend keeps while decoding (the layers built so far, say).
        self.state: dict[str, Any] = {}
        self._names: dict[str, dict[str, Any]] = {}

    def set_names(self, tag: str, objects: Mapping[str, Any]) -> None:
        """From now on, values ``{tag: name}`` stand for ``objects[name]`` (a model's layers, say).

        It replaces what ``tag`` stood for: a nested model sets its own layers,
        and the enclosing model sets its own again before its plan is decoded.
        """
        self._names[tag] = dict(objects)

    def lookup(self, tag: str, payload: Any, path: str) -> Any:
        """The object ``{tag: payload}`` stands for."""
        table = self._names.get(tag)
        if table is None:
            raise SpecError(f"{path}: {escape(tag)!r} is not a known value tag here")
        if type(payload) is not str or payload not in table:
            raise SpecError(f"{path}: {escape(tag)} {escape(repr(payload))} names nothing this spec defines")
        return table[payload]

    def constant(self, key: Any, path: str) -> Any:
        """The constant stored under ``key``, checked against its manifest entry."""
        if type(key) is not str or key not in self.manifest:
            raise SpecError(f"{path}: constant {escape(repr(key))} is not listed in the spec's 'constants'")
        if self.constants is None or key not in self.constants:
            raise SpecError(
                f"{path}: the spec needs the constant {escape(key)!r}, which was not given; pass "
                "constants= (spec_constants() of the saved model), or load the saved files with symgraph.load"
            )
        value = self.constants[key]
        entry = self.manifest[key]
        codec = constant_codec(entry["codec"])
        if codec is not None:
            codec.check(value, entry, f"{path}: constant {escape(key)!r}")
        return value


# -- values and templates ------------------------------------------------------------
_ATOMS = (type(None), bool, int, str)
_TAGS = frozenset(
    {
        "$ref",
        "$tuple",
        "$dict",
        "$slice",
        "$namedtuple",
        "$float",
        "$complex",
        "$bytes",
        "$ellipsis",
        "$set",
        "$frozenset",
        "$range",
        "$object",
        "$partial",
        "$constant",
    }
)
_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _float(value: float) -> Any:
    if math.isfinite(value):
        return value
    return {"$float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}


def _plain_keys(keys: Iterable[Any]) -> bool:
    return all(type(k) is str and not k.startswith("$") for k in keys)


def encode_value(value: Any, ctx: EncodeContext, _depth: int = 0) -> Any:
    """``value`` as JSON data for a spec.

    Raises:
        SaveError: the value holds something the format cannot store (a lambda,
            an object of no registered type); the message names :attr:`EncodeContext.where`.

    Example:
        >>> import math
        >>> ctx = EncodeContext()
        >>> encode_value([math.floor, slice(1, None), {"a": 1j}], ctx)
        [{'$object': 'math:floor'}, {'$slice': [1, None, None]}, {'a': {'$complex': [0.0, 1.0]}}]
    """
    if _depth > MAX_DEPTH:
        raise ctx.refuse(f"holds values nested deeper than {MAX_DEPTH} levels")
    tp = type(value)
    if tp in _ATOMS:
        return value
    if tp is float:
        return _float(value)
    named = ctx.named(value)
    if named is not None:
        return named
    d = _depth + 1
    if tp is list:
        return [encode_value(v, ctx, d) for v in value]
    if tp is tuple:
        return {"$tuple": [encode_value(v, ctx, d) for v in value]}
    if tp is dict:
        if _plain_keys(value):
            return {k: encode_value(v, ctx, d) for k, v in value.items()}
        return {"$dict": [[encode_value(k, ctx, d), encode_value(v, ctx, d)] for k, v in value.items()]}
    if tp is slice:
        return {"$slice": [encode_value(v, ctx, d) for v in (value.start, value.stop, value.step)]}
    if tp is complex:
        return {"$complex": [_float(value.real), _float(value.imag)]}
    if tp is bytes:
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if value is Ellipsis:
        return {"$ellipsis": None}
    if tp is set or tp is frozenset:
        return {"$" + tp.__name__: [encode_value(v, ctx, d) for v in value]}
    if tp is range:
        return {"$range": [value.start, value.stop, value.step]}
    if tp is functools.partial:
        return {
            "$partial": {
                "func": encode_value(value.func, ctx, d),
                "args": [encode_value(v, ctx, d) for v in value.args],
                "kwargs": encode_value(dict(value.keywords), ctx, d),
            }
        }
    if isinstance(value, tuple) and hasattr(tp, "_fields"):
        return {"$namedtuple": {"type": _reference(tp, ctx), "items": [encode_value(v, ctx, d) for v in value]}}
    encoded = _encode_by_codec(value, ctx)
    if encoded is None:
        # The backend for the value's library registers its codecs when loaded: a
        # numpy array held as a constant by a model with no numpy input, say.
        backend_for(tp)
        encoded = _encode_by_codec(value, ctx)
    if encoded is not None:
        return encoded
    if callable(value) or isinstance(value, type) or reference_of(value) is not None:
        return {"$object": _reference(value, ctx)}
    raise ctx.refuse(
        f"holds {describe(value)}, a {type(value).__qualname__}, which the symgraph format cannot store; "
        "save the model with pickle, or register a value codec for the type (symgraph.plugin.register_value_codec)"
    )


def _encode_by_codec(value: Any, ctx: EncodeContext) -> Any:
    for codec in reversed(_VALUE_CODECS):
        if isinstance(value, codec.types):
            return {codec.tag: codec.encode(value, ctx)}
    for constant in reversed(_CONSTANT_CODECS):
        if isinstance(value, constant.types):
            return ctx.add_constant(value, constant)
    return None


def _reference(obj: Any, ctx: EncodeContext) -> str:
    reference = reference_of(obj)
    if reference is not None:
        return reference
    if not isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)):
        raise ctx.refuse(
            f"holds {describe(obj)}, a {type(obj).__qualname__} object: the symgraph format names functions and "
            "classes by their import path, and stores no other objects. Use a function defined at the top level "
            "of a module instead (loading then needs allow=[it]), or save the model with pickle"
        )
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    raise ctx.refuse(
        f"uses {escape(name)}, which has no import path for the spec to name: lambdas, functions and classes "
        "defined inside a function, and those of __main__, cannot be saved in this format. Define it at the "
        "top level of a module (loading then needs allow=[it]), or save the model with pickle (cloudpickle "
        "stores lambdas), whose loading runs code"
    )


def encode_template(template: Template, names: Sequence[str], ctx: EncodeContext, _depth: int = 0) -> Any:
    """A template as JSON data, with ``Ref(i)`` written as ``{"$ref": names[i]}``.

    Example:
        >>> from symgraph.plugin import Const, ListT, Ref
        >>> encode_template(ListT([Ref(0), Const((1, 2))]), ["x"], EncodeContext())
        [{'$ref': 'x'}, {'$tuple': [1, 2]}]
    """
    if _depth > MAX_DEPTH:
        raise ctx.refuse(f"holds values nested deeper than {MAX_DEPTH} levels")
    d = _depth + 1
    if isinstance(template, Ref):
        return {"$ref": names[template.index]}
    if isinstance(template, Const):
        return encode_value(template.value, ctx, _depth)
    if isinstance(template, NamedTupleT):
        return {
            "$namedtuple": {
                "type": _reference(template.cls, ctx),
                "items": [encode_template(t, names, ctx, d) for t in template.items],
            }
        }
    if isinstance(template, ListT):
        return [encode_template(t, names, ctx, d) for t in template.items]
    if isinstance(template, TupleT):
        return {"$tuple": [encode_template(t, names, ctx, d) for t in template.items]}
    if isinstance(template, SliceT):
        return {"$slice": [encode_template(t, names, ctx, d) for t in template.items]}
    if isinstance(template, DictT):
        values = [encode_template(t, names, ctx, d) for t in template.values]
        if _plain_keys(template.keys):
            return dict(zip(template.keys, values, strict=True))
        return {"$dict": [[encode_value(k, ctx, d), v] for k, v in zip(template.keys, values, strict=True)]}
    raise ctx.refuse(f"holds a {type(template).__name__} template, which the symgraph format cannot store")


RefResolver = Callable[[Any, str], int]


def _expect(value: Any, tp: type, path: str, what: str) -> Any:
    if type(value) is not tp:
        raise SpecError(f"{path}: expected {what}, got {escape(describe(value))}")
    return value


def _items(payload: Any, path: str, n: int | None = None) -> list[Any]:
    if type(payload) is not list or (n is not None and len(payload) != n):
        size = "a list" if n is None else f"a list of {n}"
        raise SpecError(f"{path}: expected {size}, got {escape(describe(payload))}")
    return payload


def _number(value: Any, path: str) -> Any:
    if type(value) in (int, float):
        return value
    if type(value) is dict and list(value) == ["$float"] and value["$float"] in _FLOATS:
        return _FLOATS[value["$float"]]
    raise SpecError(f"{path}: expected a number, got {escape(describe(value))}")


def _decode(j: Any, ctx: DecodeContext, path: str, refs: RefResolver | None, depth: int) -> Template:
    """JSON data as a template: a :class:`Const` unless a ``$ref`` is inside."""
    if depth > MAX_DEPTH:
        raise SpecError(f"{path}: values are nested deeper than {MAX_DEPTH} levels")
    tp = type(j)
    if tp in _ATOMS:
        return shared_const(j)
    if tp is float:
        return Const(j)
    d = depth + 1
    if tp is list:
        items = [_decode(v, ctx, f"{path}[{i}]", refs, d) for i, v in enumerate(j)]
        if all(isinstance(t, Const) for t in items):
            return Const([t.value for t in items])  # type: ignore[attr-defined]
        return ListT(items)
    if tp is not dict:
        raise SpecError(f"{path}: {escape(describe(j))} is not JSON data")
    tags = [k for k in j if type(k) is str and k.startswith("$")]
    if not tags:
        keys = list(j)
        values = [_decode(v, ctx, f"{path}[{escape(repr(k))}]", refs, d) for k, v in j.items()]
        return _dict(keys, values)
    if len(j) != 1:
        raise SpecError(f"{path}: an object with a '$' key has exactly one key, got {len(j)}")
    tag = tags[0]
    payload = j[tag]
    where = f"{path}.{tag}"
    if tag == "$ref":
        if refs is None:
            raise SpecError(f"{path}: a $ref cannot appear here (only in a step's arguments and in the outputs)")
        return shared_ref(refs(payload, path))
    if tag == "$tuple":
        items = [_decode(v, ctx, f"{where}[{i}]", refs, d) for i, v in enumerate(_items(payload, where))]
        if all(isinstance(t, Const) for t in items):
            return Const(tuple(t.value for t in items))  # type: ignore[attr-defined]
        return TupleT(items)
    if tag == "$dict":
        pairs = _items(payload, where)
        keys = [
            _decode_value(_items(p, f"{where}[{i}]", 2)[0], ctx, f"{where}[{i}][0]", d) for i, p in enumerate(pairs)
        ]
        for i, key in enumerate(keys):
            try:
                hash(key)
            except TypeError:
                raise SpecError(f"{where}[{i}][0]: a dict key must be hashable, got {describe(key)}") from None
        values = [_decode(p[1], ctx, f"{where}[{i}][1]", refs, d) for i, p in enumerate(pairs)]
        return _dict(keys, values)
    if tag == "$slice":
        items = [_decode(v, ctx, f"{where}[{i}]", refs, d) for i, v in enumerate(_items(payload, where, 3))]
        if all(isinstance(t, Const) for t in items):
            return Const(slice(*(t.value for t in items)))  # type: ignore[attr-defined]
        return SliceT(items)
    if tag == "$namedtuple":
        fields = _fields(payload, where, {"type", "items"})
        cls = ctx.allow.resolve(fields["type"], f"{where}.type")
        if not (isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields")):
            raise SpecError(f"{where}.type: {escape(fields['type'])} is not a named tuple class")
        items = [_decode(v, ctx, f"{where}.items[{i}]", refs, d) for i, v in enumerate(_items(fields["items"], where))]
        if len(items) != len(cls._fields):
            raise SpecError(f"{where}.items: {cls.__name__} has {len(cls._fields)} fields, got {len(items)} items")
        if all(isinstance(t, Const) for t in items):
            return Const(cls(*(t.value for t in items)))  # type: ignore[attr-defined]
        return NamedTupleT(cls, items)
    return Const(_decode_leaf(tag, payload, ctx, where, d))


def _dict(keys: list[Any], values: list[Template]) -> Template:
    if all(isinstance(t, Const) for t in values):
        return Const({k: t.value for k, t in zip(keys, values, strict=True)})  # type: ignore[attr-defined]
    if len(set(map(_hashable_key, keys))) != len(keys):
        raise SpecError("a dict in the spec has the same key twice")
    return DictT(keys, values)


def _hashable_key(key: Any) -> Any:
    return (type(key), key)


def _decode_leaf(tag: str, payload: Any, ctx: DecodeContext, where: str, depth: int) -> Any:
    if tag == "$float":
        if payload not in _FLOATS:
            raise SpecError(f"{where}: expected 'nan', 'inf' or '-inf', got {escape(describe(payload))}")
        return _FLOATS[payload]
    if tag == "$complex":
        re_, im = _items(payload, where, 2)
        return complex(_number(re_, f"{where}[0]"), _number(im, f"{where}[1]"))
    if tag == "$bytes":
        _expect(payload, str, where, "base64 text")
        try:
            return base64.b64decode(payload, validate=True)
        except ValueError:
            raise SpecError(f"{where}: not valid base64") from None
    if tag == "$ellipsis":
        if payload is not None:
            raise SpecError(f"{where}: expected null")
        return Ellipsis
    if tag in ("$set", "$frozenset"):
        items = [_decode_value(v, ctx, f"{where}[{i}]", depth) for i, v in enumerate(_items(payload, where))]
        try:
            return set(items) if tag == "$set" else frozenset(items)
        except TypeError:
            raise SpecError(f"{where}: the items of a set must be hashable") from None
    if tag == "$range":
        items = _items(payload, where, 3)
        if any(type(v) is not int for v in items) or items[2] == 0:
            raise SpecError(f"{where}: expected [start, stop, step], ints with a step that is not 0")
        return range(*items)
    if tag == "$object":
        return ctx.allow.resolve(payload, where)
    if tag == "$partial":
        fields = _fields(payload, where, {"func", "args", "kwargs"})
        func = _decode_value(fields["func"], ctx, f"{where}.func", depth)
        if not callable(func):
            raise SpecError(f"{where}.func: expected a callable")
        args = [_decode_value(v, ctx, f"{where}.args[{i}]", depth) for i, v in enumerate(_items(fields["args"], where))]
        kwargs = _decode_value(fields["kwargs"], ctx, f"{where}.kwargs", depth)
        if type(kwargs) is not dict or not all(type(k) is str for k in kwargs):
            raise SpecError(f"{where}.kwargs: expected an object with str keys")
        return functools.partial(func, *args, **kwargs)
    if tag == "$constant":
        return ctx.constant(payload, where)
    if not any(c.tag == tag for c in _VALUE_CODECS) and "." in tag:
        _load_backend(tag[1:].split(".")[0])
    for codec in reversed(_VALUE_CODECS):
        if codec.tag == tag:
            try:
                return codec.decode(payload, ctx, where)
            except SpecError:
                raise
            except (TypeError, ValueError, KeyError, OverflowError, RuntimeError) as exc:
                raise SpecError(f"{where}: {escape(str(exc))}") from None
    return ctx.lookup(tag, payload, where)


def _fields(
    payload: Any, path: str, keys: set[str], optional: set[str] | frozenset[str] = frozenset()
) -> dict[str, Any]:
    if type(payload) is not dict:
        raise SpecError(f"{path}: expected an object, got {escape(describe(payload))}")
    missing = keys - set(payload)
    unknown = set(payload) - keys - optional
    if missing or unknown:
        parts = [f"missing {', '.join(sorted(map(repr, missing)))}" if missing else ""]
        parts.append(f"unknown {', '.join(sorted(escape(repr(k)) for k in unknown))}" if unknown else "")
        raise SpecError(
            f"{path}: {'; '.join(p for p in parts if p)} (expected keys: {', '.join(sorted(keys | optional))})"
        )
    return payload


def _decode_value(j: Any, ctx: DecodeContext, path: str, depth: int = 0) -> Any:
    template = _decode(j, ctx, path, None, depth)
    assert isinstance(template, Const)
    return template.value


def decode_value(j: Any, ctx: DecodeContext, path: str) -> Any:
    """The value JSON data ``j`` stands for; the inverse of :func:`encode_value`.

    Raises:
        SpecError: ``j`` is malformed, or names something ``ctx.allow`` does not permit.

    Example:
        >>> decode_value({"$tuple": [1, {"$float": "inf"}]}, DecodeContext(Allowlist(), None, {}), "spec")
        (1, inf)
    """
    return _decode_value(j, ctx, path)


# -- operations ----------------------------------------------------------------------
_STEP_KEYS = frozenset({"name", "display", "op", "of", "description", "where"})


# Private names are internals (a tensor's _share_filename_cpu_), refused but for
# the public API of named tuples.
_PUBLIC_PRIVATE_NAMES = frozenset({"_asdict", "_replace", "_fields", "_make", "_field_defaults"})


def _check_name(name: str, path: str) -> None:
    private = name.startswith("_") and name not in _OPERATOR_DUNDERS and name not in _PUBLIC_PRIVATE_NAMES
    if private or name in DENIED_ATTRIBUTES or name.startswith(INTROSPECTION_PREFIXES):
        raise SpecError(
            f"{path}: the attribute or method name {escape(name)!r} is refused when loading: private and "
            "dunder names (but operators'), the attributes of frames, code and generators, and names that "
            "reach files, pickles or code are never looked up from a spec"
        )


# Builtins that read an attribute named by a string: allowed only as the function
# a step calls, with a constant name that is checked. Anywhere else (map(getattr,
# ...), a partial of it, a key= argument) the name would come from data.
_NAME_GETTERS = (getattr, hasattr)


def _holds_name_getter(value: Any) -> bool:
    stack = [value]
    budget = 100_000  # constants are JSON-sized; a bound keeps a hostile one from stalling
    while stack and budget:
        budget -= 1
        item = stack.pop()
        if any(item is f for f in _NAME_GETTERS):
            return True
        if type(item) in (list, tuple, set, frozenset):
            stack.extend(item)
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
    templates = list(op.templates())
    if isinstance(op, Call) and isinstance(op.func, Const) and any(op.func.value is f for f in _NAME_GETTERS):
        name = op.args[1] if len(op.args) > 1 else None
        if not (isinstance(name, Const) and type(name.value) is str):
            raise SpecError(f"{path}: getattr and hasattr may only be called with a constant str name")
        _check_name(name.value, path)
        templates.remove(op.func)
    if any(_holds_name_getter(value) for template in templates for value in template.constants()):
        raise SpecError(f"{path}: getattr and hasattr may only be the function a step calls, with a constant name")


def _encode_field(value: Any, kind: str, names: Sequence[str], ctx: EncodeContext) -> Any:
    if kind == "template":
        return encode_template(value, names, ctx)
    if kind == "templates":
        return [encode_template(t, names, ctx) for t in value]
    return value


def _decode_field(j: Any, kind: str, ctx: DecodeContext, path: str, refs: RefResolver) -> Any:
    if kind == "template":
        return _decode(j, ctx, path, refs, 0)
    if kind == "templates":
        return tuple(_decode(v, ctx, f"{path}[{i}]", refs, 0) for i, v in enumerate(_items(j, path)))
    expected = {"str": str, "int": int, "bool": bool}[kind]
    if type(j) is not expected:
        raise SpecError(f"{path}: expected {kind}, got {escape(describe(j))}")
    return j


for _codec in (
    OpCodec("operator", Operator, (("symbol", "symbol", "str"), ("operands", "operands", "templates"))),
    OpCodec("getattr", GetAttr, (("name", "attr", "str"),), subject=True),
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
            "register a check codec (symgraph.plugin.register_check_codec), or save with check_inputs off"
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
    for i, entry in enumerate(_items(spec["inputs"], f"{path}inputs")):
        where = f"{path}inputs[{i}]"
        fields = _fields(entry, where, {"name"}, {"display", "description", "check"})
        name = _name(fields["name"], f"{where}.name", slots)
        display = _expect(fields.get("display", name), str, f"{where}.display", "a str")
        description = _expect(fields.get("description", ""), str, f"{where}.description", "a str")
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
    for j, entry in enumerate(_items(spec["steps"], f"{path}steps")):
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
        fields = _fields(entry, where, required, {"display", "description", "where"})
        name = _name(fields["name"], f"{where}.name", slots)
        parents = _Parents(slots)
        ref = parents.ref

        if codec.subject:
            ref(fields["of"], f"{where}.of")
        values = {
            attribute: _decode_field(fields[key], kind_, ctx, f"{where}.{key}", ref)
            for attribute, key, kind_ in codec.fields
        }
        try:
            op = codec.op_type(*(values[a] for a in codec.op_type.payload))
        except SpecError:
            raise
        except (TypeError, ValueError, KeyError) as exc:
            raise SpecError(f"{where}: {escape(str(exc))}") from None
        _check_op(op, where)
        if not parents.slots:
            raise SpecError(f"{where}: a step must use an input or an earlier step")
        display = _expect(fields.get("display", name), str, f"{where}.display", "a str")
        description = _expect(fields.get("description", ""), str, f"{where}.description", "a str")
        location = _expect(fields.get("where", ""), str, f"{where}.where", "a str")
        slots[name] = len(inputs) + j
        steps.append(Step(op, tuple(parents.slots), display, description, location))

    def output_ref(target: Any, at: str) -> int:
        slot = slots.get(target) if type(target) is str else None
        if slot is None:
            raise SpecError(f"{at}: {escape(repr(target))} is not an input or a step")
        return slot

    outputs = _decode(spec["outputs"], ctx, f"{path}outputs", output_ref, 0)
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
        _load_backend(j["kind"].split(".")[0])
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


def _decode_options(j: Any, ctx: DecodeContext, path: str) -> dict[str, Any]:
    fields = _fields(j, path, {"check_inputs", "executor", "executor_options"})
    options = _decode_value(fields["executor_options"], ctx, f"{path}.executor_options")
    if type(options) is not dict or not all(type(k) is str for k in options):
        raise SpecError(f"{path}.executor_options: expected an object")
    return {
        "check_inputs": _expect(fields["check_inputs"], bool, f"{path}.check_inputs", "true or false"),
        "executor": _expect(fields["executor"], str, f"{path}.executor", "an executor's name"),
        "executor_options": options,
    }


def encode_model(model: Any, ctx: EncodeContext) -> dict[str, Any]:
    """``model`` as a spec, with its constants collected on ``ctx`` (the spec has no manifest yet).

    Nested models (a torch model used as a layer) are encoded with the
    enclosing model's context, so that all constants land in one manifest.
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


def decode_model(spec: Any, ctx: DecodeContext, path: str = "") -> Any:
    """Build the model ``spec`` describes, reading constants and names through ``ctx``.

    Raises:
        SpecError: the spec is malformed or names something not permitted.
    """
    where = path.rstrip(".") or "spec"
    if type(spec) is not dict:
        raise SpecError(f"{where}: expected an object, got {escape(describe(spec))}")
    if spec.get("format") != FORMAT:
        raise SpecError(f"{where}: 'format' must be {FORMAT!r}, got {escape(repr(spec.get('format')))}")
    version = spec.get("version")
    if type(version) is not int or version < 1:
        raise SpecError(f"{where}: 'version' must be a positive int, got {escape(repr(version))}")
    if version > VERSION:
        raise SpecError(f"{where}: version {version} is newer than this symgraph reads ({VERSION}); upgrade symgraph")
    kind = spec.get("model")
    if type(kind) is not str:
        raise SpecError(f"{where}: 'model' must name the model kind, got {escape(repr(kind))}")
    codec = model_codec_for_kind(kind)
    optional: set[str] = {kind, "input_keys", "options", *({"constants"} if path == "" else ())}
    _fields(spec, where, _TOP_KEYS, optional)
    section = spec.get(kind, {})
    if type(section) is not dict:
        raise SpecError(f"{path}{kind}: expected an object")
    build = codec.decode(section, ctx, f"{path}{kind}")
    plan = _decode_plan(spec, ctx, path)
    options = _decode_options(spec.get("options", _DEFAULT_OPTIONS), ctx, f"{path}options")
    try:
        return build(plan, options)
    except SymgraphError:
        raise  # an executor that cannot run here, say: its own error says why
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        raise SpecError(f"{where}: the model cannot be built: {escape(str(exc), 500)}") from None


def _check_manifest(manifest: Any) -> dict[str, dict[str, Any]]:
    if type(manifest) is not dict:
        raise SpecError("spec.constants: expected an object of constant entries")
    for key, entry in manifest.items():
        if type(entry) is not dict or type(entry.get("codec")) is not str:
            raise SpecError(f"spec.constants[{escape(repr(key))}]: expected an object with a 'codec'")
    return manifest


def spec_to_model(
    spec: Any, constants: Mapping[str, Any] | None = None, allow: Iterable[Any] = (), *, kind: str | None = None
) -> Any:
    """Build a model from ``spec``; ``constants`` holds the values of its ``$constant`` entries.

    Args:
        spec: The spec, as :func:`model_to_spec` or a person wrote it.
        constants: The constants by key, or ``None``.
        allow: Functions, classes or modules to permit beyond the default ones.
        kind: The model kind the caller builds (``from_spec`` of a model class); ``None``: any.

    Raises:
        SpecError: the spec is malformed, is of another kind, or names something not permitted.
    """
    if type(spec) is not dict:
        raise SpecError(f"spec: expected a dict, got {escape(describe(spec))}")
    manifest = _check_manifest(spec.get("constants", {}))
    if constants is not None and not isinstance(constants, Mapping):
        raise TypeError(f"constants must be a mapping of key to value, got {type(constants).__name__}")
    if kind is not None and spec.get("model") != kind:
        raise SpecError(
            f"spec: this is a {escape(repr(spec.get('model')))} model, and this class builds {kind!r} models; "
            "use symgraph.load, or the from_spec of that model class"
        )
    ctx = DecodeContext(Allowlist(allow), constants, manifest)
    return decode_model(spec, ctx)
