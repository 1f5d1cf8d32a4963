"""Which callables and classes a saved model may name, and how they are named.

A saved spec names every function and class it needs by its import path,
``"module:qualname"`` (``"numpy:mean"``, ``"torch.nn:Conv2d"``). Loading a spec
imports those names, so it is where a hostile file would try to run code: the
loader resolves a name only when :class:`Allowlist` permits it, and it decides
from the name alone, before importing anything.

A name is permitted by default in two steps. It must be found in one of
:data:`PUBLIC_MODULES`: the public API of numpy and torch (``nn``,
``nn.functional``, ``linalg``, ``fft``, ``special`` and the compiled modules their
functions live in), :mod:`math`, :mod:`operator`, and a list of builtins; with no
private part and none of :data:`DENIED_NAMES` (what reads or writes files,
unpickles, compiles, loads code or changes the process's settings). And the
object found must be defined in one of :data:`HOME_PACKAGES`, outside
:data:`DENIED_MODULES`: a public module that imported ``functools.reduce`` or
``pathlib.Path`` does not make them permitted. Backends add their own classes
with :func:`register_allowed`; anything else needs the user's ``allow=``.
"""

from __future__ import annotations

import builtins
import enum
import importlib
import re
import sys
import types
from collections.abc import Callable, Iterable
from typing import Any

from symgraph._errors import SpecError
from symgraph._text import escape

__all__ = [
    "HOME_PACKAGES",
    "PUBLIC_MODULES",
    "DENIED_ATTRIBUTES",
    "DENIED_MODULES",
    "DENIED_NAMES",
    "INDIRECT_METHODS",
    "INTROSPECTION_PREFIXES",
    "NAME_GETTERS",
    "SAFE_BUILTINS",
    "Allowlist",
    "attribute_name_permitted",
    "is_dunder",
    "reference_of",
    "shareable",
    "register_allowed",
    "register_home_check",
    "register_reference_home",
]

#: The modules a spec may name functions and classes in, by default: their public
#: API, where symgraph names what it saves (``numpy:mean``, ``torch.nn:Conv2d``).
#: Their submodules are not included: a library's other modules hold its tests,
#: its tooling and its re-exports of the standard library.
PUBLIC_MODULES = frozenset(
    {
        "math",
        "operator",
        "numpy",
        "numpy.linalg",
        "numpy.fft",
        "numpy.random",
        "numpy.ma",
        "numpy.char",
        "numpy.strings",
        "numpy.emath",
        "numpy.dtypes",
        "numpy.polynomial",
        "numpy.polynomial.polynomial",
        "numpy.polynomial.chebyshev",
        "numpy.polynomial.legendre",
        "numpy.polynomial.hermite",
        "numpy.polynomial.hermite_e",
        "numpy.polynomial.laguerre",
        "torch",
        "torch.nn",
        "torch.nn.functional",
        "torch.nn.init",
        "torch.nn.utils.rnn",
        "torch.linalg",
        "torch.fft",
        "torch.special",
        # torch's compiled functions that no public module holds under the same name.
        "torch._C._nn",
        "torch._C._VariableFunctions",
        "torch._C._linalg",
        "torch._C._fft",
        "torch._C._special",
        "torch._C._nested",
    }
)
#: Where what a spec names by default may be defined: a function or class found in
#: a public module must come from one of these (minus :data:`DENIED_MODULES`), so a
#: name of the standard library that a library imported (``functools.reduce``,
#: ``pathlib.Path``) is not permitted through it.
HOME_PACKAGES = frozenset({"math", "operator", "_operator", "numpy", "torch"})

#: Modules of the home packages that read or write files, unpickle, compile, load
#: native code, talk to the network or set up hooks: what they define is never
#: permitted by default. A prefix denies its submodules too, and so does a part
#: named ``tests``, ``testing`` or ``conftest``.
DENIED_MODULES = frozenset(
    {
        "numpy.ctypeslib",
        "numpy.distutils",
        "numpy.f2py",
        "numpy.lib.format",
        "numpy.lib.npyio",
        "numpy.lib._npyio_impl",
        "numpy.lib._datasource",
        "numpy.lib.utils",
        "numpy.testing",
        "numpy._pytesttester",
        "numpy.rec",
        "numpy.lib.stride_tricks",
        "torch.hub",
        "torch.package",
        "torch.serialization",
        "torch.jit",
        "torch.onnx",
        "torch.export",
        "torch.fx",
        "torch.library",
        "torch.utils",
        "torch.distributed",
        "torch.multiprocessing",
        "torch.testing",
        "torch.compiler",
        "torch._dynamo",
        "torch._inductor",
        "torch._export",
        "torch._ops",
        "torch._C",
        "torch._classes",
        "torch.ops",
        "torch.classes",
        "torch.backends",
        "torch.profiler",
        "torch.autograd.profiler",
        "torch.autograd.profiler_util",
        "torch.autograd.profiler_legacy",
        "torch.overrides",
        "torch.ao",
        "torch.cuda.amp.common",
        "torch.xpu",
        "numpy.ma.mrecords",
    }
)
_TEST_PARTS = frozenset({"tests", "testing", "conftest"})

# torch._C is denied as a whole; its compiled modules of functions are homes too.
_ALLOWED_PRIVATE_MODULES = frozenset(m for m in PUBLIC_MODULES if m.startswith("torch._C."))

#: Names refused wherever they appear in a default module: the last part of a
#: qualified name, ``getattr``'s constant name, and attribute and method names
#: recorded on values.
DENIED_NAMES = frozenset(
    {
        "load",
        "loads",
        "save",
        "savez",
        "savez_compressed",
        "savetxt",
        "loadtxt",
        "genfromtxt",
        "fromfile",
        "fromregex",
        "from_file",
        "tofile",
        "dump",
        "dumps",
        "memmap",
        "open",
        "DataSource",
        "compile",
        "load_library",
        "info",
        "show_config",
        "show_runtime",
        "lookfor",
        "source",
        "attrgetter",
        "methodcaller",
        "set_default_device",
        "set_default_dtype",
        "set_default_tensor_type",
        "as_strided",
        "NpzFile",
        "add_newdoc",
        "add_docstring",
        "openfile",
        "fromtextfile",
        "export_chrome_trace",
        "share_memory",
        "share_memory_",
        "test",
        "CompilationUnit",
        "get_device_module",
        "frombuffer",
        "cond",
        "while_loop",
        "storage",
        "untyped_storage",
        "resize",
        # Settings of the whole process, which a loaded file must not change.
        "seterr",
        "seterrcall",
        "setbufsize",
        "set_printoptions",
        "seed",
        "manual_seed",
        "set_num_threads",
        "set_num_interop_threads",
        "set_flush_denormal",
        "use_deterministic_algorithms",
        "set_float32_matmul_precision",
        "set_warn_always",
        "set_rng_state",
        "set_anomaly_enabled",
    }
)

#: Attribute and method names a spec may not record on a value: what reaches
#: files, pickles or code whatever the value is, and format strings, which read
#: attributes by name.
DENIED_ATTRIBUTES = DENIED_NAMES | frozenset(
    {
        "read",
        "write",
        "system",
        "popen",
        "exec",
        "eval",
        "format",
        "format_map",
        "ctypes",
        "mro",
        # pandas: the writers, and query, which evaluates a string.
        "query",
        "to_pickle",
        "to_csv",
        "to_parquet",
        "to_excel",
        "to_hdf",
        "to_sql",
        "to_json",
        "to_html",
        "to_string",
        "to_latex",
        "to_markdown",
        "to_feather",
        "to_orc",
        "to_stata",
        "to_clipboard",
        "to_xml",
        "to_zarr",
        "to_netcdf",
    }
)

#: Methods that look up another method by a string argument (pandas'
#: ``df.agg("to_csv", path)``): a loaded model checks every string they are given
#: when it runs, as it checks the name of a method it calls itself.
INDIRECT_METHODS = frozenset({"agg", "aggregate", "apply", "applymap", "map", "transform", "pipe"})
# Hooks run a callable on later calls, of this model and of any other in the process;
# setters change the process's settings (set_grad_enabled, numpy.random.set_state)
# or, on a tensor, point it at other memory (Tensor.set_).
_DENIED_PREFIXES = ("register_", "set_")
# Storages are raw memory: resizing one under a tensor, or a tensor over one,
# reads and writes out of bounds.
_DENIED_SUFFIXES = ("Storage",)
# Frames, code objects, generators and tracebacks lead to a module's globals, and
# from there to any builtin: the attributes that reach them are refused by prefix.
INTROSPECTION_PREFIXES = ("f_", "gi_", "cr_", "ag_", "co_", "tb_", "func_")

#: Builtins a spec may call: pure functions and constructors of plain values.
SAFE_BUILTINS = frozenset(
    {
        "abs",
        "all",
        "any",
        "ascii",
        "bin",
        "bool",
        "bytes",
        "callable",
        "chr",
        "complex",
        "dict",
        "divmod",
        "enumerate",
        "filter",
        "float",
        "format",
        "frozenset",
        "getattr",
        "hasattr",
        "hash",
        "hex",
        "int",
        "isinstance",
        "issubclass",
        "iter",
        "len",
        "list",
        "map",
        "max",
        "min",
        "next",
        "oct",
        "ord",
        "pow",
        "range",
        "repr",
        "reversed",
        "round",
        "set",
        "slice",
        "sorted",
        "str",
        "sum",
        "tuple",
        "zip",
    }
)

# The references of objects that backends declare safe to name (their own layer classes).
_REGISTERED: dict[str, Any] = {}


def register_allowed(obj: Any) -> None:
    """Let every spec name ``obj``, a class or function that a backend ships and trusts as its own code.

    Example:
        >>> import symgraph_torch.useful_layers as layers
        >>> register_allowed(layers.ConcatLayer)
        >>> Allowlist().permits("symgraph_torch.useful_layers:ConcatLayer")
        True
    """
    reference = reference_of(obj)
    if reference is None:
        raise TypeError(f"register_allowed() needs a function or class with an import path, got {escape(repr(obj))}")
    _REGISTERED[reference] = obj


# Public modules that backends name their library's functions by, tried first:
# torch.nn.functional.linear reports the module torch._C._nn.
_HOMES: list[str] = []


# Checks a backend adds for what its package defines (see register_home_check).
_HOME_CHECKS: dict[str, Callable[[Any], bool]] = {}


def register_home_check(package: str, check: Callable[[Any], bool]) -> None:
    """Permit by default only the objects of ``package`` for which ``check(obj)`` is true.

    For backends whose library defines, beside its computations, bindings that
    report the library as their module (torch re-exports its compiled ``torch._C``
    names as ``torch.*``): the check tells the computations apart.

    Example:
        >>> register_home_check("math", lambda obj: True)
        >>> Allowlist().resolve("math:floor", "spec")(2.5)
        2
    """
    if package not in HOME_PACKAGES or not callable(check):
        raise TypeError(f"register_home_check() needs one of {sorted(HOME_PACKAGES)} and a callable")
    _HOME_CHECKS[package] = check


# Builtins that read an attribute named by a string: only the function a step calls
# (where the spec decoder checks the name), never a value (map(getattr, ...)).
NAME_GETTERS = (getattr, hasattr)


def register_reference_home(name: str) -> None:
    """Name functions found in module ``name`` by it, before the module they report.

    Example:
        >>> import torch.nn.functional
        >>> register_reference_home("torch.nn.functional")
        >>> reference_of(torch.nn.functional.linear)
        'torch.nn.functional:linear'
    """
    if type(name) is not str or not _PATH.fullmatch(name):
        raise TypeError(f"register_reference_home() needs a module name, got {name!r}")
    if name not in _HOMES:
        _HOMES.append(name)


_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_MISSING = object()


# Private names are internals (a tensor's _share_filename_cpu_), refused but for
# the public API of named tuples.
_PUBLIC_PRIVATE_NAMES = frozenset({"_asdict", "_replace", "_fields", "_make", "_field_defaults"})


def _operator_dunders() -> frozenset[str]:
    from symgraph._operators import OPERATORS

    return frozenset(name for spec in OPERATORS.values() for name in (spec.dunder, spec.reflected) if name)


_OPERATOR_DUNDERS = _operator_dunders()


def attribute_name_permitted(name: str) -> bool:
    """Whether a spec may record the attribute or method ``name`` on a value, resolved when the model runs.

    Refused: private and dunder names (but the operators' own and named tuples'
    public ones), the attributes of frames, code objects, generators and
    tracebacks, hook registrations (``register_*``), setters (``set_*``),
    storages (``*Storage``) and :data:`DENIED_ATTRIBUTES`.

    Example:
        >>> [attribute_name_permitted(n) for n in ("sum", "__add__", "__class__", "_private", "f_globals", "tofile")]
        [True, True, False, False, False, False]
    """
    private = name.startswith("_") and name not in _OPERATOR_DUNDERS and name not in _PUBLIC_PRIVATE_NAMES
    return not (
        private
        or name in DENIED_ATTRIBUTES
        or name.startswith(INTROSPECTION_PREFIXES)
        or name.startswith(_DENIED_PREFIXES)
        or name.endswith(_DENIED_SUFFIXES)
    )


def is_dunder(name: str) -> bool:
    """Whether ``name`` is a dunder name such as ``__class__``.

    Example:
        >>> is_dunder("__globals__"), is_dunder("_private"), is_dunder("mean")
        (True, False, False)
    """
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _resolve(module: str, qualname: str) -> Any:
    """The object at ``qualname`` in ``module``; ``_MISSING`` unless every step before the last is a class.

    A qualified name names something a module defines, or an attribute of a
    class it defines (``Tensor.add``, ``Enum.MEMBER``). Through any other object,
    a module that the module imported (``numpy._core._methods:os.system``) would
    be one dot away.
    """
    target: Any = importlib.import_module(module)
    parts = qualname.split(".")
    for k, part in enumerate(parts):
        if k and not isinstance(target, type):
            return _MISSING
        target = getattr(target, part, _MISSING)
        if target is _MISSING or isinstance(target, types.ModuleType):
            return _MISSING
    return target


def _candidates(obj: Any) -> Iterable[tuple[str, str]]:
    # Public paths first: torch.cat reports the qualified name
    # _VariableFunctionsClass.cat, but is also torch.cat.
    name = getattr(obj, "__name__", None)
    qualname = getattr(obj, "__qualname__", None)
    module = getattr(obj, "__module__", None)
    if isinstance(obj, enum.Enum):
        cls = type(obj)
        yield cls.__module__, f"{cls.__qualname__}.{obj.name}"
        return
    if not isinstance(module, str):
        module = getattr(type(obj), "__module__", None)  # numpy's ufuncs: module numpy
    if not isinstance(module, str):
        return
    if isinstance(name, str):
        for home in _HOMES:
            yield home, name
        # The shortest package that has it: torch.nn:Conv2d rather than
        # torch.nn.modules.conv:Conv2d (each is checked to be the same object).
        parts = module.split(".")
        if parts[0].startswith("_"):
            yield parts[0].lstrip("_"), name  # operator.add reports the C module _operator
        for k in range(1, len(parts) + 1):
            yield ".".join(parts[:k]), name
    if isinstance(qualname, str) and qualname != name:
        yield module, qualname


def reference_of(obj: Any) -> str | None:
    """The ``"module:qualname"`` that names ``obj``, or ``None`` when nothing does.

    Only names under which ``obj`` itself is found are returned. Lambdas,
    functions and classes defined inside functions, and whatever ``__main__``
    defines (another program's ``__main__`` is another module) have none.

    Example:
        >>> import math, os
        >>> reference_of(math.sqrt), reference_of(os.path.join), reference_of(lambda: 0)
        ('math:sqrt', 'posixpath:join', None)
    """
    if isinstance(obj, types.ModuleType):
        return None
    for module, qualname in _candidates(obj):
        if "<" in qualname or module in ("__main__", "__mp_main__") or not _PATH.fullmatch(qualname):
            continue
        if module not in sys.modules:
            continue  # never import while saving: the value came from a loaded module
        try:
            if _resolve(module, qualname) is obj:
                return f"{module}:{qualname}"
        except Exception:
            continue
    return None


def _denied(module: str) -> bool:
    parts = module.split(".")
    prefixes = {".".join(parts[:k]) for k in range(1, len(parts) + 1)}
    return bool(prefixes & DENIED_MODULES or _TEST_PARTS.intersection(parts))


def _home(obj: Any) -> str | None:
    """The module that defines ``obj``: its own ``__module__``, or its type's (numpy's ufuncs)."""
    module = getattr(obj, "__module__", None) if isinstance(obj, (type, types.FunctionType)) or callable(obj) else None
    if not isinstance(module, str):
        module = getattr(type(obj), "__module__", None)
    return module if isinstance(module, str) else None


def _home_permitted(obj: Any, trees: Iterable[str]) -> bool:
    module = _home(obj)
    if module is None:
        return False
    if module == "builtins":
        # Only the safe builtins, wherever a module re-exports them.
        name = getattr(obj, "__name__", None)
        return name in SAFE_BUILTINS and getattr(builtins, name) is obj
    if any(module == t or module.startswith(t + ".") for t in trees):
        return True  # a module the user allowed
    package = module.split(".")[0]
    if package not in HOME_PACKAGES or (_denied(module) and module not in _ALLOWED_PRIVATE_MODULES):
        return False
    check = _HOME_CHECKS.get(package)
    return check is None or check(obj)


_IMMUTABLE = (type(None), bool, int, float, complex, str, bytes, range, slice)


def shareable(value: Any) -> bool:
    """Whether ``value`` may be handed to a spec's steps although the process shares it.

    Functions, classes and immutable values: not a module, and not a mutable
    array or table that a module or class holds for every caller.

    Example:
        >>> import math
        >>> shareable(math.pi), shareable(math.floor), shareable((1, "a")), shareable([1]), shareable(math)
        (True, True, True, False, False)
    """
    if isinstance(value, types.ModuleType):
        return False
    if callable(value) or isinstance(value, (enum.Enum, *_IMMUTABLE)):
        return True
    return type(value) in (tuple, frozenset) and all(shareable(item) for item in value)


def _python_name(reference: str) -> str:
    module, _, qualname = reference.partition(":")
    return qualname if module == "builtins" else f"{module}.{qualname}"


class Allowlist:
    """Decides which ``"module:qualname"`` names a spec may resolve, and resolves them.

    Args:
        allow: More functions, classes or modules to permit: an object permits
            the names it is found under, a module permits everything it and its
            submodules hold (but dunder names).

    Raises:
        TypeError: an entry of ``allow`` is neither a module nor an object with
            an import path (a lambda, say).

    Example:
        >>> import fractions
        >>> Allowlist().resolve("math:sqrt", "the spec")(16.0)
        4.0
        >>> Allowlist([fractions.Fraction]).resolve("fractions:Fraction", "the spec")(1, 2)
        Fraction(1, 2)
    """

    def __init__(self, allow: Iterable[Any] = ()) -> None:
        if isinstance(allow, (str, bytes)) or not isinstance(allow, Iterable):
            raise TypeError(f"allow must be a list of functions, classes or modules, got {type(allow).__name__}")
        self._objects: dict[str, Any] = {}
        self._modules: set[str] = set()
        for entry in allow:
            if isinstance(entry, types.ModuleType):
                self._modules.add(entry.__name__)
                continue
            reference = reference_of(entry)
            if reference is None:
                raise TypeError(
                    f"allow= names {escape(repr(entry))}, which has no import path (a lambda, a local "
                    "function, or something of __main__); allow a function or class of an importable module"
                )
            self._objects[reference] = entry

    def permits(self, reference: str) -> bool:
        """Whether ``reference`` (``"module:qualname"``) may be resolved; decided without importing.

        Example:
            >>> Allowlist().permits("numpy:mean"), Allowlist().permits("numpy:load"), Allowlist().permits("os:system")
            (True, False, False)
        """
        module, _, qualname = reference.partition(":")
        if not (_PATH.fullmatch(module) and _PATH.fullmatch(qualname)):
            return False
        parts = qualname.split(".")
        if reference in self._objects or reference in _REGISTERED:
            return True
        if any(p.startswith("_") for p in parts):
            return False  # private and dunder names are internals
        if any(module == m or module.startswith(m + ".") for m in self._modules):
            return True
        if any(not attribute_name_permitted(p) or p in DENIED_NAMES for p in parts):
            return False
        if module == "builtins":
            # A safe builtin, or a method of one of its classes (str.lower).
            return parts[0] in SAFE_BUILTINS and (
                len(parts) == 1 or (len(parts) == 2 and isinstance(getattr(builtins, parts[0], None), type))
            )
        return module in PUBLIC_MODULES

    def resolve(self, reference: object, where: str) -> Any:
        """The object ``reference`` names, if permitted.

        Args:
            reference: ``"module:qualname"``.
            where: Where the spec names it, for messages.

        Raises:
            SpecError: it is malformed, not permitted (the message says how to
                permit it), or not found.
        """
        if type(reference) is not str or reference.count(":") != 1:
            raise SpecError(f"{where}: an object is named as 'module:qualname', got {escape(repr(reference))}")
        if not self.permits(reference):
            raise SpecError(
                f"{where} names {escape(reference)}, which loading does not run unless you allow it: only "
                "numpy, torch, math, operator and safe builtins are allowed, and nothing that reads files, "
                "unpickles or compiles code. If you trust this file, pass it: symgraph.load(path, "
                f"allow=[{escape(_python_name(reference))}]) (the object itself, or its module)"
            )
        module, _, qualname = reference.partition(":")
        expected = self._objects.get(reference, _MISSING)
        try:
            found = _resolve(module, qualname)
        except Exception as exc:
            raise SpecError(
                f"{where} names {escape(reference)}, which cannot be imported: {escape(str(exc))}"
            ) from None
        if found is _MISSING or isinstance(found, types.ModuleType) or any(found is f for f in NAME_GETTERS):
            raise SpecError(f"{where} names {escape(reference)}, which is not a function, class or constant there")
        if expected is not _MISSING and found is not expected:
            raise SpecError(f"{where} names {escape(reference)}, which is not the object allow= permitted")
        if expected is _MISSING and not shareable(found):
            # A module's own arrays and tables (numpy.polynomial.Polynomial.domain) are
            # shared by the whole process: a spec that mutated one would change it for all.
            raise SpecError(
                f"{where} names {escape(reference)}, a {type(found).__qualname__} that could be changed in "
                "place; a spec names functions, classes and immutable constants only"
            )
        if expected is _MISSING and _REGISTERED.get(reference, _MISSING) is not found:
            # Found where it may be named; it must also be defined where code may come from.
            owner = _resolve(module, qualname.split(".")[0]) if "." in qualname else found
            if not _home_permitted(owner, self._modules):
                raise SpecError(
                    f"{where} names {escape(reference)}, which {escape(module)} only imports from "
                    f"{escape(str(_home(owner)))}; loading does not run it unless you allow it: "
                    f"symgraph.load(path, allow=[...])"
                )
        return found
