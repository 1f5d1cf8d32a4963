"""The backend plugin registry.

A backend tells symgraph which value types it handles and which
:class:`~symgraph.SymbolicData` subclass wraps them. Backends are found through the
``symgraph.backends`` entry-point group and loaded lazily: the entry point's name is
the top-level module of the library it handles (``torch``, ``numpy``), and it is
loaded the first time a value whose type comes from that module is wrapped.

The registry knows handles only through :class:`~symgraph.plugin.Handle`, so it
imports nothing of the recording machinery; the one cache of which backend
handles a type lives here, and the handle module asks it.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from importlib import metadata
from typing import Any

from symgraph._errors import SymgraphError
from symgraph._node import Handle

__all__ = [
    "ENTRY_POINT_GROUP",
    "Backend",
    "backend_for",
    "backend_state",
    "describe_value",
    "loaded_backends",
    "register_backend",
    "set_backend_state",
]

ENTRY_POINT_GROUP = "symgraph.backends"
"""The entry-point group of backends: ``<library> = "<plugin module>:<backend object>"``, loaded lazily."""


class Backend:
    """What a plugin tells symgraph about one library's values.

    Subclass it, set the class attributes, override the hooks you need, and either
    call :func:`register_backend` with an instance or point an entry point of the
    ``symgraph.backends`` group at one. The entry point's name must be the top-level
    module name of the library (``torch``), so that symgraph knows when to load it.

    Attributes:
        name: Short name, for messages.
        types: Value types handled; subclasses of them are handled too.
        symbolic_class: The :class:`~symgraph.SymbolicData` subclass that wraps them.

    Example:
        >>> import fractions
        >>> import symgraph
        >>> from symgraph.plugin import Backend, SymbolicData, register_backend
        >>> class SymbolicFraction(SymbolicData):
        ...     __slots__ = ()
        >>> class FractionBackend(Backend):
        ...     name = "fractions"
        ...     types = (fractions.Fraction,)
        ...     symbolic_class = SymbolicFraction
        >>> register_backend(FractionBackend())
        >>> type(symgraph.CustomInput(fractions.Fraction(1, 3))).__name__
        'SymbolicFraction'
    """

    name: str = "backend"
    types: tuple[type, ...] = ()
    symbolic_class: type[Any]

    def describe(self, value: Any) -> str:
        """Text for the summary's output column, such as a shape.

        Example:
            >>> from symgraph.plugin import Backend
            >>> Backend().describe((1, 2))
            'tuple'
        """
        return type(value).__name__

    def parameters(self, obj: Any) -> Iterable[tuple[Any, int, bool]] | None:
        """Parameters owned by a callable used in the graph, for summaries.

        Every registered backend is asked, most recent first, until one answers.

        Args:
            obj: A constant callable of a ``Call`` node (a layer, say); it need not
                be of one of ``types``.

        Returns:
            ``None`` if this backend does not know ``obj``; otherwise
            ``(parameter, number_of_elements, trainable)`` triples. Parameters
            shared between layers are counted once by identity.

        Example:
            >>> from symgraph.plugin import Backend
            >>> Backend().parameters(len) is None
            True
        """
        return None

    def input_checker(self, node_value: Any, name: str) -> Callable[[Any], None] | None:
        """A function that validates values passed for an input, or ``None``.

        It raises :class:`symgraph.InputError` for a value that does not fit.

        Args:
            node_value: The input's example value.
            name: The input's display name, for error messages.

        Example:
            >>> from symgraph.plugin import Backend
            >>> Backend().input_checker(3, "Input_1") is None
            True
        """
        return None


_lock = threading.RLock()
_registry: list[Backend] = []
# The one type -> backend cache; ``None`` caches "no backend handles it".
_by_type: weakref.WeakKeyDictionary[type, Backend | None] = weakref.WeakKeyDictionary()
_entry_points: dict[str, metadata.EntryPoint] | None = None
_loaded_modules: set[str] = set()


def register_backend(backend: Backend) -> None:
    """Register a backend at runtime; it takes precedence over earlier ones.

    Args:
        backend: The backend instance.

    Raises:
        TypeError: ``backend`` is not a :class:`Backend`, or its ``types`` or
            ``symbolic_class`` are malformed.

    Example:
        >>> import symgraph
        >>> from symgraph.plugin import Backend, SymbolicData, register_backend
        >>> class Meters(float): pass
        >>> class SymbolicMeters(SymbolicData):
        ...     __slots__ = ()
        >>> class MetersBackend(Backend):
        ...     types = (Meters,)
        ...     symbolic_class = SymbolicMeters
        >>> register_backend(MetersBackend())
        >>> isinstance(symgraph.CustomInput(Meters(2.0)), SymbolicMeters)
        True
    """
    if not isinstance(backend, Backend):
        raise TypeError(f"register_backend() expects a symgraph.plugin.Backend instance, got {type(backend).__name__}")
    if not isinstance(backend.types, tuple) or not all(isinstance(t, type) for t in backend.types):
        raise TypeError(f"backend {backend.name!r}: 'types' must be a tuple of classes, got {backend.types!r}")
    cls = getattr(backend, "symbolic_class", None)
    if not (isinstance(cls, type) and issubclass(cls, Handle)):
        raise TypeError(f"backend {backend.name!r}: 'symbolic_class' must be a subclass of symgraph.SymbolicData")
    with _lock:
        if backend not in _registry:
            _registry.insert(0, backend)
        _by_type.clear()


def loaded_backends() -> tuple[Backend, ...]:
    """The backends registered so far, most recent first.

    Example:
        >>> from symgraph.plugin import Backend, loaded_backends
        >>> all(isinstance(b, Backend) for b in loaded_backends())
        True
    """
    return tuple(_registry)


def backend_state() -> tuple[tuple[Backend, ...], frozenset[str]]:
    """The registered backends and the modules whose plugins were looked up, for snapshots."""
    with _lock:
        return tuple(_registry), frozenset(_loaded_modules)


def set_backend_state(backends: tuple[Backend, ...], loaded_modules: frozenset[str]) -> None:
    """Put back what :func:`backend_state` returned."""
    with _lock:
        _registry[:] = backends
        _loaded_modules.clear()
        _loaded_modules.update(loaded_modules)
        _by_type.clear()


def _available_entry_points() -> dict[str, metadata.EntryPoint]:
    global _entry_points
    if _entry_points is None:
        _entry_points = {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    return _entry_points


def _load_plugins_for(tp: type) -> None:
    for cls in tp.__mro__:
        module = (getattr(cls, "__module__", None) or "").partition(".")[0]
        if module in _loaded_modules:
            continue
        _loaded_modules.add(module)
        ep = _available_entry_points().get(module)
        if ep is None:
            continue
        try:
            backend = ep.load()
        except Exception as exc:
            _loaded_modules.discard(module)
            raise SymgraphError(f"could not load the symgraph backend plugin {ep.name!r} ({ep.value})") from exc
        if isinstance(backend, Backend):
            register_backend(backend)
        elif backend not in _registry:
            raise SymgraphError(f"entry point {ep.name!r} ({ep.value}) must name a symgraph.plugin.Backend instance")


def backend_for(tp: type) -> Backend | None:
    """The backend that handles values of type ``tp``, loading its plugin if needed.

    Args:
        tp: A value's type.

    Returns:
        The most recently registered backend whose ``types`` cover the closest
        class in ``tp``'s MRO, or ``None``.

    Example:
        >>> from symgraph.plugin import backend_for
        >>> backend_for(int) is None
        True
    """
    try:
        return _by_type[tp]
    except KeyError:
        pass
    with _lock:
        _load_plugins_for(tp)
        found: Backend | None = None
        for cls in tp.__mro__:
            found = next((b for b in _registry if cls in b.types), None)
            if found is not None:
                break
        _by_type[tp] = found
        return found


def describe_value(value: Any) -> str:
    """The summary text for a value: its backend's description, or its type name.

    Example:
        >>> from symgraph.plugin import describe_value
        >>> describe_value({1, 2})
        'set'
    """
    backend = backend_for(type(value))
    return backend.describe(value) if backend is not None else type(value).__name__
