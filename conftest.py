"""Test-session setup shared by every tier.

With ``SYMGRAPH_NO_BACKENDS=1`` the backend libraries cannot be imported at all,
which is how the core tier proves it needs none of them.
"""

from __future__ import annotations

import importlib.abc
import os
import sys

BLOCKED = frozenset({"torch", "numpy", "dask", "networkx", "matplotlib", "scipy", "symgraph_torch", "symgraph_numpy"})


class _BackendBlocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):  # type: ignore[no-untyped-def]
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{name} is blocked: SYMGRAPH_NO_BACKENDS is set", name=name)
        return None


if os.environ.get("SYMGRAPH_NO_BACKENDS"):
    already = sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED)
    if already:
        raise RuntimeError(f"backend modules were imported before the blocker was installed: {already}")
    sys.meta_path.insert(0, _BackendBlocker())
