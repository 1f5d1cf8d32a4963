"""Values and argument templates as JSON data, and back.

Values are JSON where JSON has them; anything else is an object with one
``$``-key (``{"$tuple": [1, 2]}``, ``{"$object": "numpy:mean"}``). Templates are
values with ``{"$ref": name}`` where a symbolic value goes. Decoding checks every
part and turns names into objects only through the context's allowlist.
"""

from __future__ import annotations

import base64
import collections
import functools
import math
import types
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from symgraph._allowlist import attribute_name_permitted, reference_of
from symgraph._backends import backend_for
from symgraph._errors import SpecError
from symgraph._guards import read_attribute
from symgraph._spec_codecs import (
    _CONSTANT_CODECS,
    _VALUE_CODECS,
    DecodeContext,
    EncodeContext,
    load_backend,
)
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
    "MAX_DEPTH",
    "RefResolver",
    "decode_template",
    "decode_value",
    "encode_template",
    "encode_value",
    "expect_type",
    "list_of",
    "object_fields",
]

# JSON nesting a spec may use; deeper values are refused when saving and loading
# (the parser's own limit would surface as a RecursionError).
MAX_DEPTH = 100

# -- values and templates ------------------------------------------------------------
_ATOMS = (type(None), bool, int, str)
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
    if tp is collections.OrderedDict:
        return {"$ordereddict": [[encode_value(k, ctx, d), encode_value(v, ctx, d)] for k, v in value.items()]}
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
    if value is read_attribute:
        return {"$object": "builtins:getattr"}  # what a loaded model calls for getattr
    if callable(value) and reference_of(value) is None:
        method = _method_of(value)
        if method is not None:
            return {"$method": [encode_value(method[0], ctx, d), method[1]]}
    if callable(value) or isinstance(value, type) or reference_of(value) is not None:
        return {"$object": _reference(value, ctx)}
    raise ctx.refuse(
        f"holds {describe(value)}, a {type(value).__qualname__}, which the symgraph format cannot store; "
        "save the model with pickle, or register a value codec for the type (symgraph.plugin.register_value_codec)"
    )


def _method_of(value: Any) -> tuple[Any, str] | None:
    """``(owner, name)`` when ``value`` is ``owner.name``, a method the spec stores as ``$method``.

    A bound method (``", ".join``, ``np.add.reduce``, ``dict.fromkeys``) or a
    method of a builtin class (``str.lower``).
    """
    name = getattr(value, "__name__", None)
    if type(name) is not str or not attribute_name_permitted(name):
        return None
    owner = getattr(value, "__self__", None)
    if owner is not None and not isinstance(owner, types.ModuleType):
        try:
            # A bound method is made anew at each lookup; equal when of the same owner.
            same = bool(getattr(owner, name) == value)
        except Exception:  # an owner whose lookup fails is not known to give it back
            return None
        return (owner, name) if same else None
    objclass = getattr(value, "__objclass__", None)
    if isinstance(objclass, type) and getattr(objclass, name, None) is value:
        return objclass, name
    return None


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
            f"holds {describe(obj)}, an object of type {type(obj).__qualname__}: the symgraph format names "
            "functions and classes by their import path, and stores no other objects. Use a function defined "
            "at the top level of a module instead (loading then needs allow=[it]), or save the model with pickle"
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


def expect_type(value: Any, tp: type, path: str, what: str) -> Any:
    if type(value) is not tp:
        raise SpecError(f"{path}: expected {what}, got {escape(describe(value))}")
    return value


def list_of(payload: Any, path: str, n: int | None = None) -> list[Any]:
    if type(payload) is not list or (n is not None and len(payload) != n):
        size = "a list" if n is None else f"a list of {n}"
        raise SpecError(f"{path}: expected {size}, got {escape(describe(payload))}")
    return payload


def _number(value: Any, path: str) -> Any:
    if type(value) in (int, float):
        return value
    if (
        type(value) is dict
        and list(value) == ["$float"]
        and type(value["$float"]) is str
        and value["$float"] in _FLOATS
    ):
        return _FLOATS[value["$float"]]
    raise SpecError(f"{path}: expected a number, got {escape(describe(value))}")


def decode_template(j: Any, ctx: DecodeContext, path: str, refs: RefResolver | None, depth: int) -> Template:
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
        items = [decode_template(v, ctx, f"{path}[{i}]", refs, d) for i, v in enumerate(j)]
        if all(isinstance(t, Const) for t in items):
            return Const([t.value for t in items])  # type: ignore[attr-defined]
        return ListT(items)
    if tp is not dict:
        raise SpecError(f"{path}: {escape(describe(j))} is not JSON data")
    tags = [k for k in j if type(k) is str and k.startswith("$")]
    if not tags:
        keys = list(j)
        values = [decode_template(v, ctx, f"{path}[{escape(repr(k))}]", refs, d) for k, v in j.items()]
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
        items = [decode_template(v, ctx, f"{where}[{i}]", refs, d) for i, v in enumerate(list_of(payload, where))]
        if all(isinstance(t, Const) for t in items):
            return Const(tuple(t.value for t in items))  # type: ignore[attr-defined]
        return TupleT(items)
    if tag == "$dict":
        pairs = list_of(payload, where)
        keys = [
            decode_value(list_of(p, f"{where}[{i}]", 2)[0], ctx, f"{where}[{i}][0]", d) for i, p in enumerate(pairs)
        ]
        for i, key in enumerate(keys):
            try:
                hash(key)
            except TypeError:
                raise SpecError(f"{where}[{i}][0]: a dict key must be hashable, got {describe(key)}") from None
        values = [decode_template(p[1], ctx, f"{where}[{i}][1]", refs, d) for i, p in enumerate(pairs)]
        return _dict(keys, values)
    if tag == "$slice":
        items = [decode_template(v, ctx, f"{where}[{i}]", refs, d) for i, v in enumerate(list_of(payload, where, 3))]
        if all(isinstance(t, Const) for t in items):
            return Const(slice(*(t.value for t in items)))  # type: ignore[attr-defined]
        return SliceT(items)
    if tag == "$namedtuple":
        fields = object_fields(payload, where, {"type", "items"})
        cls = ctx.allow.resolve(fields["type"], f"{where}.type")
        if not (isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields")):
            raise SpecError(f"{where}.type: {escape(fields['type'])} is not a named tuple class")
        items = [
            decode_template(v, ctx, f"{where}.items[{i}]", refs, d)
            for i, v in enumerate(list_of(fields["items"], where))
        ]
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
        if type(payload) is not str or payload not in _FLOATS:
            raise SpecError(f"{where}: expected 'nan', 'inf' or '-inf', got {escape(describe(payload))}")
        return _FLOATS[payload]
    if tag == "$complex":
        re_, im = list_of(payload, where, 2)
        return complex(_number(re_, f"{where}[0]"), _number(im, f"{where}[1]"))
    if tag == "$bytes":
        expect_type(payload, str, where, "base64 text")
        try:
            return base64.b64decode(payload, validate=True)
        except ValueError:
            raise SpecError(f"{where}: not valid base64") from None
    if tag == "$ellipsis":
        if payload is not None:
            raise SpecError(f"{where}: expected null")
        return Ellipsis
    if tag in ("$set", "$frozenset"):
        items = [decode_value(v, ctx, f"{where}[{i}]", depth) for i, v in enumerate(list_of(payload, where))]
        try:
            return set(items) if tag == "$set" else frozenset(items)
        except TypeError:
            raise SpecError(f"{where}: the items of a set must be hashable") from None
    if tag == "$ordereddict":
        pairs = [list_of(p, f"{where}[{i}]", 2) for i, p in enumerate(list_of(payload, where))]
        try:
            return collections.OrderedDict(
                (decode_value(k, ctx, f"{where}[{i}][0]", depth), decode_value(v, ctx, f"{where}[{i}][1]", depth))
                for i, (k, v) in enumerate(pairs)
            )
        except TypeError:
            raise SpecError(f"{where}: the keys of an ordered dict must be hashable") from None
    if tag == "$range":
        items = list_of(payload, where, 3)
        if any(type(v) is not int for v in items) or items[2] == 0:
            raise SpecError(f"{where}: expected [start, stop, step], ints with a step that is not 0")
        return range(*items)
    if tag == "$object":
        return ctx.allow.resolve(payload, where)
    if tag == "$method":
        owner, name = list_of(payload, where, 2)
        if type(name) is not str or not attribute_name_permitted(name):
            raise SpecError(f"{where}[1]: the method name {escape(repr(name))} is refused when loading")
        holder = decode_value(owner, ctx, f"{where}[0]", depth)
        method = getattr(holder, name, None)
        if not callable(method):
            raise SpecError(f"{where}: {escape(describe(holder))} has no method {escape(repr(name))}")
        return method
    if tag == "$partial":
        fields = object_fields(payload, where, {"func", "args", "kwargs"})
        func = decode_value(fields["func"], ctx, f"{where}.func", depth)
        if not callable(func):
            raise SpecError(f"{where}.func: expected a callable")
        args = [decode_value(v, ctx, f"{where}.args[{i}]", depth) for i, v in enumerate(list_of(fields["args"], where))]
        kwargs = decode_value(fields["kwargs"], ctx, f"{where}.kwargs", depth)
        if type(kwargs) is not dict or not all(type(k) is str for k in kwargs):
            raise SpecError(f"{where}.kwargs: expected an object with str keys")
        return functools.partial(func, *args, **kwargs)
    if tag == "$constant":
        return ctx.constant(payload, where)
    if not any(c.tag == tag for c in _VALUE_CODECS) and "." in tag:
        load_backend(tag[1:].split(".")[0])
    for codec in reversed(_VALUE_CODECS):
        if codec.tag == tag:
            try:
                return codec.decode(payload, ctx, where)
            except SpecError:
                raise
            except (TypeError, ValueError, KeyError, OverflowError, RuntimeError) as exc:
                raise SpecError(f"{where}: {escape(str(exc))}") from None
    return ctx.lookup(tag, payload, where)


def object_fields(
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


def decode_value(j: Any, ctx: DecodeContext, path: str, depth: int = 0) -> Any:
    """The value JSON data ``j`` stands for; the inverse of :func:`encode_value`.

    Raises:
        SpecError: ``j`` is malformed, holds a ``$ref``, or names something
            ``ctx.allow`` does not permit.

    Example:
        >>> from symgraph.plugin import Allowlist
        >>> decode_value({"$tuple": [1, {"$float": "inf"}]}, DecodeContext(Allowlist(), None, {}), "spec")
        (1, inf)
    """
    template = decode_template(j, ctx, path, None, depth)
    assert isinstance(template, Const)
    return template.value
