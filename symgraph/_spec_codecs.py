"""What backends register so that ``symgraph.save`` can store what they add, and the encoding contexts.

An operation is stored by an :class:`OpCodec`, an input check by a
:class:`CheckCodec`, an inline value by a :class:`ValueCodec`, an array or
tensor in a file by a :class:`ConstantCodec`, and a model class by a
:class:`ModelCodec`. :class:`EncodeContext` and :class:`DecodeContext` carry
what one model's encoding collects and one spec's decoding needs.
"""

from __future__ import annotations

import contextlib
import copy as _copy
import dataclasses
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from symgraph._allowlist import Allowlist
from symgraph._errors import SaveError, SpecError
from symgraph._ops import Operation
from symgraph._plan import Plan
from symgraph._text import escape

__all__ = [
    "CheckCodec",
    "ConstantCodec",
    "DecodeContext",
    "EncodeContext",
    "Files",
    "ModelCodec",
    "OpCodec",
    "ValueCodec",
    "constant_codec",
    "load_backend",
    "model_codec_for_kind",
    "model_codec_for_type",
    "register_check_codec",
    "register_constant_codec",
    "register_model_codec",
    "register_op_codec",
    "register_value_codec",
]

_LOCK = threading.Lock()
# The keys every step has; an op codec's fields may not use them.
_STEP_KEYS = frozenset({"name", "display", "op", "of", "parents", "description", "where"})
# The tags of the values the core stores; a value codec's tag must be another.
BUILTIN_TAGS = frozenset(
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
        "$ordereddict",
        "$object",
        "$method",
        "$partial",
        "$constant",
    }
)


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

    def copy(self, value: Any) -> Any:
        """A copy of ``value`` that the model owns, for constants given by the caller."""
        return _copy.deepcopy(value)

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
    """The files of a saved model, as constant codecs read them (:class:`symgraph.plugin.FileReader` is one).

    Example:
        >>> from symgraph.plugin import FileReader
        >>> hasattr(FileReader, "size") and hasattr(FileReader, "read")
        True
    """

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
    """Store input checks of ``codec.check_type``; see :class:`CheckCodec`.

    Example:
        >>> from symgraph.plugin import CheckCodec, register_check_codec
        >>> class Positive:
        ...     def __call__(self, value):
        ...         assert value > 0
        >>> register_check_codec(CheckCodec("demo.positive", Positive, lambda c, ctx: {},
        ...                                 lambda fields, name, ctx, path: Positive()))
    """
    if not isinstance(codec, CheckCodec):
        raise TypeError(f"register_check_codec() needs a CheckCodec, got {type(codec).__name__}")
    with _LOCK:
        _CHECK_BY_TYPE[codec.check_type] = codec
        _CHECK_BY_KIND[codec.kind] = codec


def register_value_codec(codec: ValueCodec) -> None:
    """Store values of ``codec.types`` inline as ``{codec.tag: payload}``; see :class:`ValueCodec`.

    Example:
        >>> import fractions
        >>> from symgraph.plugin import EncodeContext, ValueCodec, encode_value, register_value_codec
        >>> register_value_codec(ValueCodec("$fraction", (fractions.Fraction,),
        ...     lambda v, ctx: [v.numerator, v.denominator], lambda p, ctx, path: fractions.Fraction(*p)))
        >>> encode_value(fractions.Fraction(1, 3), EncodeContext())
        {'$fraction': [1, 3]}
    """
    if not isinstance(codec, ValueCodec):
        raise TypeError(f"register_value_codec() needs a ValueCodec, got {type(codec).__name__}")
    if not codec.tag.startswith("$") or codec.tag in BUILTIN_TAGS:
        raise ValueError(f"a value codec's tag must start with '$' and not be a built-in one, got {codec.tag!r}")
    with _LOCK:
        _VALUE_CODECS[:] = [c for c in _VALUE_CODECS if c.tag != codec.tag] + [codec]


def register_constant_codec(codec: ConstantCodec) -> None:
    """Store values of ``codec.types`` in files beside the spec; see :class:`ConstantCodec`.

    Example:
        >>> import array
        >>> from symgraph.plugin import ConstantCodec, constant_codec, register_constant_codec
        >>> class ArrayCodec(ConstantCodec):
        ...     name = "demo.array"
        ...     types = (array.array,)
        ...     def describe(self, value):
        ...         return {"typecode": value.typecode, "length": len(value)}
        >>> register_constant_codec(ArrayCodec())
        >>> constant_codec("demo.array").describe(array.array("d", [1.0, 2.0]))
        {'typecode': 'd', 'length': 2}
    """
    if not isinstance(codec, ConstantCodec):
        raise TypeError(f"register_constant_codec() needs a ConstantCodec, got {type(codec).__name__}")
    with _LOCK:
        _CONSTANT_CODECS[:] = [c for c in _CONSTANT_CODECS if c.name != codec.name] + [codec]


def register_model_codec(codec: ModelCodec) -> None:
    """Store models of ``codec.model_type`` with ``"model": codec.kind``; see :class:`ModelCodec`.

    Example:
        >>> import symgraph
        >>> from symgraph.plugin import model_codec_for_type
        >>> model_codec_for_type(symgraph.SymbolicModel).kind  # registered by the core
        'symgraph'
    """
    if not isinstance(codec, ModelCodec):
        raise TypeError(f"register_model_codec() needs a ModelCodec, got {type(codec).__name__}")
    with _LOCK:
        _MODEL_CODECS[:] = [c for c in _MODEL_CODECS if c.kind != codec.kind] + [codec]


def constant_codec(name: str) -> ConstantCodec | None:
    """The constant codec called ``name``, loading the backend of that name if needed; ``None`` if none has it.

    Example:
        >>> constant_codec("no-such-codec") is None
        True
    """
    codec = next((c for c in _CONSTANT_CODECS if c.name == name), None)
    if codec is None and type(name) is str and name.isidentifier():
        load_backend(name)  # the numpy codec is the numpy backend's
        codec = next((c for c in _CONSTANT_CODECS if c.name == name), None)
    return codec


def load_backend(kind: str) -> None:
    """Import the backend that registers ``kind``, through its entry point, if it has one.

    Example:
        >>> load_backend("no-such-backend")  # nothing to load: no error
    """
    from symgraph._backends import _available_entry_points

    entry = _available_entry_points().get(kind)
    if entry is not None:
        entry.load()


def model_codec_for_kind(kind: str) -> ModelCodec:
    """The codec for a spec's ``"model"`` value; a backend's is loaded through its entry point.

    Raises:
        SpecError: no installed backend stores models of that kind.

    Example:
        >>> model_codec_for_kind("symgraph").kind
        'symgraph'
    """
    codec = next((c for c in reversed(_MODEL_CODECS) if c.kind == kind), None)
    if codec is None and type(kind) is str and kind.isidentifier():
        load_backend(kind)
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

    Example:
        >>> import symgraph
        >>> class MyModel(symgraph.SymbolicModel):
        ...     pass
        >>> model_codec_for_type(MyModel).kind
        'symgraph'
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
        >>> from symgraph.plugin import encode_value
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

    @contextlib.contextmanager
    def names_scope(self, *, empty: bool = False) -> Iterator[None]:
        """Within the block, :meth:`name_object` names only for the block: a nested model's layers.

        Args:
            empty: Start the block with no names at all (a layer's constructor
                arguments, which are stored as values, not as the model's layers).
        """
        saved = self._named
        self._named = {} if empty else dict(saved)
        try:
            yield
        finally:
            self._named = saved

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
        >>> from symgraph.plugin import decode_value
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
        #: Whether constants are copied before use: those given to ``from_spec`` belong
        #: to the caller; those ``load`` read from the files are the model's own.
        self.copy_constants = True
        #: The executor the caller chose for the model, over the spec's; ``None``: the spec's.
        self.executor: str | None = None
        #: What a backend keeps while decoding (the layers built so far, say).
        self.state: dict[str, Any] = {}
        self._names: dict[str, dict[str, Any]] = {}
        self._copies: dict[str, Any] = {}

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
            if self.copy_constants:
                # Once per key, so that every value referring to it shares the copy.
                value = self._copies.setdefault(key, codec.copy(value))
        return value
