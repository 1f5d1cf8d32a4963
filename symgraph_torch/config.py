"""pytorch-symbolic's settings, under its names: code generation by default, and layer calls on symbolic values.

Each constant can be set before import through the environment variable of
pytorch-symbolic (``PYTORCH_SYMBOLIC_<NAME>``), or changed on this module at run
time. Environment values are read as plain values and never evaluated:
``true``/``false``, ``1``/``0``, ``yes``/``no`` and ``on``/``off`` (any case) for
flags, decimal numbers for counts; anything else fails the import with a
``ValueError`` that names the variable.

Attributes:
    CODEGEN_BY_DEFAULT: Models built without ``executor=`` or
        ``enable_forward_codegen=`` run generated code (``True``, the default)
        or the reference interpreter (``False``). Read when a model is built.
    CODEGEN_MIN_LOOP_LENGTH: pytorch-symbolic folds runs of this many repeated
        layers into a loop in its generated code. Accepted for compatibility;
        it changes nothing here, since the generated code is always
        straight-line (which is what makes it fast).
    API_2_ENABLED_BY_DEFAULT: Whether importing :mod:`symgraph_torch` lets any
        ``nn.Module`` be called on symbolic values (``layer(x)``). With
        ``False``, ``x(layer)`` and ``add_to_graph`` still record, and
        :class:`symgraph_torch.SymbolicAPI2ContextManager` turns ``layer(x)``
        on for a block.

Example:
    >>> from symgraph_torch import config
    >>> config.CODEGEN_BY_DEFAULT, config.CODEGEN_MIN_LOOP_LENGTH, config.API_2_ENABLED_BY_DEFAULT
    (True, 50, True)
"""

from __future__ import annotations

import os

__all__ = [
    "API_2_ENABLED_BY_DEFAULT",
    "CODEGEN_BY_DEFAULT",
    "CODEGEN_MIN_LOOP_LENGTH",
    "read_count",
    "read_flag",
    "read_from_env",
]

_PREFIX = "PYTORCH_SYMBOLIC_"
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def read_flag(name: str, default: bool) -> bool:
    """The flag ``PYTORCH_SYMBOLIC_<name>`` from the environment, or ``default``; never evaluated.

    Raises:
        ValueError: the variable holds something other than a flag.

    Example:
        >>> read_flag("NOT_SET_ANYWHERE", True)
        True
    """
    return _flag(_PREFIX + name, default)


def _flag(variable: str, default: bool) -> bool:
    text = os.environ.get(variable)
    if text is None:
        return default
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(
        f"environment variable {variable}={text!r} is not a flag: use true or false (or 1/0, yes/no, on/off)"
    )


def read_count(name: str, default: int) -> int:
    """The positive count ``PYTORCH_SYMBOLIC_<name>`` from the environment, or ``default``; never evaluated.

    Raises:
        ValueError: the variable holds something other than a positive decimal number.

    Example:
        >>> read_count("NOT_SET_ANYWHERE", 50)
        50
    """
    return _count(_PREFIX + name, default)


def _count(variable: str, default: int) -> int:
    text = os.environ.get(variable)
    if text is None:
        return default
    digits = text.strip()
    if not digits.isascii() or not digits.isdigit() or int(digits) < 1:
        raise ValueError(f"environment variable {variable}={text!r} is not a positive whole number")
    return int(digits)


def read_from_env(name: str, default: bool | int | str) -> bool | int | str:
    """pytorch-symbolic's reader: the variable ``name`` read as the kind of ``default``.

    pytorch-symbolic evaluated the text as a Python literal; here it is never
    evaluated. A ``bool`` default reads a flag, an ``int`` a positive whole number,
    and a ``str`` the text as it is.

    Raises:
        ValueError: the variable's text is not of the kind ``default`` is.
        TypeError: ``default`` is not a bool, an int or a str.

    Example:
        >>> read_from_env("PYTORCH_SYMBOLIC_NOT_SET_ANYWHERE", 50)
        50
    """
    if isinstance(default, bool):
        return _flag(name, default)
    if isinstance(default, int):
        return _count(name, default)
    if isinstance(default, str):
        return os.environ.get(name, default)
    raise TypeError(f"read_from_env() reads flags (bool), counts (int) and text (str), not {type(default).__name__}")


CODEGEN_BY_DEFAULT: bool = read_flag("CODEGEN_BY_DEFAULT", True)
CODEGEN_MIN_LOOP_LENGTH: int = read_count("CODEGEN_MIN_LOOP_LENGTH", 50)
API_2_ENABLED_BY_DEFAULT: bool = read_flag("API_2_ENABLED_BY_DEFAULT", True)
