"""Execution of generated code: compile it once into a function."""

from __future__ import annotations

import itertools
import linecache
import weakref
from collections.abc import Callable
from typing import Any

from symgraph._codegen import FUNCTION_NAME, GeneratedCode

__all__ = ["compile_generated"]

_counter = itertools.count(1)
# File names whose code has died, free for the next compilation. linecache keeps
# one entry per name; reusing names bounds them by the most replay functions
# alive at once, not by the number ever compiled.
_free: list[str] = []


def _release(filename: str) -> None:
    # Overwritten, never removed: linecache.checkcache() lists the keys, then
    # reads each, and another thread's removal in between raises KeyError there.
    # The lines go now, so a dead model's source does not stay behind.
    linecache.cache[filename] = (0, None, [], filename)
    _free.append(filename)


def compile_generated(code: GeneratedCode) -> Callable[..., Any]:
    """Compile generated code into the replay function.

    The source is put in :mod:`linecache` under a file name of the form
    ``<symgraph replay N>``, which is never a real file, so tracebacks from
    inside a replay, :func:`inspect.getsource`, debuggers and ``torch.compile``
    see the generated lines. Entries are never removed, since removing one
    races with another thread's :func:`linecache.checkcache`: once the code
    object is gone (with the function and any traceback or frame that showed
    it), its entry is emptied and its name reused by a later compilation. So
    the entries stay as many as the replay functions that were ever alive at
    once, and hold only the sources of living ones.

    Args:
        code: Output of :func:`symgraph._codegen.generate`.

    Returns:
        The ``replay`` function.

    Example:
        >>> import symgraph
        >>> from symgraph._codegen import generate
        >>> from symgraph._plan import build_plan
        >>> x = symgraph.CustomInput(1)
        >>> compile_generated(generate(build_plan(x, x + 1)[0]))(41)
        42
    """
    try:
        filename = _free.pop()  # one step: two threads never get the same name
    except IndexError:
        filename = f"<symgraph replay {next(_counter)}>"
    namespace = dict(code.namespace)
    # The entry comes first: a replay can fail on its first call.
    linecache.cache[filename] = (len(code.source), None, code.source.splitlines(keepends=True), filename)
    try:
        exec(compile(code.source, filename, "exec"), namespace)
    except BaseException:
        _release(filename)
        raise
    # Taken out of its own globals: a function that its globals hold is a reference
    # cycle, which only the garbage collector frees, so a dropped model (and its
    # linecache entry, one string per line) would stay alive until a collection.
    function: Callable[..., Any] = namespace.pop(FUNCTION_NAME)
    # Watched on the code object rather than the function: a traceback keeps the
    # code alive without the function, and must go on showing these lines.
    finalizer = weakref.finalize(function.__code__, _release, filename)
    finalizer.atexit = False
    return function
