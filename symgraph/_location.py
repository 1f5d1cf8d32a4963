"""Where the user's code recorded a step: the first frame outside symgraph and its plugins."""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from symgraph._node import Node

__all__ = ["internal_module", "locate", "register_internal_package", "user_location", "user_stacklevel"]

# Top-level packages whose frames are never the user's: symgraph and its plugins.
# A third-party plugin adds its own with register_internal_package.
_INTERNAL: set[str] = {"symgraph", "symgraph_numpy", "symgraph_torch"}
# Whether each code object seen belongs to them. A plain dict, for speed (this runs
# for every recorded node); it holds the code objects, so it is emptied when it
# grows large, in case a program keeps making new ones (a notebook's cells).
_internal_code: dict[types.CodeType, bool] = {}
_MAX_CODES = 4096


def register_internal_package(name: str) -> None:
    """Treat frames of package ``name`` as library code when locating the user's code.

    Example:
        >>> register_internal_package("my_plugin")
        >>> internal_module("my_plugin._array")
        True
    """
    if type(name) is not str or not name.isidentifier():
        raise TypeError(f"register_internal_package() needs a package name, got {name!r}")
    _INTERNAL.add(name)
    _internal_code.clear()


def internal_module(module: object) -> bool:
    """Whether a frame of module ``module`` belongs to symgraph or a registered plugin.

    Example:
        >>> internal_module("symgraph._symbolic"), internal_module("__main__")
        (True, False)
    """
    if not isinstance(module, str):
        return False
    return module.partition(".")[0] in _INTERNAL


def _user_frame(frame: types.FrameType | None) -> types.FrameType | None:
    """The first of ``frame`` and its callers that is not the library's, or ``None``.

    Whether a code object is the library's is decided once per code object.
    """
    while frame is not None:
        if not _internal_frame(frame):
            return frame
        frame = frame.f_back
    return None


def _internal_frame(frame: types.FrameType) -> bool:
    """Whether ``frame`` runs the library's code, decided once per code object."""
    known = _internal_code
    code = frame.f_code
    internal = known.get(code)
    if internal is None:
        if len(known) >= _MAX_CODES:
            known.clear()
        internal = known[code] = internal_module(frame.f_globals.get("__name__"))
    return internal


def locate(node: Node) -> None:
    """Set ``node.where_code`` and ``where_line`` to the innermost caller outside symgraph and its plugins.

    Run for every recorded node, so kept cheap: nothing is allocated.

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput(1)
        >>> locate(x.node)
        >>> x.node.where_line > 0
        True
    """
    frame = _user_frame(sys._getframe(2))
    if frame is not None:
        node.where_code = frame.f_code
        node.where_line = frame.f_lineno


def user_location(depth: int = 1) -> str:
    """``"file:line"`` of the innermost caller outside symgraph and its plugins.

    Called while recording, it names the line of user code that recorded the
    step, for error messages raised much later, when a model is called.

    Args:
        depth: Frames to skip before looking, counting this function's caller as 1.

    Returns:
        The location, or ``"<unknown>"`` when every frame is the library's.

    Example:
        >>> file, _, line = user_location().rpartition(":")
        >>> line.isdigit()
        True
    """
    try:
        frame = _user_frame(sys._getframe(depth))
    except ValueError:
        return "<unknown>"
    if frame is None:
        return "<unknown>"
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes :func:`warnings.warn` point at the innermost caller outside the library.

    Call it from the function that warns; frames of symgraph, its plugins and
    the packages registered with :func:`register_internal_package` are skipped.

    Example:
        >>> import warnings
        >>> def warn_the_user():
        ...     warnings.warn("careful", UserWarning, stacklevel=user_stacklevel())
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warn_the_user()
        >>> caught[0].filename.endswith("_location.py")
        False
    """
    frame: types.FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and _internal_frame(frame):
        frame = frame.f_back
        level += 1
    return level
