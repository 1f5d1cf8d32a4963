"""Safe, bounded text for user values and names in summaries and error messages.

A name or a value comes from the user, so its text is theirs too: a newline in
a custom name would forge rows of a summary, an escape sequence would drive the
terminal, and ``repr`` of a huge or hostile constant can take seconds, run out
of memory, or raise. Everything symgraph displays goes through here.
"""

from __future__ import annotations

import reprlib
from typing import Any

__all__ = ["describe", "escape"]

# Every C0 and C1 control character and DEL, which terminals interpret.
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}
_CONTROLS.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})
# Line and paragraph separators end lines in some viewers; a lone surrogate cannot
# even be encoded, so printing it raises.
_CONTROLS.update({0x2028: "\\u2028", 0x2029: "\\u2029"})
_CONTROLS.update({c: f"\\u{c:04x}" for c in range(0xD800, 0xE000)})


def escape(text: object, limit: int = 200) -> str:
    r"""``text`` with control characters escaped, cut to ``limit`` characters.

    A ``str`` subclass is read as a plain ``str``: its own methods never run.

    Example:
        >>> escape("row\n2*  forged"), escape("\x1b[31mred")
        ('row\\n2*  forged', '\\x1b[31mred')
    """
    plain = str.__str__(text) if isinstance(text, str) else object.__repr__(text)
    out = plain.translate(_CONTROLS)
    return out if len(out) <= limit else out[: limit - 3] + "..."


class _Bounded(reprlib.Repr):
    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxstring = self.maxother = 60
        self.maxlist = self.maxtuple = self.maxdict = self.maxset = self.maxfrozenset = 6

    def repr1(self, x: Any, level: int) -> str:
        # Dispatched on the exact type: reprlib goes by the type's __name__, which a
        # user's class can share with a builtin.
        if type(x) not in _BUILTIN_REPRS:
            return self.repr_instance(x, level)
        return super().repr1(x, level)

    def repr_dict(self, x: dict[Any, Any], level: int) -> str:
        # reprlib sorts keys, which would run the keys' own comparisons.
        if not x:
            return "{}"
        if level <= 0:
            return "{...}"
        items = [f"{self.repr1(k, level - 1)}: {self.repr1(v, level - 1)}" for k, v in list(x.items())[: self.maxdict]]
        return "{" + ", ".join(items) + (", ..." if len(x) > self.maxdict else "") + "}"

    def repr_set(self, x: set[Any], level: int) -> str:
        return self._unsorted(x, level, "{", "}") if x else "set()"

    def repr_frozenset(self, x: frozenset[Any], level: int) -> str:
        return self._unsorted(x, level, "frozenset({", "})") if x else "frozenset()"

    def _unsorted(self, x: set[Any] | frozenset[Any], level: int, left: str, right: str) -> str:
        if level <= 0:
            return left + "..." + right
        items = [self.repr1(item, level - 1) for _, item in zip(range(self.maxset), x, strict=False)]
        return left + ", ".join(items) + (", ..." if len(x) > self.maxset else "") + right

    def repr_instance(self, x: Any, level: int) -> str:
        # Only builtin types are displayed by value; anything else by its type, so a
        # user's __repr__ (slow, huge, raising) never runs inside our messages.
        if type(x) in _PLAIN:
            return repr(x)
        return f"<{type(x).__qualname__} object>"

    def repr_slice(self, x: slice, level: int) -> str:
        return f"slice({self.repr1(x.start, level)}, {self.repr1(x.stop, level)}, {self.repr1(x.step, level)})"

    def repr_bytes(self, x: bytes, level: int) -> str:
        return repr(x[: self.maxstring]) + ("..." if len(x) > self.maxstring else "")

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 200:
            return f"<int with {x.bit_length()} bits>"
        return int.__repr__(x)

    def repr_str(self, x: str, level: int) -> str:
        return escape(str.__repr__(x[: self.maxstring + 1]), self.maxstring + 5)


_BUILTIN_REPRS = (int, float, complex, bool, str, bytes, type(None), list, tuple, dict, set, frozenset, range, slice)
# Exact types whose own repr is short and runs no user code.
_PLAIN = (float, complex, bool, type(None), range)
_bounded = _Bounded()


def describe(value: object, limit: int = 80) -> str:
    """A short, safe description of ``value`` for messages: never runs the value's own code.

    Builtin values are shown abridged (``[1, 2, 3, ...]``), functions and classes
    by name, anything else by its type.

    Example:
        >>> describe(list(range(10**6)))
        '[0, 1, 2, 3, 4, 5, ...]'
        >>> class Loud:
        ...     def __repr__(self):
        ...         raise RuntimeError("no")
        >>> describe(Loud())
        '<Loud object>'
    """
    tp = type(value)
    try:
        if tp in _BUILTIN_REPRS:
            text = _bounded.repr(value)
        else:
            name = getattr(value, "__qualname__", None) if isinstance(value, type) or callable(value) else None
            text = name if type(name) is str else f"<{tp.__qualname__} object>"
    except Exception:
        text = f"<{tp.__qualname__} object>"
    return escape(text, limit)
