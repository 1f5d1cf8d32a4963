"""Snapshots of both registries, backends and executors, for tests that register their own."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from symgraph._backends import Backend, backend_state, set_backend_state
from symgraph._executors import Executor, executor_state, set_executor_state

__all__ = ["RegistrySnapshot", "restore_registry", "snapshot_registry"]


@dataclass(frozen=True)
class RegistrySnapshot:
    """The backend and executor registries at one moment, for :func:`restore_registry`.

    Attributes:
        backends: The registered backends, most recent first.
        loaded_modules: Modules whose backend entry points were looked up.
        executors: The registered executors, by name.
    """

    backends: tuple[Backend, ...]
    loaded_modules: frozenset[str]
    executors: Mapping[str, Executor]


def snapshot_registry() -> RegistrySnapshot:
    """The registries' current state; tests that register backends or executors restore it afterwards.

    Example:
        >>> import symgraph
        >>> from symgraph.plugin import restore_registry, snapshot_registry
        >>> saved = snapshot_registry()
        >>> symgraph.register_executor("scratch", lambda plan, options, host: print)
        >>> restore_registry(saved)
        >>> "scratch" in symgraph.available_executors()
        False
    """
    backends, loaded = backend_state()
    return RegistrySnapshot(backends, loaded, MappingProxyType(executor_state()))


def restore_registry(snapshot: RegistrySnapshot) -> None:
    """Put both registries back as :func:`snapshot_registry` found them.

    Handles made while another backend was registered keep their class, and
    models keep the executor they were built with.
    """
    if not isinstance(snapshot, RegistrySnapshot):
        raise TypeError(f"restore_registry() needs a RegistrySnapshot, got {type(snapshot).__name__}")
    set_backend_state(snapshot.backends, snapshot.loaded_modules)
    set_executor_state(snapshot.executors)
