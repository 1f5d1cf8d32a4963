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


def compile_generated(code: GeneratedCode) -> Callable[..., Any]:
    """Compile generated code into the replay function.

    The source is registered with :mod:`linecache` under a unique file name for
    as long as the function lives, so tracebacks from inside a replay show the
    generated line that failed.

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
    filename = f"<symgraph replay {next(_counter)}>"
    namespace = dict(code.namespace)
    exec(compile(code.source, filename, "exec"), namespace)
    # Taken out of its own globals: a function that its globals hold is a reference
    # cycle, which only the garbage collector frees, so a dropped model (and its
    # linecache entry, one string per line) would stay alive until a collection.
    function: Callable[..., Any] = namespace.pop(FUNCTION_NAME)
    linecache.cache[filename] = (len(code.source), None, code.source.splitlines(keepends=True), filename)
    weakref.finalize(function, linecache.cache.pop, filename, None)
    return function
