"""Fixtures for the core tier."""

from __future__ import annotations

import pytest

from symgraph.plugin import restore_registry, snapshot_registry


@pytest.fixture
def isolated_registry():
    """Backends registered inside a test are forgotten after it."""
    saved = snapshot_registry()
    yield
    restore_registry(saved)
