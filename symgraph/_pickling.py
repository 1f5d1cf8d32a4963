"""A clear error, before pickling starts, for plans that the running pickler cannot store faithfully.

The standard pickler stores functions and classes by reference: their module
and qualified name, looked up again when loading. Which functions that can
store depends on the pickler, so :func:`check_picklable` first finds out which
one is running, then applies its rule:

* **The standard pickler** (``pickle.dumps``, ``pickle.Pickler`` and its
  subclasses; dask's tokenizer and dask.distributed try it first). A lambda or
  a function defined inside another function has no importable name, and
  pickle's own error would name neither the model nor the step: refused. A
  function or class of ``__main__`` pickles, but it names whatever program
  loads the pickle, whose own ``__main__`` lacks it or, worse, defines
  something else under that name: refused too.
* **multiprocessing** (its ``ForkingPickler``: ``Pool``, ``Process`` arguments,
  queues and pipes, ``concurrent.futures.ProcessPoolExecutor``). A child runs
  the parent's program (fork copies it; spawn and forkserver load the parent's
  main script as the child's ``__main__``), so the functions and classes at
  the top level of ``__main__`` load there. Lambdas and local functions are
  still refused. (A ``multiprocessing.connection`` to an unrelated program is
  the one case this trusts wrongly: that program's ``__main__`` is another.)
* **cloudpickle** (also a copy of it inside another package, such as
  ``joblib.externals.cloudpickle``). It stores lambdas, local functions and
  those of ``__main__`` by value, code included: no check. dask.distributed
  and dask's tokenizer fall back to it when the standard pickler refuses a
  model, so a model with a lambda reaches dask workers.

The running pickler is told by the call stack: the innermost frame above the
model's own ``__getstate__`` (and the ``__reduce_ex__`` or ``__reduce__`` of
the same object, and :mod:`copyreg`'s, which calls them for protocols 0 and 1)
is the code that asked for the pickle. The by-value picklers run Python code
there: ``cloudpickle.Pickler.dump``, and ``ForkingPickler.dumps`` or
``multiprocessing.reduction.dump``. The standard pickler is C code and leaves
no frame, so whatever else called it counts as the standard pickler, whose
rule is the strictest. A standard pickle taken inside a cloudpickle dump (by
some object's ``__reduce__``) is checked as one, since that ``__reduce__`` is
then the innermost frame. Other picklers (dill, say) count as the standard
one: they get the strict check.
"""

from __future__ import annotations

import functools
import importlib
import pickle
import sys
import types
from typing import Any, Literal

from symgraph._plan import Plan

__all__ = ["PicklerKind", "check_picklable", "find_by_reference", "running_pickler"]

#: The picklers :func:`check_picklable` tells apart (see the module doc).
PicklerKind = Literal["pickle", "multiprocessing", "cloudpickle"]
_PICKLERS = ("pickle", "multiprocessing", "cloudpickle")

_MISSING = object()
# Classes made by a class statement; pickle stores their instances by naming the
# class. Built-in types such as ``builtin_function_or_method`` have no importable
# name, but their instances are stored another way.
_HEAPTYPE = 1 << 9
# The main script's module: "__mp_main__" is its name in a multiprocessing child.
_MAIN_MODULES = frozenset({"__main__", "__mp_main__"})
# Methods through which a pickler asks an object for its state.
_REDUCTION_METHODS = frozenset({"__getstate__", "__reduce_ex__", "__reduce__"})


def find_by_reference(obj: Any) -> bool:
    """Whether pickle can find ``obj`` again by its module and qualified name.

    Anything that is not a Python function or a class is pickled some other way
    and counts as found. A function of ``__main__`` is found, in this process.

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


def _of_main(obj: Any) -> bool:
    return isinstance(obj, (types.FunctionType, type)) and getattr(obj, "__module__", None) in _MAIN_MODULES


def _module_name(frame: types.FrameType) -> str:
    name = frame.f_globals.get("__name__")
    return name if isinstance(name, str) else ""


def running_pickler(frame: types.FrameType | None = None) -> PicklerKind:
    """Which pickler asked for the state that the code of ``frame`` computes.

    Args:
        frame: The frame of the ``__getstate__`` or ``__reduce_ex__`` that
            gives an object's state; by default the caller's.

    Returns:
        ``"cloudpickle"``, ``"multiprocessing"``, or ``"pickle"`` for the
        standard pickler and anything not known to be another (see the module
        doc).

    Example:
        >>> import pickle
        >>> class Probe:
        ...     def __reduce__(self):
        ...         return (print, (running_pickler(),))
        >>> pickle.loads(pickle.dumps(Probe()))
        pickle
    """
    if frame is None:
        frame = sys._getframe(1)
    # The object's own reduction methods (a subclass's calling its base's) and
    # copyreg's are not the pickler; any other code is. Locals are only read.
    owner = frame.f_locals.get("self", _MISSING)
    caller: types.FrameType | None = frame
    while caller is not None and (
        (caller.f_code.co_name in _REDUCTION_METHODS and caller.f_locals.get("self", None) is owner)
        or _module_name(caller) == "copyreg"
    ):
        caller = caller.f_back
    if caller is None:
        return "pickle"
    module = _module_name(caller)
    if "cloudpickle" in module.split("."):
        return "cloudpickle"
    if module == "multiprocessing.reduction":
        return "multiprocessing"
    return "pickle"


def _unreachable(root: Any, allow_main: bool) -> Any:
    """The first function or class inside ``root`` that the pickler cannot store faithfully, or ``None``."""
    stack = [root]
    seen: set[int] = set()
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        cls = type(obj)
        for candidate in (obj, cls) if cls.__flags__ & _HEAPTYPE else (obj,):
            if not find_by_reference(candidate) or (not allow_main and _of_main(candidate)):
                return candidate
        if isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        elif isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, functools.partial):
            stack.extend((obj.func, *obj.args, *obj.keywords.values()))
    return None


def _error(where: str, bad: Any) -> pickle.PicklingError:
    kind = "class" if isinstance(bad, type) else "function"
    name = f"{bad.__module__}.{bad.__qualname__}"
    if find_by_reference(bad):  # then it is one of __main__'s
        return pickle.PicklingError(
            f"cannot pickle this model: {where} uses {name}, a {kind} of the __main__ module. pickle stores it "
            "by name, and another process that loads the pickle looks the name up in its own __main__ (another "
            "script), which lacks it or defines something else under that name. Move it into a module that the "
            "loading side can import, or pickle the model with cloudpickle, which stores it by value (multiprocessing "
            "needs neither, its child processes run this same __main__; dask.distributed falls back to cloudpickle)"
        )
    return pickle.PicklingError(
        f"cannot pickle this model: {where} uses {bad.__qualname__}, which pickle can only store by an "
        f"importable name, and {name} is not one. Lambdas and functions or classes defined inside a function "
        "cannot be pickled; define them at module level (a functools.partial of such a function pickles too), "
        "or pickle the model with cloudpickle, which stores them by value"
    )


def check_picklable(plan: Plan, pickler: PicklerKind | None = None) -> None:
    """Raise a clear error if ``plan`` holds a function that ``pickler`` cannot store faithfully.

    The rule of each pickler is in the module doc: the standard pickler refuses
    lambdas, local functions and classes, and those of ``__main__``;
    multiprocessing refuses the first two; cloudpickle stores them all by value.

    Args:
        plan: The plan about to be pickled.
        pickler: ``"pickle"``, ``"multiprocessing"`` or ``"cloudpickle"``; by
            default the one running, told by :func:`running_pickler` from the
            caller, a ``__getstate__`` or ``__reduce_ex__``.

    Raises:
        pickle.PicklingError: naming the step (or input), the function, why,
            and what to do.
        ValueError: ``pickler`` is none of those.

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput(3)
        >>> model = symgraph.SymbolicModel(x, symgraph.add_to_graph(lambda v: v + 1, x))
        >>> check_picklable(model.plan, "cloudpickle")
        >>> check_picklable(model.plan)
        Traceback (most recent call last):
        ...
        _pickle.PicklingError: cannot pickle this model: step 'wrap(<lambda>)_1' uses <lambda>, ...
    """
    if pickler is None:
        pickler = running_pickler(sys._getframe(1))
    elif pickler not in _PICKLERS:
        raise ValueError(f"check_picklable(): pickler must be one of {', '.join(_PICKLERS)}; got {pickler!r}")
    if pickler == "cloudpickle":
        return
    allow_main = pickler == "multiprocessing"
    for spec in plan.inputs:
        bad = _unreachable(spec.check, allow_main)
        if bad is not None:
            raise _error(f"the check of input {spec.name!r}", bad)
    for step in plan.steps:
        for template in step.op.templates():
            for constant in template.constants():
                bad = _unreachable(constant, allow_main)
                if bad is not None:
                    raise _error(f"step {step.name!r}", bad)
