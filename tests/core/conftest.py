"""Fixtures for the core tier."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import symgraph._codegen
from symgraph.plugin import restore_registry, snapshot_registry


@pytest.fixture
def isolated_registry():
    """Backends registered inside a test are forgotten after it."""
    saved = snapshot_registry()
    yield
    restore_registry(saved)


@pytest.fixture
def pieces(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """Set the most steps in one generated function for the rest of the test."""

    def set_size(size: int) -> None:
        monkeypatch.setattr(symgraph._codegen, "PIECE_STEPS", size)

    return set_size
