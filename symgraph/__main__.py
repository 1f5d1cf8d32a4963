"""``python -m symgraph``: what this installation holds, and whether each plugin loads.

Prints symgraph's version and Python's, then every backend and executor that
installed packages declare through the ``symgraph.backends`` and
``symgraph.executors`` entry-point groups, with what each one's entry point
names and whether loading it works (and, when it does not, the error). A plugin
author runs it to see whether the plugin is found at all, and why it fails to
load if it is. The exit status is 1 when an entry point fails to load; a plugin
whose library is not installed (the torch backend without the ``torch`` extra)
is listed as unavailable and is not a failure.

Example:
    >>> from symgraph.__main__ import report
    >>> lines, failures = report()
    >>> lines[0].startswith("symgraph "), failures >= 0
    (True, True)
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata

import symgraph
from symgraph._backends import ENTRY_POINT_GROUP
from symgraph._executors import EXECUTOR_ENTRY_POINT_GROUP

__all__ = ["main", "report"]


# The libraries the extras install, reported without importing them.
_LIBRARIES = ("torch", "numpy", "dask", "networkx", "matplotlib")


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _distribution(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "?"
    return f"{dist.metadata['Name']} {dist.version}"


def _load(ep: metadata.EntryPoint) -> tuple[str, bool]:
    """How loading ``ep`` went, on one line, and whether that is a failure.

    A plugin whose library is not installed (an ``ImportError`` naming another
    top-level package than the plugin's own) is not broken: the distribution
    declares its entry points whichever extras were installed, so a numpy-only
    installation still lists the torch backend. It is reported as unavailable,
    with the plugin's own message (which names the extra to install).
    """
    try:
        ep.load()
    except Exception as exc:  # any failure is what the user came to see
        text = str(exc).strip().splitlines()
        message = f"{type(exc).__name__}: {text[0] if text else ''}"
        missing = exc.name if isinstance(exc, ImportError) else None
        if missing and missing.partition(".")[0] != ep.module.partition(".")[0]:
            return f"unavailable, {missing} is not installed: {message}", False
        return f"FAILS to load: {message}", True
    return "loads", False


def report() -> tuple[list[str], int]:
    """The report's lines, and how many entry points failed to load.

    Example:
        >>> lines, _ = report()
        >>> any(line.startswith("executors") for line in lines)
        True
    """
    lines = [
        f"symgraph {symgraph.__version__} (at {symgraph.__file__})",
        f"Python {platform.python_version()} ({sys.executable})",
        "libraries: " + ", ".join(f"{name} {_version(name)}" for name in _LIBRARIES),
    ]
    failures = 0
    for title, group in (("backends", ENTRY_POINT_GROUP), ("executors", EXECUTOR_ENTRY_POINT_GROUP)):
        points = sorted(metadata.entry_points(group=group), key=lambda ep: ep.name)
        lines.append(f"{title} (entry-point group {group!r}): {len(points) or 'none'}")
        for ep in points:
            state, failed = _load(ep)
            failures += failed
            lines.append(f"  {ep.name:<14} {ep.value}  [{_distribution(ep)}]  {state}")
    builtin = [name for name in ("codegen", "interpreter", "dask") if name in symgraph.available_executors()]
    lines.append(f"built-in executors: {', '.join(builtin)}")
    return lines, failures


def main() -> int:
    """Print the report; 1 if an entry point failed to load, else 0."""
    lines, failures = report()
    print("\n".join(lines))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
