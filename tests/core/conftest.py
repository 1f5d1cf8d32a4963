"""Fixtures for the core tier."""

from __future__ import annotations

import pytest

from symgraph import _backends, _symbolic


@pytest.fixture
def isolated_registry():
    """Backends registered inside a test are forgotten after it."""
    saved = list(_backends._registry)
    yield
    _backends._registry[:] = saved
    _backends._by_type.clear()
    _symbolic._resolved.clear()
