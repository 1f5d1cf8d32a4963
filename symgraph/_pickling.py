"""A clear error, before pickling starts, for plans that pickle could not store.

Pickle stores functions and classes by reference: their module and qualified
name, looked up again when loading. A lambda or a function defined inside
another function has no such name, and pickle's own error then names neither
the model nor the step that holds it.
"""

from __future__ import annotations

import functools
import importlib
import pickle
import types
from typing import Any

from symgraph._plan import Plan

__all__ = ["check_picklable", "find_by_reference"]

_MISSING = object()
# Classes made by a class statement; pickle stores their instances by naming the
# class. Built-in types such as ``builtin_function_or_method`` have no importable
# name, but their instances are stored another way.
_HEAPTYPE = 1 << 9


def find_by_reference(obj: Any) -> bool:
    """Whether pickle can find ``obj`` again by its module and qualified name.

    Anything that is not a Python function or a class is pickled some other way
    and counts as found.

    Example:
        >>> import os
        >>> find_by_reference(os.path.join), find_by_reference(lambda: 0)
        (True, False)
    """
    if not isinstance(obj, (types.FunctionType, type)):
        return True
    qualname = getattr(obj, "__qualname__", "")
    if "<" in qualname:  # <lambda>, <locals>
        return False
    module = getattr(obj, "__module__", None)
    if not isinstance(module, str):
        return True  # pickle searches sys.modules itself; let it decide
    try:
        target: Any = importlib.import_module(module)
    except ImportError:
        return False
    for part in qualname.split("."):
        target = getattr(target, part, _MISSING)
    return target is obj


def _unreachable(root: Any) -> Any:
    """The first function or class inside ``root`` that pickle cannot find by name, or ``None``."""
    stack = [root]
    seen: set[int] = set()
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        cls = type(obj)
        for candidate in (obj, cls) if cls.__flags__ & _HEAPTYPE else (obj,):
            if not find_by_reference(candidate):
                return candidate
        if isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        elif isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, functools.partial):
            stack.extend((obj.func, *obj.args, *obj.keywords.values()))
    return None


def check_picklable(plan: Plan) -> None:
    """Raise a clear error if a step of ``plan`` holds a function pickle cannot store.

    Raises:
        pickle.PicklingError: naming the step and the function.

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput(3)
        >>> model = symgraph.SymbolicModel(x, symgraph.add_to_graph(lambda v: v + 1, x))
        >>> check_picklable(model.plan)
        Traceback (most recent call last):
        ...
        _pickle.PicklingError: cannot pickle this model: step 'wrap(<lambda>)_1' uses <lambda>, ...
    """
    for step in plan.steps:
        for template in step.op.templates():
            for constant in template.constants():
                bad = _unreachable(constant)
                if bad is not None:
                    raise pickle.PicklingError(
                        f"cannot pickle this model: step {step.name!r} uses {bad.__qualname__}, which pickle "
                        f"can only store by an importable name, and {bad.__module__}.{bad.__qualname__} is not "
                        "one. Lambdas and functions or classes defined inside a function cannot be pickled; "
                        "define them at module level (a functools.partial of such a function pickles too)"
                    )
