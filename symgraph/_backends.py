"""The backend plugin registry.

A backend tells symgraph which value types it handles and which
:class:`~symgraph.SymbolicData` subclass wraps them. Backends are found through the
``symgraph.backends`` entry-point group and loaded lazily: the entry point's name is
the top-level module of the library it handles (``torch``, ``numpy``), and it is
loaded the first time a value whose type comes from that module is wrapped.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from importlib import metadata
from typing import TYPE_CHECKING, Any

from symgraph._errors import SymgraphError

if TYPE_CHECKING:
    from symgraph._symbolic import SymbolicData

__all__ = ["ENTRY_POINT_GROUP", "Backend", "backend_for", "describe_value", "loaded_backends", "register_backend"]

ENTRY_POINT_GROUP = "symgraph.backends"


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
        >>> class SymbolicFraction(symgraph.SymbolicData):
        ...     __slots__ = ()
        >>> class FractionBackend(symgraph.Backend):
        ...     name = "fractions"
        ...     types = (fractions.Fraction,)
        ...     symbolic_class = SymbolicFraction
        >>> symgraph.register_backend(FractionBackend())
        >>> type(symgraph.CustomInput(fractions.Fraction(1, 3))).__name__
        'SymbolicFraction'
    """

    name: str = "backend"
    types: tuple[type, ...] = ()
    symbolic_class: type[SymbolicData]

    def describe(self, value: Any) -> str:
        """Text for the summary's output column, such as a shape.

        Example:
            >>> import symgraph
            >>> symgraph.Backend().describe((1, 2))
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
            >>> import symgraph
            >>> symgraph.Backend().parameters(len) is None
            True
        """
        return None

    def input_checker(self, node_value: Any, name: str) -> Callable[[Any], None] | None:
        """A function that validates values passed for an input, or ``None``.

        Args:
            node_value: The input's example value.
            name: The input's display name, for error messages.

        Example:
            >>> import symgraph
            >>> symgraph.Backend().input_checker(3, "Input_1") is None
            True
        """
        return None


_lock = threading.RLock()
_registry: list[Backend] = []
_by_type: weakref.WeakKeyDictionary[type, Backend | None] = weakref.WeakKeyDictionary()
_entry_points: dict[str, metadata.EntryPoint] | None = None
_loaded_modules: set[str] = set()
_listeners: list[Callable[[], None]] = []


def register_backend(backend: Backend) -> None:
    """Register a backend at runtime; it takes precedence over earlier ones.

    Args:
        backend: The backend instance.

    Raises:
        TypeError: ``backend`` is not a :class:`Backend`, or its ``types`` or
            ``symbolic_class`` are malformed.

    Example:
        >>> import symgraph
        >>> class Meters(float): pass
        >>> class SymbolicMeters(symgraph.SymbolicData):
        ...     __slots__ = ()
        >>> class MetersBackend(symgraph.Backend):
        ...     types = (Meters,)
        ...     symbolic_class = SymbolicMeters
        >>> symgraph.register_backend(MetersBackend())
        >>> isinstance(symgraph.CustomInput(Meters(2.0)), SymbolicMeters)
        True
    """
    from symgraph._symbolic import SymbolicData

    if not isinstance(backend, Backend):
        raise TypeError(f"register_backend() expects a symgraph.Backend instance, got {type(backend).__name__}")
    if not isinstance(backend.types, tuple) or not all(isinstance(t, type) for t in backend.types):
        raise TypeError(f"backend {backend.name!r}: 'types' must be a tuple of classes, got {backend.types!r}")
    cls = getattr(backend, "symbolic_class", None)
    if not (isinstance(cls, type) and issubclass(cls, SymbolicData)):
        raise TypeError(f"backend {backend.name!r}: 'symbolic_class' must be a subclass of symgraph.SymbolicData")
    with _lock:
        if backend not in _registry:
            _registry.insert(0, backend)
        _by_type.clear()
        for listener in _listeners:
            listener()


def loaded_backends() -> tuple[Backend, ...]:
    """The backends registered so far, most recent first.

    Example:
        >>> import symgraph
        >>> all(isinstance(b, symgraph.Backend) for b in symgraph.loaded_backends())
        True
    """
    return tuple(_registry)


def on_registry_change(listener: Callable[[], None]) -> None:
    """Call ``listener`` whenever a backend is registered (used to drop caches)."""
    _listeners.append(listener)


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
            raise SymgraphError(f"entry point {ep.name!r} ({ep.value}) must name a symgraph.Backend instance")


def backend_for(tp: type) -> Backend | None:
    """The backend that handles values of type ``tp``, loading its plugin if needed.

    Args:
        tp: A value's type.

    Returns:
        The most recently registered backend whose ``types`` cover the closest
        class in ``tp``'s MRO, or ``None``.

    Example:
        >>> import symgraph
        >>> symgraph.backend_for(int) is None
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
        >>> describe_value({1, 2})
        'set'
    """
    backend = backend_for(type(value))
    return backend.describe(value) if backend is not None else type(value).__name__
