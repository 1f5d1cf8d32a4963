"""Which sizes of a recorded array are known, and the check run on a model's array inputs.

A size is reported as known only if it is the same for every input the model
accepts. Recording computes with one example; to find out which sizes follow
from the inputs' declared shapes alone, the recorded steps are run again on
*probes*, in four worlds where every unknown ``Input`` dimension takes another
size: 4, 1 and 0 (the same for every input), and a fourth where each input and
each of its axes gets its own size between 3 and 7. A size is known where the
example and every world in which the steps ran agree; a world where a step
fails is an input the model raises on, and if none ran, every size is unknown.

Two kinds of steps do not follow from shapes alone, and are given a synthetic
probe instead, whose undecided axes have other lengths in every world (the
example's plus 3, 1, 0, and another), so that the sizes computed from them come
out right downstream:

* steps whose sizes depend on the data: boolean masks, ``np.unique``,
  ``nonzero`` and the like are listed, and any other pure step that takes data
  where a size could be given (``np.repeat(x, counts)``, ``x[:k]``,
  ``np.arange(n)``) is run once more on replaced values of that data (zeros,
  ones, a few distinct values); the axes whose sizes change are undecided;
* steps that are not known to be pure: functions wrapped with
  ``symgraph.add_to_graph``, ``numpy.random``, I/O, callables from other
  libraries. They are never run again, since they may have side effects or
  advance a random generator; every axis of what they return is undecided.

Probes are computed only when a shape is asked for (a read, a summary, building
a model), and only for steps known to be pure: numpy's own functions, ufuncs and
array methods, operators, indexing and array attributes, on numpy values and
with constants that are plain data.
"""

from __future__ import annotations

import math
import operator
import sys
import types
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from symgraph import InputError
from symgraph.plugin import (
    Call,
    Const,
    GetAttr,
    MethodCall,
    Node,
    Operation,
    Operator,
    Slice,
    Unpack,
    fold_ancestors,
)

__all__ = [
    "EXAMPLE_SIZE",
    "PROBE_SIZES",
    "WORLDS",
    "ArrayCheck",
    "dtype_signature",
    "format_dims",
    "probe_size",
    "read_reasons",
    "symbolic_shape",
    "upstream_placeholders",
]

#: Size of an unknown dimension in the example value that recording computes with.
EXAMPLE_SIZE = 2
#: Its size in the first three probe worlds; the fourth gives each axis its own.
PROBE_SIZES = (4, 1, 0)
#: Number of probe worlds.
WORLDS = 4


def probe_size(world: int, input_number: int, axis: int) -> int:
    """Size of unknown axis ``axis`` of the ``input_number``-th ``Input`` in probe world ``world``.

    Example:
        >>> [probe_size(w, 0, 0) for w in range(WORLDS)], probe_size(3, 1, 0), probe_size(3, 0, 1)
        ([4, 1, 0, 3], 4, 4)
    """
    if world < len(PROBE_SIZES):
        return PROBE_SIZES[world]
    return 3 + (input_number + axis) % 5


def _target_length(world: int, example: int, salt: int) -> int:
    # Lengths of an undecided axis in the probe worlds: longer than the example,
    # 1, 0 (so that slices such as [:3] are caught), and one that differs between
    # steps, so that differences of undecided sizes do not cancel out.
    if world == 0:
        return example + 3
    if world == 1:
        return 1
    if world == 2:
        return 0
    return example + 1 + salt % 4


def format_dims(dims: Sequence[int | None]) -> str:
    """A shape as users write it, ``None`` for unknown sizes.

    Example:
        >>> format_dims((None, 3)), format_dims((5,))
        ('(None, 3)', '(5,)')
    """
    return str(tuple(dims))


# -- what is pure -----------------------------------------------------------------------

_BUDGET = 10_000  # items looked at when deciding that a constant is plain data

_PLAIN_TYPES = frozenset({type(None), bool, int, float, complex, str, bytes, type(Ellipsis), range})
_PLAIN_CLASSES = frozenset({bool, int, float, complex, str, bytes, object})


def _plain(value: Any) -> bool:
    """Whether ``value`` is data that numpy code cannot run user code through."""
    # Exact types only: a subclass's methods may be anyone's.
    stack = [value]
    budget = _BUDGET
    while stack:
        budget -= 1
        if budget < 0:
            return False
        v = stack.pop()
        tp = type(v)
        if tp in _PLAIN_TYPES or isinstance(v, np.dtype):
            continue
        if tp is np.ndarray:
            if v.dtype.hasobject:
                return False
        elif isinstance(v, np.generic):
            if tp.__module__ != "numpy" or v.dtype.hasobject:
                return False
        elif tp is tuple or tp is list or (isinstance(v, tuple) and tp.__module__.startswith("numpy")):
            stack.extend(v)  # numpy's own named tuples too (np.linalg.svd's result)
        elif tp is dict:
            if not all(type(k) is str for k in v):
                return False
            stack.extend(v.values())
        elif tp is slice:
            stack += (v.start, v.stop, v.step)
        elif isinstance(v, type):
            if v not in _PLAIN_CLASSES and not (issubclass(v, np.generic) and v.__module__ == "numpy"):
                return False
        else:
            return False
    return True


def _array_like(value: Any) -> bool:
    return (type(value) is np.ndarray or isinstance(value, np.generic)) and _plain(value)


_IMPURE_MODULES = (
    "numpy.random",
    "numpy.testing",
    "numpy.ctypeslib",
    "numpy.f2py",
    "numpy.distutils",
    "numpy.ma",
    "numpy.lib._npyio_impl",
    "numpy.lib.npyio",
    "numpy.lib.format",
    "numpy.lib.stride_tricks",
    "numpy.lib._stride_tricks_impl",
)
# numpy functions with side effects (files, global state, writing into an
# argument) or that call code passed to them.
_IMPURE_NAMES = frozenset(
    {
        "save",
        "savez",
        "savez_compressed",
        "savetxt",
        "load",
        "loadtxt",
        "genfromtxt",
        "fromfile",
        "fromregex",
        "frombuffer",
        "fromstring",
        "fromiter",
        "fromfunction",
        "memmap",
        "copyto",
        "put",
        "putmask",
        "place",
        "fill_diagonal",
        "put_along_axis",
        "apply_along_axis",
        "apply_over_axes",
        "vectorize",
        "frompyfunc",
        "piecewise",
        "seterr",
        "seterrcall",
        "setbufsize",
        "set_printoptions",
        "printoptions",
        "errstate",
        "info",
        "show_config",
        "show_runtime",
        "from_dlpack",
        "nditer",
        "nested_iters",
        "add_docstring",
        "add_newdoc",
    }
)
_UFUNC_HOMES = tuple(getattr(np, name) for name in ("strings", "char", "linalg") if hasattr(np, name))
_UFUNC_METHODS = frozenset({"reduce", "accumulate", "reduceat", "outer"})
# Builtins that the core records for round(), divmod(), math.floor... and
# operator functions: on numpy values they run numpy's own methods.
_PURE_BUILTINS: frozenset[Any] = frozenset(
    {
        round,
        divmod,
        pow,
        abs,
        len,
        math.floor,
        math.ceil,
        math.trunc,
        *(getattr(operator, name) for name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow")),
        *(getattr(operator, name) for name in ("neg", "pos", "abs", "invert", "matmul", "getitem")),
        *(getattr(operator, name) for name in ("eq", "ne", "lt", "le", "gt", "ge", "and_", "or_", "xor")),
    }
)
_PURE_METHODS = frozenset(
    name
    for name, attr in vars(np.ndarray).items()
    if isinstance(attr, types.MethodDescriptorType) and not name.startswith("_")
) - {
    "tofile",
    "dump",
    "dumps",
    "fill",
    "put",
    "itemset",
    "resize",
    "setfield",
    "setflags",
    "sort",
    "partition",
    "byteswap",
}
_PURE_ATTRS = frozenset({"T", "mT", "real", "imag", "shape", "ndim", "size", "dtype", "itemsize", "nbytes", "strides"})
# Steps whose result describes only the shape or dtype of their argument.
_SHAPE_ATTRS = _PURE_ATTRS - {"T", "mT", "real", "imag"}
_SHAPE_FUNCTIONS = frozenset({"shape", "ndim", "size", "result_type"})


def _ufunc_is_numpys(ufunc: np.ufunc) -> bool:
    name = ufunc.__name__
    return getattr(np, name, None) is ufunc or any(getattr(home, name, None) is ufunc for home in _UFUNC_HOMES)


_FUNCTION_TYPES = (types.BuiltinFunctionType, types.FunctionType, type(np.concatenate))


def _numpy_function_name(func: Any) -> str | None:
    """The name of ``func`` if it is one of numpy's own pure functions, else ``None``."""
    # Only types whose attributes are plain slots: looking at a user's object
    # could run its code.
    if isinstance(func, np.ufunc):
        return func.__name__ if _ufunc_is_numpys(func) else None
    if not isinstance(func, _FUNCTION_TYPES):
        return None
    owner = getattr(func, "__self__", None)
    if isinstance(owner, np.ufunc):
        name = getattr(func, "__name__", None)
        return name if name in _UFUNC_METHODS and _ufunc_is_numpys(owner) else None
    module = getattr(func, "__module__", None)
    name = getattr(func, "__name__", None)
    if type(module) is not str or type(name) is not str:
        return None
    if module != "numpy" and not module.startswith("numpy."):
        return None
    if name in _IMPURE_NAMES or any(module == m or module.startswith(m + ".") for m in _IMPURE_MODULES):
        return None
    # The function itself, not one that only claims numpy's module and name.
    home = sys.modules.get(module)
    return name if home is not None and getattr(home, name, None) is func else None


def _is_ufunc_call(func: Any) -> bool:
    return isinstance(func, np.ufunc) or (
        isinstance(func, types.BuiltinMethodType) and isinstance(func.__self__, np.ufunc)
    )


def _kwarg_names(template: Any) -> Sequence[str]:
    if isinstance(template, Const):
        return list(template.value)
    return list(getattr(template, "keys", ()))


def _templates_plain(templates: Sequence[Any]) -> bool:
    for template in templates:
        stack = [template]
        while stack:
            t = stack.pop()
            if type(t).__name__ == "NamedTupleT":  # builds a class of the user's
                return False
            stack.extend(t.children())
        if not all(_plain(c) for c in template.constants()):
            return False
    return True


def _pure(op: Operation, values: Sequence[Any]) -> bool:
    """Whether running ``op`` again on numpy values like ``values`` runs only numpy's own code."""
    if not all(_plain(v) for v in values):
        return False
    if isinstance(op, (Operator, Slice)):
        return _templates_plain(op.templates())
    if isinstance(op, Unpack):
        return True
    if isinstance(op, GetAttr):
        owner = values[0]
        if isinstance(owner, tuple):  # a field of one of numpy's named tuples (already known to be plain)
            return op.name in getattr(type(owner), "_fields", ())
        return op.name in _PURE_ATTRS and _array_like(owner)
    if isinstance(op, MethodCall):
        return (
            op.name in _PURE_METHODS
            and _array_like(values[0])
            and "out" not in _kwarg_names(op.kwargs)
            and _templates_plain(op.templates())
        )
    if isinstance(op, Call):
        if not isinstance(op.func, Const):
            return False
        func = op.func.value
        builtin = type(func) is types.BuiltinFunctionType and func in _PURE_BUILTINS
        if not builtin and _numpy_function_name(func) is None:
            return False
        return "out" not in _kwarg_names(op.kwargs) and _templates_plain((*op.args, op.kwargs))
    return False


def _shape_only(op: Operation) -> bool:
    """Whether ``op``'s result depends only on the shapes and dtypes of its parents, not their data."""
    if isinstance(op, GetAttr):
        return op.name in _SHAPE_ATTRS
    if isinstance(op, Call) and isinstance(op.func, Const):
        func = op.func.value
        if type(func) is types.BuiltinFunctionType and func is len:
            return True
        return _numpy_function_name(func) in _SHAPE_FUNCTIONS
    return False


# -- which steps can have data-dependent sizes ------------------------------------------

# Listed as data-dependent whatever the replaced values show.
_DATA_SIZED = frozenset(
    {
        "unique",
        "unique_all",
        "unique_counts",
        "unique_inverse",
        "unique_values",
        "nonzero",
        "flatnonzero",
        "argwhere",
        "extract",
        "compress",
        "trim_zeros",
        "union1d",
        "intersect1d",
        "setdiff1d",
        "setxor1d",
        "bincount",
        "ix_",
    }
)
_HISTOGRAMS = frozenset({"histogram", "histogram_bin_edges", "histogram2d", "histogramdd"})
# Functions whose sizes can depend on the values of their first argument; for
# any other argument that holds data, the step is tried on other values too.
_FIRST_ARGUMENT_SIZES = (
    _DATA_SIZED
    | _HISTOGRAMS
    | frozenset(
        {
            "where",
            "arange",
            "zeros",
            "ones",
            "empty",
            "full",
            "eye",
            "identity",
            "linspace",
            "logspace",
            "geomspace",
            "tri",
            "tril_indices",
            "triu_indices",
            "indices",
            "diag_indices",
            "mask_indices",
            "broadcast_shapes",
            "fftfreq",
            "rfftfreq",
            "hanning",
            "hamming",
            "blackman",
            "bartlett",
            "kaiser",
            "lstsq",
            "roots",
            "poly",
            "polyadd",
            "polysub",
            "polymul",
            "polydiv",
            "polyder",
            "polyint",
        }
    )
)


def _refs(templates: Sequence[Any]) -> set[int]:
    out: set[int] = set()
    for template in templates:
        out.update(template.refs())
    return out


def _kwarg(template: Any, name: str) -> Any:
    if isinstance(template, Const):
        value = template.value.get(name)
        return None if value is None else Const(value)
    keys = list(getattr(template, "keys", ()))
    return template.values[keys.index(name)] if name in keys else None


# Functions and methods whose sizes follow from the shapes of the arguments at
# these positions, whatever their values: data there needs no second try.
_STATIC_POSITIONS: dict[str, frozenset[int]] = {
    name: frozenset(positions)
    for name, positions in {
        "where": (0, 1, 2),
        "clip": (1, 2),
        "dot": (0, 1),
        "vdot": (0, 1),
        "inner": (0, 1),
        "outer": (0, 1),
        "matmul": (0, 1),
        "kron": (0, 1),
        "cross": (0, 1),
        "tensordot": (0, 1),
        "take": (1,),
        "take_along_axis": (1,),
        "searchsorted": (1,),
        "digitize": (1,),
        "interp": (0, 1, 2),
        "isin": (1,),
        "percentile": (1,),
        "quantile": (1,),
        "nanpercentile": (1,),
        "nanquantile": (1,),
        "full_like": (1,),
        "polyval": (0, 1),
        "solve": (1,),
        "choose": (1,),
        "isclose": (1,),
        "allclose": (1,),
        "array_equal": (1,),
    }.items()
}
_STATIC_METHOD_POSITIONS: dict[str, frozenset[int]] = {
    "dot": frozenset({0}),
    "clip": frozenset({0, 1}),
    "take": frozenset({0}),
    "searchsorted": frozenset({0}),
    "choose": frozenset({0}),
}


def _slice_refs(index: Any) -> tuple[set[int], set[int]]:
    """Parents referred to inside ``slice(...)`` bounds of an index, and elsewhere in it."""
    bounds: set[int] = set()
    stack = [index]
    while stack:
        t = stack.pop()
        if type(t).__name__ == "SliceT":
            bounds.update(t.refs())
        else:
            stack.extend(t.children())
    return bounds, set(index.refs()) - bounds


def _sensitivity(op: Operation, tainted: Sequence[bool], values: Sequence[Any]) -> tuple[bool, bool]:
    """(try the step on other data, the step is listed as data-dependent)."""

    def any_tainted(templates: Sequence[Any]) -> bool:
        return any(tainted[i] for i in _refs([t for t in templates if t is not None]))

    def only_static(args: Sequence[Any], kwargs: Any, static: frozenset[int]) -> bool:
        return not any_tainted([kwargs]) and not any_tainted([a for i, a in enumerate(args) if i not in static])

    if isinstance(op, Slice):
        bounds, elsewhere = _slice_refs(op.index)
        masks = False
        other = False
        for i in elsewhere:
            if not tainted[i]:
                continue
            value = values[i]
            if type(value) is np.ndarray and value.dtype == np.bool_ and value.ndim > 0:
                masks = True
            elif not (isinstance(value, (np.ndarray, np.generic, int)) and np.result_type(value).kind in "iu"):
                other = True  # integer indices select by shape alone; anything else is tried
        return masks or other or any(tainted[i] for i in bounds), masks
    if isinstance(op, MethodCall):
        in_args = any_tainted([*op.args, op.kwargs])
        if op.name == "nonzero":
            return tainted[0], tainted[0]
        if op.name in ("compress", "repeat"):
            return in_args, in_args
        static = _STATIC_METHOD_POSITIONS.get(op.name)
        if static is not None and only_static(op.args, op.kwargs, static):
            return False, False
        return in_args, False
    if isinstance(op, Call) and isinstance(op.func, Const):
        func = op.func.value
        if _is_ufunc_call(func):
            return False, False
        name = _numpy_function_name(func) or ""
        first = any_tainted(op.args[:1])
        rest = any_tainted([*op.args[1:], op.kwargs])
        if not (first or rest):
            return False, False
        if name == "where" and (len(op.args) != 1 or _kwarg_names(op.kwargs)):
            return not only_static(op.args, op.kwargs, _STATIC_POSITIONS["where"]), False
        if name == "where":
            return True, True
        if name == "repeat":
            repeats = op.args[1] if len(op.args) > 1 else _kwarg(op.kwargs, "repeats")
            return True, any_tainted([repeats])
        if name in _HISTOGRAMS:
            bins = op.args[1] if len(op.args) > 1 else _kwarg(op.kwargs, "bins")
            chosen = isinstance(bins, Const) and isinstance(bins.value, str)
            return True, chosen or any_tainted([bins])
        static = _STATIC_POSITIONS.get(name)
        if static is not None and only_static(op.args, op.kwargs, static | {0}):
            return False, False
        return rest or name in _FIRST_ARGUMENT_SIZES, name in _DATA_SIZED
    return False, False


def _replaced(value: Any, mode: int, salt: int) -> Any:
    """Other data of the same type and shape: zeros, ones, or a few distinct values (``mode`` 0, 1, 2)."""
    if isinstance(value, bool):
        return (False, True, salt % 2 == 1)[mode]
    if isinstance(value, (int, float, complex)) and not isinstance(value, np.generic):
        return type(value)((0, 1, 2 + salt % 2)[mode])
    if type(value) is np.ndarray or isinstance(value, np.generic):
        array = np.asarray(value)
        kind = array.dtype.kind
        if kind == "b":
            new = [np.zeros_like(array), np.ones_like(array), (np.arange(array.size) + salt) % 2 == 1][mode]
        elif kind in "iufc":
            # Small values: a replaced count or size never allocates much more than the example did.
            new = [np.zeros_like(array), np.ones_like(array), (np.arange(array.size) + salt) % 3][mode]
        elif mode == 0:
            new = np.zeros_like(array)
        elif mode == 1:
            new = np.ones_like(array)
        else:
            return value
        new = np.asarray(new).astype(array.dtype).reshape(array.shape)
        return new[()] if isinstance(value, np.generic) else new
    if type(value) in (tuple, list) and len(value) <= 64:
        return type(value)(_replaced(item, mode, salt + i) for i, item in enumerate(value))
    return value


class _UnsupportedError(Exception):
    """A value whose structure the probes do not model."""


def _leaves(value: Any) -> tuple[list[Any], list[Any]]:
    """The arrays and scalars in ``value`` (nested tuples and lists), and its structure."""
    leaves: list[Any] = []
    structure: list[Any] = []
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, (tuple, list)):
            if len(v) > _BUDGET:
                raise _UnsupportedError
            structure.append((type(v), len(v)))
            stack.extend(reversed(v))
        elif isinstance(v, (np.ndarray, np.generic, bool, int, float, complex)):
            leaves.append(v)
            structure.append(np.ndim(v))
        else:
            raise _UnsupportedError
        if len(structure) > _BUDGET:
            raise _UnsupportedError
    return leaves, structure


def _with_length(array: Any, axis: int, length: int) -> Any:
    current = array.shape[axis]
    if current == length:
        return array
    if current > 0:
        return np.take(array, np.arange(length) % current, axis=axis)
    shape = list(array.shape)
    shape[axis] = length
    return np.zeros(shape, dtype=array.dtype)


_ALL = "all"  # every axis and container length is undecided


def _synthesize(base: Any, example: Any, undecided: Any, world: int, salt: int) -> Any:
    """``base`` with the undecided axes (of ``example``) set to the world's lengths."""
    example_leaves, _ = _leaves(example)
    # Iterative post-order rebuild of the nested tuples and lists.
    stack: list[tuple[Any, bool]] = [(base, False)]
    done: list[Any] = []
    leaf = 0
    while stack:
        value, expanded = stack.pop()
        if isinstance(value, (tuple, list)) and not expanded:
            stack.append((value, True))
            stack.extend((item, False) for item in reversed(value))
            continue
        if expanded:
            n = len(value)
            items = done[len(done) - n :] if n else []
            del done[len(done) - n :]
            if undecided is _ALL and not hasattr(value, "_fields") and n:
                items = [items[i % n] for i in range(_target_length(world, n, salt))]
            done.append(type(value)._make(items) if hasattr(value, "_fields") else type(value)(items))
            continue
        if leaf >= len(example_leaves) or np.ndim(value) != np.ndim(example_leaves[leaf]):
            raise _UnsupportedError
        axes = range(np.ndim(value)) if undecided is _ALL else undecided.get(leaf, ())
        new = value
        for axis in axes:
            new = _with_length(
                np.asarray(new), axis, _target_length(world, np.shape(example_leaves[leaf])[axis], salt + axis)
            )
        done.append(new)
        leaf += 1
    return done[0]


def _quietly(fn: Callable[[], Any]) -> Any:
    # Probes are our own runs; their warnings are not the user's.
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return fn()


def _undecided_axes(op: Operation, node: Node, tainted: Sequence[bool], listed: bool) -> Any:
    """Axes of ``node``'s value whose sizes change when its data arguments change; ``None`` if none."""
    values = [p.value for p in node.parents]
    example_leaves, example_structure = _leaves(node.value)
    changed: dict[int, set[int]] = {}
    for mode in range(3):
        args = [_replaced(v, mode, j) if t else v for j, (v, t) in enumerate(zip(values, tainted, strict=True))]
        try:
            result = _quietly(lambda args=args: op.evaluate(args))  # type: ignore[misc]
            leaves, structure = _leaves(result)
        except Exception:  # a run that fails on other data shows nothing
            continue
        if structure != example_structure:
            return _ALL
        for i, (a, b) in enumerate(zip(example_leaves, leaves, strict=True)):
            for axis, (m, n) in enumerate(zip(np.shape(a), np.shape(b), strict=True)):
                if m != n:
                    changed.setdefault(i, set()).add(axis)
    if changed:
        return changed
    if listed:
        return {i: set(range(np.ndim(leaf))) for i, leaf in enumerate(example_leaves)}
    return None


# -- the probes -------------------------------------------------------------------------

_SAME = object()  # the probe equals the example value: nothing upstream varies
_FAILED = object()  # the recorded steps fail in this world: it tells nothing about sizes
_POISON = object()  # a value the probes cannot model: every size downstream is unknown


class _Info:
    __slots__ = ("placeholders", "probes", "tainted")

    def __init__(self, probes: tuple[Any, ...], tainted: bool, placeholders: tuple[Node, ...]) -> None:
        self.probes = probes  # one per world
        self.tainted = tainted  # depends on the data of an input, not only on shapes
        self.placeholders = placeholders  # the placeholders upstream


_infos: weakref.WeakKeyDictionary[Node, _Info] = weakref.WeakKeyDictionary()


def _placeholder_info(node: Node) -> _Info:
    make = (node.meta or {}).get("probe")
    probes = tuple(make(w) for w in range(WORLDS)) if make is not None else (_SAME,) * WORLDS
    return _Info(probes, True, (node,))


def _synthetic(node: Node, base: Any, undecided: Any, world: int) -> Any:
    try:
        return _synthesize(base, node.value, undecided, world, node.id)
    except _UnsupportedError:
        return _POISON


def _compute(node: Node) -> _Info:
    parents = node.parents
    infos = [_infos[p] for p in parents]
    placeholders = tuple(dict.fromkeys(ph for info in infos for ph in info.placeholders))
    if not parents:
        return _Info((_SAME,) * WORLDS, False, ())
    op = node.op
    values = [p.value for p in parents]
    blocked = [
        _POISON
        if any(info.probes[w] is _POISON for info in infos)
        else _FAILED
        if any(info.probes[w] is _FAILED for info in infos)
        else None
        for w in range(WORLDS)
    ]
    if not _pure(op, values):
        # Never run again: every size of what it returns is undecided, in every world.
        probes = tuple(b if b is not None else _synthetic(node, node.value, _ALL, w) for w, b in enumerate(blocked))
        return _Info(probes, True, placeholders)
    tainted = [info.tainted for info in infos]
    node_tainted = any(tainted) and not _shape_only(op)
    undecided = None
    try_it, listed = _sensitivity(op, tainted, values)
    if try_it:
        try:
            undecided = _undecided_axes(op, node, tainted, listed)
        except _UnsupportedError:
            undecided = _ALL
    results: list[Any] = []
    for w in range(WORLDS):
        if blocked[w] is not None:
            results.append(blocked[w])
            continue
        world_probes = [info.probes[w] for info in infos]
        if undecided is _ALL:
            results.append(_synthetic(node, node.value, _ALL, w))
            continue
        if all(p is _SAME for p in world_probes):
            result: Any = _SAME
        else:
            args = [v if p is _SAME else p for v, p in zip(values, world_probes, strict=True)]
            try:
                result = _quietly(lambda args=args: op.evaluate(args))  # type: ignore[misc]
            except Exception:  # this world's input makes the step fail
                result = _FAILED
        if undecided is not None and result is not _FAILED:
            result = _synthetic(node, node.value if result is _SAME else result, undecided, w)
        results.append(result)
    return _Info(tuple(results), node_tainted, placeholders)


def _info(node: Node) -> _Info:
    # Over the ancestors that have no probes yet; _compute reads the parents' from _infos.
    return fold_ancestors(node, _infos, _placeholder_info, lambda current, _: _compute(current))


def symbolic_shape(node: Node) -> tuple[int | None, ...]:
    """The shape of ``node``'s value, with ``None`` for every size that is not the same for all inputs.

    Example:
        >>> import numpy as np
        >>> import symgraph_numpy as snp
        >>> x = snp.Input((None, 3))
        >>> symbolic_shape((x @ np.ones((3, 5))).node), symbolic_shape(x[x[:, 0] > 2].node)
        ((None, 5), (None, 3))
    """
    shape = tuple(np.shape(node.value))
    probes = _info(node).probes
    if all(p is _SAME for p in probes):
        return shape
    dims: list[int | None] = list(shape)
    evidence = False
    for probe in probes:
        if probe is _SAME:
            evidence = True
            continue
        if probe is _FAILED:
            continue  # no output for that input, so no size to contradict
        probe_shape = None if probe is _POISON else getattr(probe, "shape", None)
        if probe_shape is None or len(probe_shape) != len(shape):
            return (None,) * len(shape)
        evidence = True
        for axis, size in enumerate(probe_shape):
            if size != dims[axis]:
                dims[axis] = None
    return tuple(dims) if evidence else (None,) * len(shape)


def upstream_placeholders(node: Node) -> tuple[Node, ...]:
    """The placeholder nodes that ``node`` was computed from (itself, if it is one).

    Example:
        >>> import symgraph_numpy as snp
        >>> x, y = snp.Input((2,)), snp.Input((2,))
        >>> upstream_placeholders((x + y * 2).node) == (x.node, y.node)
        True
    """
    return _info(node).placeholders


# -- input checks -----------------------------------------------------------------------

# Signed and unsigned integers count as one kind: a pipeline recorded on int64
# runs the same on uint8 data, but not on floats or booleans.
_KIND_GROUPS = {"i": "i", "u": "i"}
_KIND_NAMES = {
    "b": "boolean",
    "i": "integer",
    "f": "floating-point",
    "c": "complex",
    "U": "unicode string",
    "S": "byte string",
    "O": "object",
    "M": "datetime",
    "m": "timedelta",
    "V": "structured",
}


def dtype_signature(dtype: np.dtype[Any]) -> tuple[Any, ...]:
    """What a model requires of an input's dtype: its kind, datetime units, and field names and dtypes.

    Precision is free within a kind (``float32`` for ``float64``), but a datetime
    in other units, or a structured array with other fields, computes another result.

    Example:
        >>> import numpy as np
        >>> dtype_signature(np.dtype("float32")) == dtype_signature(np.dtype("float64"))
        True
        >>> dtype_signature(np.dtype("datetime64[D]")) == dtype_signature(np.dtype("datetime64[s]"))
        False
    """
    tokens: list[Any] = []
    stack: list[np.dtype[Any]] = [dtype]
    while stack:
        d = stack.pop()
        if d.subdtype is not None:
            base, shape = d.subdtype
            tokens.append(("subarray", shape))
            stack.append(base)
        elif d.names is not None:
            tokens.append(("fields", d.names))
            stack.extend(reversed([d.fields[name][0] for name in d.names]))  # type: ignore[index]
        elif d.kind in "Mm":
            tokens.append((d.kind, np.datetime_data(d)))
        elif d.kind == "V":
            tokens.append(("void", d.itemsize))
        else:
            tokens.append(_KIND_GROUPS.get(d.kind, d.kind))
    return tuple(tokens)


class ArrayCheck:
    """Validates the arrays passed for one model input: rank, dtype, known sizes.

    The dtype must be of the recorded kind (signed and unsigned integers count as
    one); datetimes and timedeltas must have the recorded unit, and structured
    arrays the recorded field names and field dtypes. Where the recording read
    the input's sizes or dtype (``len(x)``, ``x.shape``, ``x.dtype``), the full
    shape or the exact dtype is required, and the message says where it was read.

    Any value with ``ndim``, ``shape`` and ``dtype`` passes if it fits, so dask
    arrays are checked too; a dimension whose size a dask array does not know
    yet (``nan``) is not compared. For duck arrays without a numpy dtype, build
    the model with ``check_inputs=False``.

    Args:
        name: The input's name, for messages.
        dims: The expected shape, ``None`` for sizes that may vary.
        dtype: The recorded dtype.
        shape_read: Where the recording read the sizes (``".shape at f.py:3"``):
            ``dims`` is then the full shape, and required exactly.
        dtype_read: Where the recording read the dtype: it is then required exactly.

    Example:
        >>> import numpy as np
        >>> check = ArrayCheck("x", (None, 3), np.dtype("float64"))
        >>> check(np.zeros((5, 3), dtype=np.float32))
        >>> check(np.zeros((5, 4)))
        Traceback (most recent call last):
        ...
        symgraph.InputError: x: expected shape (None, 3), got an array of shape (5, 4)
    """

    __slots__ = ("dims", "dtype", "dtype_read", "exact", "known", "name", "ndim", "shape_read", "signature")

    def __init__(
        self,
        name: str,
        dims: Sequence[int | None],
        dtype: np.dtype[Any],
        *,
        shape_read: str | None = None,
        dtype_read: str | None = None,
    ) -> None:
        self.name = name
        self.dims = tuple(dims)
        self.ndim = len(self.dims)
        self.dtype = dtype
        self.signature = dtype_signature(dtype)
        self.known = tuple((axis, size) for axis, size in enumerate(self.dims) if size is not None)
        if shape_read is not None and None in self.dims:
            raise ValueError(f"ArrayCheck: an exact shape needs every size, got {format_dims(self.dims)}")
        self.shape_read = shape_read
        self.exact = self.dims if shape_read is not None else None
        self.dtype_read = dtype_read

    def __call__(self, value: Any) -> None:
        """Raise :class:`symgraph.InputError` naming the input if ``value`` does not fit."""
        try:
            ndim = value.ndim
            dtype = value.dtype
            shape = value.shape
        except AttributeError:
            raise self._not_an_array(value) from None
        if ndim != self.ndim:
            raise InputError(
                f"{self.name}: expected a {self.ndim}-d array of shape {format_dims(self.dims)}, "
                f"got a {ndim}-d array of shape {tuple(shape)}"
            )
        if dtype is not self.dtype:
            self._check_dtype(value, dtype)
        if self.exact is not None:
            if shape != self.exact:
                self._check_exact(shape)
        elif self.known:
            for axis, size in self.known:
                actual = shape[axis]
                # nan: a dask array that does not know this size yet.
                if actual != size and actual == actual:
                    raise InputError(
                        f"{self.name}: expected shape {format_dims(self.dims)}, got an array of shape {tuple(shape)}"
                    )

    def _not_an_array(self, value: Any) -> InputError:
        return InputError(
            f"{self.name}: expected an array of shape {format_dims(self.dims)} (a numpy array or an array "
            f"with ndim and a numpy dtype), got {type(value).__name__}; build the model with "
            "check_inputs=False to pass other duck arrays"
        )

    def _check_dtype(self, value: Any, dtype: Any) -> None:
        if not isinstance(dtype, np.dtype):
            raise self._not_an_array(value)
        if self.dtype_read is not None:
            if dtype == self.dtype:
                return
            raise InputError(
                f"{self.name}: expected dtype {self.dtype} exactly, got dtype {dtype}: the recording read the "
                f"dtype of this input ({self.dtype_read}), so the model computes with {self.dtype}. Convert the "
                f"data with .astype({str(self.dtype)!r}), or record the dtype with np.result_type(x) instead "
                "of reading x.dtype"
            )
        if dtype_signature(dtype) == self.signature:
            return
        kind = _KIND_GROUPS.get(dtype.kind, dtype.kind)
        expected_kind = _KIND_GROUPS.get(self.dtype.kind, self.dtype.kind)
        if kind != expected_kind:
            raise InputError(
                f"{self.name}: expected {_KIND_NAMES.get(expected_kind, expected_kind)} data (recorded with dtype "
                f"{self.dtype}), got dtype {dtype}"
            )
        if kind in "Mm":
            unit, count = np.datetime_data(self.dtype)
            raise InputError(
                f"{self.name}: expected {self.dtype} data (unit {count if count != 1 else ''}{unit}), got dtype "
                f"{dtype}: {_KIND_NAMES[kind]}s in another unit compute other results; convert with "
                f".astype({str(self.dtype)!r})"
            )
        names = self.dtype.names
        if names is not None:
            if dtype.names != names:
                got = f"fields {dtype.names}" if dtype.names is not None else "no fields"
            else:
                field = next(
                    (n for n in names if dtype_signature(dtype[n]) != dtype_signature(self.dtype[n])), names[0]
                )
                got = f"field {field!r} of dtype {dtype[field]}, where {self.dtype[field]} was recorded"
            raise InputError(
                f"{self.name}: expected a structured array with fields {names} (recorded with dtype "
                f"{self.dtype}), got {got} (dtype {dtype})"
            )
        raise InputError(f"{self.name}: expected data like dtype {self.dtype}, got dtype {dtype}")

    def _check_exact(self, shape: Any) -> None:
        exact = self.exact
        assert exact is not None
        # nan: a dask array that does not know this size yet.
        if all(a == b or a != a for a, b in zip(shape, exact, strict=True)):
            return
        raise InputError(
            f"{self.name}: expected an array of shape {format_dims(exact)}, the example's, got an array of shape "
            f"{tuple(shape)}: the recording read the sizes of this input ({self.shape_read}), so the model is "
            "only valid for that shape. Declare sizes that vary with snp.Input((None, ...)), or record a size "
            "with np.shape(x) instead of reading it"
        )

    def __repr__(self) -> str:
        exact = ", exact shape" if self.exact is not None else ""
        exact_dtype = ", exact dtype" if self.dtype_read is not None else ""
        return f"ArrayCheck({self.name!r}, {format_dims(self.dims)}, {self.dtype}{exact}{exact_dtype})"


def read_reasons(meta: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    """Where the recording read a placeholder's sizes and its dtype, from its ``meta``.

    Example:
        >>> read_reasons({"reads": {"dtype": ".dtype at f.py:3"}})
        (None, '.dtype at f.py:3')
    """
    reads = (meta or {}).get("reads") or {}
    return reads.get("shape"), reads.get("dtype")
