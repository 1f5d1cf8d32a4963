"""Execution of generated code: compile it once into a function."""

from __future__ import annotations

import builtins
import itertools
import linecache
import types
import weakref
from collections.abc import Callable
from typing import Any

from symgraph._codegen import FUNCTION_NAME, GeneratedCode

__all__ = ["compile_generated", "step_codes"]

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


def _one_died(remaining: list[int], filename: str) -> None:
    # Finalizers run on whichever thread drops the last reference. list.pop() is
    # one step, so exactly one of them takes the token 0, the last one left.
    if remaining.pop() == 0:
        _release(filename)


def _nested(code: types.CodeType) -> list[types.CodeType]:
    """``code`` and the code objects nested in it (comprehensions, lambdas), parents before children."""
    found: list[types.CodeType] = []
    stack = [code]
    while stack:
        each = stack.pop()
        found.append(each)
        stack.extend(c for c in each.co_consts if isinstance(c, types.CodeType))
    return found


def _moved(code: types.CodeType, lines: int) -> types.CodeType:
    """``code`` compiled ``lines`` lines further down its file, nested code objects included."""
    order = _nested(code)
    moved: dict[int, types.CodeType] = {}  # by id: ``order`` keeps the originals alive
    for each in reversed(order):  # children first, for their parents' constants
        consts = tuple(moved.get(id(c), c) if isinstance(c, types.CodeType) else c for c in each.co_consts)
        moved[id(each)] = each.replace(co_firstlineno=each.co_firstlineno + lines, co_consts=consts)
    return moved[id(code)]


def _compile_pieces(source: str, filename: str) -> list[types.CodeType]:
    """The code of each function of a source written in pieces, ``replay``'s first.

    Each function is compiled on its own: compiling the whole source at once
    holds the tokens and syntax tree of every line until the end (some 2 KiB a
    step) and takes more than linear time in its length. Each is compiled as if
    it began its file and then moved to its lines, so tracebacks and debuggers
    see it where it is in the source.
    """
    # Only the functions' own lines start at the margin; their bodies are indented.
    starts = [0]
    at = source.find("\ndef ")
    while at >= 0:
        starts.append(at + 1)
        at = source.find("\ndef ", at + 1)
    codes = []
    line = 0
    for first, end in zip(starts, [*starts[1:], len(source)], strict=True):
        text = source[first:end]
        module = compile(text, filename, "exec")
        (code,) = (c for c in module.co_consts if isinstance(c, types.CodeType))
        codes.append(_moved(code, line))
        line += text.count("\n")
    return codes


def compile_generated(code: GeneratedCode) -> Callable[..., Any]:
    """Compile generated code into the replay function.

    The source is put in :mod:`linecache` under a file name of the form
    ``<symgraph replay N>``, which is never a real file, so tracebacks from
    inside a replay, :func:`inspect.getsource`, debuggers and ``torch.compile``
    see the generated lines. Entries are never removed, since removing one
    races with another thread's :func:`linecache.checkcache`: once every code
    object compiled from the source is gone (``replay``'s, its pieces', and with
    them every traceback or frame that showed one), the entry is emptied and its
    name reused by a later compilation. So the entries stay as many as the
    replay functions that were ever alive at once, and hold only the sources of
    living ones.

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
    codes: list[types.CodeType] = []
    try:
        if code.pieces:
            namespace["__builtins__"] = builtins.__dict__  # as exec() would put it
            replay, *pieces = _compile_pieces(code.source, filename)
            # The pieces are in the globals of replay alone, which neither they
            # nor anything else refers to: a function that its own globals hold
            # is a reference cycle, which only the garbage collector frees, so a
            # dropped model (and its linecache entry, one string per line) would
            # stay alive until a collection.
            outer = {name: namespace[name] for name in replay.co_names if name in namespace}  # the prologue's
            outer["__builtins__"] = namespace["__builtins__"]
            outer.update((piece.co_name, types.FunctionType(piece, namespace)) for piece in pieces)
            function: Callable[..., Any] = types.FunctionType(replay, outer)
            for each in (replay, *pieces):
                codes.extend(_nested(each))
        else:
            module = compile(code.source, filename, "exec")
            exec(module, namespace)
            # Taken out of its own globals, for the same reason.
            function = namespace.pop(FUNCTION_NAME)
            codes.extend(c for c in _nested(module) if c is not module)
    except BaseException:
        _release(filename)
        raise
    # Watched on the code objects rather than the function: a traceback keeps a
    # piece's code alive without the function, and must go on showing its lines.
    remaining = list(range(len(codes)))
    for each in codes:
        finalizer = weakref.finalize(each, _one_died, remaining, filename)
        finalizer.atexit = False
    return function


def step_codes(function: Callable[..., Any], code: GeneratedCode) -> list[tuple[types.CodeType, int, int]]:
    """The code objects of ``function`` that run steps, each with the first and the end step it runs.

    ``function`` is what :func:`compile_generated` returned for ``code``: the
    replay function itself, or, for a plan written in pieces, each piece.

    Example:
        >>> import symgraph
        >>> from symgraph._codegen import generate
        >>> from symgraph._plan import build_plan
        >>> x = symgraph.CustomInput(1)
        >>> code = generate(build_plan(x, x * 2 + 1)[0])
        >>> replay = compile_generated(code)
        >>> [(c.co_name, first, end) for c, first, end in step_codes(replay, code)]
        [('replay', 0, 2)]
    """
    if not code.pieces:
        return [(function.__code__, 0, len(code.lines))]
    return [(function.__globals__[name].__code__, first, end) for name, first, end in code.pieces]
